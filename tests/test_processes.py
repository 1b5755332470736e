"""The suite's check that no process outlives it (``tests/processes.py``), run on tiny sessions
in a fresh pytest: a leak fails the run and is killed, a normal run passes."""

from __future__ import annotations

import contextlib
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil

from .processes import kill_tree

ROOT = Path(__file__).resolve().parents[1]

LEAKY = """
import subprocess, pytest

@pytest.fixture(scope="session")
def daemon():
    subprocess.Popen(["sleep", "{session}"])  # started by a fixture, never ended
    yield

def test_waits_for_its_child(daemon):
    subprocess.run(["sleep", "0"], check=True)

def test_leaks_a_child():
    subprocess.Popen(["sleep", "{child}"])

def test_leaks_an_orphan():
    # the shell ends at once: its child is orphaned, out of the tree, as a killed launcher's ranks
    subprocess.run(["sh", "-c", "sleep {orphan} >/dev/null 2>&1 &"], check=True)
"""

CLEAN = """
import subprocess, torch
from torch.utils.data import DataLoader

def test_waits_for_its_child():
    subprocess.run(["sleep", "0"], check=True)

def test_persistent_workers_in_a_reference_cycle():
    loader = DataLoader(range(8), batch_size=2, num_workers=1, persistent_workers=True)
    it = iter(loader)
    next(it)
    cycle = [it]
    cycle.append(cycle)  # only the garbage collector frees the workers
"""


def _session(tmp_path: Path, code: str) -> subprocess.CompletedProcess[str]:
    (tmp_path / "test_case.py").write_text(code)
    path = os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])
    env = {**os.environ, "PYTHONPATH": path, "BSS_TEST_GRACE_S": "0.5"}
    cmd = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "tests.processes"]
    return subprocess.run(
        [*cmd, "test_case.py"], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120
    )


def _running(marker: str) -> list[psutil.Process]:
    found = []
    for proc in psutil.process_iter(["cmdline", "status"]):
        if marker in (proc.info["cmdline"] or []) and proc.info["status"] != psutil.STATUS_ZOMBIE:
            found.append(proc)
    return found


def _section(out: str, title: str) -> str:
    """The lines of pytest's report section ``title``, up to the next section (the short test
    summary after it repeats the errors' messages)."""
    body = out.split(title, 1)[1].split("\n", 1)[1]
    return body.split("\n=")[0]


def test_a_leaked_process_fails_the_test_and_the_run_and_is_killed(tmp_path: Path) -> None:
    # sleep lengths no other process uses: how the leaked processes are found afterwards
    stamp = f"{random.SystemRandom().randint(10**6, 10**7)}"
    marks = {name: f"{600 + i}.{stamp}" for i, name in enumerate(("session", "child", "orphan"))}
    result = _session(tmp_path, LEAKY.format(**marks))
    out = result.stdout
    try:
        assert result.returncode == 1, out + result.stderr
        assert "3 passed, 2 errors" in out, out
        assert "ERROR at teardown of test_leaks_a_child" in out
        assert f"sleep {marks['child']}" in out.split("test_leaks_a_child")[2]
        assert "ERROR at teardown of test_leaks_an_orphan" in out
        assert f"sleep {marks['orphan']}" in out.split("test_leaks_an_orphan")[2]
        assert "test_waits_for_its_child left" not in out
        summary = _section(out, "processes left behind")
        assert f"sleep {marks['session']}" in summary
        assert marks["child"] not in summary and marks["orphan"] not in summary
        for mark in marks.values():
            assert not _running(mark), f"sleep {mark} outlived the session"
    finally:
        for mark in marks.values():
            for proc in _running(mark):
                proc.kill()


def test_a_leaked_process_alone_fails_a_run_whose_tests_pass(tmp_path: Path) -> None:
    mark = f"600.{random.SystemRandom().randint(10**6, 10**7)}"
    code = f"import subprocess\nsubprocess.Popen(['sleep', '{mark}'])\n\ndef test_nothing():\n    pass\n"
    try:
        result = _session(tmp_path, code)  # started at import: no test to blame
        assert result.returncode == 1, result.stdout + result.stderr
        assert "1 passed" in result.stdout
        assert f"sleep {mark}" in _section(result.stdout, "processes left behind")
        assert not _running(mark)
    finally:
        for proc in _running(mark):
            proc.kill()


def test_a_normal_run_passes(tmp_path: Path) -> None:
    result = _session(tmp_path, CLEAN)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "2 passed" in result.stdout
    assert "left behind" not in result.stdout


SPAWNER = """
import subprocess, sys, time
kids = [subprocess.Popen(["sleep", "600"], start_new_session=True) for _ in range(2)]
print(*(kid.pid for kid in kids), flush=True)
time.sleep(600)
"""


def _job() -> tuple[subprocess.Popen[str], list[psutil.Process]]:
    """A launcher whose two children run in sessions of their own, as torchrun's ranks do."""
    job = subprocess.Popen(
        [sys.executable, "-c", SPAWNER], stdout=subprocess.PIPE, text=True, start_new_session=True
    )
    assert job.stdout is not None
    kids = [psutil.Process(int(pid)) for pid in job.stdout.readline().split()]
    assert len(kids) == 2 and all(kid.ppid() == job.pid for kid in kids)
    return job, kids


def test_kill_tree_kills_children_in_sessions_of_their_own() -> None:
    job, kids = _job()
    try:
        os.killpg(job.pid, signal.SIGKILL)  # the launcher's group: what the torchrun test did
        job.wait(timeout=30)
        time.sleep(0.2)
        assert all(kid.is_running() and kid.status() != psutil.STATUS_ZOMBIE for kid in kids)
    finally:
        kill_tree(kids)
        _reap(kids)
    job, kids = _job()
    kill_tree([job.pid])
    assert job.wait(timeout=30) == -signal.SIGKILL
    for kid in kids:
        assert not kid.is_running() or kid.status() == psutil.STATUS_ZOMBIE
    _reap(kids)


def _reap(procs: list[psutil.Process]) -> None:
    """Reap the dead orphans pytest adopted as the subreaper (init reaps them elsewhere)."""
    for proc in procs:
        with contextlib.suppress(ChildProcessError):
            os.waitpid(proc.pid, os.WNOHANG)
