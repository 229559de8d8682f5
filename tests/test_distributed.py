"""The same windows on a 2-process Dask LocalCluster: same bytes, work really done there."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import rasterio
import rasterio.env
from rasterio.windows import Window

distributed = pytest.importorskip("distributed")

from conftest import predict_args, run_cli_ok  # noqa: E402
from stfusion.cli import main  # noqa: E402


@pytest.fixture(scope="module")
def cluster() -> Iterator[Any]:
    from distributed import LocalCluster

    with LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None, silence_logs=40
    ) as c:
        yield c


def _args(s: dict[str, Path], out: Path, *extra: str) -> list[str]:
    return predict_args(s, out, "--mem-limit", "0.05", "-q", *extra)


def test_cluster_gives_same_bytes_as_local(
    small_tifs: dict[str, Path], tmp_path: Path, cluster: object
) -> None:
    local, remote = tmp_path / "local.tif", tmp_path / "remote.tif"
    _run(_args(small_tifs, local))
    _run(_args(small_tifs, remote, "--scheduler", cluster.scheduler_address))
    with rasterio.open(local) as a, rasterio.open(remote) as b:
        assert a.read().tobytes() == b.read().tobytes()
        assert a.transform == b.transform and a.crs == b.crs


def test_cluster_really_did_the_work(small_tifs: dict[str, Path], cluster: object) -> None:
    from distributed import Client

    from stfusion.methods.starfm import STARFM

    est = STARFM(window=7).fit([(small_tifs["f1"], small_tifs["c1"])])
    with Client(cluster.scheduler_address) as client:
        pred = est.predict(small_tifs["c2"], window_size=10, scheduler=client)
        pids = {w.split(":")[1] for w in est.last_run_["workers"]}
        assert sum(est.last_run_["workers"].values()) == 16
        assert str(os.getpid()) not in pids and len(pids) >= 1
        assert len(client.scheduler_info()["workers"]) == 2
    np.testing.assert_array_equal(pred.values, est.predict(small_tifs["c2"]).values)


def test_unreachable_scheduler_fails_cleanly(
    small_tifs: dict[str, Path],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("STFUSION_SCHEDULER_TIMEOUT", "2")  # a unit in the message (a trial)
    out = tmp_path / "o.tif"
    with pytest.raises(SystemExit) as exc:
        main(_args(small_tifs, out, "--scheduler", "tcp://127.0.0.1:9"))
    assert exc.value.code == 1
    assert "cannot reach the Dask scheduler" in capsys.readouterr().err
    assert not out.exists() and not list(tmp_path.glob("*partial*"))


@pytest.mark.parametrize(
    ("address", "why"),
    [
        ("tcp://127.0.0.1:9", "connection refused"),
        ("tcp://no-such-host.invalid:8786", "'no-such-host.invalid' does not resolve"),
    ],
)
def test_unreachable_scheduler_says_why_before_any_work(
    address: str, why: str, small_tifs: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A refused connection or a name that does not resolve is said as such, before the fit
    (Dask retried until its 20 s timeout, after the fit, and called both a timeout)."""
    from stfusion.api import run_prediction
    from stfusion.errors import STFusionError
    from stfusion.methods.base import FusionMethod

    def no_fit(*a: object, **k: object) -> None:
        raise AssertionError("fitted before connecting")

    monkeypatch.setattr(FusionMethod, "fit", no_fit)
    monkeypatch.setenv("STFUSION_SCHEDULER_TIMEOUT", "60s")  # the reason comes without it
    pairs = [(small_tifs["f1"], small_tifs["c1"])]
    with pytest.raises(STFusionError, match=why):
        run_prediction(
            method="starfm", pairs=pairs, target=small_tifs["c2"], out="o.tif", scheduler=address
        )


def test_a_peer_that_never_answers_is_given_the_timeout(
    small_tifs: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Something that accepts the connection and never speaks Dask (a hung scheduler, another
    service on the port): Dask's client waited for ever, whatever STFUSION_SCHEDULER_TIMEOUT
    said. Now the command ends with an error naming the setting."""
    import socket

    from stfusion.api import run_prediction
    from stfusion.errors import STFusionError

    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(5)
        address = f"tcp://127.0.0.1:{listener.getsockname()[1]}"
        monkeypatch.setenv("STFUSION_SCHEDULER_TIMEOUT", "1s")
        pairs = [(small_tifs["f1"], small_tifs["c1"])]
        with pytest.raises(STFusionError, match="did not answer within 1 s"):
            run_prediction(
                method="starfm",
                pairs=pairs,
                target=small_tifs["c2"],
                out="o.tif",
                scheduler=address,
            )


def test_worker_in_another_folder_reads_the_clients_files(
    small_tifs: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Relative input paths were opened from each worker's own folder, so a worker started
    elsewhere failed (with a message saying so); sources now hold the absolute paths of the
    files they opened, so such a worker reads the client's files."""
    from stfusion import parallel
    from stfusion.errors import InputFileError
    from stfusion.methods.starfm import STARFM
    from stfusion.parallel import _predict_task, input_files

    monkeypatch.chdir(small_tifs["f1"].parent)
    est = STARFM(window=7).fit([(small_tifs["f1"].name, small_tifs["c1"].name)])
    est.prepare(small_tifs["c2"].name)
    window = Window(0, 0, 10, 10)
    files = input_files(est)
    assert sorted(files) == sorted(str(small_tifs[k]) for k in ("f1", "c1", "c2"))
    # as the runners get it from predict: wrapped (a trial found the check empty then)
    from stfusion.tiling import CheckedWindows

    assert input_files(CheckedWindows(est, 2, "starfm")) == files
    assert _predict_task(est, window, None, files)[1].shape == (2, 10, 10)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)  # the worker's folder
    assert _predict_task(est, window, None, files)[1].shape == (2, 10, 10)
    # a worker that sees another file at the path (a trial: 0.21 off, exit 0, no word)
    monkeypatch.setattr(parallel, "_CHECKED", set())
    other = {**files, str(small_tifs["c2"]): files[str(small_tifs["c2"])] + 1}
    with pytest.raises(InputFileError, match=r"on Dask worker .* it is another file"):
        _predict_task(est, window, None, other)


def test_workers_keep_gdal_cache_under_the_limit(
    small_tifs: dict[str, Path], tmp_path: Path, cluster: object
) -> None:
    """--mem-limit reaches the workers: GDAL's block cache there is the run's share (32 MB at
    the least), not 5 % of the machine's memory (measured 1 GB of cached strips per worker)."""
    from distributed import Client

    _run(_args(small_tifs, tmp_path / "o.tif", "--scheduler", cluster.scheduler_address))
    with Client(cluster.scheduler_address) as client:
        caches = client.run(lambda: rasterio.env.get_gdal_config("GDAL_CACHEMAX"))
    assert caches and all(int(v) == 32 * 2**20 for v in caches.values()), caches


def test_cluster_without_workers_fails_cleanly(
    small_tifs: dict[str, Path],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A scheduler with no worker (an adaptive cluster not yet scaled up): a clear error after
    STFUSION_SCHEDULER_TIMEOUT, no output. The run hung."""
    from distributed import LocalCluster

    monkeypatch.setenv("STFUSION_SCHEDULER_TIMEOUT", "2")  # a unit in the message (a trial)
    out = tmp_path / "o.tif"
    with LocalCluster(n_workers=0, processes=True, dashboard_address=None) as empty:
        with pytest.raises(SystemExit) as exc:
            main(_args(small_tifs, out, "--scheduler", empty.scheduler_address))
    assert exc.value.code == 1
    assert "has no workers (waited 2 s)" in capsys.readouterr().err
    assert not out.exists() and not list(tmp_path.glob("*partial*"))


def test_adaptive_cluster_that_starts_empty_runs(
    small_tifs: dict[str, Path], tmp_path: Path
) -> None:
    """An adaptive cluster with minimum 0 (dask-jobqueue's usual set-up) scales up for
    submitted tasks only: waiting for a worker before submitting failed on it every time."""
    from distributed import LocalCluster

    out = tmp_path / "o.tif"
    with LocalCluster(
        n_workers=0, threads_per_worker=1, processes=True, dashboard_address=None, silence_logs=40
    ) as adaptive:
        adaptive.adapt(minimum=0, maximum=1, interval="200ms")
        _run(_args(small_tifs, out, "--scheduler", adaptive.scheduler_address))
    local = tmp_path / "local.tif"
    _run(_args(small_tifs, local))
    with rasterio.open(local) as a, rasterio.open(out) as b:
        assert a.read().tobytes() == b.read().tobytes()


def _run(args: list[str]) -> None:
    run_cli_ok(args)


class _DieOnce:
    """Kills the worker process on its first window (a marker file remembers), then works."""

    def __init__(self, method: Any, marker: str) -> None:
        self.method, self.marker = method, marker

    def predict_window(self, window: Any) -> np.ndarray:
        if not os.path.exists(self.marker):
            open(self.marker, "w").close()
            os._exit(1)
        return self.method.predict_window(window)


@pytest.mark.parametrize("workers", [1, 2])
def test_killed_worker_is_retried_and_output_is_right(
    workers: int, small_tifs: dict[str, Path], tmp_path: Path
) -> None:
    """A worker dies on its first window; the window is retried. With one worker (restarted
    by its nanny) every copy of the method dies with it: it must be computed again, not
    lost (a scattered copy was, and the run failed with "already forgotten")."""
    from distributed import LocalCluster

    from stfusion.io import RasterWriter
    from stfusion.methods.starfm import STARFM
    from stfusion.parallel import run_distributed
    from stfusion.tiling import plan_windows

    est = STARFM(window=7).fit([(small_tifs["f1"], small_tifs["c1"])])
    est.prepare(small_tifs["c2"])
    windows = plan_windows(est.grid_, 20)
    out = tmp_path / "o.tif"
    with LocalCluster(
        n_workers=workers,
        threads_per_worker=1,
        processes=True,
        dashboard_address=None,
        silence_logs=50,
    ) as cluster:
        with RasterWriter(out, est.grid_, 2) as writer:
            result = run_distributed(
                _DieOnce(est, str(tmp_path / "died")),
                windows,
                writer,
                cluster.scheduler_address,
                retries=2,
            )
    assert (tmp_path / "died").exists()
    assert len(result["lost"]) == 1  # said: stfusion predict prints a note
    with rasterio.open(out) as ds:
        np.testing.assert_array_equal(ds.read(), est.predict().values)


def test_failed_run_leaves_no_output(small_tifs: dict[str, Path], tmp_path: Path) -> None:
    from distributed import LocalCluster

    from stfusion.io import RasterWriter
    from stfusion.methods.starfm import STARFM
    from stfusion.parallel import run_distributed
    from stfusion.tiling import plan_windows

    class Broken:
        def predict_window(self, window: Any) -> np.ndarray:
            raise RuntimeError("disk on fire")

    est = STARFM(window=7).fit([(small_tifs["f1"], small_tifs["c1"])])
    out = tmp_path / "o.tif"
    with LocalCluster(
        n_workers=1, threads_per_worker=1, processes=True, dashboard_address=None, silence_logs=50
    ) as cluster:
        with (
            pytest.raises(RuntimeError, match="disk on fire"),
            RasterWriter(out, est.grid_, 2) as w,
        ):
            run_distributed(Broken(), plan_windows(est.grid_, 20), w, cluster.scheduler_address)
    assert not out.exists() and not list(tmp_path.glob("*partial*"))


class _AlwaysDie:
    def predict_window(self, window: Any) -> np.ndarray:
        os._exit(1)


def test_workers_that_keep_dying_give_a_clear_error(
    small_tifs: dict[str, Path], tmp_path: Path
) -> None:
    """Dask gives up on a task whose workers keep dying (KilledWorker): a one-line stfusion
    error that says what to try, no output (it surfaced Dask's raw KilledWorker)."""
    import dask
    from distributed import LocalCluster

    from stfusion.errors import STFusionError
    from stfusion.io import RasterWriter
    from stfusion.methods.starfm import STARFM
    from stfusion.parallel import run_distributed
    from stfusion.tiling import plan_windows

    est = STARFM(window=7).fit([(small_tifs["f1"], small_tifs["c1"])])
    out = tmp_path / "o.tif"
    with (
        dask.config.set({"distributed.scheduler.allowed-failures": 0}),
        LocalCluster(
            n_workers=1,
            threads_per_worker=1,
            processes=True,
            dashboard_address=None,
            silence_logs=50,
        ) as cluster,
    ):
        with pytest.raises(STFusionError, match="kept dying"), RasterWriter(out, est.grid_, 2) as w:
            run_distributed(_AlwaysDie(), plan_windows(est.grid_, 20), w, cluster.scheduler_address)
    assert not out.exists() and not list(tmp_path.glob("*partial*"))


def test_every_worker_gone_mid_run_is_an_error_not_a_wait(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A plugin author's trial: a worker that could not import the plugin died as it
    unpickled its task, and the run printed "still reading" for ever. Pending windows and
    no worker coming back within STFUSION_SCHEDULER_TIMEOUT: a clear error."""
    from types import SimpleNamespace

    from stfusion import parallel
    from stfusion.errors import STFusionError

    class Pending:  # windows submitted, none finishing
        def is_empty(self) -> bool:
            return False

        def next_batch(self, block: bool = True) -> list[Any]:
            return []

    def no_worker(n: int, timeout: float) -> None:
        raise TimeoutError

    def cluster(workers: dict[str, Any] | None) -> SimpleNamespace:
        def identity(n_workers: int) -> dict[str, Any]:
            if workers is None:  # a scheduler that stopped answering
                raise TimeoutError
            return {"workers": workers}

        return SimpleNamespace(
            sync=lambda func, callback_timeout=None, **kw: func(**kw),
            wait_for_workers=no_worker,
            scheduler=SimpleNamespace(address="tcp://10.0.0.5:8786", identity=identity),
        )

    monkeypatch.setattr(parallel, "WORKER_CHECK_S", 0.0)
    with pytest.raises(STFusionError, match=r"every worker .* left during the run.*plugin"):
        next(parallel._completed(Pending(), cluster({})))
    # a trial: a scheduler stopped mid-run (SIGSTOP, a network cut) was waited on for ever
    with pytest.raises(STFusionError, match=r"scheduler at tcp://10.0.0.5:8786 stopped answer"):
        next(parallel._completed(Pending(), cluster(None)))
    # and so were workers paused by Dask's memory threshold, that never resumed
    monkeypatch.setattr(parallel, "PAUSED_LIMIT_S", 0.0)
    paused = {"tcp://w1": {"status": "paused", "memory_limit": 360 * 2**20}}
    with pytest.raises(STFusionError, match=r"every worker .* paused .*here 360 MB"):
        next(parallel._completed(Pending(), cluster(paused)))
    monkeypatch.setenv("STFUSION_SCHEDULER_TIMEOUT", "30sec")  # was a KeyError traceback
    from stfusion.errors import InvalidParameterError

    for bad in ("30sec", "2min", "20ms", "1e400"):  # 1e400 was an OverflowError traceback
        monkeypatch.setenv("STFUSION_SCHEDULER_TIMEOUT", bad)
        with pytest.raises(InvalidParameterError, match=f"STFUSION_SCHEDULER_TIMEOUT='{bad}'"):
            parallel.scheduler_timeout()
    monkeypatch.setenv("STFUSION_SCHEDULER_TIMEOUT", "2m")  # what the message suggests
    assert parallel.scheduler_timeout() == ("2m", 120.0)


def test_a_lost_or_foreign_scheduler_is_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    """A trial: a scheduler killed mid-run ended in 35-90 lines of Dask tracebacks, and one
    without stfusion in a 76-line "Error during deserialization of the task graph"."""
    from types import SimpleNamespace

    from distributed.client import FutureCancelledError

    from stfusion import parallel
    from stfusion.errors import STFusionError

    client = SimpleNamespace(scheduler=SimpleNamespace(address="tcp://10.0.0.5:8786"))
    monkeypatch.setattr(parallel, "_client", lambda scheduler: (client, False))
    for raised, said in (
        (FutureCancelledError("k", "scheduler-connection-lost"), "lost the Dask scheduler"),
        (RuntimeError("Error during deserialization of the task graph"), "needs stfusion"),
    ):

        def fail(*args: Any, exc: BaseException = raised) -> None:
            raise exc

        monkeypatch.setattr(parallel, "_run", fail)
        with pytest.raises(STFusionError, match=said):
            parallel.run_distributed(None, [], None, "tcp://10.0.0.5:8786")  # type: ignore[arg-type]
