"""ARL packed meteorology as real runs need it: constants, the met grid, the index reader and the
coverage check.

Nothing here is synthetic: the demo world's met writer (``gzcarbon.demo.met``) and the ERA5/WRF
converters (:mod:`transport.met_convert`, :mod:`transport.wrf_convert`) import it.

The index of an ARL file is read by our own code (:func:`read_arl_index`), not through ``arlmet``:
every time step starts with an index record (50-byte label with variable ``INDX``, then ASCII:
source ``A4``, forecast hour ``I3``, minutes ``I2``, 12 grid parameters ``F7``, ``nx ny nz`` ``I3``,
vertical flag ``I2``, index length ``LENH`` ``I4`` = 108 fixed bytes, then per level its height
``F6`` and number of variables ``I2`` and per variable ``A4`` name, ``I3`` checksum, one reserved
byte). When ``LENH`` exceeds the ``nx * ny`` bytes of one record (small grids with many levels,
e.g. ERA5's 37 levels on a small domain), HYSPLIT continues the index text in the following
records, each with its own ``INDX`` label; ``arlmet`` 0.1.0b4 cannot read those files. Grid sizes
of 1000 or more points carry the thousands as letters (``A`` = 1000) in the label's grid field.
Record length = 50 + nx * ny. The time steps of a file (any interval: 1, 2, 3, 6 h, minutes from the
index) are read from the labels of its index records only, a few bytes per step.

Grids: lat-lon (``SIZE`` = 0) and the conformal projections HYSPLIT reads -- polar stereographic
(``TANG_LAT`` ±90), Mercator (0), Lambert conformal (between) -- placed by our own spherical
formulas with HYSPLIT's ``cmapf`` conventions (:func:`grid_lonlat`, :func:`grid_xy`);
:func:`write_arl_grid` writes any of them with any vertical coordinate (sigma, pressure, terrain,
hybrid).
"""

from __future__ import annotations

import math
import os
import string
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np
import pandas as pd

#: Pressure levels (hPa) above the surface level 0, GDAS-like: the default of the converters.
PRESSURE_LEVELS = (1000.0, 975.0, 950.0, 925.0, 900.0, 850.0, 800.0, 700.0, 600.0, 500.0,
                   400.0, 300.0, 250.0, 200.0)
#: ARL surface and level variables HYSPLIT-STILT needs (our writers write these).
SURFACE_FIELDS = ("SHGT", "PRSS", "MSLP", "T02M", "U10M", "V10M", "RH2M", "PBLH", "SHTF", "USTR")
LEVEL_FIELDS = ("HGTS", "TEMP", "UWND", "VWND", "WWND", "RELH")

RD = 287.05  # J kg-1 K-1, dry-air gas constant
G = 9.80665  # m s-2
LAPSE = 0.0065  # K m-1, standard-atmosphere lapse rate

LABEL_BYTES = 50
INDEX_FIXED_BYTES = 108


class ArlFormatError(ValueError):
    """A file that is not valid ARL packed meteorology (names the file and the byte)."""


class MetCoverageError(ValueError):
    """The meteorology does not cover a receptor's run window or position."""


@dataclass(frozen=True)
class MetGrid:
    """A regular lon/lat grid of met points (both edges included)."""

    lon_min: float
    lon_max: float
    lat_min: float
    lat_max: float
    res: float

    @property
    def nx(self) -> int:
        return int(round((self.lon_max - self.lon_min) / self.res)) + 1

    @property
    def ny(self) -> int:
        return int(round((self.lat_max - self.lat_min) / self.res)) + 1

    @property
    def lons(self) -> np.ndarray:
        return self.lon_min + self.res * np.arange(self.nx)

    @property
    def lats(self) -> np.ndarray:
        return self.lat_min + self.res * np.arange(self.ny)

    @classmethod
    def from_bounds(cls, bounds: dict, res: float | None = None) -> "MetGrid":
        """Build from a config ``met`` mapping (``lon_min, lon_max, lat_min, lat_max, res``)."""
        try:
            return cls(float(bounds["lon_min"]), float(bounds["lon_max"]), float(bounds["lat_min"]),
                       float(bounds["lat_max"]), float(res if res is not None else bounds["res"]))
        except KeyError as exc:
            raise ValueError(f"met grid: missing key {exc.args[0]!r} in {bounds!r}; give "
                             "lon_min, lon_max, lat_min, lat_max and res (config `met`)") from None

    def arl_grid(self):
        """The ``arlmet.Grid`` of this lat/lon grid."""
        import arlmet

        proj = arlmet.Projection(
            pole_lat=self.lats[-1], pole_lon=self.lons[-1], tangent_lat=self.res,
            tangent_lon=self.res, grid_size=0.0, orientation=0.0, cone_angle=0.0,
            sync_x=1.0, sync_y=1.0, sync_lat=self.lat_min, sync_lon=self.lon_min)
        return arlmet.Grid(projection=proj, nx=self.nx, ny=self.ny)


def packable(data: np.ndarray) -> np.ndarray:
    """``data``, nudged if needed so ARL one-byte packing reproduces it.

    arlmet 0.1.0b4 chooses too small an exponent when the largest neighbour difference is exactly
    a power of two (e.g. a smooth field whose differences are all 0.125): the packed differences
    then wrap and the field is corrupted by several units. We check the round trip and, if it
    fails, round the field to 1e-3 (which breaks the exact power of two).
    """
    import arlmet

    ny, nx = data.shape

    def err(x):
        b, prec, e, v0 = arlmet.pack(x)
        y = arlmet.unpack(b.tobytes(), nx, ny, prec, e, v0)
        return float(np.abs(y - x).max()), 4 * prec + 1e-6

    e, tol = err(data)
    if e <= tol:
        return data
    for fix in (lambda x: np.round(x, 3), lambda x: x + np.float32(1e-3) * np.sign(x)):
        cand = fix(data).astype(np.float32)
        e, tol = err(cand)
        if e <= tol:
            return cand
    raise RuntimeError("ARL packing failed for a field (round trip off by more than the packing "
                       "precision); report this with the field's range")


# --------------------------------------------------------------------------------------------
# Grid projections of the index record (HYSPLIT's conventions)
# --------------------------------------------------------------------------------------------

#: Earth radius (km) of HYSPLIT's conformal-map library (``cmapf``, ``REARTH``).
HYSPLIT_EARTH_KM = 6367.47
#: ARL vertical coordinate flags (index record ``I2`` after ``nz``).
VERTICAL_SIGMA, VERTICAL_PRESSURE, VERTICAL_TERRAIN, VERTICAL_HYBRID = 1, 2, 3, 4


def _wrap180(deg):
    return (np.asarray(deg, float) + 180.0) % 360.0 - 180.0


class _Cone:
    """The conformal map HYSPLIT builds from an index record (``STLMBR(TANG_LAT, REF_LON)`` then
    ``STCM1P(SYNC_XP, SYNC_YP, SYNC_LAT, SYNC_LON, REF_LAT, REF_LON, SIZE, ORIENT)``): a cone
    tangent at ``TANG_LAT`` (±90 polar stereographic, 0 Mercator, else Lambert conformal) about the
    meridian ``REF_LON``, scaled so one grid cell is ``SIZE`` km at ``REF_LAT``, and shifted so
    grid point (``SYNC_XP``, ``SYNC_YP``) (1-based) lies at (``SYNC_LAT``, ``SYNC_LON``). Our own
    spherical formulas (Snyder, *Map projections*, 1987), in grid units."""

    def __init__(self, p: dict, label: str = "ARL grid"):
        if p["orientation"] != 0.0:
            raise ArlFormatError(f"{label}: grid orientation ORIENT = {p['orientation']} (a grid "
                                 "rotated against the reference meridian) is not supported; "
                                 "write the grid with ORIENT = 0")
        if p["grid_size"] <= 0.0:
            raise ArlFormatError(f"{label}: SIZE = {p['grid_size']} km is not a projected grid")
        cone = float(p["cone_angle"])
        self.s = -1.0 if cone < 0 else 1.0  # hemisphere of the cone (mirrored to the north)
        self.n = abs(np.sin(np.deg2rad(cone)))
        self.lon0 = float(p["tangent_lon"])
        phir = np.deg2rad(self.s * float(p["tangent_lat"]))
        k = HYSPLIT_EARTH_KM * np.cos(phir) / float(p["grid_size"])  # grid units per radian
        if self.n < 1e-9:  # Mercator
            self.c = k
        else:
            self.c = k / (self.n * np.tan(np.pi / 4 - phir / 2) ** self.n)
        self.x0, self.y0 = 0.0, 0.0
        xs, ys = self.forward(p["sync_lat"], p["sync_lon"])
        self.x0, self.y0 = float(p["sync_x"]) - xs, float(p["sync_y"]) - ys

    def forward(self, lat, lon) -> tuple[np.ndarray, np.ndarray]:
        """1-based grid coordinates (x, y) of (lat, lon) in degrees."""
        phi = np.deg2rad(self.s * np.asarray(lat, float))
        dlon = np.deg2rad(_wrap180(np.asarray(lon, float) - self.lon0))
        if self.n < 1e-9:
            x = self.c * dlon
            y = self.c * np.log(np.tan(np.pi / 4 + phi / 2))
        else:
            rho = self.c * np.tan(np.pi / 4 - phi / 2) ** self.n
            x = rho * np.sin(self.n * dlon)
            y = -rho * np.cos(self.n * dlon)
        return x + self.x0, self.s * y + self.y0

    def inverse(self, x, y) -> tuple[np.ndarray, np.ndarray]:
        """(lat, lon) in degrees of 1-based grid coordinates (x, y)."""
        x = np.asarray(x, float) - self.x0
        y = self.s * (np.asarray(y, float) - self.y0)
        if self.n < 1e-9:
            phi = 2 * np.arctan(np.exp(y / self.c)) - np.pi / 2
            dlon = x / self.c
        else:
            rho = np.hypot(x, y)
            dlon = np.arctan2(x, -y) / self.n
            phi = np.pi / 2 - 2 * np.arctan((rho / self.c) ** (1.0 / self.n))
        return self.s * np.rad2deg(phi), _wrap180(self.lon0 + np.rad2deg(dlon))


def grid_lonlat(projection: dict, nx: int, ny: int,
                label: str = "ARL grid") -> tuple[np.ndarray, np.ndarray]:
    """Longitude and latitude (ny, nx) of the grid points of an index record's 12 grid
    parameters (:data:`PROJECTION_FIELDS` names): lat-lon (``SIZE`` = 0: ``REF_LAT``/``REF_LON``
    hold the spacing), polar stereographic, Mercator or Lambert conformal (HYSPLIT's ``cmapf``
    conventions, :class:`_Cone`)."""
    p = projection
    if p["grid_size"] == 0.0:
        lons = p["sync_lon"] + p["tangent_lon"] * (np.arange(nx) + 1 - p["sync_x"])
        lats = p["sync_lat"] + p["tangent_lat"] * (np.arange(ny) + 1 - p["sync_y"])
        lon2, lat2 = np.meshgrid(_wrap180(lons), lats)
        return lon2, lat2
    x, y = np.meshgrid(np.arange(1.0, nx + 1), np.arange(1.0, ny + 1))
    lat, lon = _Cone(p, label).inverse(x, y)
    return lon, lat


def grid_xy(projection: dict, lat, lon, label: str = "ARL grid") -> tuple[np.ndarray, np.ndarray]:
    """1-based grid coordinates (x, y) of (lat, lon) on an index record's grid (any projection)."""
    p = projection
    if p["grid_size"] == 0.0:
        x = p["sync_x"] + _wrap180(np.asarray(lon, float) - p["sync_lon"]) / p["tangent_lon"]
        y = p["sync_y"] + (np.asarray(lat, float) - p["sync_lat"]) / p["tangent_lat"]
        return x, y
    return _Cone(p, label).forward(lat, lon)


# --------------------------------------------------------------------------------------------
# Index reader
# --------------------------------------------------------------------------------------------

#: Names of the 12 grid parameters of the index record, in file order.
PROJECTION_FIELDS = ("pole_lat", "pole_lon", "tangent_lat", "tangent_lon", "grid_size",
                     "orientation", "cone_angle", "sync_x", "sync_y", "sync_lat", "sync_lon",
                     "reserved")


@dataclass(frozen=True)
class ArlIndex:
    """What the index records of one ARL file say: grid, levels and time steps."""

    path: Path
    source: str
    nx: int
    ny: int
    nz: int
    projection: dict
    levels: tuple[float, ...]
    variables: tuple[tuple[str, ...], ...]  # per level
    times: tuple[pd.Timestamp, ...]
    index_records: int  # records per index (1, or more when the index text spans several)
    vertical: int = VERTICAL_PRESSURE  # 1 sigma, 2 pressure, 3 terrain, 4 hybrid

    @property
    def record_length(self) -> int:
        return LABEL_BYTES + self.nx * self.ny

    @property
    def step(self) -> pd.Timedelta | None:
        """The file's own record interval (smallest step between its times); None for one time."""
        if len(self.times) < 2:
            return None
        d = pd.DatetimeIndex(sorted(self.times)).to_series().diff().dropna()
        d = d[d > pd.Timedelta(0)]
        return pd.Timedelta(d.min()) if len(d) else None

    def extent(self) -> tuple[float, float, float, float]:
        """(lon_min, lon_max, lat_min, lat_max) of the grid points (projected grids: through
        :func:`grid_lonlat`, our own HYSPLIT-convention projection maths)."""
        lon, lat = self.lonlat()
        return float(np.min(lon)), float(np.max(lon)), float(np.min(lat)), float(np.max(lat))

    def lonlat(self) -> tuple[np.ndarray, np.ndarray]:
        """Longitude and latitude (ny, nx) of every grid point, as HYSPLIT places them."""
        lon, lat = grid_lonlat(self.projection, self.nx, self.ny, label=str(self.path))
        return lon, lat


def _thousands(char: str) -> int:
    return (string.ascii_uppercase.index(char) + 1) * 1000 if char in string.ascii_uppercase else 0


def _label(raw: bytes, path: Path, pos: int) -> tuple[pd.Timestamp, str, str]:
    """(time without minutes, variable, grid letters) of a 50-byte record label."""
    text = raw.decode("ascii", errors="replace")
    try:
        yy, mm, dd, hh = (int(text[i:i + 2]) for i in (0, 2, 4, 6))
        year = yy if yy >= 1900 else (2000 + yy if yy < 40 else 1900 + yy)
        return pd.Timestamp(year=year, month=mm, day=dd, hour=hh), text[14:18], text[12:14]
    except ValueError as exc:
        raise ArlFormatError(
            f"{path}: the record label at byte {pos} is not an ARL label ({text[:18]!r}: {exc}); "
            "the file is not ARL packed meteorology or is corrupt. Convert the met to ARL "
            "(rules era5_to_arl / wrf_to_arl) or re-download it.") from None


def _parse_fixed(text: str, path: Path) -> dict:
    try:
        proj = {k: float(text[9 + 7 * i:16 + 7 * i]) for i, k in enumerate(PROJECTION_FIELDS)}
        return dict(source=text[0:4].strip(), minutes=int(text[7:9] or 0), projection=proj,
                    nx=int(text[93:96]), ny=int(text[96:99]), nz=int(text[99:102]),
                    vertical=int(text[102:104] or 0), lenh=int(text[104:108]))
    except ValueError as exc:
        raise ArlFormatError(f"{path}: the first index record cannot be parsed ({exc}); not an "
                             "ARL file, or a corrupt one") from None


def _parse_levels(text: str, nz: int, path: Path) -> tuple[list[float], list[tuple[str, ...]]]:
    levels, variables, i = [], [], 0
    try:
        for _ in range(nz):
            levels.append(float(text[i:i + 6]))
            nvar = int(text[i + 6:i + 8])
            i += 8
            variables.append(tuple(text[i + 8 * k:i + 8 * k + 4].strip() for k in range(nvar)))
            i += 8 * nvar
    except ValueError as exc:
        raise ArlFormatError(f"{path}: the level table of the index record cannot be parsed at "
                             f"character {i} ({exc}); corrupt ARL file") from None
    return levels, variables


def read_arl_index(path: str | os.PathLike) -> ArlIndex:
    """Read the index records of an ARL file: grid, levels, variables and every time step.

    Reads the first index record (and its continuation records when the index text is longer
    than one record), then only the label of each following time step's first record.
    Raises :class:`ArlFormatError` naming the file and the byte for anything that is not ARL.
    """
    path = Path(path)
    with open(path, "rb") as fh:
        size = fh.seek(0, 2)
        fh.seek(0)
        first = fh.read(LABEL_BYTES + INDEX_FIXED_BYTES)
        if len(first) < LABEL_BYTES + INDEX_FIXED_BYTES:
            raise ArlFormatError(f"{path}: {size} bytes, too short for an ARL file (an index "
                                 "record alone is longer); the file is empty or truncated")
        t0, var, letters = _label(first[:LABEL_BYTES], path, 0)
        if var != "INDX":
            raise ArlFormatError(f"{path}: the first record is {var!r}, not an index record "
                                 "(INDX); not ARL packed meteorology written by HYSPLIT's rules")
        fixed = _parse_fixed(first[LABEL_BYTES:].decode("ascii", errors="replace"), path)
        nx = fixed["nx"] + _thousands(letters[0])
        ny = fixed["ny"] + _thousands(letters[1])
        nxy = nx * ny
        reclen = LABEL_BYTES + nxy
        if size % reclen:
            raise ArlFormatError(
                f"{path}: size {size} bytes is not a whole number of {reclen}-byte records "
                f"({nx} x {ny} grid); the file is truncated or corrupt. Re-create or re-download it.")
        n_index = max(1, math.ceil(fixed["lenh"] / nxy))
        text = b""
        for k in range(n_index):
            fh.seek(k * reclen)
            rec = fh.read(reclen)
            if k and _label(rec[:LABEL_BYTES], path, k * reclen)[1] != "INDX":
                raise ArlFormatError(f"{path}: index length {fixed['lenh']} bytes needs {n_index} "
                                     f"index records, but record {k + 1} is not INDX; corrupt file")
            text += rec[LABEL_BYTES:]
        levels, variables = _parse_levels(text[INDEX_FIXED_BYTES:].decode("ascii", "replace"),
                                          fixed["nz"], path)
        step_records = n_index + sum(len(v) for v in variables)
        times = []
        for pos in range(0, size, step_records * reclen):
            fh.seek(pos)
            t, var, _ = _label(fh.read(LABEL_BYTES), path, pos)
            if var != "INDX":
                raise ArlFormatError(
                    f"{path}: expected an index record at byte {pos} (every time step has "
                    f"{step_records} records) but found {var!r}; the time steps differ in their "
                    "variables, which HYSPLIT does not read")
            fh.seek(pos + LABEL_BYTES + 7)
            minutes = int(fh.read(2).decode("ascii", "replace").strip() or 0)
            times.append(t + pd.Timedelta(minutes=minutes))
        if size % (step_records * reclen):
            raise ArlFormatError(f"{path}: the last time step is incomplete (file truncated); "
                                 "re-create or re-download it")
    return ArlIndex(path=path, source=fixed["source"], nx=nx, ny=ny, nz=fixed["nz"],
                    projection=fixed["projection"], levels=tuple(levels),
                    variables=tuple(variables), times=tuple(times), index_records=n_index,
                    vertical=fixed["vertical"])


# --------------------------------------------------------------------------------------------
# Coverage check
# --------------------------------------------------------------------------------------------

def receptor_windows(receptors: pd.DataFrame, n_hours: int) -> pd.DataFrame:
    """First and last hour the met must cover for each receptor's backward run of ``|n_hours|``
    hours from release ``t``: ``floor(t) - |n_hours|`` to ``floor(t) + 1h`` (HYSPLIT interpolates
    the release hour to the next one). Columns ``receptor_id, start, end``."""
    t0 = pd.to_datetime(receptors["time"], utc=True).dt.tz_localize(None).dt.floor("h")
    span = pd.Timedelta(hours=abs(int(n_hours)))
    ids = (receptors["receptor_id"].astype(str).to_numpy() if "receptor_id" in receptors
           else receptors.index.astype(str).to_numpy())
    return pd.DataFrame({"receptor_id": ids, "start": (t0 - span).to_numpy(),
                         "end": (t0 + pd.Timedelta(hours=1)).to_numpy()})


def _covered_intervals(indexes: Sequence[ArlIndex]) -> list[tuple[pd.Timestamp, pd.Timestamp]]:
    """Time intervals the met covers: between consecutive time steps no further apart than the
    files' own record interval (the largest of the files' steps; 1 h if no file has two steps)."""
    times = sorted({t for ix in indexes for t in ix.times})
    steps = [s for s in (ix.step for ix in indexes) if s is not None]
    step = max(steps) if steps else pd.Timedelta(hours=1)
    out = [(t, t) for t in times]
    merged: list[tuple[pd.Timestamp, pd.Timestamp]] = []
    for a, b in out:
        if merged and a - merged[-1][1] <= step:
            merged[-1] = (merged[-1][0], b)
        else:
            merged.append((a, b))
    return merged


def _uncovered_hours(start, end, intervals) -> list[pd.Timestamp]:
    return [h for h in pd.date_range(start, end, freq="h")
            if not any(a <= h <= b for a, b in intervals)]


def _check_domain(receptors: pd.DataFrame, extent, what: str) -> None:
    lon0, lon1, lat0, lat1 = extent
    lon = receptors["lon"].to_numpy(float)
    lat = receptors["lat"].to_numpy(float)
    ids = (receptors["receptor_id"].astype(str).to_numpy() if "receptor_id" in receptors
           else receptors.index.astype(str))
    outside = (lon < lon0) | (lon > lon1) | (lat < lat0) | (lat > lat1)
    if outside.any():
        bad = [f"{i} ({x:.3f}E, {y:.3f}N)" for i, x, y in zip(ids[outside], lon[outside], lat[outside])]
        raise MetCoverageError(
            f"receptors outside the met domain {lon0}-{lon1}E x {lat0}-{lat1}N ({what}): "
            f"{'; '.join(bad[:10])}{' ...' if len(bad) > 10 else ''}. Widen the met domain "
            "(config `met`) or drop these sites.")


def _check_projected_domain(receptors: pd.DataFrame, ix: ArlIndex) -> None:
    """Receptors outside a projected (Lambert, polar, Mercator) grid: tested in grid coordinates,
    not against the lon/lat box around it (the corners of a projected grid are not a box)."""
    lon = receptors["lon"].to_numpy(float)
    lat = receptors["lat"].to_numpy(float)
    ids = (receptors["receptor_id"].astype(str).to_numpy() if "receptor_id" in receptors
           else receptors.index.astype(str))
    x, y = grid_xy(ix.projection, lat, lon, str(ix.path))
    outside = (x < 1) | (x > ix.nx) | (y < 1) | (y > ix.ny)
    if outside.any():
        bad = [f"{i} ({a:.3f}E, {b:.3f}N: grid x {gx:.1f}, y {gy:.1f})" for i, a, b, gx, gy
               in zip(ids[outside], lon[outside], lat[outside], x[outside], y[outside])]
        lon0, lon1, lat0, lat1 = ix.extent()
        raise MetCoverageError(
            f"receptors outside the met domain of {ix.path.name} (a projected {ix.nx} x {ix.ny} "
            f"grid within {lon0:.2f}-{lon1:.2f}E x {lat0:.2f}-{lat1:.2f}N): "
            f"{'; '.join(bad[:10])}{' ...' if len(bad) > 10 else ''}. Use met covering these "
            "sites (a larger WRF domain) or drop these sites.")


def _missing_listing(hours, files: list[Path], indexes, file_format: str | None) -> str:
    if file_format:
        names = {p.name for p in files}
        where = []
        for h in hours[:12]:
            fname = h.strftime(file_format)
            state = "given but lacks this hour" if fname in names else "file not given"
            where.append(f"{h:%Y-%m-%d %H:00} -> {fname} ({state})")
        return "; ".join(where)
    spans = ", ".join(f"{ix.path.name} {ix.times[0]:%Y-%m-%d %H:%M}..{ix.times[-1]:%Y-%m-%d %H:%M}"
                      f" every {ix.step or 'single time'}" for ix in indexes if ix.times)
    return (f"{', '.join(h.strftime('%Y-%m-%d %H:00') for h in hours[:12])} "
            f"(files given: {spans})")


def check_met_coverage(met_files: Iterable[str | os.PathLike], receptors: pd.DataFrame,
                       n_hours: int, bounds: dict | None = None,
                       file_format: str | None = None) -> list[ArlIndex]:
    """Check that the ARL met covers every receptor's run window and position.

    ``met_files`` is an explicit list (any names: ``gdas1.jan25.w1``, ``20250101_gz.arl``, ...);
    the time steps are read from each file's own index records, so any record interval (1, 2, 3,
    6 h) and any file period (daily, weekly, monthly) is checked alike: an hour is covered when it
    lies between two time steps no further apart than the files' record interval. ``n_hours``:
    hours back (positive, as config ``transport.n_hours``) or a HYSPLIT run duration (negative =
    backward). Raises :class:`MetCoverageError` naming the missing hours, the files and the
    receptors, or the receptors outside the met domain (``bounds`` = the met domain; else the
    grid of the first file), and :class:`ArlFormatError` naming a file that is not valid ARL.
    With ``file_format`` (e.g. ``"%Y%m%d_gz.arl"``) each missing hour is listed with the file
    that should hold it. Returns the files' indexes.
    """
    files = [Path(p) for p in met_files]
    missing_files = [str(p) for p in files if not p.exists()]
    if missing_files:
        raise MetCoverageError(
            f"met files missing: {', '.join(missing_files)}. Create them (demo: rule demo_met) or "
            "point inputs.met_dir at ARL files covering the period.")
    if not files:
        raise MetCoverageError("no met files given; set inputs.met_dir (config) to ARL files")
    indexes = [read_arl_index(p) for p in files]
    if not len(receptors):
        return indexes
    if bounds is not None:
        extent = (float(bounds["lon_min"]), float(bounds["lon_max"]),
                  float(bounds["lat_min"]), float(bounds["lat_max"]))
        _check_domain(receptors, extent, "config met")
    elif indexes[0].projection["grid_size"] == 0.0:
        _check_domain(receptors, indexes[0].extent(), f"grid of {files[0].name}")
    else:
        _check_projected_domain(receptors, indexes[0])
    windows = receptor_windows(receptors, n_hours)
    intervals = _covered_intervals(indexes)
    need: dict[pd.Timestamp, list[str]] = {}
    for rid, lo, hi in windows.itertuples(index=False):
        for h in _uncovered_hours(lo, hi, intervals):
            need.setdefault(h, []).append(rid)
    if need:
        hours = sorted(need)
        first = need[hours[0]][0]
        listing = _missing_listing(hours, files, indexes, file_format)
        raise MetCoverageError(
            f"met lacks {len(hours)} hour(s) needed by "
            f"{len({r for v in need.values() for r in v})} receptor(s): {listing}"
            f"{' ...' if len(hours) > 12 else ''} (e.g. receptor {first}). Add the ARL files of "
            "those UTC days.")
    return indexes


def met_files_for(indexes: Sequence[ArlIndex], start, end) -> list[Path]:
    """The files among ``indexes`` whose time steps a run from ``start`` to ``end`` reads: the
    steps inside the window and the last step at or before ``start`` and the first at or after
    ``end`` (HYSPLIT interpolates between the two steps around every hour)."""
    start, end = pd.Timestamp(start), pd.Timestamp(end)
    times = sorted({t for ix in indexes for t in ix.times})
    if not times:
        return []
    t = pd.DatetimeIndex(times)
    lo = t[t <= start].max() if (t <= start).any() else t.min()
    hi = t[t >= end].min() if (t >= end).any() else t.max()
    return sorted({ix.path for ix in indexes if any(lo <= x <= hi for x in ix.times)})


# --------------------------------------------------------------------------------------------
# Writer (index text over several records when it is longer than one record)
# --------------------------------------------------------------------------------------------

def _fortran_e14(value: float) -> str:
    """``value`` as Fortran ``E14.7`` (``0.ddddddddE+xx``), as HYSPLIT's packer writes labels."""
    if value == 0.0:
        return " 0.0000000E+00"
    mant, exp = f"{value:.6e}".split("e")
    return f"{'-' if value < 0 else ' '}0.{mant.lstrip('-').replace('.', '')}E{int(exp) + 1:+03d}"


def _fixed(value: float, width: int) -> str:
    """``value`` in ``width`` characters with as many decimals as fit, a leading ``0.`` written
    ``.`` (Fortran ``F`` reads it; HYSPLIT's index layout)."""
    for dec in range(width, -1, -1):
        text = f"{value:.{dec}f}"
        if text.startswith("0.") or text.startswith("-0."):
            text = text.replace("0.", ".", 1)
        if len(text) <= width:
            return text.rjust(width)
    raise ValueError(f"{value} does not fit in {width} characters of an ARL index record")


def _letters(n: int) -> str:
    return "9" if n < 1000 else string.ascii_uppercase[n // 1000 - 1]


def _arl_label(t: pd.Timestamp, level: int, var: str, nx: int, ny: int, exponent: int = 0,
               precision: float = 0.0, initial: float = 0.0) -> bytes:
    text = (f"{t.year % 100:02d}{t.month:2d}{t.day:2d}{t.hour:2d}{0:2d}{level:2d}"
            f"{_letters(nx)}{_letters(ny)}{var:<4}{exponent:4d}{_fortran_e14(precision)}"
            f"{_fortran_e14(initial)}")
    return text.encode("ascii")


def _checksum(packed: bytes) -> int:
    total = int(np.frombuffer(packed, np.uint8).sum(dtype=np.uint64))
    return 0 if total == 0 else (total - 1) % 255 + 1


def write_arl(path: str | os.PathLike, grid: MetGrid, pressure_levels: Sequence[float],
              steps: Iterable[tuple[pd.Timestamp, dict, dict]], source: str = "GZCB") -> Path:
    """Write lat-lon ARL meteorology on pressure levels, HYSPLIT's layout, to ``path`` (atomic).

    ``steps`` yields ``(time, surface, levels)``: ``surface`` maps :data:`SURFACE_FIELDS` to
    (ny, nx) arrays, ``levels`` maps :data:`LEVEL_FIELDS` to (nlev, ny, nx) arrays, in ARL units.
    Unlike ``arlmet`` 0.1.0b4, an index whose text is longer than one record (many levels on a
    small grid: ERA5's 37 levels) continues on further ``INDX`` records, as HYSPLIT's own packer
    writes it and reads it. Packing: ``arlmet.pack`` (HYSPLIT's PAKOUT), through :func:`packable`.
    """
    plev = [float(p) for p in pressure_levels]
    proj = [grid.lat_max, grid.lon_max, grid.res, grid.res, 0.0, 0.0, 0.0, 1.0, 1.0,
            grid.lat_min, grid.lon_min, 0.0]
    table = [(0.0, SURFACE_FIELDS)] + [(p, LEVEL_FIELDS) for p in plev]

    def fields(surface, levels):
        out = {(0, n): surface[n] for n in SURFACE_FIELDS}
        for k in range(1, len(table)):
            out.update({(k, n): np.asarray(levels[n])[k - 1] for n in LEVEL_FIELDS})
        return out

    return write_arl_grid(path, grid.nx, grid.ny, proj, VERTICAL_PRESSURE, table,
                          ((t, fields(sfc, lev)) for t, sfc, lev in steps), source)


def write_arl_grid(path: str | os.PathLike, nx: int, ny: int, projection: Sequence[float],
                   vertical: int, table: Sequence[tuple[float, Sequence[str]]],
                   steps: Iterable[tuple[pd.Timestamp, dict]], source: str = "GZCB") -> Path:
    """Write ARL meteorology on any grid HYSPLIT reads, to ``path`` (atomic).

    ``projection``: the 12 grid parameters of the index record in file order
    (:data:`PROJECTION_FIELDS`: POLE_LAT, POLE_LON, REF_LAT, REF_LON, SIZE, ORIENT, TANG_LAT,
    SYNC_XP, SYNC_YP, SYNC_LAT, SYNC_LON, reserved; lat-lon grids: SIZE = 0 and REF_LAT/REF_LON =
    spacing). ``vertical``: :data:`VERTICAL_SIGMA` (1), ``_PRESSURE`` (2), ``_TERRAIN`` (3) or
    ``_HYBRID`` (4). ``table``: per level (surface first) its height value and variable names.
    ``steps`` yields ``(time, fields)`` with ``fields[(level, name)]`` a (ny, nx) array in ARL
    units (winds on projected grids: grid-relative, as HYSPLIT reads them). The index text
    continues over several ``INDX`` records when longer than one record.
    """
    import arlmet

    from gzcarbon.atomic import atomic_write

    nxy = nx * ny
    proj = [float(v) for v in projection]
    if len(proj) != 12:
        raise ValueError(f"{path}: an ARL grid needs 12 grid parameters, got {len(proj)}")

    def records(t, fields):
        out, sums = [], []
        for k, (_, names) in enumerate(table):
            for name in names:
                data = np.asarray(fields[(k, name)], np.float32)
                if data.shape != (ny, nx):
                    raise ValueError(f"{path}: field {name} at level {k} has shape {data.shape},"
                                     f" the grid is {(ny, nx)}")
                packed, prec, exp, v0 = arlmet.pack(packable(data))
                raw = packed.tobytes()
                out.append(_arl_label(t, k, name, nx, ny, exp, prec, v0) + raw)
                sums.append(_checksum(raw))
        return out, sums

    def index(t, sums):
        it = iter(sums)
        body = "".join(_fixed(h, 6) + f"{len(names):2d}" + "".join(
            f"{n:<4}{next(it):3d} " for n in names) for h, names in table)
        head = (f"{source[:4]:<4}{0:3d}{t.minute:2d}" + "".join(_fixed(v, 7) for v in proj)
                + f"{nx % 1000:3d}{ny % 1000:3d}{len(table):3d}{int(vertical):2d}")
        text = (head + f"{INDEX_FIXED_BYTES + len(body):4d}" + body).encode("ascii")
        n = max(1, math.ceil(len(text) / nxy))
        return [_arl_label(t, 0, "INDX", nx, ny) + text[k * nxy:(k + 1) * nxy].ljust(nxy)
                for k in range(n)]

    def _write(tmp):
        with open(tmp, "wb") as fh:
            for t, fields in steps:
                recs, sums = records(pd.Timestamp(t), fields)
                for rec in index(pd.Timestamp(t), sums) + recs:
                    fh.write(rec)

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(path, _write)
    return path


def read_arl_field(path: str | os.PathLike, time, variable: str, level: int = 0) -> np.ndarray:
    """Unpack one field (ny, nx) of an ARL file, located through :func:`read_arl_index` (works for
    index text over several records, which ``arlmet`` 0.1.0b4 cannot open)."""
    import arlmet

    ix = read_arl_index(path)
    t = pd.Timestamp(time)
    if t not in ix.times:
        raise KeyError(f"{path}: no time step {t} (has {ix.times[0]}..{ix.times[-1]})")
    names = [(k, v) for k, vs in enumerate(ix.variables) for v in vs]
    if (level, variable) not in names:
        raise KeyError(f"{path}: no {variable} at level {level}")
    step = ix.index_records + len(names)
    pos = (ix.times.index(t) * step + ix.index_records + names.index((level, variable))) \
        * ix.record_length
    with open(path, "rb") as fh:
        fh.seek(pos)
        raw = fh.read(ix.record_length)
    lab = raw[:LABEL_BYTES].decode("ascii")
    exp, prec, v0 = int(lab[18:22]), float(lab[22:36]), float(lab[36:50])
    return arlmet.unpack(raw[LABEL_BYTES:], ix.nx, ix.ny, prec, exp, v0)


def utc_day_groups(times, days, label: str, hint: str) -> list:
    """``[(day, positions)]`` of the time steps ``times`` grouped by UTC day, only the ``days``
    asked for (all when ``None``); a day asked for without any step raises ValueError naming
    ``label`` (the input) and ``hint`` (what to add). Used by every met converter."""
    times = pd.DatetimeIndex(times)
    groups = pd.Series(range(len(times)), index=times).groupby(times.normalize())
    wanted = None if days is None else {pd.Timestamp(str(d)).normalize() for d in days}
    if wanted is not None:
        absent = sorted(wanted - set(groups.groups))
        if absent:
            raise ValueError(f"{label}: no time step on UTC day(s) "
                             f"{', '.join(f'{d:%Y-%m-%d}' for d in absent)} (the data cover "
                             f"{times.min()} .. {times.max()}); {hint}")
    return [(pd.Timestamp(day), idx.to_numpy()) for day, idx in groups
            if wanted is None or pd.Timestamp(day) in wanted]
