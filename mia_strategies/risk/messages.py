"""Messages the risk actor puts on the message bus besides ``RiskState``: alerts and flatten commands.

Both are plain Python objects on nautilus's raw message bus (not custom data: they are not stored
in the catalog). ``ALERT_TOPIC`` carries every halt, reducing, resume and block change, for the
alerting channel and the console; ``FLATTEN_TOPIC`` tells every MIA strategy to cancel its working
orders and close its positions (an actor cannot submit orders itself).
"""

from dataclasses import dataclass


ALERT_TOPIC = "mia.alerts"
FLATTEN_TOPIC = "mia.risk.flatten"


@dataclass(frozen=True)
class RiskAlert:
    """A change of the risk actor's state worth telling a human about.

    ``kind`` is ``halt`` (a kill switch fired, or a persisted halt was restored), ``reducing`` (a
    block or a halt with exposure left), ``lift`` (a halt ended with its trading day), ``resume``
    (trading is active again), ``block`` or ``unblock`` (CVaR or a macro window).
    """

    ts_ns: int
    kind: str
    reason: str
    detail: str
    trading_state: str


@dataclass(frozen=True)
class FlattenCommand:
    """Close everything now, because of ``reason`` (a kill switch, a CVaR breach, a macro window)."""

    ts_ns: int
    reason: str
