"""Turn the pipeline's files into the inversion problem (state vector, H, y, Q, R).

State: a flux *correction* (µmol m-2 s-1) constant within each step of ``time_step_hours`` on every
cell, ordered ``step * n_cells + iy * nx + ix`` like the Jacobian, followed by one background offset
(ppm) per UTC period day. The prior of the correction is 0; its σ is
``prior_rel_sigma · |mean non-power prior flux over the step| + power_rel_sigma · |mean power-sector
prior flux| + prior_floor_sigma`` (without a power field: ``prior_rel_sigma · |mean prior| + floor``) and
its correlations are
exponential in space (``corr_length_km``) and time (``corr_time_hours``, times of day correlated by
``diurnal_corr``); offsets have σ ``bg_sigma_ppm``. With the model boundary
(``stations.background.method: model``: selected.csv carries ``bg_share_N/E/S/W``) the daily offset
becomes a boundary bias per UTC day and inflow side, weighted by the receptor's share of particles
through that side, σ ``boundary_bias_sigma_ppm`` (:func:`background_columns`, docs/boundary.md).

Nested state (config ``outer_grid``, `inversion.outer`): every step holds the ny·nx inner cells and
then the coarse outer cells outside the inner box (``step * (ny·nx + n_outer) + cell``, the
Jacobian's numbering); the outer cells' prior is ``flux_outer`` of prior.nc, their σ
``outer_rel_sigma · |step mean| + outer_floor_sigma``, correlated on the outer grid
(``outer_corr_length_km``) and not with the inner cells.

Optionally the state ends with scaling factors (`inversion.factors`): one per district for the whole
period on the diffuse anthropogenic prior (σ ``district_scale_sigma``) and one per local day for the
domain's biospheric uptake (σ ``bio_day_scale_sigma``); their Jacobian columns are exact on the hourly
axis (H_hourly · g_j).

Observations are the rows of ``selected.csv`` matched to receptors by site and hour (a receptor is
released at ``obs time + 30 min``). The prior enhancement is computed exactly on the hourly axis,
``H_hourly · x_a_hourly``, so

    y = observed − background − H_hourly x_a,     H = [H_hourly P | day indicator],

where P maps step corrections to hours (H_step = H_hourly P, formed by re-indexing the columns).
R is diagonal: value_std_dev² + obs_sigma_ppm² + (obs_rel_sigma · |H_hourly x_a|)² + background_sigma², or (``obs_corr_hours`` > 0)
the mismatch part correlated exponentially in time within each site (:func:`obs_error_covariance`).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import pandas as pd
import scipy.sparse as sp

from gzcarbon.names import SELECTED_COLUMNS

from .covariance import KroneckerCovariance
from .settings import inversion_config

log = logging.getLogger(__name__)

#: inflow sides of the model boundary's bias terms (transport.boundary.SIDES; selected.csv columns
#: bg_share_<side>)
BOUNDARY_SIDES = ("N", "E", "S", "W")



def step_matrix(n_hours: int, n_cells: int, step_hours: int) -> sp.csr_matrix:
    """P (n_hours·n_cells × n_step·n_cells): hourly element (h, c) ← step element (h // step, c)."""
    n_step = -(-n_hours // step_hours)
    rows = np.arange(n_hours * n_cells)
    h, c = np.divmod(rows, n_cells)
    cols = (h // step_hours) * n_cells + c
    return sp.csr_matrix((np.ones(rows.size), (rows, cols)), shape=(n_hours * n_cells, n_step * n_cells))


def step_jacobian(H_hourly, n_cells: int, step_hours: int) -> sp.csr_matrix:
    """H_hourly · P without forming P: column (h, c) goes to (h // step, c), duplicates summed."""
    H = sp.coo_matrix(H_hourly)
    n_hours = H.shape[1] // n_cells
    if n_hours * n_cells != H.shape[1]:
        raise ValueError(f"Jacobian has {H.shape[1]} columns, not a multiple of n_cells = {n_cells}")
    n_step = -(-n_hours // step_hours)
    h, c = np.divmod(H.col.astype(np.int64), n_cells)
    cols = (h // step_hours) * n_cells + c
    out = sp.csr_matrix((H.data, (H.row, cols)), shape=(H.shape[0], n_step * n_cells))
    out.sum_duplicates()
    return out


def _step_mean(f: np.ndarray, step_hours: int) -> np.ndarray:
    """Mean of an hourly field (n_hours, ny, nx) over every step (the last step may be partial)."""
    nh, ny, nx = f.shape
    n_step = -(-nh // step_hours)
    pad = n_step * step_hours - nh
    f = np.asarray(f, dtype=np.float64)
    if pad:
        f = np.concatenate([f, np.full((pad, ny, nx), np.nan)])
    return np.nanmean(f.reshape(n_step, step_hours, ny, nx), axis=1)


def _day_mean(f: np.ndarray, step_hours: int) -> np.ndarray:
    """Mean of an hourly field over each UTC day, repeated for every step of that day (n_step, ny, nx)."""
    nh, ny, nx = f.shape
    n_day = -(-nh // 24)
    pad = n_day * 24 - nh
    f = np.asarray(f, dtype=np.float64)
    if pad:
        f = np.concatenate([f, np.full((pad, ny, nx), np.nan)])
    day = np.nanmean(f.reshape(n_day, 24, ny, nx), axis=1)
    n_step = -(-nh // step_hours)
    return np.repeat(day, 24 // step_hours, axis=0)[:n_step]


def prior_sigma(prior_flux: np.ndarray, step_hours: int, rel: float, floor: float,
                power_flux: np.ndarray | None = None, power_rel: float = 0.1,
                bio_flux: np.ndarray | None = None, anthro_basis: str = "step") -> np.ndarray:
    """Prior σ(step, iy, ix) of the flux correction.

    Without ``power_flux``: rel · |mean of the hourly prior over the step| + floor.
    With ``power_flux`` (the prior's power-sector part, same shape): the power plants' point sources
    are known much better (metered generation × emission factor) than the diffuse sectors, so

        σ = rel · |mean(prior − power)| + power_rel · |mean(power)| + floor.

    With ``bio_flux`` too, the biosphere gets its own term rel · |mean(bio)| (so uptake does not cancel
    the anthropogenic σ), and ``anthro_basis="day"`` takes the anthropogenic term from the *daily* mean
    |prior − power − bio| instead of the step mean: errors of a temporal profile move emissions between
    times of day, so their size scales with the day's emissions — a night step whose prior is small can
    still be corrected by as much as an afternoon step (what ``diurnal_corr`` < 0 needs to conserve a
    daily total in flux units).
    """
    f = np.asarray(prior_flux, dtype=np.float64)
    if anthro_basis not in ("step", "day"):
        raise ValueError(f"config inversion.sigma_basis = {anthro_basis!r}: use step or day")
    if power_flux is None:
        return rel * np.abs(_step_mean(f, step_hours)) + floor
    p = np.asarray(power_flux, dtype=np.float64)
    if p.shape != f.shape:
        raise ValueError(f"prior flux_power has shape {p.shape}, expected {f.shape} like `flux`")
    out = float(power_rel) * np.abs(_step_mean(p, step_hours)) + floor
    if bio_flux is None:
        return out + rel * np.abs(_step_mean(f - p, step_hours))
    b = np.asarray(bio_flux, dtype=np.float64)
    if b.shape != f.shape:
        raise ValueError(f"prior flux_bio has shape {b.shape}, expected {f.shape} like `flux`")
    anthro = f - p - b
    a = np.abs(_day_mean(anthro, step_hours)) if anthro_basis == "day" else np.abs(_step_mean(anthro, step_hours))
    return out + rel * (a + np.abs(_step_mean(b, step_hours)))


def _utc_naive(t) -> pd.DatetimeIndex:
    t = pd.DatetimeIndex(pd.to_datetime(t, utc=True))
    return t.tz_localize(None)


def read_selected(path) -> pd.DataFrame:
    """Read ``obs/selected.csv``; check the columns the inversion needs."""
    try:
        df = pd.read_csv(path)
    except Exception as exc:  # noqa: BLE001
        raise ValueError(f"{path}: cannot be read as CSV ({exc})") from exc
    missing = [c for c in SELECTED_COLUMNS if c not in df.columns]
    if missing:
        raise ValueError(f"{path}: missing column(s) {missing}; selected.csv needs {list(SELECTED_COLUMNS)} "
                         "(docs/formats.md); rerun rule select")
    df = df.copy()
    df["time"] = _utc_naive(df["time"])
    df["site"] = df["site"].astype(str)
    for c in ("value", "background"):
        bad = ~np.isfinite(df[c].to_numpy(float))
        if bad.any():
            raise ValueError(f"{path}: column `{c}` has {int(bad.sum())} missing/non-finite values; "
                             "drop those rows in the selection")
    return df


def match_observations(selected: pd.DataFrame, receptors: pd.DataFrame, missing=None) -> pd.DataFrame:
    """Attach the Jacobian row of each observation (receptor released at obs time + 30 min).

    Observations without a receptor, or whose receptor has no footprint, are dropped (logged).
    """
    rec = pd.DataFrame({
        "site": receptors["site"].astype(str).to_numpy(),
        "hour": _utc_naive(receptors["time"]).floor("h"),
        "row": np.arange(len(receptors)),
    })
    if missing is not None:
        rec = rec[~np.asarray(missing, bool)]
    rec = rec.drop_duplicates(["site", "hour"])
    obs = selected.copy()
    obs["hour"] = pd.DatetimeIndex(obs["time"]).floor("h")
    merged = obs.merge(rec, on=["site", "hour"], how="left")
    lost = merged["row"].isna()
    if lost.any():
        log.warning("%d observation(s) without a receptor/footprint were dropped (e.g. %s %s)",
                    int(lost.sum()), merged.loc[lost, "site"].iloc[0], merged.loc[lost, "time"].iloc[0])
    merged = merged[~lost].copy()
    merged["row"] = merged["row"].astype(np.int64)
    return merged.drop(columns="hour").sort_values(["time", "site"]).reset_index(drop=True)


def obs_error_covariance(sites, times, value_std_dev, mismatch_sigma, corr_hours: float) -> np.ndarray:
    """R with the model-data mismatch correlated in time within each site.

    R_ij = δ_ij s_i² + m_i m_j exp(−|t_i − t_j| / τ) [site_i = site_j], with s the measurement σ
    (value_std_dev), m the mismatch σ (transport and background) and τ = ``corr_hours``.
    Observations of different sites stay uncorrelated. τ → 0 gives the diagonal R.
    """
    sites = np.asarray(sites)
    times = pd.DatetimeIndex(times)
    t = np.asarray((times - times.min()) / pd.Timedelta(hours=1), dtype=np.float64)  # hours
    same = sites[:, None] == sites[None, :]
    corr = np.exp(-np.abs(t[:, None] - t[None, :]) / float(corr_hours)) * same
    m = np.asarray(mismatch_sigma, dtype=np.float64)
    return np.diag(np.asarray(value_std_dev, dtype=np.float64) ** 2) + m[:, None] * m[None, :] * corr


@dataclass
class Problem:
    """The inversion problem in the solver's terms, plus what is needed to write the outputs."""

    H: sp.csr_matrix  # n_obs × (n_step·n_cells + n_days)
    y: np.ndarray  # observed − background − prior enhancement
    x_prior: np.ndarray  # zeros (correction and offsets)
    Q: KroneckerCovariance
    obs_sigma: np.ndarray
    obs: pd.DataFrame  # matched observations (selected.csv rows) with `row`, `day_index`
    prior_enhancement: np.ndarray  # H_hourly x_a per observation (ppm)
    hours: pd.DatetimeIndex
    step_times: pd.DatetimeIndex  # start of every step
    days: pd.DatetimeIndex  # the background-offset days
    step_hours: int
    ny: int
    nx: int
    H_hourly: sp.csr_matrix | None = None  # the matched observations' rows of the hourly Jacobian
    obs_cov: np.ndarray | None = None  # full R when the mismatch is correlated in time, else None
    factors: "FactorSet | None" = None  # scaling factors after the offsets (inversion.factors), or None
    sides: tuple = ()  # inflow sides of the boundary bias (offset day*len(sides)+side), () = daily offsets
    n_outer: int = 0  # outer cells of the nested state after the ny·nx inner cells of every step (0: none)
    prior_enhancement_outer: np.ndarray | None = None  # the part of H_hourly x_a from the outer cells (ppm)

    @property
    def obs_err(self):
        """What `solve` takes as `obs_err`: the full R when built, else the σ vector."""
        return self.obs_cov if self.obs_cov is not None else self.obs_sigma

    @property
    def n_inner(self):
        return self.ny * self.nx

    @property
    def n_cells(self):
        return self.ny * self.nx + self.n_outer

    @property
    def n_step(self):
        return len(self.step_times)

    @property
    def n_flux(self):
        return self.n_step * self.n_cells

    @property
    def n_offsets(self):
        return len(self.days) * max(1, len(self.sides))

    @property
    def n_factors(self):
        return 0 if self.factors is None else len(self.factors)


def build_problem(H_hourly, receptors: pd.DataFrame, hours, selected: pd.DataFrame, prior_flux: np.ndarray,
                  lat_edges, lon_edges, inv_cfg, days, missing=None,
                  prior_power: np.ndarray | None = None, factors=None, prior_bio: np.ndarray | None = None,
                  outer=None) -> Problem:
    """Assemble the `Problem` from in-memory pieces (see module docstring).

    ``prior_flux`` is (n_hours, ny, nx) on ``hours`` (µmol m-2 s-1); ``days`` are the UTC period days
    (one background offset each); ``inv_cfg``: the ``inversion`` settings (`InversionConfig` or a mapping
    of some of its keys, completed with the pipeline's defaults); ``prior_power`` (optional, same
    shape) is the prior's power-sector part, whose σ is ``power_rel_sigma`` × |flux|.
    ``factors``: an `inversion.factors.FactorSet` (or None) whose factors are appended to the state
    after the background offsets. ``outer``: an `inversion.outer.OuterInputs` (nested state: the
    Jacobian's columns are hour · (ny·nx + n_outer) + cell, the outer cells' prior and σ rule,
    `inversion.covariance.NestedKroneckerCovariance`) or None (the single grid).
    """
    cfg = inversion_config(inv_cfg)
    hours = pd.DatetimeIndex(hours)
    ny, nx = len(lat_edges) - 1, len(lon_edges) - 1
    n_outer = 0 if outer is None else int(outer.n_outer)
    n_cells = ny * nx + n_outer
    if prior_flux.shape != (len(hours), ny, nx):
        raise ValueError(f"prior flux has shape {prior_flux.shape}, expected (n_hours={len(hours)}, {ny}, {nx}) "
                         "on the Jacobian's hourly axis and grid")
    if H_hourly.shape[1] != len(hours) * n_cells:
        raise ValueError(f"Jacobian has {H_hourly.shape[1]} columns, expected n_hours*n_cells = {len(hours) * n_cells}"
                         + (f" (n_cells = {ny * nx} inner + {n_outer} outer)" if n_outer else ""))
    step = int(cfg.time_step_hours)
    if step < 1 or 24 % step:
        raise ValueError(f"config inversion.time_step_hours = {step}: must divide 24")
    if hours[0] != hours[0].normalize():
        raise ValueError(f"the hourly axis starts at {hours[0]}, not 00 UTC; steps must align with UTC days")

    obs = match_observations(selected, receptors, missing)
    if obs.empty:
        raise ValueError("no observation of selected.csv matches a receptor with a footprint; "
                         "check that receptors.csv and selected.csv cover the same sites and hours")
    days = pd.DatetimeIndex(pd.to_datetime(list(days))).normalize()
    day_of = {d: i for i, d in enumerate(days)}
    obs_day = pd.DatetimeIndex(obs["time"]).normalize()
    keep = np.array([d in day_of for d in obs_day])
    if not keep.all():
        log.warning("%d observation(s) outside the period days were dropped", int((~keep).sum()))
        obs = obs[keep].reset_index(drop=True)
        obs_day = obs_day[keep]
    obs["day_index"] = np.array([day_of[d] for d in obs_day], dtype=np.int64)

    Hh = sp.csr_matrix(H_hourly)[obs["row"].to_numpy()]
    prior_enh, prior_enh_outer, H_inner = _prior_signal(Hh, prior_flux, outer, len(hours))
    Hs = step_jacobian(Hh, n_cells, step)
    n_obs = len(obs)
    Hbg, sides, bg_sigma = background_columns(obs, len(days), cfg)
    blocks = [Hs, Hbg]
    if factors is not None and len(factors):
        blocks.append(sp.csr_matrix(factors.columns(H_inner)))
    H = sp.hstack(blocks, format="csr")

    y = obs["value"].to_numpy(float) - obs["background"].to_numpy(float) - prior_enh
    vsd = obs["value_std_dev"].to_numpy(float)
    bgs = obs["background_sigma"].to_numpy(float)
    for name, arr in (("value_std_dev", vsd), ("background_sigma", bgs)):
        bad = ~np.isfinite(arr)
        if bad.any():
            log.warning("selected.csv: %d missing %s treated as 0", int(bad.sum()), name)
            arr[bad] = 0.0
    # model-data mismatch: a floor plus a part proportional to the modelled enhancement (transport
    # errors grow with the signal: a plume missed by a few km costs more next to a power plant)
    rel = float(cfg.obs_rel_sigma)
    transport = np.sqrt(float(cfg.obs_sigma_ppm) ** 2 + (rel * np.abs(prior_enh)) ** 2)
    obs_sigma = np.sqrt(vsd**2 + transport**2 + bgs**2)
    corr_hours = float(cfg.obs_corr_hours)
    obs_cov = None
    if corr_hours > 0:
        mismatch = np.sqrt(transport**2 + bgs**2)
        obs_cov = obs_error_covariance(obs["site"].to_numpy(), pd.to_datetime(obs["time"]), vsd,
                                       mismatch, corr_hours)

    extra = np.full(Hbg.shape[1], bg_sigma)
    if factors is not None and len(factors):
        extra = np.concatenate([extra, factors.sigma])
    Q = _prior_covariance(cfg, step, prior_flux, prior_power, prior_bio, lat_edges, lon_edges, extra, outer)
    step_times = hours[::step]
    return Problem(H=H, y=y, x_prior=np.zeros(H.shape[1]), Q=Q, obs_sigma=obs_sigma, obs=obs,
                   prior_enhancement=prior_enh, hours=hours, step_times=step_times, days=days,
                   step_hours=step, ny=ny, nx=nx, H_hourly=Hh, obs_cov=obs_cov,
                   factors=factors if factors is not None and len(factors) else None, sides=sides,
                   n_outer=n_outer, prior_enhancement_outer=prior_enh_outer)


def _prior_covariance(cfg, step: int, prior_flux, prior_power, prior_bio, lat_edges, lon_edges, extra, outer):
    """Q of the state: σ of the inner cells (`prior_sigma`), the Kronecker operator on the single
    grid or, with ``outer``, the nested one (`inversion.outer.nested_covariance`)."""
    basis = str(cfg.sigma_basis)
    sigma = prior_sigma(prior_flux, step, float(cfg.prior_rel_sigma), float(cfg.prior_floor_sigma),
                        power_flux=prior_power, power_rel=float(cfg.power_rel_sigma),
                        bio_flux=prior_bio if basis == "day" else None, anthro_basis=basis if prior_bio is not None else "step")
    if outer is None:
        return KroneckerCovariance.from_grid(
            sigma, lat_edges, lon_edges, float(cfg.corr_length_km), step, float(cfg.corr_time_hours),
            extra_sigma=extra, diurnal_corr=float(cfg.diurnal_corr))
    from .outer import nested_covariance

    return nested_covariance(sigma, lat_edges, lon_edges, outer, cfg, step, extra)


def _prior_signal(Hh, prior_flux, outer, n_hours: int):
    """(H_hourly x_a, its outer part or None, H_hourly's inner columns as hour · n_inner + cell) of
    the matched rows ``Hh``: on the single grid (``outer`` None) Hh itself serves the factors."""
    if outer is None:
        return Hh @ np.asarray(prior_flux, dtype=np.float64).ravel(), None, Hh
    from .outer import split_columns

    n_inner = int(np.prod(prior_flux.shape[1:]))
    prior_outer = np.asarray(outer.prior, np.float64)
    if prior_outer.shape != (n_hours, outer.n_outer):
        raise ValueError(f"outer prior has shape {prior_outer.shape}, expected (n_hours={n_hours}, "
                         f"n_outer={outer.n_outer}) in state order")
    Hi, Ho = split_columns(Hh, n_inner, n_inner + outer.n_outer, n_hours)
    inner_enh = Hi @ np.asarray(prior_flux, dtype=np.float64).ravel()
    outer_enh = Ho @ prior_outer.ravel()
    return inner_enh + outer_enh, outer_enh, Hi


def background_columns(obs: pd.DataFrame, n_days: int, cfg) -> tuple[sp.csr_matrix, tuple, float]:
    """The background block of H, its sides and prior σ.

    Without side shares in ``obs``: one offset per UTC day (indicator columns, σ ``bg_sigma_ppm``).
    With the model boundary's shares (``bg_share_N``, ``_E``, ``_S``, ``_W`` in selected.csv:
    the share of the receptor's particles that entered through each side): the boundary bias per
    UTC day and inflow side, column ``day * 4 + side``, weight = the share (the shares sum to 1,
    so a bias common to every side acts as the daily offset did), σ ``boundary_bias_sigma_ppm``.
    """
    n_obs = len(obs)
    day = obs["day_index"].to_numpy()
    cols = [f"bg_share_{s}" for s in BOUNDARY_SIDES]
    if not all(c in obs.columns for c in cols):
        H = sp.csr_matrix((np.ones(n_obs), (np.arange(n_obs), day)), shape=(n_obs, n_days))
        return H, (), float(cfg.bg_sigma_ppm)
    w = obs[cols].to_numpy(float)
    bad = ~np.isfinite(w).all(axis=1) | (np.abs(w.sum(axis=1) - 1.0) > 1e-3)
    if bad.any():
        raise ValueError(f"selected.csv: {int(bad.sum())} row(s) whose bg_share_N/E/S/W are missing or do not "
                         "sum to 1 (e.g. site {} {}); rerun rules boundary_background and select_obs".format(
                             obs["site"].to_numpy()[bad][0], obs["time"].to_numpy()[bad][0]))
    ns = len(BOUNDARY_SIDES)
    rows = np.repeat(np.arange(n_obs), ns)
    c = (day[:, None] * ns + np.arange(ns)[None]).ravel()
    H = sp.csr_matrix((w.ravel(), (rows, c)), shape=(n_obs, n_days * ns))
    H.eliminate_zeros()
    return H, BOUNDARY_SIDES, float(cfg.boundary_bias_sigma_ppm)
