"""Synthetic stress paths: short, seeded ES/MNQ tick sequences with gaps, jumps, spikes, halts and rolls.

A ``StressPath`` is a list of segments (minutes of drift and volatility, with an optional data gap
before, a price jump at the start and a one-quote spike), laid from an anchor time: ``roll`` starts
50 minutes before the December 2025 roll (14:30 UTC on 11 Dec) so both contracts trade across it,
``halt`` starts before the CME daily halt (16:00-17:00 CT) so the path resumes after it, ``plain``
sits in a quiet afternoon. ``write_stress_catalog`` turns a path into a Parquet catalog of quotes and
trades (prices on the tick grid, spreads of 1-3 ticks, trades at the touch, at least one per
minute), so the risk actor and the MIA strategy can be run through the real backtest runner on
thousands of different markets. The same path and seed always give the same ticks; ``cut_ns``
replaces everything from a time on with a differently seeded continuation (to prove no decision
before it changes). ``str(path)`` prints the path in one readable block.
"""

import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from nautilus_trader.model.data import QuoteTick
from nautilus_trader.model.data import TradeTick
from nautilus_trader.model.enums import AggressorSide
from nautilus_trader.model.identifiers import TradeId
from nautilus_trader.model.instruments import FuturesContract
from nautilus_trader.model.objects import Price
from nautilus_trader.model.objects import Quantity
from nautilus_trader.persistence.catalog import ParquetDataCatalog

from mia_strategies import sessions
from mia_strategies.config import MarketsConfig
from mia_strategies.instruments import ContractRef
from mia_strategies.instruments import build_futures_contract
from mia_strategies.instruments import contract_windows


_NS = 1_000_000_000
_MINUTE = 60 * _NS
ANCHORS: dict[str, str] = {
    "roll": "2025-12-11T13:40:00Z",
    "halt": "2025-12-10T20:50:00Z",
    "plain": "2025-12-09T17:00:00Z",
}
#: Front-contract price at the anchor and the deferred contract's premium, in points.
_LEVELS = {"ES": (6830.0, 55.0), "MNQ": (25400.0, 230.0)}
#: How many ticks MNQ moves per ES tick (the Nasdaq moves ~1.2x the S&P at ~3.7x the price).
_MNQ_TICKS_PER_ES_TICK = 4.5


@dataclass(frozen=True)
class Segment:
    """A stretch of market: per-minute drift and volatility in ticks, spread, activity and shocks."""

    minutes: int
    drift_ticks: float
    vol_ticks: float
    spread_ticks: int = 1
    quotes_per_minute: int = 12
    gap_minutes: int = 0
    jump_ticks: int = 0
    spike_ticks: int = 0

    def __str__(self) -> str:
        extras = []
        if self.gap_minutes:
            extras.append(f"after a {self.gap_minutes}m gap")
        if self.jump_ticks:
            extras.append(f"jump {self.jump_ticks:+d}t")
        if self.spike_ticks:
            extras.append(f"spike {self.spike_ticks:+d}t")
        tail = (", " + ", ".join(extras)) if extras else ""
        return (
            f"{self.minutes}m drift {self.drift_ticks:+.1f}t/m vol {self.vol_ticks:.1f}t/m "
            f"spread {self.spread_ticks}t {self.quotes_per_minute}q/m{tail}"
        )


@dataclass(frozen=True)
class StressPath:
    """Where a path starts, its segments, and the seed of its randomness."""

    anchor: str
    segments: tuple[Segment, ...]
    seed: int
    roots: tuple[str, ...] = ("ES", "MNQ")
    #: An ISO time that replaces the anchor's (the anchor then only names the path).
    start: str = ""

    @property
    def start_ns(self) -> int:
        """The start time (UTC ns): ``start`` when given, else the anchor's."""
        return int(pd.Timestamp(self.start or ANCHORS[self.anchor]).value)

    def __str__(self) -> str:
        begin = self.start or ANCHORS[self.anchor]
        lines = [f"StressPath {self.anchor} from {begin} seed {self.seed} roots {','.join(self.roots)}:"]
        lines += [f"  {i + 1}. {segment}" for i, segment in enumerate(self.segments)]
        return "\n".join(lines)


@dataclass
class PathTicks:
    """The generated ticks of one contract."""

    instrument: FuturesContract
    quotes: list[QuoteTick]
    trades: list[TradeTick]


@dataclass(frozen=True)
class StressCatalog:
    """A written stress catalog: where, its time range, and per-contract tick counts."""

    path: Path
    start_ns: int
    end_ns: int
    ticks: dict[str, int]


def _session_time(ts: int) -> int:
    """Push ``ts`` out of a closed Globex period (daily halt, weekend) to the next open."""
    if sessions.is_open(ts):
        return ts
    day = sessions.trading_day(ts)
    start, _ = sessions.session_bounds(day)
    if start > ts:
        return start
    start, _ = sessions.session_bounds(sessions.trading_day(sessions.next_close_ns(ts) + 2 * 3600 * _NS))
    return start


def _minutes(path: StressPath) -> list[tuple[int, Segment, bool]]:
    """Every minute of market the path has: (minute start, its segment, first minute of the segment)."""
    out: list[tuple[int, Segment, bool]] = []
    t = path.start_ns
    for segment in path.segments:
        t += segment.gap_minutes * _MINUTE
        first = True
        for _ in range(segment.minutes):
            t = _session_time(t)
            out.append((t, segment, first))
            first = False
            t += _MINUTE
    return out


def _rng(seed: int, *keys: str | int) -> np.random.Generator:
    return np.random.default_rng([seed, *(zlib.crc32(str(k).encode()) for k in keys)])


def _mid_path(path: StressPath, minutes: list[tuple[int, Segment, bool]], seed: int) -> list[np.ndarray]:
    """ES mid in ticks at each quote of each minute (shared shape for every contract)."""
    rng = _rng(seed, "mid")
    level = 0.0
    mids: list[np.ndarray] = []
    for _, segment, first in minutes:
        n = segment.quotes_per_minute
        if first:
            level += segment.jump_ticks
        steps = rng.normal(segment.drift_ticks / n, segment.vol_ticks / np.sqrt(n), size=n)
        walk = level + np.cumsum(steps)
        level = float(walk[-1])
        mids.append(walk)
    return mids


def _contracts(path: StressPath, markets: MarketsConfig, end_ns: int) -> list[tuple[str, ContractRef, bool]]:
    """Contracts with data: the active ones of the path, and the next one when the path crosses a roll."""
    out: list[tuple[str, ContractRef, bool]] = []
    for root in path.roots:
        windows = contract_windows(root, path.start_ns, end_ns, markets)
        for i, window in enumerate(windows):
            out.append((root, window.contract, i > 0))
    return out


def build_ticks(path: StressPath, markets: MarketsConfig, seed: int | None = None) -> list[PathTicks]:
    """Quotes and trades of every contract of the path (``seed`` overrides the path's)."""
    seed = path.seed if seed is None else seed
    minutes = _minutes(path)
    if not minutes:
        return []
    end_ns = minutes[-1][0] + _MINUTE
    mids = _mid_path(path, minutes, seed)
    result: list[PathTicks] = []
    for root, contract, deferred in _contracts(path, markets, end_ns):
        instrument = build_futures_contract(contract, markets)
        tick = instrument.price_increment.as_double()
        base, premium = _LEVELS[root]
        level_ticks = round((base + (premium if deferred else 0.0)) / tick)
        scale = _MNQ_TICKS_PER_ES_TICK if root == "MNQ" else 1.0
        rng = _rng(seed, contract.symbol)
        quotes: list[QuoteTick] = []
        trades: list[TradeTick] = []
        for (minute_ns, segment, first), walk in zip(minutes, mids, strict=True):
            n = segment.quotes_per_minute
            offsets = np.sort(rng.choice(60_000, size=n, replace=False)) * 1_000_000 + rng.integers(0, 999_999, size=n)
            noise = rng.normal(0.0, 0.5, size=n) if root == "MNQ" else np.zeros(n)
            spike_at = int(rng.integers(0, n)) if first and segment.spike_ticks else -1
            traded = False
            for i in range(n):
                ts = minute_ns + int(offsets[i])
                mid = level_ticks + round(walk[i] * scale + noise[i])
                if i == spike_at:
                    mid += segment.spike_ticks
                bid_px = Price(mid * tick, instrument.price_precision)
                ask_px = Price((mid + segment.spread_ticks) * tick, instrument.price_precision)
                size = Quantity.from_int(int(rng.integers(1, 40)))
                quotes.append(QuoteTick(instrument.id, bid_px, ask_px, size, size, ts, ts))
                if rng.random() < 0.4 or (i == n - 1 and not traded):
                    buyer = rng.random() < 0.5
                    trades.append(
                        TradeTick(
                            instrument.id,
                            ask_px if buyer else bid_px,
                            Quantity.from_int(int(rng.integers(1, 4))),
                            AggressorSide.BUYER if buyer else AggressorSide.SELLER,
                            TradeId(f"{contract.symbol}-{len(trades)}"),
                            ts + 1000,
                            ts + 1000,
                        ),
                    )
                    traded = True
        result.append(PathTicks(instrument, quotes, trades))
    return result


def splice(base: list[PathTicks], other: list[PathTicks], cut_ns: int) -> list[PathTicks]:
    """``base`` before ``cut_ns`` and ``other`` from it on (same contracts, different futures)."""
    out = []
    for a, b in zip(base, other, strict=True):
        quotes = [q for q in a.quotes if q.ts_init < cut_ns] + [q for q in b.quotes if q.ts_init >= cut_ns]
        trades = [t for t in a.trades if t.ts_init < cut_ns] + [t for t in b.trades if t.ts_init >= cut_ns]
        out.append(PathTicks(a.instrument, quotes, trades))
    return out


def write_stress_catalog(ticks: list[PathTicks], folder: Path) -> StressCatalog:
    """Write instruments, quotes and trades into a new catalog at ``folder``."""
    catalog = ParquetDataCatalog(str(folder))
    catalog.write_data([t.instrument for t in ticks])
    counts: dict[str, int] = {}
    start, end = 2**63 - 1, 0
    for item in ticks:
        if item.quotes:
            catalog.write_data(item.quotes)
            start = min(start, item.quotes[0].ts_init)
            end = max(end, item.quotes[-1].ts_init)
        if item.trades:
            catalog.write_data(item.trades)
            end = max(end, item.trades[-1].ts_init)
        counts[item.instrument.id.value] = len(item.quotes) + len(item.trades)
    return StressCatalog(folder, start, end, counts)
