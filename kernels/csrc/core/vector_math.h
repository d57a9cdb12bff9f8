// Branch-free, library-free exp and GELU for the kernels' vector loops.
//
// std::exp and std::erf have no vector form at the ISAs the kernels are compiled for (no -ffast-math, no libmvec),
// so a loop that calls them stays scalar and costs more than the matmul it follows. These are written as
// straight-line float arithmetic with selects, which GCC and Clang vectorize at whatever ISA the enclosing
// function targets; they must be inlined into that function to be compiled for its ISA.
#pragma once

#include <cstdint>
#include <cstring>

#if defined(__GNUC__) || defined(__clang__)
#define HWOPT_CORE_INLINE inline __attribute__((always_inline))
#else
#define HWOPT_CORE_INLINE inline
#endif

namespace hwopt::kernels::vector_math {

HWOPT_CORE_INLINE float float_from_bits(std::uint32_t bits) {
    float value;
    std::memcpy(&value, &bits, sizeof value);
    return value;
}

HWOPT_CORE_INLINE std::int32_t bits_of(float value) {
    std::int32_t bits;
    std::memcpy(&bits, &value, sizeof bits);
    return bits;
}

// e^(hi + lo) for hi + lo in [-103, 1] and |lo| small, with hi exact: the argument in two parts so that its
// rounding does not cost relative accuracy (an argument near -100 rounded to float is off by 4e-6, and so is the
// result). Cephes' expf: hi + lo = n*ln2 + r with |r| <= ln2/2, where hi - n*ln2 is exact and lo is added after,
// a degree-7 polynomial for e^r (about 1 ulp), and 2^n assembled in the exponent bits. 2^(n+64) is always a normal
// float here and the exact multiply by 2^-64 underflows gradually, so results down to the denormals stay right.
HWOPT_CORE_INLINE float exp_two_part(float hi, float lo) {
    constexpr float kLog2e = 1.44269504088896341f;
    constexpr float kRound = 12582912.0f;  // 1.5 * 2^23: adding it rounds to an integer held in the low mantissa bits
    constexpr float kLn2Hi = 0.693359375f;  // ln 2 in two parts so that n * kLn2Hi is exact
    constexpr float kLn2Lo = -2.12194440e-4f;
    const float shifted = (hi + lo) * kLog2e + kRound;
    const float n = shifted - kRound;
    const float r = ((hi - n * kLn2Hi) - n * kLn2Lo) + lo;
    float p = 1.9875691500e-4f;
    p = p * r + 1.3981999507e-3f;
    p = p * r + 8.3334519073e-3f;
    p = p * r + 4.1665795894e-2f;
    p = p * r + 1.6666665459e-1f;
    p = p * r + 5.0000001201e-1f;
    p = p * r * r + r + 1.0f;
    const std::int32_t n_int = bits_of(shifted) - bits_of(kRound);
    const float scale = float_from_bits(static_cast<std::uint32_t>(n_int + 127 + 64) << 23);
    return (p * scale) * 0x1p-64f;
}

// erfc(s / sqrt 2) for s >= 0, to a few 1e-7 relative everywhere, also in the far tail where 1 - erf would keep no
// digit: the Chebyshev fit erfc(a) = t * exp(-a^2 + P(t)), t = 1 / (1 + a/2), of Numerical Recipes (erfcc, fit
// error under 1.2e-7 relative), evaluated in float. It takes s rather than a = s / sqrt 2 because rounding a would
// cost 2 a^2 * 6e-8 relative (1e-5 at a = 9): a^2 = s^2 / 2 is formed from s itself, as s_hi^2 / 2 (s_hi: s's top
// 12 significant bits, so the square is exact) plus a small rest, for exp_two_part. Past a = 10, erfc is below
// the smallest denormal.
HWOPT_CORE_INLINE float erfc_of_scaled(float s) {
    constexpr float kInvSqrt2 = 0.70710678118654752f;
    s = s < 14.0f ? s : 14.0f;  // keeps t away from 0 and the exp argument bounded; NaN compares false -> 14
    const float t = 1.0f / (1.0f + 0.5f * kInvSqrt2 * s);
    float p = 0.17087277f;
    p = p * t - 0.82215223f;
    p = p * t + 1.48851587f;
    p = p * t - 1.13520398f;
    p = p * t + 0.27886807f;
    p = p * t - 0.18628806f;
    p = p * t + 0.09678418f;
    p = p * t + 0.37409196f;
    p = p * t + 1.00002368f;
    p = p * t - 1.26551223f;
    const float s_hi = float_from_bits(static_cast<std::uint32_t>(bits_of(s)) & 0xFFFFF000u);
    const float rest = 0.5f * ((s - s_hi) * (s + s_hi));  // s^2 / 2 - s_hi^2 / 2, small
    return t * exp_two_part(-(0.5f * (s_hi * s_hi)), p - rest);
}

// GELU, exact (erf) form, as ONNX's Gelu: 0.5 * x * (1 + erf(x / sqrt 2)) = 0.5 * x * erfc(-x / sqrt 2). The erfc
// form keeps full relative accuracy for negative x, where 1 + erf cancels. NaN gives NaN, -inf gives -0, +inf
// gives +inf.
HWOPT_CORE_INLINE float gelu(float x) {
    const float tail = erfc_of_scaled(x >= 0.0f ? x : -x);  // erfc(|x| / sqrt 2)
    const float erfc_z = x <= 0.0f ? tail : 2.0f - tail;    // erfc(-x / sqrt 2)
    const float y = 0.5f * x * erfc_z;
    // erfc_of_scaled maps NaN to a number, so NaN is passed through here; below -14 the true value is under
    // 1e-43 and the clamped erfc would overstate it, so it is rounded to -0 (as the product would underflow to).
    const float y_or_nan = x != x ? x : y;
    return x < -14.0f ? -0.0f : y_or_nan;
}

}  // namespace hwopt::kernels::vector_math
