"""The joint fossil-CO2/CO inversion on the nested state (inner 1 km cells + coarse outer cells; issue 19,
docs/gases.md "The joint inversion on the nested grid"): against a dense NumPy reference written from the
covariance definitions (the outer correlation built here from exp(−d/L), not from the code), the
conservation of the inner/outer split of every aggregated total, and the outer prior's ratio."""

import numpy as np
import pytest
import scipy.sparse as sp

from inversion import KroneckerCovariance
from inversion.joint import (NMOL_PER_UMOL, CorrelationShape, JointProblem, OuterPrior, OuterShape,
                             district_total_rows, joint_obs_covariance, latent_blocks, solve_joint)

NY, NX, STEP, NH = 3, 4, 6, 18
N_STEP, N_IN = NH // STEP, NY * NX
MASK = np.ones((4, 5), bool)
MASK[1:3, 1:3] = False  # the hole under the inner box
N_OUT = int(MASK.sum())
N_CELLS = N_IN + N_OUT
N_FLUX = N_STEP * N_CELLS
DXO, DYO, LO = 3.3, 3.1, 7.0
SHAPE = CorrelationShape(1.02, 1.1, 2.5, STEP, 12.0, diurnal_corr=1.0, outer=OuterShape(MASK, DXO, DYO, LO))
SETTINGS = {"prior_rel_sigma": 0.6, "power_rel_sigma": 0.1, "prior_floor_sigma": 0.3, "co_floor_sigma": 2.0,
            "ratio_corr_length_km": 4.0, "outer_rel_sigma": 0.5, "outer_bio_rel_sigma": 0.8,
            "outer_floor_sigma": 0.2, "co_outer_floor_sigma": 1.5}
RATIOS = {"industry": (0.02, 0.3), "road": (0.012, 0.5), "power": (0.001, 0.4)}


def rel(a, b):
    return np.max(np.abs(np.asarray(a) - np.asarray(b))) / max(np.max(np.abs(b)), 1e-300)


def fields(rng):
    f = {k: rng.gamma(2.0, 1.0, (NH, NY, NX)) * (3.0 if k == "power" else 1.0) for k in RATIOS}
    bio = -rng.gamma(2.0, 0.5, (NH, NY, NX))
    anthro = rng.gamma(1.5, 0.4, (NH, N_OUT))
    obio = rng.normal(0.0, 0.6, (NH, N_OUT))
    return f, bio, OuterPrior(anthro, obio, 0.011, 0.8)


def _outer_corr(L):
    iy, ix = np.nonzero(MASK)
    d = np.hypot(DXO * (ix[:, None] - ix[None, :]), DYO * (iy[:, None] - iy[None, :]))
    return np.exp(-d / L)


def dense_block(sig_in, sig_out, L_in=None, L_out=LO):
    """D (Q_t ⊗ blockdiag(Q_in, Q_out)) D from the definitions: σ per cell and step, exponential
    correlations in km (outer: exp(−d/L) on the outer grid's masked cells), Q_t of the inner inversion."""
    k = KroneckerCovariance(np.ones((N_STEP, NY, NX)), SHAPE.dx_km, SHAPE.dy_km,
                            SHAPE.corr_length_km if L_in is None else L_in, STEP, SHAPE.corr_time_hours)
    Qs = np.zeros((N_CELLS, N_CELLS))
    Qs[:N_IN, :N_IN] = k.space_corr(np.arange(N_IN))
    Qs[N_IN:, N_IN:] = _outer_corr(L_out)
    s = np.concatenate([np.asarray(sig_in).reshape(N_STEP, N_IN), np.asarray(sig_out).reshape(N_STEP, N_OUT)],
                       axis=1).ravel()
    return np.kron(k.Qt, Qs) * s[:, None] * s[None, :]


def step_abs(a):
    return np.abs(a.reshape(N_STEP, STEP, *a.shape[1:]).mean(axis=1))


def dense_reference(prob, f, bio, op):
    """(Q_x, H_x) of x = [f_1..f_S, f_outer, b, c, offsets] written from docs/gases.md."""
    S, n = len(f), N_FLUX
    floor = SETTINGS["prior_floor_sigma"] / np.sqrt(S + 1)
    z_in, z_out = np.zeros((N_STEP, NY, NX)), np.zeros((N_STEP, N_OUT))
    a = step_abs(op.anthro)
    sfo = SETTINGS["outer_rel_sigma"] * a + SETTINGS["outer_floor_sigma"]
    sbo = SETTINGS["outer_bio_rel_sigma"] * step_abs(np.abs(op.bio))
    eta_o = 1000.0 * op.ratio * op.ratio_sigma_rel * (a + sfo)
    nb = S + 3
    ne = len(prob.offset_sigma)
    Q = np.zeros((nb * n + ne, nb * n + ne))
    blk = [slice(i * n, (i + 1) * n) for i in range(nb)]
    fo, b, c = blk[S], blk[S + 1], blk[S + 2]
    Q[c, c] = dense_block(np.full((N_STEP, NY, NX), SETTINGS["co_floor_sigma"]),
                          np.full((N_STEP, N_OUT), SETTINGS["co_outer_floor_sigma"]))
    for i, k in enumerate(f):
        m = step_abs(f[k])
        sk = (SETTINGS["power_rel_sigma"] if k == "power" else SETTINGS["prior_rel_sigma"]) * m + floor
        Qk = dense_block(sk, z_out)
        r = RATIOS[k][0] * NMOL_PER_UMOL
        Q[blk[i], blk[i]] = Qk
        Q[c, blk[i]] = Q[blk[i], c] = r * Qk
        Q[c, c] += r * r * Qk + dense_block(1000.0 * RATIOS[k][0] * RATIOS[k][1] * (m + sk), z_out,
                                            L_in=SETTINGS["ratio_corr_length_km"])
    Qfo = dense_block(z_in, sfo)
    ro = op.ratio * NMOL_PER_UMOL
    Q[fo, fo] = Qfo
    Q[c, fo] = Q[fo, c] = ro * Qfo
    Q[c, c] += ro * ro * Qfo + dense_block(z_in, eta_o, L_out=SETTINGS["ratio_corr_length_km"])
    Q[b, b] = dense_block(SETTINGS["prior_rel_sigma"] * step_abs(bio) + floor, sbo)
    Q[nb * n:, nb * n:] = np.diag(prob.offset_sigma ** 2)
    Hx = np.zeros((prob.n_obs, Q.shape[0]))
    for i in range(S + 2):
        Hx[:prob.n_co2, blk[i]] = prob.H_co2.toarray()
    Hx[prob.n_co2:, c] = prob.H_co.toarray()
    Hx[:, nb * n:] = prob.E.toarray()
    return Q, Hx, blk


def make(rng, n2=14, n1=11):
    f, bio, op = fields(rng)
    blocks = latent_blocks(f, bio, RATIOS, SHAPE, SETTINGS, outer=op)
    H2 = sp.random(n2, N_FLUX, density=0.35, random_state=rng, format="csr") * 2
    pair = np.r_[rng.permutation(n2)[:9], -np.ones(n1 - 9, int)]
    H1 = sp.vstack([H2[pair[:9]], sp.random(n1 - 9, N_FLUX, density=0.35, random_state=rng, format="csr") * 2],
                   format="csr")
    s2, s1 = np.full(n2, 1.2), np.full(n1, 8.0)
    R = joint_obs_covariance(s2, 0.8 * s2, s1, 0.7 * s1, pair, 0.5)
    E = sp.csr_matrix(np.r_[np.c_[np.ones(n2), np.zeros(n2)], np.c_[np.zeros(n1), np.ones(n1)]])
    d = rng.normal(size=n2 + n1) * np.r_[np.full(n2, 2.0), np.full(n1, 30.0)]
    return JointProblem(H2, H1, d, R, blocks, E, np.array([2.0, 20.0])), f, bio, op


def weights(rng):
    """Rows: two 'districts' (inner cells), the ring (outer cells), a 'neighbour' across both, all cells."""
    W = np.zeros((5, N_CELLS))
    W[0, :N_IN] = rng.random(N_IN) * 1e6
    W[1, :N_IN] = rng.random(N_IN) * 1e6
    W[2, N_IN:] = 9e8
    W[3, 3:N_IN + 7] = rng.random(N_IN + 4) * 5e8
    W[4] = W[0] + W[1] + W[2]
    return W


@pytest.mark.parametrize("seed", [0, 1])
def test_nested_joint_solve_matches_dense_reference(seed):
    rng = np.random.default_rng(seed)
    prob, f, bio, op = make(rng)
    assert [b.name for b in prob.blocks][:5] == ["fossil_industry", "fossil_road", "fossil_power", "fossil_outer", "bio"]
    W = weights(rng)
    A = district_total_rows(sp.csr_matrix(W), np.full(N_STEP, float(STEP)))
    q = ("fossil", "bio", "co", "fossil_outer")
    res = solve_joint(prob, A, q, y_ensemble=rng.normal(size=(prob.n_obs, 3)), fields=True)

    Q, Hx, blk = dense_reference(prob, f, bio, op)
    S = len(f)
    Ad = A.toarray()
    M = np.zeros((len(q) * Ad.shape[0], Q.shape[0]))
    rows = {"fossil": list(range(S + 1)), "bio": [S + 1], "co": [S + 2], "fossil_outer": [S]}
    for j, name in enumerate(q):
        for i in rows[name]:
            M[j * Ad.shape[0]:(j + 1) * Ad.shape[0], blk[i]] = Ad
    K = Hx @ Q @ Hx.T + prob.R
    Ki = np.linalg.inv(K)
    HQM = Hx @ Q @ M.T
    assert rel(res.agg_prior_cov, M @ Q @ M.T) < 1e-8
    assert rel(res.agg_post_cov, M @ Q @ M.T - HQM.T @ Ki @ HQM) < 1e-8
    assert rel(res.agg_post_mean, HQM.T @ Ki @ prob.d) < 1e-8
    x = Q @ Hx.T @ Ki @ prob.d
    for name, i in (("fossil_outer", S), ("bio", S + 1), ("co", S + 2), ("fossil_road", 1)):
        assert rel(res.x_post[name], x[blk[i]]) < 1e-8
    # the outer cells of the inner sectors' corrections and the inner cells of fossil_outer stay zero
    outer_cols = np.arange(N_FLUX) % N_CELLS >= N_IN
    assert np.all(res.x_post["fossil_road"][outer_cols] == 0) and np.all(res.x_post["fossil_outer"][~outer_cols] == 0)
    assert abs(res.dofs - (prob.n_obs - np.trace(Ki @ prob.R))) < 1e-8 * prob.n_obs
    assert res.chi2_reduced == pytest.approx(prob.d @ Ki @ prob.d / prob.n_obs, rel=1e-10)
    Y = rng.normal(size=(prob.n_obs, 3))
    res_y = solve_joint(prob, A, q, y_ensemble=Y)
    assert rel(res_y.agg_post_mean_ensemble, HQM.T @ Ki @ Y) < 1e-8


def test_inner_plus_outer_rows_conserve_the_whole_domain():
    """Every aggregated quantity: total over all cells = inner part + outer part, for the posterior mean,
    the prior and posterior σ (with the inner/outer covariance), to rounding; the outer ring's CO2 prior
    σ is the outer blocks' alone (no inner block reaches the ring)."""
    rng = np.random.default_rng(7)
    prob, f, bio, op = make(rng)
    W = weights(rng)
    A = district_total_rows(sp.csr_matrix(W), np.full(N_STEP, float(STEP)))
    res = solve_joint(prob, A, ("fossil", "bio", "co"))
    n = A.shape[0]
    for q in ("fossil", "bio", "co"):
        m = res.mean(q)
        assert m[4] == pytest.approx(m[0] + m[1] + m[2], rel=1e-10, abs=1e-9 * np.abs(m).max())
        for prior in (True, False):
            C = res.cov(q, q, prior=prior)
            whole = C[0, 0] + C[1, 1] + C[2, 2] + 2 * (C[0, 1] + C[0, 2] + C[1, 2])
            assert C[4, 4] == pytest.approx(whole, rel=1e-9)
            assert np.all(np.diag(res.cov(q, q)) <= np.diag(res.cov(q, q, prior=True)) * (1 + 1e-12))
    # prior: inner rows and the ring are independent (block-diagonal nested Q, no inner-outer term)
    C = res.cov("fossil", "fossil", prior=True)
    assert abs(C[0, 2]) < 1e-12 * np.sqrt(C[0, 0] * C[2, 2]) and abs(C[1, 2]) < 1e-12 * np.sqrt(C[1, 1] * C[2, 2])
    # prior CO of the ring = r_o x its fossil CO2 covariance + the ratio error and floor (all outer)
    Cfc = res.cov("fossil", "co", prior=True)
    assert Cfc[2, 2] == pytest.approx(NMOL_PER_UMOL * op.ratio * C[2, 2], rel=1e-10)
    assert n == 5


def test_outer_blocks_need_a_nested_shape_and_vice_versa():
    rng = np.random.default_rng(3)
    f, bio, op = fields(rng)
    flat = CorrelationShape(1.02, 1.1, 2.5, STEP, 12.0)
    with pytest.raises(ValueError, match="outer prior exactly when"):
        latent_blocks(f, bio, RATIOS, flat, SETTINGS, outer=op)
    with pytest.raises(ValueError, match="outer prior exactly when"):
        latent_blocks(f, bio, RATIOS, SHAPE, SETTINGS)


def test_district_table_stops_before_the_outer_rows_even_when_a_neighbour_is_a_city():
    """joint/districts.csv holds the districts and the city total only: the outer rows' kind 'city' (a
    neighbouring city, e.g. Hong Kong) used to be counted as the city total's row (bug: the nested
    run's districts.csv ended with Yunfu and Hong Kong)."""
    from types import SimpleNamespace

    from inversion.joint_run import MAIN_CITY, _main_rows

    run = SimpleNamespace(names=["Liwan", "Yuexiu", "Guangzhou", "outer ring", "Foshan", "Hong Kong", "Guangxi"],
                          kinds=["district", "district", MAIN_CITY, "ring", "city", "city", "region"])
    assert _main_rows(run) == slice(0, 3)
