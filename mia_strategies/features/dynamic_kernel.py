"""Compiled per-bar updates of the dynamic, composite and cross-market (ETF pair) families.

The interpreted versions paid Python and small-numpy overhead on every window (running moments,
sorted windows for percentile ranks, ratio reads). Here the whole bar is one ``njit`` call over
state arrays owned by the family state, built from the ``rolling_kernel`` blocks (bit-identical to
``rolling.py``). The arithmetic is the interpreted version's, operation for operation (no fast-math).
"""

import math

import numpy as np
from numba import njit

from mia_strategies.features.rolling_kernel import moments_mean
from mia_strategies.features.rolling_kernel import moments_push
from mia_strategies.features.rolling_kernel import moments_std
from mia_strategies.features.rolling_kernel import rank_of
from mia_strategies.features.rolling_kernel import rank_push
from mia_strategies.features.rolling_kernel import sums_push


_NAN = math.nan


# -- the dynamic family --------------------------------------------------------------------------------


@njit(cache=True)
def _ratio(a: float, b: float) -> float:  # pragma: no cover - compiled
    if a != a or b != b:
        return _NAN
    return a / b if b > 0.0 else 1.0


@njit(cache=True)
def dynamic_bar(
    full: np.ndarray,
    out: np.ndarray,
    high: float,
    low: float,
    f: np.ndarray,
    s: np.ndarray,
    p: np.ndarray,
    atr_w: np.ndarray,
    rv_w: np.ndarray,
    rng_w: np.ndarray,
) -> None:  # pragma: no cover - compiled
    """One bar of ``DynamicState``; ``p`` holds offsets and positions (see ``dynamic.py``)."""
    # p: 0 atr src, 1 rv30 src, 2 rv20 src, 3 rv390 src, 4 flag pos,
    #    5..7 f/s offsets: atr moments, rv moments, range sums; 8..10 state offsets (s)
    #    11 lag f, 12 lag s, 13 lag cap, 14 n atr ranks, 15 n rv ranks, 16 n ratios, 17 start of lists
    q = 17
    atr = full[p[0]]
    n_atr_rank = p[14]
    n_rv_rank = p[15]
    if atr == atr:
        fo = p[5]
        so = p[8]
        moments_push(f, fo, s, so, atr_w, atr)
        for j in range(atr_w.shape[0]):
            w = atr_w[j]
            m = moments_mean(f, fo, s, so, w, j)
            if m == m:
                sd = moments_std(f, fo, s, so, atr_w.shape[0], w, j)
                out[p[q + j]] = (atr - m) / sd if sd > 0.0 else 0.0
        r = q + atr_w.shape[0]
        for _k in range(n_atr_rank):  # (f offset, s offset, w, position)
            rank_push(f, p[r], s, p[r + 1], p[r + 2], atr)
            if s[p[r + 1] + 1] >= p[r + 2]:
                out[p[r + 3]] = rank_of(f, p[r], s, p[r + 1], atr)
            r += 4
        lf = p[11]
        ls = p[12]
        cap = p[13]
        i = s[ls]
        f[lf + i] = atr
        s[ls] = i + 1 if i + 1 < cap else 0
        s[ls + 1] += 1
        count = s[ls + 1]
        for _k in range(2):  # (lag, position)
            back = p[r]
            if back < count and back < cap:
                t = s[ls] - 1 - back
                if t < 0:
                    t += cap
                past = f[lf + t]
                if past == past:
                    out[p[r + 1]] = math.log(atr / past) if past > 0.0 and atr > 0.0 else 0.0
            r += 2
    r = q + atr_w.shape[0] + 4 * n_atr_rank + 4
    rv30 = full[p[1]]
    if rv30 == rv30:
        for _k in range(n_rv_rank):
            rank_push(f, p[r], s, p[r + 1], p[r + 2], rv30)
            if s[p[r + 1] + 1] >= p[r + 2]:
                out[p[r + 3]] = rank_of(f, p[r], s, p[r + 1], rv30)
            r += 4
        fo = p[6]
        so = p[9]
        moments_push(f, fo, s, so, rv_w, rv30)
        for j in range(rv_w.shape[0]):
            w = rv_w[j]
            m = moments_mean(f, fo, s, so, w, j)
            if m == m:
                out[p[r + j]] = moments_std(f, fo, s, so, rv_w.shape[0], w, j) / m if m > 0.0 else 0.0
    else:
        r += 4 * n_rv_rank
    r += rv_w.shape[0]
    for _k in range(p[16]):  # (numerator src, denominator src, position)
        out[p[r + 2]] = _ratio(full[p[r]], full[p[r + 1]])
        r += 3
    rng = high - low
    fo = p[7]
    so = p[10]
    sums_push(f, fo, s, so, rng_w, rng)
    for j in range(rng_w.shape[0]):
        n = rng_w[j]
        if s[so + 1] >= n:
            mean = f[fo + j] / n
            out[p[r + j]] = rng / mean if mean > 0.0 else 1.0
    ratio = _ratio(full[p[2]], full[p[3]])
    if ratio == ratio:
        out[p[4]] = 1.0 if ratio > 1.5 else 0.0


# -- the composite family ----------------------------------------------------------------------------


@njit(cache=True)
def composite_bar(
    full: np.ndarray, out: np.ndarray, highs: np.ndarray, lows: np.ndarray, c: float, p: np.ndarray
) -> None:  # pragma: no cover - compiled
    """One bar of ``CompositeState``; ``p`` = 15 source positions then 9 output positions (see composite.py)."""
    atr = full[p[0]]
    nh = highs.shape[0]
    for k in range(2):
        n = 20 if k == 0 else 60
        if nh >= n + 1 and atr == atr:
            top = highs[nh - n - 1]
            bottom = lows[nh - n - 1]
            for t in range(nh - n, nh - 1):
                if highs[t] > top:
                    top = highs[t]
                if lows[t] < bottom:
                    bottom = lows[t]
            up = c - top
            down = bottom - c
            score = (up if up > 0.0 else 0.0) - (down if down > 0.0 else 0.0)
            out[p[15 + k]] = score / atr if atr > 0.0 else 0.0
    er30 = full[p[1]]
    pctb = full[p[2]]
    if er30 == er30 and pctb == pctb:
        a = abs(2.0 * pctb - 1.0)
        out[p[17]] = (1.0 - er30) * (1.0 - (a if a < 1.0 else 1.0))
    hft = full[p[3]]
    spoof = full[p[4]]
    qv = full[p[5]]
    if hft == hft and spoof == spoof and qv == qv:
        e = qv - 1.0
        e = e if e > 0.0 else 0.0
        out[p[18]] = (hft + (spoof if spoof < 1.0 else 1.0) + (e if e < 1.0 else 1.0)) / 3.0
    slope = full[p[6]]
    adx = full[p[7]]
    if slope == slope and adx == adx and er30 == er30:
        sign = 1.0 if slope > 0.0 else (-1.0 if slope < 0.0 else 0.0)
        out[p[19]] = sign * adx / 100.0 * er30
    z60 = full[p[8]]
    if z60 == z60 and er30 == er30:
        out[p[20]] = -z60 * (1.0 - er30)
    ret30 = full[p[9]]
    rv30 = full[p[10]]
    if ret30 == ret30 and rv30 == rv30:
        scale = rv30 * math.sqrt(30.0)
        out[p[21]] = math.tanh(ret30 / scale) if scale > 0.0 else 0.0
    depth_z = full[p[11]]
    spread_z = full[p[12]]
    if depth_z == depth_z and spread_z == spread_z:
        out[p[22]] = depth_z - spread_z
    atr_dyn = full[p[13]]
    vol_anom = full[p[14]]
    if atr_dyn == atr_dyn and vol_anom == vol_anom:
        out[p[23]] = atr_dyn + 0.5 * vol_anom
    else:
        out[p[23]] = _NAN


# -- the cross-market family's ETF pairs ---------------------------------------------------------------

#: Rows of the cross-market ring array: the basis, the paired returns, the lead and the lag pairs.
BASIS, ES_R, ETF_R, LEAD_ES, LEAD_ETF, LAG_ES, LAG_ETF = range(7)
N_RINGS = 7


@njit(cache=True)
def _block_sum(a: np.ndarray, lo: int, n: int) -> float:  # pragma: no cover - compiled
    """numpy's pairwise-sum leaf (``n <= 128``): eight accumulators, then the rest in order."""
    if n < 8:
        res = 0.0
        for i in range(lo, lo + n):
            res += a[i]
        return res
    r0, r1, r2, r3 = a[lo], a[lo + 1], a[lo + 2], a[lo + 3]
    r4, r5, r6, r7 = a[lo + 4], a[lo + 5], a[lo + 6], a[lo + 7]
    i = 8
    while i < n - (n % 8):
        j = lo + i
        r0 += a[j]
        r1 += a[j + 1]
        r2 += a[j + 2]
        r3 += a[j + 3]
        r4 += a[j + 4]
        r5 += a[j + 5]
        r6 += a[j + 6]
        r7 += a[j + 7]
        i += 8
    res = ((r0 + r1) + (r2 + r3)) + ((r4 + r5) + (r6 + r7))
    while i < n:
        res += a[lo + i]
        i += 1
    return res


@njit(cache=True)
def _split(n: int) -> int:  # pragma: no cover - compiled
    n2 = n // 2
    return n2 - n2 % 8


@njit(cache=True)
def _sum_240(a: np.ndarray, lo: int, n: int) -> float:  # pragma: no cover - compiled
    if n <= 128:
        return _block_sum(a, lo, n)
    n2 = _split(n)
    return _block_sum(a, lo, n2) + _block_sum(a, lo + n2, n - n2)


@njit(cache=True)
def _sum_464(a: np.ndarray, lo: int, n: int) -> float:  # pragma: no cover - compiled
    if n <= 128:
        return _block_sum(a, lo, n)
    n2 = _split(n)
    return _sum_240(a, lo, n2) + _sum_240(a, lo + n2, n - n2)


@njit(cache=True)
def pairwise_sum(a: np.ndarray, lo: int, n: int) -> float:  # pragma: no cover - compiled
    """numpy's pairwise summation of ``a[lo : lo + n]`` (``np.sum``/``mean``/``std``): the same bits.

    numpy recurses (halves rounded to multiples of 8 down to blocks of 128); cached numba code must
    not recurse (numba issue 6061), so the levels are written out: enough for ``n <= 900``.
    """
    if n <= 128:
        return _block_sum(a, lo, n)
    n2 = _split(n)
    return _sum_464(a, lo, n2) + _sum_464(a, lo + n2, n - n2)


@njit(cache=True)
def _ring_push(buf: np.ndarray, st: np.ndarray, r: int, x: float) -> None:  # pragma: no cover - compiled
    """``Ring.push`` on row ``r`` (every value stored twice so any window is contiguous)."""
    cap = buf.shape[1] // 2
    i = st[r]
    buf[r, i] = x
    buf[r, i + cap] = x
    i += 1
    st[r] = 0 if i == cap else i
    st[N_RINGS + r] += 1


@njit(cache=True)
def _start(buf: np.ndarray, st: np.ndarray, r: int, n: int) -> int:  # pragma: no cover - compiled
    """Index in row ``r`` of the oldest of its newest ``n`` values."""
    return st[r] + buf.shape[1] // 2 - n


@njit(cache=True)
def _correlation(a: np.ndarray, alo: int, b: np.ndarray, blo: int, n: int) -> float:  # pragma: no cover
    """``rolling.correlation`` (dot products summed in order, not by BLAS: equal to rounding)."""
    if n < 3:
        return _NAN
    ma = pairwise_sum(a, alo, n) / n
    mb = pairwise_sum(b, blo, n) / n
    saa = 0.0
    sbb = 0.0
    sab = 0.0
    for k in range(n):
        da = a[alo + k] - ma
        db = b[blo + k] - mb
        saa += da * da
        sbb += db * db
        sab += da * db
    if saa <= 0.0 or sbb <= 0.0:
        return 0.0
    return sab / math.sqrt(saa * sbb)


@njit(cache=True)
def etf_bar(
    buf: np.ndarray,
    st: np.ndarray,
    out: np.ndarray,
    p: np.ndarray,
    basis_x: float,
    push_pair: bool,
    es_r: float,
    etf_r: float,
    push_lead: bool,
    prev_es_r: float,
    prev_etf_r: float,
    current: float,
    recent: bool,
    lnv: np.ndarray,
) -> None:  # pragma: no cover - compiled
    """The ETF pair statistics of one bar (``crossmarket.CrossMarketState._etf``); ``p`` see there.

    ``basis_x`` is pushed unless NaN; ``current`` (the basis now) is NaN when the ETF is stale;
    ``lnv`` holds the ETF's newest 60 ``ln(1 + volume)`` values when its z-score is due, else nothing.
    """
    if basis_x == basis_x:
        _ring_push(buf, st, BASIS, basis_x)
    if push_pair:
        _ring_push(buf, st, ES_R, es_r)
        _ring_push(buf, st, ETF_R, etf_r)
        if push_lead:
            _ring_push(buf, st, LEAD_ES, es_r)
            _ring_push(buf, st, LEAD_ETF, prev_etf_r)
            _ring_push(buf, st, LAG_ES, prev_es_r)
            _ring_push(buf, st, LAG_ETF, etf_r)
    cap = buf.shape[1] // 2
    if current == current and st[N_RINGS + BASIS] >= 30:  # np.mean and np.std of the newest 390
        n = min(390, st[N_RINGS + BASIS], cap)
        row = buf[BASIS]
        lo = _start(buf, st, BASIS, n)
        mean = pairwise_sum(row, lo, n) / n
        sq = np.empty(n)
        for k in range(n):
            d = row[lo + k] - mean
            sq[k] = d * d
        std = math.sqrt(pairwise_sum(sq, 0, n) / n)
        out[p[0]] = (current - mean) * 1e4
        out[p[1]] = (current - mean) / std if std > 0.0 else 0.0
    pairs = st[N_RINGS + ES_R] if recent else 0
    es = buf[ES_R]
    etf = buf[ETF_R]
    for k in range(4):
        n = p[10 + k]
        if pairs >= n:
            out[p[2 + k]] = _correlation(es, _start(buf, st, ES_R, n), etf, _start(buf, st, ETF_R, n), n)
    for k in range(2):
        n = p[14 + k]
        if pairs >= n:
            xlo = _start(buf, st, ETF_R, n)
            ylo = _start(buf, st, ES_R, n)
            mx = pairwise_sum(etf, xlo, n) / n
            my = pairwise_sum(es, ylo, n) / n
            sxx = 0.0
            sxy = 0.0
            for t in range(n):
                dx = etf[xlo + t] - mx
                sxx += dx * dx
                sxy += dx * (es[ylo + t] - my)
            out[p[6 + k]] = sxy / sxx if sxx > 0.0 else 0.0
    if pairs and st[N_RINGS + LEAD_ES] >= 60:
        out[p[8]] = _correlation(
            buf[LEAD_ES], _start(buf, st, LEAD_ES, 60), buf[LEAD_ETF], _start(buf, st, LEAD_ETF, 60), 60
        )
        out[p[9]] = _correlation(
            buf[LAG_ES], _start(buf, st, LAG_ES, 60), buf[LAG_ETF], _start(buf, st, LAG_ETF, 60), 60
        )
    n = lnv.shape[0]
    if n > 0:  # rolling.window_mean_std(lnv, (n,), ddof=0): cumulative sums from the newest, centred on it
        ref = lnv[n - 1]
        s1 = 0.0
        s2 = 0.0
        for k in range(n - 1, -1, -1):
            d = lnv[k] - ref
            s1 += d
            s2 += d * d
        m = s1 / n
        var = (s2 - n * m * m) / n
        mean = ref + m
        std = math.sqrt(var) if var > 0.0 else 0.0
        out[p[16]] = (ref - mean) / std if std > 0.0 else 0.0
