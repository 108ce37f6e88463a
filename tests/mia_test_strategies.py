"""Strategies used only by tests to drive the base class deterministically."""

from nautilus_trader.model.data import Bar
from nautilus_trader.model.enums import OrderSide

from mia_strategies.strategies.base import MiaStrategy
from mia_strategies.strategies.base import MiaStrategyConfig


class HoldThroughRollConfig(MiaStrategyConfig, frozen=True):
    """Enter long once per root and hold (wide stop and target) so a roll must handle the position."""

    stop_points: float = 400.0
    target_points: float = 800.0


class HoldThroughRoll(MiaStrategy):
    """Buys the active contract on the first decision bar; records every bar it sees."""

    def __init__(self, config: HoldThroughRollConfig) -> None:
        super().__init__(config)
        self._cfg = config
        self.bars: list[Bar] = []
        self.decisions: list[tuple[int, str]] = []

    def on_warmup_bar(self, root: str, bar: Bar) -> None:
        self.bars.append(bar)

    def on_decision_bar(self, root: str, bar: Bar) -> None:
        self.bars.append(bar)
        self.decisions.append((bar.ts_event, bar.bar_type.instrument_id.value))
        if not self.is_flat(root) or not self.can_enter(bar.ts_event):
            return
        quote = self.cache.quote_tick(bar.bar_type.instrument_id)
        if quote is None:
            return
        self.enter_bracket(
            root,
            bar.bar_type.instrument_id,
            OrderSide.BUY,
            1,
            self._cfg.stop_points,
            self._cfg.target_points,
            quote.ask_price.as_double(),
        )
