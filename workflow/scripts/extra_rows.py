"""Column or mobile rows of the inversion (rule column_rows / mobile_rows; docs/columns.md): read the
files, hour-average the soundings or cut the tracks into segments, run each row's receptor through
the inversion's transport (transport.columns) and save y, H and the per-type error model
(inversion.extra_obs.save_extra)."""

import logging

from gzcarbon.logs import script_logging

script_logging(snakemake.log[0])  # noqa: F821
log = logging.getLogger("extra_rows")

from gzcarbon.grid import NestedGrid  # noqa: E402
from inversion.extra_obs import column_rows, mobile_rows, save_extra  # noqa: E402
from transport.jacobian import load_jacobian  # noqa: E402
from transport.stilt_driver import StiltSettings, met_config  # noqa: E402

p = snakemake.params
jac = load_jacobian(snakemake.input.jacobian)
nested = NestedGrid.from_config({"grid": p.grid, "outer_grid": p.outer_grid, "met": p.met})
if nested.n_cells * len(jac.hours) != jac.H.shape[1]:
    raise ValueError(f"{snakemake.input.jacobian}: {jac.H.shape[1]} columns, the configured grid has "
                     f"{nested.n_cells} cells x {len(jac.hours)} hours; rebuild the Jacobian")
if not p.met_file_format:
    raise ValueError("observations.column / observations.mobile need met files named by "
                     "inputs.met_file_format (not an explicit inputs.met_files list)")
met = met_config(list(snakemake.input.met), p.met_file_format)
settings = StiltSettings.from_config(dict(p.transport))
obs = dict(p.observations)
files = list(snakemake.input.files)
build = column_rows if p.kind == "column" else mobile_rows
extra, cpu = build(files, obs, snakemake.input.selected, met, nested, jac.hours, settings, p.work_dir)
log.info("%s rows: %d from %d file(s), %.1f s CPU of transport", p.kind, extra.H_hourly.shape[0],
         len(files), cpu)
save_extra(snakemake.output.rows, extra, jac.H.shape[1])
