// hwopt's BlockSparseMatMul as an OpenVINO operation: Y = activation(X @ W + bias), W block-sparse.
//
// The contract (inputs, attributes, output) is the ONNX op's, kernels/custom_ops.py; the weight format is
// kernels/block_sparse.py's. The CPU plugin has no kernel of its own for an op it does not know, so it runs
// `evaluate` (its "Reference" node), which calls hwopt's C++ core (../csrc/core) on OpenVINO's thread pool.
//
// In OpenVINO IR the op is written as type "BlockSparseMatMul", version "hwopt": reading that IR back needs
// this extension added to the Core, as converting the ONNX op does.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "openvino/op/op.hpp"

namespace hwopt::openvino {

class BlockSparseMatMul : public ov::op::Op {
public:
    OPENVINO_OP("BlockSparseMatMul", "hwopt");

    // Input order, as the ONNX op's; kBias is optional (4 inputs: no bias).
    enum Input : size_t { kX = 0, kValues = 1, kBlockRows = 2, kStripPtr = 3, kBias = 4 };

    BlockSparseMatMul() = default;  // for reading IR: attributes then come from visit_attributes
    BlockSparseMatMul(const ov::OutputVector& inputs, int64_t k, int64_t n, std::vector<int64_t> block_shape,
                      std::string activation);

    void validate_and_infer_types() override;
    bool visit_attributes(ov::AttributeVisitor& visitor) override;
    std::shared_ptr<ov::Node> clone_with_new_inputs(const ov::OutputVector& new_args) const override;
    bool has_evaluate() const override;
    bool evaluate(ov::TensorVector& outputs, const ov::TensorVector& inputs) const override;

    int64_t k() const { return m_k; }
    int64_t n() const { return m_n; }
    const std::vector<int64_t>& block_shape() const { return m_block_shape; }
    const std::string& activation() const { return m_activation; }

private:
    int64_t m_k = 0;
    int64_t m_n = 0;
    std::vector<int64_t> m_block_shape{1, 1};
    std::string m_activation = "none";
};

}  // namespace hwopt::openvino
