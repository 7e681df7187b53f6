"""Station observations: raw analyser files -> calibrated, QC-flagged hourly data -> selection.

``stations.read(path, format=None, species="co2")`` opens any supported station file as an
``xarray.Dataset``; see :mod:`stations.read`. Modules: ``picarro`` (raw file writer/reader),
``fields`` (numba line scanner of the reader), ``netcdf`` (ObsPack / ICOS NetCDF),
``qc``, ``calibration``, ``hourly``, ``selection``,
``background`` (upwind-site and baseline backgrounds), ``sites``.
"""
from .read import read  # noqa: F401  (the public entry point: stations.read)

__all__ = ["read"]
