"""inversion package: state grid, districts, prior, covariance operators, numba kernels, solvers.

Public entry point: ``inversion.solve(H, y, x_prior, prior_cov, obs_err, aggregate=None, **options)``
(see `inversion.solve`), with the prior covariance operator `KroneckerCovariance`.
"""

from .covariance import KroneckerCovariance, grid_spacing_km  # noqa: F401
from .hyper import tune_scaling  # noqa: F401
from .solve import InversionResult, solve  # noqa: F401

__all__ = ["solve", "InversionResult", "KroneckerCovariance", "grid_spacing_km", "tune_scaling"]
