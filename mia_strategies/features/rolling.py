"""Incremental building blocks: fixed-size histories with contiguous windows and window statistics.

``Ring`` stores every value twice (at ``i`` and ``i + capacity``) so the last ``n`` values are always
one contiguous numpy view, with no copy and no wrap-around logic in the feature code. Values are
centred (deviations from the newest value) before squaring wherever levels are large, to keep the
variance free of cancellation.

The running classes (``Wilder``, ``Ema``, ``RollingSum``, ``RollingMoments``, ``RollingRank``) are the
interpreted reference of the compiled blocks the heavy families use (``rolling_kernel``,
``technical_kernel``): ``tests/test_features_kernels.py`` proves the two agree bit for bit.
"""

import math
from collections.abc import Sequence

import numpy as np
import numpy.typing as npt


FloatArray = npt.NDArray[np.float64]
NAN = math.nan
#: Variances below this share of the mean square are rounding residue of running sums: treated as 0.
_FLAT = 1e-12


class Ring:
    """The last ``capacity`` floats pushed, readable as a contiguous view of the newest ``n``."""

    __slots__ = ("_buf", "_cap", "_i", "count")

    def __init__(self, capacity: int) -> None:
        self._cap = capacity
        self._buf: FloatArray = np.full(2 * capacity, np.nan)
        self._i = 0
        self.count = 0

    @property
    def capacity(self) -> int:
        """How many values are kept."""
        return self._cap

    def push(self, value: float) -> None:
        """Append one value (the oldest falls out once full)."""
        i = self._i
        buf = self._buf
        buf[i] = value
        buf[i + self._cap] = value
        i += 1
        self._i = 0 if i == self._cap else i
        self.count += 1

    def last(self, n: int) -> FloatArray:
        """View of the newest ``min(n, available)`` values, oldest first (never a copy: do not keep)."""
        n = min(n, self.count, self._cap)
        end = self._i + self._cap
        return self._buf[end - n : end]

    def newest(self, back: int = 0) -> float:
        """The value ``back`` pushes ago (0 = newest); NaN when not available."""
        if back >= self.count or back >= self._cap:
            return NAN
        return float(self._buf[self._i + self._cap - 1 - back])

    def full(self, n: int) -> bool:
        """Whether at least ``n`` values are held."""
        return self.count >= n and n <= self._cap


def window_mean_std(values: FloatArray, windows: Sequence[int], ddof: int) -> tuple[FloatArray, FloatArray]:
    """Mean and standard deviation of the newest ``w`` values per window (centred on the newest value).

    NaN where fewer than ``w`` values (or ``w <= ddof``) are available; a negative variance from
    rounding is clipped to 0.
    """
    n = len(values)
    means = np.full(len(windows), np.nan)
    stds = np.full(len(windows), np.nan)
    if n == 0:
        return means, stds
    ref = values[-1]
    dev = values[::-1] - ref
    s1 = np.cumsum(dev)
    s2 = np.cumsum(dev * dev)
    for j, w in enumerate(windows):
        if w > n or w <= ddof:
            continue
        m = s1[w - 1] / w
        var = (s2[w - 1] - w * m * m) / (w - ddof)
        means[j] = ref + m
        stds[j] = math.sqrt(var) if var > 0.0 else 0.0
    return means, stds


def percentile_rank(window: FloatArray, x: float) -> float:
    """Share of ``window`` below ``x`` plus half the share equal to it (``window`` includes ``x``)."""
    if math.isnan(x) or len(window) == 0:
        return NAN
    below = int(np.count_nonzero(window < x))
    equal = int(np.count_nonzero(window == x))
    return (below + 0.5 * equal) / len(window)


def correlation(a: FloatArray, b: FloatArray) -> float:
    """Pearson correlation of two equal-length samples; 0 when either is constant, NaN under 3 points."""
    n = len(a)
    if n < 3:
        return NAN
    da = a - a.mean()
    db = b - b.mean()
    saa = float(np.dot(da, da))
    sbb = float(np.dot(db, db))
    if saa <= 0.0 or sbb <= 0.0:
        return 0.0
    return float(np.dot(da, db)) / math.sqrt(saa * sbb)


class Wilder:
    """Wilder's running average: the mean of the first ``n`` values, then ``(prev * (n-1) + x) / n``."""

    __slots__ = ("_n", "_seed", "count", "value")

    def __init__(self, n: int) -> None:
        self._n = n
        self._seed = 0.0
        self.count = 0
        self.value = NAN

    def update(self, x: float) -> float:
        """Add one value; return the average (NaN until ``n`` values were seen)."""
        self.count += 1
        n = self._n
        if self.count < n:
            self._seed += x
        elif self.count == n:
            self.value = (self._seed + x) / n
        else:
            self.value = (self.value * (n - 1) + x) / n
        return self.value


class Ema:
    """Exponential moving average with ``alpha = 2 / (n + 1)``, seeded with the first value."""

    __slots__ = ("_alpha", "count", "value")

    def __init__(self, n: int) -> None:
        self._alpha = 2.0 / (n + 1.0)
        self.count = 0
        self.value = NAN

    def update(self, x: float) -> float:
        """Add one value; return the average."""
        self.count += 1
        if self.count == 1:
            self.value = x
        else:
            self.value += self._alpha * (x - self.value)
        return self.value


class RollingSum:
    """Running sums of the newest ``w`` values for several windows, O(windows) per push in plain floats.

    Every ``4 x max(windows)`` pushes the sums are recomputed exactly (``math.fsum``) so rounding
    never accumulates; the recomputation happens at the same push online and offline.
    """

    __slots__ = ("_buf", "_cap", "_i", "_since", "_windows", "count", "sums")

    def __init__(self, windows: Sequence[int]) -> None:
        self._windows = tuple(windows)
        self._cap = max(self._windows)
        self._buf = [0.0] * self._cap
        self._i = 0
        self._since = 0
        self.count = 0
        self.sums = [0.0] * len(self._windows)

    def push(self, x: float) -> None:
        """Add the newest value."""
        buf = self._buf
        cap = self._cap
        i = self._i
        n = self.count
        sums = self.sums
        for j, w in enumerate(self._windows):
            if n >= w:
                sums[j] += x - buf[i - w]
            else:
                sums[j] += x
        buf[i] = x
        self._i = i + 1 if i + 1 < cap else 0
        self.count = n + 1
        self._since += 1
        if self._since >= 4 * cap:
            self._resync()

    def _resync(self) -> None:
        self._since = 0
        for j, w in enumerate(self._windows):
            self.sums[j] = math.fsum(self.newest(min(w, self.count)))

    def newest(self, n: int) -> list[float]:
        """The newest ``n`` values (n <= capacity), oldest first."""
        i = self._i
        if n <= i:
            return self._buf[i - n : i]
        return self._buf[self._cap - (n - i) :] + self._buf[:i]

    def value(self, back: int) -> float:
        """The value pushed ``back`` pushes ago (0 = newest); NaN when not held."""
        if back >= self.count or back >= self._cap:
            return NAN
        return self._buf[self._i - 1 - back]

    def total(self, j: int) -> float:
        """Sum over window ``j``; NaN until the window is full."""
        return self.sums[j] if self.count >= self._windows[j] else NAN


class RollingMoments:
    """Mean and variance of the newest ``w`` values for several windows, centred on a moving anchor.

    Values are stored as deviations from an anchor (re-set to the newest value, with an exact
    recomputation, every ``max(windows)`` pushes), so sums of squares of price levels never lose
    the variance to cancellation.
    """

    __slots__ = ("_anchor", "_buf", "_cap", "_i", "_s1", "_s2", "_scale", "_since", "_windows", "count")

    def __init__(self, windows: Sequence[int]) -> None:
        self._windows = tuple(windows)
        self._cap = max(self._windows)
        self._buf = [0.0] * self._cap
        self._i = 0
        self._since = 0
        self._scale = 0.0  # largest squared deviation since the last re-anchor: the sums' rounding scale
        self._anchor = NAN
        self._s1 = [0.0] * len(self._windows)
        self._s2 = [0.0] * len(self._windows)
        self.count = 0

    def push(self, x: float) -> None:
        """Add the newest value."""
        if self.count == 0:
            self._anchor = x
        d = x - self._anchor
        dd = d * d
        if dd > self._scale:
            self._scale = dd
        buf = self._buf
        i = self._i
        n = self.count
        s1 = self._s1
        s2 = self._s2
        for j, w in enumerate(self._windows):
            if n >= w:
                old = buf[i - w]
                s1[j] += d - old
                s2[j] += dd - old * old
            else:
                s1[j] += d
                s2[j] += dd
        buf[i] = d
        self._i = i + 1 if i + 1 < self._cap else 0
        self.count = n + 1
        self._since += 1
        if self._since >= self._cap:
            self._reanchor(x)

    def _reanchor(self, x: float) -> None:
        self._since = 0
        shift = self._anchor - x
        self._buf = [v + shift for v in self._buf]
        self._anchor = x
        i = self._i
        for j, w in enumerate(self._windows):
            k = min(w, self.count)
            vals = self._buf[i - k : i] if k <= i else self._buf[self._cap - (k - i) :] + self._buf[:i]
            self._s1[j] = math.fsum(vals)
            self._s2[j] = math.fsum(v * v for v in vals)
        self._scale = max(v * v for v in self._buf)

    def mean(self, j: int) -> float:
        """Mean over window ``j``; NaN until the window is full."""
        w = self._windows[j]
        if self.count < w:
            return NAN
        return self._anchor + self._s1[j] / w

    def std(self, j: int, ddof: int = 0) -> float:
        """Standard deviation over window ``j`` (``ddof`` 0 or 1); NaN until full."""
        w = self._windows[j]
        if self.count < w or w <= ddof:
            return NAN
        m = self._s1[j] / w
        var = (self._s2[j] - w * m * m) / (w - ddof)
        # below the running sums' rounding (a flat window) the spread is exactly zero
        return math.sqrt(var) if var > _FLAT * self._scale else 0.0


class RollingRank:
    """Percentile rank and order statistics of the newest ``w`` values (a sorted window, O(w) memmove)."""

    __slots__ = ("_fifo", "_sorted", "_w")

    def __init__(self, w: int) -> None:
        from collections import deque

        self._w = w
        self._fifo: deque[float] = deque()
        self._sorted: list[float] = []

    def push(self, x: float) -> None:
        """Add the newest value (NaN is ignored)."""
        import bisect

        if x != x:
            return
        self._fifo.append(x)
        bisect.insort(self._sorted, x)
        if len(self._fifo) > self._w:
            old = self._fifo.popleft()
            del self._sorted[bisect.bisect_left(self._sorted, old)]

    @property
    def full(self) -> bool:
        """Whether ``w`` values are held."""
        return len(self._fifo) >= self._w

    def __len__(self) -> int:
        return len(self._fifo)

    def rank(self, x: float) -> float:
        """Share of held values below ``x`` plus half the share equal to it."""
        import bisect

        s = self._sorted
        if not s or x != x:
            return NAN
        lo = bisect.bisect_left(s, x)
        hi = bisect.bisect_right(s, x)
        return (lo + 0.5 * (hi - lo)) / len(s)

    def quantile(self, q: float) -> float:
        """Linear-interpolated quantile of the held values (numpy's default method)."""
        s = self._sorted
        if not s:
            return NAN
        pos = q * (len(s) - 1)
        lo = int(pos)
        hi = min(lo + 1, len(s) - 1)
        return s[lo] + (s[hi] - s[lo]) * (pos - lo)
