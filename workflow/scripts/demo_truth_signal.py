"""Demo world: hourly true signal (background + footprint-weighted truth + noise) per site/inlet."""

import logging
import os

import numpy as np
import pandas as pd
import xarray as xr

from gzcarbon.demo.signal import receptor_enhancements, truth_signal
from transport.jacobian import load_jacobian
from gzcarbon.logs import script_logging

script_logging(snakemake.log[0])  # noqa: F821
log = logging.getLogger("demo_truth_signal")

jac = load_jacobian(snakemake.input.jacobian)
with xr.open_dataset(snakemake.input.truth) as truth:
    truth = truth.load()
hours_j = pd.DatetimeIndex(jac.hours)
hours_t = pd.DatetimeIndex(truth["time"].values)
if not hours_j.equals(hours_t):
    raise ValueError(
        f"{snakemake.input.truth}: time axis {hours_t[0]}..{hours_t[-1]} ({len(hours_t)} h) differs "
        f"from the Jacobian's {hours_j[0]}..{hours_j[-1]} ({len(hours_j)} h); rebuild both"
    )
enh = receptor_enhancements(jac.H, truth["flux"].values)
has_fp = np.diff(jac.H.indptr) > 0
days = pd.to_datetime(snakemake.params.period, format="%Y%m%d")
hours = pd.date_range(days[0], days[-1] + pd.Timedelta(hours=23), freq="h")
background = truth["background"].to_series()
background.index = pd.DatetimeIndex(background.index)
out = truth_signal(jac.receptors, enh, has_fp, snakemake.params.sites, hours, background,
                   snakemake.params.utc_offset, snakemake.params.seed)
log.info("receptors with footprints: %d of %d; mean enhancement %.2f ppm",
         has_fp.sum(), len(has_fp), float(enh[has_fp].mean()) if has_fp.any() else float("nan"))
tmp = snakemake.output[0] + ".tmp"
out.to_csv(tmp, index=False, float_format="%.5f")
os.replace(tmp, snakemake.output[0])
