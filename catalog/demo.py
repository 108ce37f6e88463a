"""Seeded, realistic demo data: ES and MNQ quotes and trades on Globex hours around a contract roll.

The demo catalog lets ``mia backtest`` run on a fresh machine and gives tests data with known
structure. Prices follow one latent path per underlying (SPX for ES/MES, NDX for NQ/MNQ) on a
1-second grid of Globex session time: a common market factor makes ES and MNQ 1-minute returns
correlate at about 0.85 (regression beta of MNQ on ES about 1.2), and a seeded regime schedule shared by every root
switches between trends (drift), ranges (Ornstein-Uhlenbeck around a level) and high-volatility
stretches (3x volatility, wider spreads). Volatility and activity follow the session: RTH is
busier than overnight. Every contract trades at the latent price plus its calendar spread (the
deferred contract sits ~55 points above the front in ES, ~230 in MNQ), so both contracts of a roll
stay related. Quotes and trades arrive as Poisson processes; trades hit the prevailing bid or lift
the prevailing ask, never more than the size shown.

Everything is derived from ``numpy.random.default_rng`` seeded by ``(seed, purpose, ...)`` keys,
so the same arguments give byte-identical data. Ticks are written straight into Arrow tables with
the exact layout nautilus writes (checked against nautilus' own serializer on every instrument;
any mismatch falls back to the nautilus wranglers): the default build takes about 2 s instead of
about 14 s through a Python object per tick on a 2-core machine.
"""

import datetime as dt
import math
import os
import shutil
import uuid
import zlib
from collections.abc import Callable
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from nautilus_trader.core.datetime import unix_nanos_to_iso8601
from nautilus_trader.model.data import QuoteTick
from nautilus_trader.model.data import TradeTick
from nautilus_trader.model.enums import AggressorSide
from nautilus_trader.model.instruments import FuturesContract
from nautilus_trader.model.objects import FIXED_PRECISION
from nautilus_trader.model.objects import FIXED_PRECISION_BYTES
from nautilus_trader.persistence.catalog import ParquetDataCatalog
from nautilus_trader.persistence.funcs import class_to_filename
from nautilus_trader.persistence.funcs import urisafe_identifier
from nautilus_trader.persistence.wranglers import QuoteTickDataWrangler
from nautilus_trader.persistence.wranglers import TradeTickDataWrangler
from nautilus_trader.serialization.arrow.serializer import ArrowSerializer

from mia_strategies import sessions
from mia_strategies.config import MarketsConfig
from mia_strategies.errors import CatalogError
from mia_strategies.errors import ConfigError
from mia_strategies.instruments import ContractRef
from mia_strategies.instruments import activation_ns
from mia_strategies.instruments import build_futures_contract
from mia_strategies.instruments import contract_windows
from mia_strategies.instruments import expiry_ns


FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]

#: A Sunday: Globex opens 17:00 CT, so the default 6 trading days (Mon 8 - Mon 15 Dec 2025) hold
#: one weekend and the ESZ25 -> ESH26 roll on 2025-12-11 14:30 UTC.
DEMO_START = "2025-12-07"

REGIMES = ("trend_up", "trend_down", "range", "high_vol")
_TREND_UP, _TREND_DOWN, _RANGE, _HIGH_VOL = range(4)

_NS = 1_000_000_000
_DAY_NS = 86_400 * _NS

# -- model parameters (why each value: see the module docstring) ----------------------------------

#: Per-minute log-return volatility of the latent index at "normal" activity (~16% annualised).
_SIGMA_MIN = 2.5e-4
_SIGMA_SEC = _SIGMA_MIN / math.sqrt(60.0)
#: Share of each underlying's variance that is the common market factor.
_COMMON_SHARE = 0.9
#: Volatility multiplier per regime: ranges are calmer, high_vol is ~3x.
_REGIME_SIGMA = np.array([1.0, 1.0, 0.8, 3.0])
#: Arrival-rate multiplier per regime: fast markets quote and trade more.
_REGIME_RATE = np.array([1.1, 1.1, 1.0, 1.6])
#: Regime durations in minutes (inclusive bounds).
_REGIME_MINUTES = {_TREND_UP: (40, 180), _TREND_DOWN: (40, 180), _RANGE: (45, 240), _HIGH_VOL: (30, 90)}
#: Trend drift per minute, in units of the per-minute volatility.
_TREND_DRIFT = (0.12, 0.25)
#: OU half-life of range stretches, minutes.
_RANGE_HALF_LIFE = (5.0, 15.0)
#: The deferred contract is quoted at 0.3x the activity of the active one.
_INACTIVE_SHARE = 0.3
#: Trades per quote (Poisson rate ratio).
_TRADE_RATIO = 0.4
#: Probability of a 2-tick and a 3-tick spread: (RTH, overnight); high_vol multiplies by 2.5.
_WIDE_SPREAD = {True: (0.03, 0.01), False: (0.07, 0.02)}
_HIGH_VOL_SPREAD = 2.5
#: Calendar-spread noise: stationary standard deviation as a fraction of the spread, half-life.
_CALENDAR_NOISE = 0.012
_CALENDAR_HALF_LIFE_S = 1800.0


@dataclass(frozen=True)
class _Underlying:
    """The latent index a root trades on: level, factor loading and calendar spread."""

    name: str
    level: float  # front-contract price at the demo start
    beta: float  # loading on the common market factor (return terms)
    idio: float  # idiosyncratic volatility, in units of the base volatility
    calendar_spread: float  # deferred minus front, index points


@dataclass(frozen=True)
class _Flow:
    """How busy a root's book is: quote rate in RTH and the sizes it shows and trades."""

    quote_rate: float  # quotes per second in RTH at intensity 1
    book_size: float  # mean top-of-book size in RTH
    trade_size: float  # mean trade size


_UNDERLYINGS = {
    "SPX": _Underlying("SPX", 6830.0, 1.0, math.sqrt(1.0 - _COMMON_SHARE), 55.0),
    # loading 1.2 / 0.9 makes the regression beta on ES 1.2; corr = 1.2 / sqrt(1.6 + 0.393) ~= 0.85
    "NDX": _Underlying("NDX", 25400.0, 1.2 / _COMMON_SHARE, math.sqrt(0.393), 230.0),
}
_ROOT_UNDERLYING = {"ES": "SPX", "MES": "SPX", "NQ": "NDX", "MNQ": "NDX"}
_FLOWS = {
    "ES": _Flow(quote_rate=1.5, book_size=28.0, trade_size=2.5),
    "MES": _Flow(quote_rate=1.2, book_size=14.0, trade_size=2.0),
    "NQ": _Flow(quote_rate=1.3, book_size=6.0, trade_size=1.6),
    "MNQ": _Flow(quote_rate=1.4, book_size=9.0, trade_size=2.0),
}


# -- public API -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class RegimeSpan:
    """One stretch of the regime schedule, ``[start_ns, end_ns)`` inside one Globex session."""

    start_ns: int
    end_ns: int
    regime: str  # "trend_up" | "trend_down" | "range" | "high_vol"


@dataclass(frozen=True)
class DemoSummary:
    """What a demo build wrote: catalog folder, instrument ids, tick counts, range and regimes."""

    path: Path
    instruments: list[str]
    quotes: int
    trades: int
    start_ns: int  # open of the first session
    end_ns: int  # close of the last session
    regimes: list[RegimeSpan]


def generate_demo_catalog(
    path: Path,
    markets: MarketsConfig,
    *,
    roots: Sequence[str] = ("ES", "MNQ"),
    start: str = DEMO_START,
    trading_days: int = 6,
    seed: int = 7,
    intensity: float = 1.0,
    progress: Callable[[int, int], None] | None = None,
) -> DemoSummary:
    """Build a seeded demo catalog at ``path`` (a new or empty folder) and describe what it holds.

    ``start`` is a date (exchange time when naive): the first session is the first one opening
    at or after it. ``trading_days`` counts Globex sessions (weekdays). ``intensity`` scales the
    tick arrival rates only, so prices are the same at any intensity. ``progress(done, total)``
    advances once per instrument and trading day written.
    """
    path = Path(path)
    _check_target(path)
    if trading_days < 1:
        raise ConfigError(f"trading_days must be at least 1, was {trading_days}")
    if not intensity > 0 or not math.isfinite(intensity):
        raise ConfigError(f"intensity must be a positive number, was {intensity}")
    roots = [r.upper() for r in roots]
    if not roots:
        raise ConfigError("list at least one root such as ES or MNQ")
    for root in roots:
        markets.root(root)  # one-line error for unknown roots
        _profile(root, markets)

    days = _demo_sessions(_parse_start(start), trading_days)
    start_ns, end_ns = days[0].open_ns, days[-1].close_ns
    schedule = _RegimeSchedule.generate(days, seed)
    plans = [_plan_contracts(root, days, markets) for root in roots]
    units = [(d, plan, c) for d in range(len(days)) for plan in plans for c in plan.contracts if d in c.days]
    total = len(units) + 1
    if progress is not None:
        progress(0, total)

    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.parent / f".{path.name}.building-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    tmp.mkdir()  # not mkdtemp: the catalog keeps the usual permissions after the rename
    try:
        catalog = ParquetDataCatalog(str(tmp))
        instruments = [c.instrument for plan in plans for c in plan.contracts]
        catalog.write_data(list(instruments))
        writer = _TickWriter(catalog)
        paths = _LatentPaths(days, schedule, seed)
        quotes = trades = 0
        for done, (d, plan, contract) in enumerate(units, start=1):
            q, t = _contract_day(days[d], d, plan, contract, paths, schedule, seed, intensity)
            writer.write(contract.instrument, q, t)
            quotes += len(q.ts)
            trades += len(t.ts)
            if progress is not None:
                progress(done, total)
        _move_into_place(tmp, path)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    if progress is not None:
        progress(total, total)
    return DemoSummary(
        path=path,
        instruments=[str(c.instrument.id) for plan in plans for c in plan.contracts],
        quotes=quotes,
        trades=trades,
        start_ns=start_ns,
        end_ns=end_ns,
        regimes=schedule.spans(days),
    )


# -- target folder --------------------------------------------------------------------------------


def _check_target(path: Path) -> None:
    """Refuse anything but a missing or empty folder: the demo never mixes with other data."""
    if path.exists() and not path.is_dir():
        raise CatalogError(f"{path} is a file, not a folder: choose another folder for the demo catalog")
    if path.exists() and any(path.iterdir()):
        raise CatalogError(
            f"{path} is not empty: choose another folder for the demo catalog or delete this one",
        )


def _move_into_place(tmp: Path, path: Path) -> None:
    """Rename the finished build onto ``path`` so readers never see a half-written catalog."""
    _check_target(path)  # someone may have written there while we were building
    if path.exists():
        path.rmdir()
    os.replace(tmp, path)


# -- sessions and regimes -------------------------------------------------------------------------


@dataclass(frozen=True)
class _Session:
    """One Globex session with its offset on the concatenated 1-second grid of session time."""

    day: dt.date
    open_ns: int
    close_ns: int
    offset: int  # index of its first second on the global grid

    @property
    def seconds(self) -> int:
        return (self.close_ns - self.open_ns) // _NS


def _parse_start(start: str) -> int:
    """Nanoseconds of ``start``: a naive date or time is exchange time (Chicago)."""
    try:
        ts = pd.Timestamp(start)
    except (ValueError, TypeError):
        raise ConfigError(f"bad demo start {start!r}: use an ISO date such as {DEMO_START}") from None
    if ts is pd.NaT:
        raise ConfigError(f"bad demo start {start!r}: use an ISO date such as {DEMO_START}")
    ts = ts.tz_localize(sessions.EXCHANGE_TZ) if ts.tzinfo is None else ts
    return int(ts.tz_convert("UTC").value)


def _demo_sessions(start_ns: int, count: int) -> list[_Session]:
    """The first ``count`` full Globex sessions opening at or after ``start_ns``."""
    horizon = start_ns + (count * 7 // 5 + 4) * _DAY_NS
    out: list[_Session] = []
    offset = 0
    for day, open_ns, close_ns in sessions.sessions_between(start_ns, horizon):
        if (open_ns, close_ns) != sessions.session_bounds(day):
            continue  # clipped: ``start`` falls inside this session
        out.append(_Session(day, open_ns, close_ns, offset))
        offset += (close_ns - open_ns) // _NS
        if len(out) == count:
            break
    return out


def _rng(seed: int, *keys: str | int) -> np.random.Generator:
    """An independent generator per purpose: stable across runs (crc32, not ``hash``)."""
    words = [seed & 0xFFFFFFFF, seed >> 32 & 0xFFFFFFFF]
    words += [zlib.crc32(k.encode()) if isinstance(k, str) else int(k) for k in keys]
    return np.random.default_rng(words)


@dataclass(frozen=True)
class _RegimeSchedule:
    """Regime stretches on the global grid of session seconds, with their drift and OU parameters."""

    starts: IntArray  # first second of each stretch (global grid)
    codes: IntArray  # regime index per stretch
    drift: FloatArray  # per-second drift of the market factor, log terms (trends only)
    phi: FloatArray  # per-second OU persistence (ranges only; 1.0 elsewhere)
    total: int

    @staticmethod
    def generate(days: list[_Session], seed: int) -> "_RegimeSchedule":
        """A Markov chain over regimes with random durations; trends alternate in sign on average.

        Drawn sequentially from one generator, so a longer demo extends a shorter one unchanged.
        """
        total = days[-1].offset + days[-1].seconds
        rng = _rng(seed, "regimes")
        starts: list[int] = []
        codes: list[int] = []
        drift: list[float] = []
        phi: list[float] = []
        g, prev, net = 0, -1, 0.0
        while g < total:
            weights = np.array([0.2, 0.2, 0.42, 0.18])
            up = 1.0 / (1.0 + math.exp(net / 0.005))  # lean against the drift so far: levels stay sane
            weights[_TREND_UP] = 0.4 * up
            weights[_TREND_DOWN] = 0.4 * (1.0 - up)
            if prev >= 0:
                weights[prev] = 0.0
            code = int(rng.choice(4, p=weights / weights.sum()))
            lo, hi = _REGIME_MINUTES[code]
            minutes = int(rng.integers(lo, hi + 1))
            magnitude = float(rng.uniform(*_TREND_DRIFT)) * _SIGMA_MIN / 60.0
            half_life = float(rng.uniform(*_RANGE_HALF_LIFE)) * 60.0
            starts.append(g)
            codes.append(code)
            drift.append(magnitude if code == _TREND_UP else -magnitude if code == _TREND_DOWN else 0.0)
            phi.append(0.5 ** (1.0 / half_life) if code == _RANGE else 1.0)
            net += drift[-1] * minutes * 60
            g += minutes * 60
            prev = code
        return _RegimeSchedule(
            np.array(starts, dtype=np.int64),
            np.array(codes, dtype=np.int64),
            np.array(drift),
            np.array(phi),
            total,
        )

    def stretch_ids(self, session: _Session) -> IntArray:
        """Index of the stretch in force at each second of ``session``."""
        grid = np.arange(session.offset, session.offset + session.seconds, dtype=np.int64)
        return np.searchsorted(self.starts, grid, side="right").astype(np.int64) - 1

    def spans(self, days: list[_Session]) -> list[RegimeSpan]:
        """Wall-clock spans of the schedule, split at session boundaries (nothing in halts)."""
        out: list[RegimeSpan] = []
        ends = np.append(self.starts[1:], self.total)
        for s in days:
            lo, hi = s.offset, s.offset + s.seconds
            for i in np.flatnonzero((self.starts < hi) & (ends > lo)):
                a, b = max(int(self.starts[i]), lo), min(int(ends[i]), hi)
                regime = REGIMES[self.codes[i]]
                out.append(RegimeSpan(s.open_ns + (a - lo) * _NS, s.open_ns + (b - lo) * _NS, regime))
        return out


def _local_seconds(session: _Session) -> IntArray:
    """Exchange-local second of day for each second of the session (no DST change inside one)."""
    local = sessions.to_local(session.open_ns)
    first = local.hour * 3600 + local.minute * 60 + local.second
    return (first + np.arange(session.seconds, dtype=np.int64)) % 86_400


_RTH = (8 * 3600 + 30 * 60, 15 * 3600)
_OPEN_BURST = (8 * 3600 + 30 * 60, 9 * 3600)


def _season(session: _Session) -> tuple[FloatArray, FloatArray, BoolArray]:
    """Volatility and arrival-rate multipliers per second, and the RTH mask."""
    sod = _local_seconds(session)
    rth = (sod >= _RTH[0]) & (sod < _RTH[1])
    burst = (sod >= _OPEN_BURST[0]) & (sod < _OPEN_BURST[1])
    vol = np.where(rth, 1.15, 0.55)
    vol[burst] = 1.7
    rate = np.where(rth, 1.0, 0.2)
    rate[burst] = 1.6
    return vol, rate, rth


# -- latent prices --------------------------------------------------------------------------------


def _ar1(eps: FloatArray, phi: float, y0: float) -> FloatArray:
    """``y[t] = phi * y[t-1] + eps[t]`` vectorised in blocks (scaled cumulative sums)."""
    out = np.empty_like(eps)
    block = 2048
    k = np.arange(1, block + 1, dtype=np.float64)
    for a in range(0, len(eps), block):
        e = eps[a : a + block]
        n = len(e)
        up = phi ** -k[:n]
        out[a : a + n] = phi ** k[:n] * (y0 + np.cumsum(e * up))
        y0 = float(out[a + n - 1])
    return out


@dataclass
class _PathState:
    """Carried from one session to the next: last log price, range levels, calendar-spread noise."""

    log_price: float
    levels: dict[int, float]
    calendar: float


class _LatentPaths:
    """Per-session log-price paths of every underlying on the 1-second grid, built on demand."""

    def __init__(self, days: list[_Session], schedule: _RegimeSchedule, seed: int) -> None:
        self._days = days
        self._schedule = schedule
        self._seed = seed
        self._cache: dict[tuple[str, int], tuple[FloatArray, FloatArray]] = {}
        self._state: dict[str, _PathState] = {}
        self._next: dict[str, int] = {}

    def get(self, underlying: _Underlying, d: int) -> tuple[FloatArray, FloatArray]:
        """Log price and calendar spread (points) per second of session ``d``."""
        name = underlying.name
        if name not in self._state:
            self._state[name] = _PathState(math.log(underlying.level), {}, 0.0)
            self._next[name] = 0
        while self._next[name] <= d:  # sessions are built in order: state flows forward
            i = self._next[name]
            self._cache[(name, i)] = self._build(underlying, i)
            self._cache.pop((name, i - 2), None)
            self._next[name] = i + 1
        return self._cache[(name, d)]

    def _build(self, u: _Underlying, d: int) -> tuple[FloatArray, FloatArray]:
        session = self._days[d]
        state = self._state[u.name]
        n = session.seconds
        vol, _, _ = _season(session)
        ids = self._schedule.stretch_ids(session)
        codes = self._schedule.codes[ids]
        sigma = _SIGMA_SEC * vol * _REGIME_SIGMA[codes]
        common = _rng(self._seed, "common", session.day.toordinal()).standard_normal(n + 1)
        idio = _rng(self._seed, "idio", u.name, session.day.toordinal()).standard_normal(n + 2)
        eps = sigma * (u.beta * math.sqrt(_COMMON_SHARE) * common[1:] + u.idio * idio[2:])
        if d > 0:  # the gap over the daily halt or the weekend
            gap = 3.0 if (session.open_ns - self._days[d - 1].close_ns) <= _DAY_NS // 12 else 8.0
            eps[0] += gap * _SIGMA_MIN * (u.beta * math.sqrt(_COMMON_SHARE) * common[0] + u.idio * idio[0])
        eps += u.beta * self._schedule.drift[ids]

        logp = np.empty(n)
        cuts = np.flatnonzero(np.diff(ids)) + 1
        last = state.log_price
        for a, b in zip(np.r_[0, cuts], np.r_[cuts, n], strict=True):
            sid = int(ids[a])
            phi = float(self._schedule.phi[sid])
            if phi < 1.0:
                level = state.levels.setdefault(sid, last)
                logp[a:b] = level + _ar1(eps[a:b], phi, last - level)
            else:
                logp[a:b] = last + np.cumsum(eps[a:b])
            last = float(logp[b - 1])
        state.log_price = last
        state.levels = {k: v for k, v in state.levels.items() if k >= int(ids[-1])}

        phi_c = 0.5 ** (1.0 / _CALENDAR_HALF_LIFE_S)
        sd = _CALENDAR_NOISE * u.calendar_spread
        shocks = _rng(self._seed, "calendar", u.name, session.day.toordinal()).standard_normal(n)
        noise = _ar1(shocks * sd * math.sqrt(1.0 - phi_c**2), phi_c, state.calendar)
        state.calendar = float(noise[-1])
        return logp, u.calendar_spread + noise


# -- contracts ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Contract:
    """One contract of the demo: where it sits in the calendar and when it is active or written."""

    ref: ContractRef
    instrument: FuturesContract
    index: int  # 0 = front at the demo start; its price is the latent price + index * spread
    active_from_ns: int
    active_to_ns: int
    live_from_ns: int  # listing .. expiry: never write outside
    live_to_ns: int
    days: frozenset[int]  # sessions it has data in


@dataclass(frozen=True)
class _RootPlan:
    root: str
    underlying: _Underlying
    flow: _Flow
    tick: float
    tick_decimal: Decimal
    contracts: list[_Contract]


def _profile(root: str, markets: MarketsConfig) -> tuple[_Underlying, _Flow]:
    """The demo profile of a root: by name, else by the underlying in markets.yaml."""
    spec = markets.root(root)
    name = _ROOT_UNDERLYING.get(root, spec.underlying)
    if name not in _UNDERLYINGS:
        known = ", ".join(sorted(_ROOT_UNDERLYING))
        raise ConfigError(f"no demo data profile for root {root!r}: the demo knows {known}")
    flow = _FLOWS.get(root) or (_FLOWS["ES"] if name == "SPX" else _FLOWS["MNQ"])
    return _UNDERLYINGS[name], flow


def _plan_contracts(root: str, days: list[_Session], markets: MarketsConfig) -> _RootPlan:
    """Contracts of ``root`` with data: each active window widened by one session on either side."""
    underlying, flow = _profile(root, markets)
    spec = markets.root(root)
    start_ns, end_ns = days[0].open_ns, days[-1].close_ns
    contracts: list[_Contract] = []
    for index, window in enumerate(contract_windows(root, start_ns, end_ns - 1, markets)):
        a, b = max(window.active_from_ns, start_ns), min(window.active_to_ns, end_ns)
        touched = [i for i, s in enumerate(days) if s.open_ns < b and s.close_ns > a]
        if not touched:
            continue
        live_from, live_to = activation_ns(window.contract, spec), expiry_ns(window.contract, spec)
        wanted = range(max(touched[0] - 1, 0), min(touched[-1] + 1, len(days) - 1) + 1)
        kept = frozenset(i for i in wanted if days[i].open_ns < live_to and days[i].close_ns > live_from)
        contracts.append(
            _Contract(
                ref=window.contract,
                instrument=build_futures_contract(window.contract, markets),
                index=index,
                active_from_ns=window.active_from_ns,
                active_to_ns=window.active_to_ns,
                live_from_ns=live_from,
                live_to_ns=live_to,
                days=kept,
            ),
        )
    return _RootPlan(root, underlying, flow, float(spec.tick_size), spec.tick_size, contracts)


# -- ticks ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Quotes:
    ts: IntArray
    bid: IntArray  # price in ticks
    ask: IntArray
    bid_size: IntArray
    ask_size: IntArray


@dataclass(frozen=True)
class _Trades:
    ts: IntArray
    price: IntArray  # price in ticks
    size: IntArray
    buyer: BoolArray  # aggressor: True BUYER (at the ask), False SELLER (at the bid)
    trade_id: list[str]


def _arrivals(rng: np.random.Generator, rate: FloatArray, open_ns: int) -> IntArray:
    """Poisson arrival times (ns, strictly increasing) for a rate per second, by time inversion."""
    cum = np.cumsum(rate)
    n = int(rng.poisson(cum[-1])) if len(cum) else 0
    if n == 0:
        return np.empty(0, dtype=np.int64)
    u = np.sort(rng.uniform(0.0, cum[-1], n))
    k = np.minimum(np.searchsorted(cum, u, side="right"), len(rate) - 1)
    before = np.where(k > 0, cum[k - 1], 0.0)
    frac = np.clip((u - before) / rate[k], 0.0, 1.0 - 1e-9)
    ts = open_ns + k * _NS + (frac * _NS).astype(np.int64)
    return np.unique(ts)


def _geometric(rng: np.random.Generator, mean: FloatArray) -> IntArray:
    """Integer sizes >= 1 with the given means (geometric: many small, a few large)."""
    p = 1.0 / np.maximum(mean, 1.0)
    return rng.geometric(p).astype(np.int64)


def _contract_day(
    session: _Session,
    d: int,
    plan: _RootPlan,
    contract: _Contract,
    paths: _LatentPaths,
    schedule: _RegimeSchedule,
    seed: int,
    intensity: float,
) -> tuple[_Quotes, _Trades]:
    """Quotes and trades of one contract over one session."""
    logp, calendar = paths.get(plan.underlying, d)
    _, rate_season, rth = _season(session)
    ids = schedule.stretch_ids(session)
    codes = schedule.codes[ids]
    n = session.seconds
    secs = session.open_ns + np.arange(n, dtype=np.int64) * _NS
    active = (secs >= contract.active_from_ns) & (secs < contract.active_to_ns)
    live = (secs >= contract.live_from_ns) & (secs < contract.live_to_ns)
    rate = plan.flow.quote_rate * intensity * rate_season * _REGIME_RATE[codes]
    rate = rate * np.where(active, 1.0, _INACTIVE_SHARE) * live
    rate = np.maximum(rate, 1e-12)  # keeps the time inversion defined; dead seconds get nothing
    symbol = contract.ref.symbol
    rng = _rng(seed, "flow", symbol, session.day.toordinal())

    # Quotes: the latent price (interpolated inside the second) plus this contract's calendar offset.
    q_ts = _arrivals(rng, rate, session.open_ns)
    q_ts = q_ts[live[(q_ts - session.open_ns) // _NS]]
    k = (q_ts - session.open_ns) // _NS
    frac = ((q_ts - session.open_ns) % _NS) / _NS
    nxt = np.minimum(k + 1, n - 1)
    price = np.exp(logp[k] + frac * (logp[nxt] - logp[k])) + contract.index * calendar[k]
    mid = price / plan.tick
    wide = codes[k] == _HIGH_VOL
    widen = np.where(wide, _HIGH_VOL_SPREAD, 1.0)
    p2 = np.where(rth[k], _WIDE_SPREAD[True][0], _WIDE_SPREAD[False][0]) * widen
    p3 = np.where(rth[k], _WIDE_SPREAD[True][1], _WIDE_SPREAD[False][1]) * widen
    u = rng.random(len(k))
    spread = 1 + (u < p2 + p3).astype(np.int64) + (u < p3).astype(np.int64)
    bid = np.floor(mid - spread / 2.0 + 0.5).astype(np.int64)
    ask = bid + spread
    book = plan.flow.book_size * np.where(rth[k], 1.0, 0.4) * np.where(wide, 0.5, 1.0)
    book = book * np.where(active[k], 1.0, 0.5)
    quotes = _Quotes(q_ts, bid, ask, _geometric(rng, book), _geometric(rng, book))

    # Trades: Poisson too, each against the quote in force (the last one strictly before it).
    t_ts = _arrivals(rng, rate * _TRADE_RATIO, session.open_ns)
    j = np.searchsorted(q_ts, t_ts, side="right") - 1
    keep = j >= 0
    keep[keep] &= q_ts[j[keep]] != t_ts[keep]
    t_ts, j = t_ts[keep], j[keep]
    tk = (t_ts - session.open_ns) // _NS
    lean = np.sign(schedule.drift[ids[tk]]) * 0.08  # trends: more buyers up, more sellers down
    buyer = rng.random(len(j)) < 0.5 + lean
    want = _geometric(rng, np.full(len(j), plan.flow.trade_size))
    shown = np.where(buyer, quotes.ask_size[j], quotes.bid_size[j])
    ymd = session.day.strftime("%Y%m%d")
    trades = _Trades(
        ts=t_ts,
        price=np.where(buyer, ask[j], bid[j]),
        size=np.minimum(want, shown),
        buyer=buyer,
        trade_id=[f"{symbol}-{ymd}-{i:07d}" for i in range(len(t_ts))],
    )
    return quotes, trades


# -- writing --------------------------------------------------------------------------------------


def _fixed(values: IntArray, scale: int) -> pa.FixedSizeBinaryArray:
    """Nautilus fixed-point raw values (``value * 10**FIXED_PRECISION``) as Arrow binary columns."""
    width = FIXED_PRECISION_BYTES
    uniq, inverse = np.unique(values, return_inverse=True)
    raw = b"".join((int(v) * scale).to_bytes(width, "little", signed=True) for v in uniq)
    table = np.frombuffer(raw, dtype=np.uint8).reshape(len(uniq), width)
    buf = table[inverse.reshape(-1)].tobytes()
    return pa.FixedSizeBinaryArray.from_buffers(pa.binary(width), len(values), [None, pa.py_buffer(buf)])


class _TickWriter:
    """Writes one instrument-day of quotes and trades as one catalog file each.

    The Arrow tables are built from the arrays directly; the first chunk of every instrument is
    compared with what nautilus' serializer makes of the same ticks, and any difference switches
    that instrument to the wrangler + ``write_data`` path.
    """

    def __init__(self, catalog: ParquetDataCatalog) -> None:
        self._catalog = catalog
        self._direct: dict[str, bool] = {}

    def write(self, instrument: FuturesContract, quotes: _Quotes, trades: _Trades) -> None:
        key = str(instrument.id)
        if key not in self._direct:
            self._direct[key] = self._same_as_nautilus(instrument, quotes, trades)
        if len(quotes.ts):
            if self._direct[key]:
                self._write_table(QuoteTick, key, self._quote_table(instrument, quotes), quotes.ts)
            else:
                self._catalog.write_data(self._quote_objects(instrument, quotes))
        if len(trades.ts):
            if self._direct[key]:
                self._write_table(TradeTick, key, self._trade_table(instrument, trades), trades.ts)
            else:
                self._catalog.write_data(self._trade_objects(instrument, trades))

    def _write_table(self, cls: type, identifier: str, table: pa.Table, ts: IntArray) -> None:
        base = str(self._catalog.path).rstrip("/")
        folder = f"{base}/data/{class_to_filename(cls)}/{urisafe_identifier(identifier)}"
        os.makedirs(folder, exist_ok=True)
        name = "_".join(unix_nanos_to_iso8601(int(t)).replace(":", "-").replace(".", "-") for t in (ts[0], ts[-1]))
        pq.write_table(table, f"{folder}/{name}.parquet", row_group_size=self._catalog.max_rows_per_group)

    @staticmethod
    def _scales(instrument: FuturesContract) -> tuple[int, int]:
        tick = Decimal(str(instrument.price_increment))
        return int(tick * 10**FIXED_PRECISION), 10**FIXED_PRECISION

    @staticmethod
    def _metadata(instrument: FuturesContract) -> dict[str, str]:
        return {
            "instrument_id": str(instrument.id),
            "price_precision": str(instrument.price_precision),
            "size_precision": str(instrument.size_precision),
        }

    def _quote_table(self, instrument: FuturesContract, q: _Quotes) -> pa.Table:
        price, size = self._scales(instrument)
        binary = pa.binary(FIXED_PRECISION_BYTES)
        schema = pa.schema(
            [
                pa.field("bid_price", binary, nullable=False),
                pa.field("ask_price", binary, nullable=False),
                pa.field("bid_size", binary, nullable=False),
                pa.field("ask_size", binary, nullable=False),
                pa.field("ts_event", pa.uint64(), nullable=False),
                pa.field("ts_init", pa.uint64(), nullable=False),
            ],
            metadata=self._metadata(instrument),
        )
        ts = pa.array(q.ts.astype(np.uint64))
        columns = [
            _fixed(q.bid, price),
            _fixed(q.ask, price),
            _fixed(q.bid_size, size),
            _fixed(q.ask_size, size),
            ts,
            ts,
        ]
        return pa.Table.from_arrays(columns, schema=schema)

    def _trade_table(self, instrument: FuturesContract, t: _Trades) -> pa.Table:
        price, size = self._scales(instrument)
        binary = pa.binary(FIXED_PRECISION_BYTES)
        schema = pa.schema(
            [
                pa.field("price", binary, nullable=False),
                pa.field("size", binary, nullable=False),
                pa.field("aggressor_side", pa.uint8(), nullable=False),
                pa.field("trade_id", pa.string(), nullable=False),
                pa.field("ts_event", pa.uint64(), nullable=False),
                pa.field("ts_init", pa.uint64(), nullable=False),
            ],
            metadata=self._metadata(instrument),
        )
        side = np.where(t.buyer, int(AggressorSide.BUYER), int(AggressorSide.SELLER)).astype(np.uint8)
        ts = pa.array(t.ts.astype(np.uint64))
        columns = [
            _fixed(t.price, price),
            _fixed(t.size, size),
            pa.array(side),
            pa.array(t.trade_id, type=pa.string()),
            ts,
            ts,
        ]
        return pa.Table.from_arrays(columns, schema=schema)

    @staticmethod
    def _index(ts: IntArray) -> pd.DatetimeIndex:
        return pd.DatetimeIndex(pd.to_datetime(ts, unit="ns", utc=True))

    def _quote_objects(self, instrument: FuturesContract, q: _Quotes) -> list[QuoteTick]:
        tick = float(instrument.price_increment)
        frame = pd.DataFrame(
            {
                "bid_price": q.bid * tick,
                "ask_price": q.ask * tick,
                "bid_size": q.bid_size.astype(np.float64),
                "ask_size": q.ask_size.astype(np.float64),
            },
            index=self._index(q.ts),
        )
        result: list[QuoteTick] = QuoteTickDataWrangler(instrument).process(frame)
        return result

    def _trade_objects(self, instrument: FuturesContract, t: _Trades) -> list[TradeTick]:
        tick = float(instrument.price_increment)
        frame = pd.DataFrame(
            {
                "price": t.price * tick,
                "quantity": t.size.astype(np.float64),
                "side": np.where(t.buyer, "BUY", "SELL"),
                "trade_id": t.trade_id,
            },
            index=self._index(t.ts),
        )
        result: list[TradeTick] = TradeTickDataWrangler(instrument).process(frame)
        return result

    def _same_as_nautilus(self, instrument: FuturesContract, quotes: _Quotes, trades: _Trades) -> bool:
        """Whether the direct tables equal nautilus' own serialization on a sample of these ticks."""
        n = 64
        q = _Quotes(quotes.ts[:n], quotes.bid[:n], quotes.ask[:n], quotes.bid_size[:n], quotes.ask_size[:n])
        t = _Trades(trades.ts[:n], trades.price[:n], trades.size[:n], trades.buyer[:n], trades.trade_id[:n])
        try:
            if len(q.ts):
                ours = self._quote_table(instrument, q)
                objects = self._quote_objects(instrument, q)
                theirs = _as_table(ArrowSerializer.serialize_batch(objects, QuoteTick))
                if not ours.equals(theirs, check_metadata=True):
                    return False
            if len(t.ts):
                ours = self._trade_table(instrument, t)
                objects = self._trade_objects(instrument, t)
                theirs = _as_table(ArrowSerializer.serialize_batch(objects, TradeTick))
                if not ours.equals(theirs, check_metadata=True):
                    return False
        except (ValueError, TypeError, KeyError, pa.ArrowException):
            return False
        return True


def _as_table(data: pa.Table | pa.RecordBatch) -> pa.Table:
    return data if isinstance(data, pa.Table) else pa.Table.from_batches([data])
