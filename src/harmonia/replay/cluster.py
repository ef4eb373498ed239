"""Run a suite's tasks on a Dask distributed cluster instead of the local process pool.

``harmonia replay SYSTEM --suite N --cluster tcp://HOST:8786`` hands each (stream, approach)
task to the workers of a Dask scheduler. The suite only needs something with the
`concurrent.futures.Executor` protocol (`harmonia.replay.suite` submits every task through
one), and ``distributed.Client.get_executor()`` is one, so the cluster is a connection and a
few checks, not a second runner.

Dask rather than Ray: the tasks are plain picklable function calls with no shared state, which
is exactly what Dask's executor protocol runs; ``distributed`` is a pure-Python wheel whose
``LocalCluster`` starts a real scheduler and worker processes in a second, so the tests run a
genuine cluster on a small machine, where Ray would add a large native runtime (its own
object store, dashboard and raylet) for no feature the suite uses.

What the workers need, which the checks here make fail early and clearly rather than task by
task: Harmonia importable in their environment, and the suite's data directory (the model
registry the tasks read) at the same path, on a shared filesystem.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable
from concurrent.futures import Executor, Future
from pathlib import Path
from typing import Any

#: seconds to wait for the scheduler, and for its first worker, before giving up
CONNECT_TIMEOUT = 10.0


class ClusterError(RuntimeError):
    """The cluster cannot run the suite: not installed, not answering, or not set up for it."""


def missing_files(paths: Iterable[str]) -> list[str]:
    """The ones of ``paths`` that are not files here (run on each worker)."""
    return [path for path in paths if not Path(path).is_file()]


def _mark(directory: str) -> Path:
    """A new file in ``directory``, of a name no one else writes: a worker that finds it
    sees this very directory, not merely one at the same path."""
    mark = Path(directory) / f".harmonia-cluster-check-{uuid.uuid4().hex}"
    mark.touch()
    return mark


class ClusterExecutor(Executor):
    """The executor of a Dask ``Client`` that also closes the client when shut down, so the
    suite can use it in a ``with`` block exactly like a ``ProcessPoolExecutor``."""

    def __init__(self, client: Any) -> None:
        self._client = client
        # pure=False: every task runs; results carry measured times and energy, which
        # Dask must not take from an earlier identical call
        self._executor: Executor = client.get_executor(pure=False)

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future[Any]:
        """Schedule ``fn(*args, **kwargs)`` on a worker."""
        return self._executor.submit(fn, *args, **kwargs)

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        """Wait for (or cancel) the submitted tasks, then disconnect from the scheduler."""
        try:
            self._executor.shutdown(wait=wait and not cancel_futures)
        finally:
            self._client.close()


def connect(
    address: str,
    *,
    shared: Iterable[str] = (),
    timeout: float | None = None,
    notes: Callable[[str], None] | None = None,
) -> ClusterExecutor:
    """An executor on the Dask scheduler at ``address`` (``tcp://host:8786``) whose workers
    all see the (existing) directories ``shared`` of this machine, at the same paths; a
    `ClusterError` naming the address otherwise.

    It waits up to ``timeout`` seconds (default `CONNECT_TIMEOUT`) for the scheduler to
    answer and for a worker to join: a scheduler without workers would hold the tasks forever.
    """
    timeout = CONNECT_TIMEOUT if timeout is None else timeout
    try:
        import distributed
    except ImportError:
        raise ClusterError(
            "--cluster needs Dask distributed: pip install 'harmonia[cluster]'"
        ) from None
    dask: Any = distributed  # untyped: its Client and the client's methods
    try:
        client = dask.Client(address, timeout=timeout, set_as_default=False)
    except (OSError, TimeoutError, ValueError) as error:
        raise ClusterError(
            f"no Dask scheduler answered at {address} within {timeout:g} s ({error})"
        ) from None
    try:
        _check(client, address, sorted(set(shared)), timeout, notes)
    except BaseException:
        client.close()
        raise
    return ClusterExecutor(client)


def _check(
    client: Any,
    address: str,
    shared: list[str],
    timeout: float,
    notes: Callable[[str], None] | None,
) -> None:
    """Fail unless a worker has joined, every worker imports Harmonia and sees ``shared``."""
    try:
        client.wait_for_workers(1, timeout=timeout)
    except TimeoutError:
        raise ClusterError(
            f"the Dask scheduler at {address} has no worker (waited {timeout:g} s): "
            "start some with `dask worker " + address + " --nthreads 1`"
        ) from None
    marks = [_mark(directory) for directory in shared]
    try:
        missing: dict[str, list[str]] = client.run(missing_files, [str(m) for m in marks])
    except Exception as error:  # the function is Harmonia's: a worker without it fails here
        raise ClusterError(
            f"the workers of {address} cannot run Harmonia's tasks ({type(error).__name__}: "
            f"{error}); install harmonia[cluster] in their environment"
        ) from None
    finally:
        for mark in marks:
            mark.unlink(missing_ok=True)
    blind = {worker: files for worker, files in missing.items() if files}
    if blind:
        worker, files = next(iter(blind.items()))
        unseen = ", ".join(str(Path(file).parent) for file in files)
        raise ClusterError(
            f"{len(blind)} of the {len(missing)} workers of {address} do not see the data "
            f"directory (e.g. {worker}: {unseen}): the workers read the model registry at "
            "the same path, so put HARMONIA_DATA_DIR on a filesystem they share"
        )
    threads = {
        worker: info.get("nthreads", 1)
        for worker, info in client.scheduler_info()["workers"].items()
    }
    if notes and any(n > 1 for n in threads.values()):
        notes(
            f"cluster: workers of {address} run several tasks in one process "
            f"({max(threads.values())} threads); retrains seed PyTorch process-wide, so "
            "results may differ from the local run: start workers with --nthreads 1"
        )
