"""Nautilus objects → feature-hub calls: the one conversion both the actor and the offline build use.

Keeping it in one place is what makes online and offline values equal bit for bit: the same
accessors (``as_double``), the same timestamps (``ts_event`` of ticks for time weights, the bar's
own ``ts_event``/``ts_init``), the same aggressor codes. Ticks are queued as objects and converted in
``features.ticks``, for the actor and the offline build alike.
"""

from collections.abc import Iterable
from typing import Any

from nautilus_trader.model.book import OrderBook
from nautilus_trader.model.data import Bar
from nautilus_trader.model.data import OrderBookDepth10
from nautilus_trader.model.data import QuoteTick
from nautilus_trader.model.data import TradeTick

from catalog.types import MacroEvent
from catalog.types import NewsHeadline
from catalog.types import OptionChainSnapshot
from mia_strategies.features.core import BarInput
from mia_strategies.features.engine import FeatureHub
from mia_strategies.features.history import HistoryItem


def bar_input(bar: Bar) -> BarInput:
    """A nautilus bar as plain floats."""
    return BarInput(
        ts_event=bar.ts_event,
        ts_init=bar.ts_init,
        open=bar.open.as_double(),
        high=bar.high.as_double(),
        low=bar.low.as_double(),
        close=bar.close.as_double(),
        volume=bar.volume.as_double(),
    )


def feed_tick(hub: FeatureHub, tick: QuoteTick | TradeTick) -> None:
    """Queue a quote or trade for its instrument's order-flow state (ignored for unknown instruments)."""
    queue = hub.tick_queue(tick.instrument_id.value)
    if queue is not None:
        queue.append(tick)


def feed_depth(hub: FeatureHub, depth: OrderBookDepth10) -> None:
    """Pass a 10-level book snapshot to the hub (levels with zero size dropped)."""
    bids = [(o.price.as_double(), o.size.as_double()) for o in depth.bids if o.size.as_double() > 0.0]
    asks = [(o.price.as_double(), o.size.as_double()) for o in depth.asks if o.size.as_double() > 0.0]
    hub.on_depth(depth.instrument_id.value, depth.ts_event, bids, asks)


def feed_book(hub: FeatureHub, book: OrderBook, levels: int = 10) -> None:
    """Pass the best ``levels`` of a maintained L2 book as a depth snapshot (what ``feed_depth`` passes)."""
    bids = [(lv.price.as_double(), lv.size()) for lv in book.bids()[:levels] if lv.size() > 0.0]
    asks = [(lv.price.as_double(), lv.size()) for lv in book.asks()[:levels] if lv.size() > 0.0]
    hub.on_depth(book.instrument_id.value, book.ts_last, bids, asks)


def feed_custom(hub: FeatureHub, data: Any) -> bool:
    """Pass a custom data object (chain, headline, macro event); False for other types."""
    if isinstance(data, OptionChainSnapshot):
        hub.on_chain(data)
    elif isinstance(data, NewsHeadline):
        hub.on_news(data)
    elif isinstance(data, MacroEvent):
        hub.on_macro(data)
    else:
        return False
    return True


def feed_history(hub: FeatureHub, items: Iterable[HistoryItem]) -> int:
    """Feed preloaded history in order; return how many items were used."""
    used = 0
    for item in items:
        if item.bar_type is not None:
            used += int(hub.on_reference_bar(item.bar_type, bar_input(item.item)))
        else:
            used += int(feed_custom(hub, item.item))
    return used
