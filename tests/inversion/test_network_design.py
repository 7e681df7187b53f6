"""Network design (inversion.network): the σ with a candidate added is exact (dense re-solve), the
greedy steps are exact and equal the brute-force best pair on a small case, correlated candidate
errors are a positive definite covariance that makes a nearby twin worth less."""

import numpy as np
import pytest
import scipy.sparse as sp

from inversion.network import (brute_force, candidate_error_covariance, candidate_sigmas, design_covariance,
                               distance_km, greedy)


def _dense_posterior(Q, H, R, A):
    """A Q̂ Aᵀ by a dense re-solve: Q̂ = (Q⁻¹ + Hᵀ R⁻¹ H)⁻¹ (information form, independent of the code)."""
    Qh = np.linalg.inv(np.linalg.inv(Q) + H.T @ np.linalg.solve(R, H))
    return A @ Qh @ A.T


def _case(seed=0, n_state=40, n1=25, n_cand=5, per=4, L=15.0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n_state, n_state))
    Q = X @ X.T / n_state + 0.5 * np.eye(n_state)
    H1 = rng.normal(size=(n1, n_state)) * (rng.random((n1, n_state)) < 0.3)
    sig1 = 0.5 + rng.random(n1)
    A = rng.random((4, n_state))
    A = np.vstack([A, A.sum(axis=0)])  # 4 districts and the city
    Hc = rng.normal(size=(n_cand * per, n_state)) * (rng.random((n_cand * per, n_state)) < 0.3)
    lon = np.repeat(113.2 + 0.05 * np.arange(n_cand), per)
    lat = np.repeat(23.1 + 0.02 * np.arange(n_cand), per)
    times = np.tile(np.datetime64("2025-01-01T04:00") + np.arange(per).astype("timedelta64[h]"), n_cand)
    Rc = candidate_error_covariance(lon, lat, times, np.full(n_cand * per, 0.2), 0.8 + rng.random(n_cand * per),
                                    L, 2.0)
    blocks = {f"C{i}": np.arange(i * per, (i + 1) * per) for i in range(n_cand)}
    return Q, H1, sig1, A, Hc, Rc, blocks


def test_sigma_with_a_candidate_equals_a_dense_re_solve():
    Q, H1, sig1, A, Hc, Rc, blocks = _case()
    names = ["a", "b", "c", "d", "city"]
    d = design_covariance(Q, sp.csr_matrix(H1), sig1, A, sp.csr_matrix(Hc), Rc, blocks, names)
    # the current network alone: the inversion's A Q̂ Aᵀ
    ref0 = _dense_posterior(Q, H1, np.diag(sig1**2), A)
    np.testing.assert_allclose(d.P[:5, :5], ref0, rtol=1e-8, atol=1e-10 * np.abs(ref0).max())
    sig = candidate_sigmas(d)
    for cid, idx in blocks.items():
        H = np.vstack([H1, Hc[idx]])
        R = sla_block(np.diag(sig1**2), Rc[np.ix_(idx, idx)])
        ref = np.sqrt(np.diag(_dense_posterior(Q, H, R, A)))
        np.testing.assert_allclose(sig[cid], ref, rtol=1e-8)
        assert np.all(sig[cid] < d.sigma)  # every candidate informs every aggregate here
    # two candidates together: their errors correlated (the R block between them is not zero)
    idx = np.concatenate([blocks["C1"], blocks["C2"]])
    assert np.abs(Rc[np.ix_(blocks["C1"], blocks["C2"])]).max() > 0.05
    ref = np.sqrt(np.diag(_dense_posterior(Q, np.vstack([H1, Hc[idx]]),
                                           sla_block(np.diag(sig1**2), Rc[np.ix_(idx, idx)]), A)))
    np.testing.assert_allclose(d.sigma_with(["C1", "C2"]), ref, rtol=1e-8)


def sla_block(a, b):
    out = np.zeros((a.shape[0] + b.shape[0],) * 2)
    out[:a.shape[0], :a.shape[0]] = a
    out[a.shape[0]:, a.shape[0]:] = b
    return out


def test_scaled_hyperparameters_scale_q_and_r():
    Q, H1, sig1, A, Hc, Rc, blocks = _case(seed=3)
    a, b = 1.7, 0.6
    d = design_covariance(Q, sp.csr_matrix(H1), sig1, A, sp.csr_matrix(Hc), Rc, blocks, list("abcde"),
                          scale_Q=a, scale_R=b)
    idx = blocks["C3"]
    ref = _dense_posterior(a * Q, np.vstack([H1, Hc[idx]]), b * sla_block(np.diag(sig1**2), Rc[np.ix_(idx, idx)]), A)
    np.testing.assert_allclose(d.sigma_with(["C3"]), np.sqrt(np.diag(ref)), rtol=1e-8)


def test_greedy_steps_are_exact_and_k2_equals_brute_force():
    Q, H1, sig1, A, Hc, Rc, blocks = _case(seed=1, n_cand=6)
    d = design_covariance(Q, sp.csr_matrix(H1), sig1, A, sp.csr_matrix(Hc), Rc, blocks, list("abcde"))
    steps = greedy(d, 2, objective=4)
    assert len(steps) == 2 and steps[0]["id"] != steps[1]["id"]
    # step 1 is the best single candidate
    single = {c: d.sigma_with([c])[4] for c in blocks}
    assert steps[0]["id"] == min(single, key=single.get)
    # after step 2: a dense re-solve with both candidates' rows (and their correlated errors)
    idx = np.concatenate([blocks[steps[0]["id"]], blocks[steps[1]["id"]]])
    ref = _dense_posterior(Q, np.vstack([H1, Hc[idx]]), sla_block(np.diag(sig1**2), Rc[np.ix_(idx, idx)]), A)
    np.testing.assert_allclose(steps[1]["sigma"], np.sqrt(np.diag(ref)), rtol=1e-8)
    # brute force over all 15 pairs: the same pair and σ
    best, best_s = brute_force(d, 2, objective=4)
    assert set(best) == {steps[0]["id"], steps[1]["id"]}
    assert best_s == pytest.approx(steps[1]["sigma"][4], rel=1e-10)
    assert np.array_equal(d.sigma, np.sqrt(np.diag(d.P[:5, :5])))  # greedy left the design unchanged


def test_correlated_errors_make_a_nearby_twin_worth_less():
    """Two candidates with identical footprints: with independent errors the second halves the error
    variance again; with errors correlated over 50 km (the twins 1 km apart) it adds almost nothing."""
    rng = np.random.default_rng(5)
    n = 30
    Q = np.diag(1 + rng.random(n))
    H1 = sp.csr_matrix(rng.normal(size=(10, n)))
    A = np.vstack([np.ones(n)])
    row = rng.normal(size=(1, n))
    Hc = sp.csr_matrix(np.vstack([row, row]))
    lon, lat = np.array([113.30, 113.31]), np.array([23.1, 23.1])
    t = np.array(["2025-01-01T04:00"] * 2, dtype="datetime64[m]")
    out = {}
    for L in (0.0, 50.0):
        Rc = candidate_error_covariance(lon, lat, t, [0.01, 0.01], [1.0, 1.0], L, 0.0)
        d = design_covariance(Q, H1, np.ones(10), A, Hc, Rc, {"T1": [0], "T2": [1]}, ["city"])
        out[L] = (d.sigma[0], d.sigma_with(["T1"])[0], d.sigma_with(["T1", "T2"])[0])
    s0, s1, s2 = out[0.0]
    t0, t1, t2 = out[50.0]
    assert s1 == pytest.approx(t1, rel=1e-12)  # one site alone: the correlation does not matter
    assert (s1 - s2) > 20 * (t1 - t2) > 0  # the twin's gain collapses with correlated errors
    Rc = candidate_error_covariance(lon, lat, t, [0.01, 0.01], [1.0, 1.0], 50.0, 0.0)
    assert Rc[0, 1] == pytest.approx(np.exp(-distance_km(113.30, 23.1, 113.31, 23.1) / 50.0), rel=1e-12)


def test_distance_km_is_the_great_circle():
    # one degree of latitude: 111.19 km on the 6371 km sphere
    assert distance_km(113.0, 23.0, 113.0, 24.0) == pytest.approx(6371 * np.pi / 180, rel=1e-12)
    # one degree of longitude at 23°N: cos(23°) of that (to the haversine's second order)
    assert distance_km(113.0, 23.0, 114.0, 23.0) == pytest.approx(6371 * np.pi / 180 * np.cos(np.radians(23)), rel=1e-4)


def test_candidate_error_covariance_is_positive_definite_and_the_inversions_within_a_site():
    from inversion.state import obs_error_covariance

    lon = np.array([113.2, 113.2, 113.25, 113.25, 113.5])
    lat = np.array([23.1, 23.1, 23.12, 23.12, 23.3])
    times = np.array(["2025-01-01T04:00", "2025-01-01T05:00"] * 2 + ["2025-01-01T04:00"], dtype="datetime64[m]")
    s, m = np.full(5, 0.1), np.array([1.0, 1.2, 0.9, 1.1, 2.0])
    R = candidate_error_covariance(lon, lat, times, s, m, 10.0, 3.0)
    assert np.linalg.eigvalsh(R).min() > 0
    same = obs_error_covariance(np.array(["A", "A"]), times[:2].astype("datetime64[ns]"), s[:2], m[:2], 3.0)
    np.testing.assert_allclose(R[:2, :2], same, rtol=1e-12)
