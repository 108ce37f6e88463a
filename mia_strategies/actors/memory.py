"""The market-memory actor: stores one pattern per bar and publishes what similar past bars led to.

Per instrument and bar it gathers three facts that arrive at the same bar timestamp in no fixed
order: the bar's close, the ``FeatureVector`` and the ``RegimeState``. When the next bar of that
instrument arrives, the previous bar's facts are complete and written as one pattern; the outcome
of the bar ``horizon_bars`` back (log return of the close, within the same contract) is filled in.
Nothing is written for a bar without features.

When a ``FeatureVector`` arrives, the actor queries the memory with those features and the regime
probabilities of the previous bar, among the patterns whose outcome was known before this bar (no
look-ahead, and the same answer whatever order the actors handle the bar in), and
publishes the summary as another ``FeatureVector`` whose ``feature_set`` is ``memory:<set>`` and
whose values follow :data:`mia_strategies.ops.memory.CONTEXT_FEATURES`. Consumers filter on
``feature_set`` as they already must; the actor ignores its own ``memory:`` vectors.

SQLite work per bar is one small upsert and one update; commits follow ``commit_every``.
"""

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
from nautilus_trader.common.actor import Actor
from nautilus_trader.config import ActorConfig
from nautilus_trader.config import ImportableActorConfig
from nautilus_trader.core.data import Data
from nautilus_trader.model.data import Bar
from nautilus_trader.model.data import BarType
from nautilus_trader.model.data import DataType

from catalog.types import FeatureVector
from catalog.types import RegimeState
from mia_strategies.ops.memory import MarketMemory
from mia_strategies.ops.memory import Pattern
from mia_strategies.ops.settings import MemorySettings


#: Prefix of the feature sets the actor publishes its context under.
CONTEXT_PREFIX = "memory:"


class MarketMemoryActorConfig(ActorConfig, frozen=True):
    """Configuration of :class:`MarketMemoryActor` (defaults match ``mia_config.yaml``'s ``memory``).

    Parameters
    ----------
    path : str
        The ``market_memory.db`` file.
    bar_types : tuple[str, ...]
        Bars whose closes define outcomes (the decision bars of the traded contracts).
    horizon_bars : int, default 5
        Outcome = log(close[t + horizon] / close[t]) of the same contract.
    neighbours : int, default 10
        k of the nearest-neighbour query.
    min_patterns : int, default 50
        No context is published before this many patterns have outcomes.
    regime_weight : float, default 1.0
        Weight of the regime probabilities in the distance.
    commit_every : int, default 1
        Bars per transaction.
    checkpoint_every : int, default 1000
        Commits between WAL checkpoints.
    synchronous : str, default "NORMAL"
        SQLite durability: NORMAL (process crash) or FULL (power cut).
    publish_context : bool, default True
        Publish the neighbours' summary as a ``memory:<set>`` FeatureVector.
    """

    path: str
    bar_types: tuple[str, ...]
    horizon_bars: int = 5
    neighbours: int = 10
    min_patterns: int = 50
    regime_weight: float = 1.0
    commit_every: int = 1
    checkpoint_every: int = 1000
    synchronous: str = "NORMAL"
    publish_context: bool = True


def memory_actor_config(
    settings: MemorySettings, bar_types: list[str], path: Path | None = None
) -> ImportableActorConfig:
    """The actor's importable config from ``mia_config.yaml`` settings (for any node builder)."""
    return ImportableActorConfig(
        actor_path="mia_strategies.actors.memory:MarketMemoryActor",
        config_path="mia_strategies.actors.memory:MarketMemoryActorConfig",
        config={
            "path": str(path or settings.path),
            "bar_types": list(bar_types),
            "horizon_bars": settings.horizon_bars,
            "neighbours": settings.neighbours,
            "min_patterns": settings.min_patterns,
            "regime_weight": settings.regime_weight,
            "commit_every": settings.commit_every,
            "checkpoint_every": settings.checkpoint_every,
            "synchronous": settings.synchronous,
        },
    )


@dataclass
class _Pending:
    """Facts of one (instrument, bar) gathered until the next bar arrives."""

    close: float | None = None
    features: np.ndarray | None = None
    feature_set: str = ""
    regime: str = ""
    regime_probs: np.ndarray | None = None


class MarketMemoryActor(Actor):
    """Write patterns and outcomes to the market memory; publish nearest-neighbour context."""

    def __init__(self, config: MarketMemoryActorConfig) -> None:
        super().__init__(config)
        self.memory: MarketMemory | None = None
        self._pending: dict[str, dict[int, _Pending]] = {}
        self._closes: dict[str, list[tuple[int, float]]] = {}
        self._regime_history: dict[str, list[tuple[int, np.ndarray]]] = {}
        self.stored = 0
        self.outcomes = 0
        self.published = 0

    # -- LIFECYCLE ---------------------------------------------------------------------------------

    def on_start(self) -> None:
        """Open the memory and subscribe to bars, features and regimes."""
        cfg: MarketMemoryActorConfig = self.config
        synchronous: Literal["NORMAL", "FULL"] = "FULL" if cfg.synchronous.upper() == "FULL" else "NORMAL"
        self.memory = MarketMemory(
            cfg.path,
            synchronous=synchronous,
            commit_every=cfg.commit_every,
            checkpoint_every=cfg.checkpoint_every,
        )
        for bar_type in cfg.bar_types:
            self.subscribe_bars(BarType.from_str(bar_type))
        self.subscribe_data(DataType(FeatureVector))
        self.subscribe_data(DataType(RegimeState))
        self.log.info(f"market memory {cfg.path}: horizon {cfg.horizon_bars} bars, k={cfg.neighbours}")

    def on_stop(self) -> None:
        """Write every complete pattern, commit, checkpoint and close the file."""
        if self.memory is None:
            return
        for instrument_id in list(self._pending):
            self._flush(instrument_id, before_ns=None)
        self.memory.close()
        self.memory = None
        self.log.info(f"market memory: {self.stored} patterns stored, {self.outcomes} outcomes filled")

    # -- DATA ----------------------------------------------------------------------------------------

    def on_bar(self, bar: Bar) -> None:
        """Complete the previous bar's pattern, fill the outcome ``horizon_bars`` back, commit."""
        if self.memory is None:
            return
        iid = bar.bar_type.instrument_id.value
        ts = bar.ts_event
        close = bar.close.as_double()
        self._flush(iid, before_ns=ts)
        self._slot(iid, ts).close = close
        closes = self._closes.setdefault(iid, [])
        closes.append((ts, close))
        horizon = self.config.horizon_bars
        if len(closes) > horizon:
            past_ts, past_close = closes[-1 - horizon]
            del closes[: len(closes) - horizon - 1]
            if past_close > 0 and close > 0 and self.memory.set_outcome(iid, past_ts, math.log(close / past_close), ts):
                self.outcomes += 1
        self.memory.maybe_commit()

    def on_data(self, data: Data) -> None:
        """Remember features and regimes of the bar; answer features with the memory's context."""
        if self.memory is None:
            return
        if isinstance(data, FeatureVector) and not data.feature_set.startswith(CONTEXT_PREFIX):
            iid = data.instrument_id.value
            slot = self._slot(iid, data.ts_event)
            slot.features = np.asarray(data.values, dtype=np.float64)
            slot.feature_set = data.feature_set
            if self.config.publish_context:
                self._publish_context(data)
        elif isinstance(data, RegimeState):
            iid = data.instrument_id.value
            slot = self._slot(iid, data.ts_event)
            slot.regime = data.regime
            slot.regime_probs = np.asarray(data.probabilities, dtype=np.float64)
            history = self._regime_history.setdefault(iid, [])
            history.append((data.ts_event, slot.regime_probs))
            del history[:-2]

    def _slot(self, instrument_id: str, ts_ns: int) -> _Pending:
        return self._pending.setdefault(instrument_id, {}).setdefault(ts_ns, _Pending())

    def _flush(self, instrument_id: str, before_ns: int | None) -> None:
        """Write the pending patterns of an instrument older than ``before_ns`` (all when None)."""
        assert self.memory is not None
        pending = self._pending.get(instrument_id)
        if not pending:
            return
        for ts in sorted(t for t in pending if before_ns is None or t < before_ns):
            slot = pending.pop(ts)
            if slot.features is None:
                continue
            self.memory.store(
                Pattern(
                    instrument_id=instrument_id,
                    ts_event=ts,
                    feature_set=slot.feature_set,
                    features=slot.features,
                    regime=slot.regime,
                    regime_probs=slot.regime_probs,
                    close=slot.close,
                ),
            )
            self.stored += 1

    def _publish_context(self, vector: FeatureVector) -> None:
        assert self.memory is not None
        cfg: MarketMemoryActorConfig = self.config
        iid = vector.instrument_id.value
        earlier = [p for ts, p in self._regime_history.get(iid, []) if ts < vector.ts_event]
        context = self.memory.context(
            vector.feature_set,
            vector.values,
            earlier[-1] if earlier else None,
            k=cfg.neighbours,
            as_of_ns=vector.ts_event - 1,
            regime_weight=cfg.regime_weight,
            min_patterns=cfg.min_patterns,
        )
        if context.neighbours == 0:
            return
        out = FeatureVector(
            instrument_id=vector.instrument_id,
            feature_set=CONTEXT_PREFIX + vector.feature_set,
            values=context.values(),
            ts_event=vector.ts_event,
            ts_init=vector.ts_init,
        )
        self.publish_data(DataType(FeatureVector), out)
        self.published += 1


__all__ = [
    "CONTEXT_PREFIX",
    "MarketMemoryActor",
    "MarketMemoryActorConfig",
    "memory_actor_config",
]
