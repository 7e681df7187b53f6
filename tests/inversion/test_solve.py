"""inversion.solve against a dense NumPy reference (explicit Q, explicit inverse), and bad input."""

import numpy as np
import pytest
import scipy.sparse as sp

from inversion import KroneckerCovariance, SolveOptions, solve
from inversion.kernels import SparseOperator
from inversion.solve import build_hqht, build_hqht_kronecker


def dense_reference(H, y, xa, Q, R, A, B=None):
    H = H.toarray()
    R = np.diag(R**2) if R.ndim == 1 else R
    K = H @ Q @ H.T + R
    Ki = np.linalg.inv(K)
    d = y - H @ xa
    gain = Q @ H.T @ Ki
    xp = xa + gain @ d
    Qp = Q - gain @ H @ Q
    out = dict(x_post=xp, agg_post_cov=A @ Qp @ A.T, agg_prior_cov=A @ Q @ A.T,
               dofs=np.trace(H @ Q @ H.T @ Ki), chi2=d @ Ki @ d / len(y), agg_post_mean=A @ xp)
    if B is not None:
        out["var_post"] = np.diag(B @ Qp @ B.T)
    return out


def random_problem(rng, n_obs=40, ny=6, nx=5, n_step=4, n_extra=2, density=0.3):
    n_flux = n_step * ny * nx
    n_state = n_flux + n_extra
    H = sp.random(n_obs, n_state, density=density, random_state=rng, format="csr") * 2.0
    H = H.tolil()
    H[np.arange(n_obs), n_flux + rng.integers(0, n_extra, n_obs)] = 1.0  # background columns
    H = H.tocsr()
    sigma = 0.2 + rng.random((n_step, ny, nx))
    Q = KroneckerCovariance(sigma, 1.02, 1.1, 2.5, 6.0, 12.0, extra_sigma=np.full(n_extra, 2.0))
    xa = rng.normal(size=n_state)
    y = H @ xa + rng.normal(size=n_obs) * 1.5
    A = sp.random(5, n_state, density=0.5, random_state=rng, format="csr")
    return H, y, xa, Q, A


def rel(a, b):
    return np.max(np.abs(a - b)) / max(np.max(np.abs(b)), 1e-300)


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("cov_kind", ["dense", "kronecker"])
def test_cholesky_matches_dense_reference(seed, cov_kind):
    rng = np.random.default_rng(seed)
    H, y, xa, Q, A = random_problem(rng)
    sig = 0.5 + rng.random(H.shape[0])
    Qd = Q.to_dense()
    B = sp.random(7, H.shape[1], density=0.3, random_state=rng, format="csr")
    ref = dense_reference(H, y, xa, Qd, sig, A.toarray(), B.toarray())
    res = solve(H, y, xa, Qd if cov_kind == "dense" else Q, sig, aggregate=A, aggregate_var=B, options=SolveOptions(solver="cholesky"))
    assert res.solver == "cholesky"
    assert rel(res.x_post, ref["x_post"]) < 1e-8
    assert rel(res.agg_post_cov, ref["agg_post_cov"]) < 1e-8
    assert rel(res.agg_prior_cov, ref["agg_prior_cov"]) < 1e-8
    assert rel(res.agg_post_mean, ref["agg_post_mean"]) < 1e-8
    assert abs(res.dofs - ref["dofs"]) / ref["dofs"] < 1e-8
    assert abs(res.chi2_reduced - ref["chi2"]) / ref["chi2"] < 1e-8
    assert rel(res.var_post, ref["var_post"]) < 1e-8


def test_pcg_matches_dense_reference():
    rng = np.random.default_rng(5)
    H, y, xa, Q, A = random_problem(rng, n_obs=60)
    sig = 0.5 + rng.random(H.shape[0])
    ref = dense_reference(H, y, xa, Q.to_dense(), sig, A.toarray())
    res = solve(H, y, xa, Q, sig, aggregate=A, options=SolveOptions(solver="pcg", pcg_tol=1e-13, dofs_probes=400, seed=3))
    assert res.solver == "pcg"
    assert rel(res.x_post, ref["x_post"]) < 1e-8
    assert rel(res.agg_post_cov, ref["agg_post_cov"]) < 1e-8
    assert abs(res.chi2_reduced - ref["chi2"]) / ref["chi2"] < 1e-8
    # stochastic DOFS: within 4 standard errors of the exact trace
    assert abs(res.dofs - ref["dofs"]) < 4 * res.dofs_stderr + 1e-9
    assert res.dofs_stderr > 0


def test_pcg_agrees_with_cholesky_and_correlated_R():
    rng = np.random.default_rng(9)
    H, y, xa, Q, A = random_problem(rng, n_obs=30)
    n = H.shape[0]
    t = np.arange(n)
    Rm = 1.3**2 * np.exp(-np.abs(t[:, None] - t[None, :]) / 2.0)  # correlated in time
    ref = dense_reference(H, y, xa, Q.to_dense(), Rm, A.toarray())
    c = solve(H, y, xa, Q, Rm, aggregate=A, options=SolveOptions(solver="cholesky"))
    p = solve(H, y, xa, Q, Rm, aggregate=A, options=SolveOptions(solver="pcg", pcg_tol=1e-13))
    for r in (c, p):
        assert rel(r.x_post, ref["x_post"]) < 1e-8
        assert rel(r.agg_post_cov, ref["agg_post_cov"]) < 1e-8
    assert abs(c.dofs - ref["dofs"]) / ref["dofs"] < 1e-8


def test_the_two_solvers_are_two_functions_with_one_result_type():
    """solve_cholesky and solve_pcg on one prepared problem: the same InversionResult fields, equal to
    the dense reference (the Cholesky DOFS exactly, the PCG one within its standard error)."""
    from inversion import InversionResult, prepare, solve_cholesky, solve_pcg

    rng = np.random.default_rng(21)
    H, y, xa, Q, A = random_problem(rng, n_obs=40)
    sig = 0.4 + rng.random(H.shape[0])
    ref = dense_reference(H, y, xa, Q.to_dense(), sig, A.toarray())
    opts = SolveOptions(pcg_tol=1e-13, dofs_probes=300, seed=2)
    c = solve_cholesky(prepare(H, y, xa, Q, sig, A, options=opts), opts)
    p = solve_pcg(prepare(H, y, xa, Q, sig, A, options=opts), opts)
    assert type(c) is type(p) is InversionResult and (c.solver, p.solver) == ("cholesky", "pcg")
    for r in (c, p):
        assert rel(r.x_post, ref["x_post"]) < 1e-8
        assert rel(r.agg_post_cov, ref["agg_post_cov"]) < 1e-8
        assert abs(r.chi2_reduced - ref["chi2"]) / ref["chi2"] < 1e-8
    assert abs(c.dofs - ref["dofs"]) / ref["dofs"] < 1e-8
    assert abs(p.dofs - ref["dofs"]) < 4 * p.dofs_stderr + 1e-9
    # solve dispatches to the same functions: bit-identical results
    np.testing.assert_array_equal(solve(H, y, xa, Q, sig, A, options=opts.replace(solver="cholesky")).x_post, c.x_post)


def test_posterior_shrinks_and_dofs_bounds():
    rng = np.random.default_rng(11)
    H, y, xa, Q, A = random_problem(rng)
    res = solve(H, y, xa, Q, np.full(H.shape[0], 1.0), aggregate=A)
    assert np.all(np.diag(res.agg_post_cov) <= np.diag(res.agg_prior_cov) + 1e-12)
    assert 0 < res.dofs < H.shape[0]


def test_recovery_of_truth_drawn_from_prior():
    """Truth ~ N(x_a, Q): the posterior error of the aggregate is consistent with its σ."""
    rng = np.random.default_rng(2024)
    ny, nx, n_step = 12, 10, 4
    n_flux = n_step * ny * nx
    sigma = np.full((n_step, ny, nx), 1.0)
    Q = KroneckerCovariance(sigma, 1.0, 1.0, 3.0, 6.0, 12.0)
    Qd = Q.to_dense()
    Lq = np.linalg.cholesky(Qd + 1e-12 * np.eye(n_flux))
    n_obs = 200
    H = sp.random(n_obs, n_flux, density=0.1, random_state=rng, format="csr")
    A = np.ones((1, n_flux)) / n_flux  # domain-mean flux
    xa = np.zeros(n_flux)
    z = []
    for _ in range(20):
        truth = xa + Lq @ rng.normal(size=n_flux)
        y = H @ truth + rng.normal(size=n_obs) * 0.3
        r = solve(H, y, xa, Q, np.full(n_obs, 0.3), aggregate=A)
        z.append((r.agg_post_mean[0] - A[0] @ truth) / r.agg_post_sigma[0])
        assert r.agg_post_sigma[0] < 0.5 * r.agg_prior_sigma[0]
    z = np.array(z)
    # normalised errors of 20 independent draws: ~N(0, 1)
    assert abs(z.mean()) < 0.8
    assert 0.5 < z.std() < 1.6
    assert np.mean(np.abs(z) < 2) >= 0.85


def test_bad_inputs_name_the_argument():
    rng = np.random.default_rng(0)
    H, y, xa, Q, A = random_problem(rng, n_obs=10)
    sig = np.ones(10)
    with pytest.raises(ValueError, match="'y'"):
        solve(H, y[:-1], xa, Q, sig)
    yb = y.copy(); yb[2] = np.nan
    with pytest.raises(ValueError, match="'y'.*NaN"):
        solve(H, yb, xa, Q, sig)
    Hb = H.copy(); Hb.data[0] = np.nan
    with pytest.raises(ValueError, match="'H'.*NaN"):
        solve(Hb, y, xa, Q, sig)
    with pytest.raises(ValueError, match="'x_prior'"):
        solve(H, y, xa[:-1], Q, sig)
    with pytest.raises(ValueError, match="'obs_err'"):
        solve(H, y, xa, Q, np.r_[sig[:-1], 0.0])
    with pytest.raises(ValueError, match="'obs_err'"):
        solve(H, y, xa, Q, -sig)
    Qd = Q.to_dense()
    Qbad = Qd.copy(); Qbad[0, 0] = -1.0
    with pytest.raises(ValueError, match="'prior_cov' is not positive definite"):
        solve(H, y, xa, Qbad, sig)
    with pytest.raises(ValueError, match="'prior_cov'"):
        solve(H, y, xa, Qd[:-1, :-1], sig)
    with pytest.raises(ValueError, match="'aggregate'"):
        solve(H, y, xa, Q, sig, aggregate=np.ones((2, 3)))
    with pytest.raises(TypeError, match="unexpected keyword argument 'bogus'"):
        solve(H, y, xa, Q, sig, options=SolveOptions(bogus=1))
    with pytest.raises(TypeError, match="unexpected keyword argument 'solver'"):
        solve(H, y, xa, Q, sig, solver="pcg")  # options are typed, not **kwargs
    with pytest.raises(TypeError, match="SolveOptions"):
        solve(H, y, xa, Q, sig, options={"solver": "pcg"})
    with pytest.raises(ValueError, match="solver='qr'"):
        SolveOptions(solver="qr")


@pytest.mark.parametrize("tau,diurnal", [(12.0, 1.0), (0.0, 1.0), (48.0, -0.12), (30.0, 0.4)])
def test_structured_hqht_matches_dense(tau, diurnal):
    """build_hqht_kronecker (per-step slices, far pairs by one GEMM) == H Q Hᵀ, with gaps in the
    footprint windows, a row without flux entries and background columns."""
    rng = np.random.default_rng(0)
    ny, nx, nst = 9, 7, 10
    nc = ny * nx
    Q = KroneckerCovariance(0.2 + rng.random((nst, ny, nx)), 1.02, 1.1, 2.0, 3.0, tau, extra_sigma=[1.0, 2.0],
                            diurnal_corr=diurnal)  # 3-hour steps: 8 times of day
    rows, cols, vals = [], [], []
    for i in range(30):
        f, w = rng.integers(0, nst - 2), rng.integers(1, 4)
        for t in range(f, min(nst, f + w)):
            if t > f and rng.random() < 0.2:
                continue  # gap
            c = rng.choice(nc, 10, replace=False)
            rows += [i] * 10
            cols += list(t * nc + c)
            vals += list(rng.random(10))
        rows.append(i)
        cols.append(Q.n_flux + rng.integers(0, 2))
        vals.append(1.0)
    rows.append(30)
    cols.append(Q.n_flux)
    vals.append(1.0)
    H = sp.csr_matrix((vals, (rows, cols)), shape=(31, Q.n))
    Kd = H @ Q.to_dense() @ H.T
    assert rel(build_hqht_kronecker(Q, H), Kd) < 1e-13
    assert rel(build_hqht(Q, SparseOperator(H)), Kd) < 1e-13
    sig = np.full(31, 0.7)
    y = rng.normal(size=31)
    a = solve(H, y, np.zeros(Q.n), Q, sig, options=SolveOptions(hqht="kronecker"))
    b = solve(H, y, np.zeros(Q.n), Q, sig, options=SolveOptions(hqht="chunks"))
    assert rel(a.x_post, b.x_post) < 1e-10 and abs(a.dofs - b.dofs) < 1e-10 * b.dofs


def test_y_ensemble_equals_separate_solves():
    rng = np.random.default_rng(11)
    H, y, xa, Q, A = random_problem(rng)
    sig = 0.5 + rng.random(H.shape[0])
    Y = y[:, None] + rng.normal(size=(H.shape[0], 3))
    for solver in ("cholesky", "pcg"):
        res = solve(H, y, xa, Q, sig, aggregate=A, options=SolveOptions(y_ensemble=Y, solver=solver))
        for k in range(3):
            one = solve(H, Y[:, k], xa, Q, sig, aggregate=A, options=SolveOptions(solver=solver))
            assert rel(res.agg_post_mean_ensemble[:, k], one.agg_post_mean) < 1e-8
    with pytest.raises(ValueError, match="y_ensemble"):
        solve(H, y, xa, Q, sig, aggregate=A, options=SolveOptions(y_ensemble=Y[:-1]))


def test_obs_subsets_equal_separate_solves():
    """The aggregated posterior of a subset of the observations, from the full problem's H Q Hᵀ,
    equals solving with that subset alone (and the dense reference)."""
    rng = np.random.default_rng(7)
    H, y, xa, Q, A = random_problem(rng, n_obs=30)
    sig = 0.5 + rng.random(H.shape[0])
    first_half = np.arange(H.shape[0]) < 15
    subsets = {"first": first_half, "odd": np.arange(1, 30, 2), "none": np.zeros(0, int)}
    res = solve(H, y, xa, Q, sig, aggregate=A, options=SolveOptions(obs_subsets=subsets))
    for name, idx in subsets.items():
        idx = np.flatnonzero(idx) if idx.dtype == bool else idx
        got = res.agg_post_cov_subsets[name]
        if idx.size == 0:
            assert np.array_equal(got, res.agg_prior_cov)
            continue
        alone = solve(H[idx], y[idx], xa, Q, sig[idx], aggregate=A)
        ref = dense_reference(H[idx], y[idx], xa, Q.to_dense(), sig[idx], A.toarray())
        assert rel(got, alone.agg_post_cov) < 1e-10
        assert rel(got, ref["agg_post_cov"]) < 1e-8
    # fewer observations never give a smaller variance than all of them
    assert np.all(np.diag(res.agg_post_cov_subsets["first"]) >= np.diag(res.agg_post_cov) - 1e-12)
    with pytest.raises(ValueError, match="obs_subsets\\['bad'\\]"):
        solve(H, y, xa, Q, sig, aggregate=A, options=SolveOptions(obs_subsets={"bad": np.array([0, 99])}))
    with pytest.raises(ValueError, match="Cholesky"):
        solve(H, y, xa, Q, sig, aggregate=A, options=SolveOptions(obs_subsets={"first": first_half}, solver="pcg"))
