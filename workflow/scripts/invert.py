"""Run the analytical inversion of one month (inversion.run.run_inversion) and write its four outputs."""

import logging
import os

from gzcarbon.logs import script_logging

script_logging(snakemake.log[0])  # noqa: F821
os.environ.setdefault("NUMBA_NUM_THREADS", str(snakemake.threads))

from inversion import SolveOptions  # noqa: E402  (after NUMBA_NUM_THREADS is set)
from inversion.run import run_inversion  # noqa: E402

inp = snakemake.input
out = run_inversion(
    inp.jacobian, inp.selected, inp.prior, inp.districts,
    snakemake.output.posterior, snakemake.output.districts, snakemake.output.modelled,
    snakemake.output.diagnostics,
    inversion_cfg=dict(snakemake.params.inversion),
    period_start=snakemake.params.period_start,
    period_end=snakemake.params.period_end,
    truth_path=inp.get("truth"),
    solve_options=SolveOptions(seed=int(snakemake.params.seed)),
    utc_offset_hours=snakemake.params.utc_offset_hours,
    gas=getattr(snakemake.params, "gas", "co2"),
    out_outer=snakemake.output.get("outer"),  # nested state (config outer_grid): outer.csv
    truth_outer_path=inp.get("truth_outer") or None,
    neighbours_path=inp.get("neighbours") or None,
    # column and mobile rows (observations.column / observations.mobile; docs/columns.md)
    extra_paths=[p for p in (inp.get("extra_column"), inp.get("extra_mobile")) if p],
)

# demo runs: the truth's transport (sidecar of rule demo_truth_transport, a declared input;
# docs/demo.md) as diagnostics.json `truth_transport` (with `identical_twin`)
_sidecar = inp.get("truth_transport") or ""
if _sidecar:
    import json

    from gzcarbon.atomic import write_text

    with open(_sidecar) as fh:
        out.diagnostics["truth_transport"] = json.load(fh)["truth_transport"]
    write_text(snakemake.output.diagnostics, json.dumps(out.diagnostics, indent=2, default=float))
