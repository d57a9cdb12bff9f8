#include "silu.h"

#include <pybind11/numpy.h>
#include <pybind11/stl.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <optional>
#include <string>
#include <vector>

namespace py = pybind11;

// The per-element helpers must be inlined into each ISA's loop below to be compiled for that ISA.
#if defined(__GNUC__) || defined(__clang__)
#define HWOPT_ALWAYS_INLINE inline __attribute__((always_inline))
#else
#define HWOPT_ALWAYS_INLINE inline
#endif

namespace hwopt::kernels {
namespace {

// Below this, |silu(x)| is under half the smallest denormal float, so the result rounds to -0. Clamping exp's
// argument here also keeps -inf out of the arithmetic (-inf * 0 would be NaN).
constexpr float kZeroBelow = -110.0f;

// Arrays at least this long are split across OpenMP threads in blocks of kBlock floats; smaller ones are not
// worth waking the thread pool for.
constexpr std::size_t kParallelMin = std::size_t{1} << 16;
constexpr std::size_t kBlock = std::size_t{1} << 14;

HWOPT_ALWAYS_INLINE float float_from_bits(std::uint32_t bits) {
    float value;
    std::memcpy(&value, &bits, sizeof value);
    return value;
}

HWOPT_ALWAYS_INLINE std::int32_t bits_of(float value) {
    std::int32_t bits;
    std::memcpy(&bits, &value, sizeof bits);
    return bits;
}

// e^a for a in [kZeroBelow, 0] (or NaN), written without branches or library calls so that the loops below
// vectorize: std::exp has no vector form at the baseline ISA without -ffast-math. Cephes' expf: a = n*ln2 + r with
// |r| <= ln2/2, a degree-7 polynomial for e^r (about 1 ulp), and 2^n assembled in the exponent bits.
HWOPT_ALWAYS_INLINE float exp_nonpositive(float a) {
    constexpr float kLog2e = 1.44269504088896341f;
    constexpr float kRound = 12582912.0f;  // 1.5 * 2^23: adding it rounds to an integer held in the low mantissa bits
    constexpr float kLn2Hi = 0.693359375f;  // ln 2 split in two so n * kLn2Hi is exact
    constexpr float kLn2Lo = -2.12194440e-4f;

    const float shifted = a * kLog2e + kRound;
    const float n = shifted - kRound;
    const float r = (a - n * kLn2Hi) - n * kLn2Lo;

    float p = 1.9875691500e-4f;
    p = p * r + 1.3981999507e-3f;
    p = p * r + 8.3334519073e-3f;
    p = p * r + 4.1665795894e-2f;
    p = p * r + 1.6666665459e-1f;
    p = p * r + 5.0000001201e-1f;
    p = p * r * r + r + 1.0f;

    // n lies in [-159, 0]. 2^(n + 64) is a normal float, and the final exact multiply by 2^-64 underflows gradually
    // to denormals for n < -126, as e^a itself does, instead of wrapping the exponent field.
    const std::int32_t n_int = bits_of(shifted) - bits_of(kRound);
    const float scale = float_from_bits(static_cast<std::uint32_t>(n_int + 127 + 64) << 23);
    return (p * scale) * 0x1p-64f;
}

// Only ever takes e^-|x|, which lies in (0, 1], so nothing overflows for large |x|; sigmoid(x) is then 1 / (1 + e)
// for x >= 0 and e / (1 + e) for x < 0. Both sides are computed and one selected, to stay branch-free.
HWOPT_ALWAYS_INLINE float silu_one(float x) {
    float a = -std::fabs(x);
    a = a < kZeroBelow ? kZeroBelow : a;  // a NaN compares false and stays NaN
    const float e = exp_nonpositive(a);
    const float r = 1.0f / (1.0f + e);
    const float sigmoid = x >= 0.0f ? r : e * r;
    const float y = x * sigmoid;
    return x < kZeroBelow ? -0.0f : y;
}

// The loops, compiled once per instruction set. The wheel must run on any x86-64 CPU, so the file is built for the
// baseline (SSE2: 4 floats a vector) and the wider copies are picked at run time from what the CPU reports; the
// kernel is arithmetic-bound, so 8 or 16 floats a vector is 2-4 times faster. All copies do the same IEEE operations
// in the same order (the build turns off FMA contraction), so every copy gives bit-identical results.
//
// silu_inplace_block is its own loop rather than silu_block(data, data, n): that would break __restrict, and
// without it the compiler guards the vector loop with an overlap check that an exact alias fails.
#define HWOPT_SILU_LOOPS(ISA, TARGET)                                                                       \
    TARGET void silu_block_##ISA(const float* __restrict in, float* __restrict out, std::size_t n) noexcept { \
        for (std::size_t i = 0; i < n; ++i) out[i] = silu_one(in[i]);                                        \
    }                                                                                                       \
    TARGET void silu_inplace_block_##ISA(float* data, std::size_t n) noexcept {                              \
        for (std::size_t i = 0; i < n; ++i) data[i] = silu_one(data[i]);                                    \
    }

HWOPT_SILU_LOOPS(baseline, )

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define HWOPT_X86_DISPATCH 1
HWOPT_SILU_LOOPS(avx2, __attribute__((target("avx2"))))
HWOPT_SILU_LOOPS(avx512, __attribute__((target("avx512f"))))
#endif

struct SiluLoops {
    const char* isa;
    void (*out_of_place)(const float*, float*, std::size_t) noexcept;
    void (*in_place)(float*, std::size_t) noexcept;
};

// The copies this CPU can run, widest first. __builtin_cpu_supports also checks that the OS saves the wide
// registers, not only that the CPU has them.
std::vector<SiluLoops> find_silu_loops() {
    std::vector<SiluLoops> loops;
#if defined(HWOPT_X86_DISPATCH)
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512f")) loops.push_back({"avx512f", silu_block_avx512, silu_inplace_block_avx512});
    if (__builtin_cpu_supports("avx2")) loops.push_back({"avx2", silu_block_avx2, silu_inplace_block_avx2});
#endif
    loops.push_back({"baseline", silu_block_baseline, silu_inplace_block_baseline});
    return loops;
}

const std::vector<SiluLoops>& silu_loops() {
    static const std::vector<SiluLoops> loops = find_silu_loops();  // thread-safe one-time initialization
    return loops;
}

// Runs block(offset, length) over [0, n), in parallel when OpenMP is available and n is large enough.
template <typename Block>
void for_each_block(std::size_t n, Block block) noexcept {
#if defined(_OPENMP)
    if (n >= kParallelMin) {
        const auto blocks = static_cast<std::ptrdiff_t>((n + kBlock - 1) / kBlock);
#pragma omp parallel for schedule(static)
        for (std::ptrdiff_t b = 0; b < blocks; ++b) {
            const std::size_t begin = static_cast<std::size_t>(b) * kBlock;
            block(begin, std::min(kBlock, n - begin));
        }
        return;
    }
#endif
    block(std::size_t{0}, n);
}

void run_silu(const SiluLoops& loops, const float* in, float* out, std::size_t n) noexcept {
    const auto loop = loops.out_of_place;
    for_each_block(n, [=](std::size_t begin, std::size_t length) { loop(in + begin, out + begin, length); });
}

void run_silu_inplace(const SiluLoops& loops, float* data, std::size_t n) noexcept {
    const auto loop = loops.in_place;
    for_each_block(n, [=](std::size_t begin, std::size_t length) { loop(data + begin, length); });
}

// The checks the kernels rely on, as Python exceptions that say what is wrong and how to fix it.
py::array require_float32_c_contiguous(const py::object& x, const char* function, bool writable) {
    const std::string name = std::string(function) + ": ";
    if (!py::isinstance<py::array>(x)) {
        throw py::type_error(name + "expected a numpy.ndarray of float32, got " +
                             py::repr(py::type::of(x)).cast<std::string>());
    }
    auto array = py::reinterpret_borrow<py::array>(x);
    if (!array.dtype().equal(py::dtype::of<float>())) {  // also rejects big-endian '>f4'
        throw py::type_error(name + "expected a float32 array, got " + py::str(array.dtype()).cast<std::string>() +
                             " (convert with x.astype(np.float32))");
    }
    if (!(array.flags() & py::array::c_style)) {
        throw py::value_error(name + "expected a C-contiguous array, got a strided view (a transpose, a slice "
                              "with a step, or Fortran order); pass np.ascontiguousarray(x)");
    }
    if (array.size() > 0 && reinterpret_cast<std::uintptr_t>(array.data()) % alignof(float) != 0) {
        throw py::value_error(name + "the array's data is not aligned to 4 bytes; pass x.copy()");
    }
    if (writable && !array.writeable()) {
        throw py::value_error(name + "the array is read-only; use silu(x), which returns a new array");
    }
    return array;
}

// The copy for `isa` (the widest when None); only the tests and benchmarks ask for a narrower one, so that one
// machine can check all the copies it can run.
const SiluLoops& silu_loops_for(const std::optional<std::string>& isa, const char* function) {
    const auto& loops = silu_loops();
    if (!isa) return loops.front();
    std::string names;
    for (const auto& loop : loops) {
        if (*isa == loop.isa) return loop;
        names += names.empty() ? loop.isa : std::string(", ") + loop.isa;
    }
    throw py::value_error(std::string(function) + ": isa '" + *isa + "' is not available on this CPU (" + names + ")");
}

py::array_t<float> silu_py(const py::object& x, const std::optional<std::string>& isa) {
    const SiluLoops& loops = silu_loops_for(isa, "silu");
    const py::array in = require_float32_c_contiguous(x, "silu", false);
    py::array_t<float> out(std::vector<py::ssize_t>(in.shape(), in.shape() + in.ndim()));
    const auto* src = static_cast<const float*>(in.data());
    float* dst = out.mutable_data();
    const auto n = static_cast<std::size_t>(in.size());
    {
        py::gil_scoped_release release;
        run_silu(loops, src, dst, n);
    }
    return out;
}

void silu_inplace_py(const py::object& x, const std::optional<std::string>& isa) {
    const SiluLoops& loops = silu_loops_for(isa, "silu_inplace");
    py::array data = require_float32_c_contiguous(x, "silu_inplace", true);
    auto* ptr = static_cast<float*>(data.mutable_data());
    const auto n = static_cast<std::size_t>(data.size());
    py::gil_scoped_release release;
    run_silu_inplace(loops, ptr, n);
}

std::vector<std::string> silu_isas() {
    std::vector<std::string> names;
    for (const auto& loop : silu_loops()) names.emplace_back(loop.isa);
    return names;
}

}  // namespace

void silu(const float* in, float* out, std::size_t n) noexcept { run_silu(silu_loops().front(), in, out, n); }

void silu_inplace(float* data, std::size_t n) noexcept { run_silu_inplace(silu_loops().front(), data, n); }

void bind_silu(py::module_& module) {
    module.def("silu", &silu_py, py::arg("x"), py::kw_only(), py::arg("isa") = py::none(),
               "SiLU, x * sigmoid(x), of a float32 C-contiguous array of any shape, as a new array.\n\n"
               "isa picks one of silu_isas() instead of the widest, for tests and benchmarks.");
    module.def("silu_inplace", &silu_inplace_py, py::arg("x"), py::kw_only(), py::arg("isa") = py::none(),
               "SiLU of a writable float32 C-contiguous array, written over its input; returns None.");
    module.def("silu_isas", &silu_isas,
               "The instruction sets the SiLU loops are built for and this CPU runs, widest (the default) first.");
}

}  // namespace hwopt::kernels
