"""Does the network design's σ hold? Truths drawn from the prior, seen through the truth's own
transport, with one candidate site added to the network (docs/network.md, "Checked on the demo").

    python tools/network_osse.py RUN_DIR [--candidate ID] [--draws 20] [--seed 1] [--month 2025-01]
                                 [--transport truth|inversion] [--config FILE]

RUN_DIR holds a finished demo run with its network design (``snakemake --cores 2 network_design``)
and the truth's transport at the candidates (``snakemake --cores 2 network_truth``):
``results/<month>/network/`` and ``data/demo/<month>/truth_transport/network/jacobian_hourly.npz``.
Truths x ~ N(x_a, Q) (the outer cells too on a nested run) are seen through the truth's Jacobian of
the existing observations and of the candidate's, plus noise from the R the inversion assumes (the
existing R and the candidate's R_c block); each is inverted with the inversion's H and the
candidate's rows (`inversion.solve`, one factorisation for all draws). Printed: per district and the
city, the error spread, the σ the design predicts with the candidate (`inversion.network`) and the
share of draws within 1σ / 2σ — first without, then with the candidate, on the same truths.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import scipy.linalg as sla
import scipy.sparse as sp

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from gzcarbon.cli.osse import (load_run, load_settings, print_coverage, prior_draw_ensemble,  # noqa: E402
                               run_config_file, truth_full_jacobian)


def _check_files(run_dir, N: Path, D: Path) -> None:
    for p in (N / "candidates.csv", N / "candidate_sites.csv", N / "jacobian_hourly.npz",
              D / "truth_transport" / "network" / "jacobian_hourly.npz", D / "truth_transport" / "jacobian_hourly.npz"):
        if not p.exists():
            sys.exit(f"{p}: missing; run `snakemake --cores 2 network_design network_truth --configfile FILE` (the candidates, e.g. config/network_candidates.yaml) in {run_dir}")


def truth_rows(args, D: Path, inputs, prob, cp, jac_c, used, b):
    """The truth's state Jacobian rows of the existing (used) and the candidate's observations: the
    truth's own transport, or (``--transport inversion``) the inversion's, the identical twin."""
    from transport.jacobian import load_jacobian

    if args.transport == "inversion":
        return prob.H[used], cp.H[b]
    jt = load_jacobian(D / "truth_transport" / "jacobian_hourly.npz")
    if not np.array_equal(jt.receptors["receptor_id"].astype(str), inputs.receptors["receptor_id"].astype(str)):
        sys.exit(f"{D / 'truth_transport' / 'jacobian_hourly.npz'}: other receptors than the run's Jacobian; re-run the demo")
    Ht1 = truth_full_jacobian(prob, sp.csr_matrix(jt.H)[prob.obs["row"].to_numpy()])[used]
    jtc = load_jacobian(D / "truth_transport" / "network" / "jacobian_hourly.npz")
    if not np.array_equal(jtc.receptors["receptor_id"].astype(str), jac_c.receptors["receptor_id"].astype(str)):
        sys.exit("the truth's candidate Jacobian has other receptors than network/jacobian_hourly.npz; re-run "
                 "snakemake network_truth")
    return Ht1, truth_full_jacobian(cp, sp.csr_matrix(jtc.H)[cp.obs["row"].to_numpy()])[b]


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("run_dir", type=Path)
    ap.add_argument("--candidate", default=None, help="candidate id (default: the best of candidates.csv)")
    ap.add_argument("--draws", type=int, default=20)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--month", default=None)
    ap.add_argument("--transport", choices=("truth", "inversion"), default="truth",
                    help="whose footprints the drawn truths are seen through (inversion: the identical twin)")
    ap.add_argument("--config", type=Path, default=None,
                    help="config file (default: the run's own, stored in its flux product; else config/config.yaml)")
    args = ap.parse_args(argv)

    from inversion.network import candidate_problem, design_covariance, exit_shares
    from inversion.run import build_aggregation, build_inversion_problem, period_axis, screen_observations
    from transport.jacobian import load_jacobian

    cfg_path = args.config or run_config_file(args.run_dir, args.month)
    cfg, inv = load_settings(cfg_path, [])
    nd = cfg.network_design.as_dict()
    inputs, R, truth_path, start, end, _ = load_run(args.run_dir, args.month, cfg, inv)
    D = truth_path.parent
    N = R / "network"
    _check_files(args.run_dir, N, D)
    table = pd.read_csv(N / "candidate_sites.csv", dtype={"id": str})
    ranked = pd.read_csv(N / "candidates.csv", dtype={"id": str})
    cid = args.candidate or str(ranked["id"].iloc[0])
    if cid not in set(table["id"]):
        sys.exit(f"--candidate {cid}: not a candidate of {N / 'candidate_sites.csv'} ({', '.join(table['id'])})")

    mask, days = period_axis(inputs.hours, start, end)
    prob = build_inversion_problem(inputs, inv, days, float(cfg.stations.utc_offset_hours))
    used = screen_observations(prob, inv).used
    agg = build_aggregation(inputs, prob, mask, days, inv)
    A = sp.csr_matrix(agg.A)
    R1 = prob.obs_cov[np.ix_(used, used)] if prob.obs_cov is not None else np.diag(prob.obs_sigma[used] ** 2)
    jac_c = load_jacobian(N / "jacobian_hourly.npz")
    shares = None
    if prob.sides:
        o = inputs.outer.nested.outer
        fps = sorted((N / "footprints").glob("*/*[0-9].nc"))
        shares = exit_shares(fps, jac_c.receptors, (o.lon_min, o.lon_max, o.lat_min, o.lat_max))
    cp, Rc, blocks, _ = candidate_problem(inputs, inv, prob, nd, table, jac_c.H, jac_c.receptors, days,
                                       cand_missing=getattr(jac_c, "missing", None), shares=shares)
    b = blocks[cid]
    Ht1, Htc = truth_rows(args, D, inputs, prob, cp, jac_c, used, b)
    H = sp.vstack([prob.H[used], cp.H[b]], format="csr")
    Ht = sp.vstack([Ht1, Htc], format="csr")
    Rall = sla.block_diag(R1, Rc[np.ix_(b, b)])
    design = design_covariance(prob.Q, prob.H[used], R1, A, cp.H, Rc, blocks, list(agg.names))
    predicted = design.sigma_with([cid])
    print(f"run {R}; candidate {cid} ({len(b)} observations), {args.draws} truths from the prior through the "
          f"{args.transport}'s transport; {int(used.sum())} existing observations")
    rng0 = np.random.default_rng(args.seed)
    err0, s0, _ = prior_draw_ensemble(prob.H[used], Ht1, prob.Q, R1, A, args.draws, rng0)
    out0 = print_coverage(agg.names, err0, s0, design.prior_sigma, "current network:")
    rng = np.random.default_rng(args.seed)  # the same truths (drawn first), new noise for the added rows
    err, s1, _ = prior_draw_ensemble(H, Ht, prob.Q, Rall, A, args.draws, rng)
    rel = float(np.max(np.abs(s1 - predicted) / predicted))
    print(f"\nwith {cid}: the solve's σ equals the design's to {rel:.1e} (relative)")
    out1 = print_coverage(agg.names, err, s1, design.prior_sigma, f"with {cid}:")
    print(f"\ncity σ {s0[-1] / 1e3:.1f} -> {s1[-1] / 1e3:.1f} kt ({100 * (1 - s1[-1] / s0[-1]):.1f} % less); "
          f"error spread {err0[-1].std() / 1e3:.1f} -> {err[-1].std() / 1e3:.1f} kt; coverage city "
          f"{out0['city'][0]:.0%}/{out0['city'][1]:.0%} -> {out1['city'][0]:.0%}/{out1['city'][1]:.0%}, districts "
          f"{out0['districts'][0]:.0%}/{out0['districts'][1]:.0%} -> {out1['districts'][0]:.0%}/{out1['districts'][1]:.0%}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
