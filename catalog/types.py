"""Custom nautilus data types shared by actors, strategies, the catalog and research.

Defined once here, written to the catalog by ingestion or offline builds, and published live by
actors with the timestamps of the bar they come from. No ``from __future__ import annotations`` in
this module: ``@customdataclass`` reads the annotations as real types.

Array fields are float64 vectors stored as raw little-endian bytes in the catalog (nautilus maps
``ndarray`` to an Arrow binary column but does not encode it); ``to_dict``/``from_dict`` below do the
encoding so the types round-trip through ``ParquetDataCatalog`` and the message bus alike.
"""

import dataclasses
from typing import Any

import numpy as np
from nautilus_trader.core.data import Data
from nautilus_trader.model.custom import customdataclass
from nautilus_trader.model.identifiers import InstrumentId


_DEFAULT_ID = InstrumentId.from_str("ESZ25.GLBX")


def _empty() -> np.ndarray:
    return np.zeros(0, dtype=np.float64)


def _encode(data: Any, array_fields: tuple[str, ...]) -> dict[str, Any]:
    result = {attr: getattr(data, attr) for attr in type(data).__annotations__}
    result["instrument_id"] = data.instrument_id.value
    for name in array_fields:
        result[name] = np.ascontiguousarray(result[name], dtype="<f8").tobytes()
    result["type"] = type(data).__name__
    result["ts_event"] = data.ts_event
    result["ts_init"] = data.ts_init
    return result


def _decode(values: dict[str, Any], array_fields: tuple[str, ...]) -> dict[str, Any]:
    values = dict(values)
    values.pop("type", None)
    values["instrument_id"] = InstrumentId.from_str(values["instrument_id"])
    for name in array_fields:
        raw = values.get(name)
        values[name] = np.frombuffer(raw, dtype="<f8").copy() if raw else _empty()
    return values


@customdataclass
class FeatureVector(Data):
    """The features of one instrument at one bar close; NaN marks a feature whose inputs are absent.

    ``feature_set`` names the set in ``config/feature_sets.yaml`` (for example ``ES.training``) whose
    ordered names give the meaning of each value.
    """

    instrument_id: InstrumentId = _DEFAULT_ID
    feature_set: str = ""
    values: np.ndarray = dataclasses.field(default_factory=_empty)

    def to_dict(self) -> dict[str, Any]:
        """Encode the values as bytes for the catalog and the bus."""
        return _encode(self, ("values",))

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "FeatureVector":
        """Decode what ``to_dict`` wrote."""
        return cls(**_decode(data, ("values",)))


@customdataclass
class RegimeState(Data):
    """The regime actor's filtered view after one bar (forward algorithm only, never smoothed).

    ``probabilities`` is the ``hmm_state_distribution`` ordered as ``labels`` (comma-separated, e.g.
    ``trend,range,defensive``); ``transition_matrix`` is row-major, n x n in the same order.
    """

    instrument_id: InstrumentId = _DEFAULT_ID
    regime: str = ""
    labels: str = "trend,range,defensive"
    probabilities: np.ndarray = dataclasses.field(default_factory=_empty)
    confidence: float = 0.0
    bars_in_regime: int = 0
    transition_matrix: np.ndarray = dataclasses.field(default_factory=_empty)
    model_version: str = ""

    def to_dict(self) -> dict[str, Any]:
        """Encode the arrays as bytes for the catalog and the bus."""
        return _encode(self, ("probabilities", "transition_matrix"))

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "RegimeState":
        """Decode what ``to_dict`` wrote."""
        return cls(**_decode(data, ("probabilities", "transition_matrix")))


@customdataclass
class RiskState(Data):
    """What the risk actor allows now for one instrument; published on every change.

    Distances are in price points. ``trading_state`` mirrors nautilus's risk engine
    (``ACTIVE``, ``REDUCING``, ``HALTED``); ``halt_reason`` is empty unless halted or reducing.
    """

    instrument_id: InstrumentId = _DEFAULT_ID
    allowed_contracts: int = 0
    leverage_cap: float = 0.0
    stop_distance: float = 0.0
    target_distance: float = 0.0
    trailing_distance: float = 0.0
    trading_state: str = "ACTIVE"
    halt_reason: str = ""

    def to_dict(self) -> dict[str, Any]:
        """Plain fields only."""
        return _encode(self, ())

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "RiskState":
        """Decode what ``to_dict`` wrote."""
        return cls(**_decode(data, ()))
