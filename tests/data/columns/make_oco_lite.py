"""Write tests/data/columns/oco2_LtCO2_250101_B11100Ar_gzcarbon.nc4: eight soundings over
Guangzhou in the OCO-2 Lite v11 layout (gzcarbon.demo.columns.write_oco_lite; see
tests/data/README.md, section "columns"). Sounding 3 has a fill value in xco2, sounding 5 a bad
quality flag. Run from the repository root: ``python tests/data/columns/make_oco_lite.py``."""
from pathlib import Path

import numpy as np
import pandas as pd

from gzcarbon.demo.columns import (oco_kernel, oco_levels, oco_pressure_weight,
                                   oco_sounding_ids, write_oco_lite)

n = 8
rng = np.random.default_rng(23)
time = pd.Timestamp("2025-01-01 05:25:10") + pd.to_timedelta(np.arange(n) * 0.333, unit="s")
psurf = 1012.0 - rng.uniform(0, 8, n)
pressure = oco_levels(psurf)
table = pd.DataFrame(dict(sounding_id=oco_sounding_ids(time), time=time,
                          lon=113.25 + 0.004 * np.arange(n), lat=23.05 + 0.02 * np.arange(n),
                          value=418.0 + rng.normal(0, 0.8, n), uncertainty=rng.uniform(0.4, 0.6, n),
                          surface_pressure=psurf, surface_altitude=rng.uniform(5, 40, n),
                          solar_zenith=np.full(n, 48.5)))
table.loc[3, "value"] = -999999.0
sigma = pressure / psurf[:, None]
prior = 421.0 - 4.0 * (1 - sigma) ** 2
flag = np.zeros(n, np.int8)
flag[5] = 1
write_oco_lite(Path(__file__).with_name("oco2_LtCO2_250101_B11100Ar_gzcarbon.nc4"), table,
               pressure, oco_kernel(pressure, psurf), oco_pressure_weight(pressure), prior, flag)
