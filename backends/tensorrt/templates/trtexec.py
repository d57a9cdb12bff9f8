"""trtexec.sh: the same engine build as build_engine.py, with NVIDIA's trtexec (placeholders: %name)."""

from __future__ import annotations

import string


class ShellTemplate(string.Template):
    delimiter = "%"  # a shell script is full of $


TRTEXEC_SH = ShellTemplate("""\
#!/bin/sh
# Build model.engine with trtexec: the settings build_engine.py reads from build_config.json, written by hwopt.
# TensorRT 10.x gets the precision flags this ONNX needs (%flags_text); 11.x has none: its networks are
# always strongly typed. Extra trtexec options pass through, e.g. on a Jetson with DLA:
#     ./trtexec.sh --useDLACore=0 --allowGPUFallback
set -e
cd "$(dirname "$0")"
TRTEXEC="${TRTEXEC:-$(command -v trtexec || echo /usr/src/tensorrt/bin/trtexec)}"
VERSION="$(python3 -c 'import tensorrt; print(tensorrt.__version__)' 2>/dev/null || echo 10)"
MAJOR="${TENSORRT_MAJOR:-${VERSION%%.*}}"
if [ "$MAJOR" -ge 11 ]; then
    PRECISION_FLAGS=""
else
    PRECISION_FLAGS="%flags"
fi
exec "$TRTEXEC" %arguments $PRECISION_FLAGS "$@"
""")
