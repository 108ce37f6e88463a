"""Contracts, expiries and the roll calendar: true CME specs and a pure active-contract function."""

import datetime as dt
import itertools
from pathlib import Path

import pandas as pd
import pytest
from hypothesis import given
from hypothesis import settings
from hypothesis import strategies as st

from mia_strategies import sessions
from mia_strategies.config import load_markets
from mia_strategies.errors import ConfigError
from mia_strategies.instruments import ContractRef
from mia_strategies.instruments import active_contract
from mia_strategies.instruments import build_futures_contract
from mia_strategies.instruments import contract_windows
from mia_strategies.instruments import expiry_ns
from mia_strategies.instruments import next_contract
from mia_strategies.instruments import parse_contract_symbol
from mia_strategies.instruments import roll_ns
from mia_strategies.instruments import third_friday


MARKETS = load_markets(Path(__file__).resolve().parents[1] / "config" / "markets.yaml")
NS_DAY = 86_400 * 10**9


def _utc(text: str) -> int:
    return pd.Timestamp(text, tz="UTC").value


@pytest.mark.parametrize(
    ("year", "month", "day"),
    [(2025, 12, 19), (2026, 3, 20), (2013, 12, 20), (2014, 3, 21), (2020, 3, 20), (2024, 6, 21)],
)
def test_third_friday_matches_cme_expiry_dates(year, month, day):
    assert third_friday(year, month) == dt.date(year, month, day)


@pytest.mark.parametrize(
    ("symbol", "multiplier"),
    [("ESZ25", 50), ("MESZ25", 5), ("NQH26", 20), ("MNQZ25", 2)],
)
def test_contracts_have_true_specs(symbol, multiplier):
    contract = build_futures_contract(parse_contract_symbol(symbol, MARKETS), MARKETS)
    assert str(contract.id) == f"{symbol}.GLBX"
    assert contract.multiplier.as_double() == multiplier
    assert str(contract.price_increment) == "0.25"
    assert contract.activation_ns < contract.expiration_ns
    spec = MARKETS.root(symbol[:-3])
    assert contract.margin_init == spec.margin_init and contract.margin_maint == spec.margin_maint


def test_expiry_is_0930_eastern_in_utc_with_dst():
    # December (EST, UTC-5) and June (EDT, UTC-4)
    assert expiry_ns(ContractRef(2025, 12, "ES"), MARKETS.root("ES")) == _utc("2025-12-19 14:30")
    assert expiry_ns(ContractRef(2025, 6, "ES"), MARKETS.root("ES")) == _utc("2025-06-20 13:30")


def test_active_contract_rolls_eight_days_before_expiry():
    roll = _utc("2025-12-11 14:30")
    assert active_contract("ES", roll - 1, MARKETS).symbol == "ESZ25"
    assert active_contract("ES", roll, MARKETS).symbol == "ESH26"
    assert active_contract("ES", _utc("2013-10-07"), MARKETS).symbol == "ESZ13"
    assert active_contract("ES", _utc("2013-12-18"), MARKETS).symbol == "ESH14"
    assert active_contract("MNQ", _utc("2020-01-06"), MARKETS).symbol == "MNQH20"


def test_roll_days_are_configurable():
    markets = MARKETS.model_copy(update={"roll": MARKETS.roll.model_copy(update={"days_before_expiry": 1})})
    assert active_contract("ES", _utc("2025-12-15"), markets).symbol == "ESZ25"
    assert active_contract("ES", _utc("2025-12-15"), MARKETS).symbol == "ESH26"


@settings(max_examples=300, deadline=None)
@given(st.integers(min_value=_utc("2000-01-01"), max_value=_utc("2060-01-01")))
def test_active_contract_is_never_past_its_roll_and_is_the_first_such(ts):
    contract = active_contract("ES", ts, MARKETS)
    spec = MARKETS.root("ES")
    assert roll_ns(contract, spec, 8) > ts
    assert expiry_ns(contract, spec) - ts > 8 * NS_DAY - 1
    # the previous listed contract has already rolled
    prev_months = [m for m in (3, 6, 9, 12) if m < contract.month]
    if prev_months:
        prev = ContractRef(contract.year, prev_months[-1], "ES")
    else:
        prev = ContractRef(contract.year - 1, 12, "ES")
    assert roll_ns(prev, spec, 8) <= ts


@settings(max_examples=100, deadline=None)
@given(
    st.integers(min_value=_utc("2010-01-01"), max_value=_utc("2040-01-01")),
    st.integers(min_value=1, max_value=400 * NS_DAY),
)
def test_contract_windows_tile_the_range(start, length):
    windows = contract_windows("MNQ", start, start + length, MARKETS)
    assert windows[0].active_from_ns <= start < windows[0].active_to_ns
    assert windows[-1].active_to_ns > start + length
    for a, b in itertools.pairwise(windows):
        assert a.active_to_ns == b.active_from_ns
        assert next_contract(a.contract, MARKETS.root("MNQ")) == b.contract


@pytest.mark.parametrize("bad", ["ES", "ESZ5", "ESF25", "XXZ25", "ESZ2025", "esz"])
def test_bad_symbols_are_one_line_errors(bad):
    with pytest.raises(ConfigError) as err:
        parse_contract_symbol(bad, MARKETS)
    assert "\n" not in str(err.value)


def test_sessions_halt_and_weekend():
    assert sessions.is_open(_utc("2025-12-08 15:00"))  # Monday 09:00 CT
    assert not sessions.is_open(_utc("2025-12-08 22:30"))  # Monday 16:30 CT halt
    assert sessions.is_open(_utc("2025-12-08 23:00"))  # 17:00 CT reopen, Tuesday's session
    assert not sessions.is_open(_utc("2025-12-13 12:00"))  # Saturday
    assert not sessions.is_open(_utc("2025-12-14 22:59"))  # Sunday 16:59 CT
    assert sessions.is_open(_utc("2025-12-14 23:00"))  # Sunday 17:00 CT open
    assert sessions.trading_day(_utc("2025-12-14 23:00")) == dt.date(2025, 12, 15)
    assert sessions.next_close_ns(_utc("2025-12-12 15:00")) == _utc("2025-12-12 22:00")
    assert sessions.is_rth(_utc("2025-12-08 15:00")) and not sessions.is_rth(_utc("2025-12-08 03:00"))
