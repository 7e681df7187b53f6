"""Demo world: hourly true signal (background + truth-transport enhancement + noise) per site/inlet.

The enhancement is ``H_truth @ x_truth`` with the truth's own Jacobian (rule demo_truth_jacobian);
the inversion's Jacobian is read only to measure how far the two transports differ. Writes
truth_signal.csv and its sidecar truth_transport.json (the truth's transport settings, the
identical-twin flag and the measured difference; docs/demo.md, docs/formats.md).
"""

import json
import logging

import numpy as np
import pandas as pd
import xarray as xr

from gzcarbon.atomic import write_csv, write_text
from gzcarbon.demo.signal import (TRANSPORT_NOISE_PPM, TRANSPORT_NOISE_REL, receptor_enhancements,
                                  transport_difference, truth_signal)
from gzcarbon.demo.truth_errors import TruthTransport, warn_if_identical_twin
from gzcarbon.logs import script_logging
from transport.jacobian import load_jacobian

script_logging(snakemake.log[0])  # noqa: F821
log = logging.getLogger("demo_truth_signal")

jac = load_jacobian(snakemake.input.truth_jacobian)
jac_inv = load_jacobian(snakemake.input.jacobian)
with xr.open_dataset(snakemake.input.truth) as truth:
    truth = truth.load()
hours_j = pd.DatetimeIndex(jac.hours)
hours_t = pd.DatetimeIndex(truth["time"].values)
for name, other in (("the truth's Jacobian", hours_j), ("the inversion's Jacobian", pd.DatetimeIndex(jac_inv.hours))):
    if not other.equals(hours_t):
        raise ValueError(
            f"{snakemake.input.truth}: time axis {hours_t[0]}..{hours_t[-1]} ({len(hours_t)} h) differs "
            f"from {name} {other[0]}..{other[-1]} ({len(other)} h); rebuild both")
ids, ids_inv = jac.receptors["receptor_id"].astype(str), jac_inv.receptors["receptor_id"].astype(str)
if not ids.reset_index(drop=True).equals(ids_inv.reset_index(drop=True)):
    raise ValueError(f"{snakemake.input.truth_jacobian} and {snakemake.input.jacobian} hold other "
                     "receptors: both must be built from the same receptors.csv; rebuild both")
flux = truth["flux"].values
enh = receptor_enhancements(jac.H, flux)
enh_inv = receptor_enhancements(jac_inv.H, flux)
has_fp = np.diff(jac.H.indptr) > 0
has_inv = np.diff(jac_inv.H.indptr) > 0
days = pd.to_datetime(snakemake.params.period, format="%Y%m%d")
hours = pd.date_range(days[0], days[-1] + pd.Timedelta(hours=23), freq="h")
background = truth["background"].to_series()
background.index = pd.DatetimeIndex(background.index)
out = truth_signal(jac.receptors, enh, has_fp, snakemake.params.sites, hours, background,
                   snakemake.params.utc_offset, snakemake.params.seed)

transport = dict(snakemake.params.transport)
tt = TruthTransport.from_mapping(snakemake.params.truth_transport)
warn_if_identical_twin(tt, transport, log)
diff = transport_difference(jac.receptors, enh, enh_inv, has_fp, has_inv)
if diff["without_truth_footprint"]:
    log.warning("%d receptor(s) have an inversion footprint but no truth footprint (HYSPLIT failed "
                "on the truth's run): their hours get the proxy signal: %s",
                len(diff["without_truth_footprint"]), diff["without_truth_footprint"][:20])
a = diff["all"]
if a.get("n"):
    log.info("truth vs inversion transport at %d receptors: H_truth x - H_inv x mean %+.3f ppm, RMS "
             "%.3f ppm = %.0f %% of the RMS enhancement %.3f ppm", a["n"], a["mean_difference_ppm"],
             a["rms_difference_ppm"], 100 * a["relative_rms_difference"], a["rms_enhancement_ppm"])
record = {"truth_transport": {**tt.record(transport), "difference": diff},
          "noise": {"ppm": TRANSPORT_NOISE_PPM, "relative": TRANSPORT_NOISE_REL},
          "files": {"truth_jacobian": str(snakemake.input.truth_jacobian),
                    "inversion_jacobian": str(snakemake.input.jacobian)}}
write_csv(out, snakemake.output.signal, float_format="%.5f")
write_text(snakemake.output.sidecar, json.dumps(record, indent=2, sort_keys=True) + "\n")
