"""Simulated-venue fix-ups so backtest fills come from the quotes in force when an order arrives.

nautilus 1.221's L1 matching engine (a) writes every trade print into its book as both bid and
ask, and (b) processes an arrived order only after the next market event has been applied. With
quotes and trades in one stream, a market buy arriving just after a print at the bid would then
fill at the bid, a tick better than possible, and any order would see one event of the future.

``QuoteBookGuard`` is a venue simulation module. Before each quote or trade reaches the matching
engine it (1) restores the last real quote of any instrument a trade print overwrote and (2) runs
every order that has arrived by then against that book. Resting orders still fill when a trade
prints through their price, as they would at CME.
"""

from nautilus_trader.backtest.config import SimulationModuleConfig
from nautilus_trader.backtest.modules import SimulationModule
from nautilus_trader.common.component import Logger
from nautilus_trader.core.data import Data
from nautilus_trader.model.data import QuoteTick
from nautilus_trader.model.data import TradeTick


class QuoteBookGuardConfig(SimulationModuleConfig, frozen=True):
    """No settings: the guard is either on (backtests over quotes) or absent."""


class QuoteBookGuard(SimulationModule):
    """Fill arriving orders against the last real quote, never a trade print or a future event."""

    def __init__(self, config: QuoteBookGuardConfig | None = None) -> None:
        super().__init__(config or QuoteBookGuardConfig())
        self._last_quote: dict[object, QuoteTick] = {}
        self._restoring = False
        self._subscribed = False
        self.restores = 0

    def pre_process(self, data: Data) -> None:
        """Run before ``data`` touches the book: process every order that has arrived by now."""
        if self._restoring:
            return
        if isinstance(data, QuoteTick):
            self.exchange.process(data.ts_init)
            self._last_quote[data.instrument_id] = data
        elif isinstance(data, TradeTick):
            if not self._subscribed:
                # The data engine publishes each trade right after the matching engine applied it,
                # before the engine processes orders again: the moment to undo the print.
                self.msgbus.subscribe(topic="data.trades.*", handler=self._restore_quote)
                self._subscribed = True
            self.exchange.process(data.ts_init)

    def _restore_quote(self, tick: TradeTick) -> None:
        quote = self._last_quote.get(tick.instrument_id)
        if quote is None:
            return
        self._restoring = True
        try:
            self.exchange.process_quote_tick(quote)
        finally:
            self._restoring = False
        self.restores += 1

    def process(self, ts_now: int) -> None:
        """Nothing to do on the exchange's own clock."""

    def log_diagnostics(self, logger: Logger) -> None:
        """Report how often a trade print had to be undone."""
        logger.info(f"QuoteBookGuard restored {self.restores} quotes after trade prints")

    def reset(self) -> None:
        """Forget the quotes of a previous run."""
        self._last_quote.clear()
        self.restores = 0
