"""The model boundary's bias per UTC day and inflow side in the inversion state (inversion.state.
background_columns): a constant bias added to the boundary on one side is recovered; without side
shares the daily offsets are unchanged; the run writes the bias as (day, side)."""
import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from inversion.solve import solve
from inversion.state import BOUNDARY_SIDES, build_problem

from test_run import CFG, area, fake_world, invert_world, two_districts

NY, NX = 3, 3
LAT_EDGES = 23.0 + 0.01 * np.arange(NY + 1)
LON_EDGES = 113.0 + 0.01 * np.arange(NX + 1)


def _world(bias_by_side: dict, n_per_day=300, seed=0, noise=0.1):
    """24 spin-up hours + 2 days; each observation: a random sparse footprint, a random mix of
    inflow sides (Dirichlet), truth flux = prior, the boundary biased by ``bias_by_side`` (ppm)."""
    rng = np.random.default_rng(seed)
    hours = pd.date_range("2025-01-01", periods=72, freq="h")
    n_cells = NY * NX
    rows, cols, vals, rec, sel = [], [], [], [], []
    prior = np.full((len(hours), NY, NX), 2.0)
    for d in (1, 2):
        for k in range(n_per_day):
            i = len(rec)
            t_obs = hours[0] + pd.Timedelta(days=d, minutes=int(k * 1440 / n_per_day))
            t_obs = t_obs.floor("min")
            site = f"S{k:03d}"
            rec.append({"receptor_id": f"{site}_{d}", "site": site, "time": t_obs.floor("h") + pd.Timedelta("30min"),
                        "lon": 113.01, "lat": 23.01, "agl": 100.0})
            hi = hours.get_loc(t_obs.floor("h"))
            for back in range(6):
                c = rng.integers(0, n_cells)
                rows.append(i), cols.append((hi - back) * n_cells + c), vals.append(rng.uniform(0.01, 0.05))
            share = rng.dirichlet([0.5] * 4)
            sel.append({"site": site, "time": t_obs.floor("h"), "intake_height": 100.0, "lon": 113.01,
                        "lat": 23.01, "value_std_dev": 0.0, "nvalue": 10, "background": 420.0,
                        "background_sigma": 0.0, **{f"bg_share_{s}": share[j] for j, s in enumerate(BOUNDARY_SIDES)}})
    H = sp.csr_matrix((vals, (rows, cols)), shape=(len(rec), len(hours) * n_cells))
    sel = pd.DataFrame(sel)
    shares = sel[[f"bg_share_{s}" for s in BOUNDARY_SIDES]].to_numpy()
    b = np.array([bias_by_side.get(s, 0.0) for s in BOUNDARY_SIDES])
    sel["value"] = 420.0 + H @ prior.ravel() + shares @ b + rng.normal(0, noise, len(sel))
    return H, pd.DataFrame(rec), hours, sel, prior


CFG_B = dict(time_step_hours=24, prior_rel_sigma=0.05, prior_floor_sigma=0.01, corr_length_km=1.0,
             corr_time_hours=1.0, obs_sigma_ppm=0.1, boundary_bias_sigma_ppm=2.0, diurnal_corr=1.0,
             district_scale_sigma=0.0, profile_scale_sigma=0.0)


def test_constant_bias_on_one_side_is_recovered():
    """+1.5 ppm on the east side only: the posterior bias of (day, E) is 1.5 within 2 σ_post on both
    days, with σ_post < 0.1 ppm (prior 2 ppm), and every other side's bias is 0 within 2 σ_post."""
    H, rec, hours, sel, prior = _world({"E": 1.5})
    days = pd.to_datetime(["2025-01-02", "2025-01-03"])
    prob = build_problem(H, rec, hours, sel, prior, LAT_EDGES, LON_EDGES, CFG_B, days)
    assert prob.sides == BOUNDARY_SIDES and prob.n_offsets == 8
    n = prob.n_flux
    res = solve(prob.H, prob.y, prob.x_prior, prob.Q, prob.obs_err,
                aggregate_var=sp.eye(prob.H.shape[1], format="csr")[n:n + 8])
    bias = res.x_post[n:n + 8].reshape(2, 4)
    sd = np.sqrt(res.var_post).reshape(2, 4)
    want = np.tile([0.0, 1.5, 0.0, 0.0], (2, 1))
    assert np.all(sd < 0.1)
    assert np.all(np.abs(bias - want) < 2 * sd), (bias, sd)


def test_bias_columns_weight_the_days_by_side_shares():
    """H's bias block: row i has the receptor's four shares in the columns of its UTC day."""
    H, rec, hours, sel, prior = _world({}, n_per_day=20)
    days = pd.to_datetime(["2025-01-02", "2025-01-03"])
    prob = build_problem(H, rec, hours, sel, prior, LAT_EDGES, LON_EDGES, CFG_B, days)
    blk = prob.H[:, prob.n_flux:prob.n_flux + prob.n_offsets].toarray()
    shares = prob.obs[[f"bg_share_{s}" for s in BOUNDARY_SIDES]].to_numpy()
    for i, d in enumerate(prob.obs["day_index"]):
        assert np.allclose(blk[i, 4 * d:4 * d + 4], shares[i], atol=0)
        assert blk[i].sum() == pytest.approx(1.0, abs=1e-12)
    # prior σ: boundary_bias_sigma_ppm (2.0), not bg_sigma_ppm (the default 2.0 changed here to 5.0)
    prob5 = build_problem(H, rec, hours, sel, prior, LAT_EDGES, LON_EDGES, {**CFG_B, "bg_sigma_ppm": 5.0}, days)
    assert np.array_equal(prob5.Q.extra_sigma, np.full(8, 2.0))


def test_shares_not_summing_to_one_stop_naming_the_row():
    H, rec, hours, sel, prior = _world({}, n_per_day=10)
    sel.loc[3, "bg_share_N"] += 0.3
    with pytest.raises(ValueError, match=r"1 row\(s\) whose bg_share_N/E/S/W.*do not sum to 1 \(e\.g\. site S003"):
        build_problem(H, rec, hours, sel, prior, LAT_EDGES, LON_EDGES, CFG_B, pd.to_datetime(["2025-01-02", "2025-01-03"]))


def test_run_writes_bias_by_day_and_side_and_the_posterior_background():
    """Through `invert` on the tiny fake world: posterior.nc holds background_offset(day, side) and
    modelled.csv's posterior background = prior background + the shares · the day's side biases."""
    w = fake_world()
    sel = w["sel"].assign(time=pd.to_datetime(w["sel"]["time"], utc=True).dt.tz_localize(None))
    rng = np.random.default_rng(7)
    sh = rng.dirichlet([1.0] * 4, len(sel))
    for j, s in enumerate(BOUNDARY_SIDES):
        sel[f"bg_share_{s}"] = sh[:, j]
    names, F = two_districts()
    out = invert_world(w["H"], w["rec"], w["hours"], sel, w["prior"], w["lat"], w["lon"], names, F, area(),
                       {**CFG, "boundary_bias_sigma_ppm": 1.0}, "2025-01-02", "2025-01-04")
    ds = out.posterior
    assert ds["background_offset"].dims == ("day", "side") and list(ds["side"].values) == list(BOUNDARY_SIDES)
    m = out.modelled
    b = ds["background_offset"].values
    day = pd.DatetimeIndex(pd.to_datetime(m["time"])).normalize()
    d_index = np.searchsorted(pd.DatetimeIndex(ds["day"].values), day)
    obs_sh = out.problem.obs[[f"bg_share_{s}" for s in BOUNDARY_SIDES]].to_numpy()
    want = m["background_prior"].to_numpy() + np.einsum("ij,ij->i", obs_sh, b[d_index])
    assert np.allclose(m["background_posterior"].to_numpy(), want, atol=1e-12)
