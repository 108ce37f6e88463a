"""What the risk rules read from the market: features by name, the regime, and the blocks they imply.

``FeatureVector`` values are ordered by the names of their feature set (``config/feature_sets.yaml``);
a ``FeatureBook`` resolves the names and keeps the latest value of every feature per instrument, so
the rules ask for ``atr_dynamic`` or ``spoofing_score`` by name and never by position. A name the
feature sets do not carry reads as ``None`` (that input does not exist in this deployment); a
carried name whose value is NaN, or stale, reads as NaN (its inputs are absent now) and the rules
treat it conservatively. ``market_blocks`` is the one place that says which conditions block entries
and close positions, used by both the risk actor and the MIA strategy.
"""

import math
from collections.abc import Mapping
from collections.abc import Sequence
from dataclasses import dataclass
from dataclasses import field

import numpy as np

from catalog.types import FeatureVector
from catalog.types import RegimeState
from mia_strategies.risk.config import REGIMES
from mia_strategies.risk.config import BlockSettings
from mia_strategies.risk.config import FeatureNameSettings


NAN = float("nan")


@dataclass
class _InstrumentFeatures:
    values: dict[str, float] = field(default_factory=dict)
    ts: dict[str, int] = field(default_factory=dict)


class FeatureBook:
    """Latest feature values per instrument, by name, from every feature set it knows the names of."""

    def __init__(self, feature_sets: Mapping[str, Sequence[str]], stale_after_ns: int) -> None:
        self._names: dict[str, tuple[str, ...]] = {k: tuple(v) for k, v in feature_sets.items()}
        self._stale_after_ns = stale_after_ns
        self._by_instrument: dict[str, _InstrumentFeatures] = {}
        self.carried: set[str] = {n for names in self._names.values() for n in names}
        self.unknown_sets: set[str] = set()

    def add_feature_set(self, name: str, names: Sequence[str]) -> None:
        """Learn the ordered names of a feature set."""
        self._names[name] = tuple(names)
        self.carried.update(names)

    def update(self, vector: FeatureVector) -> bool:
        """Take a vector's values; False (and remembered) when its feature set's names are unknown."""
        names = self._names.get(vector.feature_set)
        if names is None or len(names) != len(vector.values):
            self.unknown_sets.add(vector.feature_set)
            return False
        book = self._by_instrument.setdefault(vector.instrument_id.value, _InstrumentFeatures())
        for name, value in zip(names, vector.values.tolist(), strict=True):
            book.values[name] = float(value)
            book.ts[name] = vector.ts_event
        return True

    def get(self, instrument_id: str, name: str, now_ns: int) -> float | None:
        """The value of ``name``: None if no feature set carries it, NaN if missing or stale now."""
        if name not in self.carried:
            return None
        book = self._by_instrument.get(instrument_id)
        if book is None or name not in book.values:
            return NAN
        if now_ns - book.ts[name] > self._stale_after_ns:
            return NAN
        return book.values[name]

    def snapshot(self, instrument_id: str, now_ns: int) -> dict[str, float]:
        """Every fresh value of an instrument (stale ones as NaN), for trade snapshots."""
        book = self._by_instrument.get(instrument_id)
        if book is None:
            return {}
        out: dict[str, float] = {}
        for name in sorted(book.values):
            value = self.get(instrument_id, name, now_ns)
            out[name] = NAN if value is None else value
        return out


@dataclass(frozen=True)
class RegimeView:
    """The regime an instrument is in, as the router and the leverage caps read it."""

    label: str
    probabilities: dict[str, float]
    confidence: float
    ts: int

    @classmethod
    def from_state(cls, state: RegimeState) -> "RegimeView":
        """Read a ``RegimeState`` (labels are comma-separated, probabilities in that order)."""
        labels = [x.strip() for x in state.labels.split(",") if x.strip()]
        probs = np.asarray(state.probabilities, dtype=np.float64)
        table = {lab: float(p) for lab, p in zip(labels, probs.tolist(), strict=False)}
        return cls(state.regime, table, float(state.confidence), state.ts_event)


#: The regime read when none is known (no regime actor yet, warm-up, stale): the safest one.
UNKNOWN_REGIME = RegimeView("defensive", {}, 0.0, 0)


def effective_regime(view: RegimeView | None, now_ns: int, stale_after_ns: int, min_confidence: float) -> str:
    """Regime label that drives leverage and routing: defensive unless a fresh, confident known regime."""
    if view is None or view.label not in REGIMES or now_ns - view.ts > stale_after_ns:
        return "defensive"
    if view.confidence < min_confidence:
        return "defensive"
    return view.label


def option_levels(
    book: FeatureBook,
    instrument_id: str,
    now_ns: int,
    names: FeatureNameSettings,
    close: float,
) -> list[tuple[str, float]]:
    """Option-positioning levels on the instrument's price scale: call wall, put wall, key strikes.

    Levels come in the option chain's units (SPX strikes for ES). A wall with its
    ``*_distance`` feature (log distance from the bar ``close``) maps to ``close x exp(distance)``;
    the key strikes are scaled by the same chain-to-instrument ratio. Without distance features the
    levels are taken as already on the instrument's scale.
    """
    levels: list[tuple[str, float]] = []
    ratio = math.nan
    for name, distance_name in ((names.call_wall, names.call_wall_distance), (names.put_wall, names.put_wall_distance)):
        level = book.get(instrument_id, name, now_ns)
        if level is None or not math.isfinite(level) or level <= 0:
            continue
        distance = book.get(instrument_id, distance_name, now_ns)
        if distance is not None and math.isfinite(distance) and math.isfinite(close) and close > 0:
            mapped = close * math.exp(distance)
            ratio = mapped / level
            levels.append((name, mapped))
        elif distance is None:
            levels.append((name, level))
    for name in sorted(book.carried):
        if name.startswith(names.key_strikes_prefix):
            value = book.get(instrument_id, name, now_ns)
            if value is None or not math.isfinite(value) or value <= 0:
                continue
            if math.isfinite(ratio):
                levels.append((name, value * ratio))
            elif book.get(instrument_id, names.call_wall_distance, now_ns) is None:
                levels.append((name, value))
    return levels


def market_blocks(
    *,
    spoofing_score: float | None,
    volume_anomaly: float | None,
    news_sentiment: float | None,
    settings: BlockSettings,
) -> list[str]:
    """Conditions that block entries and close positions now, by name (empty: none).

    ``None`` (feature not carried) never blocks. NaN anomaly features block unless
    ``anomaly_missing`` is ``ignore``. Bearish news (signed ``news_sentiment`` below the threshold)
    blocks long entries and closes longs only: it is returned as ``news:bearish`` and callers apply
    it to longs. Missing news is no news.
    """
    blocks: list[str] = []
    for name, value, limit in (
        ("anomaly:spoofing", spoofing_score, settings.spoofing_score_max),
        ("anomaly:volume", volume_anomaly, settings.volume_anomaly_max),
    ):
        if value is None:
            continue
        if not math.isfinite(value):
            if settings.anomaly_missing == "block":
                blocks.append(f"{name}_missing")
        elif value > limit:
            blocks.append(name)
    bearish = news_sentiment is not None and news_sentiment < settings.bearish_news_below
    if bearish:  # NaN compares False: missing news is no news
        blocks.append("news:bearish")
    return blocks


def blocks_side(blocks: Sequence[str], side: int) -> bool:
    """Whether ``blocks`` stop an entry (or hold) on ``side``: bearish news only blocks longs."""
    return any(b != "news:bearish" or side > 0 for b in blocks)
