// Fused SiLU, y = x * sigmoid(x): one pass over memory where NumPy needs five (abs, exp, add, divide, multiply).
#pragma once

#include <cstddef>

#include <pybind11/pybind11.h>

namespace hwopt::kernels {

// The kernels proper take raw float32 buffers and know nothing of Python, so other kernels and C++ code can call
// them. `in` and `out` must not overlap; silu_inplace is the aliasing form. Any float is valid input: the result is
// finite for every finite x, silu(+inf) = +inf, silu(-inf) = -0, and NaN gives NaN.
void silu(const float* in, float* out, std::size_t n) noexcept;
void silu_inplace(float* data, std::size_t n) noexcept;

// Adds `silu(x)` and `silu_inplace(x)` for float32 C-contiguous NumPy arrays to the extension module, and
// `silu_isas()`, the instruction sets they can use on this CPU.
void bind_silu(pybind11::module_& module);

}  // namespace hwopt::kernels
