"""inversion package: prior, covariance operators, numba kernels, solvers, the month's inversion.

Public entry point: ``inversion.solve(H, y, x_prior, prior_cov, obs_err, aggregate=None,
aggregate_var=None, options=SolveOptions(...))`` (see `inversion.solve`), with the prior covariance
operator `KroneckerCovariance`; the two solvers `solve_cholesky` and `solve_pcg` return the same
`InversionResult`. Inventories: `read_inventory(path)` (EDGAR, ODIAC, CF NetCDF, the pipeline's
own inventory.nc; `inversion.inventories`). The month's inversion: `inversion.run` (`load_inputs`, `invert`, `write_outputs`).
"""

from .covariance import KroneckerCovariance, grid_spacing_km  # noqa: F401
from .hyper import tune_scaling  # noqa: F401
from .inventories import Inventory, read_inventory  # noqa: F401
from .solve import InversionResult, SolveOptions, prepare, solve, solve_cholesky, solve_pcg  # noqa: F401

__all__ = ["read_inventory", "Inventory", "solve", "solve_cholesky", "solve_pcg", "prepare", "SolveOptions", "InversionResult",
           "KroneckerCovariance", "grid_spacing_km", "tune_scaling"]
