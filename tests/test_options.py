"""Option chains: Lean and CBOE importers, Black's model, and the positioning analytics on real chains."""

import math
from pathlib import Path

import numpy as np
import pytest
from nautilus_trader.model.identifiers import InstrumentId
from nautilus_trader.persistence.catalog import ParquetDataCatalog

from catalog.options import ingest_option_chains
from catalog.options import load_cboe_option_eod
from catalog.options import load_lean_option_universe
from catalog.options import load_lean_option_universes
from catalog.types import OptionChainSnapshot
from mia_strategies.errors import DataValidationError
from mia_strategies.features.options import analyse_chain
from mia_strategies.features.options import black_delta
from mia_strategies.features.options import black_gamma
from mia_strategies.features.options import black_price
from mia_strategies.features.options import implied_vol
from mia_strategies.features.params import OptionsParams


FIXTURES = Path(__file__).resolve().parent / "data" / "features"
SPX = InstrumentId.from_str("SPX.CBOE")
ESH20 = InstrumentId.from_str("ESH20.GLBX")


def _analyse(snap: OptionChainSnapshot, multiplier: float = 100.0, **params):
    return analyse_chain(
        snap.ts_event,
        snap.underlying_price,
        snap.expiries_ns,
        snap.strikes,
        snap.rights,
        snap.implied_vols,
        snap.deltas,
        snap.gammas,
        snap.open_interest,
        snap.volumes,
        multiplier,
        OptionsParams(**params),
    )


def test_black_model_round_trips_and_matches_finite_differences():
    f, k, t = 3200.0, 3150.0, 0.2
    for right in (1, -1):
        for vol in (0.08, 0.2, 0.6):
            price = black_price(f, k, vol, t, right)
            assert implied_vol(price, f, k, t, right) == pytest.approx(vol, abs=1e-8)
    h = 0.01
    vol = 0.2
    numeric_delta = (black_price(f + h, k, vol, t, 1) - black_price(f - h, k, vol, t, 1)) / (2 * h)
    numeric_gamma = (
        black_price(f + h, k, vol, t, 1) - 2 * black_price(f, k, vol, t, 1) + black_price(f - h, k, vol, t, 1)
    ) / h**2
    one = np.array([1.0])
    assert black_delta(one * f, one * k, one * vol, one * t, one)[0] == pytest.approx(numeric_delta, rel=1e-6)
    assert black_gamma(one * f, one * k, one * vol, one * t)[0] == pytest.approx(numeric_gamma, rel=1e-4)
    put_call = black_price(f, k, vol, t, 1) - black_price(f, k, vol, t, -1)
    assert put_call == pytest.approx(f - k)  # parity without discounting
    assert math.isnan(implied_vol(10.0, f, k, t, 1))  # below intrinsic (50): no volatility explains it


def test_lean_index_universe_without_underlying_row_gets_the_parity_forward():
    # Arrange / Act: SPX 2015-12-22 (IV, greeks and open interest, but no underlying row)
    snap = load_lean_option_universe(FIXTURES / "spx_universe" / "20151222.csv", SPX, as_of="close")
    # Assert: SPX closed at 2038.97 that day; put-call parity recovers it within a point
    assert snap.underlying_price == pytest.approx(2038.97, abs=1.0)
    assert snap.source == "lean-universe+parity-underlying"
    assert len(snap.strikes) == 233 and set(np.unique(snap.rights)) == {-1.0, 1.0}
    assert np.isnan(snap.open_interest).sum() > 0  # empty cells stay missing, never zero
    assert snap.ts_event == 1_450_818_900_000_000_000  # 2015-12-22 16:15 ET (as_of="close")


def test_lean_futures_option_universe_solves_iv_and_stamps_next_close():
    snaps = load_lean_option_universes(FIXTURES / "fop_esh20", ESH20)
    assert [s.ts_event for s in snaps] == sorted(s.ts_event for s in snaps)
    # the 2020-01-03 file is known at the next weekday's close: Monday 2020-01-06 16:00 CT
    jan3 = snaps[1]
    assert jan3.ts_event == 1_578_348_000_000_000_000
    assert jan3.underlying_price == 3223.75
    priced = np.isfinite(jan3.implied_vols)
    assert priced.sum() > 40
    assert np.all((jan3.implied_vols[priced] > 0.05) & (jan3.implied_vols[priced] < 0.6))
    assert np.all(np.isnan(jan3.open_interest))  # the files carry no open interest
    assert np.all(np.isfinite(jan3.gammas[priced]))  # greeks derived from the solved IV


def test_cboe_eod_file_imports_like_its_lean_source():
    [cboe] = load_cboe_option_eod(FIXTURES / "cboe" / "spx_eod_20151222.csv", SPX)
    lean = load_lean_option_universe(FIXTURES / "spx_universe" / "20151222.csv", SPX, as_of="close")
    assert cboe.ts_event == 1_450_817_100_000_000_000  # 15:45 ET (20:45 UTC) of the quote date
    np.testing.assert_array_equal(cboe.strikes, lean.strikes)
    np.testing.assert_array_equal(cboe.implied_vols, lean.implied_vols)
    np.testing.assert_array_equal(cboe.gammas, lean.gammas)
    np.testing.assert_array_equal(np.isnan(cboe.open_interest), np.isnan(lean.open_interest))


def test_gamma_exposure_walls_and_max_pain_on_the_real_spx_chain():
    # Arrange
    snap = load_lean_option_universe(FIXTURES / "spx_universe" / "20151222.csv", SPX, as_of="close")
    # Act
    out = _analyse(snap, multiplier=100.0)
    v = out.values
    # Assert against a direct computation from the file's own gammas and open interest
    s = snap.underlying_price
    days = (snap.expiries_ns - snap.ts_event) / 86_400e9
    live = (days > 0) & (days <= 90) & np.isfinite(snap.gammas) & np.isfinite(snap.open_interest)
    exposure = snap.gammas[live] * snap.open_interest[live] * 100 * s * s * 0.01
    calls = snap.rights[live] > 0
    assert v["gex_call"] == pytest.approx(exposure[calls].sum() / 1e6)
    assert v["gex_put"] == pytest.approx(-exposure[~calls].sum() / 1e6)
    assert v["gex"] == pytest.approx(v["gex_call"] + v["gex_put"])
    strikes = snap.strikes[live]
    call_by = {k: exposure[calls & (strikes == k)].sum() for k in np.unique(strikes)}
    assert v["call_wall"] == max(call_by, key=call_by.get)
    assert out.key_strikes and len(out.key_strikes) == 5
    nearest = snap.expiries_ns[live & (snap.rights != 0)].min()
    sel = (snap.expiries_ns == nearest) & np.isfinite(snap.open_interest)
    ks, rs, oi = snap.strikes[sel], snap.rights[sel], snap.open_interest[sel]
    pain = {
        x: (oi[rs > 0] * np.maximum(0, x - ks[rs > 0])).sum() + (oi[rs < 0] * np.maximum(0, ks[rs < 0] - x)).sum()
        for x in np.unique(ks)
    }
    assert v["max_pain_strike"] == min(pain, key=pain.get)
    assert 0.1 < v["call_iv_atm"] < 0.3 and 0.1 < v["put_iv_atm"] < 0.3
    assert v["option_skew"] > 0  # equity-index skew: OTM puts richer than OTM calls
    assert 1900 < v["zero_gamma"] < 2200
    assert -1.0 <= v["net_gamma"] <= 1.0 and v["put_call_oi_ratio"] > 0


def test_chain_without_strikes_near_the_money_leaves_atm_features_nan_and_says_why():
    snap = load_lean_option_universe(FIXTURES / "spx_universe" / "20151222.csv", SPX, as_of="close")
    far = snap.strikes < 1500  # only deep out-of-the-money puts and deep calls remain
    out = analyse_chain(
        snap.ts_event, snap.underlying_price, snap.expiries_ns[far], snap.strikes[far], snap.rights[far],
        snap.implied_vols[far], snap.deltas[far], snap.gammas[far], snap.open_interest[far], snap.volumes[far],
        100.0, OptionsParams(),
    )  # fmt: skip
    assert "call_iv_atm" not in out.values
    assert any("within 5% of the underlying" in w for w in out.warnings)
    missing = analyse_chain(
        snap.ts_event, float("nan"), snap.expiries_ns, snap.strikes, snap.rights, snap.implied_vols,
        snap.deltas, snap.gammas, snap.open_interest, snap.volumes, 100.0, OptionsParams(),
    )  # fmt: skip
    assert missing.values == {} and "underlying price missing" in missing.warnings[0]


def test_chains_round_trip_through_the_catalog(tmp_path):
    snaps = load_lean_option_universes(FIXTURES / "fop_esh20", ESH20)
    assert ingest_option_chains(snaps, tmp_path / "cat") == 4
    back = sorted(
        (getattr(x, "data", x) for x in ParquetDataCatalog(str(tmp_path / "cat")).query(OptionChainSnapshot)),
        key=lambda s: s.ts_init,
    )
    assert len(back) == 4
    np.testing.assert_array_equal(back[2].implied_vols, snaps[2].implied_vols)


def test_bad_option_files_are_one_line_errors(tmp_path):
    bad = tmp_path / "20200102.csv"
    bad.write_text(
        "#expiry,strike,right,open,high,low,close,volume,open_interest\n20200320,3000,X,0,0,0,1,0,\n", encoding="utf-8"
    )
    with pytest.raises(DataValidationError, match="right must be C or P"):
        load_lean_option_universe(bad, ESH20)
    with pytest.raises(DataValidationError, match=r"named YYYYMMDD\.csv"):
        load_lean_option_universe(tmp_path / "chain.csv", ESH20)
    cboe = tmp_path / "eod.csv"
    cboe.write_text("quote_date,strike\n2015-12-22,2000\n", encoding="utf-8")
    with pytest.raises(DataValidationError, match="missing columns expiration, option_type"):
        load_cboe_option_eod(cboe, SPX)
