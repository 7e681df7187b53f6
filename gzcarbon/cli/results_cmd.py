"""``gzcarbon results``: summarise or open a month's results (district table with σ, diagnostics,
the report's path; the run's stored configuration)."""

from __future__ import annotations

import argparse
import json
import math
import webbrowser
from pathlib import Path

from .common import CliError, check_month


def add_parser(sub) -> None:
    p = sub.add_parser("results", help="a month's district table with σ, diagnostics and the report's path",
                       description="Summarise a finished month: district and city totals (prior and "
                       "posterior ± σ, uncertainty reduction, the truth of a demo run) from "
                       "districts.csv, the fit from diagnostics.json, the paths of the report and the "
                       "flux product.")
    p.add_argument("--month", help="YYYY-MM (default: the latest month under the results directory)")
    p.add_argument("--results-dir", default="results", help="results directory (default: results)")
    p.add_argument("--json", action="store_true", help="print the summary as JSON")
    p.add_argument("--open", action="store_true", help="open report.html in the web browser")
    p.add_argument("--save-config", metavar="FILE", help="write the run's configuration, stored in its flux "
                   "product, to FILE (re-run it with `gzcarbon run --configfile FILE`)")


def month_dir(results_dir: str, month: str | None) -> Path:
    top = Path(results_dir)
    if month:
        path = top / check_month(month)
    else:
        months = sorted(p for p in top.glob("[0-9][0-9][0-9][0-9]-[0-9][0-9]") if p.is_dir())
        if not months:
            raise CliError(f"no month directory (YYYY-MM) under {top.resolve()}; give --results-dir")
        path = months[-1]
    if not (path / "districts.csv").is_file():
        raise CliError(f"{path}/districts.csv not found: the month has not been inverted yet "
                       f"(gzcarbon run --month {path.name})")
    return path


def _finite(x) -> float | None:
    x = float(x)
    return x if math.isfinite(x) else None


def summary(path: Path) -> dict:
    """The month's numbers: districts (t), fit, losses and file paths."""
    from products.inputs import load_districts_table

    table = load_districts_table(path / "districts.csv")
    rows = []
    for name, r in table.iterrows():
        reduction = 1.0 - r.posterior_sigma_t / r.prior_sigma_t if r.prior_sigma_t > 0 else float("nan")
        rows.append({"district": name, "prior_t": float(r.prior_t), "prior_sigma_t": float(r.prior_sigma_t),
                     "posterior_t": float(r.posterior_t), "posterior_sigma_t": float(r.posterior_sigma_t),
                     "uncertainty_reduction": _finite(reduction), "truth_t": _finite(r.truth_t)})
    out = {"month": path.name, "directory": str(path.resolve()), "districts": rows}
    diag = path / "diagnostics.json"
    if diag.is_file():
        d = json.loads(diag.read_text())
        lost = d.get("observations_lost") or {}
        out["diagnostics"] = {
            "n_obs": d.get("n_obs"), "n_selected": lost.get("n_selected"), "lost": lost.get("counts", {}),
            "chi2_reduced": d.get("chi2_reduced"), "chi2_p": (d.get("chi2_test") or {}).get("p_value"),
            "dofs": d.get("dofs"), "solver": d.get("solver"),
            "receptors": (d.get("receptors") or {}).get("n"),
            "receptors_without_footprint": (d.get("receptors") or {}).get("n_without_footprint")}
    out["files"] = {k: str((path / f).resolve()) for k, f in (
        ("report", "report.html"), ("report_pdf", "report.pdf"), ("flux_product", f"flux_{path.name}.nc"),
        ("diagnostics", "diagnostics.json"), ("districts", "districts.csv")) if (path / f).is_file()}
    return out


def _kt(x) -> str:
    return "—" if x is None else f"{x / 1e3:,.1f}"


def print_summary(s: dict) -> None:
    has_truth = any(r["truth_t"] is not None for r in s["districts"])
    print(f"{s['directory']}  ({s['month']})\n")
    head = f"{'district':<12} {'prior ± σ (kt)':>18} {'posterior ± σ (kt)':>20} {'σ reduction':>12}"
    print(head + (f" {'truth (kt)':>11}" if has_truth else ""))
    for r in s["districts"]:
        ur = r["uncertainty_reduction"]
        line = (f"{r['district']:<12} {_kt(r['prior_t']) + ' ± ' + _kt(r['prior_sigma_t']):>18} "
                f"{_kt(r['posterior_t']) + ' ± ' + _kt(r['posterior_sigma_t']):>20} "
                f"{'—' if ur is None else f'{100 * ur:.0f} %':>12}")
        print(line + (f" {_kt(r['truth_t']):>11}" if has_truth else ""))
    d = s.get("diagnostics")
    if d:
        p = d["chi2_p"]
        print(f"\nfit: {d['n_obs']} observations used of {d['n_selected']} selected"
              + ("".join(f"; {n} {why}" for why, n in d["lost"].items()) if d["lost"] else "")
              + f"\n     chi2_r {d['chi2_reduced']:.2f}" + (f" (p = {p:.2g})" if p is not None else "")
              + f", DOFS {d['dofs']:.1f}, solver {d['solver']}; receptors {d['receptors']}, "
              f"{d['receptors_without_footprint']} without footprint")
    print()
    for k, v in s["files"].items():
        print(f"{k + ':':<14}{v}")


def run(args: argparse.Namespace) -> int:
    path = month_dir(args.results_dir, args.month)
    s = summary(path)
    if args.save_config:
        save_config(path, args.save_config)
        s["saved_config"] = str(Path(args.save_config).resolve())
    if args.json:
        print(json.dumps(s, indent=1, ensure_ascii=False))
    else:
        print_summary(s)
    if args.open:
        if "report" not in s["files"]:
            raise CliError(f"{path}/report.html not found (the report rule has not run)")
        webbrowser.open(Path(s["files"]["report"]).as_uri())
    return 0


def save_config(path: Path, out: str) -> None:
    """The configuration stored in the month's flux product (``config_yaml``) to ``out``."""
    import xarray as xr

    from gzcarbon.atomic import atomic_write

    nc = path / f"flux_{path.name}.nc"
    if not nc.is_file():
        raise CliError(f"{nc} not found: the configuration is stored in the flux product")
    with xr.open_dataset(nc) as ds:
        text = ds.attrs.get("config_yaml")
    if not text:
        raise CliError(f"{nc} has no config_yaml attribute (a product written before issue 22)")
    atomic_write(Path(out), lambda tmp: Path(tmp).write_text(text))
