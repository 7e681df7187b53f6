"""The state / footprint grid: regular lon/lat cells given by their edges and resolution.

Cell centres are exactly ``edge_min + res * (i + 1/2)`` (rounded to 10 decimals, as pystilt rounds
them), row-major from the south-west: ``cell = iy * nx + ix``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class StateGrid:
    lon_min: float
    lon_max: float
    lat_min: float
    lat_max: float
    res: float

    @classmethod
    def from_config(cls, grid: dict) -> "StateGrid":
        """From the config ``grid`` mapping (``lon_min, lon_max, lat_min, lat_max, res``)."""
        try:
            g = cls(*(float(grid[k]) for k in ("lon_min", "lon_max", "lat_min", "lat_max", "res")))
        except KeyError as exc:
            raise ValueError(f"config `grid`: missing key {exc.args[0]!r}; give lon_min, lon_max, "
                             "lat_min, lat_max and res (degrees)") from None
        for lo, hi, name in ((g.lon_min, g.lon_max, "lon"), (g.lat_min, g.lat_max, "lat")):
            n = (hi - lo) / g.res
            if hi <= lo or abs(n - round(n)) > 1e-6:
                raise ValueError(f"config `grid`: {name}_max - {name}_min must be a positive "
                                 f"multiple of res={g.res}, got {lo}..{hi}")
        return g

    @property
    def nx(self) -> int:
        return int(round((self.lon_max - self.lon_min) / self.res))

    @property
    def ny(self) -> int:
        return int(round((self.lat_max - self.lat_min) / self.res))

    @property
    def n_cells(self) -> int:
        return self.nx * self.ny

    @property
    def lons(self) -> np.ndarray:
        """Cell centres, west to east."""
        return np.round(self.lon_min + self.res * (np.arange(self.nx) + 0.5), 10)

    @property
    def lats(self) -> np.ndarray:
        """Cell centres, south to north."""
        return np.round(self.lat_min + self.res * (np.arange(self.ny) + 0.5), 10)

    def as_dict(self) -> dict:
        return dict(lon_min=self.lon_min, lon_max=self.lon_max, lat_min=self.lat_min,
                    lat_max=self.lat_max, res=self.res)

    def index_of(self, lons: np.ndarray, lats: np.ndarray, tol: float = 1e-6):
        """Column/row indices of centre coordinates on this grid; -1 where not a cell centre."""
        ix = np.rint((np.asarray(lons, float) - self.lon_min) / self.res - 0.5).astype(int)
        iy = np.rint((np.asarray(lats, float) - self.lat_min) / self.res - 0.5).astype(int)
        okx = (ix >= 0) & (ix < self.nx) & (np.abs(self.lon_min + self.res * (ix + 0.5) - lons) < tol * 10 + self.res * 1e-3)
        oky = (iy >= 0) & (iy < self.ny) & (np.abs(self.lat_min + self.res * (iy + 0.5) - lats) < tol * 10 + self.res * 1e-3)
        return np.where(okx, ix, -1), np.where(oky, iy, -1)
