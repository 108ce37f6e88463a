"""IQFeedInstrumentProvider: IQFeed symbols to the project's contracts, VIX and SPY, from fundamentals."""

import asyncio
import dataclasses
import datetime as dt

import pandas as pd
import pytest
from nautilus_trader.config import InstrumentProviderConfig
from nautilus_trader.model.identifiers import InstrumentId
from nautilus_trader.model.instruments import Equity
from nautilus_trader.model.instruments import FuturesContract
from nautilus_trader.model.instruments import IndexInstrument

from adapters.iqfeed.client import ConnectionOptions
from adapters.iqfeed.client import Level1Client
from adapters.iqfeed.client import Level1Handlers
from adapters.iqfeed.constants import LEVEL1_UPDATE_FIELDS
from adapters.iqfeed.providers import IQFeedInstrumentProvider
from adapters.iqfeed.providers import instrument_id_from_symbol
from adapters.iqfeed.providers import iqfeed_symbol
from adapters.iqfeed.simulator import SimulatorSource
from adapters.iqfeed.simulator import build_simulator
from mia_strategies.errors import ConfigError
from mia_strategies.instruments import ContractRef
from mia_strategies.instruments import active_contract
from mia_strategies.instruments import build_futures_contract


pytestmark = pytest.mark.timeout(60)


def test_symbols_map_both_ways(markets):
    assert iqfeed_symbol("ESZ25.GLBX", markets) == "@ESZ25"
    assert iqfeed_symbol(InstrumentId.from_str("MNQH26.GLBX"), markets) == "@MNQH26"
    assert iqfeed_symbol("SPY.ARCA", markets) == "SPY" and iqfeed_symbol("VIX.CBOE", markets) == "VIX.XO"
    assert instrument_id_from_symbol("@MNQZ25", markets).value == "MNQZ25.GLBX"
    assert instrument_id_from_symbol("VIX.XO", markets).value == "VIX.CBOE"
    with pytest.raises(ConfigError, match="continuous"):
        instrument_id_from_symbol("@ES#", markets)
    with pytest.raises(ConfigError):
        iqfeed_symbol("ESZ5.GLBX", markets)


def _provider(markets, **kwargs) -> IQFeedInstrumentProvider:
    return IQFeedInstrumentProvider(markets, fundamentals_timeout=2.0, **kwargs)


def test_without_a_feed_the_roll_calendar_defines_the_contracts(markets):
    now = pd.Timestamp("2025-12-05", tz="UTC").value
    provider = _provider(markets, config=InstrumentProviderConfig(load_all=True), clock=lambda: now)
    asyncio.run(provider.initialize())
    ids = sorted(i.id.value for i in provider.list_all())
    assert ids == ["ESH26.GLBX", "ESZ25.GLBX", "MNQH26.GLBX", "MNQZ25.GLBX", "SPY.ARCA", "VIX.CBOE"]
    es = provider.find(InstrumentId.from_str("ESZ25.GLBX"))
    assert es == build_futures_contract(ContractRef(2025, 12, "ES"), markets)
    assert isinstance(provider.find(InstrumentId.from_str("VIX.CBOE")), IndexInstrument)
    assert isinstance(provider.find(InstrumentId.from_str("SPY.ARCA")), Equity)


def test_fundamentals_resolve_the_continuous_symbol_and_override_the_expiry(markets):
    async def body() -> None:
        sim = build_simulator(markets, SimulatorSource(rate=0))
        await sim.start()
        try:
            active = active_contract("ES", sim.market.clock(), markets)
            symbol = f"@{active.symbol}"
            spec = sim.market.universe.specs[symbol]
            moved = spec.expiration - dt.timedelta(days=1)  # IQFeed says the day before
            sim.market.universe.add(dataclasses.replace(spec, expiration=moved))
            level1 = Level1Client(
                "127.0.0.1",
                sim.ports["level1"],
                Level1Handlers(update=lambda f: None),
                LEVEL1_UPDATE_FIELDS,
                ConnectionOptions(handshake_timeout=2.0),
            )
            await level1.start()
            provider = _provider(markets)
            provider.attach(level1)
            resolved = await provider.resolve_continuous("@ES#")
            assert resolved == active.instrument_id(markets.venue)
            contract = provider.find(resolved)
            assert isinstance(contract, FuturesContract) and contract.multiplier.as_double() == 50
            assert pd.Timestamp(contract.expiration_ns, tz="UTC").tz_convert("America/New_York") == pd.Timestamp(
                dt.datetime.combine(moved, dt.time(9, 30)), tz="America/New_York"
            )
            assert provider.instrument_id_of("@ES#") == resolved
            # an unknown symbol falls back to the calendar instead of failing the load
            await provider.load_async(InstrumentId.from_str("ESZ30.GLBX"))
            assert provider.find(InstrumentId.from_str("ESZ30.GLBX")) == build_futures_contract(
                ContractRef(2030, 12, "ES"), markets
            )
            commands = [line for port, line in sim.commands if port == "level1"]
            assert "w@ES#" in commands and "r@ES#" in commands  # watched only to read the fundamentals
            await level1.stop()
        finally:
            await sim.close()

    asyncio.run(body())


def test_a_foreign_venue_is_refused(markets):
    with pytest.raises(ConfigError, match="GLBX"):
        asyncio.run(_provider(markets).load_async(InstrumentId.from_str("ESZ25.XCME")))
