"""Station observations: raw analyser files -> calibrated, QC-flagged hourly data -> selection.

``stations.read(path, format=None, species="co2")`` opens any supported station file as an
``xarray.Dataset``; see :mod:`stations.read`. Modules: ``picarro`` (raw file writer/reader),
``synthetic`` (demo raw files), ``qc``, ``calibration``, ``hourly``, ``selection``, ``sites``.
"""
from .read import read  # noqa: F401  (the public entry point: stations.read)

__all__ = ["read"]
