"""Joint fossil-CO2 / CO inversion: CO, co-emitted by combustion but not by the biosphere, tells fossil
CO2 apart from biogenic CO2 (docs/gases.md).

The problem stays LINEAR, so the analytical solver and its exact σ stay valid: the emission ratios are
*not* in the state (a ratio times a flux would make it bilinear); they enter the prior covariance.

State (flux corrections on the state grid, constant within each step, ``step * n_cells + cell``):

    x = [ f_1 … f_S (fossil CO2 of sector k, µmol m-2 s-1) | b (biogenic CO2, µmol m-2 s-1) |
          c (CO, nmol m-2 s-1) | daily background offsets of CO2 (ppm) and CO (ppb) ]

Prior: x = T z with independent *latent* blocks z_j, each with covariance D_j (Q_t ⊗ Q_s) D_j (the
`covariance.KroneckerCovariance` operators the CO2 inversion uses, never formed densely):

    f_k = z_fk                                   σ_fk = rel · |f̄_a,k| + floor / √(S+1)   (power: power_rel)
    b   = z_b                                    σ_b  = rel · |b̄_a| + floor / √(S+1)
    c   = 1000 Σ_k r_k z_fk + Σ_k z_ηk + z_o     σ_ηk = 1000 r_k s_k (|f̄_a,k| + σ_fk),  σ_o = co_floor

r_k = R_CO:CO2 of sector k (mol/mol; 1000 turns µmol into nmol) and s_k its relative uncertainty: η_k is
the ratio error of sector k applied to the sector's flux (of size |prior| + its σ), correlated over
``ratio_corr_length_km``; z_o are CO sources no ratio describes. So the prior cross-covariance is
Cov(c, f_k) = 1000 r_k Q_fk, Cov(c, c) = 1000² Σ r_k² Q_fk + Σ Q_ηk + Q_o — a sector-mixing matrix T
times the Kronecker operators. With s_k → ∞ the CO data say nothing about fossil CO2 (the split reverts
to the CO2-only inversion); with s_k = 0 and noise-free CO they pin the fossil signal (tested).
The floor is shared by the S fossil blocks and the biosphere so that their sum keeps the CO2
inversion's floor σ.

Observations: CO2 rows (ppm) see H (Σ_k f_k + b) + offset; CO rows (ppb) see H c + offset with the same
footprints (ppm per µmol m-2 s-1 = ppb per nmol m-2 s-1). R holds each gas's measurement, mismatch and
background σ, and the transport-error correlation ρ between the two gases' mismatch at the same receptor
(R[i_CO2, j_CO] = ρ m_CO2,i m_CO,j). With G_j = H T_j (the observations' view of latent block j):

    K = Σ_j G_j Q_j G_jᵀ + E diag(σ_off²) Eᵀ + R      (each term `solve.build_hqht_kronecker`, exact)
    x̂ = x_a + T Q_z Gᵀ K⁻¹ d
    M Q̂ Mᵀ = M Q Mᵀ − (H Q Mᵀ)ᵀ K⁻¹ (H Q Mᵀ),   H Q Mᵀ = Σ_j G_j Q_j (M T_j)ᵀ

for aggregation rows M (fossil, biogenic, CO or any sector per district and the city): the exact
aggregated-covariance algebra of docs/inversion.md, observation space, one Cholesky factor.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import scipy.linalg as sla
import scipy.sparse as sp

from .aggregate import correction_total_matrix
from .covariance import KroneckerCovariance, NestedKroneckerCovariance
from .emission_ratios import NMOL_PER_UMOL, read_emission_ratios
from .solve import build_hqht_kronecker

log = logging.getLogger(__name__)

M_CO_OVER_M_CO2 = 28.01 / 44.01  # t CO per t CO2 of the same moles
RATIO_COLUMNS = ("sector", "ratio_mol_per_mol", "sigma_rel")
BIO = "bio"
CO = "co"


# ------------------------------------------------------------------------------------------------
# emission ratios
# ------------------------------------------------------------------------------------------------
def read_ratio_file(path, sectors=None) -> pd.DataFrame:
    """The CO:CO2 emission-ratio table (`inversion.emission_ratios.read_emission_ratios`: indexed by
    sector, columns ratio_mol_per_mol, sigma_rel, source); ``sectors`` must all have a row."""
    return read_emission_ratios(path, sectors)


def sector_ratios(table: pd.DataFrame, sectors, source: str = "emission-ratio table") -> dict[str, tuple[float, float]]:
    """{sector: (R_CO:CO2 in mol/mol, relative σ)} for every fossil sector of the prior.

    A missing column, a sector the table lacks, a duplicated sector or a bad value is a ValueError
    naming ``source``, the field and the fix."""
    if "sector" not in table.columns and table.index.name == "sector":  # read_emission_ratios' layout
        table = table.reset_index()
    miss_cols = [c for c in RATIO_COLUMNS if c not in table.columns]
    if miss_cols:
        raise ValueError(f"{source}: missing column(s) {miss_cols}; the table needs {list(RATIO_COLUMNS)} "
                         "(+ source), one row per fossil sector (docs/gases.md)")
    names = table["sector"].astype(str).str.strip()
    dup = sorted(set(names[names.duplicated()]))
    if dup:
        raise ValueError(f"{source}: field `sector` lists {dup} more than once; keep one row per sector")
    rows = dict(zip(names, zip(table["ratio_mol_per_mol"], table["sigma_rel"])))
    missing = [s for s in sectors if s not in rows]
    if missing:
        raise ValueError(f"{source}: field `sector` has no row for the prior's fossil sector(s) {missing} "
                         f"(the table has {sorted(rows)}); add a row '<sector>,<ratio_mol_per_mol>,<sigma_rel>,"
                         "<source>' for each, or drop the sector from the prior")
    out = {}
    for s in sectors:
        r, srel = (float(v) for v in rows[s])
        if not (np.isfinite(r) and r >= 0):
            raise ValueError(f"{source}: field `ratio_mol_per_mol` of sector {s!r} is {r}; give a finite "
                             "ratio >= 0 (mol CO per mol CO2)")
        if not (np.isfinite(srel) and srel >= 0):
            raise ValueError(f"{source}: field `sigma_rel` of sector {s!r} is {srel}; give a finite relative "
                             "uncertainty >= 0 (e.g. 0.3 for ±30 %)")
        out[s] = (r, srel)
    return out


# ------------------------------------------------------------------------------------------------
# the prior: latent blocks and the mixing matrix
# ------------------------------------------------------------------------------------------------
@dataclass
class CorrelationShape:
    """What every latent block shares (the CO2 inversion's Q_t ⊗ Q_s settings)."""

    dx_km: float
    dy_km: float
    corr_length_km: float
    step_hours: float
    corr_time_hours: float
    diurnal_corr: float = 1.0
    #: the nested state (config outer_grid): the outer cells' mask and spacing (`OuterShape`); None: single grid
    outer: "OuterShape | None" = None

    def operator(self, sigma, corr_length_km: float | None = None, sigma_outer=None,
                 outer_corr_length_km: float | None = None) -> KroneckerCovariance:
        """Q = D (Q_t ⊗ Q_s) D of a latent block: inner σ ``sigma`` (n_step, ny, nx); on the nested
        state also the outer cells' σ ``sigma_outer`` (n_step, n_outer; None: zero, the block lives on
        the inner cells only) with the outer correlation length (``outer_corr_length_km``, else the
        outer grid's own), inner and outer uncorrelated (`covariance.NestedKroneckerCovariance`)."""
        L = self.corr_length_km if corr_length_km is None else float(corr_length_km)
        if self.outer is None:
            if sigma_outer is not None:
                raise ValueError("CorrelationShape.operator: outer σ given but the state has no outer cells")
            return KroneckerCovariance(sigma, self.dx_km, self.dy_km, L, self.step_hours, self.corr_time_hours,
                                       diurnal_corr=self.diurnal_corr)
        o = self.outer
        sigma = np.asarray(sigma, np.float64)
        so = np.zeros((sigma.shape[0], o.n_outer)) if sigma_outer is None else sigma_outer
        Lo = o.corr_length_km if outer_corr_length_km is None else float(outer_corr_length_km)
        return NestedKroneckerCovariance(sigma, self.dx_km, self.dy_km, L, self.step_hours, self.corr_time_hours,
                                         so, o.mask, o.dx_km, o.dy_km, Lo, diurnal_corr=self.diurnal_corr)


@dataclass
class OuterShape:
    """The outer cells of a nested state: ``mask`` (ny_o, nx_o) of the outer grid's cells outside the
    inner box (state order: row-major over it), the outer grid's spacing and correlation length."""

    mask: np.ndarray
    dx_km: float
    dy_km: float
    corr_length_km: float

    @property
    def n_outer(self) -> int:
        return int(np.count_nonzero(self.mask))


@dataclass
class OuterPrior:
    """What the joint prior knows of the outer cells (each (n_hours, n_outer), state order): the
    anthropogenic CO2 (µmol m-2 s-1; the coarse inventory, no sectors), the biosphere (or None) and
    the effective CO:CO2 ratio of the ring ``ratio`` (mol/mol: Σ outer CO prior / Σ outer
    anthropogenic CO2 prior) with its relative σ ``ratio_sigma_rel``."""

    anthro: np.ndarray
    bio: np.ndarray | None
    ratio: float
    ratio_sigma_rel: float


@dataclass
class LatentBlock:
    """One independent prior block z_j ~ N(0, Q_j) and how it enters the state: x_s += T[s] z_j."""

    name: str
    Q: KroneckerCovariance
    T: dict  # state block ("fossil_<k>", "bio", "co") -> coefficient


def step_mean_abs(field_hourly, step_hours: int) -> np.ndarray:
    """|mean of an hourly field (n_hours, ny, nx) over each step| (n_step, ny, nx)."""
    f = np.asarray(field_hourly, dtype=np.float64)
    nh, ny, nx = f.shape
    n_step = -(-nh // step_hours)
    pad = n_step * step_hours - nh
    if pad:
        f = np.concatenate([f, np.full((pad, ny, nx), np.nan)])
    return np.abs(np.nanmean(f.reshape(n_step, step_hours, ny, nx), axis=1))


def _step_mean_abs_cells(f_hourly, step_hours: int) -> np.ndarray:
    """|step mean| of an (n_hours, n) field: (n_step, n)."""
    f = np.asarray(f_hourly, np.float64)
    return step_mean_abs(f[:, None, :], step_hours)[:, 0, :]


def _outer_sigmas(outer: OuterPrior, step: int, settings: dict) -> dict:
    """σ (n_step, n_outer) of the outer latent blocks (module docstring, "Nested state")."""
    a = _step_mean_abs_cells(outer.anthro, step)
    sig_f = float(settings["outer_rel_sigma"]) * a + float(settings["outer_floor_sigma"])
    bio = np.zeros_like(a) if outer.bio is None else \
        float(settings["outer_bio_rel_sigma"]) * _step_mean_abs_cells(np.abs(np.asarray(outer.bio, float)), step)
    eta = NMOL_PER_UMOL * float(outer.ratio) * float(outer.ratio_sigma_rel) * (a + sig_f)
    return {"fossil": sig_f, "bio": bio, "eta": eta,
            "co_other": np.full_like(a, float(settings.get("co_outer_floor_sigma", 0.0)))}


def latent_blocks(sector_flux: dict, bio_flux, ratios: dict, shape: CorrelationShape, settings: dict,
                  power_sectors=("power",), outer: OuterPrior | None = None) -> list[LatentBlock]:
    """The latent blocks of the joint prior (module docstring) from the prior's hourly sector fields
    (µmol m-2 s-1 on the state grid), the ratios {sector: (r, s_rel)} and ``settings`` (keys
    prior_rel_sigma, power_rel_sigma, prior_floor_sigma, co_floor_sigma, ratio_corr_length_km).

    Nested state (``outer``, with ``shape.outer``): every inner block is zero on the outer cells; the
    outer cells get the blocks ``fossil_outer`` (σ = outer_rel_sigma · |anthropogenic| +
    outer_floor_sigma; enters the state block ``fossil_outer`` and CO with 1000 r_o) and
    ``ratio_error_outer`` (σ = 1000 r_o s_o (|anthropogenic| + σ), CO only), their biosphere
    (outer_bio_rel_sigma · |NEE|) is the outer part of block ``bio`` and their other CO
    (co_outer_floor_sigma) the outer part of ``co_other`` (settings keys outer_rel_sigma,
    outer_bio_rel_sigma, outer_floor_sigma, co_outer_floor_sigma)."""
    if (outer is None) != (shape.outer is None):
        raise ValueError("latent_blocks: give the outer prior exactly when the correlation shape is nested")
    step = int(shape.step_hours)
    sectors = list(sector_flux)
    floor = float(settings["prior_floor_sigma"]) / np.sqrt(len(sectors) + 1)
    rel, prel = float(settings["prior_rel_sigma"]), float(settings["power_rel_sigma"])
    blocks, co_part = [], []
    for k in sectors:
        mean_abs = step_mean_abs(sector_flux[k], step)
        sig = (prel if k in power_sectors else rel) * mean_abs + floor
        r, srel = ratios[k]
        blocks.append(LatentBlock(f"fossil_{k}", shape.operator(sig), {f"fossil_{k}": 1.0, CO: NMOL_PER_UMOL * r}))
        sig_eta = NMOL_PER_UMOL * r * srel * (mean_abs + sig)
        if np.any(sig_eta > 0):
            co_part.append(LatentBlock(f"ratio_error_{k}",
                                       shape.operator(sig_eta, settings["ratio_corr_length_km"]), {CO: 1.0}))
    so = None if outer is None else _outer_sigmas(outer, step, settings)
    if so is not None:
        r_o = float(outer.ratio)
        z = np.zeros_like(step_mean_abs(bio_flux, step))
        blocks.append(LatentBlock("fossil_outer", shape.operator(z, sigma_outer=so["fossil"]),
                                  {"fossil_outer": 1.0, CO: NMOL_PER_UMOL * r_o}))
        if np.any(so["eta"] > 0):
            co_part.append(LatentBlock("ratio_error_outer",
                                       shape.operator(z, sigma_outer=so["eta"],
                                                      outer_corr_length_km=settings["ratio_corr_length_km"]),
                                       {CO: 1.0}))
    bio_sig = rel * step_mean_abs(bio_flux, step) + floor
    blocks.append(LatentBlock(BIO, shape.operator(bio_sig, sigma_outer=None if so is None else so["bio"]), {BIO: 1.0}))
    blocks.extend(co_part)
    co_floor = float(settings["co_floor_sigma"])
    if co_floor > 0 or (so is not None and np.any(so["co_other"] > 0)):
        n_step = blocks[0].Q.n_step
        blocks.append(LatentBlock("co_other", shape.operator(np.full((n_step, *bio_sig.shape[1:]), co_floor),
                                                             sigma_outer=None if so is None else so["co_other"]),
                                  {CO: 1.0}))
    return blocks


def state_blocks(blocks: list[LatentBlock]) -> list[str]:
    """The state's flux blocks in order: fossil sectors, bio, co."""
    names = [n for b in blocks for n in b.T]
    fossil = list(dict.fromkeys(n for n in names if n.startswith("fossil_")))
    return fossil + [BIO, CO]


# ------------------------------------------------------------------------------------------------
# observations
# ------------------------------------------------------------------------------------------------
def joint_obs_covariance(sigma_co2, mismatch_co2, sigma_co, mismatch_co, pair, rho: float) -> np.ndarray:
    """R of [CO2 rows; CO rows]: diag(σ²) plus ρ m_CO2,i m_CO,j where CO row j and CO2 row i = pair[j]
    are the same receptor (pair[j] = −1: no CO2 partner). σ² holds measurement, mismatch and background
    variance; m is the transport (model-data mismatch) part, the only one the two gases share."""
    s2, s1 = np.asarray(sigma_co2, float), np.asarray(sigma_co, float)
    m2, m1 = np.asarray(mismatch_co2, float), np.asarray(mismatch_co, float)
    pair = np.asarray(pair, np.int64)
    if not -1.0 < float(rho) < 1.0:
        raise ValueError(f"transport_error_correlation = {rho}: must lie in (-1, 1)")
    if pair.shape != s1.shape or np.any(pair >= s2.size):
        raise ValueError("joint_obs_covariance: pair must give, per CO row, a CO2 row index or -1")
    if np.any(m2 > s2 + 1e-12) or np.any(m1 > s1 + 1e-12):
        raise ValueError("joint_obs_covariance: the mismatch part exceeds the total σ of an observation")
    n2 = s2.size
    R = np.diag(np.concatenate([s2, s1]) ** 2)
    j = np.flatnonzero(pair >= 0)
    i = pair[j]
    R[i, n2 + j] = R[n2 + j, i] = rho * m2[i] * m1[j]
    return R


@dataclass
class JointProblem:
    """The joint problem in the solver's terms.

    ``H_co2`` (n2 × n_flux) and ``H_co`` (n1 × n_flux): step Jacobians of the CO2 and CO rows (the same
    footprints); ``d``: innovations [CO2 (ppm); CO (ppb)] = observed − background − H x_a; ``R``: the
    (n2+n1)² covariance; ``E``: (n2+n1) × n_extra observation columns of independent extra elements
    with σ ``offset_sigma``: the background offsets (indicators) and scaling factors (H · g_j of CO2
    and of CO, `joint_run`); what they add to an aggregated quantity is `solve_joint`'s ``extra_agg``.
    """

    H_co2: sp.csr_matrix
    H_co: sp.csr_matrix
    d: np.ndarray
    R: np.ndarray
    blocks: list
    E: sp.csr_matrix | None = None
    offset_sigma: np.ndarray | None = None

    def __post_init__(self):
        self.H_co2 = sp.csr_matrix(self.H_co2, dtype=np.float64)
        self.H_co = sp.csr_matrix(self.H_co, dtype=np.float64)
        n_flux = self.blocks[0].Q.n_flux
        for name, H in (("H_co2", self.H_co2), ("H_co", self.H_co)):
            if H.shape[1] != n_flux:
                raise ValueError(f"JointProblem: {name} has {H.shape[1]} columns, the latent blocks {n_flux}")
        n = self.n_obs
        self.d = np.asarray(self.d, float)
        self.R = np.asarray(self.R, float)
        if self.d.shape != (n,) or self.R.shape != (n, n):
            raise ValueError(f"JointProblem: d {self.d.shape} and R {self.R.shape} must match {n} observations")
        if self.E is not None:
            self.E = sp.csr_matrix(self.E, dtype=np.float64)
            if self.E.shape[0] != n or self.offset_sigma is None or len(self.offset_sigma) != self.E.shape[1]:
                raise ValueError("JointProblem: E must have one row per observation and offset_sigma one σ per column")

    @property
    def n_co2(self) -> int:
        return self.H_co2.shape[0]

    @property
    def n_co(self) -> int:
        return self.H_co.shape[0]

    @property
    def n_obs(self) -> int:
        return self.n_co2 + self.n_co

    @property
    def n_flux(self) -> int:
        return self.blocks[0].Q.n_flux

    def view(self, block: LatentBlock) -> sp.csr_matrix:
        """G_j = H T_j: how the observations see latent block j."""
        c2 = sum(v for s, v in block.T.items() if s != CO)
        c1 = block.T.get(CO, 0.0)
        parts = [H * c if c else sp.csr_matrix(H.shape) for H, c in ((self.H_co2, c2), (self.H_co, c1))]
        return sp.vstack(parts, format="csr")

    def without_co(self) -> "JointProblem":
        """The same problem with the CO observations removed (the CO2-only inversion of the same state)."""
        n2 = self.n_co2
        E = None if self.E is None else self.E[:n2]
        return JointProblem(self.H_co2, self.H_co[:0], self.d[:n2], self.R[:n2, :n2], self.blocks, E,
                            self.offset_sigma)


# ------------------------------------------------------------------------------------------------
# aggregation rows and the solve
# ------------------------------------------------------------------------------------------------
QUANTITIES = {"fossil": "every fossil sector", "bio": "biogenic CO2", "co": "CO"}


def quantity_weights(quantity: str, state: list[str]) -> dict:
    """{state block: weight} of a named quantity: ``fossil`` (Σ sectors), ``bio``, ``co``, or
    ``fossil_<sector>``."""
    if quantity == "fossil":
        return {s: 1.0 for s in state if s.startswith("fossil_")}
    if quantity in state:
        return {quantity: 1.0}
    raise ValueError(f"unknown quantity {quantity!r}: use fossil, bio, co or one of {state}")


def district_total_rows(cell_weights_m2, n_hours_step) -> sp.csr_matrix:
    """Rows (n_agg × n_flux): t CO2 over the period from a µmol m-2 s-1 correction (the CO2 inversion's
    district rows, `aggregate.correction_total_matrix`); a CO row in t CO is this × 28.01/44.01 / 1000."""
    return correction_total_matrix(cell_weights_m2, n_hours_step, 0)


@dataclass
class JointResult:
    quantities: list  # names of the aggregated quantities, in row-block order
    n_agg: int  # rows per quantity
    agg_post_mean: np.ndarray  # (n_q·n_agg,) posterior correction of each row (prior correction 0)
    agg_prior_cov: np.ndarray
    agg_post_cov: np.ndarray
    chi2_reduced: float
    dofs: float
    n_obs: int
    agg_post_mean_ensemble: np.ndarray | None = None
    x_post: dict | None = None  # {state block: posterior correction (n_flux,)} when asked
    offsets_post: np.ndarray | None = None
    timings: dict = field(default_factory=dict)

    def _sl(self, q: str) -> slice:
        i = self.quantities.index(q)
        return slice(i * self.n_agg, (i + 1) * self.n_agg)

    def mean(self, q: str) -> np.ndarray:
        return self.agg_post_mean[self._sl(q)]

    def sigma(self, q: str, prior: bool = False) -> np.ndarray:
        C = self.agg_prior_cov if prior else self.agg_post_cov
        return np.sqrt(np.maximum(np.diag(C)[self._sl(q)], 0.0))

    def cov(self, q1: str, q2: str, prior: bool = False) -> np.ndarray:
        C = self.agg_prior_cov if prior else self.agg_post_cov
        return C[self._sl(q1), self._sl(q2)]

    def correlation(self, q1: str, q2: str) -> np.ndarray:
        """Posterior correlation of q1 and q2 of the same row (e.g. fossil and bio of a district)."""
        c = np.diag(self.cov(q1, q2))
        return c / (self.sigma(q1) * self.sigma(q2))


def _quantity_coefficients(blocks, quantities, state) -> np.ndarray:
    """a[j, q] = Σ_s w_q[s] T_j[s]: what latent block j adds to quantity q per unit correction."""
    W = [quantity_weights(q, state) for q in quantities]
    return np.array([[sum(w.get(s, 0.0) * v for s, v in b.T.items()) for w in W] for b in blocks])


def _chunks(n_rows: int, n_flux: int, budget_bytes: float) -> int:
    return int(max(1, min(n_rows, budget_bytes // (8.0 * 2 * max(n_flux, 1)))))


def _prior_pieces(prob: JointProblem, A_flux: sp.csr_matrix, coef: np.ndarray, budget: float, Mx=None):
    """(A Q Aᵀ, H Q Aᵀ, K without R) summed over the latent blocks (Q_j applied to A's rows in chunks)
    and the extra elements (``Mx``: what a unit extra adds to every aggregated row, or None)."""
    n_agg, nq = A_flux.shape[0], coef.shape[1]
    AQA = np.zeros((nq * n_agg, nq * n_agg))
    HQA = np.zeros((prob.n_obs, nq * n_agg))
    K = np.zeros((prob.n_obs, prob.n_obs))
    At = A_flux.T.tocsc()
    step = _chunks(n_agg, prob.n_flux, budget)
    for j, b in enumerate(prob.blocks):
        G = prob.view(b)
        if G.nnz:
            K += build_hqht_kronecker(b.Q, G)
        if not np.any(coef[j]):
            continue
        AZ, GZ = np.empty((n_agg, n_agg)), np.empty((prob.n_obs, n_agg))
        for c0 in range(0, n_agg, step):
            c1 = min(n_agg, c0 + step)
            Z = b.Q.matmat(At[:, c0:c1].toarray())
            AZ[:, c0:c1] = A_flux @ Z
            GZ[:, c0:c1] = G @ Z
        AQA += np.kron(np.outer(coef[j], coef[j]), AZ)
        HQA += np.kron(coef[j][None, :], GZ)
    if prob.E is not None:
        S2 = sp.diags(np.asarray(prob.offset_sigma, float) ** 2)
        K += (prob.E @ S2 @ prob.E.T).toarray()
        if Mx is not None:
            AQA += Mx @ (S2 @ Mx.T)
            HQA += np.asarray(prob.E @ (S2 @ Mx.T))
    return 0.5 * (AQA + AQA.T), HQA, 0.5 * (K + K.T)


def _extra_rows(prob: JointProblem, quantities, n_agg: int, extra_agg):
    """(n_q·n_agg × n_extra) contributions of the extra elements to the aggregated rows, or None."""
    if extra_agg is None or prob.E is None:
        return None
    missing = [q for q in quantities if q not in extra_agg]
    if missing:
        raise ValueError(f"solve_joint: extra_agg has no rows for quantity(ies) {missing}; give what the extra "
                         "elements add to each requested quantity (zeros when nothing)")
    n_extra = prob.E.shape[1]
    blocks = [np.asarray(extra_agg[q], float) for q in quantities]
    for q, b in zip(quantities, blocks):
        if b.shape != (n_agg, n_extra):
            raise ValueError(f"solve_joint: extra_agg[{q!r}] has shape {b.shape}, expected ({n_agg}, {n_extra})")
    return np.vstack(blocks)


def solve_joint(prob: JointProblem, A_flux, quantities=("fossil", "bio"), y_ensemble=None,
                fields: bool = False, memory_budget_bytes: float = 1.5e9, extra_agg: dict | None = None) -> JointResult:
    """Posterior of the joint problem: for every quantity (``fossil``, ``bio``, ``co``, ``fossil_<k>``)
    and every row of ``A_flux`` (n_agg × n_flux, e.g. `district_total_rows`), the posterior correction
    and the exact covariance of all of them (module docstring). ``y_ensemble``: (n_obs × k) further
    innovation vectors, e.g. noise draws (their aggregated posterior means share K). ``fields``: also
    return the posterior correction of every state block (``x_post``) and of the extra elements.
    ``extra_agg``: {quantity: (n_agg × n_extra)} what a unit extra element (a scaling factor) adds to
    each row of the quantity (e.g. t CO2 of a district factor); None: the extras add nothing (offsets)."""
    t0 = time.perf_counter()
    A_flux = sp.csr_matrix(A_flux, dtype=np.float64)
    if A_flux.shape[1] != prob.n_flux:
        raise ValueError(f"solve_joint: A_flux has {A_flux.shape[1]} columns, expected n_flux = {prob.n_flux}")
    quantities = list(quantities)
    state = state_blocks(prob.blocks)
    coef = _quantity_coefficients(prob.blocks, quantities, state)
    AQA, HQA, K = _prior_pieces(prob, A_flux, coef, memory_budget_bytes,
                                _extra_rows(prob, quantities, A_flux.shape[0], extra_agg))
    t1 = time.perf_counter()
    K += prob.R
    try:
        cf = sla.cho_factor(K, lower=True, check_finite=False)
    except np.linalg.LinAlgError:
        raise ValueError("solve_joint: H Q Hᵀ + R is not positive definite; check R and the prior σ") from None
    w = sla.cho_solve(cf, prob.d, check_finite=False)
    KiHQA = sla.cho_solve(cf, HQA, check_finite=False)
    cov = AQA - HQA.T @ KiHQA
    Linv = sla.solve_triangular(np.tril(cf[0]), np.eye(prob.n_obs), lower=True, check_finite=False)
    dofs = prob.n_obs - float(np.sum((Linv.T @ Linv) * prob.R))
    res = JointResult(quantities, A_flux.shape[0], HQA.T @ w, AQA, 0.5 * (cov + cov.T),
                      float(prob.d @ w) / prob.n_obs, dofs, prob.n_obs)
    if y_ensemble is not None:
        Y = np.asarray(y_ensemble, float)
        if Y.ndim != 2 or Y.shape[0] != prob.n_obs:
            raise ValueError(f"solve_joint: y_ensemble must be (n_obs={prob.n_obs} × k), got {Y.shape}")
        res.agg_post_mean_ensemble = KiHQA.T @ Y
    if fields:
        res.x_post = {s: np.zeros(prob.n_flux) for s in state}
        for b in prob.blocks:
            z = b.Q.matvec(prob.view(b).T @ w)
            for s, v in b.T.items():
                res.x_post[s] += v * z
        if prob.E is not None:
            res.offsets_post = np.asarray(prob.offset_sigma, float) ** 2 * (prob.E.T @ w)
    res.timings = {"prior_and_K": t1 - t0, "solve": time.perf_counter() - t1}
    log.info("joint CO2/CO solve: %d CO2 + %d CO observations, %d latent blocks, chi2_r %.3f, DOFS %.2f, %.2f s",
             prob.n_co2, prob.n_co, len(prob.blocks), res.chi2_reduced, dofs, time.perf_counter() - t0)
    return res


def tonnes_co_per_row(rows_t_co2: np.ndarray) -> np.ndarray:
    """t CO of a CO correction aggregated with CO2 rows (`district_total_rows`): nmol → µmol, 44.01 → 28.01."""
    return np.asarray(rows_t_co2, float) * M_CO_OVER_M_CO2 / NMOL_PER_UMOL


def ratio_table_path(path, repo_dir) -> Path:
    """The configured ratio table, relative paths from the repository."""
    p = Path(path)
    return p if p.is_absolute() else Path(repo_dir) / p


__all__ = ["sector_ratios", "read_ratio_file", "CorrelationShape", "OuterShape", "OuterPrior", "LatentBlock", "latent_blocks",
           "joint_obs_covariance", "JointProblem", "JointResult", "solve_joint", "district_total_rows",
           "quantity_weights", "state_blocks", "step_mean_abs", "tonnes_co_per_row", "ratio_table_path"]
