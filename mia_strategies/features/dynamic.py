"""Dynamic features: volatility measured against its own recent distribution, and volatility-regime ratios.

``atr_dynamic`` is ATR(14) as a z-score within its own last 390 values (a trading day and a half of
1-minute bars): above 0 the market moves more than it did lately. Percentile ranks say the same
without assuming a distribution. Ratios of short to long volatility flag expansions and compressions.
They read the technical family's values of the same bar, so they need no other input.
"""

import math

import numpy as np

from mia_strategies.features.core import BarContext
from mia_strategies.features.registry import SpecList
from mia_strategies.features.rolling import FloatArray
from mia_strategies.features.rolling import RollingMoments
from mia_strategies.features.rolling import RollingRank
from mia_strategies.features.rolling import RollingSum


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
    """Rolling moments and sorted windows of ATR(14), rv_30 and the bar range."""

    def __init__(self, index: dict[str, int]) -> None:
        self._atr_m = RollingMoments(ATR_Z_N)
        self._atr_rank = [(RollingRank(n), INDEX[f"atr_percentile_{n}"]) for n in ATR_PCT_N]
        self._atr_lag = RollingSum((max(ATR_SLOPE_N) + 1,))
        self._rv_rank = [(RollingRank(n), INDEX[f"rv_percentile_{n}"]) for n in RV_PCT_N]
        self._rv_m = RollingMoments(VOV_N)
        self._range = RollingSum(RANGE_EXP_N)
        self._src = index
        self._i_atr_z = [INDEX["atr_dynamic" if n == 390 else f"atr_dynamic_{n}"] for n in ATR_Z_N]
        self._ratios = [(index[f"rv_{a}"], index[f"rv_{b}"], INDEX[f"rv_ratio_{a}_{b}"]) for a, b in RV_RATIOS] + [
            (index[f"atr_{a}"], index[f"atr_{b}"], INDEX[f"atr_ratio_{a}_{b}"]) for a, b in ATR_RATIOS
        ]
        for kind, a, b in RANGE_RATIOS:
            short = "park" if kind == "parkinson" else "gk"
            self._ratios.append((index[f"{kind}_{a}"], index[f"{kind}_{b}"], INDEX[f"{short}_ratio_{a}_{b}"]))

    def on_bar(self, ctx: BarContext, out: FloatArray) -> None:
        """Write the dynamic features from this bar's technical values."""
        full = ctx.full.tolist()  # one conversion, then plain-float reads
        src = self._src
        atr = full[src["atr_14"]]
        if atr == atr:
            self._atr_features(atr, out)
        rv30 = full[src["rv_30"]]
        if rv30 == rv30:
            for rank, position in self._rv_rank:
                rank.push(rv30)
                if rank.full:
                    out[position] = rank.rank(rv30)
            self._rv_m.push(rv30)
            for j, n in enumerate(VOV_N):
                m = self._rv_m.mean(j)
                if m == m:
                    out[INDEX[f"vol_of_vol_{n}"]] = self._rv_m.std(j) / m if m > 0.0 else 0.0
        for num, den, position in self._ratios:
            out[position] = _ratio(full[num], full[den])
        bar = ctx.bar
        rng = bar.high - bar.low
        self._range.push(rng)
        for j, n in enumerate(RANGE_EXP_N):
            total = self._range.total(j)
            if total == total:
                mean = total / n
                out[INDEX[f"range_expansion_{n}"]] = rng / mean if mean > 0.0 else 1.0
        ratio = _ratio(full[src["rv_20"]], full[src["rv_390"]])
        if ratio == ratio:
            out[INDEX["vol_regime_flag"]] = 1.0 if ratio > 1.5 else 0.0

    def _atr_features(self, atr: float, out: FloatArray) -> None:
        moments = self._atr_m
        moments.push(atr)
        for j, position in enumerate(self._i_atr_z):
            m = moments.mean(j)
            if m == m:
                sd = moments.std(j)
                out[position] = (atr - m) / sd if sd > 0.0 else 0.0
        for rank, position in self._atr_rank:
            rank.push(atr)
            if rank.full:
                out[position] = rank.rank(atr)
        lag = self._atr_lag
        lag.push(atr)
        for n in ATR_SLOPE_N:
            past = lag.value(n)
            if past == past:
                out[INDEX[f"atr_slope_{n}"]] = math.log(atr / past) if past > 0.0 and atr > 0.0 else 0.0


def _ratio(num: float | np.floating, den: float | np.floating) -> float:
    a = float(num)
    b = float(den)
    if a != a or b != b:
        return math.nan
    return a / b if b > 0.0 else 1.0
