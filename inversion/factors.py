"""Scaling factors: state elements that multiply a whole prior field over a region and a set of hours.

A factor j adds ``s_j · f_j(h, c) · w_j(c) · m_j(h)`` to the flux, with ``f_j`` an hourly prior field
(µmol m-2 s-1), ``w_j`` cell weights, ``m_j`` an hour mask and ``s_j ~ N(0, σ_j²)`` a relative change.
In covariance terms this adds the low-rank term σ_j² g_j g_jᵀ (g_j = f_j · w_j · m_j) to the prior:
errors that are coherent over a whole district or the whole domain, which a km-scale exponential
correlation cannot carry without also smearing them across district borders.

Three kinds are built from the prior (the third, `profile_factors`, is described there):

* ``district`` (:func:`district_factors`): one factor per district for all hours, on the diffuse
  anthropogenic field (total − power − biosphere). Inventories are disaggregated from district
  statistics, so a wrong activity total or emission factor scales the whole district.
* ``biosphere_day`` (:func:`biosphere_day_factors`): one factor per local day for the whole domain,
  on the biosphere's uptake (min(NEE, 0)): cloudiness changes photosynthesis coherently over a region
  from day to day, which a climatological biosphere prior does not know.

Everything is exact on the hourly axis: the Jacobian column is H_hourly · g_j, the aggregated totals
are the same cell weights applied to g_j as to the flux map.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import scipy.sparse as sp

from .aggregate import SECONDS_PER_HOUR, T_CO2_PER_UMOL


@dataclass
class Factor:
    name: str
    kind: str  # "district" | "profile" | "biosphere_day"
    field: str  # key of FactorSet.fields
    weights: np.ndarray  # (n_cells,)
    hours: np.ndarray  # (n_hours,) bool mask, or float weights of every hour (profile harmonics)
    sigma: float


@dataclass
class FactorSet:
    """The factors of one inversion and the hourly fields they scale (each (n_hours, ny, nx))."""

    fields: dict = field(default_factory=dict)
    factors: list = field(default_factory=list)

    def __len__(self):
        return len(self.factors)

    def extend(self, fields: dict, factors: list):
        self.fields.update(fields)
        self.factors.extend(factors)
        return self

    @property
    def names(self):
        return [f.name for f in self.factors]

    @property
    def kinds(self):
        return [f.kind for f in self.factors]

    @property
    def sigma(self) -> np.ndarray:
        return np.array([f.sigma for f in self.factors], dtype=np.float64)

    def _g(self, f: Factor) -> np.ndarray:
        """g_j = field · w · m, (n_hours, n_cells)."""
        fld = self.fields[f.field]
        nh = fld.shape[0]
        return fld.reshape(nh, -1) * f.weights[None, :] * f.hours[:, None]

    def columns(self, H_hourly) -> np.ndarray:
        """(n_obs × n_factors) Jacobian: H_hourly · g_j."""
        H = sp.csr_matrix(H_hourly)
        out = np.zeros((H.shape[0], len(self)))
        for j, f in enumerate(self.factors):
            g = self._g(f).ravel()
            if g.size != H.shape[1]:
                raise ValueError(f"factor {f.name}: field has {g.size} elements, the Jacobian {H.shape[1]} columns")
            out[:, j] = H @ g
        return out

    def period_sums(self, period_mask) -> np.ndarray:
        """(n_cells × n_factors): Σ over the period hours of g_j (µmol m-2 s-1 · h)."""
        m = np.asarray(period_mask, bool)
        return np.stack([self._g(f)[m].sum(axis=0) for f in self.factors], axis=1)

    def totals_matrix(self, cell_weights_m2, period_mask, sums=None) -> np.ndarray:
        """(n_agg × n_factors): t CO2 over the period hours added by a unit factor (``sums``: `period_sums`)."""
        S = self.period_sums(period_mask) if sums is None else sums
        return np.asarray(sp.csr_matrix(cell_weights_m2) @ S) * SECONDS_PER_HOUR * T_CO2_PER_UMOL

    def mean_matrix(self, cell_mean_weights, period_mask, sums=None) -> np.ndarray:
        """(n_rows × n_factors): period-mean flux (weighted cell mean) added by a unit factor."""
        S = self.period_sums(period_mask) if sums is None else sums
        return np.asarray(sp.csr_matrix(cell_mean_weights) @ S) / float(np.sum(period_mask))

    def flux_change(self, s) -> np.ndarray:
        """Σ_j s_j g_j as (n_hours, ny, nx)."""
        s = np.asarray(s, dtype=np.float64)
        shape = next(iter(self.fields.values())).shape
        out = np.zeros((shape[0], shape[1] * shape[2]))
        for sj, f in zip(s, self.factors):
            if sj != 0.0:
                out += sj * self._g(f)
        return out.reshape(shape)


def district_factors(anthro_flux: np.ndarray, names, fractions, sigma: float) -> tuple[dict, list]:
    """One factor per district (all hours) on the diffuse anthropogenic field."""
    F = sp.csr_matrix(fractions, dtype=np.float64)
    nh = anthro_flux.shape[0]
    every = np.ones(nh, bool)
    facs = [Factor(str(n), "district", "anthropogenic", np.asarray(F[i].todense()).ravel(), every, float(sigma))
            for i, n in enumerate(names)]
    return {"anthropogenic": np.asarray(anthro_flux, dtype=np.float64)}, facs


def biosphere_day_factors(bio_flux: np.ndarray, hours, utc_offset_hours: float, sigma: float) -> tuple[dict, list]:
    """One factor per local day (domain-wide) on the biosphere's uptake min(NEE, 0)."""
    hours = pd.DatetimeIndex(hours)
    local_day = (hours + pd.Timedelta(hours=float(utc_offset_hours))).normalize()
    uptake = np.minimum(np.asarray(bio_flux, dtype=np.float64), 0.0)
    n_cells = uptake.shape[1] * uptake.shape[2]
    ones = np.ones(n_cells)
    facs = []
    for d in local_day.unique():
        m = np.asarray(local_day == d)
        if np.any(uptake[m] < 0):
            facs.append(Factor(f"biosphere {d:%Y-%m-%d}", "biosphere_day", "biosphere_uptake", ones, m, float(sigma)))
    return {"biosphere_uptake": uptake}, facs


#: harmonics of the local hour used by `profile_factors` (period in hours, cos|sin)
PROFILE_HARMONICS = ((24, "cos"), (24, "sin"), (12, "cos"), (12, "sin"))


def profile_factors(sector_fluxes: dict, hours, utc_offset_hours: float, sigma: float) -> tuple[dict, list]:
    """Total-conserving modulations of each sector's diurnal profile, domain-wide.

    For a sector flux f(h, c) and a harmonic b(ℓ) of the local hour ℓ (24 h and 12 h, cos and sin),
    the factor's field is f(h, c) · b̃(ℓ(h)) with b̃ = b − Σ_ℓ p(ℓ) b(ℓ) / Σ_ℓ p(ℓ), p the sector's mean
    domain-total profile: the modulation moves emissions between times of day and leaves the daily
    total unchanged (exactly when the prior is a profile times a map). Temporal profiles of
    inventories are generic; a city's traffic or heating day differs, and an afternoon-only network
    cannot otherwise tell "less traffic in the afternoon" from "less traffic".
    """
    hours = pd.DatetimeIndex(hours)
    lh = ((hours.hour + int(round(float(utc_offset_hours)))) % 24).to_numpy()
    fields, facs = {}, []
    for name, f in sector_fluxes.items():
        f = np.asarray(f, dtype=np.float64)
        tot = f.reshape(len(hours), -1).sum(axis=1)
        p = np.array([tot[lh == h].mean() if np.any(lh == h) else 0.0 for h in range(24)])
        if not np.any(p > 0):
            continue
        key = f"sector {name}"
        fields[key] = f  # one copy per sector; the harmonic is the factor's hour weights
        ones = np.ones(f.shape[1] * f.shape[2])
        for period, kind in PROFILE_HARMONICS:
            ang = 2 * np.pi * np.arange(24) / period
            b = np.cos(ang) if kind == "cos" else np.sin(ang)
            b = b - (p * b).sum() / p.sum()
            facs.append(Factor(f"profile {name} {kind} {period}h", "profile", key, ones, b[lh], float(sigma)))
    return fields, facs
