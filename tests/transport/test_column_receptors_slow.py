"""Column receptor on real HYSPLIT particles (tiny demo met): the slab weights, the column
footprint as the weighted sum of the slab footprints, and pystilt's own column transforms."""
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from gzcarbon.demo.met import write_met_day
from stations.columns import read_oco_lite
from transport.columns import (column_footprint, column_operator, column_receptor,
                               scale_height_from_particles, slab_index, weight_particles)
from transport.stilt_driver import met_config

OCO = Path(__file__).resolve().parents[1] / "data" / "columns" / "oco2_LtCO2_250101_B11100Ar_gzcarbon.nc4"
MET = dict(lon_min=111.5, lon_max=115.5, lat_min=21.5, lat_max=25.0, res=0.1)


@pytest.fixture(scope="module")
def particles(tmp_path_factory):
    import stilt

    tmp = tmp_path_factory.mktemp("colrec")
    files = [write_met_day(tmp / "met" / "20250101_gz.arl", "2025-01-01", MET, seed=1,
                           hours=range(0, 8))]
    s = read_oco_lite(OCO)
    rec = dict(time=pd.Timestamp("2025-01-01 05:25"), lon=float(s.table.lon[0]),
               lat=float(s.table.lat[0]))
    op0 = column_operator(s.pressure[0], s.ak[0], s.pressure_weight[0], s.prior[0],
                          float(s.table.surface_pressure[0]))
    p = stilt.run_trajectories(column_receptor(rec, op0), met_config(files), n_hours=-4,
                               numpar=300, krand=2, seed=7, kmixd=0, workdir=tmp / "run")
    return p, s, rec


def _totals(p: pd.DataFrame, n: int) -> float:
    return float(p["foot"].sum()) / n


@pytest.mark.slow
def test_column_footprint_on_real_particles(particles):
    import stilt
    from stilt.transforms.averaging_kernel import AveragingKernel
    from stilt.transforms.pressure_weighting import PressureWeighting, particle_pwf

    p, s, rec = particles
    n = p["particle"].nunique()
    assert n == 300 and p.groupby("particle")["release_height"].nunique().max() == 1
    H = scale_height_from_particles(p)
    assert 7000 < H < 9500  # the demo met's lower troposphere
    op = column_operator(s.pressure[0], s.ak[0], s.pressure_weight[0], s.prior[0],
                         float(s.table.surface_pressure[0]), scale_height_m=H)
    # the released column's share of the air: ours (the retrieval's pressure weights on the
    # particles' hypsometric curve) against pystilt's slabs from the particles' own pressures
    _, pwf = particle_pwf(p)
    assert op.released_fraction == pytest.approx(float(pwf.sum()), rel=0.01)

    # the column footprint equals the weighted sum of the slab footprints: hourly totals ...
    w = weight_particles(p, op)
    first = p.drop_duplicates("particle")
    slab = pd.Series(slab_index(first["release_height"], op.edges_m), index=first["particle"])
    of = slab.reindex(p["particle"]).to_numpy()
    levels = np.array([_totals(p[of == k], int((slab == k).sum())) for k in range(len(op.weights))])
    assert _totals(w, n) == pytest.approx(column_footprint(levels, op.weights), rel=1e-12)
    # ... and gridded, cell by cell (no smoothing: the kernel would depend on the subset)
    grid = stilt.Grid(xmin=112.5, xmax=114.5, ymin=22.2, ymax=24.2, xres=0.05, yres=0.05)
    rc = stilt.PointReceptor(time=rec["time"], longitude=rec["lon"], latitude=rec["lat"],
                             altitude=10.0)
    def foot(parts, n_parts):
        """Gridded footprint summed over time, normalised by ``n_parts``; zeros when no particle
        of the subset touches the surface layer (the upper slabs in a shallow mixed layer)."""
        try:
            fp = stilt.calc_footprint(parts, rc, grid, smooth_factor=0.0).sum("time")
        except stilt.exceptions.EmptyFootprint:
            return None
        return fp.values * len(parts.particle.unique()) / n_parts

    col = foot(w, n)
    lev = []
    for k in range(len(op.weights)):
        sub = p[of == k]
        f = foot(sub, sub.particle.nunique())
        lev.append(np.zeros_like(col) if f is None else f)
    ref = column_footprint(np.stack(lev), op.weights)
    print("slabs with surface sensitivity:", sum(np.any(x > 0) for x in lev), "of", len(lev))
    assert col.sum() > 0
    np.testing.assert_allclose(col, ref, rtol=1e-6, atol=1e-9 * ref.max())

    # pystilt's transforms (pressure weighting from the particles' own pressures, then the
    # kernel at each particle's release height) give the same column sensitivity to within the
    # slab discretisation
    ps = float(s.table.surface_pressure[0])
    pw_t = PressureWeighting(surface_pressure=ps).apply(p)
    ak_t = AveragingKernel(levels=list(H * np.log(ps / s.pressure[0])), values=list(s.ak[0]),
                           coordinate="release_height").apply(pw_t)
    print("column sensitivity ours / pystilt transforms:", _totals(w, n) / _totals(ak_t, n))
    assert _totals(w, n) == pytest.approx(_totals(ak_t, n), rel=0.01)
