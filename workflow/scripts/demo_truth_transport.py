"""Demo world: the sidecar truth_transport.json of the truth signal (docs/demo.md, docs/formats.md).

The truth's transport settings, the identical-twin flag and the measured difference between the
truth's and the inversion's transport (``H_truth x - H_inv x`` per site, with the true state x); the
signal itself (rule demo_truth_signal) needs only the truth's Jacobian, so it no longer waits for
the inversion's footprints (docs/performance.md, "The default run"). The inversion copies the
sidecar into diagnostics.json as ``truth_transport``.
"""

import json
import logging

import numpy as np
import pandas as pd
import xarray as xr

from gzcarbon.atomic import write_text
from gzcarbon.demo.signal import (TRANSPORT_NOISE_PPM, TRANSPORT_NOISE_REL, receptor_enhancements,
                                  state_for_jacobian, transport_difference)
from gzcarbon.demo.truth_errors import TruthTransport, warn_if_identical_twin
from gzcarbon.grid import NestedGrid
from gzcarbon.logs import script_logging
from transport.jacobian import load_jacobian

script_logging(snakemake.log[0])  # noqa: F821
log = logging.getLogger("demo_truth_transport")

inp = snakemake.input
jac = load_jacobian(inp.truth_jacobian)
jac_inv = load_jacobian(inp.jacobian)
with xr.open_dataset(inp.truth) as truth:
    times = truth["time"].values
    flux = truth["flux"].values
hours_t = pd.DatetimeIndex(times)
for name, path, other in (("the truth's Jacobian", inp.truth_jacobian, jac),
                          ("the inversion's Jacobian", inp.jacobian, jac_inv)):
    h = pd.DatetimeIndex(other.hours)
    if not h.equals(hours_t):
        raise ValueError(
            f"{inp.truth}: time axis {hours_t[0]}..{hours_t[-1]} ({len(hours_t)} h) differs from "
            f"{name} {path}: {h[0]}..{h[-1]} ({len(h)} h); rebuild both")
ids, ids_inv = jac.receptors["receptor_id"].astype(str), jac_inv.receptors["receptor_id"].astype(str)
if not ids.reset_index(drop=True).equals(ids_inv.reset_index(drop=True)):
    raise ValueError(f"{inp.truth_jacobian} and {inp.jacobian} hold other receptors: both must be "
                     "built from the same receptors.csv; rebuild both")
nested = NestedGrid.from_config({"grid": snakemake.params.grid, "outer_grid": snakemake.params.outer_grid,
                                 "met": snakemake.params.met})
outer_flux = None
if inp.get("truth_outer"):
    with xr.open_dataset(inp.truth_outer) as to:
        outer_flux = to["flux_outer"].sel(time=times).values
state, nested, inner_only = state_for_jacobian(flux, outer_flux, nested, jac.H.shape[1])
if inner_only:
    log.warning("outer_grid is enabled but %s has columns for the inner cells only: the outer truth "
                "is left out of the difference (rebuild the Jacobians with the nested grid)",
                inp.truth_jacobian)
enh = receptor_enhancements(jac.H, state)
enh_inv = receptor_enhancements(jac_inv.H, state)
has_fp = np.diff(jac.H.indptr) > 0
has_inv = np.diff(jac_inv.H.indptr) > 0

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
          "files": {"truth_jacobian": str(inp.truth_jacobian), "inversion_jacobian": str(inp.jacobian)},
          "signal_budget": {"file": str(inp.budget), "n_outer_cells": int(nested.n_outer)}}
write_text(snakemake.output.sidecar, json.dumps(record, indent=2, sort_keys=True) + "\n")
