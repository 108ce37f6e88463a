"""Compiled per-bar update of the technical family: one numba call per bar writes every feature.

The state is two numpy arrays owned by ``TechnicalState``: a float64 vector of scalars (bar count,
previous bar, Wilder and EMA recursions; layout in the ``X_*`` constants) and a float64 matrix of
per-bar series (``S_*`` rows), each row a ring buffer stored twice (at ``i`` and ``i + CAP``) so the
value ``k`` bars back is ``row[base - k]`` with no wrap-around. Windowed statistics are computed
directly from the rings on every bar: values are centred on the newest one and variances use two
passes, so a flat window gives exactly 0 and no rounding accumulates across bars. Recursive
indicators keep the exact recursions and seeding of ``rolling.Wilder`` and ``rolling.Ema``.
Output positions (``P_*``) follow ``NAMES``, which ``technical.SPECS`` must match.
"""

import math

import numpy as np
from numba import njit

from mia_strategies.features.rolling import FloatArray


RET_H = (1, 2, 3, 5, 10, 15, 20, 30, 60, 120, 240, 390)
RSI_N = (6, 14, 28)
ATR_N = (5, 7, 14, 28, 50)
ADX_N = (7, 14, 28)
MACD_P = ((12, 26, 9), (5, 35, 5))
BB_N = (10, 20, 50)
SMA_N = (5, 10, 20, 50, 100, 200, 390)
EMA_N = (5, 10, 20, 50, 100, 200)
RV_N = (5, 10, 15, 20, 30, 60, 120, 240, 390)
RANGE_VOL_N = (10, 20, 30, 60, 120, 240)
VWAP_N = (30, 60, 120, 390)
STOCH_N = (14, 28)
CCI_N = (14, 20, 50)
Z_N = (20, 60, 120, 240)
ER_N = (10, 20, 30, 60, 120)
LR_N = (10, 20, 30, 60, 120)
DON_N = (20, 60, 120, 390)
HHLL_N = (20, 60, 390)
VOLZ_N = (20, 60, 390)
VOL_RATIO = ((5, 60), (15, 120))
MFI_N = (14, 28)
MOM_N = (30, 60, 120, 240)
AC_N = (30, 60, 120)
AMIHUD_N = (30, 120)
ROLL_N = (30, 120)

_LN2 = math.log(2.0)
_GK_C = 2.0 * _LN2 - 1.0
_PARK_SCALE = 4.0 * _LN2

#: Bars kept per series: the longest window (390) plus the close 390 bars back for ``ret_390``.
CAP = 391

# windows of the nested (one backward pass) statistics, ascending
_CLOSE_N = tuple(sorted(set(SMA_N) | set(BB_N) | set(Z_N)))
_HL_N = tuple(sorted(set(STOCH_N) | set(DON_N) | set(HHLL_N)))
_VOL_N = tuple(sorted(set(VWAP_N) | {a for a, _ in VOL_RATIO} | {b for _, b in VOL_RATIO}))
_MACD_F = tuple(f for f, _, _ in MACD_P)
_MACD_S = tuple(s for _, s, _ in MACD_P)
_MACD_G = tuple(g for _, _, g in MACD_P)
_VR_A = tuple(a for a, _ in VOL_RATIO)
_VR_B = tuple(b for _, b in VOL_RATIO)


def layout_names() -> tuple[str, ...]:
    """Feature names in output order (``technical.SPECS`` declares them in this order)."""
    names: list[str] = []
    names += [f"ret_{h}" for h in RET_H]
    names += [f"rsi_{n}" for n in RSI_N]
    names += [f"atr_{n}" for n in ATR_N]
    names += [f"atr_{n}_pct" for n in ATR_N]
    for n in ADX_N:
        names += [f"adx_{n}", f"plus_di_{n}", f"minus_di_{n}"]
    for f, s, g in MACD_P:
        names += [f"macd_{f}_{s}_{g}", f"macd_signal_{f}_{s}_{g}", f"macd_hist_{f}_{s}_{g}"]
    for n in BB_N:
        names += [f"bb_width_{n}", f"bb_pctb_{n}"]
    names += [f"sma_dist_{n}" for n in SMA_N]
    names += [f"ema_dist_{n}" for n in EMA_N]
    names += [f"rv_{n}" for n in RV_N]
    names += [f"parkinson_{n}" for n in RANGE_VOL_N]
    names += [f"garman_klass_{n}" for n in RANGE_VOL_N]
    names += [f"rogers_satchell_{n}" for n in RANGE_VOL_N]
    names += ["vwap_dist_session"]
    names += [f"vwap_dist_{n}" for n in VWAP_N]
    for n in STOCH_N:
        names += [f"stoch_k_{n}", f"stoch_d_{n}"]
    names += [f"cci_{n}" for n in CCI_N]
    names += [f"zscore_close_{n}" for n in Z_N]
    names += [f"efficiency_ratio_{n}" for n in ER_N]
    for n in LR_N:
        names += [f"linreg_slope_{n}", f"linreg_r2_{n}"]
    names += [f"donchian_pos_{n}" for n in DON_N]
    for n in HHLL_N:
        names += [f"hh_dist_{n}", f"ll_dist_{n}"]
    names += [f"vol_zscore_{n}" for n in VOLZ_N]
    names += [f"volume_ratio_{a}_{b}" for a, b in VOL_RATIO]
    names += [f"mfi_{n}" for n in MFI_N]
    for n in MOM_N:
        names += [f"skew_{n}", f"kurt_{n}"]
    names += [f"autocorr1_{n}" for n in AC_N]
    names += ["bar_return", "range_atr_ratio", "body_ratio", "upper_wick_ratio", "lower_wick_ratio"]
    names += ["close_location", "session_return", "gap_prev_session", "prev_session_return"]
    names += ["session_high_dist", "session_low_dist", "session_range_atr"]
    names += [f"amihud_{n}" for n in AMIHUD_N]
    names += [f"roll_spread_{n}" for n in ROLL_N]
    return tuple(names)


NAMES = layout_names()
N_OUT = len(NAMES)
_AT = {name: i for i, name in enumerate(NAMES)}

# output positions: first feature of each group (strides noted where a group interleaves names)
P_RET = _AT["ret_1"]
P_RSI = _AT["rsi_6"]
P_ATR = _AT["atr_5"]
P_ATR_PCT = _AT["atr_5_pct"]
P_ADX = _AT["adx_7"]  # stride 3: adx, plus_di, minus_di
P_MACD = _AT["macd_12_26_9"]  # stride 3: macd, signal, hist
P_BB = _AT["bb_width_10"]  # stride 2: width, pctb
P_SMA = _AT["sma_dist_5"]
P_EMA = _AT["ema_dist_5"]
P_RV = _AT["rv_5"]
P_PARK = _AT["parkinson_10"]
P_GK = _AT["garman_klass_10"]
P_RS = _AT["rogers_satchell_10"]
P_VWAP_S = _AT["vwap_dist_session"]
P_VWAP = _AT["vwap_dist_30"]
P_STOCH = _AT["stoch_k_14"]  # stride 2: k, d
P_CCI = _AT["cci_14"]
P_Z = _AT["zscore_close_20"]
P_ER = _AT["efficiency_ratio_10"]
P_LR = _AT["linreg_slope_10"]  # stride 2: slope, r2
P_DON = _AT["donchian_pos_20"]
P_HHLL = _AT["hh_dist_20"]  # stride 2: hh, ll
P_VOLZ = _AT["vol_zscore_20"]
P_VR = _AT["volume_ratio_5_60"]
P_MFI = _AT["mfi_14"]
P_MOM = _AT["skew_30"]  # stride 2: skew, kurt
P_AC = _AT["autocorr1_30"]
P_BAR = _AT["bar_return"]  # then the 11 bar-shape and session features in NAMES order
P_AMI = _AT["amihud_30"]
P_ROLL = _AT["roll_spread_30"]

# per nested window: the output position it feeds (-1: none); read by the kernel as constants
_CLOSE_SMA = tuple(P_SMA + SMA_N.index(n) if n in SMA_N else -1 for n in _CLOSE_N)
_CLOSE_BB = tuple(P_BB + 2 * BB_N.index(n) if n in BB_N else -1 for n in _CLOSE_N)
_CLOSE_Z = tuple(P_Z + Z_N.index(n) if n in Z_N else -1 for n in _CLOSE_N)
_RV_MOM = tuple(P_MOM + 2 * MOM_N.index(n) if n in MOM_N else -1 for n in RV_N)
_HL_STOCH = tuple(STOCH_N.index(n) if n in STOCH_N else -1 for n in _HL_N)
_HL_DON = tuple(P_DON + DON_N.index(n) if n in DON_N else -1 for n in _HL_N)
_HL_HHLL = tuple(P_HHLL + 2 * HHLL_N.index(n) if n in HHLL_N else -1 for n in _HL_N)
_VOL_VWAP = tuple(P_VWAP + VWAP_N.index(n) if n in VWAP_N else -1 for n in _VOL_N)
_VOL_VR = tuple(_VR_B.index(n) if n in _VR_B else -1 for n in _VOL_N)

# scalar state layout
X_N = 0  # bars seen
X_PC = 1  # previous close, high, low, typical price
X_PH = 2
X_PL = 3
X_PTP = 4
X_ATR = 5  # per ATR n: seed, value
X_RSI = X_ATR + 2 * len(ATR_N)  # per RSI n: gain seed, gain value, loss seed, loss value
X_ADX = X_RSI + 4 * len(RSI_N)  # per ADX n: S(TR), S(+DM), S(-DM), DX seed, ADX, +DI, -DI
X_EMA = X_ADX + 7 * len(ADX_N)  # per EMA n: value
X_MACD = X_EMA + len(EMA_N)  # per MACD: fast, slow, signal
X_STOCH = X_MACD + 3 * len(MACD_P)  # per stochastic n: the last three %K, newest first
N_STATE = X_STOCH + 3 * len(STOCH_N)
_X_ATR14 = X_ATR + 2 * ATR_N.index(14) + 1

# per-bar series (rows of the ring matrix); those from S_R on are placeholders (0) on the first bar
S_C = 0  # close
S_H = 1  # high
S_L = 2  # low
S_TP = 3  # typical price
S_V = 4  # volume
S_LNV = 5  # ln(1 + volume)
S_Y = 6  # ln(close)
S_PARK = 7  # ln(H/L)^2
S_GK = 8  # Garman-Klass term
S_RS = 9  # Rogers-Satchell term
S_TPV = 10  # typical price x volume
S_R = 11  # 1-bar log return
S_DC = 12  # close change
S_ADC = 13  # |close change|
S_MFP = 14  # positive money flow
S_MFN = 15  # negative money flow
S_AMI = 16  # |r| / (V C) x 1e6 (0 when V = 0)
S_AOK = 17  # 1 when V > 0
N_SERIES = 18


def new_state() -> tuple[FloatArray, FloatArray]:
    """A fresh scalar state vector and ring matrix (nothing seen yet)."""
    st = np.zeros(N_STATE)
    st[X_PC : X_PTP + 1] = np.nan
    for j in range(len(ATR_N)):
        st[X_ATR + 2 * j + 1] = np.nan
    for j in range(len(RSI_N)):
        st[X_RSI + 4 * j + 1] = np.nan
        st[X_RSI + 4 * j + 3] = np.nan
    for j in range(len(ADX_N)):
        st[X_ADX + 7 * j + 4 : X_ADX + 7 * j + 7] = np.nan
    st[X_EMA:N_STATE] = np.nan
    return st, np.zeros((N_SERIES, 2 * CAP))


@njit(cache=True)
def _wilder(st: FloatArray, k: int, n: int, count: int, x: float) -> float:
    """``rolling.Wilder.update`` on ``st[k]`` (seed) and ``st[k + 1]`` (value); ``count`` includes x."""
    if count < n:
        st[k] += x
    elif count == n:
        st[k + 1] = (st[k] + x) / n
    else:
        st[k + 1] = (st[k + 1] * (n - 1) + x) / n
    return st[k + 1]  # type: ignore[no-any-return]


@njit(cache=True)
def _ema(st: FloatArray, k: int, n: int, count: int, x: float) -> float:
    """``rolling.Ema.update`` on ``st[k]``: seeded with the first value, then ``alpha = 2 / (n + 1)``."""
    if count == 1:
        st[k] = x
    else:
        st[k] += 2.0 / (n + 1.0) * (x - st[k])
    return st[k]  # type: ignore[no-any-return]


@njit(cache=True)
def _centered_mean(row: FloatArray, base: int, n: int, ref: float) -> float:
    """Mean of ``x - ref`` over the newest ``n`` values."""
    acc = 0.0
    for k in range(n):
        acc += row[base - k] - ref
    return acc / n


@njit(cache=True)
def _nested_means(row: FloatArray, base: int, windows: tuple[int, ...], avail: int, ref: float) -> FloatArray:
    """``_centered_mean`` for every window (ascending) that ``avail`` values fill, in one backward pass.

    The summation order is the same as ``_centered_mean``'s (newest first), so the results are too.
    """
    means = np.empty(len(windows))
    acc = 0.0
    k = 0
    for t in range(len(windows)):
        n = windows[t]
        if avail < n:
            break
        while k < n:
            acc += row[base - k] - ref
            k += 1
        means[t] = acc / n
    return means


@njit(cache=True)
def _centered_ss(row: FloatArray, base: int, n: int, ref: float, md: float) -> float:
    """Sum of squared deviations from the mean (``ref + md``) over the newest ``n`` values."""
    acc = 0.0
    for k in range(n):
        d = row[base - k] - ref - md
        acc += d * d
    return acc


@njit(cache=True)
def step(
    st: FloatArray,
    ring: FloatArray,
    out: FloatArray,
    o: float,
    h: float,
    lo: float,
    c: float,
    v: float,
    s_open: float,
    s_high: float,
    s_low: float,
    prev_s_close: float,
    prev_s_open: float,
    s_pv: float,
    s_vol: float,
) -> float:
    """Update the state with one bar, write every feature into ``out``; return ATR(14) (NaN before)."""
    nan = np.nan
    for k in range(out.shape[0]):
        out[k] = nan
    count = int(st[X_N]) + 1
    st[X_N] = count
    pc = st[X_PC]
    first = count == 1

    # -- per-bar terms into the rings ---------------------------------------------------------------
    i = (count - 1) % CAP
    base = i + CAP
    log_hl = math.log(h / lo)
    log_co = math.log(c / o)
    tp = (h + lo + c) / 3.0
    r = 0.0
    dc = 0.0
    mfp = 0.0
    mfn = 0.0
    ami = 0.0
    aok = 0.0
    if not first:
        r = math.log(c / pc)
        dc = c - pc
        ptp = st[X_PTP]
        if tp > ptp:
            mfp = tp * v
        elif tp < ptp:
            mfn = tp * v
        if v > 0.0:
            ami = abs(r) / (v * c) * 1e6
            aok = 1.0
    terms = (
        c,
        h,
        lo,
        tp,
        v,
        math.log1p(v),
        math.log(c),
        log_hl * log_hl,
        0.5 * log_hl * log_hl - _GK_C * log_co * log_co,
        math.log(h / c) * math.log(h / o) + math.log(lo / c) * math.log(lo / o),
        tp * v,
        r,
        dc,
        abs(dc),
        mfp,
        mfn,
        ami,
        aok,
    )
    for si in range(N_SERIES):
        ring[si, i] = terms[si]
        ring[si, base] = terms[si]

    # -- recursive indicators -----------------------------------------------------------------------
    tr = h - lo if first else max(h - lo, abs(h - pc), abs(lo - pc))
    for j in range(len(ATR_N)):
        atr = _wilder(st, X_ATR + 2 * j, ATR_N[j], count, tr)
        out[P_ATR + j] = atr
        out[P_ATR_PCT + j] = atr / c
    atr14 = st[_X_ATR14]
    if not first:
        change = c - pc
        gain = change if change > 0.0 else 0.0
        loss = -change if change < 0.0 else 0.0
        for j in range(len(RSI_N)):
            n = RSI_N[j]
            g = _wilder(st, X_RSI + 4 * j, n, count - 1, gain)
            lv = _wilder(st, X_RSI + 4 * j + 2, n, count - 1, loss)
            if g == g and lv == lv:
                if lv == 0.0:
                    out[P_RSI + j] = 50.0 if g == 0.0 else 100.0
                else:
                    out[P_RSI + j] = 100.0 - 100.0 / (1.0 + g / lv)
        up = h - st[X_PH]
        down = st[X_PL] - lo
        dm_p = up if up > down and up > 0.0 else 0.0
        dm_m = down if down > up and down > 0.0 else 0.0
        seen = count - 1
        for j in range(len(ADX_N)):
            n = ADX_N[j]
            x = X_ADX + 7 * j
            if seen <= n:
                st[x] += tr
                st[x + 1] += dm_p
                st[x + 2] += dm_m
            else:
                st[x] += tr - st[x] / n
                st[x + 1] += dm_p - st[x + 1] / n
                st[x + 2] += dm_m - st[x + 2] / n
            if seen >= n:
                if st[x] > 0.0:
                    st[x + 5] = 100.0 * st[x + 1] / st[x]
                    st[x + 6] = 100.0 * st[x + 2] / st[x]
                else:
                    st[x + 5] = 0.0
                    st[x + 6] = 0.0
                total = st[x + 5] + st[x + 6]
                dx = 100.0 * abs(st[x + 5] - st[x + 6]) / total if total > 0.0 else 0.0
                _wilder(st, x + 3, n, seen - n + 1, dx)
            out[P_ADX + 3 * j] = st[x + 4]
            out[P_ADX + 3 * j + 1] = st[x + 5]
            out[P_ADX + 3 * j + 2] = st[x + 6]
    for j in range(len(EMA_N)):
        n = EMA_N[j]
        value = _ema(st, X_EMA + j, n, count, c)
        if count >= n:
            out[P_EMA + j] = c / value - 1.0
    for j in range(len(MACD_P)):
        x = X_MACD + 3 * j
        macd = (_ema(st, x, _MACD_F[j], count, c) - _ema(st, x + 1, _MACD_S[j], count, c)) / c
        signal = _ema(st, x + 2, _MACD_G[j], count, macd)
        if count >= _MACD_S[j] + _MACD_G[j]:
            out[P_MACD + 3 * j] = macd
            out[P_MACD + 3 * j + 1] = signal
            out[P_MACD + 3 * j + 2] = macd - signal

    # -- returns and close statistics ---------------------------------------------------------------
    closes = ring[S_C]
    for j in range(len(RET_H)):
        lag = RET_H[j]
        if count > lag:
            out[P_RET + j] = math.log(c / closes[base - lag])
    close_means = _nested_means(closes, base, _CLOSE_N, count, c)
    for t in range(len(_CLOSE_N)):
        n = _CLOSE_N[t]
        if count < n:
            break
        md = close_means[t]
        m = c + md
        if _CLOSE_SMA[t] >= 0:
            out[_CLOSE_SMA[t]] = c / m - 1.0
        if _CLOSE_BB[t] >= 0 or _CLOSE_Z[t] >= 0:
            s = math.sqrt(_centered_ss(closes, base, n, c, md) / n)
            if _CLOSE_BB[t] >= 0:
                out[_CLOSE_BB[t]] = 4.0 * s / m
                out[_CLOSE_BB[t] + 1] = (2.0 * s - md) / (4.0 * s) if s > 0.0 else 0.5
            if _CLOSE_Z[t] >= 0:
                out[_CLOSE_Z[t]] = -md / s if s > 0.0 else 0.0
    absdc = ring[S_ADC]
    path = 0.0
    k = 0
    for j in range(len(ER_N)):
        n = ER_N[j]
        if count <= n:
            break
        while k < n:
            path += absdc[base - k]
            k += 1
        out[P_ER + j] = abs(c - closes[base - n]) / path if path > 0.0 else 0.0
    ys = ring[S_Y]
    y0 = ys[base]
    for j in range(len(LR_N)):
        n = LR_N[j]
        if count < n:
            break
        md = _centered_mean(ys, base, n, y0)
        half = (n - 1) / 2.0
        sxy = 0.0
        syy = 0.0
        for k in range(n):
            d = ys[base - k] - y0 - md
            sxy += (half - k) * d
            syy += d * d
        sxx = n * (n * n - 1) / 12.0
        slope = sxy / sxx
        out[P_LR + 2 * j] = slope
        out[P_LR + 2 * j + 1] = min(1.0, slope * slope * sxx / syy) if syy > 0.0 else 0.0
    tps = ring[S_TP]
    for j in range(len(CCI_N)):
        n = CCI_N[j]
        if count < n:
            break
        md = _centered_mean(tps, base, n, tp)
        mad = 0.0
        for k in range(n):
            mad += abs(tps[base - k] - tp - md)
        mad /= n
        out[P_CCI + j] = -md / (0.015 * mad) if mad > 0.0 else 0.0

    # -- return moments (returns start at bar 2) ----------------------------------------------------
    rets = ring[S_R]
    n_ret = count - 1
    ret_means = _nested_means(rets, base, RV_N, n_ret, r)
    for j in range(len(RV_N)):
        n = RV_N[j]
        if n_ret < n:
            break
        md = ret_means[j]
        s2 = 0.0
        s3 = 0.0
        s4 = 0.0
        for k in range(n):
            d = rets[base - k] - r - md
            d2 = d * d
            s2 += d2
            s3 += d2 * d
            s4 += d2 * d2
        out[P_RV + j] = math.sqrt(s2 / (n - 1))
        pm = _RV_MOM[j]
        if pm >= 0:
            var = s2 / n
            if var > 0.0:
                out[pm] = s3 / n / var**1.5
                out[pm + 1] = s4 / n / (var * var) - 3.0
            else:
                out[pm] = 0.0
                out[pm + 1] = 0.0
    for j in range(len(AC_N)):
        n = AC_N[j]
        if n_ret < n + 1:
            break
        # pairs (r_t-k, r_t-k-1), k < n, centred on the newest return
        sa = 0.0
        sb = 0.0
        for k in range(n):
            sa += rets[base - k] - r
            sb += rets[base - k - 1] - r
        ma = sa / n
        mb = sb / n
        saa = 0.0
        sbb = 0.0
        sab = 0.0
        for k in range(n):
            da = rets[base - k] - r - ma
            db = rets[base - k - 1] - r - mb
            saa += da * da
            sbb += db * db
            sab += da * db
        out[P_AC + j] = sab / math.sqrt(saa * sbb) if saa > 0.0 and sbb > 0.0 else 0.0
    dcs = ring[S_DC]
    for j in range(len(ROLL_N)):
        n = ROLL_N[j]
        if n_ret < n + 1:
            break
        # raw sums: the changes are already differences (no level to cancel), and on a tick grid the
        # sums and products are exact, so the sign of the covariance is exact too
        sa = 0.0
        sb = 0.0
        sab = 0.0
        for k in range(n):
            da = dcs[base - k]
            db = dcs[base - k - 1]
            sa += da
            sb += db
            sab += da * db
        cov = (n * sab - sa * sb) / (n * n)
        out[P_ROLL + j] = 2.0 * math.sqrt(-cov) / c * 1e4 if cov < 0.0 else 0.0

    # -- ranges: extremes, range volatility ---------------------------------------------------------
    highs = ring[S_H]
    lows = ring[S_L]
    top = -np.inf
    bottom = np.inf
    k = 0
    for t in range(len(_HL_N)):
        n = _HL_N[t]
        if count < n:
            break
        while k < n:
            hk = highs[base - k]
            lk = lows[base - k]
            if hk > top:
                top = hk
            if lk < bottom:
                bottom = lk
            k += 1
        j = _HL_STOCH[t]
        if j >= 0:
            x = X_STOCH + 3 * j
            pct_k = 100.0 * (c - bottom) / (top - bottom) if top > bottom else 50.0
            out[P_STOCH + 2 * j] = pct_k
            st[x + 2] = st[x + 1]
            st[x + 1] = st[x]
            st[x] = pct_k
            if count >= n + 2:
                out[P_STOCH + 2 * j + 1] = (st[x] + st[x + 1] + st[x + 2]) / 3.0
        if _HL_DON[t] >= 0:
            out[_HL_DON[t]] = (c - bottom) / (top - bottom) if top > bottom else 0.5
        if _HL_HHLL[t] >= 0:
            out[_HL_HHLL[t]] = math.log(top / c)
            out[_HL_HHLL[t] + 1] = math.log(c / bottom)
    park = ring[S_PARK]
    gks = ring[S_GK]
    rss = ring[S_RS]
    sp = 0.0
    sg = 0.0
    sr = 0.0
    k = 0
    for j in range(len(RANGE_VOL_N)):
        n = RANGE_VOL_N[j]
        if count < n:
            break
        while k < n:
            sp += park[base - k]
            sg += gks[base - k]
            sr += rss[base - k]
            k += 1
        mean = sp / n / _PARK_SCALE
        out[P_PARK + j] = math.sqrt(mean) if mean > 0.0 else 0.0
        mean = sg / n
        out[P_GK + j] = math.sqrt(mean) if mean > 0.0 else 0.0
        mean = sr / n
        out[P_RS + j] = math.sqrt(mean) if mean > 0.0 else 0.0

    # -- volume ---------------------------------------------------------------------------------
    tpvs = ring[S_TPV]
    vols = ring[S_V]
    stpv = 0.0
    svol = 0.0
    k = 0
    for t in range(len(_VOL_N)):
        n = _VOL_N[t]
        if count < n:
            break
        while k < n:
            stpv += tpvs[base - k]
            svol += vols[base - k]
            k += 1
        if _VOL_VWAP[t] >= 0:
            out[_VOL_VWAP[t]] = c / (stpv / svol) - 1.0 if svol > 0.0 else 0.0
        j = _VOL_VR[t]
        if j >= 0:
            a = _VR_A[j]
            short = 0.0
            for q in range(a):
                short += vols[base - q]
            den = svol / n
            out[P_VR + j] = (short / a) / den if den > 0.0 else 1.0
    lnvs = ring[S_LNV]
    lnv = lnvs[base]
    lnv_means = _nested_means(lnvs, base, VOLZ_N, count, lnv)
    for j in range(len(VOLZ_N)):
        n = VOLZ_N[j]
        if count < n:
            break
        md = lnv_means[j]
        s = math.sqrt(_centered_ss(lnvs, base, n, lnv, md) / n)
        out[P_VOLZ + j] = -md / s if s > 0.0 else 0.0
    mfps = ring[S_MFP]
    mfns = ring[S_MFN]
    p = 0.0
    q_neg = 0.0
    k = 0
    for j in range(len(MFI_N)):
        n = MFI_N[j]
        if n_ret < n:
            break
        while k < n:
            p += mfps[base - k]
            q_neg += mfns[base - k]
            k += 1
        if q_neg == 0.0:
            out[P_MFI + j] = 100.0 if p > 0.0 else 50.0
        else:
            out[P_MFI + j] = 100.0 - 100.0 / (1.0 + p / q_neg)
    amis = ring[S_AMI]
    aoks = ring[S_AOK]
    total = 0.0
    ok = 0.0
    k = 0
    for j in range(len(AMIHUD_N)):
        n = AMIHUD_N[j]
        if n_ret < n:
            break
        while k < n:
            total += amis[base - k]
            ok += aoks[base - k]
            k += 1
        if ok > 0.0:
            out[P_AMI + j] = total / ok

    # -- bar shape and trading day ------------------------------------------------------------------
    rng = h - lo
    out[P_BAR] = log_co
    if atr14 == atr14:
        out[P_BAR + 1] = rng / atr14 if atr14 > 0.0 else 0.0
    if rng > 0.0:
        out[P_BAR + 2] = (c - o) / rng
        out[P_BAR + 3] = (h - max(o, c)) / rng
        out[P_BAR + 4] = (min(o, c) - lo) / rng
        out[P_BAR + 5] = (c - lo) / rng
    else:
        out[P_BAR + 2] = 0.0
        out[P_BAR + 3] = 0.0
        out[P_BAR + 4] = 0.0
        out[P_BAR + 5] = 0.5
    out[P_BAR + 6] = math.log(c / s_open)
    if prev_s_close == prev_s_close:
        out[P_BAR + 7] = math.log(s_open / prev_s_close)
        out[P_BAR + 8] = math.log(prev_s_close / prev_s_open)
    out[P_BAR + 9] = math.log(s_high / c)
    out[P_BAR + 10] = math.log(c / s_low)
    if atr14 == atr14:
        out[P_BAR + 11] = (s_high - s_low) / atr14 if atr14 > 0.0 else 0.0
    out[P_VWAP_S] = c / (s_pv / s_vol) - 1.0 if s_vol > 0.0 else 0.0

    st[X_PC] = c
    st[X_PH] = h
    st[X_PL] = lo
    st[X_PTP] = tp
    return atr14  # type: ignore[no-any-return]
