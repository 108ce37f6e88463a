"""Queued ticks → the arrays the compiled order-flow update reads: the one conversion online and offline share.

The feature actor queues nautilus ``QuoteTick``/``TradeTick`` objects as the message bus delivers
them and the offline build queues the catalog's objects, so both convert the same objects the same
way. Rows queued through the plain-float API (``FeatureHub.on_quote``/``on_trade``) are
``(ts, kind, a, b, c, d)`` tuples.

Why not the accessors: ``tick.bid_price.as_double()`` builds a ``Price`` object per field, about
1.5 us per tick in all, which is more than the engine's own work per tick. Nautilus can copy a list of
ticks into one C array (``capsule_from_list``, ~0.1 us per tick); this module reads that array's fixed
layout (nautilus_trader 1.221, 128-bit fixed-point raws) and converts the raws with the same
arithmetic as ``as_double`` (``raw / 1e16``, the 128-bit integer rounded once to the nearest double).
The layout is checked at import against the accessors on probe ticks; if it ever disagrees (another
nautilus build), every batch takes the accessor path instead, with the same results.
"""

import ctypes
from itertools import compress
from operator import not_
from typing import Any

import numpy as np
from nautilus_trader.model.data import QuoteTick
from nautilus_trader.model.data import TradeTick
from numba import njit

from mia_strategies.features.rolling import FloatArray


_FIXED_SCALAR = 1e16
# C layouts in 64-bit words (nautilus_trader 1.221, high precision): raws are (low, high) word pairs.
_QUOTE_WORDS = 20  # instrument id 0-1, bid 2-3, ask 6-7, bid size 10-11, ask size 14-15, ts_event 18, ts_init 19
_TRADE_WORDS = 18  # instrument id 0-1, price 2-3, size 6-7, aggressor word 10 (low byte), ts_event 16
_CAPSULE_POINTER = ctypes.pythonapi.PyCapsule_GetPointer
_CAPSULE_POINTER.restype = ctypes.c_void_p
_CAPSULE_POINTER.argtypes = [ctypes.py_object, ctypes.c_char_p]


@njit(cache=True)
def _u128_to_f64(lo: np.uint64, hi: np.uint64) -> float:  # pragma: no cover - compiled
    """The unsigned 128-bit integer ``hi * 2**64 + lo`` rounded once to the nearest double (ties to even)."""
    if hi == 0:
        return float(lo)
    n = np.uint64(0)  # bits used by hi
    h = hi
    while h != 0:
        h >>= np.uint64(1)
        n += np.uint64(1)
    if n == 64:
        top = hi
        sticky = lo != 0
    else:
        top = (hi << (np.uint64(64) - n)) | (lo >> n)
        sticky = (lo & ((np.uint64(1) << n) - np.uint64(1))) != 0
    if sticky:
        top |= np.uint64(1)  # below the rounding position: breaks ties the way the discarded bits would
    return float(top) * 2.0 ** int(n)


@njit(cache=True)
def _i128_to_f64(lo: np.uint64, hi: np.uint64) -> float:  # pragma: no cover - compiled
    """Two's-complement signed 128-bit ``(lo, hi)`` to the nearest double."""
    if hi >> np.uint64(63):
        nlo = ~lo + np.uint64(1)
        nhi = ~hi + (np.uint64(1) if nlo == 0 else np.uint64(0))
        return -_u128_to_f64(nlo, nhi)
    return _u128_to_f64(lo, hi)


@njit(cache=True)
def _decode(
    is_trade: np.ndarray, quotes: np.ndarray, trades: np.ndarray, stamps: np.ndarray, rows: np.ndarray
) -> None:  # pragma: no cover - compiled
    qi = 0
    ti = 0
    for i in range(is_trade.shape[0]):
        if is_trade[i]:
            w = trades[ti]
            ti += 1
            stamps[i] = np.int64(w[16])
            rows[i, 0] = 1.0
            rows[i, 1] = _i128_to_f64(w[2], w[3]) / _FIXED_SCALAR
            rows[i, 2] = _u128_to_f64(w[6], w[7]) / _FIXED_SCALAR
            rows[i, 3] = float(w[10] & np.uint64(0xFF))
            rows[i, 4] = 0.0
        else:
            w = quotes[qi]
            qi += 1
            stamps[i] = np.int64(w[18])
            rows[i, 0] = 0.0
            rows[i, 1] = _i128_to_f64(w[2], w[3]) / _FIXED_SCALAR
            rows[i, 2] = _i128_to_f64(w[6], w[7]) / _FIXED_SCALAR
            rows[i, 3] = _u128_to_f64(w[10], w[11]) / _FIXED_SCALAR
            rows[i, 4] = _u128_to_f64(w[14], w[15]) / _FIXED_SCALAR


def _words(cls: Any, items: list[Any], width: int) -> np.ndarray:
    """``items`` as nautilus's C array, copied out as ``(n, width)`` uint64 words (no ctypes types per call)."""
    if not items:  # read-only like the non-empty case, so the kernel has one signature to compile
        return np.frombuffer(b"", dtype=np.uint64).reshape(0, width)
    capsule = cls.capsule_from_list(items)
    ptr, length = np.frombuffer(ctypes.string_at(_CAPSULE_POINTER(capsule, None), 16), dtype=np.uint64).tolist()
    data = ctypes.string_at(ptr, length * width * 8)  # a copy: the capsule may go now
    return np.frombuffer(data, dtype=np.uint64).reshape(length, width)


def _fast_rows(items: list[Any]) -> tuple[np.ndarray, FloatArray] | None:
    """The C-array path; None when a batch holds anything but nautilus ticks."""
    kinds = list(map(type, items))
    n_trades = kinds.count(TradeTick)
    if n_trades + kinds.count(QuoteTick) != len(kinds):
        return None
    is_trade = [k is TradeTick for k in kinds]
    trades = list(compress(items, is_trade)) if n_trades else []
    quotes = list(compress(items, map(not_, is_trade))) if n_trades < len(kinds) else []
    n = len(items)
    stamps = np.empty(n, dtype=np.int64)
    rows = np.empty((n, 5))
    _decode(
        np.array(is_trade, dtype=np.bool_),
        _words(QuoteTick, quotes, _QUOTE_WORDS),
        _words(TradeTick, trades, _TRADE_WORDS),
        stamps,
        rows,
    )
    return stamps, rows


def _accessor_rows(items: list[Any]) -> tuple[np.ndarray, FloatArray]:
    stamps: list[int] = []
    rows: list[tuple[float, ...]] = []
    for x in items:
        kind = type(x)
        if kind is QuoteTick:
            stamps.append(x.ts_event)
            rows.append(
                (0.0, x.bid_price.as_double(), x.ask_price.as_double(), x.bid_size.as_double(), x.ask_size.as_double())
            )
        elif kind is TradeTick:
            stamps.append(x.ts_event)
            rows.append((1.0, x.price.as_double(), x.size.as_double(), float(x.aggressor_side), 0.0))
        else:
            stamps.append(x[0])
            rows.append(x[1:])
    return np.array(stamps, dtype=np.int64), np.array(rows, dtype=np.float64).reshape(len(rows), 5)


def _probe_ticks() -> list[Any]:
    """Ticks whose fields exercise the layout: fractions, large and tiny values, every aggressor code."""
    from nautilus_trader.model.enums import AggressorSide
    from nautilus_trader.model.identifiers import InstrumentId
    from nautilus_trader.model.identifiers import TradeId
    from nautilus_trader.model.objects import Price
    from nautilus_trader.model.objects import Quantity

    iid = InstrumentId.from_str("ESZ25.GLBX")
    out: list[Any] = []
    for i, (bid, ask, size) in enumerate(
        (("6800.25", "6800.50", "12"), ("0.000001", "0.000003", "0.5"), ("-12.125", "-12.000", "1234567.25"))
    ):
        other = Quantity(3, Quantity.from_str(size).precision)
        out.append(QuoteTick(iid, Price.from_str(bid), Price.from_str(ask), Quantity.from_str(size), other, i, i))
        for side in (AggressorSide.NO_AGGRESSOR, AggressorSide.BUYER, AggressorSide.SELLER):
            trade_id = TradeId(f"t{i}{int(side)}")
            out.append(TradeTick(iid, Price.from_str(ask), Quantity.from_str(size), side, trade_id, 7 + i, 9 + i))
    return out


def _layout_matches() -> bool:
    """Whether the C-array path gives exactly what the accessors give on the probe ticks."""
    try:
        probe = _probe_ticks()
        fast = _fast_rows(probe)
    except Exception:  # any surprise in the C layout or ctypes: use the accessors
        return False
    slow = _accessor_rows(probe)
    return fast is not None and np.array_equal(fast[0], slow[0]) and np.array_equal(fast[1], slow[1])


_FAST_PATH = _layout_matches()


def tick_rows(items: list[Any]) -> tuple[np.ndarray, FloatArray]:
    """``(stamps, rows)``: int64 ``ts_event`` per tick and a ``(n, 5)`` float array (see ``orderflow_kernel``)."""
    if _FAST_PATH:
        fast = _fast_rows(items)
        if fast is not None:
            return fast
    return _accessor_rows(items)
