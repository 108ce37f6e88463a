"""DTN IQFeed market data for nautilus: Level 1, Level 2, bars, history, option chains, news.

Laid out like nautilus's own adapters: ``config`` (``IQFeedDataClientConfig``), ``constants``
(``IQFEED``, ports), ``parsing`` (wire lines → nautilus objects), ``client`` (the asyncio protocol
client), ``data`` (``IQFeedDataClient``), ``providers`` (``IQFeedInstrumentProvider``),
``factories`` (``IQFeedLiveDataClientFactory``), ``history`` (downloads into the catalog for
``mia ingest iqfeed``) and ``simulator`` (a fake IQConnect on real sockets).
"""

from adapters.iqfeed.config import IQFeedDataClientConfig
from adapters.iqfeed.constants import IQFEED
from adapters.iqfeed.constants import IQFEED_CLIENT_ID
from adapters.iqfeed.data import IQFeedDataClient
from adapters.iqfeed.factories import IQFeedLiveDataClientFactory
from adapters.iqfeed.providers import IQFeedInstrumentProvider


__all__ = [
    "IQFEED",
    "IQFEED_CLIENT_ID",
    "IQFeedDataClient",
    "IQFeedDataClientConfig",
    "IQFeedInstrumentProvider",
    "IQFeedLiveDataClientFactory",
]
