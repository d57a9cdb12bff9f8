"""Bad usage of a valid model (unknown options, bad shapes, paths that cannot be read or written): exit 2."""

from __future__ import annotations

from collections.abc import Iterator

from .not_onnx import npz_bytes
from .variants import FAILURE_EXIT, MODEL, USAGE_EXIT, Subject, Variant


def bad_usage(subject: Subject) -> Iterator[Variant]:
    model = subject.data
    given = "{dir}/" + MODEL
    first_input = subject.proto().graph.input[0].name
    shape = f"{first_input}=1x3x320x320"
    cases: list[tuple[str, tuple[str, ...], dict]] = [
        ("unknown target", (given, "-o", "{out}", "--target", "tpu-9000"), {}),
        ("empty target name", (given, "-o", "{out}", "--target", ""), {}),
        ("--shape without '='", (given, "-o", "{out}", "--shape", first_input), {}),
        ("--shape without dims", (given, "-o", "{out}", "--shape", f"{first_input}="), {}),
        ("--shape without a name", (given, "-o", "{out}", "--shape", "=1x3x320x320"), {}),
        ("--shape with a letter", (given, "-o", "{out}", "--shape", f"{first_input}=1x3xax320"), {}),
        ("--shape with a zero dim", (given, "-o", "{out}", "--shape", f"{first_input}=0x3x320x320"), {}),
        ("--shape with a negative dim", (given, "-o", "{out}", "--shape", f"{first_input}=-1x3x320x320"), {}),
        ("--shape with commas", (given, "-o", "{out}", "--shape", f"{first_input}=1,3,320,320"), {}),
        ("--shape for an unknown input", (given, "-o", "{out}", "--shape", "no_such_input=1x3x320x320"), {}),
        ("--shape twice for one input", (given, "-o", "{out}", "--shape", shape, "--shape", shape), {}),
        ("--shape of the wrong rank", (given, "-o", "{out}", "--shape", f"{first_input}=1x3x320"), {}),
        ("--shape that changes a static dim", (given, "-o", "{out}", "--shape", f"{first_input}=1x4x320x320"),
         {}),
        ("the model file does not exist", ("{dir}/missing.onnx", "-o", "{out}"), {}),
        ("the model path is a folder", ("{dir}/folder.onnx", "-o", "{out}"), {"dirs": ("folder.onnx",)}),
        ("the model path is empty", ("", "-o", "{out}"), {}),
        ("an existing model.onnx in the output folder, no --force", (given, "-o", "{out}"),
         {"existing_output": {"model.onnx": b"an earlier result\n"}}),
        ("an existing report.json in the output folder, no --force", (given, "-o", "{out}"),
         {"existing_output": {"report.json": b"{}\n"}}),
        ("the output folder is the input's folder, with --force", (given, "-o", "{dir}", "--force"), {}),
        ("the output path is the input model file", (given, "-o", given, "--force"), {}),
        ("the output path is an existing file", (given, "-o", "{dir}/a-file"), {"files": {"a-file": b"x"}}),
        ("opt level O7", (given, "-o", "{out}", "-O", "7"), {}),
        ("opt level 'fast'", (given, "-o", "{out}", "-O", "fast"), {}),
        ("--threads 0", (given, "-o", "{out}", "--threads", "0"), {}),
        ("--threads -2", (given, "-o", "{out}", "--threads", "-2"), {}),
        ("--min-cosine 2", (given, "-o", "{out}", "--min-cosine", "2"), {}),
        ("--min-cosine nan", (given, "-o", "{out}", "--min-cosine", "nan"), {}),
        ("an unknown option", (given, "-o", "{out}", "--frobnicate"), {}),
        ("no arguments", (), {}),
        ("two model paths", (given, given, "-o", "{out}"), {}),
        ("--inputs file missing", (given, "-o", "{out}", "--inputs", "{dir}/missing.npz"), {}),
        ("--inputs is a text file", (given, "-o", "{out}", "--inputs", "{dir}/inputs.txt"),
         {"files": {"inputs.txt": b"1 2 3\n"}}),
        ("--inputs lacks the model's input", (given, "-o", "{out}", "--inputs", "{dir}/other.npz"),
         {"files": {"other.npz": npz_bytes()}}),
        ("--inputs is a folder", (given, "-o", "{out}", "--inputs", "{dir}"), {}),
        ("the model path is a named pipe", ("{dir}/pipe.onnx", "-o", "{out}"),
         {"fifos": ("pipe.onnx",), "exit_codes": FAILURE_EXIT}),
        ("the model path is /dev/null", ("/dev/null", "-o", "{out}"), {"exit_codes": FAILURE_EXIT}),
        ("`targets` with an unknown name", ("targets", "tpu-9000"), {}),
        ("`targets` with an unknown option", ("targets", "--frobnicate"), {}),
    ]
    for index, (what, args, extra) in enumerate(cases):
        files = dict(subject.extra_files)
        files[MODEL] = model
        files.update(extra.pop("files", {}))
        extra.setdefault("exit_codes", USAGE_EXIT)
        yield Variant(f"bad usage ({subject.name})", what, args, files, **extra)
