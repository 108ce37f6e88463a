"""Composite scores built from other families' values of the same bar; signal providers weigh them per regime.

They condense what a rule-based provider asks ("is this a breakout?", "is the book being worked by
fast algorithms?", "is it a range a market maker would like?") into one number each. Each is NaN
when any input it needs is NaN (never a silent zero).
"""

import math

import numpy as np

from mia_strategies.features.core import BarContext
from mia_strategies.features.registry import SpecList
from mia_strategies.features.rolling import NAN
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


def _any_nan(*values: float) -> bool:
    return any(v != v for v in values)


class CompositeState:
    """Reads the bar's other features; keeps no history of its own."""

    def __init__(self, index: dict[str, int]) -> None:
        self._src = index

    def on_bar(self, ctx: BarContext, out: FloatArray) -> None:
        """Write the composite scores."""
        values = ctx.full.tolist()  # one conversion, then plain-float reads
        src = self._src

        def g(_: BarContext, name: str) -> float:
            return values[src[name]]  # type: ignore[no-any-return]

        atr = g(ctx, "atr_14")
        c = ctx.bar.close
        highs = ctx.hist.high.last(61)
        lows = ctx.hist.low.last(61)
        for n, name in ((20, "breakout_score"), (60, "breakout_score_60")):
            if len(highs) >= n + 1 and atr == atr:
                top = float(highs[-n - 1 : -1].max())
                bottom = float(lows[-n - 1 : -1].min())
                score = max(0.0, c - top) - max(0.0, bottom - c)
                out[INDEX[name]] = score / atr if atr > 0.0 else 0.0
        er30 = g(ctx, "efficiency_ratio_30")
        pctb = g(ctx, "bb_pctb_20")
        if not _any_nan(er30, pctb):
            out[INDEX["mm_score"]] = (1.0 - er30) * (1.0 - min(1.0, abs(2.0 * pctb - 1.0)))
        hft = g(ctx, "hft_activity_score_15")
        spoof = g(ctx, "spoofing_score_15")
        qv = g(ctx, "quote_velocity_ratio_5_60")
        if not _any_nan(hft, spoof, qv):
            out[INDEX["hft_score"]] = (hft + min(1.0, spoof) + min(1.0, max(0.0, qv - 1.0))) / 3.0
        slope = g(ctx, "linreg_slope_30")
        adx = g(ctx, "adx_14")
        if not _any_nan(slope, adx, er30):
            out[INDEX["trend_score"]] = float(np.sign(slope)) * adx / 100.0 * er30
        z60 = g(ctx, "zscore_close_60")
        if not _any_nan(z60, er30):
            out[INDEX["mean_reversion_score"]] = -z60 * (1.0 - er30)
        ret30 = g(ctx, "ret_30")
        rv30 = g(ctx, "rv_30")
        if not _any_nan(ret30, rv30):
            scale = rv30 * math.sqrt(30.0)
            out[INDEX["momentum_score"]] = math.tanh(ret30 / scale) if scale > 0.0 else 0.0
        depth_z = g(ctx, "l1_depth_zscore_60")
        spread_z = g(ctx, "spread_zscore_60")
        if not _any_nan(depth_z, spread_z):
            out[INDEX["liquidity_score"]] = depth_z - spread_z
        atr_dyn = g(ctx, "atr_dynamic")
        vol_anom = g(ctx, "volume_anomaly")
        out[INDEX["risk_score"]] = NAN if _any_nan(atr_dyn, vol_anom) else atr_dyn + 0.5 * vol_anom
