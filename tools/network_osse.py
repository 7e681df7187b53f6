"""Does the network design's σ hold? Truths drawn from the prior, seen through the truth's own
transport, with one candidate (a tower, a column sensor or a day of mobile transects) added to the
network (docs/network.md, "Checked on the demo").

    python tools/network_osse.py RUN_DIR [--candidate ID[,ID...]] [--draws 20] [--seed 1] [--month 2025-01]
                                 [--transport truth|inversion] [--config FILE]

RUN_DIR holds a finished demo run with its network design (``snakemake --cores 2 network_design``)
and the truth's transport at the candidates (``snakemake --cores 2 network_truth``):
``results/<month>/network/`` and ``data/demo/<month>/truth_transport/network/`` (the in-situ
candidates' ``jacobian_hourly.npz``, the column and mobile candidates' ``extra/<id>.npz``).
Truths x ~ N(0, Q) (the correction to the prior; the outer cells too on a nested run) are seen
through the truth's Jacobian of the existing observations and of the candidate's, plus noise from
the R the design assumes (the existing R, the candidate's block and, for an in-situ candidate, its
errors' covariance with the nearest station's); each is inverted with the inversion's H and the
candidate's rows (`inversion.solve`, one factorisation for all draws). Printed per candidate: per
district and the city, the error spread, the σ the design predicts with the candidate
(`inversion.network`) and the share of draws within 1σ / 2σ — first without, then with the
candidate, on the same truths.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import scipy.sparse as sp

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from gzcarbon.cli.osse import (load_run, load_settings, print_coverage, prior_draw_ensemble,  # noqa: E402
                               run_config_file, truth_full_jacobian)


def _check_files(run_dir, N: Path, D: Path, table: pd.DataFrame) -> None:
    need = [N / "candidates.csv", D / "truth_transport" / "jacobian_hourly.npz"]
    if (table["type"] == "insitu").any():
        need += [N / "jacobian_hourly.npz", D / "truth_transport" / "network" / "jacobian_hourly.npz"]
    for c in table.loc[table["type"] != "insitu", "id"]:
        need += [N / "extra" / f"{c}.npz", D / "truth_transport" / "network" / "extra" / f"{c}.npz"]
    for p in need:
        if not p.exists():
            sys.exit(f"{p}: missing; run `snakemake --cores 2 network_design network_truth --configfile FILE` (the "
                     f"candidates, e.g. config/network_candidates.yaml) in {run_dir}")


def design_of_run(inputs, inv, nd, N: Path, start, end, utc_offset, outer_box):
    """The run's network design, as rule network_design_month computes it, with its parts
    (`inversion.network.NetworkDesignResult.parts`)."""
    from inversion.network import exit_shares, load_extra_candidates, network_design
    from transport.jacobian import load_jacobian
    from transport.receptors import read_receptors

    table = pd.read_csv(N / "candidate_sites.csv", dtype={"id": str})
    sel_path = N.parent / "obs" / "selected.csv"
    sides = [c.removeprefix("bg_share_") for c in pd.read_csv(sel_path, nrows=0).columns if c.startswith("bg_share_")]
    H_c = rec = missing = shares = None
    if (table["type"] == "insitu").any():
        jac_c = load_jacobian(N / "jacobian_hourly.npz")
        H_c, rec, missing = jac_c.H, jac_c.receptors, getattr(jac_c, "missing", None)
        if sides:
            ids = table.loc[table["type"] == "insitu", "id"]
            fps = sorted(p for c in ids for p in (N / "footprints" / c).glob("*[0-9].nc"))
            shares = exit_shares(fps, read_receptors(N / "receptors.csv"), outer_box)
    extra_ids = list(table.loc[table["type"] != "insitu", "id"])
    extra, owner = load_extra_candidates([N / "extra" / f"{c}.npz" for c in extra_ids], sel_path, sides)
    res = network_design(inputs, inv, nd, table, H_c, rec, start, end, cand_missing=missing,
                         utc_offset_hours=utc_offset, shares=shares, extra=extra, extra_owner=owner)
    return res, table, extra_ids, sides, sel_path


def truth_rows(args, D: Path, inputs, res, cid: str, kind: str, sides, sel_path, utc_offset):
    """The truth's state Jacobian rows of the existing (used) observations and of candidate ``cid``'s:
    the truth's own transport, or (``--transport inversion``) the inversion's, the identical twin."""
    from inversion.network import extra_candidate_rows, load_extra_candidates
    from transport.jacobian import load_jacobian

    P = res.parts
    prob, used, b = P["prob"], P["used"], P["blocks"][cid]
    if args.transport == "inversion":
        return prob.H[used], P["H"][b]
    jt = load_jacobian(D / "truth_transport" / "jacobian_hourly.npz")
    if not np.array_equal(jt.receptors["receptor_id"].astype(str), inputs.receptors["receptor_id"].astype(str)):
        sys.exit(f"{D / 'truth_transport' / 'jacobian_hourly.npz'}: other receptors than the run's Jacobian; re-run the demo")
    Ht1 = truth_full_jacobian(prob, sp.csr_matrix(jt.H)[prob.obs["row"].to_numpy()])[used]
    if kind == "insitu":
        cp = P["cp"]
        jtc = load_jacobian(D / "truth_transport" / "network" / "jacobian_hourly.npz")
        ref = load_jacobian(Path(args.run_dir) / "results" / P["month"] / "network" / "jacobian_hourly.npz")
        if not np.array_equal(jtc.receptors["receptor_id"].astype(str), ref.receptors["receptor_id"].astype(str)):
            sys.exit("the truth's candidate Jacobian has other receptors than network/jacobian_hourly.npz; re-run "
                     "snakemake network_truth")
        return Ht1, truth_full_jacobian(cp, sp.csr_matrix(jtc.H)[cp.obs["row"].to_numpy()])[b]
    # a column or mobile candidate: the truth's rows of the same receptors, mapped onto the state as the
    # design maps the inversion's (extra_candidate_rows)
    tx, owner = load_extra_candidates([D / "truth_transport" / "network" / "extra" / f"{cid}.npz"], sel_path, sides)
    ix, _ = load_extra_candidates([Path(args.run_dir) / "results" / P["month"] / "network" / "extra" / f"{cid}.npz"],
                                  sel_path, sides)
    if not (np.array_equal(tx.receptors["receptor_id"].astype(str), ix.receptors["receptor_id"].astype(str))
            and np.array_equal(tx.selected["site"].astype(str), ix.selected["site"].astype(str))):
        sys.exit(f"the truth's rows of {cid} have other receptors than network/extra/{cid}.npz; re-run "
                 "snakemake network_truth")
    Ht, _, blocks = extra_candidate_rows(inputs, P["cfg"], P["days"], utc_offset, prob, tx, owner)
    Hi, _, blocks_i = extra_candidate_rows(inputs, P["cfg"], P["days"], utc_offset, prob, ix, owner)
    if not np.array_equal(blocks[cid], blocks_i[cid]):
        sys.exit(f"{cid}: the truth's rows map onto other observations than the design's")
    return Ht1, sp.csr_matrix(Ht)[blocks[cid]]


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("run_dir", type=Path)
    ap.add_argument("--candidate", default=None,
                    help="candidate id(s), comma-separated (default: the best of candidates.csv)")
    ap.add_argument("--draws", type=int, default=20)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--month", default=None)
    ap.add_argument("--transport", choices=("truth", "inversion"), default="truth",
                    help="whose footprints the drawn truths are seen through (inversion: the identical twin)")
    ap.add_argument("--config", type=Path, default=None,
                    help="config file (default: the run's own, stored in its flux product; else config/config.yaml)")
    args = ap.parse_args(argv)

    cfg_path = args.config or run_config_file(args.run_dir, args.month)
    cfg, inv = load_settings(cfg_path, [])
    nd = cfg.network_design.as_dict()
    inputs, R, truth_path, start, end, _ = load_run(args.run_dir, args.month, cfg, inv)
    D = truth_path.parent
    N = R / "network"
    utc = float(cfg.stations.utc_offset_hours)
    outer = inputs.outer.nested.outer if inputs.outer is not None else None
    box = None if outer is None else (outer.lon_min, outer.lon_max, outer.lat_min, outer.lat_max)
    table0 = pd.read_csv(N / "candidate_sites.csv", dtype={"id": str})
    _check_files(args.run_dir, N, D, table0)
    res, table, extra_ids, sides, sel_path = design_of_run(inputs, inv, nd, N, start, end, utc, box)
    res.parts["month"] = R.name
    ranked = pd.read_csv(N / "candidates.csv", dtype={"id": str})
    ids = args.candidate.split(",") if args.candidate else [str(ranked["id"].iloc[0])]
    for cid in ids:
        if cid not in res.parts["blocks"]:
            sys.exit(f"--candidate {cid}: not a candidate of {N / 'candidate_sites.csv'} with rows "
                     f"({', '.join(res.parts['blocks'])})")
    P = res.parts
    prob, used, A = P["prob"], P["used"], sp.csr_matrix(P["agg"].A)
    R1 = np.asarray(P["R1"], float)
    R1 = R1 if R1.ndim == 2 else np.diag(R1**2)
    names = list(P["agg"].names)
    H1 = prob.H[used]
    print(f"run {R}; {args.draws} truths from the prior through the {args.transport}'s transport; "
          f"{int(np.sum(used))} existing observations")
    rng0 = np.random.default_rng(args.seed)
    Ht1 = None
    out = {}
    for cid in ids:
        kind = str(table.set_index("id").loc[cid, "type"])
        b = P["blocks"][cid]
        Ht1, Htc = truth_rows(args, D, inputs, res, cid, kind, sides, sel_path, utc)
        if not out:
            err0, s0, _ = prior_draw_ensemble(H1, Ht1, prob.Q, R1, A, args.draws, rng0)
            out["current"] = print_coverage(names, err0, s0, res.design.prior_sigma, "current network:")
        H = sp.vstack([H1, P["H"][b]], format="csr")
        Ht = sp.vstack([Ht1, Htc], format="csr")
        Rcb = np.asarray(P["R"], float)[np.ix_(b, b)]
        R1c = np.zeros((len(b), R1.shape[0])) if P["R1c"] is None else np.asarray(P["R1c"], float)[b]
        Rall = np.block([[R1, R1c.T], [R1c, Rcb]])
        predicted = res.design.sigma_with([cid])
        rng = np.random.default_rng(args.seed)  # the same truths (drawn first), new noise for the added rows
        err, s1, _ = prior_draw_ensemble(H, Ht, prob.Q, Rall, A, args.draws, rng)
        rel = float(np.max(np.abs(s1 - predicted) / predicted))
        print(f"\nwith {cid} ({kind}, {len(b)} observations): the solve's σ equals the design's to {rel:.1e} (relative)")
        o1 = print_coverage(names, err, s1, res.design.prior_sigma, f"with {cid}:")
        print(f"{cid}: city σ {s0[-1] / 1e3:.2f} -> {s1[-1] / 1e3:.2f} kt ({100 * (1 - s1[-1] / s0[-1]):.2f} % less); "
              f"error spread {err0[-1].std() / 1e3:.2f} -> {err[-1].std() / 1e3:.2f} kt; coverage city "
              f"{out['current']['city'][0]:.0%}/{out['current']['city'][1]:.0%} -> {o1['city'][0]:.0%}/{o1['city'][1]:.0%}, "
              f"districts {out['current']['districts'][0]:.0%}/{out['current']['districts'][1]:.0%} -> "
              f"{o1['districts'][0]:.0%}/{o1['districts'][1]:.0%}")
        for i, n in enumerate(names):
            print(f"  {n:<12} predicted σ {s0[i]:>9.0f} -> {s1[i]:>9.0f} t ({100 * (1 - s1[i] / s0[i]):6.2f} %); "
                  f"error spread {err0[i].std():>9.0f} -> {err[i].std():>9.0f} t ({100 * (1 - err[i].std() / err0[i].std()):6.2f} %)")
        out[cid] = o1
    return 0


if __name__ == "__main__":
    sys.exit(main())
