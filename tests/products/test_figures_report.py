"""The report carries the figures of products.figures when the pipeline passes the Jacobian, the
site-day files and posterior.nc: each at its place, with its caption; what cannot be drawn is named
under Missing."""

import base64
import html as html_lib
import io
import re

import matplotlib.image as mpimg

from figures_world import write_month
from products import figures as F
from products.report import build_report


def _images(html: str) -> list[bytes]:
    return [base64.b64decode(m) for m in re.findall(r'src="data:image/png;base64,([^"]+)"', html)]


def _report(fake_run, month, **extra):
    kw = dict(month="2025-01", districts_csv=fake_run["districts"], diagnostics_json=fake_run["diagnostics"],
              modelled_csv=fake_run["modelled"], selected_csv=fake_run["selected"],
              stations_yaml=fake_run["stations"], maps_dir=fake_run["R"] / "maps", days=["20250101"],
              hours_per_day=6, power_heatmap=fake_run["heatmap"], power_summary=fake_run["summary"])
    kw.update(extra)
    return build_report(**kw)


def test_report_places_the_figures_with_captions(fake_run, tmp_path):
    from products.maps import make_all_figures

    month = write_month(tmp_path / "R")
    make_all_figures(fake_run["posterior"], fake_run["districts"], fake_run["modelled"], fake_run["selected"],
                     fake_run["stations"], fake_run["geojson"], fake_run["R"] / "maps", days=["20250101"],
                     hours_per_day=6)
    plain = _report(fake_run, month, districts_geojson=fake_run["geojson"])
    html = _report(fake_run, month, jacobian=month["jacobian"], posterior_nc=fake_run["posterior"],
                   footprint_files=month["files"], failures_csv=month["failures_csv"],
                   districts_geojson=fake_run["geojson"])
    before, after = _images(plain), _images(html)
    assert len(after) == len(before) + 4  # footprints, sensitivity, averaging kernel, transport losses
    new = [png for png in after if png not in before]
    assert len(new) == 4 and all(mpimg.imread(io.BytesIO(p), format="png").size > 0 for p in new)
    for key in ("mean_footprints", "network_sensitivity", "averaging_kernel", "transport_losses"):
        assert html_lib.escape(F.CAPTIONS[key]["en"][:60]) in html, key
    # placement: sensitivity and averaging kernel among the flux maps, footprints with the stations
    flux_maps = html.index(html_lib.escape(F.CAPTIONS["network_sensitivity"]["en"][:60]))
    stations = html.index(html_lib.escape(F.CAPTIONS["mean_footprints"]["en"][:60]))
    assert html.lower().index("uncertainty reduction 1") < flux_maps < stations
    # the fake run has no aggregate covariance, no sector columns and no target-tank runs: named
    missing = html.split("Missing")[-1]
    for text in ("figure district correlation", "figure prior signal by sector", "figure target tank"):
        assert text in missing, text
