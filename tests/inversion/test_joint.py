"""Joint fossil-CO2/CO inversion (inversion/joint.py) against a dense NumPy reference built from the
model's definition (not from the code's mixing matrix), its limits, and bad ratio tables."""

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from inversion import KroneckerCovariance, SolveOptions, solve
from inversion.joint import (NMOL_PER_UMOL, CorrelationShape, JointProblem, district_total_rows,
                             joint_obs_covariance, latent_blocks, read_ratio_file, sector_ratios,
                             solve_joint, step_mean_abs)

NY, NX, STEP, NH = 4, 5, 6, 24
N_STEP, N_CELLS = NH // STEP, NY * NX
N_FLUX = N_STEP * N_CELLS
SHAPE = CorrelationShape(1.02, 1.1, 2.5, STEP, 12.0, diurnal_corr=-0.2)
SETTINGS = {"prior_rel_sigma": 0.6, "power_rel_sigma": 0.1, "prior_floor_sigma": 0.3,
            "co_floor_sigma": 2.0, "ratio_corr_length_km": 4.0}


def rel(a, b):
    return np.max(np.abs(np.asarray(a) - np.asarray(b))) / max(np.max(np.abs(b)), 1e-300)


def prior_fields(rng, sectors):
    f = {k: rng.gamma(2.0, 1.0, (NH, NY, NX)) * (3.0 if k == "power" else 1.0) for k in sectors}
    bio = -rng.gamma(2.0, 0.5, (NH, NY, NX))
    return f, bio


def make_problem(rng, ratios, settings=SETTINGS, n2=15, n1=12, rho=0.6, co_rows=None, co2_rows=None,
                 sig_co=8.0, sig_co2=1.2):
    sectors = list(ratios)
    f, bio = prior_fields(rng, sectors)
    blocks = latent_blocks(f, bio, ratios, SHAPE, settings)
    H2 = co2_rows if co2_rows is not None else sp.random(n2, N_FLUX, density=0.3, random_state=rng, format="csr") * 2
    if co_rows is None:  # the first 10 CO rows share a receptor (footprint) with a CO2 row; 2 have none
        pair = np.r_[rng.permutation(H2.shape[0])[:10], -np.ones(n1 - 10, int)]
        extra = sp.random(n1 - 10, N_FLUX, density=0.3, random_state=rng, format="csr") * 2
        H1 = sp.vstack([H2[pair[:10]], extra], format="csr")
    else:
        H1, pair = co_rows, -np.ones(co_rows.shape[0], int)
    n2, n1 = H2.shape[0], H1.shape[0]
    s2, s1 = np.full(n2, sig_co2), np.full(n1, sig_co)
    R = joint_obs_covariance(s2, 0.8 * s2, s1, 0.7 * s1, pair, rho)
    E = sp.csr_matrix(np.r_[np.c_[np.ones(n2), np.zeros(n2)], np.c_[np.zeros(n1), np.ones(n1)]])
    d = rng.normal(size=n2 + n1) * np.r_[np.full(n2, 2.0), np.full(n1, 30.0)]
    prob = JointProblem(H2, H1, d, R, blocks, E, np.array([2.0, 20.0]))
    return prob, f, bio, pair


def dense_sigmas(f, bio, ratios, settings):
    """σ fields written out from the definitions in docs/gases.md (independently of latent_blocks)."""
    floor = settings["prior_floor_sigma"] / np.sqrt(len(f) + 1)
    sig, eta = {}, {}
    for k, v in f.items():
        m = np.abs(v.reshape(N_STEP, STEP, NY, NX).mean(axis=1))
        sig[k] = (settings["power_rel_sigma"] if k == "power" else settings["prior_rel_sigma"]) * m + floor
        r, s = ratios[k]
        eta[k] = 1000.0 * r * s * (m + sig[k])
    sb = settings["prior_rel_sigma"] * np.abs(bio.reshape(N_STEP, STEP, NY, NX).mean(axis=1)) + floor
    return sig, eta, sb


def kron_dense(sigma, L=None):
    return KroneckerCovariance(sigma, SHAPE.dx_km, SHAPE.dy_km, SHAPE.corr_length_km if L is None else L, STEP,
                               SHAPE.corr_time_hours, diurnal_corr=SHAPE.diurnal_corr).to_dense()


def dense_joint(prob, f, bio, ratios, settings):
    """(Q_x, H_x) of the state [f_1..f_S, b, c, offsets] from Cov(c, f_k) = 1000 r_k Q_k etc."""
    sig, eta, sb = dense_sigmas(f, bio, ratios, settings)
    S, n = len(f), N_FLUX
    nb = S + 2
    ne = len(prob.offset_sigma)
    Q = np.zeros((nb * n + ne, nb * n + ne))
    c = slice((S + 1) * n, (S + 2) * n)
    Qc = np.full((N_STEP, NY, NX), settings["co_floor_sigma"])
    Q[c, c] = kron_dense(Qc)
    for i, k in enumerate(f):
        Qk = kron_dense(sig[k])
        r = ratios[k][0] * NMOL_PER_UMOL
        fk = slice(i * n, (i + 1) * n)
        Q[fk, fk] = Qk
        Q[c, fk] = r * Qk
        Q[fk, c] = r * Qk
        Q[c, c] += r * r * Qk + kron_dense(eta[k], settings["ratio_corr_length_km"])
    Q[S * n:(S + 1) * n, S * n:(S + 1) * n] = kron_dense(sb)
    Q[nb * n:, nb * n:] = np.diag(prob.offset_sigma**2)
    H2, H1 = prob.H_co2.toarray(), prob.H_co.toarray()
    Hx = np.zeros((prob.n_obs, Q.shape[0]))
    for i in range(S + 1):
        Hx[:prob.n_co2, i * n:(i + 1) * n] = H2
    Hx[prob.n_co2:, c] = H1
    Hx[:, nb * n:] = prob.E.toarray()
    return Q, Hx


def district_weights(rng, n_agg=3):
    W = rng.random((n_agg, N_CELLS)) * 1e6
    return district_total_rows(sp.csr_matrix(W), np.full(N_STEP, float(STEP)))


RATIOS = {"industry": (0.02, 0.3), "road": (0.012, 0.5), "power": (0.001, 0.4)}


@pytest.mark.parametrize("seed", [0, 1])
def test_joint_solve_matches_dense_reference(seed):
    rng = np.random.default_rng(seed)
    prob, f, bio, _ = make_problem(rng, RATIOS)
    # three scaling-factor-like extras beside the two offsets: dense columns on both gases and
    # contributions to the aggregated quantities
    F = rng.normal(size=(prob.n_obs, 3)) * np.r_[np.full(prob.n_co2, 2.0), np.full(prob.n_co, 30.0)][:, None]
    E = sp.hstack([prob.E, sp.csr_matrix(F)], format="csr")
    sig_x = np.r_[prob.offset_sigma, 0.25, 0.25, 0.5]
    prob = JointProblem(prob.H_co2, prob.H_co, prob.d, prob.R, prob.blocks, E, sig_x)
    A = district_weights(rng)
    q = ("fossil", "bio", "co", "fossil_road")
    extra = {k: np.c_[np.zeros((3, 2)), rng.normal(size=(3, 3)) * 1e3] for k in q}
    Y = rng.normal(size=(prob.n_obs, 3))
    res = solve_joint(prob, A, quantities=q, y_ensemble=Y, fields=True, extra_agg=extra)

    Q, Hx = dense_joint(prob, f, bio, RATIOS, SETTINGS)
    nx = Q.shape[0] - 5
    K = Hx @ Q @ Hx.T + prob.R
    Ki = np.linalg.inv(K)
    x_post = Q @ Hx.T @ Ki @ prob.d
    Qp = Q - Q @ Hx.T @ Ki @ Hx @ Q
    n, Ad = N_FLUX, A.toarray()
    Z = np.zeros_like(Ad)
    M = np.vstack([np.hstack([Ad, Ad, Ad, Z, Z, extra["fossil"]]),  # fossil = industry + road + power
                   np.hstack([Z, Z, Z, Ad, Z, extra["bio"]]),
                   np.hstack([Z, Z, Z, Z, Ad, extra["co"]]),
                   np.hstack([Z, Ad, Z, Z, Z, extra["fossil_road"]])])
    assert rel(res.agg_post_mean, M @ x_post) < 1e-8
    assert rel(res.agg_prior_cov, M @ Q @ M.T) < 1e-8
    assert rel(res.agg_post_cov, M @ Qp @ M.T) < 1e-8
    assert rel(res.agg_post_mean_ensemble, M @ Q @ Hx.T @ Ki @ Y) < 1e-8
    for i, s in enumerate(["fossil_industry", "fossil_road", "fossil_power", "bio", "co"]):
        assert rel(res.x_post[s], x_post[i * n:(i + 1) * n]) < 1e-8
    assert rel(res.offsets_post, x_post[nx:]) < 1e-8
    assert res.chi2_reduced == pytest.approx(prob.d @ Ki @ prob.d / prob.n_obs, rel=1e-10)
    assert res.dofs == pytest.approx(np.trace(Hx @ Q @ Hx.T @ Ki), rel=1e-8)
    # the fossil/bio posterior correlation of each district, from the same covariance
    C = M @ Qp @ M.T
    corr = np.diag(C[:3, 3:6]) / np.sqrt(np.diag(C)[:3] * np.diag(C)[3:6])
    assert rel(res.correlation("fossil", "bio"), corr) < 1e-8
    with pytest.raises(ValueError, match=r"extra_agg has no rows for quantity\(ies\) \['co'\]"):
        solve_joint(prob, A, quantities=("fossil", "co"), extra_agg={"fossil": extra["fossil"]})


def test_without_co_or_with_unknown_ratios_the_split_is_the_co2_only_inversion():
    rng = np.random.default_rng(5)
    prob, f, bio, _ = make_problem(rng, RATIOS)
    A = district_weights(rng)
    q = ("fossil", "bio")
    co2_only = solve_joint(prob.without_co(), A, q)
    with_co = solve_joint(prob, A, q)
    loose = {k: (r, 1e4) for k, (r, _) in RATIOS.items()}
    prob_loose = JointProblem(prob.H_co2, prob.H_co, prob.d, prob.R, latent_blocks(f, bio, loose, SHAPE, SETTINGS),
                              prob.E, prob.offset_sigma)
    unknown = solve_joint(prob_loose, A, q)
    assert rel(unknown.agg_post_mean, co2_only.agg_post_mean) < 1e-6
    assert rel(unknown.agg_post_cov, co2_only.agg_post_cov) < 1e-6
    # ... while ratios known to 30-50 % carry information: the fossil σ shrinks in every district
    assert np.all(with_co.sigma("fossil") < 0.99 * co2_only.sigma("fossil"))

    # the CO2-only joint solve's total CO2 (fossil + bio) is inversion.solve's with Q = Σ_k Q_k + Q_b
    Q, Hx = dense_joint(prob, f, bio, RATIOS, SETTINGS)
    n, S = N_FLUX, len(RATIOS)
    idx = np.r_[np.arange((S + 1) * n), Q.shape[0] - 2]  # fossil sectors, bio, CO2 offset
    Qs = Q[np.ix_(idx, idx)]
    P = np.zeros((n + 1, idx.size))  # total flux = Σ blocks
    for i in range(S + 1):
        P[:n, i * n:(i + 1) * n] = np.eye(n)
    P[n, -1] = 1.0
    Qtot = P @ Qs @ P.T
    Htot = sp.hstack([prob.H_co2, sp.csr_matrix(np.ones((prob.n_co2, 1)))], format="csr")
    Atot = sp.hstack([A, sp.csr_matrix((A.shape[0], 1))], format="csr")
    ref = solve(Htot, prob.d[:prob.n_co2], np.zeros(n + 1), Qtot, np.sqrt(np.diag(prob.R)[:prob.n_co2]),
                aggregate=Atot, options=SolveOptions(solver="cholesky"))
    tot = co2_only.mean("fossil") + co2_only.mean("bio")
    cov_tot = sum(co2_only.cov(a, b) for a in q for b in q)
    assert rel(tot, ref.agg_post_mean) < 1e-8
    assert rel(cov_tot, ref.agg_post_cov) < 1e-8


def test_perfect_ratios_and_noise_free_co_recover_the_fossil_total():
    rng = np.random.default_rng(11)
    ratios = {"industry": (0.015, 0.0), "road": (0.015, 0.0)}  # perfect (and equal) ratios
    settings = {**SETTINGS, "co_floor_sigma": 0.0}  # every CO source is a ratio times fossil CO2
    area = rng.uniform(0.9e6, 1.1e6, N_CELLS)
    # per step, the area-weighted domain total (column-like rows) plus point-like rows
    totals = sp.kron(sp.eye(N_STEP), sp.csr_matrix(area[None, :] * 1e-6), format="csr")
    points = sp.random(8, N_FLUX, density=0.2, random_state=rng, format="csr")
    H = sp.vstack([totals, points], format="csr")
    prob, f, bio, _ = make_problem(rng, ratios, settings=settings, co_rows=H, co2_rows=H, sig_co=1e-6)
    # a truth drawn from the prior, seen without noise in CO and with 1.2 ppm noise in CO2
    blocks = prob.blocks
    z = {b.name: np.linalg.cholesky(b.Q.to_dense() + 1e-12 * np.eye(N_FLUX)) @ rng.normal(size=N_FLUX) for b in blocks}
    fossil = z["fossil_industry"] + z["fossil_road"]
    co = NMOL_PER_UMOL * 0.015 * fossil
    d = np.r_[H @ (fossil + z["bio"]) + rng.normal(size=H.shape[0]) * 1.2, H @ co]
    prob = JointProblem(H, H, d, prob.R, blocks)
    A = district_total_rows(sp.csr_matrix(area[None, :]), np.full(N_STEP, float(STEP)))  # the city
    res = solve_joint(prob, A, ("fossil", "bio"))
    true_total = float((A @ fossil)[0])
    prior_sd = res.sigma("fossil", prior=True)[0]
    assert abs(res.mean("fossil")[0] - true_total) < 1e-6 * prior_sd
    assert res.sigma("fossil")[0] < 1e-4 * prior_sd
    no_co = solve_joint(prob.without_co(), A, ("fossil", "bio"))
    assert no_co.sigma("fossil")[0] > 0.3 * prior_sd  # CO2 alone cannot split the total


def test_shipped_ratio_table_covers_the_priors_fossil_sectors():
    from pathlib import Path

    shipped = Path(__file__).resolve().parents[2] / "config" / "emission_ratios_co.csv"
    r = sector_ratios(read_ratio_file(shipped), ["industry", "road", "residential", "power"], str(shipped))
    assert set(r) == {"industry", "road", "residential", "power"}
    assert all(0 < v < 0.1 and 0 < s < 1 for v, s in r.values())
    with pytest.raises(ValueError, match="cement"):
        read_ratio_file(shipped, ["industry", "cement"])


def test_ratio_table_missing_a_sector_is_a_clear_error(tmp_path):
    p = tmp_path / "emission_ratios_co.csv"
    p.write_text("sector,ratio_mol_per_mol,sigma_rel,source\nindustry,0.02,0.3,test\nroad,0.012,0.5,test\n")
    table = read_ratio_file(p)
    assert sector_ratios(table, ["industry", "road"], str(p)) == {"industry": (0.02, 0.3), "road": (0.012, 0.5)}
    with pytest.raises(ValueError) as e:
        sector_ratios(table, ["industry", "road", "residential", "power"], str(p))
    msg = str(e.value)
    assert str(p) in msg and "`sector`" in msg and "['residential', 'power']" in msg and "add a row" in msg
    with pytest.raises(ValueError, match=r"missing column\(s\) \['sigma_rel'\]"):
        sector_ratios(table.drop(columns="sigma_rel"), ["industry"], str(p))
    with pytest.raises(ValueError, match="`sigma_rel` of sector 'road' is -0.5"):
        sector_ratios(pd.DataFrame({"sector": ["road"], "ratio_mol_per_mol": [0.01], "sigma_rel": [-0.5]}), ["road"])
    with pytest.raises(ValueError, match=r"lists \['road'\] more than once"):
        sector_ratios(pd.DataFrame({"sector": ["road", "road"], "ratio_mol_per_mol": [0.01, 0.02],
                                    "sigma_rel": [0.3, 0.3]}), ["road"])


def test_transport_error_correlation_enters_r_between_the_gases_of_one_receptor():
    s2, m2 = np.array([1.5, 1.2]), np.array([1.0, 1.0])
    s1, m1 = np.array([20.0, 30.0, 25.0]), np.array([10.0, 20.0, 15.0])
    R = joint_obs_covariance(s2, m2, s1, m1, pair=[1, -1, 0], rho=0.5)
    assert R[1, 2] == R[2, 1] == pytest.approx(0.5 * 1.0 * 10.0)
    assert R[0, 4] == pytest.approx(0.5 * 1.0 * 15.0)
    assert np.count_nonzero(R - np.diag(np.diag(R))) == 4  # nothing else is correlated
    np.testing.assert_allclose(np.diag(R), np.r_[s2, s1] ** 2)
    assert np.all(np.linalg.eigvalsh(R) > 0)
    with pytest.raises(ValueError, match="must lie in"):
        joint_obs_covariance(s2, m2, s1, m1, [1, -1, 0], rho=1.0)


def test_step_mean_abs_is_the_mean_over_each_step():
    f = np.arange(2 * 6 * 2 * 3, dtype=float).reshape(12, 2, 3) - 30.0
    m = step_mean_abs(f, 6)
    np.testing.assert_allclose(m, np.abs(f.reshape(2, 6, 2, 3).mean(axis=1)))
