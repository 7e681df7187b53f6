"""Per-rule cost of a finished run from its Snakemake benchmark files, with the part each gas adds.

Reads ``benchmarks/runs/<month>/*.tsv`` of a run directory (one file per job: columns ``s`` wall,
``cpu_time``, ``max_rss``) and prints, per rule, the number of jobs and the sums of CPU and wall
seconds and the largest resident memory; then the rules by gas: CO2 (and the shared rules), CH4 and
CO (``*_ch4``/``*_co`` jobs: ``select_obs_gas``, ``prior_gas``, ``inversion_gas``, ``maps_gas``,
``flux_product_gas``; ``hourly_obs_gases`` serves both and is listed as CH4 + CO). ``cpu_time``
is what Snakemake measured for the job's process tree while it sampled it: it misses most of the
short-lived HYSPLIT processes of the footprint jobs (their CPU: `benchmarks/footprints.py`, or
``/usr/bin/time`` of the whole run). Usage:

    python benchmarks/run_rules.py RUN_DIR [--month 2025-01]
"""

import argparse
import glob
import os
import re
import sys

import pandas as pd

GAS_SUFFIX = re.compile(r"_(ch4|co)$")


def rule_table(run_dir: str, month: str) -> pd.DataFrame:
    files = sorted(glob.glob(os.path.join(run_dir, "benchmarks", "runs", month, "*.tsv")))
    if not files:
        raise SystemExit(f"no benchmark files under {run_dir}/benchmarks/runs/{month}")
    rows = []
    for f in files:
        name = os.path.basename(f)[:-4]
        rule = re.sub(r"_(\d{8}|[A-Z]{3})(_\d{8})?$", "", name)
        last = pd.read_csv(f, sep="\t").iloc[-1]
        rows.append({"job": name, "rule": rule, "s": float(last["s"]), "cpu_s": float(last["cpu_time"]),
                     "rss_mb": float(last["max_rss"]), "load": float(last.get("mean_load", float("nan")))})
    return pd.DataFrame(rows)


def gas_of(rule: str) -> str:
    m = GAS_SUFFIX.search(rule)
    if m:
        return m.group(1)
    return "ch4+co" if rule == "hourly_obs_gases" else "co2/shared"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("run_dir")
    ap.add_argument("--month", default="2025-01")
    args = ap.parse_args(argv)
    df = rule_table(args.run_dir, args.month)
    by_rule = (df.groupby("rule").agg(jobs=("s", "size"), cpu_s=("cpu_s", "sum"), wall_s=("s", "sum"),
                                       rss_mb=("rss_mb", "max"), mean_load=("load", "mean"))
               .sort_values("cpu_s", ascending=False))
    pd.set_option("display.width", 160)
    print(by_rule.round(1).to_string())
    df["gas"] = df["rule"].map(gas_of)
    by_gas = df.groupby("gas").agg(jobs=("s", "size"), cpu_s=("cpu_s", "sum"), wall_s=("s", "sum"))
    print()
    print(by_gas.round(1).to_string())
    print(f"\nall jobs: {len(df)}, CPU {df['cpu_s'].sum():.0f} s (HYSPLIT processes not included), "
          f"wall {df['s'].sum():.0f} s summed over jobs; mean load {df['load'].mean():.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
