"""Baseline strategy: ATR channel breakout with bracket exits, on the active contract of each root.

On each closed decision bar, a close beyond the highest high (lowest low) of the previous
``channel_bars`` bars by at least ``min_breakout_ticks`` enters long (short) at market, with a stop
``stop_atr`` x ATR and a target ``target_atr`` x ATR away, both held at the venue. Indicators warm up
on the next contract before a roll, so trading resumes right after it.

The regime gates entries: no breakout is entered while the instrument's latest ``RegimeState`` says a
regime listed in ``blocked_regimes`` (defensive by default; breakouts in a volatility spike mostly
pay the spread twice). Without any regime source every bar counts as ``unknown`` and nothing is blocked.
"""

from collections import deque
from typing import Any

from nautilus_trader.indicators import AverageTrueRange
from nautilus_trader.model.data import Bar
from nautilus_trader.model.data import DataType
from nautilus_trader.model.enums import OrderSide
from nautilus_trader.model.identifiers import InstrumentId

from catalog.types import RegimeState
from mia_strategies import sessions
from mia_strategies.strategies.base import MiaStrategy
from mia_strategies.strategies.base import MiaStrategyConfig


class AtrBreakoutConfig(MiaStrategyConfig, frozen=True):
    """Breakout parameters (see ``config/strategy.yaml``)."""

    channel_bars: int = 20
    atr_period: int = 14
    stop_atr: float = 2.0
    target_atr: float = 3.0
    min_breakout_ticks: int = 1
    rth_only: bool = False
    cooldown_bars: int = 5
    blocked_regimes: tuple[str, ...] = ("defensive",)
    #: A regime older than this (minutes) is no longer known: counted ``unknown``, blocks nothing.
    regime_stale_minutes: int = 30


class _Channel:
    """Per-contract indicator state: ATR and the rolling high/low window."""

    def __init__(self, channel_bars: int, atr_period: int) -> None:
        self.highs: deque[float] = deque(maxlen=channel_bars)
        self.lows: deque[float] = deque(maxlen=channel_bars)
        self.atr = AverageTrueRange(atr_period)

    @property
    def ready(self) -> bool:
        return self.atr.initialized and len(self.highs) == self.highs.maxlen

    def update(self, bar: Bar) -> None:
        self.atr.handle_bar(bar)
        self.highs.append(bar.high.as_double())
        self.lows.append(bar.low.as_double())


class AtrBreakout(MiaStrategy):
    """ATR channel breakout for every configured root at once (ES and MNQ by default)."""

    def __init__(self, config: AtrBreakoutConfig) -> None:
        super().__init__(config)
        self._cfg = config
        self._channels: dict[str, _Channel] = {}
        self._cooldown: dict[str, int] = {}
        self._regimes: dict[str, tuple[str, int]] = {}

    def on_mia_start(self) -> None:
        """Listen to regimes (from the regime actor or the bar-rule regimes, whichever the run has)."""
        self.subscribe_data(DataType(RegimeState))

    def on_data(self, data: Any) -> None:
        """Keep the latest regime label of every contract."""
        if isinstance(data, RegimeState):
            self._regimes[data.instrument_id.value] = (data.regime, data.ts_event)

    def regime_label(self, instrument_id: str, ts_ns: int) -> str:
        """The latest regime of ``instrument_id`` unless older than ``regime_stale_minutes``."""
        known = self._regimes.get(instrument_id)
        if known is None or ts_ns - known[1] > self._cfg.regime_stale_minutes * 60_000_000_000:
            return ""
        return known[0]

    def _channel(self, bar: Bar) -> _Channel:
        key = bar.bar_type.instrument_id.value
        channel = self._channels.get(key)
        if channel is None:
            channel = _Channel(self._cfg.channel_bars, self._cfg.atr_period)
            self._channels[key] = channel
        return channel

    def on_warmup_bar(self, root: str, bar: Bar) -> None:
        """Keep the next contract's indicators warm."""
        self._channel(bar).update(bar)

    def on_decision_bar(self, root: str, bar: Bar) -> None:
        """Enter on a breakout of the previous bars' channel; the window excludes this bar."""
        channel = self._channel(bar)
        was_ready = channel.ready
        upper = max(channel.highs) if channel.highs else 0.0
        lower = min(channel.lows) if channel.lows else 0.0
        channel.update(bar)
        if not self.is_flat(root):
            self._cooldown[root] = self._cfg.cooldown_bars
            return
        if self._cooldown.get(root, 0) > 0:
            self._cooldown[root] -= 1
            return
        if not was_ready or not self.can_enter(bar.ts_event):
            return
        if self._cfg.rth_only and not sessions.is_rth(bar.ts_event):
            return
        if self.regime_label(bar.bar_type.instrument_id.value, bar.ts_event) in self._cfg.blocked_regimes:
            return
        instrument_id = bar.bar_type.instrument_id
        tick = self.instrument(instrument_id).price_increment.as_double()
        close = bar.close.as_double()
        margin = self._cfg.min_breakout_ticks * tick
        atr = channel.atr.value
        if close >= upper + margin:
            self._enter(root, instrument_id, OrderSide.BUY, atr)
        elif close <= lower - margin:
            self._enter(root, instrument_id, OrderSide.SELL, atr)

    def _enter(self, root: str, instrument_id: InstrumentId, side: OrderSide, atr: float) -> None:
        quote = self.cache.quote_tick(instrument_id)
        if quote is None:
            return  # no market yet: never enter blind
        reference = quote.ask_price.as_double() if side == OrderSide.BUY else quote.bid_price.as_double()
        self.enter_bracket(
            root,
            instrument_id,
            side,
            self.config.trade_size.get(root, 1),
            self._cfg.stop_atr * atr,
            self._cfg.target_atr * atr,
            reference,
        )
