"""Keeps the repository root off sys.path for every test and benchmark.

`python -m pytest` puts the working directory first on sys.path. From the repository root that makes the
top-level `kernels/` folder shadow PyPI's `kernels`, which transformers imports while loading MiniLM for the zoo
export ("cannot import name 'CUDAProperties' from 'kernels'"). hwopt itself is imported from its installed
(editable) mapping, where the folder is `optimizer.kernels`, so nothing needs the root on the path.
"""

import os
import sys

_ROOT = os.path.dirname(os.path.abspath(__file__))
sys.path[:] = [entry for entry in sys.path if os.path.abspath(entry or os.curdir) != _ROOT]
