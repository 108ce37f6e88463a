"""Nautilus objects → feature-hub calls: the one conversion both the actor and the offline build use.

Keeping it in one place is what makes online and offline values equal bit for bit: the same
accessors (``as_double``), the same timestamps (``ts_event`` of ticks for time weights, the bar's
own ``ts_event``/``ts_init``), the same aggressor codes.
"""

from collections.abc import Iterable
from typing import Any

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


def feed_quote(hub: FeatureHub, tick: QuoteTick) -> None:
    """Pass a quote to the hub."""
    hub.on_quote(
        tick.instrument_id.value,
        tick.ts_event,
        tick.bid_price.as_double(),
        tick.ask_price.as_double(),
        tick.bid_size.as_double(),
        tick.ask_size.as_double(),
    )


def feed_trade(hub: FeatureHub, tick: TradeTick) -> None:
    """Pass a trade to the hub (aggressor 1 buyer, 2 seller, 0 none)."""
    hub.on_trade(
        tick.instrument_id.value, tick.ts_event, tick.price.as_double(), tick.size.as_double(), int(tick.aggressor_side)
    )


def feed_depth(hub: FeatureHub, depth: OrderBookDepth10) -> None:
    """Pass a 10-level book snapshot to the hub (levels with zero size dropped)."""
    bids = [(o.price.as_double(), o.size.as_double()) for o in depth.bids if o.size.as_double() > 0.0]
    asks = [(o.price.as_double(), o.size.as_double()) for o in depth.asks if o.size.as_double() > 0.0]
    hub.on_depth(depth.instrument_id.value, depth.ts_event, bids, asks)


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
