// The optimizer.kernels._native extension: one module that holds every C++ kernel.
//
// Each kernel is a <name>.cpp/<name>.h pair in this folder that exposes a bind_<name>(module) function; CMake
// compiles every .cpp here and in core/ (kernels free of Python, shared with the OpenVINO extension), so adding a
// kernel means adding its files and one bind_ call below.
#include <pybind11/pybind11.h>

#include "block_sparse_matmul.h"
#include "silu.h"

PYBIND11_MODULE(_native, module) {
    module.doc() = "hwopt's C++ kernels; call them through optimizer.kernels, which falls back to NumPy.";
#if defined(_OPENMP)
    module.attr("openmp") = true;
#else
    module.attr("openmp") = false;
#endif

    hwopt::kernels::bind_silu(module);
    hwopt::kernels::bind_block_sparse_matmul(module);
}
