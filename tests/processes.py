"""No process the test suite starts outlives it: a pytest plugin and the helper that kills a job.

The plugin (loaded by ``tests/conftest.py``; ``-p tests.processes`` loads it elsewhere):

* makes the pytest process a *child subreaper* (Linux): a process whose parent dies (a rank of a
  killed ``torchrun``, a DataLoader worker of a killed rank) is adopted by pytest instead of by
  PID 1, so it stays a descendant of pytest and cannot escape the checks below;
* after each test (its fixtures torn down) for what the test started, and at the end of the
  session (every fixture torn down) for everything, runs the garbage collector (a DataLoader
  iterator in a reference cycle ends its workers when collected), gives what it finds
  ``GRACE_S`` seconds to end, then SIGKILLs what is still alive and fails: the test with an
  error at teardown, the session with a non-zero exit status; both name each leftover
  process's pid and command line.

Not counted: processes that were already children of pytest when it started, zombies (dead, not
yet reaped) and multiprocessing's resource tracker and fork server, which end with pytest.
On a system without ``PR_SET_CHILD_SUBREAPER`` an orphaned process is not seen.
"""

from __future__ import annotations

import contextlib
import ctypes
import gc
import os
import signal
import sys
import time
from collections.abc import Iterable, Iterator

import psutil
import pytest

# How long a process may take to end after its test (a DataLoader worker that is told to stop
# ends within its 5 s status check); the plugin's own tests shorten it.
GRACE_S = float(os.environ.get("BSS_TEST_GRACE_S", "5"))
_PR_SET_CHILD_SUBREAPER = 36  # from <linux/prctl.h>

_known: set[int] = set()  # descendants that were there before the first test
_leftovers = pytest.StashKey[list[str]]()


def _alive(proc: psutil.Process) -> bool:
    try:
        return proc.status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def _multiprocessing_helpers() -> set[int]:
    """The pids of multiprocessing's resource tracker and fork server, if running: both end when
    pytest ends, and a test that uses them legitimately leaves them running."""
    pids = set()
    for module, name in (("resource_tracker", "_resource_tracker"), ("forkserver", "_forkserver")):
        helper = getattr(sys.modules.get(f"multiprocessing.{module}"), name, None)
        pid = getattr(helper, "_pid", None) or getattr(helper, "_forkserver_pid", None)
        if isinstance(pid, int):
            pids.add(pid)
    return pids


def descendants() -> list[psutil.Process]:
    """The live descendants of this process that the checks count."""
    skip = _known | _multiprocessing_helpers()
    return [p for p in psutil.Process().children(recursive=True) if p.pid not in skip and _alive(p)]


def describe(proc: psutil.Process) -> str:
    """``pid 123 (parent 45): python -u train.py --out ...``, the command line cut at 300
    characters."""
    try:
        with proc.oneshot():
            line = " ".join(proc.cmdline()) or proc.name()
            return f"pid {proc.pid} (parent {proc.ppid()}): {line[:300]}"
    except psutil.NoSuchProcess:
        return f"pid {proc.pid}: ended while being described"


def kill_tree(roots: Iterable[psutil.Process | int], timeout: float = 30.0) -> None:
    """SIGKILL every process of ``roots`` and all their descendants, and wait until each is gone.

    Every process is stopped (SIGSTOP) first, the tree listed again until no new process appears,
    so none forks another between the listing and the kill, whatever session or process group
    it runs in. A zombie counts as gone: its parent (or pytest, the subreaper) reaps it.

    Raises:
        RuntimeError: a process still runs ``timeout`` seconds after its SIGKILL.
    """
    todo = []
    for root in roots:
        try:
            todo.append(root if isinstance(root, psutil.Process) else psutil.Process(root))
        except psutil.NoSuchProcess:
            continue
    with _sigchld_blocked():  # a DataLoader's SIGCHLD handler raises when one of its workers dies
        frozen: dict[int, psutil.Process] = {}
        while todo:
            proc = todo.pop()
            if proc.pid in frozen:
                continue
            try:
                proc.suspend()
                frozen[proc.pid] = proc
                todo.extend(proc.children())
            except psutil.NoSuchProcess:
                continue
        for proc in frozen.values():
            with contextlib.suppress(psutil.NoSuchProcess):
                proc.kill()
        deadline = time.monotonic() + timeout
        while alive := [p for p in frozen.values() if _alive(p)]:
            if time.monotonic() > deadline:
                raise RuntimeError(
                    "still running after SIGKILL: " + "; ".join(map(describe, alive))
                )
            time.sleep(0.02)


@contextlib.contextmanager
def _sigchld_blocked() -> Iterator[None]:
    """Hold SIGCHLD until the block ends, so that no Python signal handler interrupts it."""
    if not hasattr(signal, "pthread_sigmask"):
        yield
        return
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGCHLD})
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)


def _left_behind(before: frozenset[psutil.Process] = frozenset()) -> list[str]:
    """Wait up to ``GRACE_S`` for the counted descendants not in ``before`` to end; SIGKILL and
    describe the rest."""
    if not set(descendants()) - before:
        return []
    gc.collect()
    deadline = time.monotonic() + GRACE_S
    while (alive := set(descendants()) - before) and time.monotonic() < deadline:
        time.sleep(0.05)
    found = [describe(p) for p in sorted(alive, key=lambda p: p.pid)]
    kill_tree(alive)
    return found


def pytest_configure(config: pytest.Config) -> None:
    if sys.platform.startswith("linux"):
        libc = ctypes.CDLL(None, use_errno=True)
        if libc.prctl(_PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0:
            raise OSError(ctypes.get_errno(), "prctl(PR_SET_CHILD_SUBREAPER) failed")
    _known.update(p.pid for p in psutil.Process().children(recursive=True))


@pytest.fixture(autouse=True)
def _no_process_left_behind(request: pytest.FixtureRequest) -> Iterator[None]:
    """Fail the test (at teardown) if a process it started is still running after it."""
    before = frozenset(descendants())  # those of wider-scoped fixtures: checked at the end
    yield
    found = _left_behind(before)
    if found:
        pytest.fail(
            f"{request.node.nodeid} left {len(found)} process(es) running (now killed):\n"
            + "\n".join(found),
            pytrace=False,
        )


@pytest.hookimpl(trylast=True)  # after the runner's own teardown of the remaining fixtures
def pytest_sessionfinish(session: pytest.Session) -> None:
    found = _left_behind()
    session.config.stash[_leftovers] = found
    if found and session.exitstatus == pytest.ExitCode.OK:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    found = terminalreporter.config.stash.get(_leftovers, [])
    if found:
        terminalreporter.section("processes left behind", sep="=", red=True, bold=True)
        terminalreporter.line(
            f"{len(found)} process(es) started by the test session were still running at its "
            "end (now killed); the run fails:",
            red=True,
        )
        for line in found:
            terminalreporter.line(line)
