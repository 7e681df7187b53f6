"""Print the demo's truth / prior / posterior table (Markdown) from a run's districts.csv.

    python tools/recovery_table.py results/2025-01/districts.csv

Used to refresh the table in README.md after a default run.
"""

import sys

import pandas as pd


def recovery_table(path: str) -> str:
    d = pd.read_csv(path)
    rows = ["| district | truth (kt) | prior ± σ (kt) | posterior ± σ (kt) | prior error | posterior error | error within |",
            "|---|---|---|---|---|---|---|"]
    for _, r in d.iterrows():
        t, p, q = r.truth_t / 1e3, r.prior_t / 1e3, r.posterior_t / 1e3
        sp, sq = r.prior_sigma_t / 1e3, r.posterior_sigma_t / 1e3
        name = f"**{r.district} (city)**" if r.district == "Guangzhou" else r.district
        rows.append(f"| {name} | {t:.1f} | {p:.1f} ± {sp:.1f} | {q:.1f} ± {sq:.1f} | "
                    f"{100 * (p - t) / t:+.1f} % | {100 * (q - t) / t:+.1f} % | {abs(q - t) / sq:.1f} σ |")
    return "\n".join(rows)


if __name__ == "__main__":
    print(recovery_table(sys.argv[1] if len(sys.argv) > 1 else "results/2025-01/districts.csv"))
