"""Demo world: the column files (rule demo_columns) or the mobile track (rule demo_mobile) from the
truth through the truth's own transport (gzcarbon.demo.columns; docs/columns.md)."""

import logging

from gzcarbon.logs import script_logging

script_logging(snakemake.log[0])  # noqa: F821
log = logging.getLogger("demo_columns")

from gzcarbon.demo.columns import write_demo_columns, write_demo_track  # noqa: E402
from transport.stilt_driver import met_config  # noqa: E402

p = snakemake.params
kw = dict(truth_path=snakemake.input.truth, truth_outer_path=snakemake.input.get("truth_outer") or None,
          met=met_config(list(snakemake.input.met), "%Y%m%d_gz.arl"),
          grid_cfg={"grid": p.grid, "outer_grid": p.outer_grid, "met": p.met}, transport=dict(p.transport),
          truth_transport=dict(p.truth_transport), days=list(p.days), work_dir=p.work_dir, seed=int(p.seed))
if p.kind == "column":
    truths = write_demo_columns(snakemake.output.proffast, snakemake.output.oco,
                                utc_offset_hours=float(p.utc_offset), **kw)
    for k, v in truths.items():
        log.info("true column %s: %.4f ppm", k, v)
else:
    truth = write_demo_track(snakemake.output.track, **kw)
    log.info("true track: %d minutes, CO2 %.3f .. %.3f ppm", len(truth), truth["co2"].min(), truth["co2"].max())
