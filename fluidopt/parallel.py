"""Where independent tasks run: in this process, in local worker processes, or on Dask.

Sweeps (:mod:`fluidopt.sweep`) and the capacity search (:mod:`fluidopt.capacity`) hand
batches of picklable tasks to a pool opened once with :func:`task_pool` and get each
task's result, or the exception it raised, as it finishes. Keeping one pool open across
batches matters for the capacity search, which submits a small batch per bisection
round: worker processes (and their imports) are started once, not once per round.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from contextlib import contextmanager
from typing import Any

from fluidopt.errors import FluidoptError
from fluidopt.workers import process_pool

#: Exceptions a task may raise in-process that are reported as its outcome; anything
#: else (a bug, Ctrl-C) propagates at once.
TASK_ERRORS = (FluidoptError, ValueError, RuntimeError)

Outcome = tuple[int, Any]  # (task index, result or the exception it raised)


class TaskPool:
    """A place to run tasks; :attr:`size` is how many run at once.

    Use :func:`task_pool` to get one.
    """

    size: int = 1

    def imap_unordered(self, fn: Callable[[Any], Any], tasks: Sequence[Any]) -> Iterator[Outcome]:
        """Run ``fn`` on every task; yield ``(index, result or exception)`` as each finishes."""
        for i, task in enumerate(tasks):
            try:
                yield i, fn(task)
            except TASK_ERRORS as exc:
                yield i, exc

    def map(self, fn: Callable[[Any], Any], tasks: Sequence[Any]) -> list[Any]:
        """Results (or exceptions) in task order."""
        out: list[Any] = [None] * len(tasks)
        for i, result in self.imap_unordered(fn, tasks):
            out[i] = result
        return out


class _ProcessPool(TaskPool):
    def __init__(self, executor: ProcessPoolExecutor, size: int) -> None:
        self._executor, self.size = executor, size

    def imap_unordered(self, fn: Callable[[Any], Any], tasks: Sequence[Any]) -> Iterator[Outcome]:
        index = {self._executor.submit(fn, t): i for i, t in enumerate(tasks)}
        pending = set(index)
        while pending:
            finished, pending = wait(pending, return_when=FIRST_COMPLETED)
            for fut in finished:
                exc = fut.exception()
                yield index[fut], exc if exc is not None else fut.result()


class _DaskPool(TaskPool):
    def __init__(self, client: Any) -> None:
        self._client = client
        self.size = max(1, sum(client.nthreads().values()))

    def imap_unordered(self, fn: Callable[[Any], Any], tasks: Sequence[Any]) -> Iterator[Outcome]:
        from distributed import as_completed

        index = {self._client.submit(fn, t, pure=False): i for i, t in enumerate(tasks)}
        for fut in as_completed(list(index)):
            try:
                yield index[fut], fut.result()
            except Exception as exc:  # the task's own error, re-raised by Dask
                yield index[fut], exc


@contextmanager
def task_pool(
    workers: int | None = None, scheduler: str | None = None, *, connect_timeout: float = 10.0
) -> Iterator[TaskPool]:
    """Open a pool for the duration of a ``with`` block.

    Parameters
    ----------
    workers
        Local worker processes (default: the machine's cores); 1 runs tasks in this
        process, so their exceptions keep their tracebacks.
    scheduler
        Address of a Dask distributed scheduler (``tcp://host:port``); when given, tasks
        run there and ``workers`` is ignored.
    connect_timeout
        Seconds to wait for the Dask scheduler to answer.

    Raises
    ------
    FluidoptError
        dask.distributed is not installed, or the scheduler cannot be reached.
    """
    if scheduler:
        try:
            from distributed import Client
        except ImportError:
            raise FluidoptError("--scheduler needs dask.distributed: pip install 'distributed>=2024.1'") from None
        try:
            client = Client(scheduler, timeout=connect_timeout)
        except (OSError, TimeoutError) as exc:
            raise FluidoptError(f"cannot reach the Dask scheduler at {scheduler} ({exc})") from None
        try:
            yield _DaskPool(client)
        finally:
            client.close()
        return
    size = workers or os.cpu_count() or 1
    if size <= 1:
        yield TaskPool()
        return
    # workers that end with this process (fluidopt.workers), even when it is killed
    with process_pool(size) as executor:
        yield _ProcessPool(executor, size)
