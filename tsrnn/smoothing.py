"""Per-series exponential smoothing, compiled: the statistical partner of the
global network (``combine`` in :class:`tsrnn.TSRNNRegressor`). It knows the level
and trend of one short series from that series alone, where the network knows
what many series share; their mean forecasts better than either (the ablation:
``docs/user_guide.md``).

Each series (and target column) gets the model with the smallest AICc among
simple exponential smoothing, a damped trend and simple smoothing with drift (the
model behind the Theta method), each with additive or, for positive series,
relative errors, fitted by maximum likelihood (Nelder-Mead over squashed
parameters). Holt's undamped trend is left out: its local slope, extrapolated
without bound, forecasts worse than either neighbour on short series. A series
whose autocorrelation at its season is significant (90%) is seasonally adjusted
first by classical decomposition (multiplicative for positive series) and
re-seasonalised after.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from tsrnn import parallel
from tsrnn._config import JIT_OPTIONS

# Models: simple (level; parameters alpha, l0), damped trend (+ beta, b0, phi) and
# simple with drift (a constant trend, the model of the Theta method: + b0).
SIMPLE, DAMPED, DRIFT = 0, 1, 2
PHI_LOW, PHI_HIGH = 0.8, 0.98
NM_ITERS = 400


# The compiled functions below use scalar loops and write into arrays rather than
# return tuples, and call few others: numba optimises a function together with
# every compiled function it calls, at each level of calls, so three levels
# compile in 1.9 s where six took 2.4 s.


@njit(**JIT_OPTIONS)
def _objective(model, u, y, scale, relative, p):
    """-2 log-likelihood (up to a constant) of the one-step errors of unbounded
    parameters ``u`` of ``model``, additive or ``relative`` (multiplicative: errors
    in proportion to the fit); the bounded parameters (alpha, beta, phi, l0, b0)
    go to ``p`` (beta below alpha, phi in PHI_RANGE; squashed by a logistic)."""
    alpha = 1e-4 + (0.9999 - 1e-4) / (1.0 + np.exp(-u[0]))
    beta, phi, lev, tr = 0.0, 1.0, u[1] * scale, 0.0
    if model == DRIFT:
        tr = u[2] * scale
    elif model != SIMPLE:
        beta = alpha * (1e-4 + (0.9999 - 1e-4) / (1.0 + np.exp(-u[2])))
        tr = u[3] * scale
    if model == DAMPED:
        phi = PHI_LOW + (PHI_HIGH - PHI_LOW) / (1.0 + np.exp(-u[4]))
    p[0], p[1], p[2], p[3], p[4] = alpha, beta, phi, lev, tr
    sse, logs = 0.0, 0.0
    n = y.shape[0]
    for t in range(n):
        fit = lev + phi * tr
        e = y[t] - fit
        if relative:
            if fit <= 0.0:
                return np.inf
            r = e / fit
            sse += r * r
            logs += np.log(fit)
        else:
            sse += e * e
        lev = fit + alpha * e
        tr = phi * tr + beta * e
    return n * np.log(max(sse, 1e-300)) + 2.0 * logs


@njit(**JIT_OPTIONS)
def _nelder_mead(model, x0, y, scale, relative, best):
    """Minimise the likelihood over the unbounded parameters from ``x0``
    (standard coefficients 1, 2, 0.5, 0.5; at most NM_ITERS iterations); the
    minimiser goes to ``best``, the minimum is returned."""
    d = x0.shape[0]
    p = np.empty(5)
    pts = np.empty((d + 1, d))
    vals = np.empty(d + 1)
    c, xr, xe, xc = np.empty(d), np.empty(d), np.empty(d), np.empty(d)
    for i in range(d + 1):
        for j in range(d):
            pts[i, j] = x0[j]
        if i > 0:
            pts[i, i - 1] += 0.5
        vals[i] = _objective(model, pts[i], y, scale, relative, p)
    for _ in range(NM_ITERS):
        # insertion sort of the simplex by value (d + 1 <= 6 points)
        for i in range(1, d + 1):
            j = i
            while j > 0 and vals[j] < vals[j - 1]:
                vals[j], vals[j - 1] = vals[j - 1], vals[j]
                for k in range(d):
                    pts[j, k], pts[j - 1, k] = pts[j - 1, k], pts[j, k]
                j -= 1
        if vals[d] - vals[0] <= 1e-10 * (abs(vals[0]) + 1e-30):
            break
        for k in range(d):
            acc = 0.0
            for i in range(d):
                acc += pts[i, k]
            c[k] = acc / d
            xr[k] = 2.0 * c[k] - pts[d, k]
        fr = _objective(model, xr, y, scale, relative, p)
        take, ft = xr, fr
        if fr < vals[0]:
            for k in range(d):
                xe[k] = 3.0 * c[k] - 2.0 * pts[d, k]
            fe = _objective(model, xe, y, scale, relative, p)
            if fe < fr:
                take, ft = xe, fe
        elif fr >= vals[d - 1]:
            inside = fr >= vals[d]
            for k in range(d):
                xc[k] = 0.5 * (c[k] + (pts[d, k] if inside else xr[k]))
            fc = _objective(model, xc, y, scale, relative, p)
            if fc < min(fr, vals[d]):
                take, ft = xc, fc
            else:  # shrink towards the best point
                for i in range(1, d + 1):
                    for k in range(d):
                        pts[i, k] = pts[0, k] + 0.5 * (pts[i, k] - pts[0, k])
                    vals[i] = _objective(model, pts[i], y, scale, relative, p)
                continue
        for k in range(d):
            pts[d, k] = take[k]
        vals[d] = ft
    i_best = 0
    for i in range(1, d + 1):
        if vals[i] < vals[i_best]:
            i_best = i
    _objective(model, pts[i_best], y, scale, relative, best)
    return vals[i_best]


@njit(**JIT_OPTIONS)
def select(y):
    """The parameters (alpha, beta, phi, l0, b0) of the model with the smallest
    AICc for ``y`` (finite, float64; trend models from 8 values on). A series of
    one value gets the naive forecast (alpha 1)."""
    n = y.shape[0]
    best = np.empty(5)
    best[0], best[1], best[2], best[3], best[4] = 1.0, 0.0, 1.0, y[0], 0.0
    if n < 2:
        return best
    best_ic = np.inf
    positive = True
    for t in range(n):
        if y[t] <= 0.0:
            positive = False
    p = np.empty(5)
    scale = 1e-12
    for t in range(n):
        scale += abs(y[t]) / n
    for model in range(3):  # SIMPLE, DAMPED, DRIFT
        if model != SIMPLE and n < 8:
            break
        for r in range(2):
            if r == 1 and not positive:
                continue
            k = 2 if model == SIMPLE else (3 if model == DRIFT else 5)
            x0 = np.zeros(k)
            x0[1] = y[0] / scale
            slope = (y[n - 1] - y[0]) / (n - 1) / scale
            if model == DRIFT:
                x0[2] = slope
            elif model == DAMPED:
                x0[2] = -1.0
                x0[3] = slope
                x0[4] = 1.0
            lik = _nelder_mead(model, x0, y, scale, r == 1, p)
            kk = k + 1  # and the errors' variance
            ic = lik + 2.0 * kk + 2.0 * kk * (kk + 1) / max(n - kk - 1, 1)
            if ic < best_ic:
                best_ic = ic
                for k in range(5):
                    best[k] = p[k]
    return best


@njit(**JIT_OPTIONS)
def states(y, alpha, beta, phi, l0, b0):
    """(n + 1, 2) level and trend before each value of ``y`` and after the last:
    row t is what a forecast made after ``t`` values starts from."""
    out = np.empty((y.shape[0] + 1, 2))
    lev, tr = l0, b0
    out[0, 0], out[0, 1] = lev, tr
    for t in range(y.shape[0]):
        fit = lev + phi * tr
        e = y[t] - fit
        lev = fit + alpha * e
        tr = phi * tr + beta * e
        out[t + 1, 0], out[t + 1, 1] = lev, tr
    return out


def _trend_ahead(lev, tr, phi, steps):
    """``lev + (phi + phi**2 + ... + phi**h) * tr`` for h = 1..``steps``, along a
    last axis (``lev``, ``tr``, ``phi`` arrays of one shape, or scalars). Running
    products and sums in step order, as a loop would take them; in NumPy, so a
    forecast compiles nothing."""
    phi = np.asarray(phi, np.float64)[..., None]
    damp = np.cumsum(np.cumprod(np.repeat(phi, steps, axis=-1), axis=-1), axis=-1)
    return np.asarray(lev)[..., None] + damp * np.asarray(tr)[..., None]


def seasonal_factors(y: np.ndarray, m: int):
    """Seasonal factors of ``y`` (length m, index 0 the season of ``y[0]``) and
    whether they multiply; None when ``y`` shows no season at the 90% level
    (autocorrelation at lag m against its standard error) or is shorter than 3m."""
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
    # centred moving average over one season (2 x m for an even m)
    w = np.ones(m) / m if m % 2 else np.r_[0.5, np.ones(m - 1), 0.5] / m
    trend = np.convolve(y, w, mode="valid")
    off = m // 2
    core = y[off : off + len(trend)]
    ratio = core / trend if mult else core - trend
    idx = np.empty(m)
    for s in range(m):
        idx[(s + off) % m] = np.mean(ratio[s::m])
    return (idx / idx.mean(), True) if mult else (idx - idx.mean(), False)


class Smoothing:
    """Fitted smoothing models of packed series, one per series and target.

    Attributes (n series, t targets): ``params`` (n, t, 5) alpha, beta, phi and the
    initial level and trend; ``factors`` (n, t, m) seasonal factors (all 1 where a
    series has no season); ``multiply`` (n, t) whether they multiply (True where
    there is no season); ``state`` (n, t, 2) level and trend after the fitted history;
    ``length`` (n,) rows fitted (the season of the next step is ``length % m``).
    """

    ARRAYS = ("params", "factors", "multiply", "state", "length")

    def __init__(self, season, params, factors, multiply, state, length):
        self.season = int(season)
        self.params, self.factors = params, factors
        self.multiply, self.state, self.length = multiply, state, length

    @classmethod
    def fit(cls, blocks, n_targets: int, season: int, ids=None,
            targets=None) -> Smoothing:
        """Fit each series of ``blocks`` (a list of (rows, channels) arrays in
        original units; the first ``n_targets`` columns are modelled) from its last
        stretch of finite values. ``ids`` and ``targets`` name the series and
        target columns in errors."""
        m = max(int(season), 1)
        n = len(blocks)
        params = np.zeros((n, n_targets, 5))
        factors = np.ones((n, n_targets, m))
        multiply = np.ones((n, n_targets), bool)
        state = np.zeros((n, n_targets, 2))
        length = np.zeros(n, np.int64)

        def fit_rows(rows):  # series are independent: a range of them per thread
            for i in range(rows.start, rows.stop):
                block = blocks[i]
                length[i] = len(block)
                for j in range(n_targets):
                    y = np.asarray(block[:, j], np.float64)
                    finite = np.flatnonzero(np.isfinite(y))
                    if finite.size == 0:
                        series = f"series {ids[i]!r}" if ids is not None else f"series {i}"
                        column = targets[j] if targets is not None else j
                        raise ValueError(
                            f"Column {column!r} of {series} has no finite value: nothing "
                            "to fit or forecast it from. Drop the series, or fill its "
                            "values.")
                    y = y[: finite[-1] + 1]  # missing values at the end: not yet known
                    bad = np.flatnonzero(~np.isfinite(y))
                    first = bad[-1] + 1 if bad.size else 0
                    y = y[first:]
                    s = seasonal_factors(y, m)
                    if s is not None:
                        f, mult = s
                        factors[i, j] = np.roll(f, first % m)  # index 0: the block's start
                        multiply[i, j] = mult
                        adj = _adjust(y, factors[i, j], mult, first)
                    else:
                        adj = y
                    p = select(adj)  # compiled, releases the GIL
                    params[i, j] = p
                    state[i, j] = states(adj, *p)[-1]

        parallel.map_shards(fit_rows, parallel.item_shards(n))
        return cls(m, params, factors, multiply, state, length)

    def forecast(self, steps: int) -> np.ndarray:
        """(n, steps, targets) forecasts after each fitted history."""
        f = _trend_ahead(self.state[..., 0], self.state[..., 1], self.params[..., 2],
                         steps)  # (n, targets, steps)
        out = _reseason(f, self.factors, self.multiply, self.length[:, None])
        return np.ascontiguousarray(out.transpose(0, 2, 1))

    def along(self, i: int, y: np.ndarray, origins: np.ndarray, steps: int,
              continued: bool = False) -> np.ndarray:
        """(len(origins), steps, targets) forecasts of series ``i`` from after
        ``origins[k]`` rows of ``y`` (rows, >= targets columns; original units),
        running its fitted model along ``y`` without refitting: ``y`` is the fitted
        history itself (from its first row), or with ``continued`` what follows
        it. Origins with no row before them (or a missing value) give NaN."""
        nt = self.state.shape[1]
        out = np.full((len(origins), steps, nt), np.nan)
        phase0 = self.length[i] if continued else 0
        for j in range(nt):
            p, f, mult = self.params[i, j], self.factors[i, j], self.multiply[i, j]
            v = np.asarray(y[:, j], np.float64)
            adj = _adjust(v, f, mult, phase0)
            if continued:
                lev, tr = self.state[i, j]
                st = states(np.nan_to_num(adj), p[0], p[1], p[2], lev, tr)
            else:
                st = states(np.nan_to_num(adj), *p)
            # an origin needs a value (or the fitted state) before it, none missing
            cum_bad = np.concatenate([[0], np.cumsum(~np.isfinite(adj))])
            t = np.asarray(origins, np.int64)
            ok = ((t >= (0 if continued else 1)) & (t <= len(v))
                  & (cum_bad[np.clip(t, 0, len(v))] == 0))
            t = t[ok]
            out[ok, :, j] = _reseason(_trend_ahead(st[t, 0], st[t, 1], p[2], steps),
                                      f, mult, phase0 + t)
        return out


def _adjust(y, factors, mult, phase):
    pos = (phase + np.arange(len(y))) % len(factors)
    return y / factors[pos] if mult else y - factors[pos]


def _reseason(f, factors, mult, phase):
    """Forecasts ``f`` (..., steps) with the seasonal ``factors`` (..., m) put back
    from the season of ``phase`` on: multiplied where ``mult``, added elsewhere.
    ``factors``, ``mult`` and ``phase`` broadcast against ``f``'s leading axes."""
    pos = (np.asarray(phase)[..., None] + np.arange(f.shape[-1])) % factors.shape[-1]
    fac = np.take_along_axis(np.broadcast_to(factors, f.shape[:-1] + factors.shape[-1:]),
                             np.broadcast_to(pos, f.shape), axis=-1)
    return np.where(np.asarray(mult)[..., None], f * fac, f + fac)
