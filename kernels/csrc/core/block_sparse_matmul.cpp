// The block-sparse MatMul's public functions: the choice of ISA, the portable loops that take any block shape,
// and the int8 weight packing. The SIMD tiles for the shapes that matter are in block_sparse_matmul_x86.cpp.
#include "block_sparse_matmul.h"

#include <cstring>
#include <vector>

#include "block_sparse_matmul_internal.h"
#include "vector_math.h"

namespace hwopt::kernels {
namespace {

using detail::F32Problem;
using detail::U8S8Problem;

// Any block shape, one row and one strip at a time, accumulating into y's row itself; plain loops over the block
// columns that the compiler vectorizes for whatever ISA the calling copy below targets. About as fast as the tiles
// for wide blocks, several times slower for narrow ones (block_n < 8) where the vectors are mostly empty.
HWOPT_CORE_INLINE void f32_portable(const F32Problem& p, int64_t strip_begin, int64_t strip_end) {
    const BlockSparseF32& w = p.w;
    const int64_t block_n = w.block_n, block_k = w.block_k;
    for (int64_t strip = strip_begin; strip < strip_end; ++strip) {
        const int64_t col = strip * block_n;
        for (int64_t row = 0; row < p.m; ++row) {
            float* __restrict y_row = p.y + row * w.n + col;
            for (int64_t j = 0; j < block_n; ++j) y_row[j] = p.bias != nullptr ? p.bias[col + j] : 0.0f;
            for (int32_t block = w.strip_ptr[strip]; block < w.strip_ptr[strip + 1]; ++block) {
                const float* __restrict w_block = w.values + int64_t{block} * block_k * block_n;
                const float* __restrict x_block = p.x + row * w.k + int64_t{w.block_rows[block]} * block_k;
                for (int64_t r = 0; r < block_k; ++r) {
                    const float x_value = x_block[r];
                    for (int64_t j = 0; j < block_n; ++j) y_row[j] += x_value * w_block[r * block_n + j];
                }
            }
            if (p.activation == Activation::kRelu) {
                for (int64_t j = 0; j < block_n; ++j) y_row[j] = y_row[j] < 0.0f ? 0.0f : y_row[j];  // NaN stays
            } else if (p.activation == Activation::kGelu) {
                for (int64_t j = 0; j < block_n; ++j) y_row[j] = vector_math::gelu(y_row[j]);
            }
        }
    }
}

// The int8 counterpart, on the unpacked values; exact, as every sum fits int32.
HWOPT_CORE_INLINE void u8s8_portable(const U8S8Problem& p, int64_t strip_begin, int64_t strip_end) {
    const BlockSparseS8& w = p.w;
    const int64_t block_n = w.block_n, block_k = w.block_k;
    for (int64_t strip = strip_begin; strip < strip_end; ++strip) {
        const int64_t col = strip * block_n;
        for (int64_t row = 0; row < p.m; ++row) {
            int32_t* __restrict y_row = p.y + row * w.n + col;
            for (int64_t j = 0; j < block_n; ++j) y_row[j] = 0;
            for (int32_t block = w.strip_ptr[strip]; block < w.strip_ptr[strip + 1]; ++block) {
                const int8_t* __restrict w_block = w.values + int64_t{block} * block_k * block_n;
                const uint8_t* __restrict x_block = p.x + row * w.k + int64_t{w.block_rows[block]} * block_k;
                for (int64_t r = 0; r < block_k; ++r) {
                    const int32_t x_value = x_block[r];
                    for (int64_t j = 0; j < block_n; ++j) y_row[j] += x_value * int32_t{w_block[r * block_n + j]};
                }
            }
        }
    }
}

// One copy of each portable loop per ISA, like the tiles, so that a CPU without VNNI still runs the int8 loop
// with its widest vectors.
#define HWOPT_PORTABLE_COPIES(ISA, TARGET)                                                   \
    TARGET void f32_portable_##ISA(const F32Problem& p, int64_t begin, int64_t end) {        \
        f32_portable(p, begin, end);                                                         \
    }                                                                                        \
    TARGET void u8s8_portable_##ISA(const U8S8Problem& p, int64_t begin, int64_t end) {      \
        u8s8_portable(p, begin, end);                                                        \
    }

HWOPT_PORTABLE_COPIES(baseline, )
#if defined(HWOPT_BLOCK_SPARSE_X86)
HWOPT_PORTABLE_COPIES(avx2, __attribute__((target("avx2,fma"))))
HWOPT_PORTABLE_COPIES(avx512, __attribute__((target("avx512f,avx2,fma"))))
#endif

struct IsaKernels {
    const char* name;
    detail::F32Strips f32_tiles;  // null: the portable loop for every shape
    void (*f32_any_shape)(const F32Problem&, int64_t, int64_t);
    detail::U8S8Strips u8s8_tiles;
    void (*u8s8_any_shape)(const U8S8Problem&, int64_t, int64_t);
};

// The copies this CPU runs, widest first; __builtin_cpu_supports also checks that the OS saves the wide registers.
std::vector<IsaKernels> find_isa_kernels() {
    std::vector<IsaKernels> kernels;
#if defined(HWOPT_BLOCK_SPARSE_X86)
    __builtin_cpu_init();
    const bool avx2 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    const bool avx512 = avx2 && __builtin_cpu_supports("avx512f");
    const bool vnni = avx512 && __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512vl") &&
                      __builtin_cpu_supports("avx512vnni");
    if (vnni) {
        kernels.push_back({"avx512_vnni", detail::f32_strips_avx512, f32_portable_avx512,
                           detail::u8s8_strips_avx512_vnni, u8s8_portable_avx512});
    }
    if (avx512) {
        kernels.push_back({"avx512f", detail::f32_strips_avx512, f32_portable_avx512, nullptr, u8s8_portable_avx512});
    }
    if (avx2) kernels.push_back({"avx2", detail::f32_strips_avx2, f32_portable_avx2, nullptr, u8s8_portable_avx2});
    kernels.push_back({"baseline", detail::f32_strips_sse2, f32_portable_baseline, nullptr, u8s8_portable_baseline});
#else
    kernels.push_back({"baseline", nullptr, f32_portable_baseline, nullptr, u8s8_portable_baseline});
#endif
    return kernels;
}

const std::vector<IsaKernels>& isa_kernels() {
    static const std::vector<IsaKernels> kernels = find_isa_kernels();  // thread-safe one-time initialization
    return kernels;
}

const IsaKernels* isa_named(const char* name) {
    for (const auto& kernels : isa_kernels()) {
        if (std::strcmp(kernels.name, name) == 0) return &kernels;
    }
    return nullptr;
}

void run_f32(const IsaKernels& kernels, const F32Problem& p, int64_t strip_begin, int64_t strip_end) {
    if (strip_begin >= strip_end || p.m <= 0) return;
    if (kernels.f32_tiles != nullptr && kernels.f32_tiles(p, strip_begin, strip_end)) return;
    kernels.f32_any_shape(p, strip_begin, strip_end);
}

void run_u8s8(const IsaKernels& kernels, const U8S8Problem& p, int64_t strip_begin, int64_t strip_end) {
    if (strip_begin >= strip_end || p.m <= 0) return;
    if (kernels.u8s8_tiles != nullptr && kernels.u8s8_tiles(p, strip_begin, strip_end)) return;
    kernels.u8s8_any_shape(p, strip_begin, strip_end);
}

}  // namespace

void block_sparse_matmul_f32(const BlockSparseF32& w, const float* x, int64_t m, const float* bias,
                             Activation activation, float* y, int64_t strip_begin, int64_t strip_end) {
    run_f32(isa_kernels().front(), F32Problem{w, x, m, bias, activation, y}, strip_begin, strip_end);
}

void block_sparse_matmul_u8s8(const BlockSparseS8& w, const uint8_t* x, int64_t m, int32_t* y, int64_t strip_begin,
                              int64_t strip_end) {
    run_u8s8(isa_kernels().front(), U8S8Problem{w, x, m, y}, strip_begin, strip_end);
}

bool block_sparse_matmul_f32_with_isa(const char* isa, const BlockSparseF32& w, const float* x, int64_t m,
                                      const float* bias, Activation activation, float* y, int64_t strip_begin,
                                      int64_t strip_end) {
    const IsaKernels* kernels = isa_named(isa);
    if (kernels == nullptr) return false;
    run_f32(*kernels, F32Problem{w, x, m, bias, activation, y}, strip_begin, strip_end);
    return true;
}

bool block_sparse_matmul_u8s8_with_isa(const char* isa, const BlockSparseS8& w, const uint8_t* x, int64_t m,
                                       int32_t* y, int64_t strip_begin, int64_t strip_end) {
    const IsaKernels* kernels = isa_named(isa);
    if (kernels == nullptr) return false;
    run_u8s8(*kernels, U8S8Problem{w, x, m, y}, strip_begin, strip_end);
    return true;
}

std::vector<const char*> block_sparse_matmul_isas() {
    std::vector<const char*> names;
    for (const auto& kernels : isa_kernels()) names.push_back(kernels.name);
    return names;
}

int64_t vnni_packed_size(const BlockSparseS8& w) {
    const int64_t groups = (w.block_k + 3) / 4;
    return int64_t{w.strip_ptr[w.n / w.block_n]} * groups * 4 * w.block_n;
}

void pack_s8_for_vnni(const BlockSparseS8& w, int8_t* packed) {
    const int64_t packed_block = (w.block_k + 3) / 4 * 4 * w.block_n;
    const int64_t blocks = w.strip_ptr[w.n / w.block_n];
    std::memset(packed, 0, static_cast<std::size_t>(blocks * packed_block));  // the padding rows stay zero
    for (int64_t block = 0; block < blocks; ++block) {
        const int8_t* from = w.values + block * w.block_k * w.block_n;
        int8_t* to = packed + block * packed_block;
        for (int64_t r = 0; r < w.block_k; ++r) {
            for (int64_t c = 0; c < w.block_n; ++c) to[((r / 4) * w.block_n + c) * 4 + r % 4] = from[r * w.block_n + c];
        }
    }
}

}  // namespace hwopt::kernels
