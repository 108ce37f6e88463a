"""Custom data types round-trip through the Parquet catalog and bytes with their arrays intact."""

import numpy as np
from nautilus_trader.model.identifiers import InstrumentId
from nautilus_trader.persistence.catalog import ParquetDataCatalog

from catalog.types import FeatureVector
from catalog.types import RegimeState
from catalog.types import RiskState


ES = InstrumentId.from_str("ESZ25.GLBX")


def _unwrap(item):
    return getattr(item, "data", item)


def test_custom_types_round_trip_through_the_catalog(tmp_path):
    vectors = [
        FeatureVector(
            instrument_id=ES, feature_set="ES.training", values=np.array([i, np.nan, -2.5]), ts_event=i, ts_init=i
        )
        for i in range(1, 4)
    ]
    regime = RegimeState(
        instrument_id=ES,
        regime="defensive",
        probabilities=np.array([0.1, 0.2, 0.7]),
        confidence=0.7,
        bars_in_regime=12,
        transition_matrix=np.arange(9, dtype=float),
        model_version="hmm-v3",
        ts_event=10,
        ts_init=10,
    )
    risk = RiskState(
        instrument_id=ES, allowed_contracts=3, leverage_cap=1.0, trading_state="HALTED", halt_reason="daily loss"
    )
    catalog = ParquetDataCatalog(str(tmp_path))
    catalog.write_data(vectors)
    catalog.write_data([regime])
    catalog.write_data([risk])
    back = [_unwrap(x) for x in catalog.query(FeatureVector)]
    assert [v.ts_event for v in back] == [1, 2, 3]
    np.testing.assert_array_equal(back[2].values, vectors[2].values)
    got = _unwrap(catalog.query(RegimeState)[0])
    assert got.regime == "defensive" and got.model_version == "hmm-v3" and got.bars_in_regime == 12
    np.testing.assert_array_equal(got.transition_matrix.reshape(3, 3), np.arange(9.0).reshape(3, 3))
    got_risk = _unwrap(catalog.query(RiskState)[0])
    assert got_risk.trading_state == "HALTED" and got_risk.halt_reason == "daily loss"


def test_bytes_round_trip_keeps_nan():
    vector = FeatureVector(
        instrument_id=ES, feature_set="x", values=np.array([np.nan, 1e-300, 7.0]), ts_event=5, ts_init=6
    )
    back = FeatureVector.from_bytes(vector.to_bytes())
    assert back.ts_event == 5 and back.ts_init == 6 and back.instrument_id == ES
    np.testing.assert_array_equal(back.values, vector.values)


def test_chain_news_and_macro_round_trip(tmp_path):
    from catalog.types import MacroEvent
    from catalog.types import NewsHeadline
    from catalog.types import OptionChainSnapshot

    chain = OptionChainSnapshot(
        instrument_id=ES,
        underlying_price=6850.25,
        source="lean",
        expiries_ns=np.array([1.7e18, 1.7e18]),
        strikes=np.array([6800.0, 6900.0]),
        rights=np.array([1.0, -1.0]),
        implied_vols=np.array([0.15, np.nan]),
        deltas=np.array([0.6, -0.4]),
        gammas=np.array([0.001, 0.002]),
        open_interest=np.array([100.0, np.nan]),
        volumes=np.array([5.0, 7.0]),
        ts_event=1,
        ts_init=1,
    )
    news = NewsHeadline(
        instrument_id=ES, story_id="22581", source="DJN", headline="Fed, holds; rates", symbols="ES,SPY"
    )
    macro = MacroEvent(instrument_id=ES, name="CPI", importance=3, forecast=0.3, ts_event=9, ts_init=2)
    catalog = ParquetDataCatalog(str(tmp_path))
    for item in (chain, news, macro):
        catalog.write_data([item])
    got = _unwrap(catalog.query(OptionChainSnapshot)[0])
    np.testing.assert_array_equal(got.implied_vols, chain.implied_vols)
    np.testing.assert_array_equal(got.rights, chain.rights)
    assert _unwrap(catalog.query(NewsHeadline)[0]).headline == "Fed, holds; rates"
    got_macro = _unwrap(catalog.query(MacroEvent)[0])
    assert got_macro.name == "CPI" and np.isnan(got_macro.actual) and got_macro.ts_event == 9
