"""Local worker processes that live no longer than the process that started them.

A ``ProcessPoolExecutor`` worker outlives a parent killed with SIGKILL or SIGTERM: it is
reparented to PID 1 and keeps running its task. And a parent that stops on Ctrl-C or an
error waits, on its way out, for the tasks in flight. :func:`process_pool` fixes both:
each worker watches its parent and exits when it is gone, and leaving the pool by an
exception terminates the workers instead of waiting for them.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor

#: Seconds between a worker's checks that its parent is alive.
WATCH_INTERVAL_S = 0.5


def exit_with_parent(parent: int) -> None:
    """Worker initializer: end this worker once process ``parent`` is gone.

    A daemon thread compares the parent id every :data:`WATCH_INTERVAL_S` seconds (a
    dead parent's children are reparented, so the id changes).
    """

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(WATCH_INTERVAL_S)
        os._exit(1)

    threading.Thread(target=watch, name="fluidopt-exit-with-parent", daemon=True).start()


@contextlib.contextmanager
def process_pool(workers: int) -> Iterator[ProcessPoolExecutor]:
    """A process pool whose workers end with this process.

    On a normal exit from the ``with`` block the pool shuts down as usual; on an
    exception (Ctrl-C included) pending tasks are cancelled and the workers terminated.
    """
    others = set(multiprocessing.active_children())
    pool = ProcessPoolExecutor(max_workers=workers, initializer=exit_with_parent, initargs=(os.getpid(),))
    try:
        yield pool
    except BaseException:
        pool.shutdown(wait=False, cancel_futures=True)
        for proc in set(multiprocessing.active_children()) - others:
            proc.terminate()
        raise
    pool.shutdown(wait=True)
