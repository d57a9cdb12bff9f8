"""NumPy references for the C++ kernels.

Each function here states what its kernel computes, in plain NumPy: the tests hold the native code to it, and
`optimizer.kernels` falls back to it when the extension is not built. They favour clarity over speed, but are
numerically careful, since a reference that overflows cannot judge a kernel that does not.
"""

from __future__ import annotations

import numpy as np


def silu_reference(x: np.ndarray) -> np.ndarray:
    """SiLU, x * sigmoid(x), in x's floating dtype; finite for all finite x, -0.0 at -inf, NaN for NaN.

    exp is only ever taken of -|x|, which lies in (0, 1], so large |x| cannot overflow it: sigmoid(x) is
    1 / (1 + e) for x >= 0 and e / (1 + e) for x < 0, with e = exp(-|x|).
    """
    x = np.asarray(x)
    if not np.issubdtype(x.dtype, np.floating):
        raise TypeError(f"silu_reference: expected a floating-point array, got {x.dtype}")
    e = np.exp(-np.abs(x))
    sigmoid = np.where(x >= 0, 1 / (1 + e), e / (1 + e))
    with np.errstate(invalid="ignore"):  # -inf * 0, replaced below by the limit
        y = x * sigmoid
    return np.where(x == -np.inf, np.asarray(-0.0, dtype=x.dtype), y)
