"""Demo world: hourly true signal (background + truth-transport enhancement + noise) per site/inlet.

The enhancement is ``H_truth @ x_truth`` with the truth's own Jacobian (rule demo_truth_jacobian).
Writes truth_signal.csv. The sidecar truth_transport.json (the truth's transport settings, the
identical-twin flag and the measured difference to the inversion's transport) is written by rule
demo_truth_transport, which reads the inversion's Jacobian: this job does not wait for the
inversion's footprints (docs/demo.md, docs/performance.md "The default run").

With a nested state (config outer_grid) the true flux is the inner truth.nc and the outer cells of
truth_outer.nc (rule demo_delta) in the Jacobian's cell order; signal_budget.csv says per site how
much of the true enhancement comes from the city, from the inner box outside it and from the outer
cells, and the share of particles that left the met domain (docs/demo.md, "Signal budget").
"""

import logging

import numpy as np
import pandas as pd
import xarray as xr

from gzcarbon.atomic import write_csv
from gzcarbon.demo.signal import (receptor_enhancements, signal_budget_table, split_enhancement,
                                  state_for_jacobian, truth_signal, truth_state)
from gzcarbon.districts import district_matrix
from gzcarbon.grid import NestedGrid
from gzcarbon.logs import script_logging
from transport.jacobian import load_jacobian

script_logging(snakemake.log[0])  # noqa: F821
log = logging.getLogger("demo_truth_signal")

jac = load_jacobian(snakemake.input.truth_jacobian)
with xr.open_dataset(snakemake.input.truth) as truth:
    truth = truth.load()
hours_j = pd.DatetimeIndex(jac.hours)
hours_t = pd.DatetimeIndex(truth["time"].values)
if not hours_j.equals(hours_t):
    raise ValueError(
        f"{snakemake.input.truth}: time axis {hours_t[0]}..{hours_t[-1]} ({len(hours_t)} h) differs "
        f"from the truth's Jacobian {hours_j[0]}..{hours_j[-1]} ({len(hours_j)} h); rebuild both")
nested = NestedGrid.from_config({"grid": snakemake.params.grid, "outer_grid": snakemake.params.outer_grid,
                                 "met": snakemake.params.met})
outer_flux = outer_bio = None
if snakemake.input.get("truth_outer"):
    with xr.open_dataset(snakemake.input.truth_outer) as to:
        outer_flux = to["flux_outer"].sel(time=truth["time"].values).values
        outer_bio = to["flux_outer_bio"].sel(time=truth["time"].values).values.astype(float)
state, nested, inner_only = state_for_jacobian(truth["flux"].values, outer_flux, nested, jac.H.shape[1])
if inner_only:
    log.warning("outer_grid is enabled but %s has columns for the inner cells only: the outer truth "
                "does not reach the signal (rebuild the Jacobians with the nested grid)",
                snakemake.input.truth_jacobian)
enh = receptor_enhancements(jac.H, state)
city = np.clip(np.asarray(district_matrix(snakemake.input.districts, nested.inner.lon_edges,
                                          nested.inner.lat_edges)[1].sum(axis=0)).ravel(), 0.0, 1.0)
zeros_outer = np.zeros(nested.n_outer)
masks = {"city": np.concatenate([city, zeros_outer]),
         "inner_not_city": np.concatenate([1.0 - city, zeros_outer])}
parts = split_enhancement(jac.H, state, masks)
if nested.enabled:
    bio_state = truth_state(np.zeros_like(truth["flux"].values), outer_bio, nested)
    parts["outer_bio"] = receptor_enhancements(jac.H, bio_state)
    parts["outer_anthropogenic"] = enh - parts["city"] - parts["inner_not_city"] - parts["outer_bio"]
has_fp = np.diff(jac.H.indptr) > 0
days = pd.to_datetime(snakemake.params.period, format="%Y%m%d")
hours = pd.date_range(days[0], days[-1] + pd.Timedelta(hours=23), freq="h")
background = truth["background"].to_series()
background.index = pd.DatetimeIndex(background.index)
out = truth_signal(jac.receptors, enh, has_fp, snakemake.params.sites, hours, background,
                   snakemake.params.utc_offset, snakemake.params.seed)

budget = signal_budget_table(jac.receptors, parts, has_fp, jac.left_domain_fraction)
for site, r in budget.iterrows():
    log.info("signal budget %s: %.2f ppm true enhancement, %.0f %% from outside the city, %.0f %% from "
             "the outer cells, %.0f %% of particles left the met domain", site, r["total_ppm"],
             100 * r["outside_city_share"], 100 * r["outer_share"], 100 * r.get("left_domain", np.nan))
write_csv(budget.reset_index(), snakemake.output.budget, float_format="%.6g")
write_csv(out, snakemake.output.signal, float_format="%.5f")
