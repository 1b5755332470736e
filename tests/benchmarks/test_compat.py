"""`benchmarks/compat.py`'s reading of a pytest run: errors are recorded beside failures, with
their messages, and the test run imports the installed wheel, not a checkout on `PYTHONPATH`."""

from __future__ import annotations

from compat import outcome, run_env

STDOUT = """\
....F.E                                                                  [100%]
=========================== short test summary info ============================
FAILED /work/x/tests/test_checks.py::test_real[value1-np.False_ - bad] - AssertionError: no
ERROR ../../work/x/tests/test_distributed.py::test_two_ranks[LearnedBalanceSampler] - subprocess.TimeoutExpired: timed out
ERROR /work/x/tests/test_smv.py
1 failed, 4 passed, 1 warning, 2 errors in 3.21s
"""


def test_errors_are_recorded_with_the_failures_and_their_messages() -> None:
    got = outcome(STDOUT)
    assert got["summary"] == "1 failed, 4 passed, 1 warning, 2 errors"
    assert got["failures"] == [
        "tests/test_checks.py::test_real[value1-np.False_ - bad]",
        "tests/test_distributed.py::test_two_ranks[LearnedBalanceSampler]",
        "tests/test_smv.py",
    ]
    assert got["details"] == [
        "FAILED tests/test_checks.py::test_real[value1-np.False_ - bad]: AssertionError: no",
        "ERROR tests/test_distributed.py::test_two_ranks[LearnedBalanceSampler]: "
        "subprocess.TimeoutExpired: timed out",
        "ERROR tests/test_smv.py: ",
    ]


def test_the_test_run_does_not_inherit_a_checkout_on_pythonpath() -> None:
    env = run_env({"PYTHONPATH": "/work/checkout", "PATH": "/bin"})
    assert env == {"PATH": "/bin", "BSS_SAMPLER_INSTALLED": "1", "MPLBACKEND": "Agg"}
