"""Configuration of the Sierra Chart execution client (DTC)."""

import os

from nautilus_trader.config import LiveExecClientConfig
from nautilus_trader.config import PositiveFloat
from nautilus_trader.config import PositiveInt

from adapters.sierrachart.constants import DEFAULT_DTC_HOST
from adapters.sierrachart.constants import DEFAULT_DTC_PORT
from adapters.sierrachart.constants import DTC_PASSWORD_ENV
from adapters.sierrachart.constants import DTC_USERNAME_ENV
from adapters.sierrachart.providers import DEFAULT_SYMBOL_TEMPLATE


class SierraChartExecClientConfig(LiveExecClientConfig, frozen=True):
    """
    Configuration for ``SierraChartExecutionClient`` instances.

    Credentials are never part of the configuration: they are read from the environment variables
    named here (only when Sierra Chart's "Require Authentication" is on) and never logged.

    Parameters
    ----------
    host : str, default "127.0.0.1"
        Sierra Chart's DTC server address (keep it on the same machine; see docs/sierrachart.md).
    port : int, default 11099
        Sierra Chart's DTC "Listening Port".
    encoding_mode : str, default "automatic"
        "automatic" sends the binary encoding request first (works with Sierra's Encoding setting
        Automatic or JSON); "json" logs on in JSON directly (Encoding must be JSON).
    trade_account : str, default "Sim1"
        The one trade account this client trades; start-up fails if the server does not list it.
    live : bool, default False
        True when trading real money: the account must not be a simulation account (``Sim*``).
        False requires a simulation account. The two are never mixed.
    username_env, password_env : str
        Environment variables holding the DTC username and password.
    client_name : str, default "mia-nautilus"
        Name shown in Sierra Chart's message log.
    heartbeat_interval_secs : int, default 10
        Heartbeat interval sent at logon; the server is declared gone after twice this.
    connect_attempts : int, default 3
        Attempts at start-up before giving up (with the reconnect backoff between them).
    reconnect_initial_delay_secs, reconnect_max_delay_secs : float
        Exponential backoff between reconnect attempts after a drop.
    reconnect_max_attempts : int, optional
        Give up after this many failed reconnects (``None``: keep trying).
    request_timeout_secs : float, default 20.0
        Time allowed for a request's whole answer.
    symbol_template : str
        Sierra Chart symbol spelling (``{root}{month}{yy}-CME``) or a service name (denali, teton,
        sc_data, sc_data_1digit, rithmic).
    symbol_overrides : dict[str, str], optional
        Literal Sierra symbols for instrument ids (``{"ESZ25.GLBX": "ESZ25-CME"}``).
    markets_file : str, optional
        The markets YAML (contract specs); default: the config folder's ``markets.yaml``.
    commission_per_contract : dict[str, str], optional
        Commission per contract by root, charged on each fill (DTC fills carry none); default:
        ``markets.yaml``'s ``commission_per_contract``, as the backtest charges.
    state_path : str, optional
        File of the persisted server-order-id map and seen fills; ``None`` keeps it in memory.
    state_fsync : bool, default False
        ``fsync`` each state line (durable across power loss, slower).
    reconciliation_lookback_days : int, default 1
        Days of fills requested at start-up to rebuild today's orders.
    cancel_orders_on_stop : bool, default False
        Cancel every working order of this account when the node stops (False keeps the
        protective exits working at Sierra Chart while the node is down).
    """

    host: str = DEFAULT_DTC_HOST
    port: PositiveInt = DEFAULT_DTC_PORT
    encoding_mode: str = "automatic"
    trade_account: str = "Sim1"
    live: bool = False
    username_env: str = DTC_USERNAME_ENV
    password_env: str = DTC_PASSWORD_ENV
    client_name: str = "mia-nautilus"
    heartbeat_interval_secs: PositiveInt = 10
    connect_attempts: PositiveInt = 3
    reconnect_initial_delay_secs: PositiveFloat = 0.5
    reconnect_max_delay_secs: PositiveFloat = 30.0
    reconnect_max_attempts: PositiveInt | None = None
    request_timeout_secs: PositiveFloat = 20.0
    symbol_template: str = DEFAULT_SYMBOL_TEMPLATE
    symbol_overrides: dict[str, str] | None = None
    markets_file: str | None = None
    commission_per_contract: dict[str, str] | None = None
    state_path: str | None = None
    state_fsync: bool = False
    reconciliation_lookback_days: PositiveInt = 1
    cancel_orders_on_stop: bool = False

    def credentials(self) -> tuple[str, str]:
        """The DTC username and password from the environment (empty when unset)."""
        return os.environ.get(self.username_env, ""), os.environ.get(self.password_env, "")
