"""Carbon emission flow (flow tracing) over the district nodes plus one external-grid node.

Nodes: N districts (0..N-1) and the external grid (index N). Per hour t, node i has local
generation G_i with emissions E_i (sum over its plants of generation x intensity), load L_i,
inter-district flows F_ij >= 0 (i -> j), an import X_i >= 0 from the external grid and an export
Y_i >= 0 to it. Each node is balanced:  G_i + sum_j F_ji + X_i = L_i + sum_j F_ij + Y_i  (= P_i,
the node's throughput).

Proportional sharing (every MWh leaving a node carries the node's mix) gives the nodal intensity w
(t CO2/MWh = kg CO2/kWh) as the solution of

    (diag(P) - F^T) w = E + X * w_ext ,

with the external grid's intensity w_ext given (the city is too small to change it). The consumption
factor of district i is w_i, its consumption emissions C_i = L_i w_i, and per district and hour

    C_i = E_i + (sum_j F_ji w_j + X_i w_ext) - (sum_j F_ij + Y_i) w_i        (conservation).

Summed over districts: sum C + sum Y w = sum E + sum X w_ext (city level).

Inter-district flows when unknown: the POOLING RULE. Surplus districts (s_i = max(G_i - L_i, 0))
export to a city pool, deficit districts (d_i = max(L_i - G_i, 0)) draw on the pool, then on the
external grid; a pool surplus goes to the external grid. With S = sum s, D = sum d and M = max(S, D):

    F_ij = s_i d_j / M,   X_j = d_j max(D - S, 0) / D,   Y_i = s_i max(S - D, 0) / S,

i.e. every deficit district receives the same mix (pool + external), every surplus district
contributes to each importer in proportion to its surplus. When flows are given, each district's
external exchange closes its balance: X_i = max(-b_i, 0), Y_i = max(b_i, 0) with
b_i = G_i + sum_j F_ji - sum_j F_ij - L_i.

Everything is vectorised over hours: one batched LAPACK solve of T (N x N) systems. `trace_reference`
is the plain per-hour loop over the full (N+1)-node system, kept as the reference for tests and the
benchmark. Transmission losses are not modelled.
"""

from __future__ import annotations

import numpy as np

from .registry import PowerInputError


def pooled_exchanges(gen: np.ndarray, load: np.ndarray):
    """Inter-district flows and external exchanges of the pooling rule.

    gen, load: (T, N) MWh. Returns F (T, N, N) with F[t, i, j] = flow i -> j, X (T, N) imports from
    the external grid, Y (T, N) exports to it.
    """
    net = gen - load
    s = np.maximum(net, 0.0)
    d = np.maximum(-net, 0.0)
    S = s.sum(axis=1)
    D = d.sum(axis=1)
    M = np.maximum(S, D)
    inv_m = np.divide(1.0, M, out=np.zeros_like(M), where=M > 0)
    F = s[:, :, None] * d[:, None, :] * inv_m[:, None, None]
    imp_frac = np.divide(np.maximum(D - S, 0.0), D, out=np.zeros_like(D), where=D > 0)
    exp_frac = np.divide(np.maximum(S - D, 0.0), S, out=np.zeros_like(S), where=S > 0)
    X = d * imp_frac[:, None]
    Y = s * exp_frac[:, None]
    return F, X, Y


def balance_exchanges(gen: np.ndarray, load: np.ndarray, F: np.ndarray):
    """External exchanges that close each district's balance given inter-district flows F."""
    b = gen + F.sum(axis=1) - F.sum(axis=2) - load
    return np.maximum(-b, 0.0), np.maximum(b, 0.0)


def trace(gen, emis, load, w_ext, flows=None) -> dict:
    """Carbon emission flow for every hour at once.

    Parameters
    ----------
    gen, emis, load : (T, N) generation (MWh), generation emissions (t CO2), load (MWh) per district.
    w_ext : (T,) external-grid intensity, t CO2/MWh (= kg CO2/kWh).
    flows : optional (T, N, N) known inter-district flows (MWh, [t, i, j] = i -> j); None = pooling.

    Returns a dict of arrays: `w` (T, N) nodal = consumption intensity (NaN where a node has no
    throughput), `ext_share` (T, N) share of the node's supply that originates in the external grid,
    `F`, `X`, `Y`, `throughput`, `consumption_emissions`, `imported_mwh`, `exported_mwh`,
    `imported_emissions`, `exported_emissions` (T, N).
    """
    gen = np.asarray(gen, dtype=float)
    emis = np.asarray(emis, dtype=float)
    load = np.asarray(load, dtype=float)
    w_ext = np.asarray(w_ext, dtype=float)
    T, N = gen.shape
    if flows is None:
        F, X, Y = pooled_exchanges(gen, load)
    else:
        F = np.asarray(flows, dtype=float)
        X, Y = balance_exchanges(gen, load, F)
    inflow = F.sum(axis=1)
    outflow = F.sum(axis=2)
    P = gen + inflow + X
    scale = max(1.0, float(np.abs(P).max(initial=0.0)))
    empty = P <= 1e-12 * scale
    A = -np.swapaxes(F, 1, 2).copy()
    idx = np.arange(N)
    A[:, idx, idx] += np.where(empty, 1.0, P)
    rhs = np.stack([emis + X * w_ext[:, None], X], axis=2)
    rhs[empty] = 0.0
    try:
        sol = np.linalg.solve(A, rhs)
    except np.linalg.LinAlgError as err:  # circulating flows with no sink
        raise PowerInputError(
            "inter-district flows form a loop that no load or export drains (singular flow system); "
            "check the flows file: every MWh entering a district must be consumed or passed on."
        ) from err
    w = np.where(empty, np.nan, sol[..., 0])
    ext_share = np.where(empty, np.nan, sol[..., 1])
    w0 = np.nan_to_num(w)
    cons = load * w0
    imp_em = np.einsum("tij,ti->tj", F, w0) + X * w_ext[:, None]
    exp_mwh = outflow + Y
    exp_em = exp_mwh * w0
    return {
        "w": w, "ext_share": ext_share, "F": F, "X": X, "Y": Y, "throughput": P,
        "consumption_emissions": cons, "imported_mwh": inflow + X, "exported_mwh": exp_mwh,
        "imported_emissions": imp_em, "exported_emissions": exp_em,
    }


def conservation_residual(gen, emis, load, w_ext, res: dict) -> tuple[np.ndarray, np.ndarray]:
    """Per-district and city residuals (t CO2) of the conservation identities, plus their scale.

    district: C_i - (E_i + imported_i - exported_i); city: sum C + sum Y w - sum E - sum X w_ext.
    Returns (district_residual (T, N), city_residual (T,)), both relative to the hour's total
    emissions handled (sum E + sum X w_ext, floored at 1 t).
    """
    d = res["consumption_emissions"] - (emis + res["imported_emissions"] - res["exported_emissions"])
    w0 = np.nan_to_num(res["w"])
    city = (res["consumption_emissions"].sum(1) + (res["Y"] * w0).sum(1)
            - emis.sum(1) - (res["X"] * np.asarray(w_ext)[:, None]).sum(1))
    total = np.maximum(emis.sum(1) + (res["X"] * np.asarray(w_ext)[:, None]).sum(1)
                       + res["imported_emissions"].sum(1), 1.0)
    return d / total[:, None], city / total


def trace_reference(gen, emis, load, w_ext, flows=None) -> np.ndarray:
    """Reference: per-hour dense solve of the full (N+1)-node system (external node explicit).

    Returns w (T, N). The external node's row fixes its intensity: w_ext. Slow; for tests and the
    benchmark only.
    """
    gen = np.asarray(gen, dtype=float)
    T, N = gen.shape
    out = np.full((T, N), np.nan)
    for t in range(T):
        g, e, l = gen[t], emis[t], load[t]
        if flows is None:
            net = g - l
            s, d = np.maximum(net, 0), np.maximum(-net, 0)
            S, D = s.sum(), d.sum()
            F = np.zeros((N + 1, N + 1))
            M = max(S, D)
            if M > 0:
                F[:N, :N] = np.outer(s, d) / M
                if D > S:
                    F[N, :N] = d * (D - S) / D
                if S > D:
                    F[:N, N] = s * (S - D) / S
        else:
            F = np.zeros((N + 1, N + 1))
            F[:N, :N] = flows[t]
            b = g + flows[t].sum(0) - flows[t].sum(1) - l
            F[N, :N] = np.maximum(-b, 0)
            F[:N, N] = np.maximum(b, 0)
        Pin = np.append(g, 0.0) + F.sum(axis=0)
        A = np.diag(Pin) - F.T
        rhs = np.append(e, 0.0)
        A[N, :] = 0.0
        A[N, N] = 1.0
        rhs[N] = w_ext[t]
        keep = np.append(Pin[:N] > 1e-9 * max(1.0, Pin.max()), True)
        sub = np.ix_(keep, keep)
        w = np.linalg.solve(A[sub], rhs[keep])
        out[t, keep[:N]] = w[:-1]
    return out
