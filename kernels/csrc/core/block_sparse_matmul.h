// Block-sparse MatMul, Y = activation(X @ W + bias), for weights in the format of kernels/block_sparse.py.
//
// Plain C++17 with no Python or pybind11 header: the pybind11 module (../block_sparse_matmul.cpp) and hwopt's
// OpenVINO extension both compile this file and call the same functions. Each call computes a range of output
// strips for all rows of X, so a caller parallelizes by splitting the strip range among its threads (OpenMP in
// the pybind11 module, ov::parallel_for in OpenVINO); the functions themselves start no thread.
#pragma once

#include <cstdint>
#include <vector>

namespace hwopt::kernels {

enum class Activation { kNone, kRelu, kGelu };  // gelu: the exact erf form, 0.5 * x * (1 + erf(x / sqrt(2)))

// W [k, n] cut into block_k x block_n blocks; strip s (columns s*block_n ...) stores the blocks
// strip_ptr[s] .. strip_ptr[s+1]-1, whose block-row indices are block_rows[...] and whose elements are
// values[block * block_k * block_n ...], row-major. block_k must divide k and block_n must divide n.
struct BlockSparseF32 {
    int64_t k, n, block_k, block_n;
    const float* values;
    const int32_t* block_rows;
    const int32_t* strip_ptr;
};

// The int8 weight. vnni_values is optional: the same blocks re-laid out by pack_s8_for_vnni, which the AVX-512
// VNNI path needs (vpdpbusd multiplies 4 consecutive K at once) and which costs as much memory traffic as a
// small matmul, so callers pack once per weight and keep it. Left null, the kernel takes its portable path
// (exact, several times slower).
struct BlockSparseS8 {
    int64_t k, n, block_k, block_n;
    const int8_t* values;
    const int32_t* block_rows;
    const int32_t* strip_ptr;
    const int8_t* vnni_values = nullptr;
};

// x: [m, k] row-major; bias: [n] or null; y: [m, n] row-major. Computes columns strip_begin*block_n up to
// strip_end*block_n of every row of y; other columns are not touched. A strip with no stored block gives
// activation(bias). x, y and the weight arrays need only their element type's alignment.
void block_sparse_matmul_f32(const BlockSparseF32& w, const float* x, int64_t m, const float* bias,
                             Activation activation, float* y, int64_t strip_begin, int64_t strip_end);

// x: [m, k] uint8; y: [m, n] int32, the exact sum of x * w over k (no zero points, no scales; the sums cannot
// overflow int32 for k < 2^16 / 2, since |x * w| <= 255 * 128).
void block_sparse_matmul_u8s8(const BlockSparseS8& w, const uint8_t* x, int64_t m, int32_t* y, int64_t strip_begin,
                              int64_t strip_end);

// The layout vnni_values must have: per block, [groups][block_n][4] with groups = ceil(block_k / 4), i.e. element
// (r, c) of a block at ((r / 4) * block_n + c) * 4 + r % 4, the padding (r >= block_k) zero. Writes
// vnni_packed_size(w) bytes to packed (stored blocks * groups * 4 * block_n; equal to values' size when
// block_k % 4 == 0).
int64_t vnni_packed_size(const BlockSparseS8& w);
void pack_s8_for_vnni(const BlockSparseS8& w, int8_t* packed);

// The instruction sets the kernels are compiled for, for tests and benchmarks that want every copy checked.
// The functions above use the widest one this CPU runs; the _with_isa forms take one of
// block_sparse_matmul_isas() ("avx512_vnni", "avx512f", "avx2", "baseline"; widest first) and return false,
// computing nothing, for a name this CPU cannot run.
std::vector<const char*> block_sparse_matmul_isas();
bool block_sparse_matmul_f32_with_isa(const char* isa, const BlockSparseF32& w, const float* x, int64_t m,
                                      const float* bias, Activation activation, float* y, int64_t strip_begin,
                                      int64_t strip_end);
bool block_sparse_matmul_u8s8_with_isa(const char* isa, const BlockSparseS8& w, const uint8_t* x, int64_t m,
                                       int32_t* y, int64_t strip_begin, int64_t strip_end);

}  // namespace hwopt::kernels
