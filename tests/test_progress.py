import argparse
import io

from optimizer.progress import ProgressBar, progress_for, report_progress, showing


def test_a_bar_redraws_one_line_per_stage_and_ends_it():
    stream = io.StringIO()
    bar = ProgressBar(stream, enabled=True)
    with showing(bar):
        report_progress("calibrating", 0.5)
        report_progress("calibrating", 1.0)
        report_progress("accuracy search", 1.0)
    text = stream.getvalue()
    assert "calibrating" in text and "100%" in text and "accuracy search" in text
    assert text.count("\n") == 2  # one line per stage, each ended


def test_progress_outside_a_command_goes_nowhere():
    report_progress("calibrating", 0.5)  # no bar showing: nothing happens, nothing fails


def test_no_bar_for_scripts():
    assert progress_for(argparse.Namespace(quiet=True, json=False)) is None
    assert progress_for(argparse.Namespace(quiet=False, json=True)) is None
    assert progress_for(argparse.Namespace(quiet=False, json=False)) is None  # pytest's stderr is no terminal
    stream = io.StringIO()
    ProgressBar(stream)("stage", 0.5)
    assert stream.getvalue() == ""
