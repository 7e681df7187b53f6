"""Territorial and consumption-based CO2 per district over the inverted period:
{R}/accounting.csv (power.accounting; docs/power.md, "Two accountings")."""

import logging

from gzcarbon.logs import script_logging
from power.accounting import accounting_from_files, write_accounting

script_logging(snakemake.log[0])  # noqa: F821
log = logging.getLogger("accounting")

inp = snakemake.input  # noqa: F821
table = accounting_from_files(inp.districts, inp.diagnostics, inp.power)
write_accounting(table, snakemake.output[0])  # noqa: F821
city = table.iloc[-1]
log.info("accounting %s: city territorial %.1f +- %.1f t, own power plants %.1f t, consumed electricity "
         "%.1f t, consumption-based %.1f +- %.1f t", snakemake.output[0], city["territorial_t"],  # noqa: F821
         city["sigma_t"], city["own_power_plants_t"], city["consumed_electricity_t"],
         city["consumption_based_t"], city["sigma_t"])
