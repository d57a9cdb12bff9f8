// What block_sparse_matmul.cpp (the public functions, the portable loops, the choice of ISA) and
// block_sparse_matmul_x86.cpp (the SIMD tiles) share. Not part of the interface: include block_sparse_matmul.h.
#pragma once

#include <cstdint>

#include "block_sparse_matmul.h"

namespace hwopt::kernels::detail {

struct F32Problem {
    const BlockSparseF32& w;
    const float* x;
    int64_t m;
    const float* bias;
    Activation activation;
    float* y;
};

struct U8S8Problem {
    const BlockSparseS8& w;
    const uint8_t* x;
    int64_t m;
    int32_t* y;
};

// Strips [strip_begin, strip_end) with one ISA's SIMD tiles; false, touching nothing, for a block shape the tiles
// do not cover (block_n not a multiple of 4; for VNNI, block_n not a multiple of 8 or no
// packed values), which the caller then hands to the portable loops.
using F32Strips = bool (*)(const F32Problem&, int64_t strip_begin, int64_t strip_end);
using U8S8Strips = bool (*)(const U8S8Problem&, int64_t strip_begin, int64_t strip_end);

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define HWOPT_BLOCK_SPARSE_X86 1
bool f32_strips_sse2(const F32Problem& p, int64_t strip_begin, int64_t strip_end);
bool f32_strips_avx2(const F32Problem& p, int64_t strip_begin, int64_t strip_end);
bool f32_strips_avx512(const F32Problem& p, int64_t strip_begin, int64_t strip_end);
bool u8s8_strips_avx512_vnni(const U8S8Problem& p, int64_t strip_begin, int64_t strip_end);
#endif

}  // namespace hwopt::kernels::detail
