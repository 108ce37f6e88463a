"""Symbol mapping per Sierra Chart service, DisplayPriceMultiplier scaling and tick rounding, the
persisted server-order-id map, and the DTC client order id limit.
"""

import json
from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import settings
from hypothesis import strategies as st
from nautilus_trader.model.identifiers import InstrumentId

from adapters.sierrachart.codec import DtcMessage
from adapters.sierrachart.providers import SierraChartInstrumentProvider
from adapters.sierrachart.providers import SymbolMapper
from adapters.sierrachart.providers import confirm_definition
from adapters.sierrachart.providers import effective_multiplier
from adapters.sierrachart.state import OrderIdStore
from adapters.sierrachart.state import OrderRecord
from adapters.sierrachart.state import dtc_client_order_id
from mia_strategies.errors import ConfigError
from mia_strategies.instruments import build_futures_contract
from mia_strategies.instruments import parse_contract_symbol


ES = InstrumentId.from_str("ESZ25.GLBX")
MNQ = InstrumentId.from_str("MNQH26.GLBX")


@pytest.mark.parametrize(
    ("template", "es", "mnq"),
    [
        ("denali", "ESZ25-CME", "MNQH26-CME"),
        ("{root}{month}{yy}-CME", "ESZ25-CME", "MNQH26-CME"),
        ("sc_data", "ESZ25_FUT_CME", "MNQH26_FUT_CME"),
        ("{root}{month}{y}_FUT_CME", "ESZ5_FUT_CME", "MNQH6_FUT_CME"),
        ("rithmic", "ESZ5.CME", "MNQH6.CME"),
        ("{root}{month}{yyyy}", "ESZ2025", "MNQH2026"),
    ],
)
def test_symbol_templates_spell_contracts_like_each_service(markets, template: str, es: str, mnq: str) -> None:
    mapper = SymbolMapper(markets, template)
    assert mapper.to_sierra(ES) == es and mapper.to_sierra(MNQ) == mnq
    assert mapper.to_instrument_id(es) == ES and mapper.to_instrument_id("unknown") is None


def test_overrides_and_bad_templates(markets) -> None:
    mapper = SymbolMapper(markets, overrides={"ESZ25.GLBX": "ES 12-25"})
    assert mapper.to_sierra(ES) == "ES 12-25" and mapper.to_instrument_id("ES 12-25") == ES
    with pytest.raises(ConfigError, match="unknown placeholder"):
        SymbolMapper(markets, "{root}{mon}{yy}")
    with pytest.raises(ConfigError, match="must contain"):
        SymbolMapper(markets, "{root}-CME")


def _definition(markets, **fields: object):
    instrument = build_futures_contract(parse_contract_symbol("ESZ25", markets), markets)
    message = DtcMessage(
        {"Type": 507, "Symbol": "ESZ25-CME", "MinPriceIncrement": 0.25, "CurrencyValuePerIncrement": 12.5, **fields}
    )
    return instrument, confirm_definition(instrument, "ESZ25-CME", message)


def test_float32_multiplier_scales_prices_and_rounds_to_the_tick(markets) -> None:
    instrument, definition = _definition(markets, DisplayPriceMultiplier=0.009999999776482582)
    assert definition.display_multiplier == Decimal("0.01")
    assert definition.to_wire(instrument.make_price(4000.50)) == 400050.0
    assert definition.to_price(400050.0) == instrument.make_price(4000.50)
    assert definition.to_price(400049.9999) == instrument.make_price(4000.50)  # rounded to the tick
    assert definition.to_avg_price(400058.3333) == Decimal("4000.5833")  # two digits past the tick
    assert effective_multiplier(None) == 1 and effective_multiplier(0) == 1


@settings(max_examples=200, deadline=None)
@given(
    ticks=st.integers(min_value=1, max_value=4_000_000),
    multiplier=st.sampled_from([1.0, 0.009999999776482582, 0.25, 100.0]),
)
def test_wire_round_trip_is_exact_on_the_tick_grid(markets, ticks: int, multiplier: float) -> None:
    instrument, definition = _definition(markets, DisplayPriceMultiplier=multiplier)
    price = instrument.make_price(ticks * 0.25)
    assert definition.to_price(definition.to_wire(price)) == price


def test_definitions_that_disagree_with_the_contract_are_refused(markets) -> None:
    with pytest.raises(ConfigError, match=r"has tick 0\.5"):
        _definition(markets, MinPriceIncrement=0.5)
    with pytest.raises(ConfigError, match=r"worth 5\.0 per tick"):
        _definition(markets, CurrencyValuePerIncrement=5.0)  # MES-sized: the mapping points at another product
    _, definition = _definition(markets, CurrencyValuePerIncrement=0)  # not reported: accepted
    assert definition.currency_value_per_increment == 12.5


def test_instrument_provider_builds_the_projects_contracts(markets) -> None:
    import asyncio

    provider = SierraChartInstrumentProvider(markets)
    asyncio.run(provider.load_ids_async([ES, MNQ]))
    es = provider.find(ES)
    assert es is not None and es.multiplier == 50 and str(es.price_increment) == "0.25"
    with pytest.raises(ConfigError, match="venue must be GLBX"):
        asyncio.run(provider.load_async(InstrumentId.from_str("ESZ25.XCME")))
    everything = SierraChartInstrumentProvider(markets, roots=["ES"])
    asyncio.run(everything.load_all_async())
    assert [i.id.symbol.value[:2] for i in everything.list_all()] == ["ES"]


@given(st.text(min_size=1, max_size=80))
def test_dtc_client_order_ids_fit_in_31_printable_ascii_characters(value: str) -> None:
    dtc_id = dtc_client_order_id(value)
    assert len(dtc_id) <= 31 and dtc_id.isascii() and dtc_id.isprintable()
    assert dtc_client_order_id(value) == dtc_id  # stable
    if len(value) <= 31 and value.isascii() and value.isprintable():
        assert dtc_id == value


def test_nautilus_ids_pass_through_and_long_ones_are_digested() -> None:
    assert dtc_client_order_id("O-20251121-143000-001-000-12") == "O-20251121-143000-001-000-12"
    long_id = "O-20251121-143000-MIA-LIVE-001-AtrBreakout-000-123456"
    assert dtc_client_order_id(long_id).startswith("N-") and len(dtc_client_order_id(long_id)) == 22


def _record(n: int, ts: int) -> OrderRecord:
    return OrderRecord(
        dtc_client_order_id=f"O-{n}",
        client_order_id=f"O-{n}",
        strategy_id="S-000",
        instrument_id="ESZ25.GLBX",
        order_side="BUY",
        order_type="LIMIT",
        quantity="1",
        time_in_force="GTC",
        price="5000.00",
        ts_submitted=ts,
    )


def test_store_persists_server_ids_and_fills_across_a_restart(tmp_path: Path) -> None:
    import time

    path = tmp_path / "state" / "orders.jsonl"
    now = time.time_ns()
    store = OrderIdStore(path)
    store.record_order(_record(1, now))
    store.bind("O-1", "1001")
    store.bind("O-1", "1004")  # a cancel/replace renumbered it
    store.record_fill("E7", now + 5)
    store.close()
    with path.open("a") as handle:
        handle.write('{"k":"bind","c":"O-1","s":"10')  # a crash mid-line
    reopened = OrderIdStore(path)
    record = reopened.by_server_id("1001")
    assert record is not None and record.client_order_id == "O-1" and record.server_order_id == "1004"
    assert reopened.by_server_id("1004") is record and reopened.by_dtc_id("O-1") is record
    assert reopened.fill_seen("E7") and reopened.last_fill_ns == now + 5
    reopened.close()
    assert all(json.loads(line) for line in path.read_text().splitlines())  # compacted, the torn line gone


def test_store_drops_records_older_than_the_retention(tmp_path: Path) -> None:
    import time

    path = tmp_path / "orders.jsonl"
    store = OrderIdStore(path, retention_days=1)
    store.record_order(_record(1, time.time_ns() - 3 * 86_400 * 10**9))
    store.record_order(_record(2, time.time_ns()))
    store.close()
    reopened = OrderIdStore(path, retention_days=1)
    assert reopened.by_dtc_id("O-1") is None and reopened.by_dtc_id("O-2") is not None
    memory = OrderIdStore(None)
    memory.record_order(_record(3, 0))
    assert memory.by_client_order_id("O-3") is not None
