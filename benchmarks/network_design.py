"""What the exact rank update saves (docs/network.md): the district σ of every candidate and a
greedy choice of k sites, by `inversion.network` (one H Q Hᵀ, one Cholesky of the current network,
a small Schur complement per candidate), against re-solving the inversion from scratch with each
candidate's rows appended (`inversion.solve`, one solve per candidate and per greedy trial).

A synthetic problem on the pipeline's prior covariance operator (`KroneckerCovariance`: an
exponential spatial correlation on an ny × nx grid, n_step time steps): the existing network's
observations and the candidates' have random sparse footprints. Both give the same σ (checked, to
1e-8 relative); printed: CPU seconds (process time) of each and their ratio.

    python benchmarks/network_design.py [--cells 40] [--steps 8] [--obs 300] [--candidates 8] [--per 8] [--k 2]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import scipy.sparse as sp

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from inversion.covariance import KroneckerCovariance  # noqa: E402
from inversion.network import candidate_error_covariance, candidate_sigmas, design_covariance, greedy  # noqa: E402
from inversion.solve import SolveOptions, solve  # noqa: E402


def problem(n: int, steps: int, n_obs: int, n_cand: int, per: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    lat_e = 23.0 + 0.01 * np.arange(n + 1)
    lon_e = 113.0 + 0.01 * np.arange(n + 1)
    sigma = 0.5 + rng.random((steps, n, n))
    Q = KroneckerCovariance.from_grid(sigma, lat_e, lon_e, 3.0, 1, 4.0, extra_sigma=np.full(2, 1.0))

    def rows(m):
        H = sp.random(m, Q.n, density=0.02, random_state=rng, format="csr")
        return H.multiply(0.05).tocsr()

    H1, Hc = rows(n_obs), rows(n_cand * per)
    cells = n * n
    A = sp.csr_matrix(np.vstack([np.tile((np.arange(cells) % 4 == d).astype(float), steps) for d in range(4)]
                                + [np.ones(cells * steps)]))
    A = sp.hstack([A, sp.csr_matrix((5, 2))], format="csr")
    lon = np.repeat(113.0 + 0.4 * rng.random(n_cand), per)
    lat = np.repeat(23.0 + 0.4 * rng.random(n_cand), per)
    t = np.tile(np.datetime64("2025-01-01T04:00") + np.arange(per).astype("timedelta64[h]"), n_cand)
    Rc = candidate_error_covariance(lon, lat, t, np.full(lon.size, 0.1), np.full(lon.size, 1.0), 10.0, 0.0)
    blocks = {f"C{i}": np.arange(i * per, (i + 1) * per) for i in range(n_cand)}
    return Q, H1, np.full(n_obs, 1.0), A, Hc, Rc, blocks


def resolve(Q, H1, s1, A, Hc, Rc, idx):
    """The posterior σ of A with the rows idx of Hc appended, solved from scratch."""
    H = sp.vstack([H1, Hc[idx]], format="csr")
    R = np.zeros((H.shape[0],) * 2)
    R[:s1.size, :s1.size] = np.diag(s1**2)
    R[s1.size:, s1.size:] = Rc[np.ix_(idx, idx)]
    res = solve(H, np.zeros(H.shape[0]), np.zeros(H.shape[1]), Q, R, aggregate=A,
                options=SolveOptions(check_pd=False, hqht="chunks"))
    return res.agg_post_sigma


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cells", type=int, default=40)
    ap.add_argument("--steps", type=int, default=8)
    ap.add_argument("--obs", type=int, default=300)
    ap.add_argument("--candidates", type=int, default=8)
    ap.add_argument("--per", type=int, default=8)
    ap.add_argument("--k", type=int, default=2)
    a = ap.parse_args(argv)
    Q, H1, s1, A, Hc, Rc, blocks = problem(a.cells, a.steps, a.obs, a.candidates, a.per)
    t = time.process_time()
    d = design_covariance(Q, H1, s1, A, Hc, Rc, blocks, list("abcde"))
    sig = candidate_sigmas(d)
    steps = greedy(d, a.k, 4)
    t_design = time.process_time() - t
    t = time.process_time()
    ref = {c: resolve(Q, H1, s1, A, Hc, Rc, idx) for c, idx in blocks.items()}
    chosen: list = []
    for _ in range(a.k):  # greedy by re-solving: every remaining candidate with the chosen ones
        trial = {c: resolve(Q, H1, s1, A, Hc, Rc, np.concatenate([blocks[x] for x in chosen + [c]]))[4]
                 for c in blocks if c not in chosen}
        chosen.append(min(trial, key=lambda c: (trial[c], c)))
    t_resolve = time.process_time() - t
    rel = max(float(np.max(np.abs(sig[c] - ref[c]) / ref[c])) for c in blocks)
    same = [s["id"] for s in steps] == chosen
    print(f"state {Q.n}, existing obs {H1.shape[0]}, {len(blocks)} candidates x {a.per} obs, k = {a.k}")
    print(f"rank update: {t_design:.2f} CPU s; re-solve from scratch: {t_resolve:.2f} CPU s; "
          f"ratio {t_resolve / t_design:.1f}")
    print(f"largest relative difference of the candidates' sigma: {rel:.1e}; greedy choice the same: {same} "
          f"({', '.join(chosen)})")
    return 0 if rel < 1e-8 and same else 1


if __name__ == "__main__":
    sys.exit(main())
