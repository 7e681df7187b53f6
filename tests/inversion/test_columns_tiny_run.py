"""Tiny run with columns: EM27/SUN and OCO-2 files written from the truth seen through the truth's
own transport (real HYSPLIT on the tiny met), read back, turned into column rows by the
inversion's transport and inverted with the in-situ sites of the tiny synthetic world."""
import numpy as np
import pandas as pd
import pytest

from gzcarbon.demo.columns import (column_truth, oco_kernel, oco_levels, oco_pressure_weight,
                                   oco_sounding_ids, proffast_text, write_oco_lite)
from gzcarbon.demo.met import write_met_day
from gzcarbon.demo.truth_errors import TruthTransport
from gzcarbon.grid import Grid
from inversion.extra_obs import column_extra
from inversion.run import invert
from stations.columns import read_oco_lite, read_proffast
from transport.columns import column_jacobian_row, ground_operator, column_operator, hourly_soundings
from transport.stilt_driver import StiltSettings, met_config
from test_extra_observations import _inputs
from test_run import CFG, LAT0, LON0, NX, NY, RES, fake_world

MET = dict(lon_min=111.5, lon_max=115.5, lat_min=21.5, lat_max=25.0, res=0.1)
EM27 = dict(lon=113.06, lat=23.05, altitude=20.0, pressure=1012.0)
B = 420.0


def write_truth_files(w, met, grid, hours, truth_tt, tmp_path, rng):
    """The demo's column files of the tiny world, from the truth through the truth's transport."""
    em_times = [pd.Timestamp(f"2025-01-0{d} {h:02d}:30") for d in (2, 3) for h in (4, 5)]
    em_op = ground_operator(EM27["pressure"])
    spectra = []
    for t in em_times:
        row, _ = column_jacobian_row(dict(time=t, lon=EM27["lon"], lat=EM27["lat"], receptor_id=f"T_EM_{t:%d%H}"),
                                     em_op, met, grid, hours, truth_tt, tmp_path)
        x = column_truth(row, w["truth"], [em_op], B)[0]
        for k in range(6):  # six spectra in the hour, 0.3 ppm noise each
            spectra.append(dict(time=t - pd.Timedelta(minutes=25) + pd.Timedelta(minutes=8 * k), lon=EM27["lon"],
                                lat=EM27["lat"], altitude=EM27["altitude"], pressure=EM27["pressure"], sza=55.0,
                                xco2=x + rng.normal(0, 0.3), xch4=1990.0, xco=120.0))
    em_path = tmp_path / "comb_invparms_gz_SN001_250102-250103.csv"
    em_path.write_text(proffast_text(pd.DataFrame(spectra)))

    n = 8
    t_oco = pd.Timestamp("2025-01-02 05:25:10") + pd.to_timedelta(np.arange(n) * 0.333, unit="s")
    psurf = np.full(n, 1011.0)
    pressure = oco_levels(psurf)
    ak, pw = oco_kernel(pressure, psurf), oco_pressure_weight(pressure)
    prior = 421.0 - 4.0 * (1 - pressure / psurf[:, None]) ** 2
    lats = np.array([23.01, 23.02, 23.03, 23.04, 23.06, 23.07, 23.08, 23.09])  # two 0.05-degree cells
    lons = np.full(n, 113.04)
    values = np.empty(n)
    for ix in (np.arange(4), np.arange(4, 8)):  # one truth receptor per cell of the overpass
        cell_op = column_operator(pressure[ix].mean(0), ak[ix].mean(0), pw[ix].mean(0), prior[ix].mean(0), 1011.0)
        row, _ = column_jacobian_row(dict(time=t_oco[0].floor("min"), lon=113.04, lat=float(lats[ix].mean()),
                                          receptor_id=f"T_OCO_{ix[0]}"), cell_op, met, grid, hours, truth_tt,
                                     tmp_path)
        for i in ix:
            op = column_operator(pressure[i], ak[i], pw[i], prior[i], psurf[i])
            values[i] = (row @ w["truth"].ravel())[0] + B * op.background_weight + op.prior_term \
                + rng.normal(0, 0.5)
    table = pd.DataFrame(dict(sounding_id=oco_sounding_ids(t_oco), time=t_oco, lon=lons, lat=lats, value=values,
                              uncertainty=0.5, surface_pressure=psurf, surface_altitude=15.0, solar_zenith=50.0))
    oco_path = tmp_path / "oco2_LtCO2_250102_B11100Ar_demo.nc4"
    write_oco_lite(oco_path, table, pressure, ak, pw, prior)

    return em_path, oco_path


@pytest.mark.slow
def test_columns_written_from_the_truth_shrink_the_district_sigma(tmp_path):
    rng = np.random.default_rng(23)
    w = fake_world()
    hours = w["hours"]
    grid = Grid(lon_min=LON0, lon_max=LON0 + NX * RES, lat_min=LAT0, lat_max=LAT0 + NY * RES, res=RES)
    met_dir = tmp_path / "met"
    files = [write_met_day(met_dir / "20250101_gz.arl", "2025-01-01", MET, seed=3, hours=range(18, 24)),
             write_met_day(met_dir / "20250102_gz.arl", "2025-01-02", MET, seed=3, hours=range(0, 24)),
             write_met_day(met_dir / "20250103_gz.arl", "2025-01-03", MET, seed=3, hours=range(0, 9))]
    met = met_config(files)
    transport = dict(n_hours=6, numpar=100, seed=7, near_field_hours=0)
    inv = StiltSettings.from_config(transport)
    truth_tt = StiltSettings.from_config(TruthTransport().transport_config(transport))
    assert truth_tt.seed != inv.seed and truth_tt.extra  # the truth's own transport

    em_path, oco_path = write_truth_files(w, met, grid, hours, truth_tt, tmp_path, rng)

    # --- the pipeline side: read, hour means, the inversion's own column footprints ---
    g_em, ops_em = hourly_soundings(read_proffast(em_path), "EMA")
    g_oc, ops_oc = hourly_soundings(read_oco_lite(oco_path), "OCO", cell_deg=0.05)
    assert len(g_em) == 4 and list(g_em["n"]) == [6] * 4 and len(g_oc) == 2
    groups = pd.concat([g_em, g_oc], ignore_index=True)
    ops = ops_em + ops_oc
    rows = []
    for k, gr in groups.iterrows():
        r, _ = column_jacobian_row(dict(time=gr["release"].floor("min"), lon=gr["lon"], lat=gr["lat"],
                                        receptor_id=f"{gr['site']}_{k}"), ops[k], met, grid, hours, inv, tmp_path)
        rows.append(r)
    import scipy.sparse as sp

    H_col = sp.vstack(rows, format="csr")
    assert H_col.nnz > 0
    extra = column_extra(groups, ops, H_col, B, mismatch_ppm=0.8, background_sigma_ppm=0.5)

    base = invert(_inputs(w), CFG, "2025-01-02", "2025-01-04")
    both = invert(_inputs(w), CFG, "2025-01-02", "2025-01-04", extra=extra)
    only = _inputs(w)
    only.selected = only.selected.iloc[:0]  # the columns alone
    cols = invert(only, CFG, "2025-01-02", "2025-01-04", extra=extra)
    d0, d1, dc = (o.districts.set_index("district") for o in (base, both, cols))
    sens = np.asarray(H_col.sum(axis=1)).ravel()
    print("column rows' sensitivity to the state (ppm per umol m-2 s-1):", np.round(sens, 4),
          "in-situ rows:", np.round(np.asarray(w["H"].sum(axis=1)).ravel()[:4], 2))
    for k in d0.index:
        print(f"{k}: sigma prior {d0.loc[k, 'prior_sigma_t']:.3f} t, columns alone "
              f"{dc.loc[k, 'posterior_sigma_t']:.3f}, in-situ {d0.loc[k, 'posterior_sigma_t']:.4f}, "
              f"in-situ + columns {d1.loc[k, 'posterior_sigma_t']:.4f}")
    assert np.all(d1["posterior_sigma_t"] < d0["posterior_sigma_t"])
    assert np.all(dc["posterior_sigma_t"] < dc["prior_sigma_t"])
    city = d1.loc["Guangzhou"]
    assert abs(city.posterior_t - city.truth_t) < 3 * city.posterior_sigma_t
    assert len(both.modelled) == 16 + 6 and len(cols.modelled) == 6
