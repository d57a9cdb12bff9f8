"""Pruning passes on the IR: unstructured, N:M, block sparsity, and structured channel removal, with recovery."""
