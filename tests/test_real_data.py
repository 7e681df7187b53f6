"""The real-data transport path of config/examples/real_transport.yaml (demo.enabled: false):
ERA5 in the CDS layout converted one UTC day at a time (rule met_convert), met coverage checked,
receptors of the example's station matched with openghg's public NAME footprints (rule
footprint_matches), site-day files on the state grid (rule footprints, footprints_from: files)
and the Jacobian (rule jacobian), each through the functions the rules' scripts call.

Not run through Snakemake: a real run always takes a whole month and the public footprint file
covers 8 hours of one day, so the month's other receptors would (rightly) stop the matching rule;
docs/transport.md says what a whole real run still lacks.
"""

import zipfile
from pathlib import Path

import netCDF4
import numpy as np
import pandas as pd
import pytest
import xarray as xr
import yaml

from gzcarbon.config import load_config
from gzcarbon.demo.met import met_fields
from stations.sites import load_sites
from transport import check_met_coverage, era5_to_arl
from transport.arl import G, PRESSURE_LEVELS, MetGrid
from transport.from_files import (FootprintMatchError, find_footprint_files, footprint_catalogue,
                                  match_receptors, site_day_from_files)
from transport.jacobian import assemble, hour_axis, load_jacobian, save_jacobian
from transport.receptors import schedule

REPO = Path(__file__).resolve().parents[1]
EXAMPLE = REPO / "config" / "examples" / "real_transport.yaml"


def _cds_files(tmp_path, bounds, times):
    """ERA5 as the new CDS delivers it: pressure levels in one NetCDF, single levels in a zip
    split by step type (fields: the demo met's, in ERA5 names and units)."""
    g = MetGrid.from_bounds(bounds)
    pl = {k: [] for k in ("z", "t", "u", "v", "w", "r")}
    sl = {k: [] for k in ("z", "sp", "msl", "t2m", "u10", "v10", "blh", "zust", "sshf")}
    for t in times:
        s, lv = met_fields(t, bounds, seed=5)
        for k, a, f in (("z", "HGTS", G), ("t", "TEMP", 1), ("u", "UWND", 1), ("v", "VWND", 1),
                        ("w", "WWND", 100), ("r", "RELH", 1)):
            pl[k].append(lv[a] * f)
        for k, a, f in (("z", "SHGT", G), ("sp", "PRSS", 100), ("msl", "MSLP", 100),
                        ("t2m", "T02M", 1), ("u10", "U10M", 1), ("v10", "V10M", 1),
                        ("blh", "PBLH", 1), ("zust", "USTR", 1), ("sshf", "SHTF", -3600)):
            sl[k].append(s[a] * f)
    c = {"valid_time": times, "latitude": g.lats[::-1], "longitude": g.lons, "number": 0}
    d4, d3 = ("valid_time", "pressure_level", "latitude", "longitude"), ("valid_time", "latitude",
                                                                        "longitude")
    xr.Dataset({k: (d4, np.array(v, np.float32)[:, :, ::-1]) for k, v in pl.items()},
               coords={**c, "pressure_level": list(PRESSURE_LEVELS)}).to_netcdf(tmp_path / "pl.nc")
    inst = xr.Dataset({k: (d3, np.array(v, np.float32)[:, ::-1]) for k, v in sl.items()
                       if k != "sshf"}, coords=c)
    acc = xr.Dataset({"sshf": (d3, np.array(sl["sshf"], np.float32)[:, ::-1])}, coords=c)
    with zipfile.ZipFile(tmp_path / "sl.zip", "w") as zf:
        for name, ds in (("data_stream-oper_stepType-instant.nc", inst),
                         ("data_stream-oper_stepType-accum.nc", acc)):
            ds.to_netcdf(tmp_path / name)
            zf.write(tmp_path / name, name)
    return [str(tmp_path / "pl.nc"), str(tmp_path / "sl.zip")]


def test_real_transport_example(tmp_path, monkeypatch):
    monkeypatch.chdir(REPO)  # the example's paths are relative to the repository
    raw = yaml.safe_load(EXAMPLE.read_text())
    met_bounds = dict(raw["met"])
    times = pd.date_range("2014-06-30 00:00", "2014-07-01 23:00", freq="h")
    raw["inputs"]["era5_files"] = _cds_files(tmp_path, met_bounds, times)
    cfg = load_config(raw)
    assert not cfg.demo.enabled and cfg.transport.footprints_from == "files"

    # rule met_convert: one UTC day per job
    met = []
    for day in ("20140630", "20140701"):
        met += era5_to_arl(cfg.inputs.era5_files, tmp_path / "met", days=[day])
    assert [p.name for p in met] == ["20140630_gz.arl", "20140701_gz.arl"]

    # rule receptors
    sites = load_sites(cfg.stations_file)
    rec = schedule(sites, ["20140701"], cfg.stations.select_hours_local,
                   cfg.stations.utc_offset_hours)
    assert len(rec) == 8
    check_met_coverage(met, rec, cfg.transport.n_hours)  # the ERA5-derived met covers them

    # rule footprint_matches: the file has a release every 2 h; the odd hours are named
    cat = footprint_catalogue(find_footprint_files(cfg.transport.footprint_files))
    with pytest.raises(FootprintMatchError) as err:
        match_receptors(rec, cat)
    odd = [r for r in rec.receptor_id if int(r.split("_")[1][8:10]) % 2]
    assert f"{len(odd)} receptor(s) have no footprint" in str(err.value)
    assert all(r in str(err.value) for r in odd)
    rec = rec[~rec.receptor_id.isin(odd)].reset_index(drop=True)
    m = match_receptors(rec, cat)

    # rule footprints (footprints_from: files)
    sd = tmp_path / "footprints" / "TAC" / "20140701.nc"
    site_day_from_files(m, cfg.grid.as_dict(), sd, cfg.transport.n_hours,
                        cfg.transport.footprint_layer_height)

    # rule jacobian
    start, end = pd.Timestamp("2014-06-29"), pd.Timestamp("2014-07-02")
    res = assemble([sd], rec, cfg.grid.as_dict(), start, end)
    save_jacobian(tmp_path / "jacobian_hourly.npz", res.H, rec, hour_axis(start, end),
                  cfg.grid.as_dict(), outside=res.outside, missing=res.missing)
    jac = load_jacobian(tmp_path / "jacobian_hourly.npz")
    assert jac.H.shape == (4, 72 * 16 * 12)
    with netCDF4.Dataset(cfg.transport.footprint_files) as nc:  # independent read
        hires = np.asarray(nc["fp_HiTRes"][:].filled(np.nan), np.float64)  # lat, lon, time, back
    totals = np.nansum(hires, axis=(0, 1, 3))
    np.testing.assert_allclose(np.asarray(jac.H.sum(axis=1)).ravel() + jac.outside, totals,
                               rtol=1e-6)
    # nothing is attributed to hours after a receptor's release
    hours = np.asarray(jac.H.nonzero()[1]) // (16 * 12)
    rows = np.asarray(jac.H.nonzero()[0])
    release_hour = ((pd.to_datetime(rec.time).dt.floor("h") - start) / pd.Timedelta("1h")).to_numpy()
    assert np.all(hours <= release_hour[rows])
