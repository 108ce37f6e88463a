"""Composite scores built from other families' values of the same bar; signal providers weigh them per regime.

They condense what a rule-based provider asks ("is this a breakout?", "is the book being worked by
fast algorithms?", "is it a range a market maker would like?") into one number each. Each is NaN
when any input it needs is NaN (never a silent zero). The per-bar work is one compiled call
(``dynamic_kernel.composite_bar``): reading a score's inputs in Python cost more than the scores.
"""

import numpy as np

from mia_strategies.features import dynamic_kernel
from mia_strategies.features.core import BarContext
from mia_strategies.features.registry import SpecList
from mia_strategies.features.rolling import FloatArray


FAMILY = "composite"
_B = ("bars",)
_QT = ("quotes", "trades")

SPECS = SpecList(FAMILY)
SPECS.add("breakout_score", _B, 21, "(max(0, C - prior 20-bar high) - max(0, prior 20-bar low - C)) / atr_14")
SPECS.add("breakout_score_60", _B, 61, "the same against the prior 60 bars")
SPECS.add("mm_score", _B, 31, "(1 - efficiency_ratio_30) x (1 - |2 bb_pctb_20 - 1| clipped to 0..1): range-bound-ness")
SPECS.add(
    "hft_score",
    _QT,
    60,
    "mean of hft_activity_score_15, min(1, spoofing_score_15), clip(quote_velocity_ratio_5_60 - 1, 0, 1)",
)
SPECS.add("trend_score", _B, 31, "sign(linreg_slope_30) x adx_14 / 100 x efficiency_ratio_30, -1..1")
SPECS.add("mean_reversion_score", _B, 61, "-zscore_close_60 x (1 - efficiency_ratio_30)")
SPECS.add("momentum_score", _B, 31, "tanh(ret_30 / (rv_30 sqrt(30))): the 30-bar move in units of its volatility")
SPECS.add("liquidity_score", ("quotes",), 60, "l1_depth_zscore_60 - spread_zscore_60")
SPECS.add("risk_score", _B, 403, "atr_dynamic + 0.5 volume_anomaly")
INDEX = SPECS.index()


#: Inputs in the order ``dynamic_kernel.composite_bar`` reads them.
_SOURCES = (
    "atr_14",
    "efficiency_ratio_30",
    "bb_pctb_20",
    "hft_activity_score_15",
    "spoofing_score_15",
    "quote_velocity_ratio_5_60",
    "linreg_slope_30",
    "adx_14",
    "zscore_close_60",
    "ret_30",
    "rv_30",
    "l1_depth_zscore_60",
    "spread_zscore_60",
    "atr_dynamic",
    "volume_anomaly",
)
#: Outputs in the order the kernel writes them.
_OUTPUTS = (
    "breakout_score",
    "breakout_score_60",
    "mm_score",
    "hft_score",
    "trend_score",
    "mean_reversion_score",
    "momentum_score",
    "liquidity_score",
    "risk_score",
)


class CompositeState:
    """Reads the bar's other features; keeps no history of its own (the breakouts read the bar history)."""

    def __init__(self, index: dict[str, int]) -> None:
        self._p = np.array([index[n] for n in _SOURCES] + [INDEX[n] for n in _OUTPUTS], dtype=np.int64)

    def on_bar(self, ctx: BarContext, out: FloatArray) -> None:
        """Write the composite scores."""
        hist = ctx.hist
        dynamic_kernel.composite_bar(ctx.full, out, hist.high.last(61), hist.low.last(61), ctx.bar.close, self._p)
