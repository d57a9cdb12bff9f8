// The library OpenVINO loads with `core.add_extension(path)` (or a frontend's add_extension): the
// BlockSparseMatMul operation, for reading and writing IR, and the ONNX frontend's conversion of
// com.hwopt::BlockSparseMatMul into it.
#include <memory>
#include <string>
#include <vector>

#include "block_sparse_matmul_op.hpp"
#include "openvino/core/extension.hpp"
#include "openvino/core/op_extension.hpp"
#include "openvino/frontend/exception.hpp"
#include "openvino/frontend/onnx/extension/conversion.hpp"
#include "openvino/op/constant.hpp"

namespace {

using hwopt::openvino::BlockSparseMatMul;

constexpr const char* kOnnxDomain = "com.hwopt";

// The ONNX frontend stands an omitted optional input (an empty name) in with a placeholder node of this type.
bool omitted(const ov::Output<ov::Node>& input) {
    return std::string(input.get_node()->get_type_name()) == "NullNode";
}

// The ONNX frontend turns an initializer with no elements (a weight with no stored block: values
// [0, block_k, block_n], block_rows [0]) into a scalar Constant 0, which these inputs never are: give it back
// its empty shape.
ov::Output<ov::Node> with_empty_shape(const ov::Output<ov::Node>& input, const ov::Shape& shape) {
    const auto constant = ov::as_type_ptr<ov::op::v0::Constant>(input.get_node_shared_ptr());
    if (!constant || !constant->get_shape().empty()) {
        return input;
    }
    return std::make_shared<ov::op::v0::Constant>(constant->get_element_type(), shape);
}

ov::OutputVector convert_block_sparse_matmul(const ov::frontend::NodeContext& node) {
    const size_t count = node.get_input_size();
    FRONT_END_GENERAL_CHECK(count == 4 || count == 5, "com.hwopt::BlockSparseMatMul expects 4 or 5 inputs, got ",
                            count);
    ov::OutputVector inputs;
    for (size_t index = 0; index < count; ++index) {
        const auto input = node.get_input(static_cast<int>(index));
        if (index == BlockSparseMatMul::kBias && omitted(input)) {
            continue;
        }
        inputs.push_back(input);
    }
    const auto block_shape = node.get_attribute<std::vector<int64_t>>("block_shape");
    if (block_shape.size() == 2) {  // else the op's own check reports it
        const auto block_k = static_cast<size_t>(block_shape[0]);
        const auto block_n = static_cast<size_t>(block_shape[1]);
        auto& values = inputs[BlockSparseMatMul::kValues];
        values = with_empty_shape(values, {0, block_k, block_n});
        inputs[BlockSparseMatMul::kBlockRows] = with_empty_shape(inputs[BlockSparseMatMul::kBlockRows], {0});
    }
    const auto op = std::make_shared<BlockSparseMatMul>(inputs, node.get_attribute<int64_t>("k"),
                                                        node.get_attribute<int64_t>("n"), block_shape,
                                                        node.get_attribute<std::string>("activation", "none"));
    return op->outputs();
}

}  // namespace

OPENVINO_CREATE_EXTENSIONS(std::vector<ov::Extension::Ptr>({
    std::make_shared<ov::OpExtension<BlockSparseMatMul>>(),
    std::make_shared<ov::frontend::onnx::ConversionExtension>("BlockSparseMatMul", kOnnxDomain,
                                                              convert_block_sparse_matmul),
}));
