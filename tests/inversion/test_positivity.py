"""Positivity bound of the posterior flux (inversion/positivity.py) and its use in `invert`."""

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from inversion.positivity import apply_positivity, lower_bound, lower_bound_effect


def test_bound_clip_and_reported_tonnes():
    prior = np.array([[[1.0, -0.5]], [[2.0, 0.2]]])  # (2 h, 1, 2)
    post = np.array([[[-0.3, -0.9]], [[2.5, 0.1]]])
    np.testing.assert_array_equal(lower_bound(prior), [[[0.0, -0.5]], [[0.0, 0.0]]])
    W = sp.csr_matrix(np.array([[1e6, 0.0], [0.0, 1e6], [1e6, 1e6]]))  # 1 km² cells
    mask = np.array([True, True])
    clipped, rep = lower_bound_effect(prior, post, mask, W, ["a", "b", "all"])
    np.testing.assert_array_equal(clipped, [[[0.0, -0.5]], [[2.5, 0.1]]])
    assert rep["cell_hours_below_bound"] == 2 and rep["fraction_cell_hours_below_bound"] == 0.5
    assert rep["largest_violation_umol_m2_s"] == pytest.approx(0.4)
    t = 1e6 * 3600 * 44.01e-12  # t CO2 of 1 µmol m-2 s-1 over 1 km² for one hour
    assert rep["added_t"]["a"] == pytest.approx(0.3 * t) and rep["added_t"]["b"] == pytest.approx(0.4 * t)
    assert rep["added_t"]["all"] == pytest.approx(0.7 * t)
    # hours outside the period are clipped but not counted
    _, rep2 = lower_bound_effect(prior, post, np.array([False, True]), W, ["a", "b", "all"])
    assert rep2["cell_hours_below_bound"] == 0 and rep2["added_t"]["all"] == 0.0
    out, r = apply_positivity("none", prior, post, mask, W, ["a", "b", "all"])
    np.testing.assert_array_equal(out, post)
    assert not r["applied"] and r["cell_hours_below_bound"] == 2
    with pytest.raises(ValueError, match="positivity"):
        apply_positivity("lognormal", prior, post, mask, W, ["a", "b", "all"])


def test_invert_with_clip_is_consistent():
    from test_run import CFG, area, fake_world, invert_world, two_districts

    w = fake_world(seed=3)
    # observations of a world with far smaller emissions than the prior: the linear posterior undershoots 0
    y_true = w["H"] @ (0.05 * w["prior"]).ravel() + 420.0
    sel = w["sel"].assign(value=y_true, time=pd.to_datetime(w["sel"]["time"], utc=True).dt.tz_localize(None))
    names, F = two_districts()
    cfg = dict(CFG, prior_rel_sigma=1.0)
    kw = dict(truth_flux=0.05 * w["prior"])
    args = (w["H"], w["rec"], w["hours"], sel, w["prior"], w["lat"], w["lon"], names, F, area(), )
    lin = invert_world(*args, dict(cfg, positivity="none"), "2025-01-02", "2025-01-04", **kw)
    cl = invert_world(*args, dict(cfg, positivity="clip"), "2025-01-02", "2025-01-04", **kw)
    rep = cl.diagnostics["positivity"]
    assert rep["applied"] and rep["cell_hours_below_bound"] > 0
    assert lin.diagnostics["positivity"]["cell_hours_below_bound"] == rep["cell_hours_below_bound"]
    pf = cl.posterior["posterior_flux"].values.astype(float)
    assert pf.min() >= -1e-6  # prior is positive everywhere here: bound 0
    assert lin.posterior["posterior_flux"].values.min() < -1e-3
    # district totals move by exactly the reported tonnes; sigma unchanged
    dl, dc = lin.districts.set_index("district"), cl.districts.set_index("district")
    for n in names + ["Guangzhou"]:
        assert dc.loc[n, "posterior_t"] - dl.loc[n, "posterior_t"] == pytest.approx(rep["added_t"][n], rel=1e-9)
        assert dc.loc[n, "posterior_sigma_t"] == dl.loc[n, "posterior_sigma_t"]
    assert rep["added_t"]["Guangzhou"] > 0
    # modelled.csv follows the truncated flux exactly
    H = w["H"][cl.problem.obs["row"].to_numpy()]
    recon = H @ pf.ravel() + cl.modelled.background_posterior.to_numpy()
    np.testing.assert_allclose(recon, cl.modelled.posterior_model, atol=1e-4)
