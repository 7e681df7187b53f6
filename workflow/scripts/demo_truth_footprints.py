"""Demo world: the truth's own HYSPLIT-STILT footprints of one site-day (docs/demo.md).

The same receptors and driver as the inversion's footprints (transport.stilt_driver.run_site_day),
with the truth's transport (gzcarbon.demo.truth_errors.TruthTransport: other seed, more particles,
HYSPLIT-STILT wind and mixed-layer-height errors).
"""

import logging

from gzcarbon.demo.truth_errors import TruthTransport, warn_if_identical_twin
from gzcarbon.logs import script_logging
from transport.receptors import read_receptors, site_day
from transport.stilt_driver import StiltSettings, failures_path, run_site_day

script_logging(snakemake.log[0])  # noqa: F821
log = logging.getLogger("demo_truth_footprints")

out = snakemake.output.footprints
assert str(failures_path(out)) == str(snakemake.output.failures), "failures CSV path mismatch"
transport = dict(snakemake.params.transport)
tt = TruthTransport.from_mapping(snakemake.params.truth_transport)
warn_if_identical_twin(tt, transport, log)
settings = StiltSettings.from_config(tt.transport_config(transport))
log.info("truth transport: numpar %d, seed %d, HYSPLIT perturbations %s", settings.numpar,
         settings.seed, tt.hysplit_params() or "none")
rec = site_day(read_receptors(snakemake.input.receptors), snakemake.wildcards.site,
               snakemake.wildcards.day)
run_site_day(rec, list(snakemake.input.met), dict(snakemake.params.grid), settings, out,
             snakemake.params.work_dir, met_file_format="%Y%m%d_gz.arl", check_met=True,
             left_domain_warn=float(transport.get("left_domain_warn", 0.1)),
             outer_grid=dict(snakemake.params.outer_grid))
