"""Transport: synthetic ARL met, receptors, HYSPLIT-STILT footprints (pystilt), Jacobian."""

from .footprints import read_footprint, read_site_day

__all__ = ["read_footprint", "read_site_day"]
