"""Checks that must pass before the adapter trades: right server, right account, right kind of money.

A live order sent to a simulation account, or a test order sent to a funded account, is the costly
mistake here, so the adapter refuses to start unless the account is the configured one, the server
allows trading, the account is not disabled, and its kind (``Sim1``... are Sierra Chart's
simulation accounts) matches what was asked (``--live`` or not).
"""

import re
from collections.abc import Iterable

from adapters.sierrachart.client import LogonInfo
from mia_strategies.errors import MiaError


_SIM_ACCOUNT = re.compile(r"^sim\d*$", re.IGNORECASE)


class SierraChartSafetyError(MiaError):
    """The adapter refuses to trade; the message says which setting to fix."""


def is_simulation_account(account: str) -> bool:
    """Sierra Chart's simulation accounts are ``Sim1``, ``Sim2``, ... (set by "Number of Simulation Accounts")."""
    return bool(_SIM_ACCOUNT.match(account.strip()))


def check_trading_supported(info: LogonInfo) -> None:
    """The server must allow trading (Sierra's "Allow Trading" setting turns these flags on)."""
    if not info.trading_supported:
        raise SierraChartSafetyError(
            "Sierra Chart's DTC server reports trading is not supported: turn on Global Settings >> Sierra Chart "
            "Server Settings >> DTC Protocol Server >> Allow Trading, then restart the node",
        )


def check_account_kind(account: str, live: bool) -> None:
    """``--live`` needs a funded account; without it only a simulation account is allowed."""
    simulated = is_simulation_account(account)
    if live and simulated:
        raise SierraChartSafetyError(
            f"trade account {account!r} is a Sierra Chart simulation account but --live was asked: "
            "configure the broker account for live trading, or drop --live",
        )
    if not live and not simulated:
        raise SierraChartSafetyError(
            f"trade account {account!r} is not a simulation account (Sim1, Sim2, ...): pass --live to trade it "
            "with real money, or configure a simulation account",
        )


def check_trade_account(account: str, listed: Iterable[tuple[str, bool]], live: bool) -> None:
    """The configured account must be listed by the server and not trading-disabled."""
    accounts = dict(listed)
    if account not in accounts:
        names = ", ".join(sorted(a for a in accounts if a)) or "none"
        raise SierraChartSafetyError(
            f"trade account {account!r} is not offered by the DTC server (it lists: {names}): "
            "set trade_account in config/sierrachart.yaml to one of them",
        )
    if accounts[account]:
        raise SierraChartSafetyError(f"trade account {account!r} is trading-disabled at Sierra Chart: enable it first")
    check_account_kind(account, live)
