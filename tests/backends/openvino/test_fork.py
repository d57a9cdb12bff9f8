import os
import sys

import pytest

pytest.importorskip("openvino")

from optimizer.backends.openvino import runtime  # noqa: E402
from optimizer.errors import RuntimeNotAvailableError  # noqa: E402
from optimizer.targets import get_target  # noqa: E402
from optimizer.targets.plan import make_plan  # noqa: E402


@pytest.mark.skipif(not hasattr(os, "fork"), reason="fork only")
def test_a_child_forked_after_openvino_ran_plans_without_it_and_is_told_why():
    runtime.core()  # OpenVINO started in this (the parent) process
    pid = os.fork()
    if pid == 0:  # the child: report through the exit code, never return into pytest
        code = 0
        try:
            if make_plan(get_target("cpu"), None, calibrated=False).backends != ("onnxruntime",):
                code = 3
            try:
                runtime.core()
                code = 4
            except RuntimeNotAvailableError as error:
                if "forked" not in str(error) or "spawn" not in str(error):
                    code = 5
        except BaseException:  # noqa: BLE001 - any surprise is a failure code
            code = 6
        sys.stdout.flush()
        os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert "openvino" in make_plan(get_target("cpu"), None, calibrated=False).backends
