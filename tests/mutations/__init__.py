"""Broken variants of a real ONNX model, for testing that the CLI fails cleanly (tests/test_cli_robustness.py).

Each generator yields `Variant`s: the files to lay out in a fresh folder, the command line to run on them and the
exit codes allowed. Every variant is meant to be invalid:

- by construction where a rule of ONNX is broken on purpose (a node reads a tensor nobody produces, a required
  attribute is gone, weights are shorter than their dims say, external data points outside the model's folder);
- by the oracle otherwise: a random truncation or a byte changed in the protobuf structure may still leave a
  model that loads. Such variants carry `oracle=<subject name>`; the runner first tries them in ONNX Runtime
  and drops the ones it can load and run, so that only broken models are held against hwopt.

Byte-level corruption only touches the protobuf structure (tags, lengths, varints, names), never the weight
payloads (`raw_data` and friends): a weight with a flipped bit is still a valid model.

Argument templates use `{dir}` (the variant's folder, which holds its files) and `{out}` (an output folder that
does not exist yet, unless `existing_output` says otherwise).

The generators, one module per kind of damage:

- byte_damage: truncations, garbage, corrupted_structure (on top of wire_format, the protobuf layout)
- not_onnx: files that are no ONNX model at all
- semantic (and semantic_graph): rules of ONNX broken in the main graph
- subgraphs: broken `If` branches (silero_subgraphs)
- external_data: the weights file missing, short or out of bounds
- bad_usage: bad command lines on a valid model
"""

from .bad_usage import bad_usage
from .byte_damage import corrupted_structure, garbage, truncations
from .external_data import external_data, with_external_data
from .not_onnx import not_onnx
from .semantic import semantic
from .subgraphs import silero_subgraphs
from .variants import DATA, FAILURE_EXIT, MODEL, USAGE_EXIT, Subject, Variant

__all__ = ["DATA", "FAILURE_EXIT", "MODEL", "USAGE_EXIT", "Subject", "Variant", "bad_usage", "corrupted_structure",
           "external_data", "garbage", "not_onnx", "semantic", "silero_subgraphs", "truncations",
           "with_external_data"]
