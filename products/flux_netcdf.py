"""The monthly CF-1.8 flux product `{R}/flux_{month}.nc`.

Layout pinned by workflow/report/flux_product.cdl (checked by products.cdl_template). Built from
`{R}/posterior.nc` and `{R}/districts.csv` (docs/formats.md, "Inversion outputs in detail") and
the district GeoJSON (adcodes, Chinese names).
"""

from __future__ import annotations

import json
import logging
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr
import yaml

from gzcarbon.atomic import atomic_write
from gzcarbon.config import ProductsConfig
from gzcarbon.districts import read_districts
from gzcarbon.grid import Grid, GridError
from gzcarbon.names import CITY, GASES
from gzcarbon.provenance import config_hash, input_list, package_versions

from .cdl_template import check_against_template
from .inputs import ProductInputError, load_districts_table, load_posterior
from .outer import is_nested, nested_template, outer_product_variables
from .settings import INSTITUTION

log = logging.getLogger(__name__)

#: defaults of config ``products.contact`` and ``products.references``
CONTACT = ProductsConfig().contact
REFERENCES = ProductsConfig().references

TIME_UNITS = "hours since 2000-01-01 00:00:00"
FLUX_STD = "surface_upward_mole_flux_of_carbon_dioxide"
FLUX_UNITS = "umol m-2 s-1"
PRIOR_SOURCE = "(inventory, power point sources and biosphere)"
#: Per gas: CF standard name, units of the product's flux and the factor from the pipeline's flux
#: units (gzcarbon.names.GASES) to them. CF (table v93) has a surface mole flux only for CO2; CH4 and
#: CO are written as mass fluxes, kg m-2 s-1 = nmol m-2 s-1 x molar mass x 1e-12, under the names of
#: their emission (positive = emission; a negative posterior value is net uptake).
GAS_CF = {
    "co2": (FLUX_STD, FLUX_UNITS, 1.0, PRIOR_SOURCE),
    "ch4": ("tendency_of_atmosphere_mass_content_of_methane_due_to_emission", "kg m-2 s-1",
            GASES["ch4"]["molar_mass"] * 1e-12, "(CH4 inventory by sector)"),
    "co": ("tendency_of_atmosphere_mass_content_of_carbon_monoxide_due_to_emission", "kg m-2 s-1",
           GASES["co"]["molar_mass"] * 1e-12, "(combustion sectors of the CO2 prior x CO/CO2 emission ratios)"),
}


def gas_template(template, gas: str):
    """The CDL layout of a gas's product: the CO2 template (a path) with the gas's standard name,
    units and label (`GAS_CF`); the CO2 template itself for ``co2``."""
    from .cdl_template import parse_cdl

    text = Path(template).read_text(encoding="utf-8")
    if gas == "co2":
        return parse_cdl(text)
    std, units, _, source = GAS_CF[gas]
    text = (text.replace(FLUX_STD, std).replace(f'"{FLUX_UNITS}"', f'"{units}"')
            .replace("CO2", GASES[gas]["label"]).replace(PRIOR_SOURCE, source))
    return parse_cdl(text)
WGS84_WKT = (
    'GEOGCRS["WGS 84",DATUM["World Geodetic System 1984",ELLIPSOID["WGS 84",6378137,'
    '298.257223563,LENGTHUNIT["metre",1]]],PRIMEM["Greenwich",0,ANGLEUNIT["degree",'
    '0.0174532925199433]],CS[ellipsoidal,2],AXIS["geodetic latitude (Lat)",north,'
    'ORDER[1],ANGLEUNIT["degree",0.0174532925199433]],AXIS["geodetic longitude (Lon)",east,'
    'ORDER[2],ANGLEUNIT["degree",0.0174532925199433]],ID["EPSG",4326]]'
)


def posterior_grid(post: xr.Dataset, source) -> Grid:
    """The state grid of ``{R}/posterior.nc`` from its cell centres (gzcarbon.grid.Grid).

    A file whose centres are not a regular grid of square cells raises ProductInputError naming it.
    """
    try:
        return Grid.from_centres(post["lon"].values, post["lat"].values, what=str(source))
    except GridError as err:
        raise ProductInputError(f"{err}; the flux product needs the regular state grid "
                                "(rerun the inversion).") from err


def block_edges(edges: np.ndarray, n_blocks: int) -> np.ndarray:
    """Edges of `n_blocks` coarse blocks of ceil(n_cells / n_blocks) cells (last may be partial)."""
    n = len(edges) - 1
    size = -(-n // n_blocks)
    idx = [min(i * size, n) for i in range(n_blocks + 1)]
    if idx[-2] >= n:
        raise ProductInputError(
            f"{n_blocks} coarse blocks do not fit {n} cells; check inversion.coarse_block."
        )
    return edges[idx]


def config_yaml(config: dict) -> str:
    """The run's configuration as YAML (keys sorted), stored in the product so that the run can be
    reproduced from its output: write ``ds.attrs["config_yaml"]`` to a file and pass it with
    ``snakemake --configfile``. ``config_sha256`` is the hash of the same mapping
    (gzcarbon.provenance.config_hash)."""
    return yaml.safe_dump(json.loads(json.dumps(config, default=str)), sort_keys=True, allow_unicode=True)


def _bounds(edges: np.ndarray) -> np.ndarray:
    return np.stack([edges[:-1], edges[1:]], axis=1)


def _period(post: xr.Dataset) -> tuple[pd.Timestamp, pd.Timestamp]:
    t = pd.DatetimeIndex(post["time"].values)
    start = pd.Timestamp(post.attrs.get("period_start", t[0]))
    end = pd.Timestamp(post.attrs.get("period_end", t[-1] + pd.Timedelta(hours=1)))
    return start.tz_localize(None) if start.tzinfo else start, end.tz_localize(None) if end.tzinfo else end


def _district_meta(districts: pd.DataFrame, geojson) -> tuple[list[str], list[int], list[str]]:
    names = [d for d in districts.index if d != CITY]
    if geojson is None:
        return names, [-1] * len(names), names
    known = {d.name_en: (i, d) for i, d in enumerate(read_districts(geojson))}
    names.sort(key=lambda n: known[n][0] if n in known else len(known))
    codes = [known[n][1].adcode if n in known else -1 for n in names]
    zh = [known[n][1].name if n in known else n for n in names]
    return names, codes, zh


def build_flux_dataset(
    posterior_path,
    districts_path,
    districts_geojson=None,
    *,
    month: str,
    config: dict | None = None,
    inputs=(),
    demo: bool | None = None,
    institution: str = INSTITUTION,
    contact: str = CONTACT,
    references: str = REFERENCES,
    outer_csv=None,
) -> xr.Dataset:
    """The flux product as an xarray Dataset (values, attrs; encodings set by the writer).

    A nested run (posterior.nc with the outer cells, config ``outer_grid``) also carries the outer
    cells on their own grid and the totals of ``outer_csv`` (`products.outer.outer_product_variables`);
    a nested posterior without ``outer_csv`` is an error.

    ``config``: the run's configuration (hashed and stored in the attributes);
    ``institution``, ``contact``, ``references``: config ``products.*`` (defaults: the config's).

    CF-1.8 as checked by the IOOS compliance-checker (tests/products/test_cf_check.py): the one
    latitude/longitude pair of the grid mapping is ``lat``/``lon`` (the coarse blocks' centres
    carry units but no standard name), and the period totals and block σ, which have no time
    dimension, describe the period in their long names (``cell_methods`` names only ``area``)."""
    post = load_posterior(posterior_path)
    table = load_districts_table(districts_path)
    gas = str(post.attrs.get("gas", "co2"))
    flux_std, flux_units, to_units, prior_source = GAS_CF[gas]
    label = GASES[gas]["label"]
    start, end = _period(post)
    tsel = (post["time"].values >= np.datetime64(start)) & (post["time"].values < np.datetime64(end))
    if not tsel.any():
        raise ProductInputError(
            f"{posterior_path}: no hourly time step in [period_start, period_end) = [{start}, {end})."
        )
    prior = post["prior_flux"].isel(time=tsel)
    poster = post["posterior_flux"].isel(time=tsel)
    times = pd.DatetimeIndex(prior["time"].values)
    lat = post["lat"].values.astype(float)
    lon = post["lon"].values.astype(float)
    grid = posterior_grid(post, posterior_path)
    lat_e, lon_e = grid.lat_edges, grid.lon_edges
    sp = post["prior_sigma_block"].values.astype(float) * to_units
    sq = post["posterior_sigma_block"].values.astype(float) * to_units
    blat_e = block_edges(lat_e, sp.shape[0])
    blon_e = block_edges(lon_e, sp.shape[1])
    with np.errstate(divide="ignore", invalid="ignore"):
        ur = np.where(sp > 0, 1.0 - sq / sp, np.nan)

    names, codes, zh = _district_meta(table, districts_geojson)
    dt = table.loc[names]
    city = table.loc[CITY]

    t_hours = (times - pd.Timestamp("2000-01-01")) / pd.Timedelta(hours=1)
    t_hours = np.asarray(t_hours, dtype=float)
    tu = {"units": TIME_UNITS, "calendar": "standard"}

    def flux_attrs(long_name):
        return {"standard_name": flux_std, "long_name": long_name, "units": flux_units,
                "grid_mapping": "crs", "cell_methods": "time: mean area: mean",
                "coordinates": "lat lon"}

    def sigma_attrs(long_name):
        return {"standard_name": flux_std + " standard_error", "long_name": long_name,
                "units": flux_units, "grid_mapping": "crs", "cell_methods": "area: mean"}

    def total(long_name, summed=False):
        a = {"long_name": long_name, "units": "t"}
        if summed:
            a["cell_methods"] = "area: sum"
        return a

    ds = xr.Dataset(
        {
            "time_bnds": (("time", "nv"), np.stack([t_hours, t_hours + 1.0], axis=1), {}),
            "lat_bnds": (("lat", "nv"), _bounds(lat_e), {}),
            "lon_bnds": (("lon", "nv"), _bounds(lon_e), {}),
            "crs": ((), np.int32(0), {
                "grid_mapping_name": "latitude_longitude",
                "longitude_of_prime_meridian": 0.0,
                "semi_major_axis": 6378137.0,
                "inverse_flattening": 298.257223563,
                "epsg_code": "EPSG:4326",
                "crs_wkt": WGS84_WKT,
            }),
            "prior_flux": (("time", "lat", "lon"), (prior.values * to_units).astype(np.float32),
                           flux_attrs(f"prior {label} flux {prior_source}")),
            "posterior_flux": (("time", "lat", "lon"), (poster.values * to_units).astype(np.float32),
                               flux_attrs(f"posterior {label} flux (analytical Bayesian inversion)")),
            "lat_block_bnds": (("lat_block", "nv"), _bounds(blat_e), {}),
            "lon_block_bnds": (("lon_block", "nv"), _bounds(blon_e), {}),
            "prior_flux_sigma_block": (("lat_block", "lon_block"), sp.astype(np.float32), sigma_attrs(
                "prior 1-sigma uncertainty of the period-mean flux of each coarse block")),
            "posterior_flux_sigma_block": (("lat_block", "lon_block"), sq.astype(np.float32), sigma_attrs(
                "posterior 1-sigma uncertainty of the period-mean flux of each coarse block (exact)")),
            "uncertainty_reduction_block": (("lat_block", "lon_block"), ur.astype(np.float32), {
                "long_name": "uncertainty reduction 1 - posterior_sigma / prior_sigma of each coarse block",
                "units": "1", "grid_mapping": "crs"}),
            "district_adcode": (("district",), np.asarray(codes, dtype=np.int32),
                                {"long_name": "administrative division code"}),
            "district_name": (("district",), np.asarray(zh, dtype=object),
                              {"long_name": "district name (Chinese)"}),
            "prior_district_total": (("district",), dt["prior_t"].to_numpy(float),
                                     total(f"prior {label} emission of the district over the period", True)),
            "prior_district_total_sigma": (("district",), dt["prior_sigma_t"].to_numpy(float), total(
                "1-sigma uncertainty of prior_district_total")),
            "posterior_district_total": (("district",), dt["posterior_t"].to_numpy(float), total(
                f"posterior {label} emission of the district over the period", True)),
            "posterior_district_total_sigma": (("district",), dt["posterior_sigma_t"].to_numpy(float), total(
                "1-sigma uncertainty of posterior_district_total (exact)")),
            "truth_district_total": (("district",), dt["truth_t"].to_numpy(float), total(
                f"true {label} emission of the district over the period (demo world only)")),
            "prior_city_total": ((), float(city["prior_t"]), total(
                f"prior {label} emission of Guangzhou over the period")),
            "prior_city_total_sigma": ((), float(city["prior_sigma_t"]), total(
                "1-sigma uncertainty of prior_city_total")),
            "posterior_city_total": ((), float(city["posterior_t"]), total(
                f"posterior {label} emission of Guangzhou over the period")),
            "posterior_city_total_sigma": ((), float(city["posterior_sigma_t"]), total(
                "1-sigma uncertainty of posterior_city_total (exact)")),
            "truth_city_total": ((), float(city["truth_t"]), total(
                f"true {label} emission of Guangzhou over the period (demo world only)")),
        },
        coords={
            "time": ("time", t_hours, {"standard_name": "time",
                                       "long_name": "start of the hourly averaging interval (UTC)",
                                       **tu, "axis": "T", "bounds": "time_bnds"}),
            "lat": ("lat", lat, {"standard_name": "latitude", "long_name": "latitude of the cell centre",
                                 "units": "degrees_north", "axis": "Y", "bounds": "lat_bnds"}),
            "lon": ("lon", lon, {"standard_name": "longitude", "long_name": "longitude of the cell centre",
                                 "units": "degrees_east", "axis": "X", "bounds": "lon_bnds"}),
            "lat_block": ("lat_block", 0.5 * (blat_e[:-1] + blat_e[1:]), {
                "long_name": "latitude of the coarse block centre",
                "units": "degrees_north", "bounds": "lat_block_bnds"}),
            "lon_block": ("lon_block", 0.5 * (blon_e[:-1] + blon_e[1:]), {
                "long_name": "longitude of the coarse block centre",
                "units": "degrees_east", "bounds": "lon_block_bnds"}),
            "district": ("district", np.asarray(names, dtype=object),
                         {"long_name": "district key (pinyin name)"}),
        },
    )
    outer_attrs = {}
    if is_nested(post):
        if outer_csv is None:
            raise ProductInputError(f"{posterior_path}: a nested run (outer cells) but no outer.csv was given; "
                                    "the rule flux_product needs input outer (docs/formats.md)")
        data, coords, outer_attrs = outer_product_variables(post, outer_csv, tsel, to_units, flux_std, flux_units,
                                                            label)
        ds = ds.assign_coords({k: v for k, v in coords.items()})
        for k, v in data.items():
            ds[k] = v
    now = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    demo_flag = demo if demo is not None else bool(np.isfinite(city["truth_t"]))
    ds.attrs = {
        "Conventions": "CF-1.8",
        "title": f"Guangzhou {label} flux: prior and posterior of an urban analytical Bayesian inversion",
        "institution": str(institution),
        "source": "HYSPLIT-STILT footprints (pystilt) and analytical Bayesian inversion of tower "
                  f"and urban station {label}",
        "references": str(references),
        "contact": str(contact) or "not set (config products.contact)",
        "product_version": "1",
        "comment": "Flux convention: positive upward (emission). Hourly values cover [time, time + 1 h). "
                   "District totals over [period_start, period_end).",
        "month": str(month),
        "period_start": start.isoformat(),
        "period_end": end.isoformat(),
        "time_coverage_start": times[0].isoformat() + "Z",
        "time_coverage_end": (times[-1] + pd.Timedelta(hours=1)).isoformat() + "Z",
        "geospatial_lat_min": float(lat_e[0]),
        "geospatial_lat_max": float(lat_e[-1]),
        "geospatial_lon_min": float(lon_e[0]),
        "geospatial_lon_max": float(lon_e[-1]),
        "demo": "true" if demo_flag else "false",
        "config_sha256": config_hash(config or {}),
        "config_yaml": config_yaml(config or {}),
        "package_versions": package_versions(),
        "input_files": input_list(inputs or [posterior_path, districts_path]
                                  + ([districts_geojson] if districts_geojson else [])),
        "date_created": now,
        "history": f"{now} products.flux_netcdf.write_flux_product",
        **outer_attrs,
    }
    post.close()
    return ds


def _encoding(ds: xr.Dataset) -> dict:
    enc = {}
    for name, v in ds.variables.items():
        e: dict = {}
        if v.dtype.kind == "f" and name not in ds.coords and not name.endswith("_bnds"):
            e["_FillValue"] = np.float32(np.nan) if v.dtype == np.float32 else np.nan
        else:
            e["_FillValue"] = None
        if v.dtype == object:
            e["dtype"] = str
            e.pop("_FillValue")
        if name == "district_adcode":
            e["_FillValue"] = np.int32(-1)
        if v.ndim == 3:
            e.update(zlib=True, complevel=4, shuffle=True,
                     chunksizes=(min(24, v.shape[0]), v.shape[1], v.shape[2]))
        enc[name] = e
    return enc


def write_flux_product(
    posterior_path,
    districts_path,
    out_path,
    districts_geojson=None,
    *,
    month: str,
    config: dict | None = None,
    inputs=(),
    demo: bool | None = None,
    template=None,
    institution: str = INSTITUTION,
    contact: str = CONTACT,
    references: str = REFERENCES,
    outer_csv=None,
    flash: dict | None = None,
) -> Path:
    """Build the product and write it atomically to `out_path`; returns the path.

    With `template` (a CDL path), the written file is checked against it before it replaces
    `out_path`; a mismatch raises ValueError listing the differences and leaves no output.
    ``flash``: a flash's status (`products.annual.flash_status`): the product is marked
    preliminary (title, cut-off, coverage; `products.annual.flash_attributes`) and checked against
    the template with flux_product_flash.cdl.
    """
    ds = build_flux_dataset(posterior_path, districts_path, districts_geojson, month=month,
                            config=config, inputs=inputs, demo=demo, institution=institution,
                            contact=contact, references=references, outer_csv=outer_csv)
    if flash is not None:
        from .annual import FLASH_TITLE_PREFIX, flash_attributes

        ds.attrs.update(flash_attributes(flash), title=FLASH_TITLE_PREFIX + ds.attrs["title"])
    with xr.open_dataset(posterior_path) as post:
        gas = str(post.attrs.get("gas", "co2"))
    out = Path(out_path)
    nested = "olat" in ds.dims

    def write(tmp: Path) -> None:
        ds.to_netcdf(tmp, format="NETCDF4", engine="netcdf4", encoding=_encoding(ds))
        if template is not None:
            tpl = gas_template(template, gas)
            tpl = nested_template(tpl) if nested else tpl
            if flash is not None:
                from .annual import flash_template

                tpl = flash_template(tpl)
            problems = check_against_template(tmp, tpl)
            if problems:
                raise ValueError(f"{out}: the product does not match the layout template {template}:\n  "
                                 + "\n  ".join(problems))

    atomic_write(out, write)
    log.info("wrote %s (%d hours, %d x %d cells, %d districts)", out, ds.sizes["time"],
             ds.sizes["lat"], ds.sizes["lon"], ds.sizes["district"])
    return out


def open_flux_product(path_or_month, results_dir="results") -> xr.Dataset:
    """Open a flux product by path or by month ('2025-01' -> results/2025-01/flux_2025-01.nc).

    Times are decoded to datetime64 (UTC); lat/lon are cell centres with bounds.
    """
    p = Path(path_or_month)
    if not p.suffix == ".nc":
        month = str(path_or_month)
        p = Path(results_dir) / month / f"flux_{month}.nc"
    if not p.exists():
        raise FileNotFoundError(f"{p}: no flux product; run `snakemake --cores 2` for that month.")
    return xr.open_dataset(p)


def district_table(ds: xr.Dataset) -> pd.DataFrame:
    """District totals of a flux product as a DataFrame (kt CO2), city total as the last row."""
    cols = {"prior_kt": "prior_district_total", "prior_sigma_kt": "prior_district_total_sigma",
            "posterior_kt": "posterior_district_total",
            "posterior_sigma_kt": "posterior_district_total_sigma", "truth_kt": "truth_district_total"}
    df = pd.DataFrame({k: ds[v].values / 1e3 for k, v in cols.items()},
                      index=pd.Index([str(d) for d in ds["district"].values], name="district"))
    df.loc[CITY] = [float(ds[v.replace("district", "city")]) / 1e3 for v in cols.values()]
    return df
