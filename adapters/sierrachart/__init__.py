"""Sierra Chart execution adapter over the DTC protocol, and a DTC server simulator for tests and dry runs.

Layout follows nautilus's own adapters: ``config`` (``SierraChartExecClientConfig``), ``constants``
(DTC ids and enums), ``codec`` (JSON over TCP, binary encoding handshake, lenient reader),
``client`` (asyncio DTC connection), ``execution`` (``SierraChartExecutionClient``), ``providers``
(instruments, symbol mapping, price scaling), ``factories`` and ``simulator`` (the fake Sierra Chart).
"""

from adapters.sierrachart.config import SierraChartExecClientConfig
from adapters.sierrachart.constants import SIERRACHART
from adapters.sierrachart.constants import SIERRACHART_VENUE
from adapters.sierrachart.execution import SierraChartExecutionClient
from adapters.sierrachart.factories import SierraChartLiveExecClientFactory
from adapters.sierrachart.providers import SierraChartInstrumentProvider


__all__ = [
    "SIERRACHART",
    "SIERRACHART_VENUE",
    "SierraChartExecClientConfig",
    "SierraChartExecutionClient",
    "SierraChartInstrumentProvider",
    "SierraChartLiveExecClientFactory",
]
