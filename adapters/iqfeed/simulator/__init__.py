"""A protocol-faithful IQConnect simulator on real sockets, for tests and dry runs.

Written from ``shared/docs/iqfeed-protocol.md`` (not from the project's client) so that any correct
IQFeed client works against it. ``IQFeedSimulator`` listens on the five IQConnect ports; the market
it serves is a seeded random walk, a catalog's history, or a catalog replayed as today's contracts.
``mia iqfeed-sim`` runs it in the foreground; ``SimulatorThread`` runs it beside a ``TradingNode``.
"""

from adapters.iqfeed.simulator.market import GeneratedFeed
from adapters.iqfeed.simulator.market import Market
from adapters.iqfeed.simulator.market import ReplayFeed
from adapters.iqfeed.simulator.market import SymbolSpec
from adapters.iqfeed.simulator.market import Universe
from adapters.iqfeed.simulator.market import default_universe
from adapters.iqfeed.simulator.market import load_catalog_history
from adapters.iqfeed.simulator.runner import SimulatorSource
from adapters.iqfeed.simulator.runner import SimulatorThread
from adapters.iqfeed.simulator.runner import build_simulator
from adapters.iqfeed.simulator.server import IQFeedSimulator
from adapters.iqfeed.simulator.server import SimulatorConfig


__all__ = [
    "GeneratedFeed",
    "IQFeedSimulator",
    "Market",
    "ReplayFeed",
    "SimulatorConfig",
    "SimulatorSource",
    "SimulatorThread",
    "SymbolSpec",
    "Universe",
    "build_simulator",
    "default_universe",
    "load_catalog_history",
]
