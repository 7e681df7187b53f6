"""Figures are written, non-blank, and show what they claim (difference map is diverging)."""

import numpy as np
from matplotlib.image import imread

from products.maps import MAP_FILES, make_all_figures


def _pixels(path):
    img = imread(path)
    return img[..., :3] if img.ndim == 3 else img


def test_all_figures_written_and_non_blank(fake_run, tmp_path):
    out = tmp_path / "maps"
    paths = make_all_figures(fake_run["posterior"], fake_run["districts"], fake_run["modelled"],
                             fake_run["selected"], fake_run["stations"], fake_run["geojson"], out,
                             days=["20250101"], hours_per_day=4)
    names = {p.name for p in paths}
    assert set(MAP_FILES.values()) <= names
    assert {"timeseries_AAA.png", "timeseries_BBB.png"} <= names
    assert sorted(p.name for p in out.iterdir()) == sorted(names)  # no temporary files left
    for p in paths:
        px = _pixels(p)
        assert px.shape[0] > 200 and px.shape[1] > 300
        assert px.var() > 1e-3, f"{p.name} is blank"
    # prior and posterior differ (different fields, same colour scale)
    a, b = _pixels(out / MAP_FILES["prior_flux"]), _pixels(out / MAP_FILES["posterior_flux"])
    assert a.shape == b.shape and np.abs(a - b).mean() > 1e-3
    # the difference map uses a diverging map: both reddish and bluish pixels are present
    d = _pixels(out / MAP_FILES["flux_difference"])
    red = (d[..., 0] > d[..., 2] + 0.2).sum()
    blue = (d[..., 2] > d[..., 0] + 0.2).sum()
    assert red > 500 and blue > 500


def test_figures_are_deterministic(fake_run, tmp_path):
    args = (fake_run["posterior"], fake_run["districts"], fake_run["modelled"],
            fake_run["selected"], fake_run["stations"], fake_run["geojson"])
    p1 = make_all_figures(*args, tmp_path / "a", days=["20250101"])
    p2 = make_all_figures(*args, tmp_path / "b", days=["20250101"])
    for x, y in zip(p1, p2):
        assert x.read_bytes() == y.read_bytes(), x.name
