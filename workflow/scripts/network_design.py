"""Network design of one month (inversion.network.run_network_design): candidates.csv, greedy.csv,
design.json, then the map and the report page (products.network)."""

import pandas as pd

from gzcarbon.grid import NestedGrid
from gzcarbon.logs import script_logging
from inversion.network import run_network_design
from products.network import network_map, network_report

script_logging(snakemake.log[0])  # noqa: F821
i, o, p = snakemake.input, snakemake.output, snakemake.params  # noqa: F821

nested = NestedGrid.from_config({"grid": p.grid, "outer_grid": p.outer_grid, "met": p.met})
box = None if nested.outer is None else (nested.outer.lon_min, nested.outer.lon_max,
                                         nested.outer.lat_min, nested.outer.lat_max)
res = run_network_design(i.jacobian, i.selected, i.prior, i.districts, i.get("cand_jacobian"),
                         i.get("cand_receptors"), i.cand_table, o.candidates, o.greedy, o.summary, inversion_cfg=dict(p.inversion),
                         nd=dict(p.network), period_start=p.period_start, period_end=p.period_end,
                         utc_offset_hours=p.utc_offset_hours, districts_csv=i.districts_csv,
                         diagnostics=i.diagnostics, cand_footprints=list(i.cand_footprints), outer_box=box,
                         neighbours=i.get("neighbours"), extra_rows=list(i.extra_rows))
network_map(res.candidates, res.greedy, i.districts, [dict(s) for s in p.stations], o.map)
network_report(o.candidates, o.greedy, o.summary, o.map, o.report)
