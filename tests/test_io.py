"""Raster I/O: scaling, nodata, windows with halos, atomic writing, alignment."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import rasterio
from affine import Affine
from rasterio.crs import CRS
from rasterio.windows import Window

from conftest import BOREAS, KRANJ, need, write_tif
from stfusion.coarse import block_mean, upsample_blocks
from stfusion.errors import InputFileError, InvalidParameterError, OutputExistsError
from stfusion.io import (
    AlignedSource,
    FileSource,
    Grid,
    RasterWriter,
    Scaling,
    check_output,
    read_raster,
    write_raster,
)


def test_int16_nodata_and_file_scale(tmp_path: Path) -> None:
    data = np.array([[[100, 200], [-9999, 4000]]], dtype=np.int16)
    p = write_tif(tmp_path / "a.tif", data, nodata=-9999, scales=[1e-4])
    src = FileSource(str(p))
    assert src.scale_source == "file metadata"
    arr = src.read()
    assert arr.dtype == np.float32
    np.testing.assert_allclose(arr[0, 0], [0.01, 0.02], rtol=1e-6)
    assert np.isnan(arr[0, 1, 0])
    # An explicit scale wins over the file's metadata.
    np.testing.assert_allclose(FileSource(str(p), Scaling(1.0)).read()[0, 0], [100, 200])


def test_offset_landsat_collection2(tmp_path: Path) -> None:
    p = write_tif(tmp_path / "l.tif", np.full((1, 2, 2), 10000, np.uint16))
    arr = FileSource(str(p), Scaling(2.75e-5, -0.2)).read()
    np.testing.assert_allclose(arr, 10000 * 2.75e-5 - 0.2, rtol=1e-5)


def test_one_half_given_keeps_the_files_other_half(tmp_path: Path) -> None:
    """A Landsat C2 file tagged scale 2.75e-5, offset -0.2: ``--fine-scale 2.75e-5`` alone
    used to drop the offset (every value 0.2 too high, silently)."""
    p = write_tif(tmp_path / "l.tif", np.full((1, 2, 2), 10000, np.uint16))
    with rasterio.open(p, "r+") as ds:
        ds.scales, ds.offsets = [2.75e-5], [-0.2]
    expected = 10000 * 2.75e-5 - 0.2
    for given in (Scaling(2.75e-5), Scaling(None, -0.2), Scaling(2.75e-5, -0.2), Scaling()):
        src = FileSource(str(p), given)
        np.testing.assert_allclose(src.read(), expected, rtol=1e-5)
    assert (
        FileSource(str(p), Scaling(2.75e-5)).scale_source
        == "scale given, offset from file metadata"
    )
    # an offset of 0 given is 0; a file without metadata keeps the defaults
    assert FileSource(str(p), Scaling(2.75e-5, 0.0)).offset == 0.0
    bare = write_tif(tmp_path / "b.tif", np.full((1, 2, 2), 10000, np.uint16))
    src = FileSource(str(bare), Scaling(1e-4))
    assert (src.scale, src.offset, src.scale_source) == (1e-4, 0.0, "given")


def test_envi_read() -> None:
    src = FileSource(str(need(BOREAS) / "tm0524"), Scaling(1e-4))
    arr = src.read()
    assert arr.shape == (3, 400, 400)
    assert 0.0 < np.nanmedian(arr) < 0.5
    assert not src.grid.georeferenced


def test_undeclared_float_nodata_is_nan() -> None:
    src = FileSource(str(need(KRANJ) / "landsat" / "unfilled" / "2020068_191-28_kranj.tif"))
    arr = src.read()
    assert np.isnan(arr).any()
    assert np.nanmax(np.abs(arr)) < 1e5


def test_halo_padding_is_nan(tmp_path: Path) -> None:
    data = np.arange(2 * 6 * 5, dtype=np.float32).reshape(2, 6, 5)
    src = FileSource(str(write_tif(tmp_path / "h.tif", data)))
    out = src.read(Window(0, 0, 3, 2), halo=2)
    assert out.shape == (2, 6, 7)
    assert np.isnan(out[:, :2, :]).all() and np.isnan(out[:, :, :2]).all()
    np.testing.assert_array_equal(out[:, 2:6, 2:7], data[:, 0:4, 0:5])


def test_write_roundtrip_keeps_grid_names_tags(tmp_path: Path) -> None:
    grid = Grid(CRS.from_epsg(32755), Affine(30, 0, 1000, 0, -30, 5000), 300, 260)
    arr = np.random.default_rng(0).random((2, 260, 300)).astype(np.float32)
    arr[0, 5, 5] = np.nan
    out = write_raster(
        tmp_path / "o.tif",
        arr,
        grid,
        band_names=["red", "nir"],
        tags={"STFUSION_METHOD": "x", "STFUSION_PARAMS": {"a": 1}},
    )
    with rasterio.open(out) as ds:
        assert ds.crs == grid.crs and ds.transform == grid.transform
        assert ds.dtypes[0] == "float32" and np.isnan(ds.nodata)
        assert ds.descriptions == ("red", "nir")
        assert ds.tags()["STFUSION_PARAMS"] == '{"a": 1}'
        assert ds.profile["tiled"] and ds.profile["compress"] == "deflate"
        back = ds.read()
    np.testing.assert_array_equal(back, arr)
    da = read_raster(out)
    assert da.dims == ("band", "y", "x") and da.rio.crs == grid.crs


def test_no_overwrite_and_no_partial_file(tmp_path: Path) -> None:
    grid = Grid(None, Affine.identity(), 4, 4)
    p = write_raster(tmp_path / "o.tif", np.zeros((1, 4, 4)), grid)
    with pytest.raises(OutputExistsError, match="--overwrite"):
        write_raster(p, np.ones((1, 4, 4)), grid)
    write_raster(p, np.ones((1, 4, 4)), grid, overwrite=True)
    assert FileSource(str(p)).read().max() == 1
    with pytest.raises(RuntimeError), RasterWriter(tmp_path / "b.tif", grid, 1) as w:
        w.write(np.zeros((1, 2, 2)), Window(0, 0, 2, 2))
        raise RuntimeError("boom")
    assert sorted(os.listdir(tmp_path)) == ["o.tif"]


def test_quality_layer_overviews_hold_values_that_occur(tmp_path: Path) -> None:
    """A user trial: quality layers' overviews averaged their flags and counts (fallback
    2.25, pairs_used 0.5: no pixel has them) for whoever zooms out; a quality layer's
    overviews are nearest-neighbour now, a prediction's still averaged."""
    grid = Grid(None, Affine.identity(), 1100, 1100)
    flags = np.random.default_rng(0).integers(0, 4, (1, 1100, 1100)).astype(np.float32)
    for name, tags in (("q.tif", {"STFUSION_QUALITY_OF": "p.tif"}), ("p.tif", {})):
        with RasterWriter(tmp_path / name, grid, 1, tags=tags) as w:
            w.write(flags)
        with rasterio.open(tmp_path / name) as ds:
            assert ds.overviews(1), "no overview to check"
            ov = ds.read(1, out_shape=(550, 550))
        whole = bool(np.all(ov == np.round(ov)))
        assert whole == (name == "q.tif"), (name, np.unique(ov)[:5])


def test_check_output_refuses_input_and_missing_dir(tmp_path: Path) -> None:
    p = write_tif(tmp_path / "in.tif", np.zeros((1, 2, 2), np.float32))
    with pytest.raises(OutputExistsError, match="one of the inputs"):
        check_output(p, overwrite=True, inputs=[str(p)])
    # the same file by another path that resolves elsewhere (a hard link here; a bind mount
    # or a container volume alike): replacing it would replace the input
    alias = tmp_path / "alias.tif"
    os.link(p, alias)
    with pytest.raises(OutputExistsError, match="one of the inputs"):
        check_output(alias, overwrite=True, inputs=[str(p)])
    with pytest.raises(InputFileError, match="does not exist"):
        check_output(tmp_path / "nope" / "o.tif", overwrite=False)
    with pytest.raises(InvalidParameterError, match="output path is empty"):
        check_output("", overwrite=True)
    # Every file of an input's dataset is an input: an ENVI header, a GeoTIFF's .aux.xml.
    envi = tmp_path / "scene.bin"
    with rasterio.open(envi, "w", driver="ENVI", width=2, height=2, count=1, dtype="int16") as ds:
        ds.write(np.zeros((1, 2, 2), np.int16))
    with pytest.raises(InvalidParameterError, match="writes GeoTIFF"):
        check_output(tmp_path / "scene.hdr", overwrite=True, inputs=[str(envi)])
    aux = tmp_path / "in.tif.aux.xml"
    aux.write_text("<PAMDataset><Metadata><MDI key='a'>1</MDI></Metadata></PAMDataset>\n")
    with pytest.raises(OutputExistsError, match=r"a file of input .*in\.tif"):
        check_output(aux, overwrite=True, inputs=[str(p)])
    # A name that promises another format is refused before any work, never written as a
    # GeoTIFF under that name; .tif, .TIFF and names without an extension are fine.
    for name in ("o.png", "o.JP2", "o.nc"):
        with pytest.raises(InvalidParameterError, match="writes GeoTIFF"):
            check_output(tmp_path / name, overwrite=True)
        assert not (tmp_path / name).exists()
    for name in ("o.tif", "o.TIFF", "o"):
        assert check_output(tmp_path / name, overwrite=False) == tmp_path / name
    # A user trial: .gpkg, .kea, ENVI's .dat were written as GeoTIFFs under their names, and
    # --out w.ckpt --overwrite replaced a trained network with a prediction.
    for name in ("o.gpkg", "o.kea", "o.dat", "o.hdf5"):
        with pytest.raises(InvalidParameterError, match="writes GeoTIFF"):
            check_output(tmp_path / name, overwrite=True)
    for name in ("w.ckpt", "o.zip", "o.tif.gz", "o.json"):
        with pytest.raises(InvalidParameterError, match="not a raster's"):
            check_output(tmp_path / name, overwrite=True)
    with pytest.raises(InvalidParameterError, match="virtual path cannot be an output"):
        check_output(f"/vsizip/{tmp_path}/o.zip/p.tif", overwrite=True)


def test_check_output_sees_the_files_behind_every_input_form(tmp_path: Path) -> None:
    """A user trial: only the plain path was compared with the output, so --overwrite
    replaced the input named as FILE:BANDS, as a band file of a comma list or glob, as the
    archive under /vsizip/ or /vsigzip/, or inside GTIFF_DIR:1:FILE."""
    import gzip
    import zipfile

    bands = [write_tif(tmp_path / f"f_B{i}.tif", np.zeros((1, 2, 2), np.float32)) for i in (1, 2)]
    whole = write_tif(tmp_path / "c2.tif", np.zeros((2, 2, 2), np.float32))
    arch = tmp_path / "f.zip"
    with zipfile.ZipFile(arch, "w") as z:
        z.write(whole, "F.tif")
    gz = tmp_path / "c2.tif.gz"
    gz.write_bytes(gzip.compress(whole.read_bytes()))
    forms = [
        (whole, f"{whole}:1,2"),
        (bands[1], f"{bands[0]},{bands[1]}"),
        (bands[1], str(tmp_path / "f_B[12].tif")),
        (bands[0], str(tmp_path / "f_B*.tif") + ":1"),
        (arch, f"/vsizip/{arch}/F.tif"),
        (gz, f"/vsigzip/{gz}"),
        (whole, f"GTIFF_DIR:1:{whole}"),
    ]
    # relative archive paths and GDAL's braces (a trial: only absolute ones were found)
    tgz = tmp_path / "bundle.tgz"
    tgz.write_bytes(gzip.compress(whole.read_bytes()))
    monkey = os.getcwd()
    os.chdir(tmp_path)
    try:
        for spec in ("/vsitar/bundle.tgz/C2.tif", "/vsizip/{bundle.tgz}/C2.tif"):
            with pytest.raises(OutputExistsError, match="never modified"):
                check_output(tgz, overwrite=True, inputs=[spec])
        with pytest.raises(OutputExistsError, match="never modified"):
            check_output(whole, overwrite=True, inputs=["/vsigzip/c2.tif"])
    finally:
        os.chdir(monkey)
    for out, spec in forms:
        # (an archive's name is also refused as no raster's)
        with pytest.raises(
            (OutputExistsError, InvalidParameterError), match=r"never modified|not a raster's"
        ):
            check_output(out, overwrite=True, inputs=[spec])
    assert check_output(tmp_path / "other.tif", overwrite=True, inputs=[s for _, s in forms])


def test_a_container_of_subdatasets_names_them(tmp_path: Path) -> None:
    """A user trial: a netCDF file with one variable per band (what gdal_translate -of
    netCDF writes) ended in a KeyError traceback ('pop from an empty set')."""
    from rasterio.shutil import copy

    tif = write_tif(tmp_path / "f.tif", np.zeros((3, 4, 4), np.float32))
    with rasterio.open(tif) as src:
        copy(src, tmp_path / "multi.nc", driver="netCDF")
    with pytest.raises(InputFileError, match=r"no raster of its own but 3 subdatasets \(.*Band1"):
        FileSource(str(tmp_path / "multi.nc"))


def test_gdal_names_take_a_band_choice(tmp_path: Path) -> None:
    """A user trial: any band choice (--fine-bands, or FILE:BANDS) made /vsizip/, /vsigzip/
    and netCDF subdataset inputs "file not found"; GDAL lists the latter in lower case."""
    import zipfile

    from rasterio.shutil import copy

    data = np.arange(3 * 4 * 4, dtype=np.float32).reshape(3, 4, 4)
    tif = write_tif(tmp_path / "f.tif", data)
    with zipfile.ZipFile(tmp_path / "f.zip", "w") as z:
        z.write(tif, "f.tif")
    with rasterio.open(tif) as src:
        copy(src, tmp_path / "multi.nc", driver="netCDF")
    inside = f"/vsizip/{tmp_path / 'f.zip'}/f.tif"
    for spec, bands in ((inside, ("3", "1")), (f"{inside}:3,1", None)):
        src = FileSource(spec, Scaling(bands=bands))
        np.testing.assert_array_equal(src.read(), data[[2, 0]])
    # a name with a time in it is a name, not FILE:BANDS (a trial: "T10:30:00.tif")
    from stfusion.io.stacks import split_spec

    timed = f"/vsizip/{tmp_path / 'f.zip'}/MOD_2001-11-02T10:30:00.tif"
    assert split_spec(timed) == ([timed], None)
    assert split_spec("/vsicurl/https://h/f.tif?st=2026-12-06T10:30")[1] is None
    # a band list after a subdataset name: the message says where it goes (a trial: it
    # said to check "the archive or URL")
    with pytest.raises(InputFileError, match="band choice goes in --fine-bands"):
        FileSource(f"NETCDF:{tmp_path / 'multi.nc'}:Band2:1,2")
    sub = f"netcdf:{tmp_path / 'multi.nc'}:Band2"
    got = FileSource(sub, Scaling(bands=("1",))).read()
    np.testing.assert_array_equal(np.sort(got.ravel()), np.sort(data[1].ravel()))


def test_missing_and_non_raster(tmp_path: Path) -> None:
    with pytest.raises(InputFileError, match="not found"):
        FileSource(str(tmp_path / "missing.tif"))
    bad = tmp_path / "bad.tif"
    bad.write_text("not a raster")
    with pytest.raises(InputFileError, match="not a raster"):
        FileSource(str(bad))


def _native_coarse(tmp_path: Path, fine: np.ndarray, r: int) -> tuple[Path, Grid]:
    fgrid = Grid(
        CRS.from_epsg(32755),
        Affine(30.0, 0, 500000.0, 0, -30.0, 6100000.0),
        fine.shape[2],
        fine.shape[1],
    )
    coarse = block_mean(fine, r)
    p = write_tif(
        tmp_path / "coarse.tif",
        coarse,
        transform=Affine(30.0 * r, 0, 500000.0, 0, -30.0 * r, 6100000.0),
    )
    return p, fgrid


def test_aligned_source_nearest_equals_blocks_and_tiles(tmp_path: Path) -> None:
    fine = np.random.default_rng(1).random((2, 40, 48)).astype(np.float32)
    p, fgrid = _native_coarse(tmp_path, fine, 8)
    al = AlignedSource(FileSource(str(p)), fgrid, "nearest")
    whole = al.read()
    np.testing.assert_allclose(whole, upsample_blocks(block_mean(fine, 8), 8, (40, 48)))
    tiled = np.concatenate(
        [
            np.concatenate(
                [al.read(Window(c, r, 16, 20), 3)[:, 3:-3, 3:-3] for c in range(0, 48, 16)], axis=2
            )
            for r in range(0, 40, 20)
        ],
        axis=1,
    )
    np.testing.assert_array_equal(tiled, whole)
    for resampling in ("bilinear", "cubic"):
        al2 = AlignedSource(FileSource(str(p)), fgrid, resampling)
        part = al2.read(Window(8, 8, 16, 16), 4)
        np.testing.assert_allclose(part, al2.read()[:, 4:28, 4:28], atol=1e-6)


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="Linux /proc only")
def test_zombie_process_is_not_alive() -> None:
    """A killed run not yet reaped by its parent (a zombie) holds nothing: its lock and
    partials are stale (the next run was refused for a second with exit 4)."""
    import subprocess
    import sys
    import time

    from stfusion.io.partials import pid_alive

    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:  # exited, not yet waited for: a zombie
        state = Path(f"/proc/{proc.pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        if state == "Z":
            break
        time.sleep(0.02)
    assert state == "Z"
    assert not pid_alive(proc.pid)
    proc.wait()
    assert not pid_alive(proc.pid) and pid_alive(os.getpid())


def test_metadata_gdal_does_not_apply_is_read(tmp_path: Path) -> None:
    """A MODIS GeoTIFF converted from HDF keeps scale_factor/_FillValue as band tags, and an
    ENVI header may state a reflectance scale factor: GDAL applies neither, so both were read
    raw (x10000 "reflectance", the fill fused as data)."""
    dn = np.array([[[100, 200], [-28672, 4000]]], dtype=np.int16)
    tagged = write_tif(tmp_path / "m.tif", dn, dtype="int16")
    with rasterio.open(tagged, "r+") as ds:
        ds.update_tags(1, scale_factor="0.0001", add_offset="0", _FillValue="-28672")
    src = FileSource(str(tagged))
    assert src.scale_source == "file metadata (scale_factor/add_offset tags)"
    arr = src.read()
    np.testing.assert_allclose(arr[0, 0], [0.01, 0.02], rtol=1e-6)
    assert np.isnan(arr[0, 1, 0]) and np.isnan(src.sample()[0, 1, 0])
    # what the user gives still wins
    assert FileSource(str(tagged), Scaling(1.0, 0.0)).read()[0, 0, 0] == 100
    envi = tmp_path / "r.img"
    with rasterio.open(envi, "w", driver="ENVI", width=2, height=2, count=1, dtype="int16") as ds:
        ds.write(dn)
    hdr = tmp_path / "r.hdr"
    hdr.write_text(hdr.read_text() + "reflectance scale factor = 10000\n")
    src = FileSource(str(envi))
    assert src.scale == pytest.approx(1e-4) and "ENVI reflectance scale factor" in src.scale_source


def test_metadata_tags_survive_a_band_choice_and_a_stack(tmp_path: Path) -> None:
    """A band choice (``FILE:2,1``, --coarse-bands) or a stack of band files read the
    scale_factor tags as 1 and the _FillValue as data (a 7-band MOD09GA GeoTIFF always needs
    a choice); and evaluate crashed on a stack's missing fill values."""
    dn = np.array([[[100, 200], [-28672, 4000]], [[300, 400], [-28672, 5000]]], np.int16)
    path = write_tif(tmp_path / "MOD09GA.A2001290.sur_refl.tif", dn, dtype="int16")
    with rasterio.open(path, "r+") as ds:
        ds.update_tags(scale_factor="0.0001", _FillValue="-28672")
    whole = FileSource(str(path)).read()
    chosen = FileSource(f"{path}:2,1")
    assert chosen.scale == pytest.approx(1e-4) and chosen.fill_ == (-28672.0,)
    np.testing.assert_array_equal(chosen.read(), whole[[1, 0]])
    files = []
    for b in range(2):
        one = write_tif(tmp_path / f"M.sur_refl_b0{b + 1}_1.tif", dn[b], dtype="int16")
        with rasterio.open(one, "r+") as ds:
            ds.update_tags(1, scale_factor="0.0001", _FillValue="-28672")
        files.append(str(one))
    stack = FileSource(",".join(files))
    np.testing.assert_array_equal(stack.read(), whole)
    assert np.isnan(stack.sample()[:, 1, 0]).all()


def test_metadata_tags_on_the_dataset_per_band_and_beside_nodata(tmp_path: Path) -> None:
    dn = np.array([[[100, 200], [-28672, 4000]], [[300, 400], [-28672, 5000]]], np.int16)

    def tagged(name: str, nodata: float | None = None, **per_band: dict[str, str]) -> str:
        path = write_tif(tmp_path / name, dn, dtype="int16", nodata=nodata)
        with rasterio.open(path, "r+") as ds:
            for key, tags in per_band.items():
                if key == "dataset":
                    ds.update_tags(**tags)
                else:
                    ds.update_tags(int(key[1:]), **tags)
        return str(path)

    # the dataset's scale_factor applies to every band, as its _FillValue did
    src = FileSource(tagged("ds.tif", dataset={"scale_factor": "0.0001", "_FillValue": "-28672"}))
    assert src.scale == pytest.approx(1e-4) and np.isnan(src.read()[:, 1, 0]).all()
    # bands tagged differently: an error, as GDAL scales that differ are
    with pytest.raises(InputFileError, match="different scale_factor/add_offset tags"):
        FileSource(tagged("pb.tif", b1={"scale_factor": "0.001"}, b2={"scale_factor": "0.0001"}))
    # ... unless the scale is given
    given = tagged("pb2.tif", b1={"scale_factor": "0.001"}, b2={"scale_factor": "0.0001"})
    assert FileSource(given, Scaling(1e-4, 0.0)).scale == 1e-4
    # add_offset alone: value = stored - add_offset
    src = FileSource(tagged("ao.tif", dataset={"add_offset": "100"}))
    assert src.read()[0, 0, 0] == 0.0
    # a _FillValue other than the GDAL nodata is a second fill
    src = FileSource(tagged("two.tif", nodata=-9999, dataset={"_FillValue": "-28672"}))
    assert np.isnan(src.read()[:, 1, 0]).all()


def test_a_given_nodata_and_a_fillvalue_tag_both_apply(tmp_path: Path) -> None:
    dn = np.array([[[100, -9999], [-28672, 4000]]], np.int16)
    path = write_tif(tmp_path / "f.tif", dn, dtype="int16")
    with rasterio.open(path, "r+") as ds:
        ds.update_tags(1, _FillValue="-28672")
    arr = FileSource(str(path), Scaling(nodata=-9999)).read()[0]
    assert np.isnan(arr[0, 1]) and np.isnan(arr[1, 0]) and arr[0, 0] == 100


def test_an_output_folder_that_takes_no_file_is_refused_up_front(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Root passes os.access for /proc and /sys, and the error came at the end naming the
    hidden temporary file; now a file is tried in the folder first, and nothing is left."""
    import tempfile

    from stfusion.errors import InputFileError
    from stfusion.io.writing import check_output

    check_output(tmp_path / "p.tif", overwrite=False)
    assert list(tmp_path.iterdir()) == []  # the probe is gone

    def refuse(*a: object, **k: object) -> str:
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(tempfile, "mkdtemp", refuse)
    with pytest.raises(InputFileError, match=r"p\.tif: cannot create files in .*Permission denied"):
        check_output(tmp_path / "p.tif", overwrite=False)


def test_an_array_and_its_file_give_the_same_sample(tmp_path: Path) -> None:
    """Above `max_pixels` the sample of an array (or DataArray) took every step-th row from
    the top, a file GDAL's decimation rows: FSDAF's classes, and so its prediction, differed
    between BOREAS as files and as arrays (up to 0.029)."""
    from stfusion.io import ArraySource

    data = np.random.default_rng(0).random((2, 301, 257)).astype(np.float32)
    path = write_tif(tmp_path / "a.tif", data)
    from_file = FileSource(str(path)).sample(5000)
    from_array = ArraySource(data, FileSource(str(path)).grid).sample(5000)
    assert from_file.shape[1] * from_file.shape[2] < data.shape[1] * data.shape[2]
    np.testing.assert_array_equal(from_array, from_file)


def test_sources_named_by_relative_paths_read_the_same_files_after_chdir(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An estimator fitted in one folder on relative names, predicting after the working
    directory moved to another folder holding files of the same names, read those (a
    silently wrong prediction): sources keep the files they opened."""
    from stfusion.methods import get_method

    here, there = tmp_path / "here", tmp_path / "there"
    for d, level in ((here, 0.1), (there, 0.5)):
        d.mkdir()
        rng = np.random.default_rng(0)
        write_tif(d / "fine.tif", (level + 0.01 * rng.random((2, 8, 8))).astype("float32"))
        ramp = np.linspace(0, 0.01, 128, dtype=np.float32).reshape(2, 8, 8)
        write_tif(d / "coarse.tif", level + ramp)
        write_tif(d / "target.tif", 2 * level + ramp)
        for b in (1, 2):  # single-band files, read as one stack through a glob
            write_tif(d / f"band_B{b}.tif", level * b + ramp[:1])
    monkeypatch.chdir(here)
    stack = FileSource("band_B*.tif")
    fine = FileSource("fine.tif")  # opened by its absolute path, named as given
    assert fine.label == "fine.tif" and fine.path == str(here / "fine.tif")
    est = get_method("additive")()
    est.fit([("fine.tif", "coarse.tif")], ratio=4)
    est.prepare("target.tif")
    monkeypatch.chdir(there)
    pred = np.asarray(est.predict().values)
    monkeypatch.chdir(here)
    again = get_method("additive")().fit([("fine.tif", "coarse.tif")], ratio=4)
    want = np.asarray(again.predict("target.tif").values)
    np.testing.assert_array_equal(pred, want)
    monkeypatch.chdir(there)
    np.testing.assert_allclose(stack.read()[:, 0, 0], [0.1, 0.2])


def test_a_file_behind_a_folder_that_may_not_be_entered_or_too_long_a_name_is_said_plainly(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Both were raw OS errors ("[Errno 13] Permission denied: '...'", "[Errno 36] File
    name too long: '<4 KB path>'"). (The folder case through Path.is_file/exists, as a
    non-root user meets it: the tests may run as root.)"""
    from stfusion.errors import InputFileError, UnreadableInputError

    hidden = tmp_path / "closed" / "x.tif"
    real_is_file, real_exists = Path.is_file, Path.exists

    def denied(real):  # type: ignore[no-untyped-def]
        def check(self: Path) -> bool:
            if self == hidden:
                raise PermissionError(13, "Permission denied", str(self))
            return bool(real(self))

        return check

    monkeypatch.setattr(Path, "is_file", denied(real_is_file))
    monkeypatch.setattr(Path, "exists", denied(real_exists))
    with pytest.raises(UnreadableInputError, match="a folder on its path may not be entered"):
        FileSource(str(hidden))
    # predict checks its output against its inputs first: that raised the raw error there
    check_output(tmp_path / "out.tif", False, [str(hidden)])
    monkeypatch.undo()
    with pytest.raises(InputFileError, match=r"cannot be opened \(File name too long\)"):
        FileSource(str(tmp_path / ("a" * 300 + ".tif")))


def test_a_utf8_name_read_through_an_ascii_locale_gets_the_setting_to_change() -> None:
    """Under LC_ALL=C with PYTHONUTF8=0 Python reads the UTF-8 bytes of 'ü' as two escaped
    bytes; the name was called "not valid UTF-8: rename the file", which it is not."""
    from stfusion.errors import InputFileError
    from stfusion.io.files import check_name

    as_read = b"/data/pred_\xc3\xbc.tif".decode("ascii", "surrogateescape")
    with pytest.raises(InputFileError, match="is UTF-8, but this Python reads file names"):
        check_name(as_read, "output")
    with pytest.raises(InputFileError, match="not valid UTF-8"):  # latin-1 bytes: truly not
        check_name(b"/data/pred_\xfc.tif".decode("ascii", "surrogateescape"), "output")


def test_training_runs_record_files_as_before_and_series_with_the_inode(tmp_path: Path) -> None:
    """The inode joined the series' resume identity; a training checkpoint's identity
    keeps its three fields, or every checkpoint written before refused --resume as
    "changed since" (and mounts whose inodes change would never resume)."""
    from stfusion.io.files import file_stat
    from stfusion.io.stacks import spec_file_stats as training_identity
    from stfusion.series import file_identity as series_identity

    p = write_tif(tmp_path / "a.tif", np.zeros((1, 4, 4), np.float32))
    assert len(file_stat(str(p))) == 3 and len(training_identity(str(p))[0]) == 3
    assert series_identity(str(p))[3] == p.stat().st_ino


def test_an_unreadable_input_is_named_as_given(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The error named the absolute path the source now opens by, not the one typed."""
    from stfusion.errors import UnreadableInputError

    write_tif(tmp_path / "x.tif", np.zeros((1, 4, 4), np.float32))
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(os, "access", lambda p, mode, **kw: False)
    with pytest.raises(UnreadableInputError, match=r"^x\.tif: cannot be read"):
        FileSource("x.tif")


def test_gdal_sidecars_of_a_replaced_output_go(tmp_path: Path) -> None:
    """A GIS trial: after `predict --overwrite` (and a series date recomputed), gdalinfo
    reported the old statistics from OUT.tif.aux.xml and a zoomed-out read showed the old
    image from OUT.tif.ovr (mean 0.0416 against 0.2469)."""
    from stfusion.io import atomic_path

    out = tmp_path / "p.tif"
    out.write_bytes(b"old")
    sidecars = [tmp_path / f"p.tif{side}" for side in (".aux.xml", ".ovr", ".msk")]
    for side in sidecars:
        side.write_text("of the old file")
    other = tmp_path / "q.tif.aux.xml"  # another file's: left alone
    other.write_text("q's")
    with atomic_path(out, overwrite=True) as tmp:
        tmp.write_bytes(b"new")
    assert out.read_bytes() == b"new" and not any(s.exists() for s in sidecars)
    assert other.exists()
