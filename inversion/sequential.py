"""Correlated months: the district factors carried from month to month (docs/year.md).

Each month's inversion (`inversion.run.invert`) has its own state ``c_m`` (cell corrections,
background offsets, profile and biosphere factors) and the district factors ``s`` (one relative
factor per district on the diffuse anthropogenic prior, σ₀ = ``district_scale_sigma``). Inventory
biases persist all year, so here ``s`` is *one* vector for the whole year: a priori
``s ~ N(m₀, S₀)`` in January, ``c_m`` independent between months and independent of ``s``.
The month's data ``y_m`` depend on ``(c_m, s)`` only.

The month's own inversion is solved with the prior ``N(m₀, S₀)`` on ``s`` and writes, in
diagnostics.json ``district_factors_joint``, the exact joint prior and posterior covariance of
its district/city totals ``T_m`` and of ``s`` (aggregate rows of the same solve). That is all the
year needs:

* **Filter** (a sequential update whose posterior becomes the next month's prior). Changing the
  prior of ``s`` from ``N(m₀, S₀)`` to ``N(μ, P)`` multiplies the month's posterior by a Gaussian
  factor in ``s`` alone, so, with the month's posterior ``(T, s) ~ N((t, σ), [[C_TT, C_Ts],
  [C_sT, C_ss]])`` and ``J = C_Ts C_ss⁻¹``::

      Λ = C_ss⁻¹ + P⁻¹ − S₀⁻¹,     μ' = Λ⁻¹ (C_ss⁻¹ σ + P⁻¹ μ − S₀⁻¹ m₀),   P' = Λ⁻¹
      t' = t + J (μ' − σ),          C'_TT = C_TT − J C_sT + J P' Jᵀ,         C'_Ts = J P'

  exactly what the month's inversion would give with the prior ``N(μ, P)``. ``(μ', P')`` is
  the next month's prior.
* **Smoother** (year to date and annual totals). Given ``s``, a month's totals depend on its
  own data only, so with the last filtered ``s ~ N(μ_M, P_M)`` of the months used::

      E[T_m] = t'_m + J_m (μ_M − μ'_m)
      Cov(T_m, T_k) = δ_mk (C'_TT,m − J_m C'_sT,m) + J_m P_M J_kᵀ,   J_m = C'_Ts,m P'_m⁻¹

  and the year's total is their sum: the correlated part ``(Σ J_m) P_M (Σ J_m)ᵀ`` is what
  summing independent monthly σ² leaves out.

Both are exact for this linear-Gaussian model: `joint_reference` solves all months at once with
dense NumPy and tests/test_year_sequential.py compares (1e-9). Two approximations are stated in
docs/year.md: the cell corrections of different months are independent (their 720 h temporal
correlation is not carried across a month boundary), and each month's innovation screen and
positivity use the month's own prior.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import scipy.linalg as sla
import scipy.sparse as sp

#: diagnostics.json key of a month's joint totals/factors covariance
JOINT_KEY = "district_factors_joint"


class SequentialInputError(ValueError):
    """A month's diagnostics.json cannot be used for the correlated-month update."""


# ---------------------------------------------------------------------------------------------
# inside the month's inversion: extra aggregate rows for the district factors
# ---------------------------------------------------------------------------------------------
def district_factor_index(prob) -> tuple[np.ndarray, list[str]]:
    """(state indices, names) of the district factors of an `inversion.state.Problem` (empty
    when the problem has none)."""
    if not prob.n_factors:
        return np.zeros(0, np.int64), []
    first = prob.n_flux + prob.n_offsets
    idx = [first + j for j, k in enumerate(prob.factors.kinds) if k == "district"]
    names = [n for n, k in zip(prob.factors.names, prob.factors.kinds) if k == "district"]
    return np.asarray(idx, np.int64), names


def with_unit_rows(A, index: np.ndarray) -> sp.csr_matrix:
    """``A`` with one unit row per state index appended (the factor values as aggregates)."""
    A = sp.csr_matrix(A)
    E = sp.csr_matrix((np.ones(index.size), (np.arange(index.size), index)), shape=(index.size, A.shape[1]))
    return sp.vstack([A, E], format="csr")


def split_unit_rows(res, n_agg: int) -> dict | None:
    """Take the appended rows off an `InversionResult` solved with `with_unit_rows` (in place, so
    every other output sees the aggregates it asked for); return their joint part:
    ``prior_cov`` / ``posterior_cov`` over [aggregates, factors], factor prior / posterior means."""
    if res.agg_post_cov is None or res.agg_post_cov.shape[0] == n_agg:
        return None
    out = {"prior_cov": np.asarray(res.agg_prior_cov, float).copy(),
           "posterior_cov": np.asarray(res.agg_post_cov, float).copy(),
           "factor_prior_mean": np.asarray(res.agg_prior_mean[n_agg:], float).copy(),
           "factor_posterior_mean": np.asarray(res.agg_post_mean[n_agg:], float).copy()}
    res.agg_prior_mean = res.agg_prior_mean[:n_agg]
    res.agg_post_mean = res.agg_post_mean[:n_agg]
    res.agg_prior_cov = res.agg_prior_cov[:n_agg, :n_agg]
    res.agg_post_cov = res.agg_post_cov[:n_agg, :n_agg]
    if res.agg_post_cov_subsets:
        res.agg_post_cov_subsets = {k: v[:n_agg, :n_agg] for k, v in res.agg_post_cov_subsets.items()}
    if res.agg_post_mean_ensemble is not None:
        res.agg_post_mean_ensemble = res.agg_post_mean_ensemble[:n_agg]
    return out


def joint_entry(joint: dict | None, aggregates, factors, prior_t, posterior_t) -> dict | None:
    """diagnostics.json ``district_factors_joint`` (docs/formats.md): totals in t, factors in 1."""
    if joint is None:
        return None
    return {"aggregates": [str(a) for a in aggregates], "factors": [str(f) for f in factors],
            "units": "totals t, factors 1 (relative change of the diffuse anthropogenic prior)",
            "prior_t": [float(v) for v in prior_t], "posterior_t": [float(v) for v in posterior_t],
            "factor_prior_mean": joint["factor_prior_mean"].tolist(),
            "factor_posterior_mean": joint["factor_posterior_mean"].tolist(),
            "prior_cov": joint["prior_cov"].tolist(), "posterior_cov": joint["posterior_cov"].tolist()}


# ---------------------------------------------------------------------------------------------
# one month's joint Gaussian, the filter and the smoother
# ---------------------------------------------------------------------------------------------
@dataclass
class MonthJoint:
    """A month's joint Gaussian of its totals T (t; districts and city) and the district factors s."""

    month: str
    aggregates: list
    factors: list
    prior_t: np.ndarray
    posterior_t: np.ndarray
    s_prior: np.ndarray
    s_post: np.ndarray
    prior_cov: np.ndarray  # [[T, T], [T, s]; [s, T], [s, s]]
    post_cov: np.ndarray

    @property
    def n_agg(self) -> int:
        return len(self.aggregates)

    @classmethod
    def from_entry(cls, month: str, entry: dict, where: str = "diagnostics.json") -> "MonthJoint":
        try:
            na, nf = len(entry["aggregates"]), len(entry["factors"])
            out = cls(month, list(entry["aggregates"]), list(entry["factors"]),
                      np.asarray(entry["prior_t"], float), np.asarray(entry["posterior_t"], float),
                      np.asarray(entry["factor_prior_mean"], float),
                      np.asarray(entry["factor_posterior_mean"], float),
                      np.asarray(entry["prior_cov"], float), np.asarray(entry["posterior_cov"], float))
        except (KeyError, TypeError, ValueError) as exc:
            raise SequentialInputError(f"{where}: `{JOINT_KEY}` is malformed ({exc}); re-run the month's "
                                       "inversion (snakemake --forcerun inversion)") from None
        n = na + nf
        shapes = {"prior_t": (na,), "posterior_t": (na,), "factor_prior_mean": (nf,),
                  "factor_posterior_mean": (nf,), "prior_cov": (n, n), "posterior_cov": (n, n)}
        got = {"prior_t": out.prior_t, "posterior_t": out.posterior_t, "factor_prior_mean": out.s_prior,
               "factor_posterior_mean": out.s_post, "prior_cov": out.prior_cov, "posterior_cov": out.post_cov}
        for key, shape in shapes.items():
            if got[key].shape != shape or not np.all(np.isfinite(got[key])):
                raise SequentialInputError(f"{where}: `{JOINT_KEY}.{key}` has shape {got[key].shape} or "
                                           f"non-finite values, expected {shape}; re-run the month's inversion")
        return out


def month_joint(diag: dict, month: str, where: str = "diagnostics.json") -> MonthJoint | None:
    """The month's `MonthJoint` from a loaded diagnostics.json; None when absent."""
    entry = diag.get(JOINT_KEY) if isinstance(diag, dict) else None
    return None if entry is None else MonthJoint.from_entry(month, entry, where)


def read_month_joint(path, month: str) -> MonthJoint | None:
    """The month's `MonthJoint` from its diagnostics.json; None when the run had no district factors
    (``district_scale_sigma`` 0) or predates the entry."""
    try:
        diag = json.loads(Path(path).read_text())
    except (OSError, ValueError) as exc:
        raise SequentialInputError(f"{path}: cannot be read as JSON ({exc})") from None
    return month_joint(diag, month, str(path))


def _inv_spd(M: np.ndarray) -> np.ndarray:
    M = 0.5 * (M + M.T)
    c = sla.cho_factor(M, lower=True)
    out = sla.cho_solve(c, np.eye(M.shape[0]))
    return 0.5 * (out + out.T)


@dataclass
class Filtered:
    """A month conditioned on the factor prior carried from the months before it."""

    month: str
    mean_t: np.ndarray  # totals, t
    mean_s: np.ndarray
    cov: np.ndarray  # joint [T, s]
    prior_s_mean: np.ndarray  # the prior it was conditioned on
    prior_s_cov: np.ndarray

    def blocks(self, na: int):
        C = self.cov
        return C[:na, :na], C[:na, na:], C[na:, na:]


def condition(mj: MonthJoint, mu: np.ndarray, P: np.ndarray) -> Filtered:
    """The month's posterior had its factors' prior been N(mu, P) instead of N(m₀, S₀)."""
    na = mj.n_agg
    Ctt, Cts, Css = mj.post_cov[:na, :na], mj.post_cov[:na, na:], mj.post_cov[na:, na:]
    S0 = mj.prior_cov[na:, na:]
    Css_i, S0_i, P_i = _inv_spd(Css), _inv_spd(S0), _inv_spd(P)
    Lam = Css_i + P_i - S0_i
    try:
        P_new = _inv_spd(Lam)
    except np.linalg.LinAlgError:
        raise SequentialInputError(f"{mj.month}: the factor prior carried from the months before is "
                                   "wider than the month's own prior in some direction and the data do not "
                                   "constrain it; the update is not defined") from None
    mu_new = P_new @ (Css_i @ mj.s_post + P_i @ mu - S0_i @ mj.s_prior)
    J = Cts @ Css_i
    mean_t = mj.posterior_t + J @ (mu_new - mj.s_post)
    Ctt_new = Ctt - J @ Cts.T + J @ P_new @ J.T
    Cts_new = J @ P_new
    cov = np.block([[Ctt_new, Cts_new], [Cts_new.T, P_new]])
    return Filtered(mj.month, mean_t, mu_new, 0.5 * (cov + cov.T), np.asarray(mu, float), np.asarray(P, float))


def _check_same_factors(months: list[MonthJoint]) -> None:
    ref = months[0]
    for m in months[1:]:
        if m.factors != ref.factors or m.aggregates != ref.aggregates:
            raise SequentialInputError(
                f"{m.month}: its districts/factors {m.factors} differ from {ref.month}'s {ref.factors}; "
                "a year carries the same district factors (same districts file) through its months")


def filter_months(months: list[MonthJoint]) -> list[Filtered]:
    """The sequential update through the months (in the order given, e.g. January first): the
    year's prior on s is the first month's own N(m₀, S₀); each month's posterior s is the next
    month's prior."""
    if not months:
        return []
    _check_same_factors(months)
    na = months[0].n_agg
    mu, P = months[0].s_prior, months[0].prior_cov[na:, na:]
    out = []
    for mj in months:
        f = condition(mj, mu, P)
        out.append(f)
        mu, P = f.mean_s, f.cov[na:, na:]
    return out


@dataclass
class YearEstimate:
    """Totals of several months with their correlated errors (t), smoothed on all their data."""

    months: list
    aggregates: list
    monthly_mean: np.ndarray  # (n_month, n_agg)
    monthly_cov: np.ndarray  # (n_month·n_agg)², month-major
    total_mean: np.ndarray  # (n_agg,) sum over the months
    total_cov: np.ndarray
    prior_monthly_mean: np.ndarray
    prior_total_mean: np.ndarray
    prior_total_cov: np.ndarray
    independent_total_sigma: np.ndarray  # √Σ σ_m² of the months' own inversions (independent months)
    factor_mean: np.ndarray
    factor_cov: np.ndarray

    @property
    def monthly_sigma(self) -> np.ndarray:
        return np.sqrt(np.maximum(np.diag(self.monthly_cov), 0)).reshape(self.monthly_mean.shape)

    @property
    def total_sigma(self) -> np.ndarray:
        return np.sqrt(np.maximum(np.diag(self.total_cov), 0))

    @property
    def prior_total_sigma(self) -> np.ndarray:
        return np.sqrt(np.maximum(np.diag(self.prior_total_cov), 0))


def smooth(filtered: list[Filtered], na: int):
    """(monthly means (n_month, na), their full covariance, s mean, s cov) given every month's data."""
    muM, PM = filtered[-1].mean_s, filtered[-1].cov[na:, na:]
    n = len(filtered)
    means = np.zeros((n, na))
    Js, resid = [], []
    for i, f in enumerate(filtered):
        Ctt, Cts, Css = f.blocks(na)
        J = Cts @ _inv_spd(Css)
        means[i] = f.mean_t + J @ (muM - f.mean_s)
        Js.append(J)
        resid.append(Ctt - J @ Cts.T)
    cov = np.zeros((n * na, n * na))
    for i in range(n):
        for k in range(n):
            blk = Js[i] @ PM @ Js[k].T
            if i == k:
                blk = blk + resid[i]
            cov[i * na:(i + 1) * na, k * na:(k + 1) * na] = blk
    return means, 0.5 * (cov + cov.T), muM, PM


def _sum_over_months(means: np.ndarray, cov: np.ndarray, na: int):
    n = means.shape[0]
    S = np.kron(np.ones((1, n)), np.eye(na))
    return means.sum(axis=0), S @ cov @ S.T


def year_estimate(months: list[MonthJoint]) -> YearEstimate:
    """Monthly and summed totals of ``months`` (one year, in order) with correlated errors: the
    filter through the months, then the smoother with all of them. The prior of the sum uses the
    same shared-factor model (one s for every month)."""
    if not months:
        raise SequentialInputError("no month to combine")
    filtered = filter_months(months)
    na = months[0].n_agg
    means, cov, muM, PM = smooth(filtered, na)
    tot, tot_cov = _sum_over_months(means, cov, na)
    priors = [Filtered(m.month, m.prior_t, m.s_prior, m.prior_cov, m.s_prior, m.prior_cov[na:, na:])
              for m in months]
    p_means, p_cov, _, _ = smooth(priors, na)
    p_tot, p_tot_cov = _sum_over_months(p_means, p_cov, na)
    indep = np.sqrt(sum(np.diag(m.post_cov)[:na] for m in months))
    return YearEstimate([m.month for m in months], list(months[0].aggregates), means, cov, tot, tot_cov,
                        p_means, p_tot, p_tot_cov, indep, muM, PM)


# ---------------------------------------------------------------------------------------------
# the reference: every month in one dense solve
# ---------------------------------------------------------------------------------------------
def joint_reference(H_c: list, G: list, y: list, R: list, Q_c: list, a_c: list, b: list,
                    s_prior_mean: np.ndarray, S0: np.ndarray):
    """Dense NumPy solve of all months at once, state (c_1 … c_M, s):
    y_m = H_c[m] c_m + G[m] s + e_m, e_m ~ N(0, R[m]), c_m ~ N(0, Q_c[m]), s ~ N(s_prior_mean, S0);
    month m's totals correction is a_c[m] c_m + b[m] s. Returns (posterior mean of the stacked
    monthly totals corrections, their covariance, s mean, s cov)."""
    nc = [q.shape[0] for q in Q_c]
    nf = S0.shape[0]
    n = sum(nc) + nf
    Q = np.zeros((n, n))
    off = np.cumsum([0] + nc)
    Hs, As = [], []
    for m in range(len(nc)):
        Q[off[m]:off[m + 1], off[m]:off[m + 1]] = Q_c[m]
        Hm = np.zeros((H_c[m].shape[0], n))
        Hm[:, off[m]:off[m + 1]] = H_c[m]
        Hm[:, -nf:] = G[m]
        Hs.append(Hm)
        Am = np.zeros((a_c[m].shape[0], n))
        Am[:, off[m]:off[m + 1]] = a_c[m]
        Am[:, -nf:] = b[m]
        As.append(Am)
    Q[-nf:, -nf:] = S0
    H, A = np.vstack(Hs), np.vstack(As)
    xa = np.zeros(n)
    xa[-nf:] = s_prior_mean
    Rm = sla.block_diag(*R)
    K = H @ Q @ H.T + Rm
    G_ = Q @ H.T @ np.linalg.inv(K)
    x = xa + G_ @ (np.concatenate(y) - H @ xa)
    P = Q - G_ @ H @ Q
    P = 0.5 * (P + P.T)
    return A @ x, A @ P @ A.T, x[-nf:], P[-nf:, -nf:]


# ---------------------------------------------------------------------------------------------
# the small case of docs/year.md: sequential against joint, and independent months
# ---------------------------------------------------------------------------------------------
def small_case(n_months: int = 4, seed: int = 0, n_dist: int = 3, n_cells: int = 8, n_obs: int = 6,
               sigma_s: float = 0.25):
    """A seeded small year: per month a correlated cell state (exponential in cell index), the
    district factors s shared by the months (true s drawn from N(0, σ²I)), observations of both.
    Returns a dict of per-month lists (H_c, G, y, R, Q_c, a_c, b, prior_t) and s0, S0."""
    rng = np.random.default_rng(seed)
    dist_of_cell = np.arange(n_cells) % n_dist
    S0 = np.eye(n_dist) * sigma_s**2
    s_true = rng.normal(0, sigma_s, n_dist)
    idx = np.arange(n_cells)
    case = {k: [] for k in ("H_c", "G", "y", "R", "Q_c", "a_c", "b", "prior_t")}
    for _ in range(n_months):
        flux = rng.uniform(1.0, 3.0, n_cells)  # the month's diffuse prior (t per cell and month)
        sd = 0.4 * flux
        Qc = sd[:, None] * sd[None, :] * np.exp(-np.abs(idx[:, None] - idx[None, :]) / 2.0)
        Hc = rng.uniform(0, 1, (n_obs, n_cells)) * (rng.uniform(0, 1, (n_obs, n_cells)) < 0.6)
        W = np.zeros((n_dist, n_cells))
        W[dist_of_cell, idx] = 1.0
        a_c = np.vstack([W, np.ones((1, n_cells))])  # districts + city
        g = W * flux[None, :]  # a unit factor adds its district's diffuse prior
        G = Hc @ g.T
        b = np.vstack([g.sum(axis=1)[None, :] * np.eye(n_dist), g.sum(axis=1)[None, :]])
        c_true = np.linalg.cholesky(Qc) @ rng.normal(size=n_cells)
        r = np.full(n_obs, 0.5**2)
        y = Hc @ c_true + G @ s_true + rng.normal(0, 0.5, n_obs)
        for k, v in zip(case, (Hc, G, y, np.diag(r), Qc, a_c, b, a_c @ flux)):
            case[k].append(v)
    case["s0"], case["S0"] = np.zeros(n_dist), S0
    return case


def months_of_case(case: dict) -> list[MonthJoint]:
    """Each month of a `small_case` solved on its own with `inversion.solve` (prior N(s0, S0) on the
    factors, as the pipeline's monthly inversion), its district factors as extra aggregate rows."""
    from .solve import solve

    out = []
    S0, s0 = case["S0"], case["s0"]
    nf = S0.shape[0]
    for m in range(len(case["y"])):
        nc = case["Q_c"][m].shape[0]
        H = np.hstack([case["H_c"][m], case["G"][m]])
        Q = sla.block_diag(case["Q_c"][m], S0)
        A = np.hstack([case["a_c"][m], case["b"][m]])
        xa = np.concatenate([np.zeros(nc), s0])
        res = solve(sp.csr_matrix(H), case["y"][m], xa, Q, case["R"][m],
                    aggregate=with_unit_rows(A, nc + np.arange(nf)))
        na = A.shape[0]
        joint = split_unit_rows(res, na)
        prior_t = case["prior_t"][m] + case["b"][m] @ s0
        entry = joint_entry(joint, [f"agg{i}" for i in range(na)], [f"s{i}" for i in range(nf)],
                            prior_t, prior_t + res.agg_post_mean - res.agg_prior_mean)
        out.append(MonthJoint.from_entry(f"2025-{m + 1:02d}", entry))
    return out


def check_table(n_months: int = 4, seed: int = 0) -> str:
    """Markdown table of docs/year.md: the year's totals of `small_case` by the joint dense solve,
    the sequential filter + smoother, and independent months (today's monthly model)."""
    case = small_case(n_months, seed)
    months = months_of_case(case)
    est = year_estimate(months)
    na = months[0].n_agg
    u, C, _, _ = joint_reference(case["H_c"], case["G"], case["y"], case["R"], case["Q_c"], case["a_c"],
                                 case["b"], case["s0"], case["S0"])
    j_mean, j_cov = _sum_over_months(u.reshape(n_months, na), C, na)
    j_mean = j_mean + sum(case["prior_t"])  # prior totals + a c + b s
    ind_mean = sum(m.posterior_t for m in months)
    ind_prior = np.sqrt(sum(np.diag(m.prior_cov)[:na] for m in months))
    names = [f"district {i + 1}" for i in range(na - 1)] + ["city"]
    lines = ["| total of the year | joint mean | sequential mean | independent mean | joint σ | "
             "sequential σ | independent σ | prior σ (shared factors) | prior σ (independent) |",
             "|---|---|---|---|---|---|---|---|---|"]
    for i, n in enumerate(names):
        lines.append(f"| {n} | {j_mean[i]:.4f} | {est.total_mean[i]:.4f} | {ind_mean[i]:.4f} | "
                     f"{np.sqrt(j_cov[i, i]):.4f} | {est.total_sigma[i]:.4f} | {est.independent_total_sigma[i]:.4f} | "
                     f"{est.prior_total_sigma[i]:.4f} | {ind_prior[i]:.4f} |")
    diff = max(np.max(np.abs(j_mean - est.total_mean)), np.max(np.abs(np.sqrt(np.diag(j_cov)) - est.total_sigma)))
    lines.append("")
    lines.append(f"largest difference sequential − joint: {diff:.1e}")
    return "\n".join(lines)


if __name__ == "__main__":  # python -m inversion.sequential: the table of docs/year.md
    print(check_table())
