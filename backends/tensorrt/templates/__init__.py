"""The files of a TensorRT bundle, kept as real files: `build_engine.py` is copied into the bundle as it is
(its settings travel in build_config.json); `readme.py` and `trtexec.py` hold the README and trtexec.sh as
string.Template text, as Python modules so that installing hwopt keeps them (setup.py packages .py files)."""
