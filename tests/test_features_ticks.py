"""The batched tick path of the order-flow family: exact conversion, and values independent of batching.

Ticks are queued as nautilus objects and applied in one compiled call per batch. These tests prove
that the C-array conversion gives exactly what nautilus's accessors give (on real CME quotes and on
every 128-bit value shape), and that where a batch is cut never changes a feature value.
"""

from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import settings
from hypothesis import strategies as st
from nautilus_trader.model.data import QuoteTick
from nautilus_trader.model.data import TradeTick
from nautilus_trader.model.enums import AggressorSide
from nautilus_trader.model.identifiers import InstrumentId
from nautilus_trader.model.identifiers import TradeId
from nautilus_trader.model.objects import Price
from nautilus_trader.model.objects import Quantity
from nautilus_trader.persistence.catalog import ParquetDataCatalog

from catalog.lean import ingest_lean_futures
from mia_strategies.features import ticks
from mia_strategies.features.core import BarInput
from mia_strategies.features.engine import FeatureHub
from mia_strategies.features.sets import load_feature_sets


REPO = Path(__file__).resolve().parents[1]
ES = "ESZ25.GLBX"
MIN = 60_000_000_000
T0 = 1_765_000_000 * 1_000_000_000 // MIN * MIN  # a minute boundary in Dec 2025


def test_the_c_array_path_is_active_on_the_pinned_nautilus():
    # Arrange / Act: the import-time probe compared the C layout with the accessors
    # Assert: nautilus_trader 1.221 gets the fast path (if this fails, the layout changed: see ticks.py)
    assert ticks._FAST_PATH


@settings(max_examples=300, deadline=None)
@given(st.integers(min_value=0, max_value=2**128 - 1))
def test_unsigned_128_bit_raws_round_once_to_the_nearest_double(value):
    lo, hi = np.uint64(value & (2**64 - 1)), np.uint64(value >> 64)
    assert ticks._u128_to_f64(lo, hi) == float(value)


@settings(max_examples=300, deadline=None)
@given(st.integers(min_value=-(2**127), max_value=2**127 - 1))
def test_signed_128_bit_raws_round_once_to_the_nearest_double(value):
    word = value & (2**128 - 1)
    assert ticks._i128_to_f64(np.uint64(word & (2**64 - 1)), np.uint64(word >> 64)) == float(value)


def test_real_cme_quotes_convert_exactly_as_the_accessors_do(tmp_path, markets):
    # Arrange: real ESH14 quotes (Lean) interleaved with trades of every aggressor code
    ingest_lean_futures(REPO / "tests" / "data" / "lean_es", tmp_path, "ES", markets)
    quotes = ParquetDataCatalog(str(tmp_path)).quote_ticks()
    assert len(quotes) > 5000
    sides = (AggressorSide.NO_AGGRESSOR, AggressorSide.BUYER, AggressorSide.SELLER)
    items: list[object] = []
    for i, q in enumerate(quotes):
        items.append(q)
        if i % 3 == 0:
            size = Quantity(1 + i % 17, q.bid_size.precision)
            items.append(
                TradeTick(q.instrument_id, q.ask_price, size, sides[i % 3 - 1], TradeId(f"t{i}"), q.ts_event, q.ts_init)
            )

    # Act
    fast = ticks._fast_rows(items)
    slow = ticks._accessor_rows(items)

    # Assert: identical stamps and floats, bit for bit
    assert fast is not None
    np.testing.assert_array_equal(fast[0], slow[0])
    np.testing.assert_array_equal(fast[1], slow[1])


def test_plain_float_rows_take_the_accessor_path():
    # Arrange: a batch mixing a nautilus quote with a row from the plain-float API
    iid = InstrumentId.from_str(ES)
    quote = QuoteTick(iid, Price.from_str("6800.25"), Price.from_str("6800.50"), Quantity(3, 0), Quantity(4, 0), 5, 5)
    items = [quote, (6, 1.0, 6800.5, 2.0, 1.0, 0.0)]

    # Act
    stamps, rows = ticks.tick_rows(items)

    # Assert
    assert stamps.tolist() == [5, 6]
    assert rows.tolist() == [[0.0, 6800.25, 6800.5, 3.0, 4.0], [1.0, 6800.5, 2.0, 1.0, 0.0]]


def _tick_stream(seed: int, minutes: int) -> list[object]:
    """A seeded ES stream: quotes with size jumps (spoof candidates), trades of every aggressor code."""
    rng = np.random.default_rng(seed)
    iid = InstrumentId.from_str(ES)
    items: list[object] = []
    mid = 27_200  # in ticks of 0.25
    for m in range(minutes):
        for k in range(int(rng.integers(5, 60))):
            ts = T0 + m * MIN + int(rng.integers(0, MIN - 1))
            mid += int(rng.integers(-1, 2))
            if rng.random() < 0.7:
                bid_size = int(rng.choice([1, 5, 20, 200]))
                ask_size = int(rng.integers(1, 40))
                bid = Price(mid * 0.25, 2)
                ask = Price((mid + int(rng.integers(1, 3))) * 0.25, 2)
                items.append((ts, QuoteTick(iid, bid, ask, Quantity(bid_size, 0), Quantity(ask_size, 0), ts, ts)))
            else:
                side = (AggressorSide.NO_AGGRESSOR, AggressorSide.BUYER, AggressorSide.SELLER)[int(rng.integers(0, 3))]
                price = Price((mid + int(rng.integers(0, 2))) * 0.25, 2)
                trade = TradeTick(iid, price, Quantity(int(rng.integers(1, 30)), 0), side, TradeId(f"{m}-{k}"), ts, ts)
                items.append((ts, trade))
    items.sort(key=lambda pair: pair[0])
    return [tick for _, tick in items]


def _run(stream: list[object], minutes: int, cuts: set[int], markets: object) -> np.ndarray:
    """Feed the stream minute by minute, applying the queue after every tick index in ``cuts``."""
    hub = FeatureHub(load_feature_sets(REPO / "config" / "feature_sets.yaml"), {"ES": "ES.training"}, markets)  # type: ignore[arg-type]
    hub.register(ES)
    queue = hub.tick_queue(ES)
    assert queue is not None
    rows = []
    i = 0
    for m in range(minutes):
        close = T0 + (m + 1) * MIN
        while i < len(stream) and stream[i].ts_event < close:  # type: ignore[attr-defined]
            queue.append(stream[i])
            if i in cuts:
                hub.flush_ticks()
            i += 1
        values = hub.on_bar(ES, BarInput(close, close, 6800.0, 6801.0, 6799.0, 6800.5, 100.0))
        assert values is not None
        rows.append(values)
    return np.array(rows)


@pytest.fixture(scope="module")
def stream_and_reference(markets) -> tuple[list[object], np.ndarray]:
    stream = _tick_stream(seed=5, minutes=40)
    reference = _run(stream, 40, set(), markets)
    assert np.isfinite(reference[-1]).sum() > 100  # order-flow features are defined, not all NaN
    return stream, reference


@settings(max_examples=15, deadline=None)
@given(st.sets(st.integers(min_value=0, max_value=1500), max_size=60))
def test_where_a_batch_is_cut_never_changes_a_value(stream_and_reference, markets, cuts):
    # Arrange
    stream, reference = stream_and_reference

    # Act: the same ticks applied in batches cut at arbitrary points
    values = _run(stream, 40, cuts, markets)

    # Assert: every feature identical, NaN where NaN
    np.testing.assert_array_equal(values, reference)
