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
