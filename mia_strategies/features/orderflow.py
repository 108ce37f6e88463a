"""Order flow and microstructure from quotes, trades and depth, accumulated per tick and read per bar.

Per tick the state does a few float operations (order-flow imbalance, time-weighted book statistics,
trade classification, the spoofing tracker); at the bar close it turns the bar's accumulators into
features and pushes them into per-bar histories for the rolling windows. Time weights use the
ticks' ``ts_event`` (clamped so out-of-order stamps never give negative weights); an interval that
spans a bar close is split at the close.

Absent inputs give NaN: quote features stay NaN until the instrument's first quote, trade features
until its first trade, depth features until its first depth snapshot. Formulas: ``docs/features.md``.
"""

import math

from mia_strategies.features.core import MAX_INPUT
from mia_strategies.features.core import MIN_INPUT
from mia_strategies.features.core import BarContext
from mia_strategies.features.core import InstrumentInfo
from mia_strategies.features.params import OrderFlowParams
from mia_strategies.features.registry import SpecList
from mia_strategies.features.rolling import NAN
from mia_strategies.features.rolling import FloatArray
from mia_strategies.features.rolling import RollingMoments
from mia_strategies.features.rolling import RollingRank
from mia_strategies.features.rolling import RollingSum


FAMILY = "orderflow"
_Q = ("quotes",)
_T = ("trades",)
_QT = ("quotes", "trades")
_D = ("depth",)

OFI_IMB_K = (1, 5, 15, 30)
OFI_K = (1, 5, 15, 30, 60)
BAI_K = (5, 15, 30)
AGGR_K = (1, 5, 15, 30, 60)
SIGNED_K = (1, 5, 15)
DEPTH_LEVELS = (1, 3, 5, 10)
_CAP = 256
_BUYER = 1
_SELLER = 2

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


class _Pending:
    """A large size added at the touch, waiting to be traded (genuine) or pulled (spoof)."""

    __slots__ = ("added", "base", "price", "traded", "ts")

    def __init__(self, price: float, base: float, added: float, ts: int) -> None:
        self.price = price
        self.base = base
        self.added = added
        self.traded = 0.0
        self.ts = ts


class OrderFlowState:
    """Per-instrument tick accumulators and per-bar rolling sums of the order-flow family."""

    def __init__(self, info: InstrumentInfo, params: OrderFlowParams) -> None:
        self._tick = info.tick_size
        self._instrument_id = info.instrument_id
        #: Where skipped ticks are reported (the hub replaces it with its shared list).
        self.warnings: list[str] = []
        self.rejected = 0
        self._fast_ns = int(params.fast_quote_ms * 1_000_000)
        self._spoof_life_ns = int(params.spoof_max_life_ms * 1_000_000)
        self._large_add_multiple = params.large_add_multiple
        self._pull_fraction = params.spoof_pull_fraction
        self._large_trade_multiple = params.large_trade_multiple
        self.quotes = 0
        self.trades = 0
        self.seen_quotes = False
        self.seen_trades = False
        self.seen_depth = False
        self._bid = self._ask = self._bsz = self._asz = NAN
        self._q_ts = 0
        self._t_last = 0  # start of the current time-weighting interval
        self._last_trade_px = NAN
        self._last_sign = 0
        self._mid_at_bar_start = NAN
        self._dmid = NAN
        # thresholds from closed bars
        self._large_add = math.inf
        self._large_trade = math.inf
        self._ref_depth = NAN
        self._bid_pending: _Pending | None = None
        self._ask_pending: _Pending | None = None
        self._depth_bids: list[tuple[float, float]] = []
        self._depth_asks: list[tuple[float, float]] = []
        self._reset_bar()
        # per-bar rolling sums
        self._ofi = RollingSum(OFI_K)
        self._ofi_abs = RollingSum(OFI_IMB_K)
        self._depth = RollingSum(OFI_K)
        self._ofi_norm = RollingMoments((60, 240))
        self._tw_time_sum = RollingSum(BAI_K)
        self._tw_imb_sum = RollingSum(BAI_K)
        self._tw_spread_sum = RollingSum((15,))
        self._tw_time15 = RollingSum((15,))
        self._spread_m = RollingMoments((60,))
        self._depth_m = RollingMoments((60,))
        self._nq_sum = RollingSum((5, 15, 60))
        self._fast_sum = RollingSum((15,))
        self._micro = RollingSum((5,))
        self._ntr_sum = RollingSum((5, 15, 60))
        self._ntr_m = RollingMoments((60,))
        self._vol_sum = RollingSum((5, 15, 50, 60))
        self._buy_sum = RollingSum(AGGR_K)
        self._sell_sum = RollingSum(AGGR_K)
        self._imb_abs = RollingSum((15, 50))
        self._large_sum = RollingSum((15,))
        self._spoof_add_sum = RollingSum((15,))
        self._spoof_pull_sum = RollingSum((15,))
        self._mixed_nq = RollingSum((15,))
        self._mixed_ntr = RollingSum((15,))
        self._mixed_fast = RollingSum((15,))
        self._kx = RollingSum((30, 120))
        self._ky = RollingSum((30, 120))
        self._kxy = RollingSum((30, 120))
        self._kxx = RollingSum((30, 120))
        self._depth10 = RollingMoments((60,))
        self._lnv60 = RollingRank(60)
        self._lnv390 = RollingRank(390)
        self._large_bars = 0

    def _reset_bar(self) -> None:
        self._nq = 0
        self._fast = 0
        self._ofi_bar = 0.0
        self._ofi_abs_bar = 0.0
        self._tw_time = 0.0
        self._tw_imb = 0.0
        self._tw_spread = 0.0
        self._tw_depth = 0.0
        self._tw_bsz = 0.0
        self._tw_asz = 0.0
        self._tw_min = 0.0
        self._spread_max = NAN
        self._ntr = 0
        self._vol = 0.0
        self._buy = 0.0
        self._sell = 0.0
        self._n_buy = 0
        self._n_sell = 0
        self._large = 0.0
        self._spoof_add = 0.0
        self._spoof_pull = 0.0
        self._spoof_events = 0

    # -- ticks ----------------------------------------------------------------------------------

    def _weigh(self, ts: int) -> None:
        """Add the standing quote's contribution from the interval start to ``ts``."""
        dt = ts - self._t_last
        if dt <= 0:
            return
        w = float(dt)
        bsz = self._bsz
        asz = self._asz
        total = bsz + asz
        spread = (self._ask - self._bid) / self._tick
        self._tw_time += w
        if total > 0.0:
            self._tw_imb += w * (bsz - asz) / total
        self._tw_spread += w * spread
        self._tw_depth += w * 0.5 * total
        self._tw_bsz += w * bsz
        self._tw_asz += w * asz
        if spread <= 1.000000001:
            self._tw_min += w
        self._t_last = ts

    def on_quote(self, ts: int, bid: float, ask: float, bid_size: float, ask_size: float) -> None:
        """Order-flow imbalance, time weights, spread, speed and the spoofing tracker for one quote.

        A crossed, non-positive, non-finite or out-of-range quote (``core.MIN_INPUT``/``MAX_INPUT``) is
        skipped and reported (NaN fails every test).
        """
        if not (
            MIN_INPUT <= bid <= ask <= MAX_INPUT
            and (bid_size == 0.0 or MIN_INPUT <= bid_size <= MAX_INPUT)
            and (ask_size == 0.0 or MIN_INPUT <= ask_size <= MAX_INPUT)
        ):
            self.rejected += 1
            self.warnings.append(f"{self._instrument_id}: invalid quote at {ts} ignored")
            return
        self.quotes += 1
        if self.seen_quotes:
            if ts > self._t_last:
                self._weigh(ts)
            pb = self._bid
            pa = self._ask
            pbs = self._bsz
            pas = self._asz
            e = 0.0
            if bid >= pb:
                e += bid_size
            if bid <= pb:
                e -= pbs
            if ask <= pa:
                e -= ask_size
            if ask >= pa:
                e += pas
            self._ofi_bar += e
            self._ofi_abs_bar += e if e >= 0.0 else -e
            if ts - self._q_ts < self._fast_ns:
                self._fast += 1
            if (
                self._bid_pending is not None
                or self._ask_pending is not None
                or bid_size - pbs >= self._large_add
                or ask_size - pas >= self._large_add
            ):
                self._track_spoofs(ts, bid, ask, bid_size, ask_size, pb, pa, pbs, pas)
        else:
            self.seen_quotes = True
            self._mid_at_bar_start = 0.5 * (bid + ask)
            if ts > self._t_last:
                self._t_last = ts
        self._bid = bid
        self._ask = ask
        self._bsz = bid_size
        self._asz = ask_size
        self._q_ts = ts
        self._nq += 1
        spread = (ask - bid) / self._tick
        if not spread <= self._spread_max:
            self._spread_max = spread

    def _track_spoofs(
        self,
        ts: int,
        bid: float,
        ask: float,
        bsz: float,
        asz: float,
        pb: float,
        pa: float,
        pbs: float,
        pas: float,
    ) -> None:
        """Resolve pending large adds (pulled untraded = spoof) and register new ones."""
        pending = self._bid_pending
        if pending is not None:
            self._bid_pending = self._resolve(pending, ts, bid, bsz, withdrawn=bid < pending.price)
        pending = self._ask_pending
        if pending is not None:
            self._ask_pending = self._resolve(pending, ts, ask, asz, withdrawn=ask > pending.price)
        threshold = self._large_add
        if bid == pb and bsz - pbs >= threshold:
            self._bid_pending = self._add_large(self._bid_pending, bid, pbs, bsz - pbs, ts)
        if ask == pa and asz - pas >= threshold:
            self._ask_pending = self._add_large(self._ask_pending, ask, pas, asz - pas, ts)

    def _add_large(self, pending: _Pending | None, price: float, base: float, added: float, ts: int) -> _Pending:
        self._spoof_add += added
        if pending is not None and pending.price == price:
            pending.added += added
            pending.ts = ts
            return pending
        return _Pending(price, base, added, ts)

    def _resolve(self, pending: _Pending, ts: int, price: float, size: float, withdrawn: bool) -> _Pending | None:
        if ts - pending.ts > self._spoof_life_ns:
            return None  # it rested: genuine liquidity
        untraded = pending.traded < 0.5 * pending.added
        if withdrawn:
            if untraded:
                self._record_spoof(pending)
            return None
        if price != pending.price:
            return None  # the touch improved past it: no verdict
        if size <= pending.base + (1.0 - self._pull_fraction) * pending.added:
            if untraded:
                self._record_spoof(pending)
            return None
        return pending

    def _record_spoof(self, pending: _Pending) -> None:
        self._spoof_pull += pending.added
        self._spoof_events += 1

    def on_trade(self, ts: int, price: float, size: float, aggressor: int) -> None:
        """Classify the trade (aggressor side, else quote rule, else tick rule) and accumulate it."""
        if not (MIN_INPUT <= price <= MAX_INPUT and MIN_INPUT <= size <= MAX_INPUT):
            self.rejected += 1
            self.warnings.append(f"{self._instrument_id}: invalid trade at {ts} ignored")
            return
        self.trades += 1
        self.seen_trades = True
        if aggressor == _BUYER:
            sign = 1
        elif aggressor == _SELLER:
            sign = -1
        else:
            sign = 0
            if self.seen_quotes:
                mid = 0.5 * (self._bid + self._ask)
                sign = 1 if price > mid else -1 if price < mid else 0
            if sign == 0:
                last = self._last_trade_px
                sign = 1 if price > last else -1 if price < last else self._last_sign
        self._last_trade_px = price
        self._last_sign = sign
        self._ntr += 1
        self._vol += size
        if sign > 0:
            self._buy += size
            self._n_buy += 1
        elif sign < 0:
            self._sell += size
            self._n_sell += 1
        if size >= self._large_trade:
            self._large += size
        pending = self._bid_pending
        if pending is not None and price == pending.price:
            pending.traded += size
        pending = self._ask_pending
        if pending is not None and price == pending.price:
            pending.traded += size

    def on_depth(self, ts: int, bids: list[tuple[float, float]], asks: list[tuple[float, float]]) -> None:
        """Keep the latest book levels (best first) for the bar-close depth features."""
        self.seen_depth = True
        self._depth_bids = bids
        self._depth_asks = asks

    # -- bar close ------------------------------------------------------------------------------

    def on_bar(self, ctx: BarContext, out: FloatArray) -> None:
        """Close the bar's accumulators, push them into the rolling sums and write the features."""
        ts = ctx.bar.ts_event
        if self.seen_quotes:
            if ts > self._t_last:
                self._weigh(ts)
            self._close_quotes(out)
        if self.seen_trades:
            self._close_trades(out)
        if self.seen_quotes and self.seen_trades:
            self._close_mixed(out)
        if self.seen_depth:
            self._close_depth(out)
        self._volume_anomaly(ctx.bar.volume, out)
        if self.seen_trades and self._ntr_sum.count >= 60:
            trades = self._ntr_sum.sums[2]
            if trades > 0:
                self._large_trade = self._large_trade_multiple * self._vol_sum.sums[3] / trades
        self._reset_bar()
        if self._t_last < ts:
            self._t_last = ts
        if self.seen_quotes:  # the next bar starts with the spread standing now
            self._spread_max = (self._ask - self._bid) / self._tick

    def _close_quotes(self, out: FloatArray) -> None:
        tw = self._tw_time
        bsz = self._bsz
        asz = self._asz
        total = bsz + asz
        tick = self._tick
        if tw > 0.0:
            depth = self._tw_depth / tw
            imb = self._tw_imb / tw
            spread = self._tw_spread / tw
            min_share = self._tw_min / tw
            ratio = math.log(self._tw_bsz / self._tw_asz) if self._tw_bsz > 0.0 and self._tw_asz > 0.0 else 0.0
        else:
            depth = 0.5 * total
            imb = (bsz - asz) / total if total > 0.0 else 0.0
            spread = (self._ask - self._bid) / tick
            min_share = 1.0 if spread <= 1.000000001 else 0.0
            ratio = math.log(bsz / asz) if bsz > 0.0 and asz > 0.0 else 0.0
        mid = 0.5 * (self._bid + self._ask)
        micro = (self._bid * asz + self._ask * bsz) / total if total > 0.0 else mid
        ofi_norm = self._ofi_bar / depth if depth > 0.0 else 0.0
        self._ofi.push(self._ofi_bar)
        self._ofi_abs.push(self._ofi_abs_bar)
        self._depth.push(depth)
        self._ofi_norm.push(ofi_norm)
        self._tw_time_sum.push(tw)
        self._tw_imb_sum.push(self._tw_imb)
        self._tw_spread_sum.push(self._tw_spread)
        self._tw_time15.push(tw)
        self._spread_m.push(spread)
        self._depth_m.push(depth)
        self._nq_sum.push(float(self._nq))
        self._micro.push((micro - mid) / tick)
        self._dmid = (mid - self._mid_at_bar_start) / tick
        self._mid_at_bar_start = mid
        if depth > 0.0:
            ref = self._ref_depth
            self._ref_depth = depth if ref != ref else ref + (2.0 / 21.0) * (depth - ref)
            self._large_add = self._large_add_multiple * self._ref_depth
        n = self._ofi.count
        ofi_sums = self._ofi.sums
        abs_sums = self._ofi_abs.sums
        depth_sums = self._depth.sums
        for j, k in enumerate(OFI_IMB_K):
            if n >= k:
                den = abs_sums[j]
                out[_I_OFI_IMB[j]] = ofi_sums[OFI_K.index(k)] / den if den > 0.0 else 0.0
        for j, k in enumerate(OFI_K):
            if n >= k:
                mean_depth = depth_sums[j] / k
                out[_I_OFI[j]] = ofi_sums[j] / mean_depth if mean_depth > 0.0 else 0.0
        norms = self._ofi_norm
        for j, position in enumerate((INDEX["ofi_score"], INDEX["ofi_score_240"])):
            m = norms.mean(j)
            if m == m:
                sd = norms.std(j)
                out[position] = (ofi_norm - m) / sd if sd > 0.0 else 0.0
        out[INDEX["bid_ask_imbalance"]] = imb
        out[INDEX["bid_ask_imbalance_last"]] = (bsz - asz) / total if total > 0.0 else 0.0
        for j, k in enumerate(BAI_K):
            if n >= k:
                den = self._tw_time_sum.sums[j]
                out[_I_BAI[j]] = self._tw_imb_sum.sums[j] / den if den > 0.0 else imb
        out[INDEX["microprice_dev"]] = (micro - mid) / tick
        if n >= 5:
            out[INDEX["microprice_dev_5"]] = self._micro.sums[0] / 5.0
        nq = self._nq_sum.sums
        out[INDEX["quote_velocity"]] = float(self._nq)
        if n >= 60:
            long = nq[2] / 60.0
            out[INDEX["quote_velocity_ratio_5_60"]] = (nq[0] / 5.0) / long if long > 0.0 else 1.0
        out[INDEX["spread_mean"]] = spread
        out[INDEX["spread_max"]] = self._spread_max if self._spread_max == self._spread_max else spread
        out[INDEX["spread_min_share"]] = min_share
        if n >= 15:
            den = self._tw_time15.sums[0]
            out[INDEX["spread_mean_15"]] = self._tw_spread_sum.sums[0] / den if den > 0.0 else spread
        _zscore(self._spread_m, spread, INDEX["spread_zscore_60"], out)
        out[INDEX["l1_depth_mean"]] = depth
        out[INDEX["l1_depth_ratio"]] = ratio
        _zscore(self._depth_m, depth, INDEX["l1_depth_zscore_60"], out)
        out[INDEX["fast_quote_share"]] = self._fast / self._nq if self._nq > 0 else 0.0

    def _close_trades(self, out: FloatArray) -> None:
        self._ntr_sum.push(float(self._ntr))
        self._ntr_m.push(float(self._ntr))
        self._vol_sum.push(self._vol)
        self._buy_sum.push(self._buy)
        self._sell_sum.push(self._sell)
        self._imb_abs.push(abs(self._buy - self._sell))
        n = self._ntr_sum.count
        buy = self._buy_sum.sums
        sell = self._sell_sum.sums
        vol = self._vol_sum.sums
        ntr = self._ntr_sum.sums
        for j, k in enumerate(AGGR_K):
            if n >= k:
                total = buy[j] + sell[j]
                out[_I_AGGR[j]] = (buy[j] - sell[j]) / total if total > 0.0 else 0.0
        if n >= 60:
            mean_vol = vol[3] / 60.0
            for j, k in enumerate(SIGNED_K):
                signed = buy[AGGR_K.index(k)] - sell[AGGR_K.index(k)]
                out[_I_SIGNED[j]] = signed / mean_vol if mean_vol > 0.0 else 0.0
        classified = self._n_buy + self._n_sell
        out[INDEX["tick_rule_imbalance"]] = (self._n_buy - self._n_sell) / classified if classified else 0.0
        out[INDEX["trade_velocity"]] = float(self._ntr)
        if n >= 5:
            out[INDEX["trade_velocity_5"]] = ntr[0] / 5.0
        if n >= 15:
            out[INDEX["trade_velocity_15"]] = ntr[1] / 15.0
        out[INDEX["avg_trade_size"]] = self._vol / self._ntr if self._ntr else 0.0
        if n >= 60:
            long = ntr[2] / 60.0
            out[INDEX["trade_velocity_ratio_5_60"]] = (ntr[0] / 5.0) / long if long > 0.0 else 1.0
            _zscore(self._ntr_m, float(self._ntr), INDEX["trade_count_zscore_60"], out)
            short = vol[0] / ntr[0] if ntr[0] > 0 else 0.0
            long_size = vol[3] / ntr[2] if ntr[2] > 0 else 0.0
            out[INDEX["avg_trade_size_ratio_5_60"]] = short / long_size if long_size > 0.0 else 1.0
        if self._large_trade < math.inf:
            self._large_sum.push(self._large)
            self._large_bars += 1
            out[INDEX["large_trade_share"]] = self._large / self._vol if self._vol > 0.0 else 0.0
            if self._large_bars >= 15:
                total = vol[1]
                out[INDEX["large_trade_share_15"]] = self._large_sum.sums[0] / total if total > 0.0 else 0.0
        for j, (k, position) in enumerate(((15, INDEX["vpin_15"]), (50, INDEX["vpin_50"]))):
            if n >= k:
                total = vol[1] if k == 15 else vol[2]
                out[position] = self._imb_abs.sums[j] / total if total > 0.0 else 0.0

    def _close_mixed(self, out: FloatArray) -> None:
        ntr = max(self._ntr, 1)
        qtr = self._nq / ntr
        out[INDEX["quote_trade_ratio"]] = qtr
        self._mixed_nq.push(float(self._nq))
        self._mixed_ntr.push(float(self._ntr))
        self._mixed_fast.push(float(self._fast))
        if self._mixed_nq.count >= 15:
            q15 = self._mixed_nq.sums[0]
            t15 = max(self._mixed_ntr.sums[0], 1.0)
            out[INDEX["quote_trade_ratio_15"]] = q15 / t15
            share15 = self._mixed_fast.sums[0] / q15 if q15 > 0 else 0.0
            out[INDEX["hft_activity_score_15"]] = 0.5 * share15 + 0.5 * (1.0 - math.exp(-(q15 / t15) / 20.0))
        fast_share = self._fast / self._nq if self._nq > 0 else 0.0
        out[INDEX["hft_activity_score"]] = 0.5 * fast_share + 0.5 * (1.0 - math.exp(-qtr / 20.0))
        self._spoof_add_sum.push(self._spoof_add)
        self._spoof_pull_sum.push(self._spoof_pull)
        out[INDEX["spoofing_score"]] = self._spoof_pull / self._spoof_add if self._spoof_add > 0.0 else 0.0
        out[INDEX["spoof_events"]] = float(self._spoof_events)
        if self._spoof_add_sum.count >= 15:
            added = self._spoof_add_sum.sums[0]
            out[INDEX["spoofing_score_15"]] = self._spoof_pull_sum.sums[0] / added if added > 0.0 else 0.0
        x = self._buy - self._sell
        y = self._dmid
        self._kx.push(x)
        self._ky.push(y)
        self._kxy.push(x * y)
        self._kxx.push(x * x)
        for j, (k, position) in enumerate(((30, INDEX["kyle_lambda_30"]), (120, INDEX["kyle_lambda_120"]))):
            if self._kx.count >= k:
                sx = self._kx.sums[j]
                sxx = self._kxx.sums[j] - sx * sx / k
                out[position] = (self._kxy.sums[j] - sx * self._ky.sums[j] / k) / sxx if sxx > 0.0 else 0.0

    def _close_depth(self, out: FloatArray) -> None:
        bids = self._depth_bids
        asks = self._depth_asks
        for j, k in enumerate(DEPTH_LEVELS):
            b = sum(s for _, s in bids[:k])
            a = sum(s for _, s in asks[:k])
            out[_I_DEPTH_IMB[j]] = (b - a) / (b + a) if b + a > 0.0 else 0.0
        total5 = sum(s for _, s in bids[:5]) + sum(s for _, s in asks[:5])
        total10 = sum(s for _, s in bids[:10]) + sum(s for _, s in asks[:10])
        ref = self._ref_depth
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

    def _volume_anomaly(self, volume: float, out: FloatArray) -> None:
        x = math.log1p(volume)
        for rank, position in ((self._lnv60, INDEX["volume_anomaly"]), (self._lnv390, INDEX["volume_anomaly_390"])):
            if rank.full:
                med = rank.quantile(0.5)
                iqr = rank.quantile(0.75) - rank.quantile(0.25)
                out[position] = (x - med) / (iqr / 1.349) if iqr > 0.0 else 0.0
            rank.push(x)


_I_OFI_IMB = [INDEX["orderflow_imbalance" if k == 1 else f"orderflow_imbalance_{k}"] for k in OFI_IMB_K]
_I_OFI = [INDEX[f"ofi_{k}"] for k in OFI_K]
_I_BAI = [INDEX[f"bid_ask_imbalance_{k}"] for k in BAI_K]
_I_AGGR = [INDEX["trade_aggressiveness" if k == 1 else f"trade_aggressiveness_{k}"] for k in AGGR_K]
_I_SIGNED = [INDEX[f"signed_volume_{k}"] for k in SIGNED_K]
_I_DEPTH_IMB = [INDEX[f"depth_imbalance_{k}"] for k in DEPTH_LEVELS]


def _zscore(moments: RollingMoments, value: float, position: int, out: FloatArray) -> None:
    """z-score of ``value`` (the newest pushed) within the moments' 60-value window."""
    m = moments.mean(0)
    if m == m:
        sd = moments.std(0)
        out[position] = (value - m) / sd if sd > 0.0 else 0.0
