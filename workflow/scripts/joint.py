"""Joint fossil-CO2/CO inversion of one month (inversion.joint_run.run_joint_inversion; docs/gases.md)."""

import os

from gzcarbon.logs import script_logging

script_logging(snakemake.log[0])  # noqa: F821
os.environ.setdefault("NUMBA_NUM_THREADS", str(snakemake.threads))  # noqa: F821

from inversion.joint_run import run_joint_inversion  # noqa: E402  (after NUMBA_NUM_THREADS is set)

sm = snakemake  # noqa: F821
inp = sm.input
run_joint_inversion(
    inp.jacobian, inp.selected, inp.prior, inp.districts, inp.co_selected, inp.ratios,
    sm.output.districts, sm.output.diagnostics,
    inversion_cfg=dict(sm.params.inversion), co_cfg=dict(sm.params.co),
    period_start=sm.params.period_start, period_end=sm.params.period_end,
    utc_offset_hours=sm.params.utc_offset_hours, truth_path=inp.get("truth"),
    # the nested state (config outer_grid): the CO prior's outer cells, the neighbours, the demo's outer truth
    co_prior_path=inp.get("co_prior"), neighbours_path=inp.get("neighbours") or None,
    truth_outer_path=inp.get("truth_outer") or None, out_outer=sm.output.get("outer"),
)
