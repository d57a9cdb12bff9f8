#include "block_sparse_matmul.h"

#include <pybind11/numpy.h>
#include <pybind11/stl.h>

#include <algorithm>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "core/block_sparse_matmul.h"

#if defined(_OPENMP)
#include <omp.h>
#endif

namespace py = pybind11;

namespace hwopt::kernels {
namespace {

// Below this many multiply-adds a call runs on the calling thread: waking the pool costs more than it saves.
constexpr int64_t kParallelMinWork = int64_t{1} << 16;

std::string dtype_name(const py::array& array) { return py::str(array.dtype()).cast<std::string>(); }

// x, the weight arrays and bias must be NumPy arrays of exactly this dtype, C-contiguous and aligned, since the
// kernel reads them as raw buffers; each failure says which argument and how to fix it.
template <typename T>
py::array require_array(const py::object& object, const char* function, const char* argument, const char* dtype,
                        int ndim) {
    const std::string name = std::string(function) + ": " + argument;
    if (!py::isinstance<py::array>(object)) {
        throw py::type_error(name + " must be a numpy.ndarray of " + dtype + ", got " +
                             py::repr(py::type::of(object)).cast<std::string>());
    }
    auto array = py::reinterpret_borrow<py::array>(object);
    if (!array.dtype().equal(py::dtype::of<T>())) {
        throw py::type_error(name + " must be " + dtype + ", got " + dtype_name(array));
    }
    if (array.ndim() != ndim) {
        throw py::value_error(name + " must be " + std::to_string(ndim) + "-D, got shape of " +
                              std::to_string(array.ndim()) + " dimensions");
    }
    if (!(array.flags() & py::array::c_style)) {
        throw py::value_error(name + " must be C-contiguous, got a strided view; pass np.ascontiguousarray(...)");
    }
    if (array.size() > 0 && reinterpret_cast<std::uintptr_t>(array.data()) % alignof(T) != 0) {
        throw py::value_error(name + " is not aligned to its element size; pass a copy");
    }
    return array;
}

struct Layout {
    int64_t m, k, n, block_k, block_n, blocks;
};

// The shapes the kernel trusts: x [m, k], values [blocks, block_k, block_n], strip_ptr [n / block_n + 1] from 0 to
// blocks without decreasing, block_rows [blocks] in [0, k / block_k). A corrupt index would read out of bounds,
// so the indices are checked on every call (a pass over a few thousand ints).
Layout check_layout(const py::array& x, const py::array& values, const py::array& block_rows,
                    const py::array& strip_ptr, const char* function) {
    const std::string name = std::string(function) + ": ";
    Layout layout{x.shape(0), x.shape(1), 0, values.shape(1), values.shape(2), values.shape(0)};
    if (layout.block_k < 1 || layout.block_n < 1) throw py::value_error(name + "values has an empty block shape");
    if (layout.k % layout.block_k != 0) {
        throw py::value_error(name + "x has " + std::to_string(layout.k) + " columns (K), not a multiple of block_k " +
                              std::to_string(layout.block_k) + ": x and the weight do not match");
    }
    if (strip_ptr.shape(0) < 1) throw py::value_error(name + "strip_ptr must hold at least one entry");
    layout.n = (strip_ptr.shape(0) - 1) * layout.block_n;
    const auto* ptr = static_cast<const int32_t*>(strip_ptr.data());
    const auto* rows = static_cast<const int32_t*>(block_rows.data());
    if (block_rows.shape(0) != layout.blocks || ptr[0] != 0 || ptr[strip_ptr.shape(0) - 1] != layout.blocks) {
        throw py::value_error(name + "strip_ptr must run from 0 to the number of blocks (values.shape[0] == "
                              "block_rows.shape[0])");
    }
    for (py::ssize_t s = 0; s + 1 < strip_ptr.shape(0); ++s) {
        if (ptr[s + 1] < ptr[s]) throw py::value_error(name + "strip_ptr must not decrease");
    }
    const int64_t block_row_count = layout.k / layout.block_k;
    for (int64_t b = 0; b < layout.blocks; ++b) {
        if (rows[b] < 0 || rows[b] >= block_row_count) {
            throw py::value_error(name + "block_rows holds " + std::to_string(rows[b]) + ", outside [0, " +
                                  std::to_string(block_row_count) + ") for x's K = " + std::to_string(layout.k));
        }
    }
    return layout;
}

// Calls compute(strip_begin, strip_end) over all strips, in chunks handed out dynamically (strips hold different
// numbers of blocks, so equal static shares would leave one thread waiting on the other).
template <typename Compute>
void for_each_strip_chunk(int64_t strips, int64_t work, Compute compute) {
#if defined(_OPENMP)
    const int threads = omp_get_max_threads();
    if (threads > 1 && work >= kParallelMinWork && strips > 1) {
        const int64_t chunk = std::max<int64_t>(1, strips / (int64_t{threads} * 8));
        const int64_t chunks = (strips + chunk - 1) / chunk;
#pragma omp parallel for schedule(dynamic, 1)
        for (int64_t c = 0; c < chunks; ++c) compute(c * chunk, std::min(strips, (c + 1) * chunk));
        return;
    }
#endif
    compute(0, strips);
}

Activation parse_activation(const std::string& activation) {
    if (activation == "none") return Activation::kNone;
    if (activation == "relu") return Activation::kRelu;
    if (activation == "gelu") return Activation::kGelu;
    throw py::value_error("block_sparse_matmul_f32: activation must be one of none, relu, gelu, not '" + activation +
                          "'");
}

std::string isa_or_widest(const std::optional<std::string>& isa, const char* function) {
    const auto names = block_sparse_matmul_isas();
    if (!isa) return names.front();
    std::string known;
    for (const char* name : names) {
        if (*isa == name) return *isa;
        known += known.empty() ? name : std::string(", ") + name;
    }
    throw py::value_error(std::string(function) + ": isa '" + *isa + "' is not available on this CPU (" + known + ")");
}

py::array_t<float> block_sparse_matmul_f32_py(const py::object& x_object, const py::object& values_object,
                                              const py::object& block_rows_object, const py::object& strip_ptr_object,
                                              const py::object& bias_object, const std::string& activation_name,
                                              const std::optional<std::string>& isa_name) {
    constexpr const char* kName = "block_sparse_matmul_f32";
    const std::string isa = isa_or_widest(isa_name, kName);
    const Activation activation = parse_activation(activation_name);
    const py::array x = require_array<float>(x_object, kName, "x", "float32", 2);
    const py::array values = require_array<float>(values_object, kName, "values", "float32", 3);
    const py::array block_rows = require_array<int32_t>(block_rows_object, kName, "block_rows", "int32", 1);
    const py::array strip_ptr = require_array<int32_t>(strip_ptr_object, kName, "strip_ptr", "int32", 1);
    const Layout layout = check_layout(x, values, block_rows, strip_ptr, kName);
    const float* bias = nullptr;
    if (!bias_object.is_none()) {
        const py::array bias_array = require_array<float>(bias_object, kName, "bias", "float32", 1);
        if (bias_array.shape(0) != layout.n) {
            throw py::value_error(std::string(kName) + ": bias has " + std::to_string(bias_array.shape(0)) +
                                  " elements, the weight has N = " + std::to_string(layout.n) + " columns");
        }
        bias = static_cast<const float*>(bias_array.data());
    }
    const BlockSparseF32 weight{layout.k,
                                layout.n,
                                layout.block_k,
                                layout.block_n,
                                static_cast<const float*>(values.data()),
                                static_cast<const int32_t*>(block_rows.data()),
                                static_cast<const int32_t*>(strip_ptr.data())};
    py::array_t<float> y({layout.m, layout.n});
    const auto* x_data = static_cast<const float*>(x.data());
    float* y_data = y.mutable_data();
    {
        py::gil_scoped_release release;
        const int64_t work = layout.m * layout.blocks * layout.block_k * layout.block_n;
        for_each_strip_chunk(layout.n / layout.block_n, work, [&](int64_t begin, int64_t end) {
            block_sparse_matmul_f32_with_isa(isa.c_str(), weight, x_data, layout.m, bias, activation, y_data, begin,
                                             end);
        });
    }
    return y;
}

py::array_t<int32_t> block_sparse_matmul_u8s8_py(const py::object& x_object, const py::object& values_object,
                                                 const py::object& block_rows_object,
                                                 const py::object& strip_ptr_object,
                                                 const py::object& vnni_values_object,
                                                 const std::optional<std::string>& isa_name) {
    constexpr const char* kName = "block_sparse_matmul_u8s8";
    const std::string isa = isa_or_widest(isa_name, kName);
    const py::array x = require_array<uint8_t>(x_object, kName, "x", "uint8", 2);
    const py::array values = require_array<int8_t>(values_object, kName, "values", "int8", 3);
    const py::array block_rows = require_array<int32_t>(block_rows_object, kName, "block_rows", "int32", 1);
    const py::array strip_ptr = require_array<int32_t>(strip_ptr_object, kName, "strip_ptr", "int32", 1);
    const Layout layout = check_layout(x, values, block_rows, strip_ptr, kName);
    BlockSparseS8 weight{layout.k,
                         layout.n,
                         layout.block_k,
                         layout.block_n,
                         static_cast<const int8_t*>(values.data()),
                         static_cast<const int32_t*>(block_rows.data()),
                         static_cast<const int32_t*>(strip_ptr.data())};
    if (!vnni_values_object.is_none()) {
        const py::array packed = require_array<int8_t>(vnni_values_object, kName, "vnni_values", "int8", 4);
        if (packed.size() != vnni_packed_size(weight)) {
            throw py::value_error(std::string(kName) + ": vnni_values must be pack_s8_for_vnni(values) (shape "
                                  "[blocks, ceil(block_k / 4), block_n, 4])");
        }
        weight.vnni_values = static_cast<const int8_t*>(packed.data());
    }
    py::array_t<int32_t> y({layout.m, layout.n});
    const auto* x_data = static_cast<const uint8_t*>(x.data());
    int32_t* y_data = y.mutable_data();
    {
        py::gil_scoped_release release;
        const int64_t work = layout.m * layout.blocks * layout.block_k * layout.block_n;
        for_each_strip_chunk(layout.n / layout.block_n, work, [&](int64_t begin, int64_t end) {
            block_sparse_matmul_u8s8_with_isa(isa.c_str(), weight, x_data, layout.m, y_data, begin, end);
        });
    }
    return y;
}

// The C++ packing, exposed so the tests can hold the NumPy packing (BlockSparseMatrix.vnni_values) to it.
py::array_t<int8_t> pack_s8_for_vnni_py(const py::object& values_object) {
    constexpr const char* kName = "pack_s8_for_vnni";
    const py::array values = require_array<int8_t>(values_object, kName, "values", "int8", 3);
    const int64_t blocks = values.shape(0), block_k = values.shape(1), block_n = values.shape(2);
    // One strip holding every block is enough to describe them to the packer, which only walks the blocks.
    const std::vector<int32_t> strip_ptr{0, static_cast<int32_t>(blocks)};
    const BlockSparseS8 weight{block_k, block_n, block_k, block_n, static_cast<const int8_t*>(values.data()),
                               nullptr, strip_ptr.data()};
    py::array_t<int8_t> packed({blocks, (block_k + 3) / 4, block_n, int64_t{4}});
    pack_s8_for_vnni(weight, packed.mutable_data());
    return packed;
}

std::vector<std::string> isas() {
    std::vector<std::string> names;
    for (const char* name : block_sparse_matmul_isas()) names.emplace_back(name);
    return names;
}

}  // namespace

void bind_block_sparse_matmul(py::module_& module) {
    module.def("block_sparse_matmul_f32", &block_sparse_matmul_f32_py, py::arg("x"), py::arg("values"),
               py::arg("block_rows"), py::arg("strip_ptr"), py::arg("bias") = py::none(),
               py::arg("activation") = "none", py::kw_only(), py::arg("isa") = py::none(),
               "activation(x @ W + bias) for x float32 [M, K] and W given by a BlockSparseMatrix's arrays "
               "(values float32 [blocks, block_k, block_n]); a new float32 [M, N].\n\n"
               "isa picks one of block_sparse_matmul_isas() instead of the widest, for tests and benchmarks.");
    module.def("block_sparse_matmul_u8s8", &block_sparse_matmul_u8s8_py, py::arg("x"), py::arg("values"),
               py::arg("block_rows"), py::arg("strip_ptr"), py::arg("vnni_values") = py::none(), py::kw_only(),
               py::arg("isa") = py::none(),
               "The int32 sums x @ W for x uint8 [M, K] and W's values int8; vnni_values (pack_s8_for_vnni(values))"
               " enables the AVX-512 VNNI path.");
    module.def("pack_s8_for_vnni", &pack_s8_for_vnni_py, py::arg("values"),
               "int8 values [blocks, block_k, block_n] re-laid out as [blocks, ceil(block_k / 4), block_n, 4] for "
               "VNNI (K padded with zeros to a multiple of 4).");
    module.def("block_sparse_matmul_isas", &isas,
               "The instruction sets the block-sparse MatMul is built for and this CPU runs, widest (the default) "
               "first.");
}

}  // namespace hwopt::kernels
