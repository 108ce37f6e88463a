"""Slow inputs loaded before the first event: reference bars, option chains, news and macro events from the catalog.

A daily VIX z-score needs weeks of closes and an option chain is published once a day, so a run that
starts today would otherwise see them NaN for weeks or until the evening. The feature actor (at
start) and the offline build (before its replay) both call ``load_history`` with the same start time
and look-back, then feed the same objects to their hubs in the same order, so they stay equal. Only
data with ``ts_init`` strictly before the start is loaded: what happens from the start on arrives as
events.
"""

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from nautilus_trader.model.data import Bar

from catalog.types import MacroEvent
from catalog.types import NewsHeadline
from catalog.types import OptionChainSnapshot
from mia_strategies.features.core import NS_PER_DAY


#: Custom data types the feature pipeline consumes, with their catalog folder names.
CUSTOM_TYPES: dict[str, type] = {
    "custom_option_chain_snapshot": OptionChainSnapshot,
    "custom_news_headline": NewsHeadline,
    "custom_macro_event": MacroEvent,
}


@dataclass(frozen=True)
class HistoryItem:
    """One preloaded object: a reference bar (with its bar type) or a custom data object."""

    ts_init: int
    order: int
    bar_type: str | None
    item: Any


def _catalog(path: Path) -> Any:
    from nautilus_trader.persistence.catalog import ParquetDataCatalog

    return ParquetDataCatalog(str(Path(path).resolve()))


def reference_bar_types_in(catalog_path: Path, wanted: set[str]) -> list[str]:
    """The reference bar types (of ``wanted``) that the catalog holds, sorted."""
    folder = Path(catalog_path) / "data" / "bar"
    if not folder.is_dir():
        return []
    return sorted(p.name for p in folder.iterdir() if p.is_dir() and p.name in wanted)


def depth_instruments_in(catalog_path: Path, instrument_ids: list[str]) -> list[str]:
    """Those of ``instrument_ids`` the catalog holds 10-level book snapshots (``OrderBookDepth10``) of, sorted."""
    folder = Path(catalog_path) / "data" / "order_book_depth10"
    if not folder.is_dir():
        return []
    return sorted(i for i in set(instrument_ids) if (folder / i).is_dir())


def custom_types_in(catalog_path: Path) -> list[type]:
    """The feature pipeline's custom data types the catalog holds."""
    folder = Path(catalog_path) / "data"
    return [cls for name, cls in CUSTOM_TYPES.items() if (folder / name).is_dir()]


def load_history(catalog_path: Path, start_ns: int, days: float, reference_bar_types: list[str]) -> list[HistoryItem]:
    """Reference bars and custom data with ``start - days <= ts_init < start``, in (ts_init, kind) order."""
    if days <= 0:
        return []
    catalog = _catalog(catalog_path)
    begin = start_ns - int(days * NS_PER_DAY)
    end = start_ns - 1
    items: list[HistoryItem] = []
    for order, bar_type in enumerate(reference_bar_types):
        for bar in catalog.query(Bar, identifiers=[bar_type], start=begin, end=end):
            if begin <= bar.ts_init < start_ns:
                items.append(HistoryItem(int(bar.ts_init), order, bar_type, bar))
    base = len(reference_bar_types)
    for order, cls in enumerate(custom_types_in(catalog_path), start=base):
        for obj in catalog.query(cls, start=begin, end=end):
            data = getattr(obj, "data", obj)
            if begin <= data.ts_init < start_ns:
                items.append(HistoryItem(int(data.ts_init), order, None, data))
    items.sort(key=lambda h: (h.ts_init, h.order))
    return items
