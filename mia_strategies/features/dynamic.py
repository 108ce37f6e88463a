"""Dynamic features: volatility measured against its own recent distribution, and volatility-regime ratios.

``atr_dynamic`` is ATR(14) as a z-score within its own last 390 values (a trading day and a half of
1-minute bars): above 0 the market moves more than it did lately. Percentile ranks say the same
without assuming a distribution. Ratios of short to long volatility flag expansions and compressions.
They read the technical family's values of the same bar, so they need no other input. The per-bar
work is one compiled call (``dynamic_kernel.dynamic_bar``) over state arrays owned by ``DynamicState``.
"""

import numpy as np

from mia_strategies.features import dynamic_kernel
from mia_strategies.features.core import BarContext
from mia_strategies.features.registry import SpecList
from mia_strategies.features.rolling import FloatArray


FAMILY = "dynamic"
_B = ("bars",)

ATR_Z_N = (120, 390, 1170)
ATR_PCT_N = (120, 390, 1170)
RV_RATIOS = ((5, 60), (10, 60), (15, 390), (20, 120), (30, 240), (60, 390))
ATR_RATIOS = ((5, 50), (7, 28), (14, 50))
RANGE_RATIOS = (("parkinson", 10, 60), ("parkinson", 20, 120), ("garman_klass", 10, 60), ("garman_klass", 30, 240))
RV_PCT_N = (390, 1170)
VOV_N = (60, 240)
RANGE_EXP_N = (20, 60)
ATR_SLOPE_N = (15, 60)
_CAP = 1170

SPECS = SpecList(FAMILY)
SPECS.add("atr_dynamic", _B, 14 + 389, "z-score of atr_14 within its last 390 values")
for _n in ATR_Z_N:
    if _n != 390:
        SPECS.add(f"atr_dynamic_{_n}", _B, 14 + _n - 1, f"z-score of atr_14 within its last {_n} values")
for _n in ATR_PCT_N:
    SPECS.add(f"atr_percentile_{_n}", _B, 14 + _n - 1, f"percentile rank of atr_14 within its last {_n} values, 0..1")
for _a, _b in RV_RATIOS:
    SPECS.add(f"rv_ratio_{_a}_{_b}", _B, _b + 1, f"rv_{_a} / rv_{_b}")
for _a, _b in ATR_RATIOS:
    SPECS.add(f"atr_ratio_{_a}_{_b}", _B, _b, f"atr_{_a} / atr_{_b}")
for _kind, _a, _b in RANGE_RATIOS:
    _short = "park" if _kind == "parkinson" else "gk"
    SPECS.add(f"{_short}_ratio_{_a}_{_b}", _B, _b, f"{_kind}_{_a} / {_kind}_{_b}")
for _n in RV_PCT_N:
    SPECS.add(f"rv_percentile_{_n}", _B, 31 + _n - 1, f"percentile rank of rv_30 within its last {_n} values, 0..1")
for _n in VOV_N:
    SPECS.add(f"vol_of_vol_{_n}", _B, 31 + _n - 1, f"std / mean of rv_30 over its last {_n} values")
for _n in RANGE_EXP_N:
    SPECS.add(f"range_expansion_{_n}", _B, _n, f"(H - L) / mean(H - L) of the last {_n} bars")
SPECS.add("vol_regime_flag", _B, 391, "1 when rv_20 / rv_390 > 1.5 (volatility expansion), else 0")
for _n in ATR_SLOPE_N:
    SPECS.add(f"atr_slope_{_n}", _B, 14 + _n, f"ln(atr_14 / atr_14 {_n} bars ago)")
INDEX = SPECS.index()


class DynamicState:
    """Running moments and sorted windows of ATR(14), rv_30 and the bar range, as two flat arrays.

    The kernel needs offsets rather than objects, so the layout is decided here once: ``_f`` holds
    every float (sums, ring buffers, sorted windows), ``_s`` every counter, ``_p`` the offsets and
    the source and output positions in the order ``dynamic_kernel.dynamic_bar`` reads them.
    """

    def __init__(self, index: dict[str, int]) -> None:
        self._atr_w = np.array(ATR_Z_N, dtype=np.int64)
        self._rv_w = np.array(VOV_N, dtype=np.int64)
        self._rng_w = np.array(RANGE_EXP_N, dtype=np.int64)
        lag_cap = max(ATR_SLOPE_N) + 1
        f_size = 0
        s_size = 0

        def alloc(n_float: int, n_int: int) -> tuple[int, int]:
            nonlocal f_size, s_size
            at = (f_size, s_size)
            f_size += n_float
            s_size += n_int
            return at

        atr_m = alloc(2 + 2 * len(ATR_Z_N) + max(ATR_Z_N), 3)
        rv_m = alloc(2 + 2 * len(VOV_N) + max(VOV_N), 3)
        rng_s = alloc(len(RANGE_EXP_N) + max(RANGE_EXP_N), 3)
        lag = alloc(lag_cap, 2)
        atr_ranks = [(*alloc(2 * n, 2), n, INDEX[f"atr_percentile_{n}"]) for n in ATR_PCT_N]
        rv_ranks = [(*alloc(2 * n, 2), n, INDEX[f"rv_percentile_{n}"]) for n in RV_PCT_N]
        ratios = [(index[f"rv_{a}"], index[f"rv_{b}"], INDEX[f"rv_ratio_{a}_{b}"]) for a, b in RV_RATIOS]
        ratios += [(index[f"atr_{a}"], index[f"atr_{b}"], INDEX[f"atr_ratio_{a}_{b}"]) for a, b in ATR_RATIOS]
        for kind, a, b in RANGE_RATIOS:
            short = "park" if kind == "parkinson" else "gk"
            ratios.append((index[f"{kind}_{a}"], index[f"{kind}_{b}"], INDEX[f"{short}_ratio_{a}_{b}"]))
        p = [
            index["atr_14"],
            index["rv_30"],
            index["rv_20"],
            index["rv_390"],
            INDEX["vol_regime_flag"],
            atr_m[0],
            rv_m[0],
            rng_s[0],
            atr_m[1],
            rv_m[1],
            rng_s[1],
            lag[0],
            lag[1],
            lag_cap,
            len(atr_ranks),
            len(rv_ranks),
            len(ratios),
        ]
        p += [INDEX["atr_dynamic" if n == 390 else f"atr_dynamic_{n}"] for n in ATR_Z_N]
        for rank in atr_ranks:
            p += rank
        for n in ATR_SLOPE_N:
            p += (n, INDEX[f"atr_slope_{n}"])
        for rank in rv_ranks:
            p += rank
        p += [INDEX[f"vol_of_vol_{n}"] for n in VOV_N]
        for ratio in ratios:
            p += ratio
        p += [INDEX[f"range_expansion_{n}"] for n in RANGE_EXP_N]
        self._p = np.array(p, dtype=np.int64)
        self._f: FloatArray = np.zeros(f_size)
        self._s = np.zeros(s_size, dtype=np.int64)
        self._f[atr_m[0]] = np.nan  # anchors are NaN until the first value, as in RollingMoments
        self._f[rv_m[0]] = np.nan

    def on_bar(self, ctx: BarContext, out: FloatArray) -> None:
        """Write the dynamic features from this bar's technical values (one compiled call)."""
        bar = ctx.bar
        dynamic_kernel.dynamic_bar(
            ctx.full, out, bar.high, bar.low, self._f, self._s, self._p, self._atr_w, self._rv_w, self._rng_w
        )
