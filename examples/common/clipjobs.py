"""Run one preparation job per clip, in parallel, and account for every clip.

A job is a module-level function of one task (picklable, so it can run in a worker process)
that writes the clip's outputs atomically (`examples.common.atomic`) and returns an
:class:`Outcome`: ``written`` (it wrote something), ``done`` (every output already existed: a
resumed run rewrites nothing) or ``bad`` (with the reason). An exception raised by the job makes
the clip ``bad`` with the exception as reason; other clips go on. Outcomes come back in the
order of the tasks, whatever the number of workers.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass
from typing import Generic, Protocol, TypeVar

from examples.common.runtime import progress

__all__ = ["Outcome", "Task", "run_clips"]


class Task(Protocol):
    """What a job gets: at least the clip's name."""

    @property
    def clip(self) -> str: ...


T = TypeVar("T", bound=Task)


@dataclass(frozen=True)
class Outcome:
    """What a job did with one clip; ``frames`` counts the frames the clip has on disk."""

    clip: str
    status: str  # "written", "done" or "bad"
    reason: str = ""
    frames: int = 0


@dataclass
class _Call(Generic[T]):
    job: Callable[[T], Outcome]

    def __call__(self, task: T) -> Outcome:
        try:
            return self.job(task)
        except Exception as err:  # a clip that cannot be read must not stop the others
            return Outcome(task.clip, "bad", f"{type(err).__name__}: {err}".strip())


def run_clips(
    job: Callable[[T], Outcome],
    tasks: Sequence[T],
    *,
    workers: int = 1,
    desc: str = "clips",
    show_progress: bool = True,
) -> list[Outcome]:
    """``job(task)`` for every task (``workers`` processes; 1: in this process), with a tqdm
    progress bar; the outcomes in the order of ``tasks``."""
    if workers < 1:
        raise ValueError(f"workers must be >= 1, got {workers}")
    call = _Call(job)
    if workers == 1 or len(tasks) <= 1:
        return [call(t) for t in progress(tasks, enabled=show_progress, desc=desc)]
    outcomes: list[Outcome | None] = [None] * len(tasks)
    pool = ProcessPoolExecutor(max_workers=min(workers, len(tasks)))
    try:
        futures = {pool.submit(call, task): i for i, task in enumerate(tasks)}
        done = as_completed(futures)
        for future in progress(done, enabled=show_progress, desc=desc, total=len(tasks)):
            outcomes[futures[future]] = future.result()
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
    return [o for o in outcomes if o is not None]
