"""Footprints of one site-day: HYSPLIT-STILT (transport.stilt_driver.run_site_day) or, with
transport.footprints_from: files, the user's footprint files (transport.from_files).

run_site_day checks the met coverage of every receptor first (transport.arl.
check_met_coverage: a missing hour or file stops the job naming both) before any HYSPLIT run.
"""

import logging

from gzcarbon.config import TransportConfig
from gzcarbon.logs import script_logging
from transport.from_files import read_matches, site_day_from_files
from transport.receptors import read_receptors, site_day
from transport.stilt_driver import StiltSettings, failures_path, run_site_day

script_logging(snakemake.log[0])  # noqa: F821

out = snakemake.output.footprints
assert str(failures_path(out)) == str(snakemake.output.failures), "failures CSV path mismatch"
transport = TransportConfig.model_validate(dict(snakemake.params.transport))
if snakemake.params.footprints_from == "files":
    matches = site_day(read_matches(snakemake.input.matches), snakemake.wildcards.site,
                       snakemake.wildcards.day)
    summary = site_day_from_files(matches, dict(snakemake.params.grid), out, transport.n_hours,
                                  transport.footprint_layer_height,
                                  outer_grid=dict(snakemake.params.outer_grid))
    logging.info("site-day %s from files: %s", out, summary)
else:
    rec = site_day(read_receptors(snakemake.input.receptors), snakemake.wildcards.site,
                   snakemake.wildcards.day)
    run_site_day(rec, list(snakemake.input.met), dict(snakemake.params.grid),
                 StiltSettings.from_config(transport.as_dict()), out,
                 snakemake.params.work_dir, met_file_format=snakemake.params.met_file_format,
                 check_met=True, left_domain_warn=transport.left_domain_warn,
                 outer_grid=dict(snakemake.params.outer_grid))
