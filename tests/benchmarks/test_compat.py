"""`benchmarks/compat.py`'s reading of a pytest run: errors are recorded beside failures, with
their messages, and the test run imports the installed wheel, not a checkout on `PYTHONPATH`."""

from __future__ import annotations

from compat import culprit, outcome, render, run_env

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


TRACEBACK = """\
Traceback (most recent call last):
  File "<string>", line 1, in <module>
  File "/tmp/v/lib/python3.13/site-packages/torch/_utils.py", line 957, in <module>
    P = ParamSpec("P")
  File "/tmp/v/lib/python3.13/site-packages/typing_extensions.py", line 1286, in _set_default
    type_param.__default__ = None
AttributeError: attribute '__default__' of 'typing.ParamSpec' objects is not writable
"""


def test_the_dependency_whose_code_raised_is_the_one_raised() -> None:
    # torch 2.5.0 beside typing-extensions 4.8.0 on Python 3.13: typing-extensions' code raises.
    assert culprit(TRACEBACK) == "typing-extensions"
    assert culprit(TRACEBACK.replace("typing_extensions.py", "other.py")) is None  # torch's own
    assert culprit("ModuleNotFoundError: No module named 'torch'") is None


def test_a_raised_dependency_is_shown_in_the_table() -> None:
    row = {
        "python": "3.13.0",
        "which": "lowest",
        "torch": "2.5.0",
        "numpy": "2.1.0",
        "typing-extensions": "4.12.0",
        "status": "passed",
        "summary": "1 passed",
        "raised": ["typing-extensions 4.8.0 -> 4.12.0 (AttributeError: x)"],
    }
    table = render({"runs": [row], "machine": "m", "date": "d"})
    assert (
        "| 3.13.0 | lowest | 2.5.0 | 2.1.0 | 4.12.0 | 1 passed; raised: typing-extensions " in table
    )
