"""FSDAF's hand-written k-means and local thin-plate splines against scipy's (issue 12).

They are kept because they are faster and handle cases scipy's do not (docs/methods/fsdaf.md,
"Implementation: scipy or hand-written"; numbers from benchmarks/bench_fsdaf_scipy.py); these
tests hold the claim that they compute the same thing.
"""

from __future__ import annotations

import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
from scipy.interpolate import RBFInterpolator

from conftest import LGC, SHARED_DATA
from stfusion.methods.fsdaf_classes import kmeans
from stfusion.methods.fsdaf_spline import block_centres, fit_spline

# The scipy k-means the benchmark times is the one checked here.
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
from bench_fsdaf_scipy import scipy_kmeans


def test_kmeans_equals_scipy_kmeans2_on_separated_clusters() -> None:
    """Same random draws (k-means++ seeding from one Generator), same Lloyd steps: the same
    centres to the last bit."""
    rng = np.random.default_rng(0)
    centres = np.array([[0.1, 0.2, 0.3], [0.5, 0.1, 0.2], [0.3, 0.6, 0.1], [0.8, 0.8, 0.5]])
    x = np.concatenate([c + rng.normal(0, 0.02, (500, 3)) for c in centres])
    for seed in (0, 7):
        np.testing.assert_array_equal(kmeans(x, 4, seed), scipy_kmeans(x, 4, seed))


@pytest.mark.realdata(LGC)
def test_kmeans_equals_scipy_kmeans2_on_lgc_flood() -> None:
    """FSDAF's own sample of lgc-flood's F1 (the named case), 6 classes (ISODATA's start)."""
    from stfusion.io import FileSource, Scaling
    from stfusion.methods.fsdaf import KMEANS_SAMPLE

    s = FileSource(str(SHARED_DATA / "lgc_fsdaf" / "Landsat20041126"), Scaling(1e-4))
    a = s.sample(KMEANS_SAMPLE)
    x = np.ascontiguousarray(a.reshape(a.shape[0], -1).T, dtype=np.float64)
    x = x[np.isfinite(x).all(axis=1)]
    np.testing.assert_array_equal(kmeans(x, 6, 0), scipy_kmeans(x, 6, 0))


def test_kmeans_with_fewer_distinct_rows_than_classes_where_scipy_repeats_centres() -> None:
    x = np.repeat(np.array([[0.1, 0.2], [0.5, 0.5], [0.9, 0.1]]), 50, axis=0)
    assert len(kmeans(x, 5)) == 3
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # scipy divides 0 by 0 seeding the 4th centre
        theirs = scipy_kmeans(x, 5, 0)
    assert len(theirs) == 5 and len(np.unique(theirs, axis=0)) == 3


def test_local_spline_is_scipys_tps_through_the_neighbourhood() -> None:
    """A coarse pixel's local spline (radius 2) is scipy's TPS through the centres of its
    (2 radius + 1)^2 neighbourhood (float32 weights: 1e-5); RBFInterpolator(neighbors=25),
    the 25 centres nearest each fine pixel, is another function."""
    rng = np.random.default_rng(1)
    r, shape, radius = 4, (30, 26), 2  # partial edge blocks
    vals = rng.normal(0.3, 0.05, (1, 8, 7))
    got = fit_spline(vals, r, shape, radius).evaluate(0, 0, *shape)[0]
    cy, cx = block_centres(shape[0], r), block_centres(shape[1], r)
    for i, j in ((0, 0), (3, 4), (7, 6)):
        ii = np.arange(max(0, i - radius), min(8, i + radius + 1))
        jj = np.arange(max(0, j - radius), min(7, j + radius + 1))
        pts = np.stack(np.meshgrid(cy[ii], cx[jj], indexing="ij"), -1).reshape(-1, 2)
        tps = RBFInterpolator(pts, vals[0][np.ix_(ii, jj)].ravel(), kernel="thin_plate_spline")
        ys = np.arange(i * r, min(i * r + r, shape[0]))
        xs = np.arange(j * r, min(j * r + r, shape[1]))
        q = np.stack(np.meshgrid(ys, xs, indexing="ij"), -1).reshape(-1, 2).astype(float)
        want = tps(q).reshape(len(ys), len(xs))
        np.testing.assert_allclose(got[np.ix_(ys, xs)], want, atol=1e-5)
    pts = np.stack(np.meshgrid(cy, cx, indexing="ij"), -1).reshape(-1, 2)
    yy, xx = np.mgrid[0 : shape[0], 0 : shape[1]]
    q = np.column_stack([yy.ravel(), xx.ravel()]).astype(float)
    nearest = RBFInterpolator(pts, vals[0].ravel(), kernel="thin_plate_spline", neighbors=25)
    assert np.abs(nearest(q).reshape(shape) - got).max() > 1e-4
