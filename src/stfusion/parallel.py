"""Running the windows of a prediction on a Dask distributed cluster.

The fitted and prepared estimator is sent to the cluster once, as the result of a task every
window depends on (so a worker that dies with it does not lose it: the scheduler computes it
again); it holds only paths, scaling and small learned state, never an open file (sources
open their file per read). Each task predicts one window and returns the array; the client
writes each result into the output as it arrives, so the output file has exactly one writer
and no lock is needed. At most ``2 x workers`` windows are in flight, which bounds the
client's memory. Kernels are deterministic, so the bytes equal those of a local run.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import re
import socket
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
from rasterio.windows import Window

from stfusion.errors import (
    InputFileError,
    InvalidParameterError,
    MissingDependencyError,
    STFusionError,
)
from stfusion.tiling import (
    Sink,
    WindowPredictor,
    current_mem_limit_mb,
    gdal_cache_mb,
    memory_limits,
)

SCHEDULER_FORMS = (
    "a scheduler address tcp://HOST:PORT (also tls://, ucx://, ws://, wss://, or HOST:PORT "
    "for tcp), or the path of an existing scheduler file (the JSON written by `dask "
    "scheduler --scheduler-file FILE`)"
)
_ADDRESS = re.compile(
    r"^(?:(?:tcp|tls|ucx|ws|wss)://)?(?:\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9_.-]+):(\d{1,5})/?$"
)


def check_scheduler(scheduler: Any) -> Any:
    """``scheduler`` if it is a usable form (an address, a scheduler file or a Client);
    InvalidParameterError naming the value and the accepted forms otherwise, and
    MissingDependencyError without dask.distributed (before any work: it was a traceback
    after the fit)."""
    try:
        found = importlib.util.find_spec("distributed") is not None
    except (ImportError, ValueError):  # a broken or blocked install
        found = False
    if not found:
        raise MissingDependencyError(
            "--scheduler (scheduler=) needs dask.distributed: pip install 'stfusion[dask]'."
        )
    if not isinstance(scheduler, str | os.PathLike):
        from distributed import Client

        if not isinstance(scheduler, Client):  # scheduler=42 was a bare TypeError
            raise InvalidParameterError(
                f"scheduler={scheduler!r}: not a scheduler address, scheduler file or "
                f"distributed.Client. Give {SCHEDULER_FORMS}."
            )
        return scheduler
    text = os.fspath(scheduler)
    if os.path.isfile(text):
        return text
    m = _ADDRESS.match(text.strip())
    if m is None or not 0 < int(m.group(1)) < 65536:
        raise InvalidParameterError(
            f"--scheduler {text!r}: not a scheduler address or scheduler file. Give "
            f"{SCHEDULER_FORMS}."
        )
    return text.strip()


def _client(scheduler: Any) -> tuple[Any, bool]:
    """A distributed Client for an address or an existing Client; (client, owned)."""
    try:
        from distributed import Client
    except ImportError:
        raise MissingDependencyError(
            "--scheduler needs dask.distributed: pip install 'stfusion[dask]'."
        ) from None
    if isinstance(scheduler, Client):
        return scheduler, False
    scheduler = check_scheduler(scheduler)
    advice = "Start one with `dask scheduler` and `dask worker ADDRESS`, or check the address."
    # Dask retries a refused connection until its timeout and then calls it a timeout
    why = "" if os.path.isfile(scheduler) else _unreachable(scheduler)
    if why:
        raise STFusionError(f"cannot reach the Dask scheduler at {scheduler}: {why}. {advice}")
    timeout = os.environ.get("STFUSION_SCHEDULER_TIMEOUT", "20s")
    if os.path.isfile(scheduler):
        kwargs = {"scheduler_file": scheduler, "timeout": timeout}
    else:
        kwargs = {"address": scheduler, "timeout": timeout}
    try:
        return _within(timeout, lambda: Client(**kwargs), scheduler), True
    except (OSError, ValueError) as exc:
        raise STFusionError(
            f"cannot reach the Dask scheduler at {scheduler} ({exc}). {advice}"
        ) from None


def _within(timeout: str, connect: Callable[[], Any], scheduler: str) -> Any:
    """``connect()`` given ``timeout`` (and 5 s more) to return: Dask's own timeout does not
    cover a peer that accepts the connection and never answers (a hung scheduler, another
    service on the port), where the client waited for ever. Run in a daemon thread, left
    behind when it overruns (the command then ends with the error)."""
    import threading

    from dask.utils import parse_timedelta

    box: dict[str, Any] = {}

    def run() -> None:
        try:
            box["client"] = connect()
        except BaseException as exc:  # handed to the caller's thread
            box["error"] = exc

    thread = threading.Thread(target=run, name="stfusion-dask-connect", daemon=True)
    thread.start()
    thread.join(float(parse_timedelta(timeout, default="s") or 0) + 5.0)
    if thread.is_alive():
        raise STFusionError(
            f"the Dask scheduler at {scheduler} did not answer within {timeout} "
            "(STFUSION_SCHEDULER_TIMEOUT): something accepts connections there but does not "
            "speak Dask's protocol, or the scheduler hangs. Check the address and the "
            "scheduler's log, or raise STFUSION_SCHEDULER_TIMEOUT."
        )
    if "error" in box:
        raise box["error"]
    return box["client"]


def _unreachable(address: str) -> str:
    """Why nothing answers at the TCP ``address`` (a name that does not resolve, a refused
    connection), found in at most 2 s; "" when something listens there, or for other
    protocols (Dask's own client tells then)."""
    m = _ADDRESS.match(address)
    if m is None or ("://" in address and not address.startswith("tcp://")):
        return ""
    host = address.split("://", 1)[-1].rstrip("/").rsplit(":", 1)[0].strip("[]")
    try:
        socket.create_connection((host, int(m.group(1))), timeout=2).close()
    except socket.gaierror:
        return f"the host name {host!r} does not resolve"
    except ConnectionRefusedError:
        return "connection refused (no scheduler listens on that port)"
    except OSError:
        return ""  # a timeout or a filtered port: Dask's client tries for longer
    return ""


@contextlib.contextmanager
def connected(scheduler: Any) -> Iterator[Any]:
    """The Dask client of a whole command, connected before any work (an unreachable
    scheduler then fails in seconds, not after the fit), closed at the end if opened here;
    None when ``scheduler`` is None."""
    if scheduler is None:
        yield None
        return
    client, owned = _client(scheduler)
    try:
        yield client
    finally:
        if owned:
            client.close()


def _wait_for_workers(client: Any) -> None:
    """At least one worker, within ``STFUSION_SCHEDULER_TIMEOUT`` (default 20 s; an adaptive
    cluster that starts empty may need more): a cluster without workers hung the run."""
    from dask.utils import parse_timedelta

    timeout = os.environ.get("STFUSION_SCHEDULER_TIMEOUT", "20s")
    try:
        client.wait_for_workers(1, timeout=parse_timedelta(timeout))
    except (TimeoutError, OSError):
        raise STFusionError(
            f"the Dask cluster at {client.scheduler.address} has no workers (waited {timeout}). "
            "Start workers (`dask worker ADDRESS`), or give an adaptive cluster longer with "
            "STFUSION_SCHEDULER_TIMEOUT=120s."
        ) from None


#: Seconds between checks that the cluster still has workers, while windows are pending.
WORKER_CHECK_S = 5.0


def _completed(ac: Any, client: Any) -> Iterator[Any]:
    """The futures of ``ac`` as they finish, while checking that the cluster keeps a worker:
    when every worker had died (one that cannot import a plugin method's package dies as it
    unpickles its task) the run waited for ever, saying "still running"."""
    import time

    checked = time.monotonic()
    while not ac.is_empty():
        batch = ac.next_batch(block=False)
        if batch:
            yield from batch
            continue
        if time.monotonic() - checked >= WORKER_CHECK_S:
            checked = time.monotonic()
            if not client.scheduler_info().get("workers"):
                try:
                    _wait_for_workers(client)
                except STFusionError:
                    raise STFusionError(
                        f"every worker of the Dask cluster at {client.scheduler.address} left "
                        "during the run, and none came back: see the workers' logs. A worker "
                        "stops when it runs out of memory, or when it cannot import the "
                        "method (a plugin's package must be installed on every worker). No "
                        "output was written."
                    ) from None
        time.sleep(0.05)


def _held(method: WindowPredictor) -> WindowPredictor:
    """Runs on a worker: the method, as the result every window task depends on."""
    return method


def _predict_task(
    method: WindowPredictor, window: Window, mem_limit_mb: float | None, client_dir: str
) -> tuple[str, np.ndarray]:
    """Runs on a worker: which process did it, and the window's prediction, under the run's
    ``--mem-limit`` as in one process (GDAL's block cache is 5 % of the machine's memory
    otherwise: 1 GB and more of decoded strips held by each worker)."""
    import rasterio.env

    who = f"{socket.gethostname()}:{os.getpid()}"
    # process-wide, so that another thread's task leaving its rasterio.Env restores this
    rasterio.env.set_gdal_config("GDAL_CACHEMAX", gdal_cache_mb(mem_limit_mb) * 2**20)
    try:
        with memory_limits(mem_limit_mb):
            return who, method.predict_window(window)
    except InputFileError as exc:
        here = os.getcwd()
        if here == client_dir:
            raise
        raise InputFileError(
            f"{exc} (on Dask worker {who}, whose working folder is {here}, not the client's "
            f"{client_dir}: relative paths are opened from each worker's folder. Give absolute "
            "paths, or start the workers in the same folder.)"
        ) from None


def run_distributed(
    method: WindowPredictor,
    windows: list[Window],
    sink: Sink,
    scheduler: Any,
    *,
    progress: Callable[[int, int], None] | None = None,
    retries: int = 1,
) -> dict[str, Any]:
    """Predict ``windows`` on the cluster at ``scheduler`` and write them into ``sink``.

    Returns ``{"workers": {process: windows done}, "lost": [addresses of the workers that
    left the cluster during the run]}``. A task that fails (a worker killed
    mid-run) is retried ``retries`` times on another worker; if it still fails the run raises
    and the caller's writer removes its temporary file, so no partial output is left.
    """
    client, owned = _client(scheduler)
    from distributed import KilledWorker, as_completed

    try:
        _wait_for_workers(client)
        at_start = set(client.scheduler_info().get("workers", {}))
        nworkers = max(1, len(at_start))
        # A task's result, not scattered data: when the worker holding it dies, the scheduler
        # computes it again from the task; a scattered copy was lost with its worker (and
        # every window then cancelled, "already forgotten") when broadcast reached only the
        # workers up at the time.
        remote = client.submit(_held, method, pure=False)
        task_args = (current_mem_limit_mb(), os.getcwd())  # the run's --mem-limit
        pending = iter(windows)
        futures = {}
        limit = 2 * nworkers
        ac = as_completed()
        for w in pending:
            fut = client.submit(_predict_task, remote, w, *task_args, retries=retries, pure=False)
            futures[fut.key] = w
            ac.add(fut)
            if len(futures) >= limit:
                break
        done = 0
        counts: dict[str, int] = {}
        if progress is not None:
            progress(0, len(windows))
        for fut in _completed(ac, client):
            w = futures.pop(fut.key)
            try:
                who, arr = fut.result()
            except KilledWorker:
                raise STFusionError(
                    f"the workers running window {w} kept dying (Dask gave up after its "
                    "distributed.scheduler.allowed-failures, default 3, worker deaths): "
                    "out of memory? Give the workers more memory or a lower --mem-limit; no "
                    "output was written."
                ) from None
            fut.release()
            sink.write(arr, w)
            counts[who] = counts.get(who, 0) + 1
            done += 1
            if progress is not None:
                progress(done, len(windows))
            nxt = next(pending, None)
            if nxt is not None:
                f2 = client.submit(
                    _predict_task, remote, nxt, *task_args, retries=retries, pure=False
                )
                futures[f2.key] = nxt
                ac.add(f2)
        # a worker that died mid-run: its windows were computed again elsewhere
        lost = sorted(at_start - set(client.scheduler_info().get("workers", {})))
        return {"workers": counts, "lost": lost}
    finally:
        if owned:
            client.close()
