"""Demo world: the true hourly CH4 and CO signals (ppb) through the truth's own transport,
exactly like CO2's (H_truth @ flux + background + noise), with each gas's mismatch correlated with
the CO2 mismatch of the same hour (gzcarbon.demo.signal.gas_truth_signal; docs/demo.md)."""

import logging

import numpy as np
import pandas as pd
import xarray as xr

from gzcarbon.atomic import write_csv
from gzcarbon.demo.signal import gas_truth_signal, receptor_enhancements
from gzcarbon.demo.truth_errors import GAS_TRUTH_ERRORS
from gzcarbon.logs import script_logging
from transport.jacobian import load_jacobian

script_logging(snakemake.log[0])  # noqa: F821
log = logging.getLogger("demo_gas_signals")

jac = load_jacobian(snakemake.input.truth_jacobian)
hours_j = pd.DatetimeIndex(jac.hours)
has_fp = np.diff(jac.H.indptr) > 0
nested = jac.nested.enabled and all(snakemake.input.get(f"truth_outer_{g}") for g in ("ch4", "co"))
if jac.nested.enabled and not nested:  # no outer CH4/CO truths: the nested Jacobian's inner columns only
    from inversion.outer import split_columns

    jac.H = split_columns(jac.H, jac.nested.n_inner, jac.nested.n_cells, len(hours_j))[0]
    log.warning("nested truth Jacobian without outer CH4/CO truths: the signals come from the %d inner cells only",
                jac.nested.n_inner)
co2_signal = pd.read_csv(snakemake.input.co2_signal)
days = pd.to_datetime(snakemake.params.period, format="%Y%m%d")
hours = pd.date_range(days[0], days[-1] + pd.Timedelta(hours=23), freq="h")
for gas in ("ch4", "co"):
    path = snakemake.input[f"truth_{gas}"]
    with xr.open_dataset(path) as truth:
        truth = truth.load()
    hours_t = pd.DatetimeIndex(truth["time"].values)
    if not hours_j.equals(hours_t):
        raise ValueError(f"{path}: time axis {hours_t[0]}..{hours_t[-1]} ({len(hours_t)} h) differs from the "
                         f"truth's Jacobian {hours_j[0]}..{hours_j[-1]} ({len(hours_j)} h); rebuild both")
    if nested:  # the neighbours' CH4/CO (rule demo_gases, truth_outer_<gas>.nc) through the outer columns
        from inversion.outer import hourly_state, read_outer_flux

        outer = read_outer_flux(snakemake.input[f"truth_outer_{gas}"], "demo_gases", hours_j, jac.nested)
        x = hourly_state(truth["flux"].values, outer)
        enh = np.asarray(jac.H @ x).ravel()
        enh_outer = np.asarray(jac.H @ (x * (np.arange(x.size) % jac.nested.n_cells >= jac.nested.n_inner))).ravel()
        log.info("%s: the outer cells give %.1f %% of the true enhancement", gas, 100 * enh_outer.sum() / enh.sum())
    else:
        enh = receptor_enhancements(jac.H, truth["flux"].values)
    background = truth["background"].to_series()
    background.index = pd.DatetimeIndex(background.index)
    noise = GAS_TRUTH_ERRORS.noise(gas)
    out = gas_truth_signal(jac.receptors, enh, has_fp, snakemake.params.sites, hours, background,
                           snakemake.params.utc_offset, snakemake.params.seed, gas, co2_signal, noise)
    fp = out["source"] == "footprint"
    log.info("%s: %d hours x inlets, %d from footprints: mean enhancement %.2f ppb, noise %.2f ppb + "
             "%.0f %%, correlation with CO2 %.2f", gas, len(out), int(fp.sum()),
             float(out.loc[fp, "enhancement"].mean()) if fp.any() else float("nan"), noise[0], 100 * noise[1], noise[2])
    write_csv(out, snakemake.output[gas], float_format="%.5f")
