"""Per gas, what a finished nested run recovered (docs/gases.md, "Measured on the demo: CH4 and CO on
the nested grid"): the city total's error (posterior − demo truth) and σ, the outer ring's error in σ
and how many neighbours lie within 1 σ / 2 σ, for CO2, CH4 and CO (``<gas>/districts.csv`` and
``<gas>/outer.csv``; CO2 at the top of the month's results) and, when rule ``joint`` ran, fossil CO2 of
the joint inversion (``joint/districts.csv``, ``joint/outer.csv``). One run, no noise draws: the
errors are one realisation of the demo's pre-registered errors and noise.

    python tools/nested_gases.py RUN_DIR [--month 2025-01]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import pandas as pd


def _row(label, city, ring, neigh, unit):
    err = city["posterior_t"] - city["truth_t"]
    r_err = ring["posterior_t"] - ring["truth_t"]
    z = (neigh["posterior_t"] - neigh["truth_t"]).abs() / neigh["posterior_sigma_t"]
    return (f"| {label} | {city['truth_t']:,.0f} | {city['prior_t'] - city['truth_t']:+,.0f} | {err:+,.0f} | "
            f"{city['posterior_sigma_t']:,.0f} | {err / city['posterior_sigma_t']:+.2f} | {ring['truth_t']:,.0f} | "
            f"{r_err:+,.0f} | {ring['posterior_sigma_t']:,.0f} | {r_err / ring['posterior_sigma_t']:+.2f} | "
            f"{(z <= 1).sum()} / {(z <= 2).sum()} of {len(z)} | {unit} |")


def table(run: Path, month: str) -> list[str]:
    res = run / "results" / month
    out = ["| gas | city truth | city prior err | city post err | city σ post | city err/σ | ring truth | "
           "ring post err | ring σ post | ring err/σ | neighbours ≤1σ / ≤2σ | unit |",
           "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|---|"]
    for gas, sub in (("CO2", ""), ("CH4", "ch4"), ("CO", "co")):
        d, o = res / sub / "districts.csv", res / sub / "outer.csv"
        if not (d.is_file() and o.is_file()):
            continue
        dist = pd.read_csv(d).set_index("district")
        outer = pd.read_csv(o)
        out.append(_row(gas, dist.iloc[-1], outer[outer.kind == "ring"].iloc[0], outer[outer.kind != "ring"],
                        "t CO2" if gas == "CO2" else f"t {gas}"))
    jd, jo = res / "joint" / "districts.csv", res / "joint" / "outer.csv"
    if jd.is_file() and jo.is_file():
        dist = pd.read_csv(jd).set_index("district")
        outer = pd.read_csv(jo)
        for q in ("fossil", "bio"):
            ren = {f"{q}_{k}": k for k in ("prior_t", "posterior_t", "posterior_sigma_t", "truth_t")}
            c, o = dist.rename(columns=ren), outer.rename(columns=ren)
            out.append(_row(f"joint {q} CO2", c.iloc[-1], o[o.kind == "ring"].iloc[0], o[o.kind != "ring"], "t CO2"))
    return out


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("run", type=Path)
    ap.add_argument("--month", default="2025-01")
    a = ap.parse_args(argv)
    print("\n".join(table(a.run, a.month)))


if __name__ == "__main__":
    main()
