"""Compiled order-flow updates: a bar's quotes and trades in one call, and the whole bar close in another.

The order-flow family's tick work (order-flow imbalance, time-weighted book statistics, trade
classification, the spoofing tracker) runs here over a whole batch of ticks, so Python pays one call
per bar instead of one per tick; ``bar_close`` then turns the bar's accumulators into features and
pushes them into the per-bar rolling windows (again one call: interpreted, this cost ~80 us a bar).
The tick state is two arrays owned by ``OrderFlowState``: ``S`` (floats) and ``SI`` (integers,
nanosecond stamps and counters), indexed by the constants below; the bar state is laid out further
down. The arithmetic is the interpreted version's, operation for operation (no fast-math), so results are
IEEE-deterministic. Formulas: ``docs/features.md``.
"""

import math

import numpy as np
from numba import njit

from mia_strategies.features.core import MAX_INPUT
from mia_strategies.features.core import MIN_INPUT
from mia_strategies.features.rolling_kernel import moments_mean
from mia_strategies.features.rolling_kernel import moments_push
from mia_strategies.features.rolling_kernel import moments_std
from mia_strategies.features.rolling_kernel import rank_push
from mia_strategies.features.rolling_kernel import sums_push


# -- float state S ----------------------------------------------------------------------------------
BID, ASK, BSZ, ASZ, TICK, LARGE_ADD, PULL_FRACTION, LARGE_TRADE = range(8)
LAST_TRADE_PX, LAST_SIGN, MID_AT_BAR_START, DMID = range(8, 12)
# per-bar accumulators (reset at each close)
OFI_BAR, OFI_ABS_BAR, TW_TIME, TW_IMB, TW_SPREAD, TW_DEPTH, TW_BSZ, TW_ASZ, TW_MIN, SPREAD_MAX = range(12, 22)
VOL, BUY, SELL, LARGE, SPOOF_ADD, SPOOF_PULL = range(22, 28)
# pending large adds, bid side then ask side: price, size before, size added, size traded since
PENDING = 28  # + 4 * side + (0 price, 1 base, 2 added, 3 traded)
N_FLOAT = 36

# -- integer state SI -------------------------------------------------------------------------------
Q_TS, T_LAST, FAST_NS, SPOOF_LIFE_NS, SEEN_QUOTES, SEEN_TRADES, QUOTES, TRADES, REJECTED = range(9)
NQ, FAST, NTR, N_BUY, N_SELL, SPOOF_EVENTS = range(9, 15)
PENDING_ACTIVE = 15  # + side
PENDING_TS = 17  # + side
N_INT = 19

# -- the bar summary written by close_bar ----------------------------------------------------------
SUMMARY_FIELDS = (
    "tw_time", "tw_imb", "tw_spread", "tw_depth", "tw_bsz", "tw_asz", "tw_min", "spread_max",
    "bid", "ask", "bsz", "asz", "ofi_bar", "ofi_abs_bar", "dmid",
    "nq", "fast", "ntr", "vol", "buy", "sell", "n_buy", "n_sell", "large",
    "spoof_add", "spoof_pull", "spoof_events",
)  # fmt: skip
N_SUMMARY = len(SUMMARY_FIELDS)

#: Tick rows: column 0 is the kind (0 quote, 1 trade); quote: bid, ask, bid size, ask size;
#: trade: price, size, aggressor (1 buyer, 2 seller, 0 unknown), unused.
QUOTE = 0.0
TRADE = 1.0


def new_state(tick: float, fast_ns: int, spoof_life_ns: int, pull_fraction: float) -> tuple[np.ndarray, np.ndarray]:
    """Fresh ``(S, SI)``: no quote seen, thresholds infinite until bars set them."""
    s = np.full(N_FLOAT, np.nan)
    si = np.zeros(N_INT, dtype=np.int64)
    s[TICK] = tick
    s[LARGE_ADD] = math.inf
    s[LARGE_TRADE] = math.inf
    s[PULL_FRACTION] = pull_fraction
    s[LAST_SIGN] = 0.0
    si[FAST_NS] = fast_ns
    si[SPOOF_LIFE_NS] = spoof_life_ns
    _reset_bar(s, si)
    return s, si


@njit(cache=True)
def _reset_bar(s: np.ndarray, si: np.ndarray) -> None:  # pragma: no cover - compiled
    for k in range(OFI_BAR, SPOOF_PULL + 1):
        s[k] = 0.0
    s[SPREAD_MAX] = np.nan
    for k in range(NQ, SPOOF_EVENTS + 1):
        si[k] = 0


@njit(cache=True)
def _weigh(s: np.ndarray, si: np.ndarray, ts: int) -> None:  # pragma: no cover - compiled
    """Add the standing quote's contribution from the interval start to ``ts``."""
    dt = ts - si[T_LAST]
    if dt <= 0:
        return
    w = float(dt)
    bsz = s[BSZ]
    asz = s[ASZ]
    total = bsz + asz
    spread = (s[ASK] - s[BID]) / s[TICK]
    s[TW_TIME] += w
    if total > 0.0:
        s[TW_IMB] += w * (bsz - asz) / total
    s[TW_SPREAD] += w * spread
    s[TW_DEPTH] += w * 0.5 * total
    s[TW_BSZ] += w * bsz
    s[TW_ASZ] += w * asz
    if spread <= 1.000000001:
        s[TW_MIN] += w
    si[T_LAST] = ts


@njit(cache=True)
def _record_spoof(s: np.ndarray, si: np.ndarray, base: int) -> None:  # pragma: no cover - compiled
    s[SPOOF_PULL] += s[base + 2]
    si[SPOOF_EVENTS] += 1


@njit(cache=True)
def _resolve(
    s: np.ndarray, si: np.ndarray, side: int, ts: int, price: float, size: float, withdrawn: bool
) -> None:  # pragma: no cover - compiled
    """A pending large add meets a new quote: still resting, pulled untraded (spoof) or no verdict."""
    base = PENDING + 4 * side
    if ts - si[PENDING_TS + side] > si[SPOOF_LIFE_NS]:
        si[PENDING_ACTIVE + side] = 0  # it rested: genuine liquidity
        return
    untraded = s[base + 3] < 0.5 * s[base + 2]
    if withdrawn:
        if untraded:
            _record_spoof(s, si, base)
        si[PENDING_ACTIVE + side] = 0
        return
    if price != s[base]:
        si[PENDING_ACTIVE + side] = 0  # the touch improved past it: no verdict
        return
    if size <= s[base + 1] + (1.0 - s[PULL_FRACTION]) * s[base + 2]:
        if untraded:
            _record_spoof(s, si, base)
        si[PENDING_ACTIVE + side] = 0


@njit(cache=True)
def _add_large(
    s: np.ndarray, si: np.ndarray, side: int, price: float, before: float, added: float, ts: int
) -> None:  # pragma: no cover - compiled
    base = PENDING + 4 * side
    s[SPOOF_ADD] += added
    if si[PENDING_ACTIVE + side] and s[base] == price:
        s[base + 2] += added
        si[PENDING_TS + side] = ts
        return
    si[PENDING_ACTIVE + side] = 1
    s[base] = price
    s[base + 1] = before
    s[base + 2] = added
    s[base + 3] = 0.0
    si[PENDING_TS + side] = ts


@njit(cache=True)
def _quote(
    s: np.ndarray, si: np.ndarray, ts: int, bid: float, ask: float, bid_size: float, ask_size: float
) -> bool:  # pragma: no cover - compiled
    if not (
        MIN_INPUT <= bid <= ask <= MAX_INPUT
        and (bid_size == 0.0 or MIN_INPUT <= bid_size <= MAX_INPUT)
        and (ask_size == 0.0 or MIN_INPUT <= ask_size <= MAX_INPUT)
    ):
        si[REJECTED] += 1
        return False
    si[QUOTES] += 1
    if si[SEEN_QUOTES]:
        if ts > si[T_LAST]:
            _weigh(s, si, ts)
        pb = s[BID]
        pa = s[ASK]
        pbs = s[BSZ]
        pas = s[ASZ]
        e = 0.0
        if bid >= pb:
            e += bid_size
        if bid <= pb:
            e -= pbs
        if ask <= pa:
            e -= ask_size
        if ask >= pa:
            e += pas
        s[OFI_BAR] += e
        s[OFI_ABS_BAR] += e if e >= 0.0 else -e
        if ts - si[Q_TS] < si[FAST_NS]:
            si[FAST] += 1
        large = s[LARGE_ADD]
        if si[PENDING_ACTIVE] or si[PENDING_ACTIVE + 1] or bid_size - pbs >= large or ask_size - pas >= large:
            if si[PENDING_ACTIVE]:
                _resolve(s, si, 0, ts, bid, bid_size, bid < s[PENDING])
            if si[PENDING_ACTIVE + 1]:
                _resolve(s, si, 1, ts, ask, ask_size, ask > s[PENDING + 4])
            if bid == pb and bid_size - pbs >= large:
                _add_large(s, si, 0, bid, pbs, bid_size - pbs, ts)
            if ask == pa and ask_size - pas >= large:
                _add_large(s, si, 1, ask, pas, ask_size - pas, ts)
    else:
        si[SEEN_QUOTES] = 1
        s[MID_AT_BAR_START] = 0.5 * (bid + ask)
        if ts > si[T_LAST]:
            si[T_LAST] = ts
    s[BID] = bid
    s[ASK] = ask
    s[BSZ] = bid_size
    s[ASZ] = ask_size
    si[Q_TS] = ts
    si[NQ] += 1
    spread = (ask - bid) / s[TICK]
    if not spread <= s[SPREAD_MAX]:
        s[SPREAD_MAX] = spread
    return True


@njit(cache=True)
def _trade(
    s: np.ndarray, si: np.ndarray, price: float, size: float, aggressor: float
) -> bool:  # pragma: no cover - compiled
    """Classify the trade (aggressor side, else quote rule, else tick rule) and accumulate it."""
    if not (MIN_INPUT <= price <= MAX_INPUT and MIN_INPUT <= size <= MAX_INPUT):
        si[REJECTED] += 1
        return False
    si[TRADES] += 1
    si[SEEN_TRADES] = 1
    if aggressor == 1.0:
        sign = 1.0
    elif aggressor == 2.0:
        sign = -1.0
    else:
        sign = 0.0
        if si[SEEN_QUOTES]:
            mid = 0.5 * (s[BID] + s[ASK])
            sign = 1.0 if price > mid else -1.0 if price < mid else 0.0
        if sign == 0.0:
            last = s[LAST_TRADE_PX]
            sign = 1.0 if price > last else -1.0 if price < last else s[LAST_SIGN]
    s[LAST_TRADE_PX] = price
    s[LAST_SIGN] = sign
    si[NTR] += 1
    s[VOL] += size
    if sign > 0.0:
        s[BUY] += size
        si[N_BUY] += 1
    elif sign < 0.0:
        s[SELL] += size
        si[N_SELL] += 1
    if size >= s[LARGE_TRADE]:
        s[LARGE] += size
    if si[PENDING_ACTIVE] and price == s[PENDING]:
        s[PENDING + 3] += size
    if si[PENDING_ACTIVE + 1] and price == s[PENDING + 4]:
        s[PENDING + 7] += size
    return True


@njit(cache=True)
def process_ticks(
    s: np.ndarray, si: np.ndarray, stamps: np.ndarray, rows: np.ndarray, accepted: np.ndarray
) -> None:  # pragma: no cover - compiled
    """Apply a batch of ticks in order; ``accepted[i]`` is False where tick ``i`` was invalid and skipped."""
    for i in range(stamps.shape[0]):
        if rows[i, 0] == QUOTE:
            accepted[i] = _quote(s, si, stamps[i], rows[i, 1], rows[i, 2], rows[i, 3], rows[i, 4])
        else:
            accepted[i] = _trade(s, si, rows[i, 1], rows[i, 2], rows[i, 3])


@njit(cache=True)
def close_bar(s: np.ndarray, si: np.ndarray, ts: int, out: np.ndarray) -> None:  # pragma: no cover - compiled
    """Weigh the standing quote up to the close, write the bar's accumulators to ``out``, start the next bar."""
    seen = si[SEEN_QUOTES] != 0
    if seen:
        if ts > si[T_LAST]:
            _weigh(s, si, ts)
        mid = 0.5 * (s[BID] + s[ASK])
        s[DMID] = (mid - s[MID_AT_BAR_START]) / s[TICK]
        s[MID_AT_BAR_START] = mid
    out[0] = s[TW_TIME]
    out[1] = s[TW_IMB]
    out[2] = s[TW_SPREAD]
    out[3] = s[TW_DEPTH]
    out[4] = s[TW_BSZ]
    out[5] = s[TW_ASZ]
    out[6] = s[TW_MIN]
    out[7] = s[SPREAD_MAX]
    out[8] = s[BID]
    out[9] = s[ASK]
    out[10] = s[BSZ]
    out[11] = s[ASZ]
    out[12] = s[OFI_BAR]
    out[13] = s[OFI_ABS_BAR]
    out[14] = s[DMID]
    out[15] = si[NQ]
    out[16] = si[FAST]
    out[17] = si[NTR]
    out[18] = s[VOL]
    out[19] = s[BUY]
    out[20] = s[SELL]
    out[21] = si[N_BUY]
    out[22] = si[N_SELL]
    out[23] = s[LARGE]
    out[24] = s[SPOOF_ADD]
    out[25] = s[SPOOF_PULL]
    out[26] = si[SPOOF_EVENTS]
    _reset_bar(s, si)
    if si[T_LAST] < ts:
        si[T_LAST] = ts
    if seen:  # the next bar starts with the spread standing now
        s[SPREAD_MAX] = (s[ASK] - s[BID]) / s[TICK]


# -- the bar close: rolling windows and features ---------------------------------------------------
#
# The per-bar histories (``rolling.RollingSum``/``RollingMoments``/``RollingRank`` in the interpreted
# version) live in two arrays owned by ``OrderFlowState``: ``F`` (floats) and ``FS`` (counters), laid
# out by the module-level tables below (offsets are compile-time constants for the kernel). ``P``
# holds every window length (the helpers read them as array views) followed by the output positions
# of ``OUT_NAMES`` in the family's vector. The pushes are ``dynamic_kernel``'s ports, bit-identical to
# ``rolling.py``.

OFI_IMB_K = (1, 5, 15, 30)
OFI_K = (1, 5, 15, 30, 60)
BAI_K = (5, 15, 30)
AGGR_K = (1, 5, 15, 30, 60)
SIGNED_K = (1, 5, 15)
_CNT_K = (5, 15, 60)  # quote and trade counts
_VOL_K = (5, 15, 50, 60)
_VPIN_K = (15, 50)
_KYLE_K = (30, 120)


class _Layout:
    """Allocates the rolling structures' slices of ``F``, ``FS`` and ``P`` at import time."""

    def __init__(self) -> None:
        self.f = 0
        self.s = 0
        self.windows: list[int] = []
        self.objects: list[tuple[int, int, int, int, int]] = []

    def _at(self, n_float: int, n_int: int, windows: tuple[int, ...]) -> tuple[int, int, int, int, int]:
        at = (self.f, self.s, len(self.windows), len(windows), len(self.objects))
        self.objects.append(at)
        self.f += n_float
        self.s += n_int
        self.windows.extend(windows)
        return at

    def scalar(self) -> int:
        self.f += 1
        return self.f - 1

    def counter(self) -> int:
        self.s += 1
        return self.s - 1

    def sums(self, windows: tuple[int, ...]) -> tuple[int, int, int, int, int]:
        """``RollingSum``: floats ``[sums x nw, buf x cap]``, ints ``[i, count, since]``."""
        return self._at(len(windows) + max(windows), 3, windows)

    def moments(self, windows: tuple[int, ...]) -> tuple[int, int, int, int, int]:
        """``RollingMoments``: floats ``[anchor, scale, s1 x nw, s2 x nw, buf x cap]``, ints ``[i, count, since]``."""
        return self._at(2 + 2 * len(windows) + max(windows), 3, windows)

    def rank(self, w: int) -> tuple[int, int, int, int, int]:
        """``RollingRank``: floats ``[sorted x w, fifo x w]``, ints ``[head, size]``."""
        return self._at(2 * w, 2, (w,))


_L = _Layout()
#: Scalars: the L1 depth EMA (reference for large adds and depth totals) and the threshold multiples.
REF_DEPTH = _L.scalar()
ADD_MULTIPLE = _L.scalar()
TRADE_MULTIPLE = _L.scalar()
LARGE_BARS = _L.counter()  # bars since the large-trade threshold was set
# each: (F offset, FS offset, P offset of the windows, number of windows, object number); objects
# pushed together are numbered consecutively so one loop (one copy of the push code) serves them
R_OFI = _L.sums(OFI_K)
R_OFI_ABS = _L.sums(OFI_IMB_K)
R_DEPTH = _L.sums(OFI_K)
R_TW_TIME = _L.sums(BAI_K)
R_TW_IMB = _L.sums(BAI_K)
R_TW_SPREAD = _L.sums((15,))
R_TW_TIME15 = _L.sums((15,))
R_NQ = _L.sums(_CNT_K)
R_MICRO = _L.sums((5,))
M_OFI_NORM = _L.moments((60, 240))
M_SPREAD = _L.moments((60,))
M_DEPTH = _L.moments((60,))
R_NTR = _L.sums(_CNT_K)
R_VOL = _L.sums(_VOL_K)
R_BUY = _L.sums(AGGR_K)
R_SELL = _L.sums(AGGR_K)
R_IMB_ABS = _L.sums(_VPIN_K)
M_NTR = _L.moments((60,))
R_LARGE = _L.sums((15,))
R_SPOOF_ADD = _L.sums((15,))
R_SPOOF_PULL = _L.sums((15,))
R_MIXED_NQ = _L.sums((15,))
R_MIXED_NTR = _L.sums((15,))
R_MIXED_FAST = _L.sums((15,))
R_KX = _L.sums(_KYLE_K)
R_KY = _L.sums(_KYLE_K)
R_KXY = _L.sums(_KYLE_K)
R_KXX = _L.sums(_KYLE_K)
K_LNV60 = _L.rank(60)
K_LNV390 = _L.rank(390)
_MOMENTS = (M_OFI_NORM, M_SPREAD, M_DEPTH, M_NTR)
# (first, end) object numbers of the groups pushed together
_G_QUOTE_SUMS = (R_OFI[4], R_MICRO[4] + 1)
_G_QUOTE_MOMENTS = (M_OFI_NORM[4], M_DEPTH[4] + 1)
_G_TRADE_SUMS = (R_NTR[4], R_IMB_ABS[4] + 1)
_G_MIXED_SUMS = (R_SPOOF_ADD[4], R_KXX[4] + 1)
#: Where each object's value for this bar is staged before its group is pushed.
_VALUES = _L.f
_L.f += len(_L.objects)
N_BAR_FLOAT = _L.f
N_BAR_INT = _L.s
_P_OUT = len(_L.windows)
_IMB_IN_OFI = tuple(OFI_K.index(k) for k in OFI_IMB_K)
_SIGNED_IN_AGGR = tuple(AGGR_K.index(k) for k in SIGNED_K)

_names: list[str] = []


def _out(*names: str) -> int:
    """Reserve output slots for ``names``; return the first slot."""
    _names.extend(names)
    return _P_OUT + len(_names) - len(names)


O_OFI_IMB = _out(*("orderflow_imbalance" if k == 1 else f"orderflow_imbalance_{k}" for k in OFI_IMB_K))
O_OFI = _out(*(f"ofi_{k}" for k in OFI_K))
O_OFI_SCORE = _out("ofi_score", "ofi_score_240")
O_BAI = _out("bid_ask_imbalance")
O_BAI_LAST = _out("bid_ask_imbalance_last")
O_BAI_K = _out(*(f"bid_ask_imbalance_{k}" for k in BAI_K))
O_MICRO = _out("microprice_dev")
O_MICRO_5 = _out("microprice_dev_5")
O_QV = _out("quote_velocity")
O_QV_RATIO = _out("quote_velocity_ratio_5_60")
O_SPREAD = _out("spread_mean")
O_SPREAD_MAX = _out("spread_max")
O_SPREAD_MIN = _out("spread_min_share")
O_SPREAD_15 = _out("spread_mean_15")
O_SPREAD_Z = _out("spread_zscore_60")
O_DEPTH = _out("l1_depth_mean")
O_DEPTH_RATIO = _out("l1_depth_ratio")
O_DEPTH_Z = _out("l1_depth_zscore_60")
O_FAST = _out("fast_quote_share")
O_AGGR = _out(*("trade_aggressiveness" if k == 1 else f"trade_aggressiveness_{k}" for k in AGGR_K))
O_SIGNED = _out(*(f"signed_volume_{k}" for k in SIGNED_K))
O_TICK_RULE = _out("tick_rule_imbalance")
O_TV = _out("trade_velocity")
O_TV_5 = _out("trade_velocity_5")
O_TV_15 = _out("trade_velocity_15")
O_TV_RATIO = _out("trade_velocity_ratio_5_60")
O_TC_Z = _out("trade_count_zscore_60")
O_SIZE = _out("avg_trade_size")
O_SIZE_RATIO = _out("avg_trade_size_ratio_5_60")
O_LARGE = _out("large_trade_share")
O_LARGE_15 = _out("large_trade_share_15")
O_VPIN = _out("vpin_15", "vpin_50")
O_QTR = _out("quote_trade_ratio")
O_QTR_15 = _out("quote_trade_ratio_15")
O_HFT = _out("hft_activity_score")
O_HFT_15 = _out("hft_activity_score_15")
O_SPOOF = _out("spoofing_score")
O_SPOOF_15 = _out("spoofing_score_15")
O_SPOOF_EVENTS = _out("spoof_events")
O_KYLE = _out("kyle_lambda_30", "kyle_lambda_120")
O_VOL_ANOM = _out("volume_anomaly", "volume_anomaly_390")
#: The features ``bar_close`` writes, in the order of their positions in ``P``.
OUT_NAMES = tuple(_names)
#: After the positions: (F offset, FS offset, P offset of the windows, number of windows) per object.
_P_TABLE = _P_OUT + len(OUT_NAMES)


def new_bar_state(
    positions: list[int], large_add_multiple: float, large_trade_multiple: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Fresh ``(F, FS, P)``; ``positions[i]`` is where ``OUT_NAMES[i]`` goes in the family's vector."""
    if len(positions) != len(OUT_NAMES):
        raise ValueError(f"need {len(OUT_NAMES)} output positions, got {len(positions)}")
    f = np.zeros(N_BAR_FLOAT)
    f[REF_DEPTH] = np.nan
    f[ADD_MULTIPLE] = large_add_multiple
    f[TRADE_MULTIPLE] = large_trade_multiple
    for m in _MOMENTS:
        f[m[0]] = np.nan  # anchors are NaN until the first value, as in RollingMoments
    table = [v for obj in _L.objects for v in obj[:4]]
    p = np.array(_L.windows + list(positions) + table, dtype=np.int64)
    return f, np.zeros(N_BAR_INT, dtype=np.int64), p


@njit(cache=True)
def _push(f: np.ndarray, fs: np.ndarray, p: np.ndarray, r: tuple, x: float) -> None:  # pragma: no cover
    sums_push(f, r[0], fs, r[1], p[r[2] : r[2] + r[3]], x)


@njit(cache=True)
def _push_sums(f: np.ndarray, fs: np.ndarray, p: np.ndarray, first: int, end: int) -> None:  # pragma: no cover
    """Push the staged values of the running sums numbered ``first`` to ``end - 1`` (one loop: little code)."""
    for k in range(first, end):
        t = _P_TABLE + 4 * k
        w = p[t + 2]
        sums_push(f, p[t], fs, p[t + 1], p[w : w + p[t + 3]], f[_VALUES + k])


@njit(cache=True)
def _push_moments(f: np.ndarray, fs: np.ndarray, p: np.ndarray, first: int, end: int) -> None:  # pragma: no cover
    """Push the staged values of the running moments numbered ``first`` to ``end - 1``."""
    for k in range(first, end):
        t = _P_TABLE + 4 * k
        w = p[t + 2]
        moments_push(f, p[t], fs, p[t + 1], p[w : w + p[t + 3]], f[_VALUES + k])


@njit(cache=True)
def _zscore(
    f: np.ndarray, fs: np.ndarray, p: np.ndarray, m: tuple, j: int, value: float, out: np.ndarray, at: int
) -> None:  # pragma: no cover - compiled
    """z-score of ``value`` (the newest pushed) within window ``j`` of the moments ``m``, unless not full."""
    w = p[m[2] + j]
    mean = moments_mean(f, m[0], fs, m[1], w, j)
    if mean == mean:
        sd = moments_std(f, m[0], fs, m[1], m[3], w, j)
        out[p[at]] = (value - mean) / sd if sd > 0.0 else 0.0


@njit(cache=True)
def _close_quotes(
    s: np.ndarray, b: np.ndarray, f: np.ndarray, fs: np.ndarray, p: np.ndarray, out: np.ndarray
) -> None:  # pragma: no cover - compiled
    tw = b[0]
    bsz = b[10]
    asz = b[11]
    total = bsz + asz
    tick = s[TICK]
    if tw > 0.0:
        depth = b[3] / tw
        imb = b[1] / tw
        spread = b[2] / tw
        min_share = b[6] / tw
        ratio = math.log(b[4] / b[5]) if b[4] > 0.0 and b[5] > 0.0 else 0.0
    else:
        depth = 0.5 * total
        imb = (bsz - asz) / total if total > 0.0 else 0.0
        spread = (b[9] - b[8]) / tick
        min_share = 1.0 if spread <= 1.000000001 else 0.0
        ratio = math.log(bsz / asz) if bsz > 0.0 and asz > 0.0 else 0.0
    mid = 0.5 * (b[8] + b[9])
    micro = (b[8] * asz + b[9] * bsz) / total if total > 0.0 else mid
    ofi_norm = b[12] / depth if depth > 0.0 else 0.0
    nq_bar = b[15]
    f[_VALUES + R_OFI[4]] = b[12]
    f[_VALUES + R_OFI_ABS[4]] = b[13]
    f[_VALUES + R_DEPTH[4]] = depth
    f[_VALUES + M_OFI_NORM[4]] = ofi_norm
    f[_VALUES + R_TW_TIME[4]] = tw
    f[_VALUES + R_TW_IMB[4]] = b[1]
    f[_VALUES + R_TW_SPREAD[4]] = b[2]
    f[_VALUES + R_TW_TIME15[4]] = tw
    f[_VALUES + M_SPREAD[4]] = spread
    f[_VALUES + M_DEPTH[4]] = depth
    f[_VALUES + R_NQ[4]] = nq_bar
    f[_VALUES + R_MICRO[4]] = (micro - mid) / tick
    _push_sums(f, fs, p, _G_QUOTE_SUMS[0], _G_QUOTE_SUMS[1])
    _push_moments(f, fs, p, _G_QUOTE_MOMENTS[0], _G_QUOTE_MOMENTS[1])
    if depth > 0.0:
        ref = f[REF_DEPTH]
        f[REF_DEPTH] = depth if ref != ref else ref + (2.0 / 21.0) * (depth - ref)
        s[LARGE_ADD] = f[ADD_MULTIPLE] * f[REF_DEPTH]
    n = fs[R_OFI[1] + 1]
    ofi = R_OFI[0]
    for j in range(len(OFI_IMB_K)):
        if n >= OFI_IMB_K[j]:
            den = f[R_OFI_ABS[0] + j]
            out[p[O_OFI_IMB + j]] = f[ofi + _IMB_IN_OFI[j]] / den if den > 0.0 else 0.0
    for j in range(len(OFI_K)):
        k = OFI_K[j]
        if n >= k:
            mean_depth = f[R_DEPTH[0] + j] / k
            out[p[O_OFI + j]] = f[ofi + j] / mean_depth if mean_depth > 0.0 else 0.0
    for j in range(2):
        w = p[M_OFI_NORM[2] + j]
        m = moments_mean(f, M_OFI_NORM[0], fs, M_OFI_NORM[1], w, j)
        if m == m:
            sd = moments_std(f, M_OFI_NORM[0], fs, M_OFI_NORM[1], M_OFI_NORM[3], w, j)
            out[p[O_OFI_SCORE + j]] = (ofi_norm - m) / sd if sd > 0.0 else 0.0
    out[p[O_BAI]] = imb
    out[p[O_BAI_LAST]] = (bsz - asz) / total if total > 0.0 else 0.0
    for j in range(len(BAI_K)):
        if n >= BAI_K[j]:
            den = f[R_TW_TIME[0] + j]
            out[p[O_BAI_K + j]] = f[R_TW_IMB[0] + j] / den if den > 0.0 else imb
    out[p[O_MICRO]] = (micro - mid) / tick
    if n >= 5:
        out[p[O_MICRO_5]] = f[R_MICRO[0]] / 5.0
    nq = R_NQ[0]
    out[p[O_QV]] = nq_bar
    if n >= 60:
        long = f[nq + 2] / 60.0
        out[p[O_QV_RATIO]] = (f[nq] / 5.0) / long if long > 0.0 else 1.0
    out[p[O_SPREAD]] = spread
    out[p[O_SPREAD_MAX]] = b[7] if b[7] == b[7] else spread
    out[p[O_SPREAD_MIN]] = min_share
    if n >= 15:
        den = f[R_TW_TIME15[0]]
        out[p[O_SPREAD_15]] = f[R_TW_SPREAD[0]] / den if den > 0.0 else spread
    _zscore(f, fs, p, M_SPREAD, 0, spread, out, O_SPREAD_Z)
    out[p[O_DEPTH]] = depth
    out[p[O_DEPTH_RATIO]] = ratio
    _zscore(f, fs, p, M_DEPTH, 0, depth, out, O_DEPTH_Z)
    out[p[O_FAST]] = b[16] / nq_bar if nq_bar > 0 else 0.0


@njit(cache=True)
def _close_trades(
    s: np.ndarray, b: np.ndarray, f: np.ndarray, fs: np.ndarray, p: np.ndarray, out: np.ndarray
) -> None:  # pragma: no cover - compiled
    ntr_bar = b[17]
    vol_bar = b[18]
    f[_VALUES + R_NTR[4]] = ntr_bar
    f[_VALUES + M_NTR[4]] = ntr_bar
    f[_VALUES + R_VOL[4]] = vol_bar
    f[_VALUES + R_BUY[4]] = b[19]
    f[_VALUES + R_SELL[4]] = b[20]
    f[_VALUES + R_IMB_ABS[4]] = abs(b[19] - b[20])
    _push_sums(f, fs, p, _G_TRADE_SUMS[0], _G_TRADE_SUMS[1])
    _push_moments(f, fs, p, M_NTR[4], M_NTR[4] + 1)
    n = fs[R_NTR[1] + 1]
    buy = R_BUY[0]
    sell = R_SELL[0]
    vol = R_VOL[0]
    ntr = R_NTR[0]
    for j in range(len(AGGR_K)):
        if n >= AGGR_K[j]:
            total = f[buy + j] + f[sell + j]
            out[p[O_AGGR + j]] = (f[buy + j] - f[sell + j]) / total if total > 0.0 else 0.0
    if n >= 60:
        mean_vol = f[vol + 3] / 60.0
        for j in range(len(SIGNED_K)):
            a = _SIGNED_IN_AGGR[j]
            signed = f[buy + a] - f[sell + a]
            out[p[O_SIGNED + j]] = signed / mean_vol if mean_vol > 0.0 else 0.0
    classified = b[21] + b[22]
    out[p[O_TICK_RULE]] = (b[21] - b[22]) / classified if classified != 0.0 else 0.0
    out[p[O_TV]] = ntr_bar
    if n >= 5:
        out[p[O_TV_5]] = f[ntr] / 5.0
    if n >= 15:
        out[p[O_TV_15]] = f[ntr + 1] / 15.0
    out[p[O_SIZE]] = vol_bar / ntr_bar if ntr_bar != 0.0 else 0.0
    if n >= 60:
        long = f[ntr + 2] / 60.0
        out[p[O_TV_RATIO]] = (f[ntr] / 5.0) / long if long > 0.0 else 1.0
        _zscore(f, fs, p, M_NTR, 0, ntr_bar, out, O_TC_Z)
        short = f[vol] / f[ntr] if f[ntr] > 0 else 0.0
        long_size = f[vol + 3] / f[ntr + 2] if f[ntr + 2] > 0 else 0.0
        out[p[O_SIZE_RATIO]] = short / long_size if long_size > 0.0 else 1.0
    if s[LARGE_TRADE] < math.inf:
        _push(f, fs, p, R_LARGE, b[23])
        fs[LARGE_BARS] += 1
        out[p[O_LARGE]] = b[23] / vol_bar if vol_bar > 0.0 else 0.0
        if fs[LARGE_BARS] >= 15:
            total = f[vol + 1]
            out[p[O_LARGE_15]] = f[R_LARGE[0]] / total if total > 0.0 else 0.0
    for j in range(len(_VPIN_K)):
        if n >= _VPIN_K[j]:
            total = f[vol + 1] if j == 0 else f[vol + 2]
            out[p[O_VPIN + j]] = f[R_IMB_ABS[0] + j] / total if total > 0.0 else 0.0


@njit(cache=True)
def _at_least_one(x: float) -> float:  # pragma: no cover - compiled
    """Python's ``max(x, 1.0)`` (``x`` unless 1 is larger, so NaN stays NaN)."""
    return 1.0 if x < 1.0 else x


@njit(cache=True)
def _close_mixed(
    b: np.ndarray, f: np.ndarray, fs: np.ndarray, p: np.ndarray, out: np.ndarray
) -> None:  # pragma: no cover
    nq = b[15]
    ntr = _at_least_one(b[17])
    qtr = nq / ntr
    out[p[O_QTR]] = qtr
    f[_VALUES + R_MIXED_NQ[4]] = nq
    f[_VALUES + R_MIXED_NTR[4]] = b[17]
    f[_VALUES + R_MIXED_FAST[4]] = b[16]
    f[_VALUES + R_SPOOF_ADD[4]] = b[24]
    f[_VALUES + R_SPOOF_PULL[4]] = b[25]
    x = b[19] - b[20]
    y = b[14]
    f[_VALUES + R_KX[4]] = x
    f[_VALUES + R_KY[4]] = y
    f[_VALUES + R_KXY[4]] = x * y
    f[_VALUES + R_KXX[4]] = x * x
    _push_sums(f, fs, p, _G_MIXED_SUMS[0], _G_MIXED_SUMS[1])
    if fs[R_MIXED_NQ[1] + 1] >= 15:
        q15 = f[R_MIXED_NQ[0]]
        t15 = _at_least_one(f[R_MIXED_NTR[0]])
        out[p[O_QTR_15]] = q15 / t15
        share15 = f[R_MIXED_FAST[0]] / q15 if q15 > 0 else 0.0
        out[p[O_HFT_15]] = 0.5 * share15 + 0.5 * (1.0 - math.exp(-(q15 / t15) / 20.0))
    fast_share = b[16] / nq if nq > 0 else 0.0
    out[p[O_HFT]] = 0.5 * fast_share + 0.5 * (1.0 - math.exp(-qtr / 20.0))
    out[p[O_SPOOF]] = b[25] / b[24] if b[24] > 0.0 else 0.0
    out[p[O_SPOOF_EVENTS]] = b[26]
    if fs[R_SPOOF_ADD[1] + 1] >= 15:
        added = f[R_SPOOF_ADD[0]]
        out[p[O_SPOOF_15]] = f[R_SPOOF_PULL[0]] / added if added > 0.0 else 0.0
    count = fs[R_KX[1] + 1]
    for j in range(len(_KYLE_K)):
        k = _KYLE_K[j]
        if count >= k:
            sx = f[R_KX[0] + j]
            sxx = f[R_KXX[0] + j] - sx * sx / k
            out[p[O_KYLE + j]] = (f[R_KXY[0] + j] - sx * f[R_KY[0] + j] / k) / sxx if sxx > 0.0 else 0.0


@njit(cache=True)
def _quantile(f: np.ndarray, o: int, size: int, q: float) -> float:  # pragma: no cover - compiled
    """``RollingRank.quantile`` of the sorted values ``f[o : o + size]`` (``size`` > 0)."""
    pos = q * (size - 1)
    lo = int(pos)
    hi = min(lo + 1, size - 1)
    return f[o + lo] + (f[o + hi] - f[o + lo]) * (pos - lo)


@njit(cache=True)
def _volume_anomaly(
    volume: float, f: np.ndarray, fs: np.ndarray, out: np.ndarray, p: np.ndarray
) -> None:  # pragma: no cover
    x = math.log1p(volume)
    for j in range(2):
        r = K_LNV60 if j == 0 else K_LNV390
        w = p[r[2]]
        size = fs[r[1] + 1]
        if size >= w:
            med = _quantile(f, r[0], size, 0.5)
            iqr = _quantile(f, r[0], size, 0.75) - _quantile(f, r[0], size, 0.25)
            out[p[O_VOL_ANOM + j]] = (x - med) / (iqr / 1.349) if iqr > 0.0 else 0.0
        rank_push(f, r[0], fs, r[1], w, x)


@njit(cache=True)
def bar_close(
    s: np.ndarray,
    si: np.ndarray,
    ts: int,
    volume: float,
    summary: np.ndarray,
    f: np.ndarray,
    fs: np.ndarray,
    p: np.ndarray,
    out: np.ndarray,
) -> None:  # pragma: no cover - compiled
    """The whole order-flow bar close except the depth features: accumulators, rolling windows, features.

    ``summary`` is scratch for ``close_bar``'s accumulators; ``out`` is the family's feature vector.
    """
    seen_quotes = si[SEEN_QUOTES] != 0
    seen_trades = si[SEEN_TRADES] != 0
    close_bar(s, si, ts, summary)
    if seen_quotes:
        _close_quotes(s, summary, f, fs, p, out)
    if seen_trades:
        _close_trades(s, summary, f, fs, p, out)
    if seen_quotes and seen_trades:
        _close_mixed(summary, f, fs, p, out)
    _volume_anomaly(volume, f, fs, out, p)
    if seen_trades and fs[R_NTR[1] + 1] >= 60:
        trades = f[R_NTR[0] + 2]
        if trades > 0:
            s[LARGE_TRADE] = f[TRADE_MULTIPLE] * f[R_VOL[0] + 3] / trades
