"""Hourly district power emission factors (carbon emission flow) and marginal factors, point
sources for the prior, heat map and monthly summary. Formats: docs/power.md."""

import logging
from importlib import metadata

import power
from power import products
from gzcarbon.config import load_config
from gzcarbon.logs import script_logging
from gzcarbon.provenance import config_hash

script_logging(snakemake.log[0])  # noqa: F821
log = logging.getLogger("power_factors")

inp = snakemake.input
params = snakemake.params
start, end = params.axis
# typed settings from the rule's params (each one a rerun trigger)
settings = load_config({"power": {"external_factor": params.external_factor},
                        "stations": {"utc_offset_hours": params.utc_offset}})
districts = power.district_names(inp.districts)
external = inp.get("external") or None
flows = params.flows or None
offset = settings.stations.utc_offset_hours
ds = power.emission_factors(
    inp.plants, inp.generation, inp.load, external, flows, districts=districts,
    external_factor=settings.power.external_factor, start=start, end=end,
    utc_offset_hours=offset,
)
try:
    version = metadata.version("gzcarbon")
except metadata.PackageNotFoundError:
    version = "unknown"
files = [inp.plants, inp.generation, inp.load] + ([external] if external else []) + ([flows] if flows else [])
prov = {
    "config_sha256": config_hash(snakemake.config),  # the same hash as every product of the run
    "software": f"gzcarbon {version}",
    "input_files": ", ".join(files),
    "period": f"{start} .. {end} (end exclusive, UTC)",
}
products.write_netcdf(ds, snakemake.output.nc, prov)
products.write_csv(products.to_long_table(ds), snakemake.output.csv)
products.write_point_sources(power.point_sources(ds), snakemake.output.point_sources)
products.plot_heatmap(products.select_month(ds, snakemake.params.month), snakemake.output.heatmap, offset)
products.write_csv(products.monthly_summary(ds, snakemake.params.month, offset), snakemake.output.summary,
                   float_format="%.6g")
log.info("power factors for %s: %d hours x %d districts, max conservation residual %.2e, "
         "city marginal factor %.4f +- %.4f kg/kWh from %d hour-to-hour changes",
         snakemake.params.month, ds.sizes["time"], ds.sizes["district"],
         ds.attrs["max_conservation_residual_relative"], float(ds["city_marginal_factor"]),
         float(ds["city_marginal_factor_se"]), int(ds["marginal_hours"]))
