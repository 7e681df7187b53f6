"""Hourly district power emission factors and power-sector point sources (public entry points).

    ds = power.emission_factors(plants, generation, load, external=None, flows=None, ...)
    ps = power.point_sources(ds)            # or point_sources(plants, generation, start=..., end=...)

Units: energies MWh per hour, emissions t CO2 per hour, factors kg CO2/kWh (= t CO2/MWh).
"""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd
import xarray as xr

from . import flow
from .marginal import marginal_factors
from .inputs import load_times, read_external, read_flows, read_generation, read_load
from .registry import DISTRICTS, read_plants
from .settings import POWER, UTC_OFFSET_HOURS

log = logging.getLogger(__name__)

#: Largest relative conservation residual tolerated in any hour before an error is raised.
CONSERVATION_RTOL = 1e-9


def hourly_axis(start, end) -> pd.DatetimeIndex:
    """Hourly UTC axis [start, end)."""
    return pd.date_range(pd.Timestamp(start), pd.Timestamp(end), freq="h", inclusive="left").as_unit("ns")


def _times(load, start, end) -> pd.DatetimeIndex:
    if start is not None and end is not None:
        return hourly_axis(start, end)
    times = load_times(load)
    if start is not None:
        times = times[times >= pd.Timestamp(start)]
    if end is not None:
        times = times[times < pd.Timestamp(end)]
    return times


def emission_factors(plants, generation, load, external=None, flows=None, *, districts=None,
                     external_factor: float = POWER.external_factor, start=None, end=None,
                     utc_offset_hours: int = UTC_OFFSET_HOURS) -> xr.Dataset:
    """Production- and consumption-based hourly emission factors per district.

    Parameters
    ----------
    plants : registry path or DataFrame (power.registry format).
    generation, load : paths or DataFrames (power.inputs formats).
    external : path/DataFrame of the external-grid hourly intensity, a number, or None
        (= `external_factor`, default the config's `power.external_factor`: the 2022 Southern
        grid value, kg CO2/kWh; `gzcarbon.config.PowerConfig`).
    flows : optional known inter-district flows (path/DataFrame); None = pooling rule.
    districts : district keys (default: the 11 Guangzhou districts).
    start, end : optional hourly axis [start, end) (UTC); default = the hours of the load file.
    utc_offset_hours : local time offset, used to bin the marginal factor by local hour of day
        (default the config's `stations.utc_offset_hours`).

    Returns an xarray.Dataset with dims (time, district) (and `plant` for plant-level series);
    see docs/power.md for every variable. The marginal emission factors (`power.marginal`) over
    all hours of the axis are included (`marginal_factor(district)` and friends). Raises
    PowerInputError on bad inputs and RuntimeError
    if emissions are not conserved to 1e-9 (relative) in some hour.
    """
    districts = list(districts) if districts is not None else list(DISTRICTS)
    reg = read_plants(plants, districts)
    times = _times(load, start, end)
    if len(times) == 0:
        raise ValueError("emission_factors: the time axis is empty; check start/end and the load file.")
    disp = reg[reg["dispatched"]]
    gen_p = read_generation(generation, reg, times)                      # (T, P)
    load_d = read_load(load, districts, times)                           # (T, N)
    w_ext = read_external(external, times, external_factor)              # (T,)
    F = read_flows(flows, districts, times) if flows is not None else None
    inten = disp["intensity_t_per_mwh"].to_numpy()
    co2_p = gen_p * inten[None, :]
    member = (disp["district"].to_numpy()[:, None] == np.array(districts)[None, :]).astype(float)
    gen_d = gen_p @ member
    emis_d = co2_p @ member
    log.info("tracing %d hours x %d districts (+ external), %d dispatched plants, %s",
             len(times), len(districts), len(disp), "given flows" if F is not None else "pooling rule")
    res = flow.trace(gen_d, emis_d, load_d, w_ext, F)
    rd, rc = flow.conservation_residual(gen_d, emis_d, load_d, w_ext, res)
    worst = max(np.abs(rd).max(initial=0.0), np.abs(rc).max(initial=0.0))
    if not worst <= CONSERVATION_RTOL:
        raise RuntimeError(f"emissions not conserved: worst relative residual {worst:.3g} > "
                           f"{CONSERVATION_RTOL}; this is a bug, please report it with the inputs.")

    with np.errstate(invalid="ignore", divide="ignore"):
        prod_f = np.where(gen_d > 0, emis_d / gen_d, np.nan)
        imp_share = np.where(res["throughput"] > 0, res["imported_mwh"] / res["throughput"], np.nan)
        city_cons = res["consumption_emissions"].sum(1)
        city_load = load_d.sum(1)
        city_f = np.where(city_load > 0, city_cons / city_load, np.nan)
        city_gen = gen_d.sum(1)
        city_prod_f = np.where(city_gen > 0, emis_d.sum(1) / city_gen, np.nan)
    w0 = np.nan_to_num(res["w"])
    td = ("time", "district")
    ds = xr.Dataset(
        {
            "generation_mwh": (td, gen_d, {"long_name": "electricity generated in the district", "units": "MWh"}),
            "load_mwh": (td, load_d, {"long_name": "electricity consumed in the district", "units": "MWh"}),
            "production_emissions_t": (td, emis_d, {"long_name": "CO2 emitted by the district's plants", "units": "t"}),
            "production_factor": (td, prod_f, {
                "long_name": "production-based emission factor (emissions / generation; NaN without generation)",
                "units": "kg CO2/kWh"}),
            "consumption_factor": (td, res["w"], {
                "long_name": "consumption-based emission factor (carbon emission flow nodal intensity)",
                "units": "kg CO2/kWh"}),
            "consumption_emissions_t": (td, res["consumption_emissions"], {
                "long_name": "CO2 attributed to the district's electricity use", "units": "t"}),
            "import_mwh": (td, res["imported_mwh"], {"long_name": "electricity received from other districts and the external grid", "units": "MWh"}),
            "export_mwh": (td, res["exported_mwh"], {"long_name": "electricity sent to other districts and the external grid", "units": "MWh"}),
            "imported_emissions_t": (td, res["imported_emissions"], {"long_name": "CO2 embodied in imports", "units": "t"}),
            "exported_emissions_t": (td, res["exported_emissions"], {"long_name": "CO2 embodied in exports", "units": "t"}),
            "import_share": (td, imp_share, {"long_name": "share of the district's supply from outside the district", "units": "1"}),
            "external_share": (td, res["ext_share"], {"long_name": "share of the district's consumption traced to the external grid", "units": "1"}),
            "external_import_mwh": (td, res["X"], {"long_name": "electricity drawn directly from the external grid", "units": "MWh"}),
            "external_export_mwh": (td, res["Y"], {"long_name": "electricity sent directly to the external grid", "units": "MWh"}),
            "external_intensity": (("time",), w_ext, {"long_name": "external grid emission factor", "units": "kg CO2/kWh"}),
            "city_consumption_factor": (("time",), city_f, {"long_name": "city-wide consumption-based factor", "units": "kg CO2/kWh"}),
            "city_production_factor": (("time",), city_prod_f, {"long_name": "city-wide production-based factor", "units": "kg CO2/kWh"}),
            "city_exported_emissions_t": (("time",), (res["Y"] * w0).sum(1), {"long_name": "CO2 embodied in exports to the external grid", "units": "t"}),
            "plant_generation_mwh": (("time", "plant"), gen_p, {"long_name": "plant generation", "units": "MWh"}),
            "plant_co2_t": (("time", "plant"), co2_p, {"long_name": "plant CO2 emissions (generation x intensity)", "units": "t"}),
        },
        coords={
            "time": ("time", times.to_numpy(), {"long_name": "start of the hour (UTC)"}),
            "district": ("district", np.array(districts, dtype=object)),
            "plant": ("plant", disp.index.to_numpy().astype(object)),
            "plant_district": ("plant", disp["district"].to_numpy().astype(object)),
            "plant_lon": ("plant", disp["lon"].to_numpy(float), {"units": "degrees_east"}),
            "plant_lat": ("plant", disp["lat"].to_numpy(float), {"units": "degrees_north"}),
            "plant_fuel": ("plant", disp["fuel"].to_numpy().astype(object)),
            "plant_intensity": ("plant", inten, {"units": "t CO2/MWh"}),
        },
        attrs={
            "title": "Hourly district power emission factors, Guangzhou",
            "method": "carbon emission flow (proportional sharing) over district nodes + external grid node",
            "flows": "given inter-district flows" if F is not None else
                     "pooling rule: surplus districts -> city pool -> deficit districts, then external grid",
            "external_factor_default": float(external_factor),
            "max_conservation_residual_relative": float(worst),
            "conventions": "times UTC, value at t covers [t, t+1h); transmission losses not modelled",
        },
    )
    ds.update(marginal_factors(ds, utc_offset_hours))
    ds.attrs["marginal_method"] = ("regression of the hour-to-hour change of supply emissions on the load change, "
                                   "by local hour of day, weighted by each district's load changes (docs/power.md)")
    return ds


def point_sources(source, generation=None, *, start=None, end=None, districts=None) -> pd.DataFrame:
    """Hourly power-sector point sources: columns time, plant_id, lon, lat, co2_t_per_h.

    `source` is a Dataset from `emission_factors` or a plant registry (path/DataFrame); in the
    latter case `generation` (path/DataFrame) and the axis `start`, `end` (default: the hours of
    the generation file) are read. Retired plants are not listed; plants that are off give 0.
    """
    if isinstance(source, xr.Dataset):
        ds = source
    else:
        if generation is None:
            raise ValueError("point_sources: give the generation file along with the plant registry.")
        districts = list(districts) if districts is not None else list(DISTRICTS)
        reg = read_plants(source, districts)
        if start is not None and end is not None:
            times = hourly_axis(start, end)
        else:
            from .inputs import _table, parse_times
            df, src = _table(generation, "generation")
            times = pd.DatetimeIndex(np.unique(parse_times(df, src).to_numpy()))
        disp = reg[reg["dispatched"]]
        gen_p = read_generation(generation, reg, times)
        ds = xr.Dataset(
            {"plant_co2_t": (("time", "plant"), gen_p * disp["intensity_t_per_mwh"].to_numpy()[None, :])},
            coords={"time": times.to_numpy(), "plant": disp.index.to_numpy().astype(object),
                    "plant_lon": ("plant", disp["lon"].to_numpy(float)),
                    "plant_lat": ("plant", disp["lat"].to_numpy(float))},
        )
    T, P = ds.sizes["time"], ds.sizes["plant"]
    return pd.DataFrame({
        "time": np.repeat(ds["time"].to_numpy(), P),
        "plant_id": np.tile(ds["plant"].to_numpy().astype(str), T),
        "lon": np.tile(ds["plant_lon"].to_numpy(), T),
        "lat": np.tile(ds["plant_lat"].to_numpy(), T),
        "co2_t_per_h": ds["plant_co2_t"].to_numpy().reshape(-1),
    })
