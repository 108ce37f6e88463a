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


_CHAIN_ARRAYS = (
    "expiries_ns",
    "strikes",
    "rights",
    "implied_vols",
    "deltas",
    "gammas",
    "open_interest",
    "volumes",
)


@customdataclass
class OptionChainSnapshot(Data):
    """An option chain on one underlying at one time, one row per option across aligned arrays.

    ``rights`` is +1 for calls and -1 for puts; ``expiries_ns`` holds expiry times (UTC ns) as
    float64; missing greeks or open interest are NaN, never zero. ``instrument_id`` is the
    underlying (the ES future, or ``SPX.CBOE`` for index options).
    """

    instrument_id: InstrumentId = _DEFAULT_ID
    underlying_price: float = float("nan")
    source: str = ""
    expiries_ns: np.ndarray = dataclasses.field(default_factory=_empty)
    strikes: np.ndarray = dataclasses.field(default_factory=_empty)
    rights: np.ndarray = dataclasses.field(default_factory=_empty)
    implied_vols: np.ndarray = dataclasses.field(default_factory=_empty)
    deltas: np.ndarray = dataclasses.field(default_factory=_empty)
    gammas: np.ndarray = dataclasses.field(default_factory=_empty)
    open_interest: np.ndarray = dataclasses.field(default_factory=_empty)
    volumes: np.ndarray = dataclasses.field(default_factory=_empty)

    def to_dict(self) -> dict[str, Any]:
        """Encode the arrays as bytes for the catalog and the bus."""
        return _encode(self, _CHAIN_ARRAYS)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "OptionChainSnapshot":
        """Decode what ``to_dict`` wrote."""
        return cls(**_decode(data, _CHAIN_ARRAYS))


@customdataclass
class NewsHeadline(Data):
    """One news headline as the feed delivered it; sentiment is computed by the feature pipeline.

    ``instrument_id`` is the instrument the story is filed under (``ESZ25.GLBX`` or a market-wide
    placeholder such as ``NEWS.GLBX``); ``symbols`` lists every symbol the story names.
    """

    instrument_id: InstrumentId = _DEFAULT_ID
    story_id: str = ""
    source: str = ""
    headline: str = ""
    symbols: str = ""

    def to_dict(self) -> dict[str, Any]:
        """Plain fields only."""
        return _encode(self, ())

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "NewsHeadline":
        """Decode what ``to_dict`` wrote."""
        return cls(**_decode(data, ()))


@customdataclass
class MacroEvent(Data):
    """A scheduled macro release (FOMC, CPI, NFP, ...); ``ts_event`` is the release time.

    ``importance`` is 1 (low) to 3 (high); unknown figures are NaN. Published when the calendar is
    loaded, so a strategy knows the time of the next release before it happens.
    """

    instrument_id: InstrumentId = _DEFAULT_ID
    name: str = ""
    country: str = "US"
    importance: int = 1
    actual: float = float("nan")
    forecast: float = float("nan")
    previous: float = float("nan")

    def to_dict(self) -> dict[str, Any]:
        """Plain fields only."""
        return _encode(self, ())

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "MacroEvent":
        """Decode what ``to_dict`` wrote."""
        return cls(**_decode(data, ()))
