"""The process's resident memory, and its peak while a model is loaded and run.

Linux keeps a high-water mark of the resident set (VmHWM) that can be reset by writing 5 to
/proc/self/clear_refs; resetting it just before loading the model makes the peak the model's, plus what the
process already held (reported beside it as `rss_before`). Where the reset is not possible (not Linux, or a
kernel that refuses it), the peak is the process's lifetime peak, and the report says so.
"""

from __future__ import annotations

import resource
import sys
from pathlib import Path

_STATUS = Path("/proc/self/status")
_CLEAR_REFS = Path("/proc/self/clear_refs")


def reset_peak_rss() -> bool:
    """Start a new peak from the current resident set; False where the platform cannot."""
    try:
        _CLEAR_REFS.write_text("5")
    except OSError:
        return False
    return True


def current_rss_bytes() -> int:
    return _status_bytes("VmRSS") or peak_rss_bytes()


def peak_rss_bytes() -> int:
    peak = _status_bytes("VmHWM")
    if peak:
        return peak
    # ru_maxrss: kilobytes on Linux, bytes on macOS.
    maximum = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return maximum if sys.platform == "darwin" else maximum * 1024


def _status_bytes(field: str) -> int:
    try:
        for line in _STATUS.read_text().splitlines():
            if line.startswith(f"{field}:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return 0
