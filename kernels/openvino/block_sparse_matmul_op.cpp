#include "block_sparse_matmul_op.hpp"

#include <algorithm>
#include <cstdint>
#include <utility>

#include "block_sparse_matmul.h"  // hwopt::kernels, from ../csrc/core
#include "openvino/core/parallel.hpp"

namespace hwopt::openvino {
namespace {

using hwopt::kernels::Activation;
using hwopt::kernels::BlockSparseF32;

// Below this many multiply-adds a call runs on the calling thread: handing work to TBB's workers costs a few
// microseconds, more than a tiny product takes.
constexpr int64_t kMinParallelWork = int64_t{1} << 16;

bool parse_activation(const std::string& name, Activation& activation) {
    if (name == "none") {
        activation = Activation::kNone;
    } else if (name == "relu") {
        activation = Activation::kRelu;
    } else if (name == "gelu") {
        activation = Activation::kGelu;
    } else {
        return false;
    }
    return true;
}

// The index arrays come from the model file: check them before the kernel trusts them, so a malformed weight is
// an error rather than an out-of-bounds read. O(strips + blocks), against O(m * blocks * block_k * block_n) for
// the product itself.
void check_weight(const BlockSparseF32& w, size_t strip_ptr_size, size_t block_rows_size, size_t values_size) {
    const int64_t strips = w.n / w.block_n;
    const int64_t block_row_count = w.k / w.block_k;
    OPENVINO_ASSERT(static_cast<int64_t>(strip_ptr_size) == strips + 1, "BlockSparseMatMul: strip_ptr has ",
                    strip_ptr_size, " entries, n / block_n + 1 is ", strips + 1);
    OPENVINO_ASSERT(w.strip_ptr[0] == 0, "BlockSparseMatMul: strip_ptr[0] is ", w.strip_ptr[0], ", not 0");
    for (int64_t s = 0; s < strips; ++s) {
        OPENVINO_ASSERT(w.strip_ptr[s] <= w.strip_ptr[s + 1], "BlockSparseMatMul: strip_ptr decreases at ", s);
    }
    const int64_t blocks = w.strip_ptr[strips];
    OPENVINO_ASSERT(static_cast<int64_t>(block_rows_size) == blocks, "BlockSparseMatMul: block_rows has ",
                    block_rows_size, " entries, strip_ptr[-1] is ", blocks);
    OPENVINO_ASSERT(static_cast<int64_t>(values_size) == blocks * w.block_k * w.block_n,
                    "BlockSparseMatMul: values has ", values_size, " elements, not ", blocks, " blocks of ",
                    w.block_k, "x", w.block_n);
    // Runs on every call: a branch-free pass the compiler vectorizes (~2 us for MiniLM's 18k blocks), then a
    // search for the culprit only when there is one.
    const auto limit = static_cast<int32_t>(std::min<int64_t>(block_row_count, INT32_MAX));  // int32: vectorizes
    const auto outside = [&](int64_t b) { return (w.block_rows[b] < 0) | (w.block_rows[b] >= limit); };
    int32_t any_outside = 0;
    for (int64_t b = 0; b < blocks; ++b) {
        any_outside |= outside(b);
    }
    for (int64_t b = 0; any_outside && b < blocks; ++b) {
        OPENVINO_ASSERT(!outside(b), "BlockSparseMatMul: block ", b, " has block row ", w.block_rows[b],
                        ", outside [0, ", block_row_count, ")");
    }
}

// The strip where part `part` of `parts` starts, so that each part gets about the same work: a stored block
// costs block_k multiply-adds per output element, and every strip one more (bias and activation). strip_ptr
// counts blocks cumulatively, so the cost up to a strip is monotonic and a binary search finds the split.
int64_t first_strip(const BlockSparseF32& w, int64_t strips, int part, int parts) {
    const auto cost = [&](int64_t s) { return int64_t{w.strip_ptr[s]} * w.block_k + s; };
    const int64_t target = (cost(strips) * part + parts - 1) / parts;
    int64_t low = 0;
    int64_t high = strips;
    while (low < high) {
        const int64_t middle = (low + high) / 2;
        if (cost(middle) < target) {
            low = middle + 1;
        } else {
            high = middle;
        }
    }
    return low;
}

}  // namespace

BlockSparseMatMul::BlockSparseMatMul(const ov::OutputVector& inputs, int64_t k, int64_t n,
                                     std::vector<int64_t> block_shape, std::string activation)
    : Op(inputs),
      m_k(k),
      m_n(n),
      m_block_shape(std::move(block_shape)),
      m_activation(std::move(activation)) {
    constructor_validate_and_infer_types();
}

void BlockSparseMatMul::validate_and_infer_types() {
    const size_t inputs = get_input_size();
    NODE_VALIDATION_CHECK(this, inputs == 4 || inputs == 5,
                          "expects inputs X, values, block_rows, strip_ptr and an optional bias, got ", inputs);
    NODE_VALIDATION_CHECK(this, m_block_shape.size() == 2, "block_shape must hold 2 values [block_k, block_n]");
    const int64_t block_k = m_block_shape[0];
    const int64_t block_n = m_block_shape[1];
    NODE_VALIDATION_CHECK(this, m_k > 0 && m_n > 0 && block_k > 0 && block_n > 0 && m_k % block_k == 0 &&
                                    m_n % block_n == 0,
                          "block shape ", block_k, "x", block_n, " does not tile a ", m_k, "x", m_n, " weight");
    Activation activation;
    NODE_VALIDATION_CHECK(this, parse_activation(m_activation, activation),
                          "activation must be none, relu or gelu, not '", m_activation, "'");

    const auto expect_type = [&](size_t index, const ov::element::Type& type, const char* name) {
        const auto& actual = get_input_element_type(index);
        NODE_VALIDATION_CHECK(this, actual.is_dynamic() || actual == type, name, " must be ", type, ", not ", actual);
    };
    const auto expect_shape = [&](size_t index, const ov::PartialShape& shape, const char* name) {
        NODE_VALIDATION_CHECK(this, get_input_partial_shape(index).compatible(shape), name, " must have shape ",
                              shape, ", not ", get_input_partial_shape(index));
    };
    expect_type(kX, ov::element::f32, "X");
    expect_type(kValues, ov::element::f32, "values");
    expect_type(kBlockRows, ov::element::i32, "block_rows");
    expect_type(kStripPtr, ov::element::i32, "strip_ptr");
    expect_shape(kValues, ov::PartialShape{ov::Dimension::dynamic(), block_k, block_n}, "values");
    expect_shape(kBlockRows, ov::PartialShape{ov::Dimension::dynamic()}, "block_rows");
    expect_shape(kStripPtr, ov::PartialShape{m_n / block_n + 1}, "strip_ptr");
    if (inputs == 5) {
        expect_type(kBias, ov::element::f32, "bias");
        expect_shape(kBias, ov::PartialShape{m_n}, "bias");
    }

    // Y is X's shape with the last dim K replaced by N; leading dims (batch, sequence) pass through, dynamic or not.
    ov::PartialShape y_shape = get_input_partial_shape(kX);
    if (y_shape.rank().is_static()) {
        NODE_VALIDATION_CHECK(this, y_shape.size() >= 1, "X must have at least one dim [..., K]");
        auto& last = y_shape[y_shape.size() - 1];
        NODE_VALIDATION_CHECK(this, last.compatible(m_k), "X's last dim ", last, " is not K = ", m_k);
        last = m_n;
    }
    set_output_type(0, ov::element::f32, y_shape);
}

bool BlockSparseMatMul::visit_attributes(ov::AttributeVisitor& visitor) {
    visitor.on_attribute("k", m_k);
    visitor.on_attribute("n", m_n);
    visitor.on_attribute("block_shape", m_block_shape);
    visitor.on_attribute("activation", m_activation);
    return true;
}

std::shared_ptr<ov::Node> BlockSparseMatMul::clone_with_new_inputs(const ov::OutputVector& new_args) const {
    return std::make_shared<BlockSparseMatMul>(new_args, m_k, m_n, m_block_shape, m_activation);
}

bool BlockSparseMatMul::has_evaluate() const {
    for (size_t index = 0; index < get_input_size(); ++index) {
        const auto expected = index == kBlockRows || index == kStripPtr ? ov::element::i32 : ov::element::f32;
        if (get_input_element_type(index) != expected) {
            return false;
        }
    }
    return true;
}

bool BlockSparseMatMul::evaluate(ov::TensorVector& outputs, const ov::TensorVector& inputs) const {
    if (!has_evaluate()) {
        return false;
    }
    Activation activation;
    OPENVINO_ASSERT(parse_activation(m_activation, activation), "BlockSparseMatMul: unknown activation '",
                    m_activation, "'");
    const ov::Tensor& x = inputs[kX];
    const ov::Shape& x_shape = x.get_shape();
    OPENVINO_ASSERT(!x_shape.empty() && static_cast<int64_t>(x_shape.back()) == m_k,
                    "BlockSparseMatMul: X has shape ", x_shape, ", its last dim must be K = ", m_k);
    ov::Shape y_shape = x_shape;
    y_shape.back() = static_cast<size_t>(m_n);
    outputs[0].set_shape(y_shape);  // allocates where the plugin left the output unallocated (dynamic shapes)

    const ov::Tensor& values = inputs[kValues];
    const ov::Tensor& block_rows = inputs[kBlockRows];
    const ov::Tensor& strip_ptr = inputs[kStripPtr];
    const BlockSparseF32 w{m_k,
                           m_n,
                           m_block_shape[0],
                           m_block_shape[1],
                           values.data<const float>(),
                           block_rows.data<const int32_t>(),
                           strip_ptr.data<const int32_t>()};
    check_weight(w, strip_ptr.get_size(), block_rows.get_size(), values.get_size());
    const float* bias = nullptr;
    if (inputs.size() > kBias) {
        OPENVINO_ASSERT(static_cast<int64_t>(inputs[kBias].get_size()) == m_n, "BlockSparseMatMul: bias has ",
                        inputs[kBias].get_size(), " elements, not N = ", m_n);
        bias = inputs[kBias].data<const float>();
    }

    const int64_t m = static_cast<int64_t>(ov::shape_size(x_shape)) / m_k;  // leading dims flattened
    if (m == 0) {
        return true;
    }
    const float* x_data = x.data<const float>();
    float* y_data = outputs[0].data<float>();
    const int64_t strips = m_n / w.block_n;
    const int64_t work = m * (int64_t{w.strip_ptr[strips]} * w.block_k * w.block_n + m_n);
    const int threads = work < kMinParallelWork ? 1 : parallel_get_max_threads();

    // OpenVINO's own pool (TBB, inside the arena of the stream running this inference, so INFERENCE_NUM_THREADS
    // holds): the strips are split among the threads by work. With fewer strips than that can balance, the rows
    // are split instead, each part computing every strip of its rows.
    const bool split_rows = strips < 4 * threads && m >= 2 * threads;
    ov::parallel_nt(threads, [&](int part, int parts) {
        if (split_rows) {
            int64_t row_begin = 0;
            int64_t row_end = 0;
            ov::splitter(m, static_cast<int64_t>(parts), static_cast<int64_t>(part), row_begin, row_end);
            hwopt::kernels::block_sparse_matmul_f32(w, x_data + row_begin * m_k, row_end - row_begin, bias,
                                                    activation, y_data + row_begin * m_n, 0, strips);
        } else {
            const int64_t begin = first_strip(w, strips, part, parts);
            const int64_t end = first_strip(w, strips, part + 1, parts);
            if (begin < end) {
                hwopt::kernels::block_sparse_matmul_f32(w, x_data, m, bias, activation, y_data, begin, end);
            }
        }
    });
    return true;
}

}  // namespace hwopt::openvino
