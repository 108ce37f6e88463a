"""Order flow and microstructure from quotes, trades and depth, accumulated per tick and read per bar.

Ticks are queued as they arrive and applied in order by one compiled call per batch
(``orderflow_kernel``: order-flow imbalance, time-weighted book statistics, trade classification, the
spoofing tracker); at the bar close one compiled call (``orderflow_kernel.bar_close``) turns the
bar's accumulators into features and pushes them into per-bar histories for the rolling windows.
Time weights use the ticks' ``ts_event`` (clamped so out-of-order stamps never give negative
weights); an interval that spans a bar close is split at the close.

Absent inputs give NaN: quote features stay NaN until the instrument's first quote, trade features
until its first trade, depth features until its first depth snapshot. Formulas: ``docs/features.md``.
"""

from typing import Any

import numpy as np

from mia_strategies.features import orderflow_kernel as kernel
from mia_strategies.features.core import BarContext
from mia_strategies.features.core import InstrumentInfo
from mia_strategies.features.params import OrderFlowParams
from mia_strategies.features.registry import SpecList
from mia_strategies.features.rolling import NAN
from mia_strategies.features.rolling import FloatArray
from mia_strategies.features.rolling import RollingMoments
from mia_strategies.features.ticks import tick_rows


FAMILY = "orderflow"
_Q = ("quotes",)
_T = ("trades",)
_QT = ("quotes", "trades")
_D = ("depth",)

OFI_IMB_K = kernel.OFI_IMB_K
OFI_K = kernel.OFI_K
BAI_K = kernel.BAI_K
AGGR_K = kernel.AGGR_K
SIGNED_K = kernel.SIGNED_K
DEPTH_LEVELS = (1, 3, 5, 10)

SPECS = SpecList(FAMILY)
for _k in OFI_IMB_K:
    _name = "orderflow_imbalance" if _k == 1 else f"orderflow_imbalance_{_k}"
    SPECS.add(_name, _Q, _k, f"sum of OFI events / sum of their absolute values over {_k} bar(s), -1..1")
for _k in OFI_K:
    SPECS.add(f"ofi_{_k}", _Q, _k, f"sum of OFI over {_k} bar(s) / mean time-weighted L1 depth over them")
SPECS.add("ofi_score", _Q, 60, "z-score of the bar's depth-normalized OFI within the last 60 bars")
SPECS.add("ofi_score_240", _Q, 240, "z-score of the bar's depth-normalized OFI within the last 240 bars")
SPECS.add("bid_ask_imbalance", _Q, 1, "time-weighted (bid size - ask size) / (bid size + ask size) over the bar")
SPECS.add("bid_ask_imbalance_last", _Q, 1, "L1 size imbalance of the quote standing at the bar close")
for _k in BAI_K:
    SPECS.add(f"bid_ask_imbalance_{_k}", _Q, _k, f"time-weighted L1 size imbalance over {_k} bars")
SPECS.add("microprice_dev", _Q, 1, "(microprice - mid) / tick at the bar close")
SPECS.add("microprice_dev_5", _Q, 5, "mean of microprice_dev over 5 bars")
for _k in AGGR_K:
    _name = "trade_aggressiveness" if _k == 1 else f"trade_aggressiveness_{_k}"
    SPECS.add(_name, _T, _k, f"(buyer - seller initiated volume) / volume over {_k} bar(s), -1..1")
for _k in SIGNED_K:
    SPECS.add(f"signed_volume_{_k}", _T, max(_k, 60), f"buyer - seller volume over {_k} bar(s) / mean bar volume (60)")
SPECS.add("tick_rule_imbalance", _T, 1, "(buyer - seller initiated trade count) / trade count over the bar")
SPECS.add("trade_velocity", _T, 1, "trades in the bar")
SPECS.add("trade_velocity_5", _T, 5, "mean trades per bar over 5 bars")
SPECS.add("trade_velocity_15", _T, 15, "mean trades per bar over 15 bars")
SPECS.add("trade_velocity_ratio_5_60", _T, 60, "mean trades per bar over 5 bars / over 60 bars")
SPECS.add("trade_count_zscore_60", _T, 60, "z-score of the bar's trade count within the last 60 bars")
SPECS.add("quote_velocity", _Q, 1, "quote updates in the bar")
SPECS.add("quote_velocity_ratio_5_60", _Q, 60, "mean quote updates per bar over 5 bars / over 60 bars")
SPECS.add("quote_trade_ratio", _QT, 1, "quote updates / max(trades, 1) in the bar")
SPECS.add("quote_trade_ratio_15", _QT, 15, "quote updates / max(trades, 1) over 15 bars")
SPECS.add(
    "volume_anomaly",
    ("bars",),
    61,
    "robust z of ln(1 + volume) against the previous 60 bars: (x - median) / (IQR / 1.349)",
)
SPECS.add("volume_anomaly_390", ("bars",), 391, "the same against the previous 390 bars")
SPECS.add("avg_trade_size", _T, 1, "volume / trades in the bar (0 without trades)")
SPECS.add("avg_trade_size_ratio_5_60", _T, 60, "mean trade size over 5 bars / over 60 bars")
SPECS.add(
    "large_trade_share", _T, 60, "share of the bar's volume in trades of at least 5x the mean trade size (60 bars)"
)
SPECS.add("large_trade_share_15", _T, 75, "share of volume in large trades over 15 bars")
SPECS.add("kyle_lambda_30", _QT, 30, "OLS slope of the bar's mid change (ticks) on its signed volume, 30 bars")
SPECS.add("kyle_lambda_120", _QT, 120, "OLS slope of the bar's mid change (ticks) on its signed volume, 120 bars")
SPECS.add("vpin_15", _T, 15, "sum |buy - sell volume| / sum volume over 15 bars")
SPECS.add("vpin_50", _T, 50, "sum |buy - sell volume| / sum volume over 50 bars")
SPECS.add("spread_mean", _Q, 1, "time-weighted bid-ask spread over the bar, ticks")
SPECS.add("spread_max", _Q, 1, "widest spread quoted in the bar (or standing at its start), ticks")
SPECS.add("spread_min_share", _Q, 1, "share of the bar's time the spread was one tick")
SPECS.add("spread_mean_15", _Q, 15, "time-weighted spread over 15 bars, ticks")
SPECS.add("spread_zscore_60", _Q, 60, "z-score of the bar's spread_mean within the last 60 bars")
SPECS.add("l1_depth_mean", _Q, 1, "time-weighted mean of (bid size + ask size) / 2 over the bar, contracts")
SPECS.add("l1_depth_zscore_60", _Q, 60, "z-score of l1_depth_mean within the last 60 bars")
SPECS.add("l1_depth_ratio", _Q, 1, "ln(time-weighted bid size / time-weighted ask size) over the bar")
SPECS.add("spoofing_score", _QT, 1, "large L1 size added then pulled untraded / large size added, over the bar")
SPECS.add("spoofing_score_15", _QT, 15, "the same over 15 bars")
SPECS.add("spoof_events", _QT, 1, "large resting orders added and pulled untraded in the bar")
SPECS.add("fast_quote_share", _Q, 1, "share of the bar's quote updates within 100 ms of the previous one")
SPECS.add("hft_activity_score", _QT, 1, "0.5 fast_quote_share + 0.5 (1 - exp(-quote_trade_ratio / 20)), 0..1")
SPECS.add("hft_activity_score_15", _QT, 15, "hft_activity_score over 15 bars")
for _k in DEPTH_LEVELS:
    SPECS.add(
        f"depth_imbalance_{_k}", _D, 1, f"(bid - ask size) / total size over the best {_k} levels at the bar close"
    )
SPECS.add("depth_total_5", _D, 1, "size on the best 5 levels of both sides at the bar close / mean L1 depth")
SPECS.add("depth_total_10", _D, 1, "size on the best 10 levels of both sides at the bar close / mean L1 depth")
SPECS.add("depth_slope_bid", _D, 1, "size-weighted mean distance of bid levels from the best bid, ticks")
SPECS.add("depth_slope_ask", _D, 1, "size-weighted mean distance of ask levels from the best ask, ticks")
SPECS.add("depth_zscore_60", _D, 60, "z-score of the 10-level total size within the last 60 bars")
INDEX = SPECS.index()


class OrderFlowState:
    """Per-instrument order-flow state: ticks batched for the compiled update, rolling windows per bar.

    Both the tick state (``_s``/``_si``) and the bar state (``_f``/``_fs``/``_p``: rolling windows,
    the L1 depth EMA, output positions) are flat arrays laid out by ``orderflow_kernel``; only the
    optional 10-level depth features stay interpreted.

    Ticks are appended to ``pending`` as they arrive (nautilus ``QuoteTick``/``TradeTick`` objects,
    or ``(ts, kind, a, b, c, d)`` rows from ``on_quote``/``on_trade``) and applied in arrival order by
    ``flush``, which the hub calls before a bar closes (and whenever it likes: applying a batch
    earlier or later gives the same state, only the order of ticks matters).
    """

    def __init__(self, info: InstrumentInfo, params: OrderFlowParams) -> None:
        self._tick = info.tick_size
        self._instrument_id = info.instrument_id
        #: Where skipped ticks are reported (the hub replaces it with its shared list).
        self.warnings: list[str] = []
        #: Ticks not yet applied, in arrival order (the actor appends nautilus ticks here directly).
        self.pending: list[Any] = []
        self._s, self._si = kernel.new_state(
            info.tick_size,
            int(params.fast_quote_ms * 1_000_000),
            int(params.spoof_max_life_ms * 1_000_000),
            params.spoof_pull_fraction,
        )
        self._summary: FloatArray = np.zeros(kernel.N_SUMMARY)
        self._f, self._fs, self._p = kernel.new_bar_state(
            [INDEX[name] for name in kernel.OUT_NAMES], params.large_add_multiple, params.large_trade_multiple
        )
        self.seen_depth = False
        self._depth_bids: list[tuple[float, float]] = []
        self._depth_asks: list[tuple[float, float]] = []
        self._depth10 = RollingMoments((60,))

    # -- counters -------------------------------------------------------------------------------

    @property
    def quotes(self) -> int:
        """Valid quotes applied so far."""
        return int(self._si[kernel.QUOTES])

    @property
    def trades(self) -> int:
        """Valid trades applied so far."""
        return int(self._si[kernel.TRADES])

    @property
    def rejected(self) -> int:
        """Invalid ticks skipped so far."""
        return int(self._si[kernel.REJECTED])

    @property
    def seen_quotes(self) -> bool:
        """Whether a valid quote was applied."""
        return bool(self._si[kernel.SEEN_QUOTES])

    @property
    def seen_trades(self) -> bool:
        """Whether a valid trade was applied."""
        return bool(self._si[kernel.SEEN_TRADES])

    # -- ticks ----------------------------------------------------------------------------------

    def on_quote(self, ts: int, bid: float, ask: float, bid_size: float, ask_size: float) -> None:
        """Queue a top-of-book quote (applied at the next ``flush``)."""
        self.pending.append((ts, kernel.QUOTE, bid, ask, bid_size, ask_size))

    def on_trade(self, ts: int, price: float, size: float, aggressor: int) -> None:
        """Queue a trade; ``aggressor`` 1 buyer, 2 seller, 0 unknown (then quote rule, else tick rule)."""
        self.pending.append((ts, kernel.TRADE, price, size, float(aggressor), 0.0))

    def flush(self) -> None:
        """Apply the queued ticks in order.

        A crossed, non-positive, non-finite or out-of-range quote or trade (``core.MIN_INPUT`` /
        ``MAX_INPUT``) is skipped and reported (NaN fails every test).
        """
        items = self.pending
        if not items:
            return
        stamps, rows = tick_rows(items)
        items.clear()
        accepted = np.ones(len(stamps), dtype=np.bool_)
        kernel.process_ticks(self._s, self._si, stamps, rows, accepted)
        if not accepted.all():
            for i in np.flatnonzero(~accepted).tolist():
                what = "quote" if rows[i, 0] == kernel.QUOTE else "trade"
                self.warnings.append(f"{self._instrument_id}: invalid {what} at {int(stamps[i])} ignored")

    def on_depth(self, ts: int, bids: list[tuple[float, float]], asks: list[tuple[float, float]]) -> None:
        """Keep the latest book levels (best first) for the bar-close depth features."""
        self.seen_depth = True
        self._depth_bids = bids
        self._depth_asks = asks

    # -- bar close ------------------------------------------------------------------------------

    def on_bar(self, ctx: BarContext, out: FloatArray) -> None:
        """Close the bar's accumulators, push them into the rolling windows and write the features.

        Everything but the depth features is one compiled call (``orderflow_kernel.bar_close``).
        """
        self.flush()
        bar = ctx.bar
        kernel.bar_close(
            self._s, self._si, bar.ts_event, float(bar.volume), self._summary, self._f, self._fs, self._p, out
        )
        if self.seen_depth:
            self._close_depth(out)

    def _close_depth(self, out: FloatArray) -> None:
        bids = self._depth_bids
        asks = self._depth_asks
        for j, k in enumerate(DEPTH_LEVELS):
            b = sum(s for _, s in bids[:k])
            a = sum(s for _, s in asks[:k])
            out[_I_DEPTH_IMB[j]] = (b - a) / (b + a) if b + a > 0.0 else 0.0
        total5 = sum(s for _, s in bids[:5]) + sum(s for _, s in asks[:5])
        total10 = sum(s for _, s in bids[:10]) + sum(s for _, s in asks[:10])
        ref = float(self._f[kernel.REF_DEPTH])  # the L1 depth EMA, kept by the kernel
        out[INDEX["depth_total_5"]] = total5 / ref if ref == ref and ref > 0.0 else NAN
        out[INDEX["depth_total_10"]] = total10 / ref if ref == ref and ref > 0.0 else NAN
        out[INDEX["depth_slope_bid"]] = self._slope(bids, sign=1.0)
        out[INDEX["depth_slope_ask"]] = self._slope(asks, sign=-1.0)
        self._depth10.push(total10)
        _zscore(self._depth10, total10, INDEX["depth_zscore_60"], out)

    def _slope(self, levels: list[tuple[float, float]], sign: float) -> float:
        if not levels:
            return NAN
        best = levels[0][0]
        size = sum(s for _, s in levels)
        if size <= 0.0:
            return 0.0
        return sum(sign * (best - p) / self._tick * s for p, s in levels) / size


_I_DEPTH_IMB = [INDEX[f"depth_imbalance_{k}"] for k in DEPTH_LEVELS]


def _zscore(moments: RollingMoments, value: float, position: int, out: FloatArray) -> None:
    """z-score of ``value`` (the newest pushed) within the moments' 60-value window."""
    m = moments.mean(0)
    if m == m:
        sd = moments.std(0)
        out[position] = (value - m) / sd if sd > 0.0 else 0.0
