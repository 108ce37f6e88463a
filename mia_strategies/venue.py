"""Simulated CME venue: fills come from the quote in force when an order arrives, at market on gaps.

Two fixes to nautilus 1.221's L1 simulation, both needed to be correct to the tick:

- ``CmeFillModel``: nautilus fills a triggered stop at its *trigger* price even when the market
  gaps through it, and can slip a resting limit order beyond its limit. This fill model supplies
  the book that market and triggered-stop orders fill against: the current best bid and ask (from
  quotes only), or one tick worse with probability ``prob_slippage``, so a stop that gaps fills at
  the market like a CME stop order does, and limit orders never slip.
- ``QuoteBookGuard``: nautilus processes an arrived order only after the next market event has been
  applied, so it would fill against one event of the future; and its L1 book takes every trade print
  as both bid and ask, so a buy could fill at the bid. This venue module runs every order that has
  arrived before a quote or trade reaches the matching engine, against the quote then in force, and
  puts the last real quote back right after each trade print.

With quotes in the catalog the venue runs with ``trade_execution=False``: trade prints build bars
and feed features but never move the simulated book (a print at the bid must not fill a buy).
"""

import random

from nautilus_trader.backtest.config import FillModelConfig
from nautilus_trader.backtest.config import SimulationModuleConfig
from nautilus_trader.backtest.models import FillModel
from nautilus_trader.backtest.modules import SimulationModule
from nautilus_trader.common.component import Logger
from nautilus_trader.core.data import Data
from nautilus_trader.model.book import OrderBook
from nautilus_trader.model.data import BookOrder
from nautilus_trader.model.data import QuoteTick
from nautilus_trader.model.data import TradeTick
from nautilus_trader.model.enums import BookType
from nautilus_trader.model.enums import OrderSide
from nautilus_trader.model.instruments import Instrument
from nautilus_trader.model.objects import Price
from nautilus_trader.model.objects import Quantity
from nautilus_trader.model.orders import Order


_UNLIMITED = 1_000_000


class CmeFillModel(FillModel):
    """Market and stop orders fill at the touch (or a tick through it); limits never slip."""

    def __init__(self, config: FillModelConfig) -> None:
        # nautilus's own slippage would also hit limit fills: keep it at zero and slip here instead.
        super().__init__(
            prob_fill_on_limit=config.prob_fill_on_limit,
            prob_fill_on_stop=1.0,
            prob_slippage=0.0,
            random_seed=config.random_seed,
        )
        self._prob_slippage = config.prob_slippage
        self._rng = random.Random(config.random_seed)  # own stream: unaffected by other users of `random`
        self.slipped = 0

    def get_orderbook_for_fill_simulation(
        self,
        instrument: Instrument,
        order: Order,
        best_bid: Price,
        best_ask: Price,
    ) -> OrderBook:
        """The book a marketable order fills against: the quote's touch, or one tick worse."""
        tick = instrument.price_increment
        bid, ask = best_bid, best_ask
        if self._prob_slippage > 0 and self._rng.random() < self._prob_slippage:
            bid = Price.from_raw(best_bid.raw - tick.raw, best_bid.precision)
            ask = Price.from_raw(best_ask.raw + tick.raw, best_ask.precision)
            self.slipped += 1
        book = OrderBook(instrument_id=instrument.id, book_type=BookType.L2_MBP)
        size = Quantity(_UNLIMITED, instrument.size_precision)
        book.add(BookOrder(side=OrderSide.BUY, price=bid, size=size, order_id=1), 0, 0)
        book.add(BookOrder(side=OrderSide.SELL, price=ask, size=size, order_id=2), 0, 0)
        return book


class QuoteBookGuardConfig(SimulationModuleConfig, frozen=True):
    """No settings: the guard is on for every backtest venue."""


class QuoteBookGuard(SimulationModule):
    """Run arrived orders before the next quote or trade is applied, and undo trade prints in the book."""

    def __init__(self, config: QuoteBookGuardConfig | None = None) -> None:
        super().__init__(config or QuoteBookGuardConfig())
        self._last_quote: dict[object, QuoteTick] = {}
        self._restoring = False
        self._subscribed = False

    def pre_process(self, data: Data) -> None:
        """Before ``data`` touches the book, process every order that has arrived by its time."""
        if self._restoring:
            return
        kind = type(data)  # exact type checks: this runs for every tick of the backtest
        if kind is QuoteTick:
            self.exchange.process(data.ts_init)
            self._last_quote[data.instrument_id] = data  # type: ignore[attr-defined]
        elif kind is TradeTick:
            if not self._subscribed:
                # The data engine publishes each trade right after the matching engine applied it to
                # its L1 book (as bid and ask), before orders are processed again: undo it there.
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

    def process(self, ts_now: int) -> None:
        """Nothing to do on the exchange's own clock."""

    def log_diagnostics(self, logger: Logger) -> None:
        """Nothing to report."""

    def reset(self) -> None:
        """Forget the quotes of a previous run."""
        self._last_quote.clear()
