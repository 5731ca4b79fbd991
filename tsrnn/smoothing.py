"""Per-series exponential smoothing, compiled: simple, Holt and damped-trend
models (additive errors) fitted by least squares, the choice among them by AICc,
and a classical multiplicative (or additive) seasonal adjustment when a series'
autocorrelation at its season says it has one.

This is the statistical partner of the global network (``combine`` in
:class:`tsrnn.TSRNNRegressor`): it knows the level and trend of one short series
from that series alone, where the network knows what many series share.
"""

from __future__ import annotations

import numpy as np
from numba import njit

# Models: 0 simple (level), 1 Holt (level + trend), 2 damped trend, 3 simple with
# drift (a constant trend: the model of the Theta method).
SIMPLE, HOLT, DAMPED, DRIFT = 0, 1, 2, 3
N_PARAMS = (2, 4, 5, 3)  # alpha, l0 | + beta, b0 | + phi ; drift: alpha, l0, b0
PHI_RANGE = (0.8, 0.98)
NM_ITERS = 400
MODELS = (SIMPLE, HOLT, DAMPED, DRIFT)


@njit(cache=True)
def _squash(u, lo, hi):
    return lo + (hi - lo) / (1.0 + np.exp(-u))


@njit(cache=True)
def _unpack(model, u, scale):
    alpha = _squash(u[0], 1e-4, 0.9999)
    l0 = u[1] * scale
    beta, b0, phi = 0.0, 0.0, 1.0
    if model == DRIFT:
        b0 = u[2] * scale
    elif model >= 1:
        beta = alpha * _squash(u[2], 1e-4, 0.9999)
        b0 = u[3] * scale
    if model == 2:
        phi = _squash(u[4], PHI_RANGE[0], PHI_RANGE[1])
    return alpha, beta, phi, l0, b0


@njit(cache=True)
def _run(y, alpha, beta, phi, l0, b0, relative):
    """-2 log-likelihood (up to a constant) of the one-step errors, additive or
    ``relative`` (multiplicative: errors in proportion to the fit), and the final
    level and trend. The state updates are the same for both."""
    lev, tr, sse, logs = l0, b0, 0.0, 0.0
    n = y.shape[0]
    for t in range(n):
        fit = lev + phi * tr
        e = y[t] - fit
        if relative:
            if fit <= 0.0:
                return np.inf, lev, tr
            r = e / fit
            sse += r * r
            logs += np.log(fit)
        else:
            sse += e * e
        lev = fit + alpha * e
        tr = phi * tr + beta * e
    return n * np.log(max(sse, 1e-300)) + 2.0 * logs, lev, tr


@njit(cache=True)
def _objective(model, u, y, scale, relative):
    alpha, beta, phi, l0, b0 = _unpack(model, u, scale)
    lik, _, _ = _run(y, alpha, beta, phi, l0, b0, relative)
    return lik


@njit(cache=True)
def _nelder_mead(model, x0, y, scale, iters, relative):
    d = x0.shape[0]
    pts = np.empty((d + 1, d))
    vals = np.empty(d + 1)
    for i in range(d + 1):
        pts[i] = x0
        if i > 0:
            pts[i, i - 1] += 0.5
        vals[i] = _objective(model, pts[i], y, scale, relative)
    for _ in range(iters):
        order = np.argsort(vals)
        pts = pts[order]
        vals = vals[order]
        if vals[d] - vals[0] <= 1e-10 * (abs(vals[0]) + 1e-30):
            break
        c = pts[:d].sum(axis=0) / d
        xr = c + (c - pts[d])
        fr = _objective(model, xr, y, scale, relative)
        if fr < vals[0]:
            xe = c + 2.0 * (c - pts[d])
            fe = _objective(model, xe, y, scale, relative)
            if fe < fr:
                pts[d], vals[d] = xe, fe
            else:
                pts[d], vals[d] = xr, fr
        elif fr < vals[d - 1]:
            pts[d], vals[d] = xr, fr
        else:
            if fr < vals[d]:
                xc = c + 0.5 * (xr - c)
            else:
                xc = c + 0.5 * (pts[d] - c)
            fc = _objective(model, xc, y, scale, relative)
            if fc < min(fr, vals[d]):
                pts[d], vals[d] = xc, fc
            else:
                for i in range(1, d + 1):
                    pts[i] = pts[0] + 0.5 * (pts[i] - pts[0])
                    vals[i] = _objective(model, pts[i], y, scale, relative)
    best = np.argmin(vals)
    return pts[best], vals[best]


@njit(cache=True)
def fit_forecast(y, model, steps, relative=False):
    """Fit ``model`` to ``y`` (finite, float64) by maximum likelihood, with
    additive or ``relative`` errors; returns the forecasts for 1..steps and the
    AICc."""
    n = y.shape[0]
    scale = np.mean(np.abs(y)) + 1e-12
    k = N_PARAMS[model]
    x0 = np.zeros(k)
    x0[0] = 0.0  # alpha 0.5
    x0[1] = y[0] / scale
    slope = (y[n - 1] - y[0]) / (n - 1) / scale if n > 1 else 0.0
    if model == DRIFT:
        x0[2] = slope
    elif model >= 1:
        x0[2] = -1.0
        x0[3] = slope
    if model == 2:
        x0[4] = 1.0
    u, lik = _nelder_mead(model, x0, y, scale, NM_ITERS, relative)
    alpha, beta, phi, l0, b0 = _unpack(model, u, scale)
    _, lev, tr = _run(y, alpha, beta, phi, l0, b0, relative)
    out = np.empty(steps)
    damp = 0.0
    pw = 1.0
    for h in range(steps):
        pw *= phi
        damp += pw
        out[h] = lev + damp * tr
    kk = k + 1
    aic = lik + 2.0 * kk
    aicc = aic + 2.0 * kk * (kk + 1) / max(n - kk - 1, 1)
    return out, aicc


@njit(cache=True)
def auto_forecast(y, steps):
    """The AICc's choice among the simple, Holt and damped models (the simple one
    alone for series too short for a trend)."""
    best, best_ic = fit_forecast(y, SIMPLE, steps, False)
    positive = np.all(y > 0)
    for model in MODELS:
        if model != SIMPLE and y.shape[0] < 8:
            break
        for relative in (False, True):
            if (model == SIMPLE and not relative) or (relative and not positive):
                continue
            f, ic = fit_forecast(y, model, steps, relative)
            if ic < best_ic:
                best, best_ic = f, ic
    return best


def seasonal_indices(y: np.ndarray, m: int):
    """Seasonal factors of ``y`` (length m, aligned so that index 0 is the season
    of ``y[0]``) and whether they are multiplicative; None when ``y`` shows no
    season at the 90% level (autocorrelation at lag m against its standard error)
    or is too short to tell."""
    n = len(y)
    if m <= 1 or n < 3 * m:
        return None
    d = y - y.mean()
    den = float(d @ d)
    if den <= 0:
        return None
    acf = np.array([d[k:] @ d[:-k] / den for k in range(1, m + 1)])
    limit = 1.645 * np.sqrt((1 + 2 * np.sum(acf[:-1] ** 2)) / n)
    if abs(acf[-1]) <= limit:
        return None
    mult = bool(np.all(y > 0))
    # centred moving average of length m (2 x m for even m)
    if m % 2:
        trend = np.convolve(y, np.ones(m) / m, mode="valid")
        off = m // 2
    else:
        w = np.r_[0.5, np.ones(m - 1), 0.5] / m
        trend = np.convolve(y, w, mode="valid")
        off = m // 2
    core = y[off : off + len(trend)]
    ratio = core / trend if mult else core - trend
    idx = np.empty(m)
    for s in range(m):
        idx[(s + off) % m] = np.mean(ratio[s::m])
    if mult:
        idx /= idx.mean()
    else:
        idx -= idx.mean()
    return idx, mult


def forecast_series(y: np.ndarray, steps: int, season: int = 1) -> np.ndarray:
    """Forecasts for 1..steps of one series ``y``: seasonally adjusted when it has
    a season, the AICc's choice of exponential smoothing, re-seasonalised."""
    y = np.asarray(y, dtype=np.float64)
    s = seasonal_indices(y, season)
    if s is None:
        return auto_forecast(y, steps)
    idx, mult = s
    pos = np.arange(len(y)) % season
    adj = y / idx[pos] if mult else y - idx[pos]
    f = auto_forecast(adj, steps)
    fpos = np.arange(len(y), len(y) + steps) % season
    return f * idx[fpos] if mult else f + idx[fpos]
