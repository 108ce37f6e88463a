"""Compiled ports of the ``rolling.py`` building blocks, shared by the families' kernels.

Running moments, running sums and sorted windows, operating on slices of flat state arrays owned
by a family state. The arithmetic is ``rolling.py``'s, operation for operation (no fast-math), and
exact re-summations use a port of CPython's ``math.fsum``, so the values are bit-identical to the
interpreted classes they replace.

Layouts (offsets are computed by the Python side, see ``dynamic.DynamicState``):

* running moments (``RollingMoments``): floats ``[anchor, scale, s1 x nw, s2 x nw, buf x cap]``,
  ints ``[i, count, since]``;
* running sums (``RollingSum``): floats ``[sums x nw, buf x cap]``, ints ``[i, count, since]``;
* sorted windows (``RollingRank``): floats ``[sorted x w, fifo x w]``, ints ``[head, size]``;
* a lag ring: floats ``[buf x cap]``, ints ``[i, count]``.
"""

import math

import numpy as np
from numba import njit


_FLAT = 1e-12  # rolling._FLAT: variances below this share of the scale are rounding residue
_NAN = math.nan


@njit(cache=True)
def fsum(a: np.ndarray) -> float:  # pragma: no cover - compiled
    """Correctly rounded sum of finite values: CPython's ``math.fsum`` (Shewchuk partials, half-even fix)."""
    p = np.empty(a.shape[0] + 2)
    n = 0
    for k in range(a.shape[0]):
        x = a[k]
        i = 0
        for t in range(n):
            y = p[t]
            if abs(x) < abs(y):
                x, y = y, x
            hi = x + y
            lo = y - (hi - x)
            if lo != 0.0:
                p[i] = lo
                i += 1
            x = hi
        n = i
        if x != 0.0:
            p[n] = x
            n += 1
    hi = 0.0
    if n > 0:
        n -= 1
        hi = p[n]
        lo = 0.0
        while n > 0:
            x = hi
            n -= 1
            y = p[n]
            hi = x + y
            yr = hi - x
            lo = y - yr
            if lo != 0.0:
                break
        if n > 0 and ((lo < 0.0 and p[n - 1] < 0.0) or (lo > 0.0 and p[n - 1] > 0.0)):
            y = lo * 2.0
            x = hi + y
            yr = x - hi
            if y == yr:
                hi = x
    return hi


@njit(cache=True)
def _newest(f: np.ndarray, b: int, cap: int, i: int, k: int) -> np.ndarray:  # pragma: no cover - compiled
    """Copy of the newest ``k`` values of the ring at ``f[b : b + cap]`` whose next slot is ``i``."""
    vals = np.empty(k)
    for t in range(k):
        j = i - k + t
        if j < 0:
            j += cap
        vals[t] = f[b + j]
    return vals


# -- running moments ---------------------------------------------------------------------------------


@njit(cache=True)
def moments_push(
    f: np.ndarray, o: int, s: np.ndarray, so: int, windows: np.ndarray, x: float
) -> None:  # pragma: no cover - compiled
    """``RollingMoments.push``: deviations from an anchor, re-anchored exactly every ``cap`` pushes."""
    nw = windows.shape[0]
    cap = windows.max()
    count = s[so + 1]
    if count == 0:
        f[o] = x
    d = x - f[o]
    dd = d * d
    if dd > f[o + 1]:
        f[o + 1] = dd
    b = o + 2 + 2 * nw
    i = s[so]
    for j in range(nw):
        w = windows[j]
        if count >= w:
            k = i - w
            if k < 0:
                k += cap
            old = f[b + k]
            f[o + 2 + j] += d - old
            f[o + 2 + nw + j] += dd - old * old
        else:
            f[o + 2 + j] += d
            f[o + 2 + nw + j] += dd
    f[b + i] = d
    s[so] = i + 1 if i + 1 < cap else 0
    s[so + 1] = count + 1
    s[so + 2] += 1
    if s[so + 2] >= cap:
        _reanchor(f, o, s, so, windows, x)


@njit(cache=True)
def _reanchor(
    f: np.ndarray, o: int, s: np.ndarray, so: int, windows: np.ndarray, x: float
) -> None:  # pragma: no cover - compiled
    nw = windows.shape[0]
    cap = windows.max()
    b = o + 2 + 2 * nw
    s[so + 2] = 0
    shift = f[o] - x
    for k in range(cap):
        f[b + k] = f[b + k] + shift
    f[o] = x
    i = s[so]
    count = s[so + 1]
    for j in range(nw):
        vals = _newest(f, b, cap, i, min(windows[j], count))
        f[o + 2 + j] = fsum(vals)
        f[o + 2 + nw + j] = fsum(vals * vals)
    scale = f[b] * f[b]
    for k in range(1, cap):
        v = f[b + k] * f[b + k]
        if v > scale:
            scale = v
    f[o + 1] = scale


@njit(cache=True)
def moments_mean(f: np.ndarray, o: int, s: np.ndarray, so: int, w: int, j: int) -> float:  # pragma: no cover
    """``RollingMoments.mean(j)`` of window length ``w``; NaN until full."""
    if s[so + 1] < w:
        return _NAN
    return f[o] + f[o + 2 + j] / w


@njit(cache=True)
def moments_std(
    f: np.ndarray, o: int, s: np.ndarray, so: int, nw: int, w: int, j: int
) -> float:  # pragma: no cover - compiled
    """``RollingMoments.std(j)`` with ``ddof`` 0; 0 below the sums' rounding scale; NaN until full."""
    if s[so + 1] < w:
        return _NAN
    m = f[o + 2 + j] / w
    var = (f[o + 2 + nw + j] - w * m * m) / w
    return math.sqrt(var) if var > _FLAT * f[o + 1] else 0.0


# -- running sums ------------------------------------------------------------------------------------


@njit(cache=True)
def sums_push(
    f: np.ndarray, o: int, s: np.ndarray, so: int, windows: np.ndarray, x: float
) -> None:  # pragma: no cover - compiled
    """``RollingSum.push``: sums recomputed exactly every ``4 x cap`` pushes."""
    nw = windows.shape[0]
    cap = windows.max()
    b = o + nw
    i = s[so]
    count = s[so + 1]
    for j in range(nw):
        w = windows[j]
        if count >= w:
            k = i - w
            if k < 0:
                k += cap
            f[o + j] += x - f[b + k]
        else:
            f[o + j] += x
    f[b + i] = x
    i = i + 1 if i + 1 < cap else 0
    s[so] = i
    s[so + 1] = count + 1
    s[so + 2] += 1
    if s[so + 2] >= 4 * cap:
        s[so + 2] = 0
        for j in range(nw):
            f[o + j] = fsum(_newest(f, b, cap, i, min(windows[j], count + 1)))


# -- sorted windows ----------------------------------------------------------------------------------


@njit(cache=True)
def _bisect(f: np.ndarray, lo: int, hi: int, x: float, right: bool) -> int:  # pragma: no cover - compiled
    """``bisect.bisect_right`` (``right``) or ``bisect_left`` over ``f[lo:hi]``, as an absolute index."""
    while lo < hi:
        mid = (lo + hi) // 2
        if right:
            if x < f[mid]:
                hi = mid
            else:
                lo = mid + 1
        elif f[mid] < x:
            lo = mid + 1
        else:
            hi = mid
    return lo


@njit(cache=True)
def rank_push(f: np.ndarray, o: int, s: np.ndarray, so: int, w: int, x: float) -> None:  # pragma: no cover
    """``RollingRank.push``: the same multiset of the newest ``w`` values (NaN ignored)."""
    if x != x:
        return
    head = s[so]
    size = s[so + 1]
    fifo = o + w
    if size == w:  # the oldest value leaves (the first equal one, like ``bisect_left``), ``x`` enters
        old = f[fifo + head]
        f[fifo + head] = x
        s[so] = head + 1 if head + 1 < w else 0
        kd = _bisect(f, o, o + size, old, False)
        ki = _bisect(f, o, o + size, x, True) - (1 if old <= x else 0)  # position once ``old`` is gone
        if ki >= kd:
            for t in range(kd, ki):
                f[t] = f[t + 1]
        else:
            for t in range(kd, ki, -1):
                f[t] = f[t - 1]
        f[ki] = x
        return
    k = head + size
    if k >= w:
        k -= w
    f[fifo + k] = x
    k = _bisect(f, o, o + size, x, True)
    for t in range(o + size, k, -1):
        f[t] = f[t - 1]
    f[k] = x
    s[so + 1] = size + 1


@njit(cache=True)
def rank_of(f: np.ndarray, o: int, s: np.ndarray, so: int, x: float) -> float:  # pragma: no cover - compiled
    """``RollingRank.rank``: share of held values below ``x`` plus half the share equal to it."""
    size = s[so + 1]
    if size == 0 or x != x:
        return _NAN
    lo = _bisect(f, o, o + size, x, False) - o
    hi = _bisect(f, o, o + size, x, True) - o
    return (lo + 0.5 * (hi - lo)) / size
