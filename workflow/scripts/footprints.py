"""HYSPLIT-STILT footprints of one site-day (transport.stilt_driver.run_site_day).

run_site_day checks the met coverage of every receptor first (transport.arl.
check_met_coverage: a missing hour or file stops the job naming both) before any HYSPLIT run.
"""

import logging

from transport.receptors import read_receptors, site_day
from transport.stilt_driver import StiltSettings, failures_path, run_site_day
from gzcarbon.logs import script_logging

script_logging(snakemake.log[0])  # noqa: F821

out = snakemake.output.footprints
assert str(failures_path(out)) == str(snakemake.output.failures), "failures CSV path mismatch"
rec = site_day(read_receptors(snakemake.input.receptors), snakemake.wildcards.site,
               snakemake.wildcards.day)
run_site_day(rec, list(snakemake.input.met), dict(snakemake.params.grid),
             StiltSettings.from_config(dict(snakemake.params.transport)), out,
             snakemake.params.work_dir, met_file_format=snakemake.params.met_file_format,
             check_met=True, left_domain_warn=float(snakemake.params.left_domain_warn))
