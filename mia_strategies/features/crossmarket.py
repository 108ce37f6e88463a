"""Cross-market features: the VIX family (level, changes, term structure) and the equity-ETF proxy (SPY for ES).

Reference series arrive as bars of their own instruments (``VIX.CBOE-1-DAY-LAST-EXTERNAL``,
``SPY.ARCA-1-MINUTE-LAST-EXTERNAL``) and are shared by every contract; a value is used only once
its bar has closed (its timestamp is at or before the decision bar's close), so a daily VIX close is
seen from 16:15 ET on. ES-ETF pairs are formed only when both have a bar closing at the same time
and each follows its own previous bar by one bar length, so returns are aligned minute by minute.
``vix_es_correlation`` pairs daily ES returns (one contract's consecutive session closes, the
contract active at that close) with daily VIX log changes over completed days only.
"""

import datetime as dt
import itertools
import math
from zoneinfo import ZoneInfo

import numpy as np

from mia_strategies.features import dynamic_kernel
from mia_strategies.features.core import NS_PER_DAY
from mia_strategies.features.core import NS_PER_MINUTE
from mia_strategies.features.core import BarContext
from mia_strategies.features.core import BarInput
from mia_strategies.features.core import InstrumentInfo
from mia_strategies.features.params import CrossMarketParams
from mia_strategies.features.registry import SpecList
from mia_strategies.features.rolling import NAN
from mia_strategies.features.rolling import FloatArray
from mia_strategies.features.rolling import Ring
from mia_strategies.features.rolling import correlation
from mia_strategies.features.rolling import percentile_rank
from mia_strategies.features.rolling import window_mean_std


FAMILY = "crossmarket"
_V = ("vix",)
_E = ("bars", "etf")
_NY = ZoneInfo("America/New_York")
_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
CORR_N = (30, 60, 120, 390)
BETA_N = (60, 390)

SPECS = SpecList(FAMILY)
SPECS.add("vix_level", _V, 1, "last VIX daily close known at the bar close")
SPECS.add("vix_change_1d", _V, 2, "ln(VIX close / previous VIX close)")
SPECS.add("vix_change_5d", _V, 6, "ln(VIX close / VIX close 5 days earlier)")
SPECS.add("vix_zscore_20d", _V, 20, "z-score of the VIX close within its last 20 closes")
SPECS.add("vix_zscore_60d", _V, 60, "z-score of the VIX close within its last 60 closes")
SPECS.add("vix_percentile_252d", _V, 252, "percentile rank of the VIX close within its last 252 closes, 0..1")
SPECS.add("vix_sma_ratio_10d", _V, 10, "VIX close / mean of its last 10 closes")
SPECS.add("vix_term_ratio", ("vix",), 1, "VIX / VIX3M (term structure; > 1 is backwardation)")
SPECS.add("vix_term_slope", ("vix",), 1, "VIX3M - VIX, points")
SPECS.add("vix9d_ratio", ("vix",), 1, "VIX9D / VIX (short-dated stress)")
SPECS.add("vix_age_hours", _V, 1, "hours since the VIX close in use")
SPECS.add("vix_implied_move_1d", _V, 1, "VIX / 100 / sqrt(252): the implied one-day move")
SPECS.add("vix_rv_spread", ("vix", "bars"), 391, "VIX / 100 - annualised rv_390 of the instrument")
SPECS.add("vix_es_correlation", ("vix", "bars"), 1, "correlation of daily ES returns and VIX log changes, last 20 days")
SPECS.add("vix_es_correlation_60d", ("vix", "bars"), 1, "the same over the last 60 days")
SPECS.add("es_spy_ratio", _E, 1, "C / ETF close (ETF bar at most 5 minutes old)")
SPECS.add("es_spy_basis_bps", _E, 30, "ln(C / ETF close) minus its mean over the last 390 paired bars, basis points")
SPECS.add("es_spy_basis_zscore", _E, 30, "z-score of ln(C / ETF close) within the last 390 paired bars")
for _n in CORR_N:
    SPECS.add(f"es_spy_corr_{_n}", _E, _n, f"correlation of paired 1-bar returns over the last {_n} pairs")
for _n in BETA_N:
    SPECS.add(f"es_spy_beta_{_n}", _E, _n, f"OLS beta of the instrument's 1-bar return on the ETF's, {_n} pairs")
SPECS.add("es_spy_lead_corr_60", _E, 60, "correlation of the instrument's return with the ETF's previous-bar return")
SPECS.add("es_spy_lag_corr_60", _E, 60, "correlation of the instrument's previous-bar return with the ETF's return")
SPECS.add("spy_ret_1", ("etf",), 2, "ETF 1-bar log return (its own consecutive bars)")
SPECS.add("spy_ret_5", ("etf",), 6, "ETF log return over its last 5 bars")
SPECS.add("spy_ret_15", ("etf",), 16, "ETF log return over its last 15 bars")
SPECS.add("spy_volume_zscore_60", ("etf",), 60, "z-score of ln(1 + ETF volume) within its last 60 bars")
SPECS.add("es_spy_return_spread_15", _E, 16, "instrument 15-bar log return minus the ETF's")
INDEX = SPECS.index()


def ny_date(ts_ns: int) -> dt.date:
    """Calendar date in New York of a UTC timestamp (the date of a daily index close)."""
    return (_EPOCH + dt.timedelta(microseconds=ts_ns // 1000)).astimezone(_NY).date()


class DailySeries:
    """A daily reference series (VIX, VIX3M, VIX9D): closes by New York date, in arrival order."""

    def __init__(self) -> None:
        self.closes = Ring(300)
        self.ts: list[int] = []
        self.by_date: dict[dt.date, float] = {}
        self.dates: list[dt.date] = []
        self.version = 0  # bumped on every accepted close: readers cache what derives from the closes

    def on_bar(self, bar: BarInput) -> None:
        """Record a daily close (a second close for the same date replaces nothing: first wins)."""
        day = ny_date(bar.ts_event)
        if day in self.by_date:
            return
        self.version += 1
        self.closes.push(bar.close)
        self.ts.append(bar.ts_event)
        self.by_date[day] = bar.close
        self.dates.append(day)
        if len(self.ts) > 600:
            del self.ts[:300]
            for old in self.dates[:300]:
                del self.by_date[old]
            del self.dates[:300]

    def latest(self, max_age_ns: int, now_ns: int) -> float:
        """The newest close if it is at most ``max_age_ns`` old, else NaN."""
        if not self.ts or now_ns - self.ts[-1] > max_age_ns:
            return NAN
        return self.closes.newest()


class EtfSeries:
    """The ETF proxy's minute bars: newest bar, its predecessor, and histories of closes and volumes."""

    def __init__(self, bar_ns: int = NS_PER_MINUTE) -> None:
        self.bar_ns = bar_ns
        self.ts = 0
        self.close = NAN
        self.ret = NAN  # 1-bar log return when the previous bar is exactly one bar earlier
        self.closes = Ring(64)
        self.lnv = Ring(64)

    def on_bar(self, bar: BarInput) -> None:
        """Record a bar: its return counts only after a bar exactly one bar length earlier."""
        consecutive = self.ts != 0 and bar.ts_event - self.ts == self.bar_ns
        self.ret = math.log(bar.close / self.close) if consecutive else NAN
        self.ts = bar.ts_event
        self.close = bar.close
        self.closes.push(bar.close)
        self.lnv.push(math.log1p(bar.volume))


class RootDaily:
    """Last close per (trading day, contract) of every contract of a root, for daily ES returns."""

    def __init__(self) -> None:
        self.closes: dict[dt.date, dict[str, tuple[int, float]]] = {}
        self.windows: dict[str, tuple[int | None, int | None]] = {}
        self._cache_day: dt.date | None = None
        self._cache: dict[dt.date, tuple[dt.date, float]] = {}

    def register(self, info: InstrumentInfo) -> None:
        """Remember when the contract is the active one (its roll window)."""
        self.windows[info.instrument_id] = (info.previous_roll_ns, info.roll_ns)

    def on_bar(self, instrument_id: str, day: dt.date, ts: int, close: float) -> None:
        """Record the contract's newest close of the trading day."""
        self.closes.setdefault(day, {})[instrument_id] = (ts, close)
        if len(self.closes) > 400:
            for old in sorted(self.closes)[:100]:
                del self.closes[old]

    def returns_before(self, day: dt.date) -> dict[dt.date, tuple[dt.date, float]]:
        """Daily log returns of completed days before ``day``: day → (day it runs from, return).

        The day it runs from is the previous day with data, which after a gap in the data is not the
        previous trading day; the caller decides whether such a return counts. Cached for the whole
        trading day.
        """
        if self._cache_day == day:
            return self._cache
        out: dict[dt.date, tuple[dt.date, float]] = {}
        days = sorted(d for d in self.closes if d < day)
        for prev, cur in itertools.pairwise(days):
            active = self._active(self.closes[cur])
            if active is None:
                continue
            previous = self.closes[prev].get(active)
            if previous is not None:
                out[cur] = (prev, math.log(self.closes[cur][active][1] / previous[1]))
        self._cache_day = day
        self._cache = out
        return out

    def _active(self, closes: dict[str, tuple[int, float]]) -> str | None:
        for instrument_id, (ts, _) in sorted(closes.items()):
            start, end = self.windows.get(instrument_id, (None, None))
            if (start is None or start <= ts) and (end is None or ts < end):
                return instrument_id
        return None


class CrossMarketState:
    """Per-instrument pairs with the ETF proxy (compiled, see ``dynamic_kernel.etf_bar``); VIX reads are shared.

    What derives from daily closes only (VIX window statistics, the VIX-ES correlations) is cached
    until the series gets a new close: recomputing it every minute cost more than everything else.
    """

    def __init__(self, info: InstrumentInfo, params: CrossMarketParams, index: dict[str, int]) -> None:
        self._info = info
        self._params = params
        self._etf_bar_type = params.etf_bar_types.get(info.root)
        self._rings: FloatArray = np.full((dynamic_kernel.N_RINGS, 800), np.nan)  # Ring(400) each
        self._ring_state = np.zeros(2 * dynamic_kernel.N_RINGS, dtype=np.int64)  # next slot, count
        self._etf_p = np.array(
            [INDEX["es_spy_basis_bps"], INDEX["es_spy_basis_zscore"]]
            + [INDEX[f"es_spy_corr_{n}"] for n in CORR_N]
            + [INDEX[f"es_spy_beta_{n}"] for n in BETA_N]
            + [INDEX["es_spy_lead_corr_60"], INDEX["es_spy_lag_corr_60"]]
            + list(CORR_N)
            + list(BETA_N)
            + [INDEX["spy_volume_zscore_60"]],
            dtype=np.int64,
        )
        self._prev_pair_ts = 0
        self._prev_es_r = NAN
        self._prev_etf_r = NAN
        self._i_rv390 = index["rv_390"]
        self._i_ret15 = index["ret_15"]
        self._annualise = math.sqrt(params.bars_per_year)
        self._pair_max_age_ns = int(params.etf_pair_max_age_hours * 3_600_000_000_000)
        self._vix_max_age = int(params.vix_max_age_days * NS_PER_DAY)
        self._etf_max_age = int(params.etf_max_age_minutes * NS_PER_MINUTE)
        self._vix_key: tuple[int, int] = (-1, -1)
        self._vix_stats: list[tuple[int, float]] = []
        self._corr_key: tuple[object, int, int] | None = None
        self._corr_values: list[tuple[int, float]] = []

    def on_bar(self, ctx: BarContext, out: FloatArray) -> None:
        """Write VIX and ETF features for the bar closing now."""
        shared = ctx.shared
        ts = ctx.bar.ts_event
        self._vix(ctx, out)
        daily = shared.root_daily(self._info.root)
        session = ctx.hist.session
        if session is not None:
            daily.on_bar(self._info.instrument_id, session.day, ts, ctx.bar.close)
            self._vix_correlation(daily.returns_before(session.day), shared.vix(self._params.vix_bar_type), out)
        etf = shared.etf.get(self._etf_bar_type) if self._etf_bar_type else None
        if etf is not None and etf.ts:
            self._etf(ctx, etf, out)

    def _vix(self, ctx: BarContext, out: FloatArray) -> None:
        p = self._params
        ts = ctx.bar.ts_event
        max_age = self._vix_max_age
        vix = ctx.shared.vix(p.vix_bar_type)
        level = vix.latest(max_age, ts)
        if level != level:
            return
        out[INDEX["vix_level"]] = level
        key = (id(vix), vix.version)
        if key != self._vix_key:  # the level is the newest close, so these change only with a new close
            self._vix_key = key
            self._vix_stats = self._vix_window_stats(vix.closes, level)
        for position, value in self._vix_stats:
            out[position] = value
        out[INDEX["vix_age_hours"]] = (ts - vix.ts[-1]) / 3.6e12
        out[INDEX["vix_implied_move_1d"]] = level / 100.0 / math.sqrt(252.0)
        rv = float(ctx.full[self._i_rv390])
        if rv == rv:
            out[INDEX["vix_rv_spread"]] = level / 100.0 - rv * self._annualise
        vix3m = ctx.shared.vix(p.vix3m_bar_type).latest(max_age, ts)
        if vix3m == vix3m:
            out[INDEX["vix_term_ratio"]] = level / vix3m
            out[INDEX["vix_term_slope"]] = vix3m - level
        vix9d = ctx.shared.vix(p.vix9d_bar_type).latest(max_age, ts)
        if vix9d == vix9d:
            out[INDEX["vix9d_ratio"]] = vix9d / level

    @staticmethod
    def _vix_window_stats(closes: Ring, level: float) -> list[tuple[int, float]]:
        """(position, value) of the features that depend on the VIX closes only."""
        stats: list[tuple[int, float]] = []
        prev = closes.newest(1)
        if prev == prev:
            stats.append((INDEX["vix_change_1d"], math.log(level / prev)))
        back5 = closes.newest(5)
        if back5 == back5:
            stats.append((INDEX["vix_change_5d"], math.log(level / back5)))
        means, stds = window_mean_std(closes.last(60), (10, 20, 60), ddof=0)
        if means[0] == means[0]:
            stats.append((INDEX["vix_sma_ratio_10d"], level / means[0]))
        for j, name in ((1, "vix_zscore_20d"), (2, "vix_zscore_60d")):
            if means[j] == means[j]:
                stats.append((INDEX[name], (level - means[j]) / stds[j] if stds[j] > 0.0 else 0.0))
        if closes.count >= 252:
            stats.append((INDEX["vix_percentile_252d"], percentile_rank(closes.last(252), level)))
        return [(i, float(v)) for i, v in stats]

    def _vix_correlation(
        self, es_returns: dict[dt.date, tuple[dt.date, float]], vix: "DailySeries", out: FloatArray
    ) -> None:
        """Pairs a day's ES return with the VIX change over the same two consecutive trading days.

        The VIX calendar decides what consecutive means: an ES return that spans a gap in the ES data
        (several VIX days) is left out rather than paired with a one-day VIX change. The result only
        changes with a new day's returns (a new dict) or a new VIX close, so it is cached.
        """
        key = (es_returns, id(vix), vix.version)
        cached = self._corr_key
        if cached is None or cached[0] is not es_returns or cached[1:] != key[1:]:
            self._corr_key = key  # holds the dict, so its identity cannot be reused while cached
            self._corr_values = self._vix_correlation_values(es_returns, vix)
        for position, value in self._corr_values:
            out[position] = value

    @staticmethod
    def _vix_correlation_values(
        es_returns: dict[dt.date, tuple[dt.date, float]], vix: "DailySeries"
    ) -> list[tuple[int, float]]:
        if not es_returns or len(vix.dates) < 2:
            return []
        changes: dict[dt.date, tuple[dt.date, float]] = {}
        for prev, cur in itertools.pairwise(vix.dates[-80:]):
            changes[cur] = (prev, math.log(vix.by_date[cur] / vix.by_date[prev]))
        days = sorted(d for d, (prev, _) in es_returns.items() if d in changes and changes[d][0] == prev)
        values: list[tuple[int, float]] = []
        for window, name in ((20, "vix_es_correlation"), (60, "vix_es_correlation_60d")):
            chosen = days[-window:]
            if len(chosen) >= window // 2:
                a = np.array([es_returns[d][1] for d in chosen])
                b = np.array([changes[d][1] for d in chosen])
                values.append((INDEX[name], correlation(a, b)))
        return values

    def _etf(self, ctx: BarContext, etf: EtfSeries, out: FloatArray) -> None:
        bar = ctx.bar
        ts = bar.ts_event
        fresh = ts - etf.ts <= self._etf_max_age
        hist = ctx.hist
        es_r = hist.logret.newest() if hist.count >= 2 else NAN
        consecutive_es = hist.count >= 2 and hist.prev_ts == ts - etf.bar_ns
        if not consecutive_es:
            es_r = NAN
        basis_x = NAN
        current = NAN
        if fresh:
            ratio = bar.close / etf.close
            out[INDEX["es_spy_ratio"]] = ratio
            if etf.ts == ts:
                basis_x = math.log(ratio)
            current = math.log(bar.close / etf.close)
        push_pair = etf.ts == ts and es_r == es_r and etf.ret == etf.ret
        push_lead = push_pair and self._prev_pair_ts == ts - etf.bar_ns
        prev_es_r = self._prev_es_r
        prev_etf_r = self._prev_etf_r
        if push_pair:
            self._prev_pair_ts = ts
            self._prev_es_r = es_r
            self._prev_etf_r = etf.ret
        lnv = etf.lnv.last(60) if fresh and etf.lnv.count >= 60 else _EMPTY
        dynamic_kernel.etf_bar(
            self._rings,
            self._ring_state,
            out,
            self._etf_p,
            basis_x,
            push_pair,
            es_r,
            etf.ret,
            push_lead,
            prev_es_r,
            prev_etf_r,
            current,
            ts - self._prev_pair_ts <= self._pair_max_age_ns,
            lnv,
        )
        if fresh:
            closes = etf.closes
            if etf.ret == etf.ret:
                out[INDEX["spy_ret_1"]] = etf.ret
            for k, name in ((5, "spy_ret_5"), (15, "spy_ret_15")):
                past = closes.newest(k)
                if past == past:
                    out[INDEX[name]] = math.log(etf.close / past)
            es15 = float(ctx.full[self._i_ret15])
            past = closes.newest(15)
            if es15 == es15 and past == past:
                out[INDEX["es_spy_return_spread_15"]] = es15 - math.log(etf.close / past)


_EMPTY: FloatArray = np.empty(0)
