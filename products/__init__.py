"""Monthly products: CF-1.8 flux NetCDF, PNG figures and the self-contained HTML report.

    from products import open_flux_product, district_table
    ds = open_flux_product("2025-01")          # results/2025-01/flux_2025-01.nc
    district_table(ds)                         # kt CO2, prior/posterior ± sigma (and truth)
"""

from .flux_netcdf import district_table, open_flux_product, write_flux_product

__all__ = ["district_table", "open_flux_product", "write_flux_product"]
