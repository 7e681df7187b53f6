"""Transport: ARL meteorology (index, coverage, ERA5/WRF conversion), receptors, HYSPLIT-STILT
footprints (pystilt) or footprints read from files, Jacobian."""

from .arl import check_met_coverage
from .footprints import read_footprint, read_footprints, read_site_day
from .met_convert import era5_to_arl
from .regrid import regrid_footprint
from .wrf_convert import wrf_to_arl

__all__ = ["check_met_coverage", "era5_to_arl", "read_footprint", "read_footprints", "read_site_day",
           "regrid_footprint", "wrf_to_arl"]
