"""Training data of the deep methods: dates, ordered pairs, patches, the validation block."""

from __future__ import annotations

import dataclasses
import warnings
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("torch")

from affine import Affine

from conftest import write_tif
from stfusion.errors import InvalidParameterError

DATES = ("2001-10-08", "2001-10-17", "2001-11-02")


def write_cia_crop(
    tmp_path: Path,
    size: int = 48,
    dates: tuple[str, ...] = DATES,
    bands: tuple[int, ...] = (0, 1, 2, 3, 4, 5),
    origin: tuple[int, int] = (100, 100),
) -> dict[str, tuple[Path, Path]]:
    """Crops of the bundled CIA sample, one (fine, coarse) GeoTIFF pair per date."""
    from stfusion.demo import sample_dir
    from stfusion.io import FileSource

    d = sample_dir()
    names = ["blue", "green", "red", "nir", "swir1", "swir2"]
    r, c = origin
    tr = Affine(50.0, 0, 401012.5 + 50.0 * c, 0, -50.0, 6152787.5 - 50.0 * r)
    out = {}
    for date in dates:
        paths = []
        for kind in ("Landsat7", "MOD09GA"):
            arr = FileSource(str(d / f"CIA_{kind}_{date}.tif")).read()
            arr = arr[list(bands), r : r + size, c : c + size]
            paths.append(
                write_tif(
                    tmp_path / f"{kind}_{date}.tif",
                    arr,
                    transform=tr,
                    names=[names[b] for b in bands],
                )
            )
        out[date] = (paths[0], paths[1])
    return out


def test_parse_date_formats() -> None:
    from stfusion.dl.data import parse_date

    assert parse_date("L7_2001-10-08.tif") == "2001-10-08"
    assert parse_date("/x/2019/LC08_20011017_sr.tif") == "2001-10-17"
    assert parse_date("MOD09GA.A2001306.h29v12.tif") == "2001-11-02"  # day 306
    assert parse_date("Landsat20041126") == "2004-11-26"
    assert parse_date("tm0524") is None
    assert parse_date("scene_2001-13-45.tif") is None


def test_resolve_dates_from_names_and_option(tmp_path: Path) -> None:
    from stfusion.dl.data import resolve_dates

    pairs = [("a_2001-10-08.tif", "m.tif"), ("b.tif", "M_2001290.tif")]
    assert resolve_dates(pairs, None) == ["2001-10-08", "2001-10-17"]
    assert resolve_dates([("a.tif", "b.tif")], None) is None
    assert resolve_dates(pairs, ["2001-01-01", "2001-01-02"]) == ["2001-01-01", "2001-01-02"]
    with pytest.raises(InvalidParameterError, match="one per pair"):
        resolve_dates(pairs, ["2001-01-01"])
    with pytest.raises(InvalidParameterError, match="not a date"):
        resolve_dates(pairs, ["2001-01-01", "tomorrow"])
    # the forms file names and catalogs take (YYYYDDD was refused)
    assert resolve_dates(pairs, ["20011008", "2001290"]) == ["2001-10-08", "2001-10-17"]


def test_ordered_pairs() -> None:
    from stfusion.dl.data import ordered_pairs

    assert ordered_pairs(2) == [(0, 1), (1, 0)]
    three = ordered_pairs(3)
    assert len(three) == 6 and len(set(three)) == 6 and all(r != t for r, t in three)


def test_validation_block_is_the_bottom_right_corner() -> None:
    from stfusion.dl.data import validation_block

    v = validation_block((48, 48), 0.25, multiple=2)
    assert (v.row, v.col, v.height, v.width) == (24, 24, 24, 24)
    v = validation_block((40, 60), 0.2, multiple=4)
    assert (v.row + v.height, v.col + v.width) == (40, 60)  # bottom-right corner
    assert (v.height, v.width) == (16, 24)  # the scene's aspect, multiples of 4
    with pytest.raises(InvalidParameterError, match="val_fraction"):
        validation_block((48, 48), 1.0)


def _stream(pairs: list[tuple[Path, Path]], **settings: object) -> object:
    """The run data of ``stfusion train`` (dcstfn, band-tied, no augmentation) on ``pairs``."""
    from stfusion.dl.train import TrainConfig, open_training_sites, run_data

    kw: dict = dict(model="dcstfn", patch=16, batch=4, steps_per_epoch=10, val_patches=4)
    kw.update(val_fraction=0.25, augment=False, agnostic=False)
    kw.update(settings)
    return run_data(open_training_sites(pairs), TrainConfig(**kw))


def test_scene_smaller_than_the_patch_is_padded_never_the_block(tmp_path: Path) -> None:
    """A patch that does not fit beside the validation block (a 44 x 45 px site like Kranj):
    windows are cut to the strips above and left of the block and padded by reflection; the
    padding and the block never count as labelled pixels, and batches keep one shape."""
    pairs = write_series(tmp_path, 2, size=32)
    data = _stream(pairs, patch=32, val_fraction=0.5)
    block = data.sites[0].block
    assert (block.row, block.col) == (9, 9)  # a 23 px block: no 32 px window beside it
    seen = []
    pair = data.train.reader.pair
    data.train.reader.pair = lambda ex, r, c, h, w, band=0: (
        seen.append((r, c, h, w)) or pair(ex, r, c, h, w, band)
    )
    items = [data.train[i] for i in range(100)]
    assert {(h, w) for _, _, h, w in seen} == {(9, 32), (32, 9)}
    assert not any(block.intersects(*win) for win in seen)
    for (_, _, h, w), item in zip(seen, items):
        assert all(tuple(a.shape[-2:]) == (32, 32) for a in item)
        assert all(bool(np.isfinite(a.numpy()).all()) for a in item[:4])
        mask = item[4].numpy()[0]
        assert mask[:h, :w].all() and not mask[h:].any() and not mask[:, w:].any()
        # reflection: the first padded row/column mirrors the one before the last real one
        label = item[3].numpy()
        if w < 32:
            np.testing.assert_array_equal(label[:, :h, w], label[:, :h, w - 2])
        else:
            np.testing.assert_array_equal(label[:, h, :w], label[:, h - 2, :w])
    val = [data.val[i] for i in range(len(data.val))]
    assert all(tuple(a.shape[-2:]) == (32, 32) for item in val for a in item)
    from stfusion.dl.datasets import Site, _strips

    whole = Site("s", data.sites[0].scene, None, None)
    assert _strips(whole, 64) == [(0, 0, 32, 32)]  # no block: the whole scene, padded
    covered = dataclasses.replace(whole, block=dataclasses.replace(block, row=0, col=0))
    assert _strips(covered, 64) == []


def test_invalid_pixels_are_masked_not_spread(tmp_path: Path) -> None:
    """A NaN pixel of a fine image: patches holding it are kept (under the invalid share),
    the pixel is masked out and every value the network sees is finite."""
    from stfusion.io import FileSource

    pairs = write_series(tmp_path, 2, size=40)
    fine = FileSource(str(pairs[0][0])).read()
    fine[:, 5, 5] = np.nan
    write_tif(pairs[0][0], fine)
    train = _stream(pairs, val_fraction=0.2).train
    items = [train[i] for i in range(200)]
    assert all(bool(np.isfinite(a.numpy()).all()) for item in items for a in item[:4])
    assert sum(int((~item[4]).sum()) for item in items) > 0  # the NaN pixel was drawn, masked


def test_time_mix_checks() -> None:
    from stfusion.dl.train import TrainConfig
    from stfusion.dl.train_stfdcnn import STFDCNNConfig

    with pytest.raises(InvalidParameterError, match="time_mix"):
        TrainConfig(model="dcstfn", time_mix=1.5).validate()
    TrainConfig(model="dcstfn", time_mix=0.5).validate()
    with pytest.raises(InvalidParameterError, match="does not apply to stfdcnn"):
        STFDCNNConfig.from_train_config(TrainConfig(model="stfdcnn", time_mix=0.5))


# --- streaming datasets (stfusion.dl.datasets) ------------------------------------------------


def write_series(tmp_path: Path, n: int, size: int = 48, bands: int = 2) -> list[tuple[Path, Path]]:
    """``n`` dates of CIA texture (the 10-08 crop, brightened a little per date), 3 days apart."""
    import datetime as dt

    from stfusion.demo import sample_dir
    from stfusion.io import FileSource

    d = sample_dir()
    fine = FileSource(str(d / "CIA_Landsat7_2001-10-08.tif")).read()[2 : 2 + bands, :size, :size]
    coarse = FileSource(str(d / "CIA_MOD09GA_2001-10-08.tif")).read()[2 : 2 + bands, :size, :size]
    out = []
    for i in range(n):
        date = (dt.date(2001, 1, 1) + dt.timedelta(days=3 * i)).isoformat()
        k = np.float32(1.0 + 0.01 * i)
        out.append(
            (
                write_tif(tmp_path / f"F_{date}.tif", fine * k),
                write_tif(tmp_path / f"C_{date}.tif", coarse * k),
            )
        )
    return out


class _Counting:
    """Wraps a Source: counts reads, their sizes and the read arrays still alive."""

    def __init__(self, inner: object, log: dict) -> None:
        import weakref

        self.inner, self.log, self._refs = inner, log, weakref.WeakSet()
        for k in ("grid", "count", "band_names", "label"):
            setattr(self, k, getattr(inner, k))

    def read(self, window: object = None, halo: int = 0) -> np.ndarray:
        assert window is not None, "a whole-image read"
        arr = self.inner.read(window, halo)
        self.log["reads"] += 1
        self.log["max_pixels"] = max(self.log["max_pixels"], arr.shape[1] * arr.shape[2])
        self.log["live"].add(_Live(arr))
        alive = sum(1 for x in self.log["live"] if x.alive())
        self.log["max_live"] = max(self.log["max_live"], alive)
        return arr

    def sample(self, max_pixels: int = 1 << 20) -> np.ndarray:
        return self.inner.sample(max_pixels)


class _Live:
    def __init__(self, arr: np.ndarray) -> None:
        import weakref

        self.ref = weakref.ref(arr)

    def alive(self) -> bool:
        return self.ref() is not None


def test_stream_holds_a_bounded_number_of_windows(tmp_path: Path) -> None:
    """20 dates: every read is one patch window, few read arrays are alive at any time, and
    the dataset itself holds no pixels (its pickled size does not grow with the scene)."""
    import pickle

    import torch

    from stfusion.dl import datasets as ds
    from stfusion.dl.train import TrainConfig, open_training_sites, run_data

    pairs = write_series(tmp_path, 20, size=48)
    # Band-tied (format 1): reads are patch windows only. A band-agnostic run also reads each
    # date's fine image once, decimated to at most 2^18 pixels (its statistics, cached).
    cfg = TrainConfig(
        model="dcstfn",
        patch=16,
        batch=4,
        steps_per_epoch=10,
        val_patches=8,
        val_fraction=0.25,
        agnostic=False,
    )
    sites = open_training_sites(pairs)
    assert sites[0].dates is not None and len(sites[0].dates) == 20
    log: dict = {"reads": 0, "max_pixels": 0, "live": set(), "max_live": 0}
    sites[0].scene.pairs = [(_Counting(f, log), _Counting(c, log)) for f, c in sites[0].scene.pairs]
    data = run_data(sites, cfg)
    assert len(data.train.examples) == 20 * 19
    train_dl, val_dl = data.loaders(cfg.batch, 0)
    n = 0
    for batch in list(train_dl) + list(val_dl):
        assert batch[0].shape[1:] == (2, 16, 16) and batch[4].dtype == torch.bool
        n += batch[0].shape[0]
    assert n == 40 + 8
    assert log["max_pixels"] == 16 * 16  # patch windows only, never a whole image
    assert log["reads"] >= 4 * n
    assert log["max_live"] <= 4  # at most one example's four windows in flight
    # No pixels held: the pickled dataset is paths and numbers, the same for a larger scene.
    small = len(pickle.dumps(run_data(open_training_sites(pairs), cfg).train))
    (tmp_path / "big").mkdir()
    big_pairs = write_series(tmp_path / "big", 20, size=96)
    big = len(pickle.dumps(run_data(open_training_sites(big_pairs), cfg).train))
    assert small < 64_000 and abs(big - small) < 2_000, (small, big)
    # Item i of an epoch is the same whenever it is read (workers, resume); epochs differ.
    item = data.train[3]
    again = data.train[3]
    assert all(torch.equal(a, b) for a, b in zip(item, again))
    other = data.train[3 + len(data.train)]
    assert not torch.equal(item[0], other[0])
    sampler = ds.EpochSampler(5)
    sampler.set_epoch(2)
    assert list(sampler) == [10, 11, 12, 13, 14]


def test_stream_keeps_a_bounded_number_of_files_open(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """20 dates (40 files) through the real kept-open handles: never more than MAX_HANDLES
    open (each open GeoTIFF holds ~3 MB of GDAL buffers), every file read, all closed after."""
    from stfusion.dl import datasets as ds
    from stfusion.dl import file_handles as fh
    from stfusion.dl.train import TrainConfig, open_training_sites, run_data

    pairs = write_series(tmp_path, 20, size=48)
    cfg = TrainConfig(model="dcstfn", patch=16, batch=8, steps_per_epoch=20, val_patches=8)
    opened: set[str] = set()
    real_open = fh._open

    def counting_open(path: str):  # type: ignore[no-untyped-def]
        opened.add(str(path))
        return real_open(path)

    monkeypatch.setattr(fh, "_open", counting_open)
    with ds.streaming():
        data = run_data(open_training_sites(pairs), cfg)
        train_dl, val_dl = data.loaders(cfg.batch, 0)
        most = 0
        for _ in list(train_dl) + list(val_dl):
            most = max(most, len(fh._handles))
        assert 0 < most <= fh.MAX_HANDLES < 40
    assert len(fh._handles) == 0
    assert len(opened) == 40


def test_val_dates_hold_out_whole_dates(tmp_path: Path) -> None:
    from stfusion.dl.train import TrainConfig, open_training_sites, run_data

    pairs = write_series(tmp_path, 6, size=40)
    sites = open_training_sites(pairs)
    dates = sites[0].dates
    held = [dates[2], dates[5]]
    cfg = TrainConfig(
        model="dcstfn",
        patch=16,
        batch=4,
        steps_per_epoch=3,
        val_patches=12,
        val_dates=held,
        val_fraction=0.25,
        max_gap=9,
    )
    data = run_data(sites, cfg)
    held_idx = {2, 5}
    for ex in data.train.examples:
        assert ex.ref not in held_idx and ex.tgt not in held_idx
        assert abs(ex.ref - ex.tgt) <= 3  # --max-gap 9 days, dates 3 days apart
    kinds = {it.block is None for it in data.val.items}
    assert kinds == {True, False}  # both held-out dates and the spatial block
    for it in data.val.items:
        if it.block is None:
            assert it.example.tgt in held_idx and it.example.ref not in held_idx
        else:
            assert it.example.tgt not in held_idx and it.example.ref not in held_idx
    # The normalisation comes from the training dates only; only dates are refused.
    with pytest.raises(InvalidParameterError, match="not a date of the pairs"):
        run_data(sites, TrainConfig(model="dcstfn", val_dates=["1999-01-01"]))
    # Dates only: no spatial block, every validation patch is a held-out target.
    only = run_data(
        open_training_sites(pairs),
        TrainConfig(model="dcstfn", patch=16, val_patches=4, val_dates=held, val_fraction=0.0),
    )
    assert all(it.block is None for it in only.val.items)
    assert all(s.block is None for s in only.sites)


def test_catalog_pairs_dates_within_sites(tmp_path: Path) -> None:
    from stfusion.dl import datasets as ds
    from stfusion.dl.train import TrainConfig, open_training_sites, run_data

    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    a = write_series(tmp_path / "a", 3)
    b = write_series(tmp_path / "b", 2)
    write_tif(tmp_path / "mask.tif", np.zeros((1, 48, 48), np.uint8))
    rows = ["site,date,fine,coarse,mask"]
    for site, pairs in (("A", a), ("B", b)):
        for f, c in pairs:
            d = ds.resolve_dates([(str(f), str(c))], None)[0]
            rows.append(
                f"{site},{d},{f.relative_to(tmp_path)},{c},{'mask.tif' if site == 'B' else ''}"
            )
    cat = tmp_path / "catalog.csv"
    cat.write_text("\n".join(rows) + "\n")
    groups = ds.read_catalog(cat)
    assert list(groups) == ["A", "B"] and len(groups["A"]) == 3 and groups["B"][0].mask
    sites = open_training_sites(None, catalog=cat)
    data = run_data(sites, TrainConfig(model="dcstfn", patch=16, val_patches=4))
    assert {(e.site, e.ref, e.tgt) for e in data.train.examples} == {
        (0, r, t) for r in range(3) for t in range(3) if r != t
    } | {(1, 0, 1), (1, 1, 0)}
    assert type(sites[1].scene.pairs[0][0]).__name__ == "MaskedSource"
    bad = tmp_path / "bad.csv"
    bad.write_text("site,fine\nx,y\n")
    with pytest.raises(InvalidParameterError, match="site,date,fine,coarse"):
        ds.read_catalog(bad)
    # A spreadsheet's CSV (byte-order mark, capitalised headers), an empty date (read from
    # the file name) and a path given from the wrong folder (the message says from where)
    f, c = a[0]
    excel = tmp_path / "excel.csv"
    excel.write_bytes(
        ("\ufeffSite,Date,Fine,Coarse\n" + f"A,,{f.relative_to(tmp_path)},{c}\n").encode("utf-8")
    )
    [spec] = ds.read_catalog(excel)["A"]
    assert spec.date == "" and Path(spec.fine) == f
    assert ds.open_sites(ds.read_catalog(excel))[0].dates == ds.resolve_dates(
        [(str(f), str(c))], None
    )
    wrong = tmp_path / "a" / "wrong.csv"
    wrong.write_text(f"site,date,fine,coarse\nA,,{f.relative_to(tmp_path)},{c}\n")
    with pytest.raises(Exception, match=r"wrong\.csv, line 2: .* relative to the catalog's folder"):
        ds.read_catalog(wrong)
    # Empty cells, a short row, a comment and an unquoted FILE:B1,B2 (a user trial: the
    # catalog's own folder was taken for the empty path, '# comment' became a site)
    for text, message in (
        ("A,2001-11-02,,\n", "line 3: the fine column is empty"),
        (f"A,,{f},\n", "line 3: the coarse column is empty"),
        (f"A,,{f}\n", "line 3: the coarse column is empty"),
        (f"A,,{f}:1,2,{c}\n", r"line 3: more fields than the header's 4; quote"),
    ):
        wrong.write_text(f"site,date,fine,coarse\n\n{text}")
        with pytest.raises(InvalidParameterError, match=message):
            ds.read_catalog(wrong)
    wrong.write_text(f"site,date,fine,coarse\n# a comment, with commas\nA,,{f},{c}\n")
    assert list(ds.read_catalog(wrong)) == ["A"]
    wrong.write_text(f"site,date,fine,coarse\nA,,{f},{c},\n")  # a trailing comma: nothing
    assert list(ds.read_catalog(wrong)) == ["A"]
    # A site stored x10000 beside a 0-1 one: its rows give their own scale, and its images
    # read as the 0-1 site's do (there were no such columns: the files had to be converted)
    from stfusion.io import FileSource

    dn = tmp_path / "dn"
    dn.mkdir()
    scaled = []
    for f, c in b:
        fd, cd = dn / Path(f).name, dn / Path(c).name
        for src, dst in ((f, fd), (c, cd)):
            arr = FileSource(str(src)).read()
            write_tif(dst, np.round(arr * 1e4).astype(np.int16), dtype="int16")
        scaled.append((fd, cd))
    rows = ["site,date,fine,coarse,fine_scale,coarse_scale"]
    rows += [f"A,,{f},{c},," for f, c in a]
    rows += [f"B,,{f},{c},1e-4,0.0001" for f, c in scaled]
    mixed = tmp_path / "mixed.csv"
    mixed.write_text("\n".join(rows) + "\n")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no "differ 10000x in scale" warning
        sites = open_training_sites(None, catalog=mixed)
    got = sites[1].scene.pairs[0][0].read()
    want = FileSource(str(b[0][0])).read()
    np.testing.assert_allclose(got, want, atol=1e-4)
    bad_scale = tmp_path / "bad_scale.csv"
    bad_scale.write_text(f"site,date,fine,coarse,fine_scale\nA,,{a[0][0]},{a[0][1]},-1\n")
    with pytest.raises(InvalidParameterError, match=r"line 2: fine_scale '-1' is not a positive"):
        ds.read_catalog(bad_scale)


def test_stream_patches_never_touch_the_block_and_time_mix(tmp_path: Path) -> None:
    import torch

    from stfusion.dl.train import TrainConfig, open_training_sites, run_data

    pairs = write_series(tmp_path, 3, size=48)
    cfg = TrainConfig(
        model="dcstfn",
        patch=16,
        batch=4,
        steps_per_epoch=50,
        val_patches=4,
        val_fraction=0.25,
        augment=False,
        time_mix=1.0,
        agnostic=False,
    )
    data = run_data(open_training_sites(pairs), cfg)
    block = data.sites[0].block
    seen = []
    pair = data.train.reader.pair
    data.train.reader.pair = lambda ex, r, c, h, w, band=0: (
        seen.append((r, c)) or pair(ex, r, c, h, w, band)
    )
    items = [data.train[i] for i in range(200)]
    assert len(seen) >= 200
    assert not any(block.intersects(r, c, 16, 16) for r, c in seen)
    # time_mix 1: the same example and window as without it, the targets moved by one
    # fraction a in [0, 1) of the way from the reference (coarse and fine alike), inputs as
    # they are.
    plain = run_data(open_training_sites(pairs), dataclasses.replace(cfg, time_mix=0.0)).train
    alphas = []
    for i, (f_r, c_r, c_t, f_t, _m) in enumerate(items[:30]):
        p_fr, p_cr, p_ct, p_ft, _pm = plain[i]
        assert torch.equal(f_r, p_fr) and torch.equal(c_r, p_cr)
        full_c, full_f = (p_ct - p_cr).numpy(), (p_ft - p_fr).numpy()
        big = np.abs(full_c) > 0.2 * np.abs(full_c).max()
        assert np.abs(full_c).max() > 1e-3
        a = float(np.median((c_t - c_r).numpy()[big] / full_c[big]))
        assert 0.0 <= a < 1.0
        np.testing.assert_allclose((c_t - c_r).numpy(), a * full_c, atol=1e-4)
        np.testing.assert_allclose((f_t - f_r).numpy(), a * full_f, atol=1e-4)
        alphas.append(a)
    assert np.std(alphas) > 0.15


def test_sites_without_examples_are_named(tmp_path: Path) -> None:
    """A site with one date (or none within --max-gap) trains nothing: said, not dropped
    silently while the checkpoint lists it."""
    from stfusion.dl.train import TrainConfig, open_training_sites, run_data
    from stfusion.errors import STFusionWarning

    (tmp_path / "a").mkdir()
    (tmp_path / "c").mkdir()
    a = write_series(tmp_path / "a", 2)
    c = write_series(tmp_path / "c", 1)
    rows = ["site,date,fine,coarse"]
    for site, pairs in (("A", a), ("C", c)):
        rows += [f"{site},,{f},{g}" for f, g in pairs]
    cat = tmp_path / "catalog.csv"
    cat.write_text("\n".join(rows) + "\n")
    sites = open_training_sites(None, catalog=cat)
    with pytest.warns(STFusionWarning, match=r"site\(s\) C: no training example \(one date"):
        run_data(sites, TrainConfig(model="dcstfn", patch=16, val_patches=4))


def test_pair_of_two_dates_is_said() -> None:
    """A fine and a coarse file named with different dates in one pair: said (the fine
    file's date is used), not trained on silently."""
    from stfusion.dl.data import resolve_dates
    from stfusion.errors import STFusionWarning

    with pytest.warns(STFusionWarning, match="different dates"):
        got = resolve_dates([("L_2001-11-02.tif", "M_2001-10-17.tif")], None)
    assert got == ["2001-11-02"]
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error", STFusionWarning)
        assert resolve_dates([("L_2001-11-02.tif", "M_2001-11-02.tif")], None) == ["2001-11-02"]


def test_sites_on_different_scales_are_said(tmp_path: Path) -> None:
    """One catalog site in reflectance, another x10000: said (the validation RMSE that picks
    the best epoch mixes them), as predict says of a pair."""
    from stfusion.dl.train import open_training_sites
    from stfusion.errors import STFusionWarning
    from stfusion.io import FileSource

    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    a = write_series(tmp_path / "a", 2)
    rows = ["site,date,fine,coarse"] + [f"A,,{f},{c}" for f, c in a]
    for f, c in a:  # the same images, stored x10000
        pair = [write_tif(tmp_path / "b" / p.name, FileSource(str(p)).read() * 1e4) for p in (f, c)]
        rows.append(f"B,,{pair[0]},{pair[1]}")
    cat = tmp_path / "catalog.csv"
    cat.write_text("\n".join(rows) + "\n")
    with pytest.warns(STFusionWarning, match=r"sites B .* and A .* differ 10000x in scale"):
        open_training_sites(None, catalog=cat)


def test_dates_contradicting_the_file_names_are_said() -> None:
    """--dates in another order than the pairs (or wrong): said, the dates given are used."""
    from stfusion.dl.data import resolve_dates
    from stfusion.errors import STFusionWarning

    pairs = [("L_2001-10-08.tif", "M_2001-10-08.tif"), ("L_2001-10-17.tif", "M_2001-10-17.tif")]
    # (a user trial: "(2001-10-08 named, 2001-10-17 given and more)" was hard to read)
    said = r"pair 1's fine image L_2001-10-08\.tif is named 2001-10-08, --dates gives 2001-10-17"
    with pytest.warns(STFusionWarning, match=said):
        assert resolve_dates(pairs, ["2001-10-17", "2001-10-08"]) == ["2001-10-17", "2001-10-08"]
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error", STFusionWarning)
        resolve_dates(pairs, ["2001-10-08", "2001-10-17"])
        resolve_dates([("a.tif", "b.tif")], ["2001-01-01"])  # names without dates


def test_training_reads_fill_values_as_nodata(tmp_path: Path) -> None:
    """Training read windows through kept-open handles without the fill values given with
    --fine-nodata (Scaling(nodata=...)): an undeclared -9999 was trained on as -0.9999."""
    from rasterio.windows import Window

    from stfusion.dl.file_handles import kept_open, streaming
    from stfusion.io import FileSource, Scaling

    data = np.full((2, 30, 30), 1500, np.int16)
    data[:, 5:15, 5:15] = -9999
    path = write_tif(tmp_path / "f.tif", data)  # no nodata tag
    src = FileSource(str(path), Scaling(1e-4, nodata=-9999))
    win = Window(0, 0, 20, 20)
    with streaming():
        kept = kept_open(src).read(win, 2)
    plain = src.read(win, 2)
    np.testing.assert_array_equal(np.isnan(kept), np.isnan(plain))
    assert np.isnan(kept[:, 7:17, 7:17]).all() and np.nanmin(kept) == pytest.approx(0.15)


def test_a_date_without_a_partner_within_max_gap_is_named(tmp_path: Path) -> None:
    """A trial: with --max-gap 6, a date 11 days from its nearest was dropped silently, yet
    listed among the training dates (predicting it was then "no honest test")."""
    from stfusion.dl.train import TrainConfig, open_training_sites, run_data
    from stfusion.errors import STFusionWarning

    pairs = write_series(tmp_path, 3)  # 2001-01-01, 01-04, 01-07
    (tmp_path / "far").mkdir()
    far = write_series(tmp_path / "far", 1)[0]  # renamed 2001-01-20: 13 days from the rest
    late = (far[0].rename(tmp_path / "F_2001-01-20.tif"), far[1].rename(tmp_path / "C_x.tif"))
    sites = open_training_sites([*pairs, late])
    cfg = TrainConfig(model="dcstfn", patch=16, val_patches=4, max_gap=6)
    with pytest.warns(STFusionWarning, match=r"2001-01-20 \(.*\): no other date within --max-gap"):
        run_data(sites, cfg)


def test_a_catalog_sites_scale_mismatch_names_the_catalog_columns(tmp_path: Path) -> None:
    """A trial: a catalog of sites stored in other units was sent from --fine-scale to
    --coarse-scale and back; a row's own columns are the way, and now named."""
    from stfusion.dl.train import open_training_sites
    from stfusion.errors import ScaleMismatchError
    from stfusion.io import FileSource

    pairs = write_series(tmp_path, 2)
    rows = ["site,date,fine,coarse"]
    for k, (f, c) in enumerate(pairs):
        big = write_tif(tmp_path / f"F10000_{k}.tif", FileSource(str(f)).read() * 10000)
        rows.append(f"kr,2001-01-0{k + 1},{big},{c}")
    cat = tmp_path / "catalog.csv"
    cat.write_text("\n".join(rows) + "\n")
    with pytest.raises(ScaleMismatchError, match=r"site kr: .*line 2.*columns fine_scale"):
        open_training_sites(None, catalog=cat)


def test_a_date_masked_out_whole_is_named(tmp_path: Path) -> None:
    """A trial: a catalog mask covering a whole date was taken without a word."""
    from stfusion.dl.train import TrainConfig, open_training_sites, run_data
    from stfusion.errors import STFusionWarning

    pairs = write_series(tmp_path, 3)
    write_tif(tmp_path / "all.tif", np.ones((1, 48, 48), np.uint8))  # nonzero: invalid
    rows = ["site,date,fine,coarse,mask"]
    for k, (f, c) in enumerate(pairs):
        rows.append(f"s,,{f},{c},{'all.tif' if k == 1 else ''}")
    cat = tmp_path / "catalog.csv"
    cat.write_text("\n".join(rows) + "\n")
    sites = open_training_sites(None, catalog=cat)
    with pytest.warns(STFusionWarning, match=r"2001-01-04 \(s\): no valid fine pixel once masked"):
        run_data(sites, TrainConfig(model="dcstfn", patch=16, val_patches=4))
