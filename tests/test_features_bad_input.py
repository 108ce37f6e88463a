"""Bad input never stops the feature hub: it is skipped, reported, and leaves every value as if it never came.

Random clean streams (quotes, trades, depth, bars, VIX and ETF bars, chains) are replayed twice: as
they are, and with corrupt events mixed in (NaN, inf, zero, negative, absurdly large or tiny prices
and sizes, crossed quotes, bars out of order, depth levels and chain rows that make no sense). The
second run must give bit-identical vectors, report every corrupt event, and never fail a bar.
"""

import math
from pathlib import Path

import numpy as np
from hypothesis import HealthCheck
from hypothesis import given
from hypothesis import settings
from hypothesis import strategies as st
from nautilus_trader.model.identifiers import InstrumentId

from catalog.types import OptionChainSnapshot
from mia_strategies.config import load_markets
from mia_strategies.features.core import BarInput
from mia_strategies.features.engine import FeatureHub
from mia_strategies.features.options import analyse_chain
from mia_strategies.features.params import OptionsParams
from mia_strategies.features.sets import load_feature_sets


REPO = Path(__file__).resolve().parents[1]
MIN = 60_000_000_000
T0 = 1_765_202_400_000_000_000  # 2025-12-08 14:00 UTC (RTH)
ES = "ESZ25.GLBX"
VIX = "VIX.CBOE-1-DAY-LAST-EXTERNAL"
SPY = "SPY.ARCA-1-MINUTE-LAST-EXTERNAL"
FEATURE_SETS = load_feature_sets(REPO / "config" / "feature_sets.yaml")
MARKETS = load_markets(REPO / "config" / "markets.yaml")
#: Values no real price takes; the same without 0 for sizes and volumes (an empty side is a real quote).
CORRUPT = (math.nan, math.inf, -math.inf, 0.0, -1.0, 1e300, 1e-300)
CORRUPT_SIZE = tuple(x for x in CORRUPT if x != 0.0)


def _chain(ts: int, price: float, strikes: np.ndarray, iv: float) -> OptionChainSnapshot:
    n = len(strikes)
    return OptionChainSnapshot(
        instrument_id=InstrumentId.from_str(ES),
        underlying_price=price,
        expiries_ns=np.full(2 * n, float(ts + 20 * 1440 * MIN)),
        strikes=np.concatenate([strikes, strikes]),
        rights=np.concatenate([np.ones(n), -np.ones(n)]),
        implied_vols=np.full(2 * n, iv),
        deltas=np.full(2 * n, np.nan),
        gammas=np.full(2 * n, np.nan),
        open_interest=np.full(2 * n, 1000.0),
        volumes=np.full(2 * n, 10.0),
        ts_event=ts,
        ts_init=ts,
    )


def _streams(draw) -> tuple[list[tuple], list[tuple], int]:
    """A clean stream, the same stream with corrupt events mixed in, and how many were corrupt."""
    clean: list[tuple] = []
    dirty: list[tuple] = []
    corrupt = 0
    price = 6800.0
    bad = st.sampled_from(CORRUPT)
    bad_size = st.sampled_from(CORRUPT_SIZE)
    for m in range(draw(st.integers(30, 90), label="minutes")):
        base = T0 + m * MIN
        high = low = open_ = price
        volume = 0.0
        for off in sorted(draw(st.lists(st.integers(1, MIN - 1), max_size=5), label="offsets")):
            price = max(100.0, price + 0.25 * draw(st.integers(-3, 3)))
            kind = draw(st.sampled_from(["quote", "trade", "depth"]))
            if kind == "quote":
                event = ("quote", base + off, price - 0.25, price, float(draw(st.integers(0, 300))), 20.0)
                clean.append(event)
                dirty.append(event)
                if draw(st.booleans()):  # a corrupt quote right after: a bad field, or crossed
                    field = draw(st.integers(2, 6))
                    wrong = list(event)
                    if field == 6:
                        wrong[2], wrong[3] = price, price - 1.0
                    else:
                        wrong[field] = draw(bad if field < 4 else bad_size)
                    dirty.append(tuple(wrong))
                    corrupt += 1
            elif kind == "trade":
                size = float(draw(st.integers(1, 40)))
                event = ("trade", base + off, price, size, draw(st.sampled_from([0, 1, 2])))
                clean.append(event)
                dirty.append(event)
                volume += size
                if draw(st.booleans()):
                    wrong = list(event)
                    wrong[draw(st.integers(2, 3))] = draw(bad)
                    dirty.append(tuple(wrong))
                    corrupt += 1
            else:
                levels = [(price - 0.25 * (i + 1), float(10 + i)) for i in range(draw(st.integers(1, 10)))]
                asks = [(price + 0.25 * i, float(12 + i)) for i in range(len(levels))]
                clean.append(("depth", base + off, levels, asks))
                noisy = list(levels)
                if draw(st.booleans()):  # a level with a corrupt price or size inside the snapshot
                    noisy.insert(
                        draw(st.integers(0, len(noisy))),
                        (draw(bad), 5.0) if draw(st.booleans()) else (price, draw(bad_size)),
                    )
                    corrupt += 1
                dirty.append(("depth", base + off, noisy, asks))
            high, low = max(high, price), min(low, price)
        bar = BarInput(base + MIN, base + MIN, open_, high, low, price, volume)
        if draw(st.booleans()):  # a corrupt bar before the real one, or the previous bar again (out of order)
            if m > 0 and draw(st.booleans()):
                dirty.append(("bar", base, BarInput(base, base, open_, high, low, open_, 1.0)))
            else:
                field = draw(st.sampled_from(["open", "high", "low", "close", "volume"]))
                values = {"open": open_, "high": high, "low": low, "close": price, "volume": volume}
                values[field] = draw(bad_size if field == "volume" else bad)
                dirty.append(("bar", base + MIN, BarInput(base + MIN, base + MIN, **values)))
            corrupt += 1
        clean.append(("bar", base + MIN, bar))
        dirty.append(("bar", base + MIN, bar))
        for ref, px in ((SPY, price / 10), (VIX, 20.0)):
            if draw(st.integers(0, 4)) == 0:
                event = ("ref", base + MIN, ref, BarInput(base + MIN, base + MIN, px, px + 0.1, px - 0.1, px, 1e5))
                if draw(st.booleans()):
                    dirty.append(("ref", base + MIN, ref, BarInput(base + MIN, base + MIN, px, draw(bad), px, px, 1e5)))
                    corrupt += 1
                clean.append(event)
                dirty.append(event)
        if draw(st.integers(0, 14)) == 0:
            strikes = np.arange(price - 50.0, price + 50.1, 10.0)
            chain = _chain(base + MIN // 3, price, strikes, 0.2)
            clean.append(("chain", base + MIN // 3, chain))
            dirty.append(("chain", base + MIN // 3, _garbage_rows(chain, draw)))
            corrupt += 1
    return clean, dirty, corrupt


def _garbage_rows(chain: OptionChainSnapshot, draw) -> OptionChainSnapshot:
    """The chain with extra rows whose strike is corrupt (they must be ignored entirely)."""
    k = 3
    bad_strikes = np.array([draw(st.sampled_from(CORRUPT)) for _ in range(k)])

    def extend(values: np.ndarray, extra: float) -> np.ndarray:
        return np.concatenate([values, np.full(k, extra)])

    return OptionChainSnapshot(
        instrument_id=chain.instrument_id,
        underlying_price=chain.underlying_price,
        expiries_ns=extend(chain.expiries_ns, float(chain.expiries_ns[0])),
        strikes=np.concatenate([chain.strikes, bad_strikes]),
        rights=extend(chain.rights, 1.0),
        implied_vols=extend(chain.implied_vols, 0.3),
        deltas=extend(chain.deltas, np.nan),
        gammas=extend(chain.gammas, np.nan),
        open_interest=extend(chain.open_interest, 5000.0),
        volumes=extend(chain.volumes, 10.0),
        ts_event=chain.ts_event,
        ts_init=chain.ts_init,
    )


def _replay(events: list[tuple]) -> tuple[dict[int, np.ndarray], FeatureHub, list[str]]:
    hub = FeatureHub(FEATURE_SETS, {"ES": "ES.training"}, MARKETS)
    hub.register(ES, 0.25)
    vectors: dict[int, np.ndarray] = {}
    warnings: list[str] = []
    for event in events:
        kind = event[0]
        if kind == "quote":
            hub.on_quote(ES, *event[1:])
        elif kind == "trade":
            hub.on_trade(ES, *event[1:])
        elif kind == "depth":
            hub.on_depth(ES, *event[1:])
        elif kind == "ref":
            hub.on_reference_bar(event[2], event[3])
        elif kind == "chain":
            hub.on_chain(event[2])
        else:
            values = hub.on_bar(ES, event[2])
            if values is not None:
                assert event[1] not in vectors, "a bar time got two vectors"
                vectors[event[1]] = values.copy()
        warnings.extend(hub.drain_warnings())
    return vectors, hub, warnings


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(data=st.data())
def test_corrupt_events_are_skipped_reported_and_change_nothing(data):
    # Arrange
    clean, dirty, corrupt = _streams(data.draw)
    # Act
    expected, _, _ = _replay(clean)
    got, hub, warnings = _replay(dirty)
    # Assert: the same vectors, bit for bit; every corrupt event reported; no bar failed; no infinity
    assert got.keys() == expected.keys()
    for ts, values in expected.items():
        np.testing.assert_array_equal(got[ts], values)
        assert not np.isinf(values).any()
    assert hub.stats.failed_bars == 0
    assert not [w for w in warnings if "failed" in w]
    reported = [w for w in warnings if "ignored" in w or "skipped" in w or "treated as missing" in w]
    assert len(reported) >= corrupt


def test_chain_arrays_of_different_lengths_leave_options_missing():
    # Arrange: a snapshot whose strike array lost an element
    chain = _chain(T0, 6800.0, np.arange(6750.0, 6851.0, 10.0), 0.2)
    # Act
    out = analyse_chain(
        ts=T0,
        underlying=6800.0,
        expiries_ns=chain.expiries_ns,
        strikes=chain.strikes[:-1],
        rights=chain.rights,
        ivs=chain.implied_vols,
        deltas=chain.deltas,
        gammas=chain.gammas,
        open_interest=chain.open_interest,
        volumes=chain.volumes,
        multiplier=50.0,
        params=OptionsParams(),
    )
    # Assert
    assert out.values == {}
    assert out.warnings == ["chain arrays of different lengths: options features are NaN"]
