"""Transport: synthetic ARL met, receptors, HYSPLIT-STILT footprints (pystilt), Jacobian."""

from .footprints import read_footprint, read_site_day
from .regrid import regrid_footprint

__all__ = ["read_footprint", "read_site_day", "regrid_footprint"]
