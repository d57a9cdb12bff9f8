// The SIMD tiles of the block-sparse MatMul on x86-64: fp32 for SSE2 (the baseline every x86-64 CPU runs), AVX2 +
// FMA and AVX-512F, and int8 for AVX-512 VNNI. block_sparse_matmul.cpp picks one at run time from what the CPU
// reports, so the file is built without -march flags and each ISA's code is compiled under its own
// `#pragma GCC target` (the same tiles, block_sparse_f32_tiles.inc, included once per ISA).
//
// FMA is written as an intrinsic rather than left to the compiler: the project builds with -ffp-contract=off (so
// SiLU's ISA copies agree bit for bit), GCC's ISO C++ modes default to it too, and a matmul without FMA does twice
// the arithmetic instructions. The price is that the ISA copies differ in the last bits of a result (SSE2 has no
// FMA and rounds the product and the sum separately), which no caller of a matmul can rely on anyway.
#include "block_sparse_matmul_internal.h"

#if defined(HWOPT_BLOCK_SPARSE_X86)

#include <immintrin.h>

#include <algorithm>
#include <cstring>
#include <vector>

#include "vector_math.h"

namespace hwopt::kernels {

namespace sse2 {
struct Wide {
    using V = __m128;
    static constexpr int kLanes = 4;
    static constexpr int kRows[3] = {0, 12, 6};  // 16 registers: tile rows * vectors accumulators, plus W and X
    static V zero() { return _mm_setzero_ps(); }
    static V load(const float* p) { return _mm_loadu_ps(p); }
    static void store(float* p, V v) { _mm_storeu_ps(p, v); }
    static V broadcast(float f) { return _mm_set1_ps(f); }
    static V fma(V a, V b, V c) { return _mm_add_ps(_mm_mul_ps(a, b), c); }  // SSE2 has no FMA
    static V max(V a, V b) { return _mm_max_ps(a, b); }
};
using Narrow = Wide;
using Narrowest = Wide;
#include "block_sparse_f32_tiles.inc"
}  // namespace sse2

#pragma GCC push_options
#pragma GCC target("avx2,fma")
namespace avx2 {
struct Wide {
    using V = __m256;
    static constexpr int kLanes = 8;
    static constexpr int kRows[3] = {0, 12, 6};
    static V zero() { return _mm256_setzero_ps(); }
    static V load(const float* p) { return _mm256_loadu_ps(p); }
    static void store(float* p, V v) { _mm256_storeu_ps(p, v); }
    static V broadcast(float f) { return _mm256_set1_ps(f); }
    static V fma(V a, V b, V c) { return _mm256_fmadd_ps(a, b, c); }
    static V max(V a, V b) { return _mm256_max_ps(a, b); }
};
struct Narrow {
    using V = __m128;
    static constexpr int kLanes = 4;
    static constexpr int kRows[3] = {0, 12, 6};
    static V zero() { return _mm_setzero_ps(); }
    static V load(const float* p) { return _mm_loadu_ps(p); }
    static void store(float* p, V v) { _mm_storeu_ps(p, v); }
    static V broadcast(float f) { return _mm_set1_ps(f); }
    static V fma(V a, V b, V c) { return _mm_fmadd_ps(a, b, c); }
    static V max(V a, V b) { return _mm_max_ps(a, b); }
};
using Narrowest = Narrow;
#include "block_sparse_f32_tiles.inc"
}  // namespace avx2
#pragma GCC pop_options

#pragma GCC push_options
#pragma GCC target("avx512f,avx2,fma")
namespace avx512 {
struct Wide {
    using V = __m512;
    static constexpr int kLanes = 16;
    static constexpr int kRows[3] = {0, 16, 12};  // 32 registers
    static V zero() { return _mm512_setzero_ps(); }
    static V load(const float* p) { return _mm512_loadu_ps(p); }
    static void store(float* p, V v) { _mm512_storeu_ps(p, v); }
    static V broadcast(float f) { return _mm512_set1_ps(f); }
    static V fma(V a, V b, V c) { return _mm512_fmadd_ps(a, b, c); }
    // The masked form: the plain _mm512_max_ps trips GCC 12's -Wmaybe-uninitialized inside its own header.
    static V max(V a, V b) { return _mm512_mask_max_ps(a, 0xFFFF, a, b); }
};
// AVX-512F alone (no VL) reaches only 16 ymm registers, hence the AVX2 tile sizes for 8-column chunks.
using Narrow = avx2::Wide;
using Narrowest = avx2::Narrow;
#include "block_sparse_f32_tiles.inc"
}  // namespace avx512
#pragma GCC pop_options

// int8: vpdpbusd multiplies 4 unsigned bytes of X by 4 signed bytes of W and adds the 4 products to an int32
// lane, exactly (no saturation, unlike vpmaddubsw). Each lane is one output column, so W must hold 4 consecutive
// K of a column together: the layout of pack_s8_for_vnni. One 32-bit broadcast of X (4 consecutive K of a row)
// then feeds a whole vector of columns.
#pragma GCC push_options
#pragma GCC target("avx512f,avx512bw,avx512vl,avx512vnni,avx2,fma")
namespace avx512_vnni {

struct Wide {
    using V = __m512i;
    static constexpr int kLanes = 16;
    static constexpr int kRows[3] = {0, 16, 12};
    static V zero() { return _mm512_setzero_si512(); }
    static V load(const int8_t* p) { return _mm512_loadu_si512(p); }
    static void store(int32_t* p, V v) { _mm512_storeu_si512(p, v); }
    static V broadcast4(const uint8_t* p) {
        int32_t four;
        std::memcpy(&four, p, sizeof four);
        return _mm512_set1_epi32(four);
    }
    static V broadcast_partial(const uint8_t* p, int64_t count) {  // the first count (1-3) bytes, zero-extended
        uint32_t bytes = p[0];
        if (count > 1) bytes |= uint32_t{p[1]} << 8;
        if (count > 2) bytes |= uint32_t{p[2]} << 16;
        return _mm512_set1_epi32(static_cast<int32_t>(bytes));
    }
    static V dot4(V acc, V x, V w) { return _mm512_dpbusd_epi32(acc, x, w); }
};
struct Narrow {
    using V = __m256i;
    static constexpr int kLanes = 8;
    static constexpr int kRows[3] = {0, 16, 12};  // with AVX-512VL, ymm16-31 are usable too
    static V zero() { return _mm256_setzero_si256(); }
    static V load(const int8_t* p) { return _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)); }
    static void store(int32_t* p, V v) { _mm256_storeu_si256(reinterpret_cast<__m256i*>(p), v); }
    static V broadcast4(const uint8_t* p) {
        int32_t four;
        std::memcpy(&four, p, sizeof four);
        return _mm256_set1_epi32(four);
    }
    static V broadcast_partial(const uint8_t* p, int64_t count) {  // the first count (1-3) bytes, zero-extended
        uint32_t bytes = p[0];
        if (count > 1) bytes |= uint32_t{p[1]} << 8;
        if (count > 2) bytes |= uint32_t{p[2]} << 16;
        return _mm256_set1_epi32(static_cast<int32_t>(bytes));
    }
    static V dot4(V acc, V x, V w) { return _mm256_dpbusd_epi32(acc, x, w); }
};

template <class Ops, int MR, int NV>
void u8s8_tile(const detail::U8S8Problem& p, int64_t strip, int64_t col, int64_t row0) {
    using V = typename Ops::V;
    constexpr int kLanes = Ops::kLanes;
    const BlockSparseS8& w = p.w;
    V acc[MR][NV];
#pragma GCC unroll 32
    for (int i = 0; i < MR; ++i)
#pragma GCC unroll 4
        for (int v = 0; v < NV; ++v) acc[i][v] = Ops::zero();

    // block_k = 4 * full_groups + tail. A tail group (block_k not a multiple of 4) is zero-padded in the packed
    // weight, so the X bytes read past the block's K do not count and a whole 4-byte read serves, except in a tile
    // holding x's last row, where it could run past the end of x: there the bytes are read one by one.
    const int64_t full_groups = w.block_k / 4, tail = w.block_k % 4;
    const bool may_read_past_x = row0 + MR >= p.m;
    const int64_t packed_block = (full_groups + (tail != 0)) * 4 * w.block_n;
    const uint8_t* x_tile = p.x + row0 * w.k;
    for (int32_t block = w.strip_ptr[strip]; block < w.strip_ptr[strip + 1]; ++block) {
        // In the packed block, group g (K rows 4g .. 4g+3) of column c starts at byte (g * block_n + c) * 4.
        const int8_t* w_block = w.vnni_values + int64_t{block} * packed_block + col * 4;
        const uint8_t* x_block = x_tile + int64_t{w.block_rows[block]} * w.block_k;
        for (int64_t group = 0; group < full_groups; ++group) {
            V w_group[NV];
#pragma GCC unroll 4
            for (int v = 0; v < NV; ++v) w_group[v] = Ops::load(w_block + (group * w.block_n + v * kLanes) * 4);
#pragma GCC unroll 32
            for (int i = 0; i < MR; ++i) {
                const V x_four = Ops::broadcast4(x_block + i * w.k + group * 4);
#pragma GCC unroll 4
                for (int v = 0; v < NV; ++v) acc[i][v] = Ops::dot4(acc[i][v], x_four, w_group[v]);
            }
        }
        if (tail != 0) {
            V w_group[NV];
#pragma GCC unroll 4
            for (int v = 0; v < NV; ++v) w_group[v] = Ops::load(w_block + (full_groups * w.block_n + v * kLanes) * 4);
#pragma GCC unroll 32
            for (int i = 0; i < MR; ++i) {
                const uint8_t* x_tail = x_block + i * w.k + full_groups * 4;
                const V x_some = may_read_past_x ? Ops::broadcast_partial(x_tail, tail) : Ops::broadcast4(x_tail);
#pragma GCC unroll 4
                for (int v = 0; v < NV; ++v) acc[i][v] = Ops::dot4(acc[i][v], x_some, w_group[v]);
            }
        }
    }
    int32_t* y_tile = p.y + row0 * w.n + strip * w.block_n + col;
#pragma GCC unroll 32
    for (int i = 0; i < MR; ++i)
#pragma GCC unroll 4
        for (int v = 0; v < NV; ++v) Ops::store(y_tile + i * w.n + v * kLanes, acc[i][v]);
}

template <class Ops, int NV>
void u8s8_columns(const detail::U8S8Problem& p, int64_t strip, int64_t col) {
    constexpr int kRows = Ops::kRows[NV];
    int64_t row = 0;
    for (; row + kRows <= p.m; row += kRows) u8s8_tile<Ops, kRows, NV>(p, strip, col, row);
    for (; row + 4 <= p.m; row += 4) u8s8_tile<Ops, 4, NV>(p, strip, col, row);
    for (; row + 2 <= p.m; row += 2) u8s8_tile<Ops, 2, NV>(p, strip, col, row);
    for (; row < p.m; ++row) u8s8_tile<Ops, 1, NV>(p, strip, col, row);
}

}  // namespace avx512_vnni
#pragma GCC pop_options

namespace detail {

bool f32_strips_sse2(const F32Problem& p, int64_t strip_begin, int64_t strip_end) {
    return sse2::f32_strips(p, strip_begin, strip_end);
}

bool f32_strips_avx2(const F32Problem& p, int64_t strip_begin, int64_t strip_end) {
    return avx2::f32_strips(p, strip_begin, strip_end);
}

bool f32_strips_avx512(const F32Problem& p, int64_t strip_begin, int64_t strip_end) {
    return avx512::f32_strips(p, strip_begin, strip_end);
}

#pragma GCC push_options
#pragma GCC target("avx512f,avx512bw,avx512vl,avx512vnni,avx2,fma")
bool u8s8_strips_avx512_vnni(const U8S8Problem& p, int64_t strip_begin, int64_t strip_end) {
    using avx512_vnni::Narrow;
    using avx512_vnni::Wide;
    const int64_t block_n = p.w.block_n;
    if (p.w.vnni_values == nullptr || block_n % Narrow::kLanes != 0) return false;
    for (int64_t strip = strip_begin; strip < strip_end; ++strip) {
        int64_t col = 0;
        for (; col + 2 * Wide::kLanes <= block_n; col += 2 * Wide::kLanes)
            avx512_vnni::u8s8_columns<Wide, 2>(p, strip, col);
        for (; col + Wide::kLanes <= block_n; col += Wide::kLanes) avx512_vnni::u8s8_columns<Wide, 1>(p, strip, col);
        for (; col < block_n; col += Narrow::kLanes) avx512_vnni::u8s8_columns<Narrow, 1>(p, strip, col);
    }
    return true;
}
#pragma GCC pop_options

}  // namespace detail
}  // namespace hwopt::kernels

#endif  // HWOPT_BLOCK_SPARSE_X86
