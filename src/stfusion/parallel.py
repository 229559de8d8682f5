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
from concurrent.futures import CancelledError
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


def scheduler_timeout() -> tuple[str, float]:
    """``STFUSION_SCHEDULER_TIMEOUT`` (default ``20s``) as given and in seconds; a value Dask
    cannot read (``30sec``) is a one-line error, not a traceback from inside Dask."""
    from dask.utils import parse_timedelta

    text = os.environ.get("STFUSION_SCHEDULER_TIMEOUT", "20s").strip() or "20s"
    try:
        seconds = float(parse_timedelta(text, default="s") or 0)
    except (KeyError, ValueError, TypeError, OverflowError):
        seconds = -1.0
    if not 1 <= seconds < 1e7:  # 20ms would end every healthy run
        raise InvalidParameterError(
            f"STFUSION_SCHEDULER_TIMEOUT={text!r}: not a duration of at least 1 s; give "
            "seconds or a number with a unit, e.g. 20, 90s or 2m."
        )
    return text, seconds


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
    _, seconds = scheduler_timeout()
    if os.path.isfile(scheduler):
        kwargs = {"scheduler_file": scheduler, "timeout": seconds}
    else:
        kwargs = {"address": scheduler, "timeout": seconds}
    try:
        return _within(seconds, lambda: Client(**kwargs), scheduler), True
    except MemoryError:  # a service that speaks first: its bytes read as a message length
        raise STFusionError(
            f"something answers at {scheduler}, but not a Dask scheduler (its first bytes "
            f"read as a message of absurd size). {advice}"
        ) from None
    except (OSError, ValueError) as exc:
        raise STFusionError(
            f"cannot reach the Dask scheduler at {scheduler} ({exc}). {advice}"
        ) from None


def _within(seconds: float, connect: Callable[[], Any], scheduler: str) -> Any:
    """``connect()`` given ``seconds`` (and 5 s more) to return: Dask's own timeout does not
    cover a peer that accepts the connection and never answers (a hung scheduler, another
    service on the port), where the client waited for ever. Run in a daemon thread, left
    behind when it overruns (the command then ends with the error)."""
    import threading

    box: dict[str, Any] = {}

    def run() -> None:
        try:
            box["client"] = connect()
        except BaseException as exc:  # handed to the caller's thread
            box["error"] = exc

    thread = threading.Thread(target=run, name="stfusion-dask-connect", daemon=True)
    thread.start()
    thread.join(seconds + 5.0)
    if thread.is_alive():
        raise STFusionError(
            f"the Dask scheduler at {scheduler} did not answer within {seconds:g} s "
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
            with _quiet_client_log():  # one that lost its scheduler logs each retry
                client.close()


def _wait_for_workers(client: Any) -> None:
    """At least one worker, within ``STFUSION_SCHEDULER_TIMEOUT`` (default 20 s; an adaptive
    cluster that starts empty may need more): a cluster without workers hung the run."""
    _, seconds = scheduler_timeout()
    try:
        client.wait_for_workers(1, timeout=seconds)
    except (TimeoutError, OSError):
        raise STFusionError(
            f"the Dask cluster at {client.scheduler.address} has no workers (waited "
            f"{seconds:g} s). Start workers (`dask worker ADDRESS`), or give an adaptive "
            "cluster longer with STFUSION_SCHEDULER_TIMEOUT=120s."
        ) from None


#: Seconds between checks that the cluster still has workers, while windows are pending.
WORKER_CHECK_S = 5.0
#: Seconds every worker may stay paused (Dask's memory pause) before the run stops.
PAUSED_LIMIT_S = 120.0


def _workers(client: Any) -> dict[str, Any]:
    """The scheduler's view of its workers, within ``STFUSION_SCHEDULER_TIMEOUT``: a
    scheduler that stopped answering (stopped, or cut off with its connection left open)
    blocked ``scheduler_info()`` for ever while the progress line said "working"."""
    _, seconds = scheduler_timeout()
    try:
        info = client.sync(client.scheduler.identity, n_workers=-1, callback_timeout=seconds)
    except (TimeoutError, OSError) as exc:
        raise STFusionError(
            f"the Dask scheduler at {client.scheduler.address} stopped answering during the "
            f"run ({type(exc).__name__}, waited {seconds:g} s, STFUSION_SCHEDULER_TIMEOUT): see "
            "its log and the network. No output was written."
        ) from None
    return dict(info.get("workers") or {})


def _paused_error(client: Any, workers: dict[str, Any]) -> STFusionError:
    limits = [w.get("memory_limit") or 0 for w in workers.values()]
    mb = f"{min(limits) / 2**20:.0f} MB" if all(limits) else "their limit"
    return STFusionError(
        f"every worker of the Dask cluster at {client.scheduler.address} has been paused for "
        f"{PAUSED_LIMIT_S:.0f} s: Dask pauses a worker whose process memory passes a share "
        "of its memory limit (distributed.worker.memory.pause, 80 % by default; the limit "
        f"here {mb}), and a worker that has "
        "loaded stfusion's kernels holds about 300 MB before any window. Start the workers "
        "with a larger --memory-limit, or give a lower --mem-limit. No output was written."
    )


def _completed(ac: Any, client: Any) -> Iterator[Any]:
    """The futures of ``ac`` as they finish, while checking that the scheduler answers and
    the cluster keeps a worker that is not paused: when every worker had died (one that
    cannot import a plugin method's package dies as it unpickles its task) or paused, the
    run waited for ever, saying "still running"."""
    import time

    checked = time.monotonic()
    paused_since: float | None = None
    while not ac.is_empty():
        batch = ac.next_batch(block=False)
        if batch:
            yield from batch
            paused_since = None
            continue
        if time.monotonic() - checked >= WORKER_CHECK_S:
            checked = time.monotonic()
            workers = _workers(client)
            paused = bool(workers) and all(w.get("status") == "paused" for w in workers.values())
            paused_since = (paused_since or checked) if paused else None
            if paused_since is not None and checked - paused_since >= PAUSED_LIMIT_S:
                raise _paused_error(client, workers)
            if not workers:
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


def spilled_bytes(method: Any) -> int:
    """Bytes of the fitted ``method``'s state kept in temporary files (spilled
    ``SpillArray`` s: FSDAF's tables of a large scene under --mem-limit)."""
    from stfusion.io.spill import SpillArray, state_arrays

    est = _estimator(method)
    state = est.state_values() if hasattr(est, "state_values") else [est]
    return sum(a.nbytes for a in state_arrays(state) if isinstance(a, SpillArray))


def _warn_spilled_state(method: WindowPredictor) -> None:
    """Scene-wide state spilled to a temporary file under --mem-limit (FSDAF's tables of a
    large scene) cannot be read by other processes: it is sent whole with the method, and
    the scheduler and every worker hold it in memory (a trial: 23.8 MB spilled, 27.2 MB
    sent), outside --mem-limit."""
    from stfusion.errors import warn

    n = spilled_bytes(method)
    if n:
        warn(
            f"{getattr(method, 'name', 'the method')}: {n / 2**20:.0f} MB of scene-wide state "
            "that --mem-limit put in a temporary file here is sent whole to the Dask scheduler "
            "and every worker, which hold it in memory on top of --mem-limit: give them "
            "memory for it (or run without --scheduler, where it stays on disk)."
        )


def _held(method: WindowPredictor) -> WindowPredictor:
    """Runs on a worker: the method, as the result every window task depends on."""
    return method


def _estimator(method: Any) -> Any:
    """The fitted method inside predict's ``CheckedWindows`` (what the runners are given)."""
    while getattr(method, "scene_", None) is None and hasattr(method, "method"):
        method = method.method
    return method


def input_files(method: Any) -> dict[str, int]:
    """Path -> size in bytes of every input file of a fitted and prepared method (pairs,
    target, masks), as the client sees them."""
    from stfusion.io.sources import wrapped

    method = _estimator(method)
    scene = getattr(method, "scene_", None)
    sources = [*scene.sources(), getattr(method, "target_", None)] if scene is not None else []
    files: dict[str, int] = {}
    for src in sources:
        for node in wrapped(src) if src is not None else ():
            mask = getattr(node, "mask", None)
            members = getattr(node, "_members", ())  # a stack of band files
            for path in (node, mask, *members):
                path = getattr(path, "path", None)
                if isinstance(path, str) and os.path.isfile(path):
                    files[path] = os.path.getsize(path)
    return files


_CHECKED: set[tuple[str, int]] = set()  # input files this worker found as the client's


def _check_files(files: dict[str, int], who: str) -> None:
    """Each input file as the client saw it, on this worker: a worker that saw another file at
    the same path (another machine's copy, an older version) predicted from it without a
    word (a trial: up to 0.21 off, exit 0)."""
    for path, size in files.items():
        if (path, size) in _CHECKED:
            continue
        try:
            here = os.path.getsize(path)
        except OSError as exc:
            raise InputFileError(
                f"{path}: not readable on Dask worker {who} ({exc.strerror or exc}): the "
                "workers must see the input files at the same paths as the client (a shared "
                "file system mounted at the same place)."
            ) from None
        if here != size:
            raise InputFileError(
                f"{path}: on Dask worker {who} it is another file ({here} bytes, the client's "
                f"{size}): the workers must see the client's files at the same paths (a shared "
                "file system, not copies). No output was written."
            )
        _CHECKED.add((path, size))


def _predict_task(
    method: WindowPredictor, window: Window, mem_limit_mb: float | None, files: dict[str, int]
) -> tuple[str, np.ndarray]:
    """Runs on a worker: which process did it, and the window's prediction, under the run's
    ``--mem-limit`` as in one process (GDAL's block cache is 5 % of the machine's memory
    otherwise: 1 GB and more of decoded strips held by each worker). ``files``:
    :func:`input_files`, checked first."""
    import rasterio.env

    who = f"{socket.gethostname()}:{os.getpid()}"
    _check_files(files, who)
    # process-wide, so that another thread's task leaving its rasterio.Env restores this
    rasterio.env.set_gdal_config("GDAL_CACHEMAX", gdal_cache_mb(mem_limit_mb) * 2**20)
    try:
        with memory_limits(mem_limit_mb):
            return who, method.predict_window(window)
    except InputFileError as exc:
        raise InputFileError(
            f"{exc} (on Dask worker {who}: the workers must see the input files at the same "
            "paths as the client, e.g. a shared file system mounted at the same place.)"
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
    from distributed.comm.core import CommClosedError

    client, owned = _client(scheduler)
    with _quiet_client_log():  # also while the client closes, trying to reconnect
        try:
            return _run(method, windows, sink, client, progress, retries)
        except (CancelledError, CommClosedError) as exc:  # the scheduler went away mid-run
            why = str(exc).splitlines()[0][:200] if str(exc) else ""
            raise STFusionError(
                f"lost the Dask scheduler at {client.scheduler.address} during the run "
                f"({type(exc).__name__}: {why}): see its log. No output was written."
            ) from None
        except RuntimeError as exc:
            if "deserializ" not in str(exc):
                raise
            import stfusion

            raise STFusionError(
                f"the Dask scheduler at {client.scheduler.address} could not read stfusion's "
                "tasks: the scheduler, like every worker, needs stfusion installed (the same "
                f"version as here, {stfusion.__version__}, and any plugin package a method "
                f"comes from). {str(exc)[:200]}. No output was written."
            ) from None
        finally:
            if owned:
                client.close()


@contextlib.contextmanager
def _quiet_client_log() -> Iterator[None]:
    """Dask's client logs every lost connection with a traceback (35-90 lines when the
    scheduler is killed): stfusion says it in one line instead."""
    import logging

    log = logging.getLogger("distributed.client")
    level = log.level
    log.setLevel(logging.CRITICAL)
    try:
        yield
    finally:
        log.setLevel(level)


def _run(
    method: WindowPredictor,
    windows: list[Window],
    sink: Sink,
    client: Any,
    progress: Callable[[int, int], None] | None,
    retries: int,
) -> dict[str, Any]:
    import time

    from distributed import KilledWorker, as_completed

    _warn_spilled_state(method)
    # A task's result, not scattered data: when the worker holding it dies, the scheduler
    # computes it again from the task; a scattered copy was lost with its worker (and
    # every window then cancelled, "already forgotten") when broadcast reached only the
    # workers up at the time.
    remote = client.submit(_held, method, pure=False)
    task_args = (current_mem_limit_mb(), input_files(method))  # the run's --mem-limit
    pending = iter(windows)
    futures: dict[str, Window] = {}
    ac = as_completed()

    def top_up(nworkers: int) -> None:  # two windows in flight per worker
        while len(futures) < 2 * max(1, nworkers):
            w = next(pending, None)
            if w is None:
                return
            fut = client.submit(_predict_task, remote, w, *task_args, retries=retries, pure=False)
            futures[fut.key] = w
            ac.add(fut)

    # Tasks first, then the wait for a worker: an adaptive cluster (minimum 0) scales up
    # for submitted tasks only, so waiting first failed on it every time.
    top_up(len(_workers(client)))
    _wait_for_workers(client)
    at_start = set(_workers(client))
    size, counted = len(at_start), time.monotonic()
    top_up(size)
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
                "out of memory? A worker holds about 300 MB with stfusion loaded, besides "
                "the --mem-limit of its windows: give each at least 500 MB more than "
                "--mem-limit (dask worker --memory-limit; a lower --mem-limit helps only "
                "above that); no output was written."
            ) from None
        fut.release()
        sink.write(arr, w)
        counts[who] = counts.get(who, 0) + 1
        done += 1
        if progress is not None:
            progress(done, len(windows))
        if time.monotonic() - counted >= WORKER_CHECK_S:  # a cluster that grew or shrank
            size, counted = len(_workers(client)), time.monotonic()
        top_up(size)
    # a worker that died mid-run: its windows were computed again elsewhere
    lost = sorted(at_start - set(_workers(client)))
    return {"workers": counts, "lost": lost}
