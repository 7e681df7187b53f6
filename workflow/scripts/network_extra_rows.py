"""Rows of one column or mobile network-design candidate (rule network_extra_rows; demo: rule
network_truth_extra with the truth's own transport): inversion.network.extra_candidate, saved as
inversion.extra_obs.save_extra (docs/network.md, "Tower, column or mobile")."""

import logging

import pandas as pd

from gzcarbon.logs import script_logging

script_logging(snakemake.log[0])  # noqa: F821
log = logging.getLogger("network_extra_rows")

from gzcarbon.grid import NestedGrid  # noqa: E402
from inversion.extra_obs import save_extra  # noqa: E402
from inversion.network import extra_candidate  # noqa: E402
from transport.stilt_driver import StiltSettings, met_config  # noqa: E402

p = snakemake.params  # noqa: F821
nested = NestedGrid.from_config({"grid": p.grid, "outer_grid": p.outer_grid, "met": p.met})
start, end = p.hours
hours = pd.date_range(start, end, freq="h", inclusive="left")
if not p.met_file_format:
    raise ValueError("network_design column/mobile candidates need met files named by inputs.met_file_format "
                     "(not an explicit inputs.met_files list)")
met = met_config(list(snakemake.input.met), p.met_file_format)  # noqa: F821
transport = dict(p.transport)
if p.get("truth_transport") is not None:
    from gzcarbon.demo.truth_errors import TruthTransport, warn_if_identical_twin

    tt = TruthTransport.from_mapping(p.truth_transport)
    warn_if_identical_twin(tt, transport, log)
    transport = tt.transport_config(transport)
settings = StiltSettings.from_config(transport)
cand = dict(p.candidate)
extra, cpu = extra_candidate(cand, dict(p.network), dict(p.observations), list(p.days), p.hours_local,
                             float(p.utc_offset), snakemake.input.selected, met, nested, hours, settings,  # noqa: F821
                             p.work_dir)
log.info("%s candidate %s: %d rows on %s, %.1f s CPU of transport (numpar %d, seed %d)", cand["type"], cand["id"],
         extra.H_hourly.shape[0], ", ".join(p.days), cpu, settings.numpar, settings.seed)
save_extra(snakemake.output.rows, extra, nested.n_cells * len(hours))  # noqa: F821
