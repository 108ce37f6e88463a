"""A rule-based source of features and regimes from decision bars alone.

The feature actor (``FeatureVector`` from ``config/feature_sets.yaml``) and the HMM regime actor
(``RegimeState``) are the real sources. Until a run configures them, and in tests that need regimes
they can reason about, ``BarRulesActor`` publishes the few inputs the risk rules need, computed from
bars only, through the same message types: so the risk actor and the MIA strategy consume one seam
and never know which source is behind it.

Per instrument, on every bar (warm-up bars of the next contract too):

- features (set ``mia.bar_rules``, names as in ``config/feature_sets.yaml``): ``atr_14`` (Wilder ATR),
  ``atr_dynamic`` (z-score of ``atr_14`` within its last ``norm_bars`` values; NaN until
  ``norm_min_bars`` are seen) and ``efficiency_ratio`` (net move over path length of the last
  ``er_bars`` closes);
- a regime (``model_version`` ``bar-rules-1``): softmax of three logits, trend
  ``sharpness x (ER / er_trend - 1)``, range 0 and defensive ``sharpness x (atr_dynamic /
  defensive_z - 1)``. Nothing is published before ATR and ER are ready (a consumer then reads the
  regime as unknown, that is defensive).

Published with the bar's timestamps, from the bar's data only: no look-ahead.
"""

import math
from collections import deque

import numpy as np
from nautilus_trader.common.actor import Actor
from nautilus_trader.config import ActorConfig
from nautilus_trader.indicators import AverageTrueRange
from nautilus_trader.model.data import Bar
from nautilus_trader.model.data import BarType
from nautilus_trader.model.data import DataType

from catalog.types import FeatureVector
from catalog.types import RegimeState
from mia_strategies.risk.config import REGIMES


FEATURE_SET = "mia.bar_rules"
FEATURE_NAMES: tuple[str, ...] = ("atr_14", "atr_dynamic", "efficiency_ratio")
MODEL_VERSION = "bar-rules-1"
#: Feature sets every consumer knows without configuration.
BUILTIN_FEATURE_SETS: dict[str, tuple[str, ...]] = {FEATURE_SET: FEATURE_NAMES}


class BarRulesActorConfig(ActorConfig, frozen=True):
    """Settings of the bar-rule features and regimes.

    Parameters
    ----------
    bar_types : list[str]
        Bar types to follow (every contract slot's decision bars).
    atr_period : int, default 14
        ATR period (Wilder).
    norm_bars : int, default 390
        ATR values ``atr_dynamic`` is the z-score within.
    norm_min_bars : int, default 30
        ATR values needed before ``atr_dynamic`` is defined.
    er_bars : int, default 30
        Closes in the efficiency ratio.
    er_trend : float, default 0.3
        Efficiency ratio at which trend and range are equally likely.
    defensive_z : float, default 2.0
        ``atr_dynamic`` at which defensive and range are equally likely.
    sharpness : float, default 4.0
        Logit scale: larger makes the regime probabilities more decisive.
    publish_features : bool, default True
        Publish the bar-rule ``FeatureVector`` too; False when the feature actor runs beside this one
        (its ``atr_14`` and ``atr_dynamic`` are the ones the risk rules read), so only regimes come from here.
    """

    bar_types: list[str]
    atr_period: int = 14
    norm_bars: int = 390
    norm_min_bars: int = 30
    er_bars: int = 30
    er_trend: float = 0.3
    defensive_z: float = 2.0
    sharpness: float = 4.0
    publish_features: bool = True


class _Rules:
    """Incremental state of one instrument: ATR, its recent values and the close-to-close path."""

    def __init__(self, config: BarRulesActorConfig) -> None:
        self.atr = AverageTrueRange(config.atr_period)
        self.atrs: deque[float] = deque(maxlen=config.norm_bars)
        self.atr_sum = 0.0
        self.atr_sq = 0.0
        self.closes: deque[float] = deque(maxlen=config.er_bars + 1)
        self.moves: deque[float] = deque(maxlen=config.er_bars)
        self.path = 0.0
        self.label = ""
        self.bars_in_regime = 0

    def add_close(self, close: float) -> None:
        """Append a close and keep the sum of the last ``er_bars`` absolute moves."""
        if self.closes:
            if len(self.moves) == self.moves.maxlen:
                self.path -= self.moves[0]
            move = abs(close - self.closes[-1])
            self.moves.append(move)
            self.path += move
        self.closes.append(close)

    def add_atr(self, atr: float, min_count: int) -> float:
        """Append an ATR value and return its z-score within the recent ones (NaN while too few)."""
        if len(self.atrs) == self.atrs.maxlen:
            old = self.atrs[0]
            self.atr_sum -= old
            self.atr_sq -= old * old
        self.atrs.append(atr)
        self.atr_sum += atr
        self.atr_sq += atr * atr
        n = len(self.atrs)
        if n < min_count:
            return math.nan
        mean = self.atr_sum / n
        variance = max(0.0, self.atr_sq / n - mean * mean)
        sd = math.sqrt(variance)
        if sd <= 1e-9 * max(1.0, abs(mean)):
            return 0.0
        return (atr - mean) / sd

    def efficiency_ratio(self) -> float:
        """Net move over path length of the closes held."""
        if self.path <= 1e-12:
            return 0.0
        return min(1.0, abs(self.closes[-1] - self.closes[0]) / self.path)


def regime_probabilities(
    efficiency_ratio: float,
    atr_dynamic: float,
    er_trend: float,
    defensive_z: float,
    sharpness: float,
) -> tuple[float, float, float]:
    """Softmax of the trend, range and defensive logits (order of ``REGIMES``)."""
    trend = sharpness * (efficiency_ratio / er_trend - 1.0)
    defensive = sharpness * (atr_dynamic / defensive_z - 1.0) if math.isfinite(atr_dynamic) else 0.0
    top = max(trend, 0.0, defensive)
    weights = (math.exp(trend - top), math.exp(-top), math.exp(defensive - top))
    total = sum(weights)
    return (weights[0] / total, weights[1] / total, weights[2] / total)


class BarRulesActor(Actor):
    """Publishes ``FeatureVector`` and ``RegimeState`` per instrument from its bars (see module doc)."""

    def __init__(self, config: BarRulesActorConfig) -> None:
        super().__init__(config)
        self._cfg = config
        self._state: dict[str, _Rules] = {}

    def on_start(self) -> None:
        """Subscribe every configured bar type."""
        for bar_type in self._cfg.bar_types:
            self.subscribe_bars(BarType.from_str(bar_type))

    def on_stop(self) -> None:
        """Nothing to release: bar subscriptions end with the node, the state lives in memory."""

    def on_bar(self, bar: Bar) -> None:
        """Update the instrument's rules and publish its features and regime for this bar."""
        key = bar.bar_type.instrument_id.value
        state = self._state.get(key)
        if state is None:
            state = self._state[key] = _Rules(self._cfg)
        state.atr.handle_bar(bar)
        state.add_close(bar.close.as_double())
        if not state.atr.initialized or len(state.closes) < state.closes.maxlen:  # type: ignore[operator]
            return
        atr = float(state.atr.value)
        atr_dynamic = state.add_atr(atr, self._cfg.norm_min_bars)
        er = state.efficiency_ratio()
        vector = FeatureVector(
            instrument_id=bar.bar_type.instrument_id,
            feature_set=FEATURE_SET,
            values=np.array([atr, atr_dynamic, er], dtype=np.float64),
            ts_event=bar.ts_event,
            ts_init=bar.ts_init,
        )
        if self._cfg.publish_features:
            self.publish_data(DataType(FeatureVector), vector)
        probs = regime_probabilities(er, atr_dynamic, self._cfg.er_trend, self._cfg.defensive_z, self._cfg.sharpness)
        label = REGIMES[max(range(len(REGIMES)), key=probs.__getitem__)]
        state.bars_in_regime = state.bars_in_regime + 1 if label == state.label else 1
        state.label = label
        regime = RegimeState(
            instrument_id=bar.bar_type.instrument_id,
            regime=label,
            labels=",".join(REGIMES),
            probabilities=np.array(probs, dtype=np.float64),
            confidence=max(probs),
            bars_in_regime=state.bars_in_regime,
            model_version=MODEL_VERSION,
            ts_event=bar.ts_event,
            ts_init=bar.ts_init,
        )
        self.publish_data(DataType(RegimeState), regime)
