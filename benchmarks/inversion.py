"""Benchmarks of the inversion engine (issue 4), printing ratios measured in one run.

    python benchmarks/inversion.py                 # all five sections
    python benchmarks/inversion.py --section dense --dense-state 12000 --dense-obs 2000
    python benchmarks/inversion.py --section month --time-budget 120
    python benchmarks/inversion.py --section month --diurnal-corr 1 0   # plain vs time-of-day Q_t

1. dense: `inversion.solve` (Kronecker operator, Cholesky in observation space) against a plain dense
   NumPy/SciPy implementation (explicit Q, explicit inverse) on the largest problem chosen; prints the
   speed-up and the max relative difference of x_post, aggregated posterior covariance, DOFS, χ².
2. kernels: one H·v and one Hᵀ·v (numba, parallel) on a month-scale STILT-like H, against the
   memory-bandwidth bound = bytes of H / streaming bandwidth measured here (large-array read).
3. month: the month-scale synthetic problem of issue 4 (4,464 obs; 17,400 cells × 248 three-hourly
   steps = 4.3 M state elements; ~20k non-zeros per observation): posterior mean and 11 district
   σ, wall time and peak memory against the 120 s / 8 GB target. With ``--diurnal-corr 1 0`` the
   month problem is solved with the plain exponential Q_t and with the time-of-day correlation of
   the pipeline's default prior (``inversion.diurnal_corr``), on the same H, and the time ratio is printed.
4. blocks: the pipeline's month shape (742 afternoon obs, 18,000 cells × 124 six-hourly steps,
   5-step footprints, the default prior with ``diurnal_corr`` −0.3) with the 720 coarse-block period
   means whose posterior σ the pipeline maps: H Q Bᵀ from footprint slices (`inversion.separable`)
   against Q applied to every row of B (the general route), time ratio and max relative difference.

    python benchmarks/inversion.py --section blocks

5. crossval: the same month shape plus one background offset per day (σ 2 ppm), six sites: the solve
   without and with cross-validation (each site left out, 4 folds of days: option ``holdout``,
   `inversion.crossval`), the extra time, and brute-force re-inversions without a fold (``--crossval-brute``:
   0, 1 (a site) or 2 (and a block of days); time of each, max relative difference of the left-out predictions).

    python benchmarks/inversion.py --section crossval
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import time

# this file is named like the package: drop its own directory from the import path
sys.path[:] = [p for p in sys.path if os.path.abspath(p or ".") != os.path.dirname(os.path.abspath(__file__))]

import numpy as np
import scipy.sparse as sp

from inversion import KroneckerCovariance, SolveOptions, solve  # noqa: E402
from inversion.aggregate import block_mean_weights, period_mean_matrix  # noqa: E402
from gzcarbon.config import CrossValidationConfig  # noqa: E402
from inversion.crossval import plan_folds  # noqa: E402
from inversion.kernels import SparseOperator  # noqa: E402
from inversion.separable import hq_separable, separable_flux_rows  # noqa: E402
from inversion.solve import hq_of_rows  # noqa: E402


def peak_rss_gb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2


def stilt_like_H(rng, n_obs, ny, nx, n_step, steps_back=9, box=47, sites=6):
    """Footprint-like rows: for each obs, `steps_back` steps × a box×box plume drifting from a site."""
    n_cells = ny * nx
    site_y = rng.integers(box, ny - box, sites)
    site_x = rng.integers(box, nx - box, sites)
    per_obs = steps_back * box * box
    indptr = np.arange(n_obs + 1, dtype=np.int64) * per_obs
    indices = np.empty(n_obs * per_obs, np.int64)
    data = np.empty(n_obs * per_obs)
    oy, ox = np.divmod(np.arange(box * box), box)
    obs_step = np.sort(rng.integers(steps_back - 1, n_step, n_obs))
    for i in range(n_obs):
        s = i % sites
        ang = rng.uniform(0, 2 * np.pi)
        for b in range(steps_back):
            cy = int(np.clip(site_y[s] + 2 * b * np.sin(ang) - box // 2, 0, ny - box))
            cx = int(np.clip(site_x[s] + 2 * b * np.cos(ang) - box // 2, 0, nx - box))
            k0 = i * per_obs + b * box * box
            cells = (cy + oy) * nx + (cx + ox)
            indices[k0:k0 + box * box] = (obs_step[i] - b) * n_cells + cells
            r2 = (oy - box / 2) ** 2 + (ox - box / 2) ** 2
            data[k0:k0 + box * box] = 1e-3 * np.exp(-r2 / (2 * (4 + 2 * b) ** 2)) * np.exp(-b / 4)
    H = sp.csr_matrix((data, indices, indptr), shape=(n_obs, n_step * n_cells))
    H.sort_indices()
    return H, obs_step


def district_rows(rng, ny, nx, n_step, n_district=11, n_extra=0):
    """11 'districts' = vertical strips, aggregated over all steps (t CO2-like weights)."""
    n_cells = ny * nx
    ix = np.arange(n_cells) % nx
    lab = np.minimum(ix * n_district // nx, n_district - 1)
    W = sp.csr_matrix((np.ones(n_cells), (lab, np.arange(n_cells))), shape=(n_district, n_cells))
    A = sp.kron(sp.csr_matrix(np.ones((1, n_step))), W, format="csr")
    if n_extra:
        A = sp.hstack([A, sp.csr_matrix((n_district, n_extra))], format="csr")
    return A


# ------------------------------------------------------------------------------------------------
def section_dense(n_state_target: int, n_obs: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    ny, nx = 40, 50
    n_step = max(1, n_state_target // (ny * nx))
    sigma = 0.5 + rng.random((n_step, ny, nx))
    Q = KroneckerCovariance(sigma, 1.02, 1.106, 6.0, 3.0, 12.0)
    H, _ = stilt_like_H(rng, n_obs, ny, nx, n_step, steps_back=min(4, n_step), box=15, sites=3)
    A = district_rows(rng, ny, nx, n_step)
    x_a = np.zeros(Q.n)
    y = rng.normal(size=n_obs) * 3
    sig = np.full(n_obs, 1.5)
    print(f"[dense] problem: n_obs={n_obs}, n_state={Q.n} ({n_step} steps x {ny}x{nx} cells), nnz(H)={H.nnz}")

    t, c = time.perf_counter(), time.process_time()
    res = solve(H, y, x_a, Q, sig, aggregate=A, options=SolveOptions(solver="cholesky"))
    t_ours, c_ours = time.perf_counter() - t, time.process_time() - c

    t, c = time.perf_counter(), time.process_time()
    Qd = Q.to_dense()
    Hd = H.toarray()
    Ad = A.toarray()
    QHt = Qd @ Hd.T
    K = Hd @ QHt + np.diag(sig**2)
    Ki = np.linalg.inv(K)
    d = y - Hd @ x_a
    x_ref = x_a + QHt @ (Ki @ d)
    AQHt = Ad @ QHt
    cov_ref = Ad @ Qd @ Ad.T - AQHt @ Ki @ AQHt.T
    dofs_ref = np.trace(Hd @ QHt @ Ki)
    chi2_ref = d @ Ki @ d / n_obs
    t_dense, c_dense = time.perf_counter() - t, time.process_time() - c
    del Qd, QHt

    def rel(a, b):
        return float(np.max(np.abs(a - b)) / np.max(np.abs(b)))

    print(f"[dense] inversion.solve {t_ours:.2f} s; dense NumPy reference {t_dense:.2f} s; "
          f"speed-up {t_dense / t_ours:.1f}x (CPU time {c_ours:.1f} s vs {c_dense:.1f} s: {c_dense / c_ours:.1f}x)")
    print(f"[dense] max rel. difference: x_post {rel(res.x_post, x_ref):.1e}, agg_post_cov "
          f"{rel(res.agg_post_cov, cov_ref):.1e}, DOFS {abs(res.dofs - dofs_ref) / dofs_ref:.1e}, "
          f"chi2 {abs(res.chi2_reduced - chi2_ref) / chi2_ref:.1e}")


def stream_bandwidth(n_bytes=1 << 30) -> float:
    """Read bandwidth (bytes/s) of a large-array reduction (best of 3)."""
    a = np.ones(n_bytes // 8)
    best = np.inf
    for _ in range(3):
        t = time.perf_counter()
        a.sum()
        best = min(best, time.perf_counter() - t)
    return a.nbytes / best


def section_kernels(H: sp.csr_matrix | None = None, seed: int = 0):
    rng = np.random.default_rng(seed)
    if H is None:
        H, _ = stilt_like_H(rng, 4464, 150, 116, 248)
    op = SparseOperator(H)
    bw = stream_bandwidth()
    bound = op.nbytes / bw
    v = rng.normal(size=H.shape[1])
    w = rng.normal(size=H.shape[0])
    op.matvec(v), op.rmatvec(w)  # compile
    tm = min(_timeit(lambda: op.matvec(v)) for _ in range(3))
    tr = min(_timeit(lambda: op.rmatvec(w)) for _ in range(3))
    ts = min(_timeit(lambda: H @ v) for _ in range(2))
    print(f"[kernels] H {H.shape[0]}x{H.shape[1]}, nnz {H.nnz / 1e6:.1f} M ({op.nbytes / 1e9:.2f} GB CSR); "
          f"streaming bandwidth {bw / 1e9:.1f} GB/s -> bound {bound * 1e3:.0f} ms")
    print(f"[kernels] H.v {tm * 1e3:.0f} ms = {tm / bound:.2f}x bound; H^T.v {tr * 1e3:.0f} ms = "
          f"{tr / bound:.2f}x bound (target <= 2x); scipy H.v {ts * 1e3:.0f} ms")
    return H, op


def _timeit(f):
    t = time.perf_counter()
    f()
    return time.perf_counter() - t


def section_month(time_budget: float, seed: int = 0, H=None, pcg_maxiter=400, solver="auto",
                  diurnal_corr: float = 1.0):
    rng = np.random.default_rng(seed)
    ny, nx, n_step, n_obs = 150, 116, 248, 4464
    t0 = time.perf_counter()
    if H is None:
        H, _ = stilt_like_H(rng, n_obs, ny, nx, n_step)
    sigma = 0.5 + rng.random((n_step, ny, nx))
    Q = KroneckerCovariance(sigma, 1.02, 1.106, 6.0, 3.0, 12.0, diurnal_corr=diurnal_corr)
    A = district_rows(rng, ny, nx, n_step)
    y = H @ (sigma.ravel() * rng.normal(size=Q.n) * 0.3) + rng.normal(size=n_obs) * 1.5
    t_build = time.perf_counter() - t0
    print(f"[month] diurnal_corr {diurnal_corr:g} (1 = plain exponential in time)")
    print(f"[month] problem: n_obs={n_obs}, n_state={Q.n / 1e6:.2f} M, nnz(H)={H.nnz / 1e6:.1f} M "
          f"({H.nnz / n_obs:.0f}/obs); built in {t_build:.1f} s")
    t = time.perf_counter()
    Q.matvec(np.ones(Q.n))
    t_q = time.perf_counter() - t
    print(f"[month] one Q.v: {t_q:.2f} s (FFT on {n_step} planes of {ny}x{nx})")
    t, c = time.perf_counter(), time.process_time()
    res = solve(H, y, np.zeros(Q.n), Q, np.full(n_obs, 1.5), aggregate=A, options=SolveOptions(solver=solver, pcg_tol=1e-8, pcg_maxiter=pcg_maxiter, dofs_probes=8))
    dt, cpu = time.perf_counter() - t, time.process_time() - c
    print(f"[month] CPU time {cpu:.1f} s over {dt:.1f} s wall (CPU/wall {cpu / dt:.2f}; on a shared machine "
          "CPU time / cores is the idle-machine estimate)")
    mem = peak_rss_gb()
    ok = dt <= time_budget and mem <= 8
    how = f"pcg, {res.pcg_iterations} iterations" if res.solver == "pcg" else f"cholesky, H Q Ht by {res.hqht}"
    print(f"[month] solve ({how}): {dt:.1f} s "
          f"(target {time_budget:.0f} s: {dt / time_budget:.2f}x), peak RSS {mem:.1f} GB (target 8 GB) -> "
          f"{'MET' if ok else 'NOT MET'}")
    print(f"[month] chi2_r {res.chi2_reduced:.3f}, DOFS {res.dofs:.1f} (+-{res.dofs_stderr:.1f})")
    print(f"[month] district sigma (post/prior): "
          + ", ".join(f"{p:.3g}" for p in res.agg_post_sigma / res.agg_prior_sigma))
    print(f"[month] timings: " + ", ".join(f"{k} {v:.1f}s" for k, v in res.timings.items()))
    return dt, H


def section_blocks(seed: int = 0, block: int = 5):
    rng = np.random.default_rng(seed)
    ny, nx, n_step, n_obs = 150, 120, 124, 742
    H, _ = stilt_like_H(rng, n_obs, ny, nx, n_step, steps_back=5, box=47)
    sigma = 0.5 + rng.random((n_step, ny, nx))
    Q = KroneckerCovariance(sigma, 1.02, 1.106, 5.0, 6.0, 720.0, diurnal_corr=-0.3)
    Wb, nby, nbx = block_mean_weights(ny, nx, block, np.ones((ny, nx)))
    nh = np.full(n_step, 6.0)
    nh[:4] = 0  # the spin-up day is outside the period
    B = period_mean_matrix(Wb, nh, 0)
    print(f"[blocks] problem: n_obs={n_obs}, {ny * nx} cells x {n_step} steps, nnz(H)={H.nnz / 1e6:.1f} M, "
          f"{B.shape[0]} block rows ({block}x{block} cells), diurnal_corr -0.3")
    Hop = SparseOperator(H)
    t = time.perf_counter()
    sep = separable_flux_rows(B, n_step, ny * nx)
    fast = hq_separable(Q, H, *sep)
    t_fast = time.perf_counter() - t
    print(f"[blocks] H Q Bt from footprint slices: {t_fast:.1f} s (separability check included)", flush=True)
    t = time.perf_counter()
    ref = hq_of_rows(Q, Hop, B, 1.5e9)
    t_ref = time.perf_counter() - t
    diff = np.abs(fast - ref).max() / np.abs(ref).max()
    print(f"[blocks] H Q Bt with Q applied to every row: {t_ref:.1f} s")
    print(f"[blocks] speed-up {t_ref / t_fast:.1f}x, max relative difference {diff:.1e}")


def section_crossval(seed: int = 0, folds_days: int = 4, n_brute: int = 1, shape=(150, 120, 124, 742)):
    rng = np.random.default_rng(seed)
    (ny, nx, n_step, n_obs), n_sites = shape, 6
    H, obs_step = stilt_like_H(rng, n_obs, ny, nx, n_step, steps_back=5, box=47, sites=n_sites)
    day = obs_step // 4
    n_day = n_step // 4
    H = sp.hstack([H, sp.csr_matrix((np.ones(n_obs), (np.arange(n_obs), day)), shape=(n_obs, n_day))], format="csr")
    sigma = 0.5 + rng.random((n_step, ny, nx))
    Q = KroneckerCovariance(sigma, 1.02, 1.106, 5.0, 6.0, 720.0, extra_sigma=np.full(n_day, 2.0), diurnal_corr=-0.3)
    A = district_rows(rng, ny, nx, n_step, n_extra=n_day)
    x_true = np.concatenate([sigma.ravel() * rng.normal(size=Q.n_flux) * 0.3, rng.normal(0, 2.0, n_day)])
    y = H @ x_true + rng.normal(size=n_obs)
    sites = np.array([f"S{i % n_sites}" for i in range(n_obs)])
    times = np.datetime64("2025-01-01") + (obs_step * 6).astype("timedelta64[h]")
    plan = plan_folds(CrossValidationConfig(folds_days=folds_days), sites, times, n_obs=n_obs, solver="auto",
                      max_dense_obs=20000)
    print(f"[crossval] problem: n_obs={n_obs}, {ny * nx} cells x {n_step} steps + {n_day} background offsets, "
          f"{n_sites} sites; {len(plan.folds)} folds ({n_sites} sites, {len(plan.folds) - n_sites} blocks of days)")
    err, x0 = np.ones(n_obs), np.zeros(Q.n)
    t = time.perf_counter()
    solve(H, y, x0, Q, err, aggregate=A)
    t_plain = time.perf_counter() - t
    t = time.perf_counter()
    res = solve(H, y, x0, Q, err, aggregate=A, options=plan.apply(SolveOptions()))
    t_cv = time.perf_counter() - t
    print(f"[crossval] solve {t_plain:.1f} s; with every fold {t_cv:.1f} s (the folds' own step: "
          f"{res.timings['holdout']:.2f} s)", flush=True)
    for f in [plan.folds[0], plan.folds[-1]][:n_brute]:
        keep = ~f.mask
        t = time.perf_counter()
        brute = solve(H[keep], y[keep], x0, Q, err[keep], aggregate=A)
        t_b = time.perf_counter() - t
        ref = H[f.mask] @ brute.x_post
        diff = np.abs(res.holdout_predictions[f.name].y_pred - ref).max() / np.abs(ref).max()
        print(f"[crossval] brute-force re-inversion without {f.name!r}: {t_b:.1f} s; max relative difference "
              f"of its {f.mask.sum()} left-out predictions {diff:.1e}")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--section", choices=["all", "dense", "kernels", "month", "blocks", "crossval"], default="all")
    ap.add_argument("--dense-state", type=int, default=20000)
    ap.add_argument("--dense-obs", type=int, default=2000)
    ap.add_argument("--time-budget", type=float, default=120.0)
    ap.add_argument("--pcg-maxiter", type=int, default=400)
    ap.add_argument("--month-solver", choices=["auto", "cholesky", "pcg"], default="auto")
    ap.add_argument("--crossval-brute", type=int, choices=[0, 1, 2], default=1,
                    help="crossval section: brute-force re-inversions to compare with (each costs a solve)")
    ap.add_argument("--diurnal-corr", type=float, nargs="+", default=[1.0],
                    help="month section: one solve per value (same H); > -1/7 with 3-hour steps")
    a = ap.parse_args()
    print("load average at start (1, 5, 15 min): %.2f %.2f %.2f on %d CPUs (timings assume a quiet machine)"
          % (*os.getloadavg(), os.cpu_count() or 0))
    if a.section in ("all", "dense"):
        section_dense(a.dense_state, a.dense_obs)
    H = None
    if a.section in ("all", "kernels"):
        H, _ = section_kernels()
    if a.section in ("all", "month"):
        times = []
        for c in a.diurnal_corr:
            dt, H = section_month(a.time_budget, H=H, pcg_maxiter=a.pcg_maxiter, solver=a.month_solver,
                                  diurnal_corr=c)
            times.append(dt)
        for c, dt in zip(a.diurnal_corr[1:], times[1:]):
            print(f"[month] diurnal_corr {c:g} vs {a.diurnal_corr[0]:g}: {dt:.1f} s / {times[0]:.1f} s = "
                  f"{dt / times[0]:.2f}x")
    if a.section in ("all", "blocks"):
        section_blocks()
    if a.section in ("all", "crossval"):
        section_crossval(n_brute=a.crossval_brute)
    print("load average at end: %.2f %.2f %.2f" % os.getloadavg())


if __name__ == "__main__":
    main()
