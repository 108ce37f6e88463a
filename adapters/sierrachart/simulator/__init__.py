"""A DTC server simulator that behaves like Sierra Chart's for everything the execution adapter uses.

Written from the protocol reference (``docs/sierrachart.md`` lists what it covers), not from the
adapter: it listens on real sockets at 127.0.0.1, fills orders against a price feed it is given
(a catalog replay or any callback), and injects the faults a live deployment sees.
"""

from adapters.sierrachart.simulator.config import SimulatorConfig
from adapters.sierrachart.simulator.config import SymbolSpec
from adapters.sierrachart.simulator.config import default_symbols
from adapters.sierrachart.simulator.exchange import SimExchange
from adapters.sierrachart.simulator.exchange import SimFill
from adapters.sierrachart.simulator.exchange import SimOrder
from adapters.sierrachart.simulator.feeds import CatalogReplay
from adapters.sierrachart.simulator.feeds import apply_tick
from adapters.sierrachart.simulator.feeds import load_catalog_ticks
from adapters.sierrachart.simulator.server import DtcSimulator


__all__ = [
    "CatalogReplay",
    "DtcSimulator",
    "SimExchange",
    "SimFill",
    "SimOrder",
    "SimulatorConfig",
    "SymbolSpec",
    "apply_tick",
    "default_symbols",
    "load_catalog_ticks",
]
