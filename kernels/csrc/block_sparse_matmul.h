// The pybind11 face of the block-sparse MatMul (the kernels themselves are in core/, free of Python).
#pragma once

#include <pybind11/pybind11.h>

namespace hwopt::kernels {

// Adds block_sparse_matmul_f32, block_sparse_matmul_u8s8, pack_s8_for_vnni and block_sparse_matmul_isas to the
// extension module. They take the arrays of kernels/block_sparse.py's BlockSparseMatrix and split the output
// strips across OpenMP threads.
void bind_block_sparse_matmul(pybind11::module_& module);

}  // namespace hwopt::kernels
