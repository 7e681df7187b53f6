"""Summarise a small-year run (issue 21 item 7): job time and memory per rule, and the demo's annual
totals against their truth with sigma coverage.

Reads a finished run directory (the one given to ``snakemake --directory``):

- ``benchmarks/runs/<month>/*.tsv`` of the year's months (Snakemake ``benchmark:`` files; columns
  ``s`` wall seconds, ``max_rss`` MB, ``cpu_time`` CPU seconds of the job's process tree as Snakemake
  samples it) and ``benchmarks/runs/<year>/annual_report.tsv``: per rule the number of jobs, the
  summed and largest CPU seconds, the summed wall seconds and the largest peak RSS;
- ``results/<year>/districts.csv``: per district and the city the annual posterior total, its
  sigma with correlated months and with independent months, the prior, and the demo truth; counts
  how many truths lie within 1 and 2 sigma (11 districts and the city).

Prints both tables (markdown) and, last, the ratio of the summed CPU seconds to the summed wall
seconds of the jobs (CPU share the jobs got on the shared machine).

    python benchmarks/year_run.py /tmp/year_run --year 2025
"""

import argparse
import re
from pathlib import Path

import numpy as np
import pandas as pd

CITY = "Guangzhou"


def markdown(df: pd.DataFrame) -> str:
    """A markdown table of ``df`` (index as the first column), without optional dependencies."""
    cols = [df.index.name or "", *map(str, df.columns)]
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for idx, row in df.iterrows():
        cells = [f"{v:g}" if isinstance(v, float) else str(v) for v in row]
        lines.append("| " + " | ".join([str(idx), *cells]) + " |")
    return "\n".join(lines)


def rule_of(tsv: Path) -> str:
    """Rule name of a benchmark file: drop the _<SITE>, _<YYYYMMDD> wildcards of its name."""
    name = tsv.stem
    name = re.sub(r"_\d{8}$", "", name)
    name = re.sub(r"_[A-Z]{2,4}$", "", name)
    return re.sub(r"_\d{8}$", "", name)


def per_rule(run: Path, year: int, months: list[str]) -> pd.DataFrame:
    """One row per rule over the year's covered months (and the annual report)."""
    rows = []
    files = [f for m in [*months, str(year)] for f in sorted((run / "benchmarks" / "runs" / m).glob("*.tsv"))]
    for tsv in files:
        b = pd.read_csv(tsv, sep="\t").iloc[-1]
        rows.append({"rule": rule_of(tsv), "month": tsv.parent.name, "cpu_s": float(b["cpu_time"]),
                     "wall_s": float(b["s"]), "max_rss_mb": float(b["max_rss"])})
    if not rows:
        raise SystemExit(f"{run}/benchmarks/runs/: no benchmark files of {months}")
    df = pd.DataFrame(rows)
    g = df.groupby("rule")
    out = pd.DataFrame({"jobs": g.size(), "months": g["month"].nunique(), "cpu_s_sum": g["cpu_s"].sum(),
                        "cpu_s_max": g["cpu_s"].max(), "wall_s_sum": g["wall_s"].sum(),
                        "max_rss_mb": g["max_rss_mb"].max()})
    return out.sort_values("cpu_s_sum", ascending=False)


def coverage(run: Path, year: int) -> tuple[pd.DataFrame, dict]:
    path = run / "results" / str(year) / "districts.csv"
    t = pd.read_csv(path).set_index("district")
    for col in ("posterior_t", "posterior_sigma_t", "posterior_sigma_independent_t", "truth_t"):
        if col not in t or not np.isfinite(t[col]).all():
            raise SystemExit(f"{path}: column {col} missing or not finite (a demo year is needed)")
    err = t["posterior_t"] - t["truth_t"]
    tab = pd.DataFrame({
        "truth_kt": t["truth_t"] / 1e3, "prior_kt": t["prior_t"] / 1e3,
        "prior_sigma_kt": t["prior_sigma_t"] / 1e3,
        "posterior_kt": t["posterior_t"] / 1e3, "sigma_kt": t["posterior_sigma_t"] / 1e3,
        "sigma_independent_kt": t["posterior_sigma_independent_t"] / 1e3,
        "z": err / t["posterior_sigma_t"], "z_independent": err / t["posterior_sigma_independent_t"],
        "z_prior": (t["prior_t"] - t["truth_t"]) / t["prior_sigma_t"]})
    d = tab.drop(index=CITY)
    missing = str(t["months_not_covered"].iloc[0]).split() if t["months_not_covered"].notna().iloc[0] else []
    summary = {"months_covered": int(t["months_covered"].iloc[0]),
               "months": [f"{year}-{i:02d}" for i in range(1, 13) if f"{year}-{i:02d}" not in missing],
               "months_not_covered": str(t["months_not_covered"].iloc[0]),
               "covered_hours": float(t["covered_hours"].iloc[0]), "districts": len(d)}
    for key, col in (("posterior", "z"), ("independent", "z_independent"), ("prior", "z_prior")):
        summary[f"{key}_within_1sigma"] = int((d[col].abs() <= 1).sum())
        summary[f"{key}_within_2sigma"] = int((d[col].abs() <= 2).sum())
        summary[f"{key}_city_z"] = float(tab.loc[CITY, col])
    return tab, summary


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("run", type=Path, help="run directory (snakemake --directory)")
    ap.add_argument("--year", type=int, default=2025)
    a = ap.parse_args(argv)
    tab, s = coverage(a.run, a.year)
    rules = per_rule(a.run, a.year, s["months"])
    print(markdown(rules.round(1)))
    print(f"\ntotal over {int(rules['jobs'].sum())} jobs: {rules['cpu_s_sum'].sum():.0f} CPU s, "
          f"{rules['wall_s_sum'].sum():.0f} wall s (job wall times summed)")
    print()
    print(markdown(tab.round(2)))
    print()
    for k, v in s.items():
        print(f"{k}: {v}")
    # Gaussian expectation over n independent districts, for comparison (68.3 % and 95.4 %)
    n = s["districts"]
    for p, lab in ((0.6827, "1"), (0.9545, "2")):
        print(f"expected within {lab} sigma of {n} Gaussian districts: {n * p:.1f} "
              f"+- {np.sqrt(n * p * (1 - p)):.1f} (binomial)")
    print(f"\nCPU / wall of the jobs: {rules['cpu_s_sum'].sum() / rules['wall_s_sum'].sum():.2f}")


if __name__ == "__main__":
    main()
