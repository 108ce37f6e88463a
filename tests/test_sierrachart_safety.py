"""The adapter refuses to start on the wrong account, a server without trading, a symbol the service
does not know, or a simulation/live mix-up; credentials come from the environment only.
"""

import asyncio

import pytest
from nautilus_trader.model.identifiers import InstrumentId

from adapters.sierrachart.client import LogonInfo
from adapters.sierrachart.config import SierraChartExecClientConfig
from adapters.sierrachart.safety import SierraChartSafetyError
from adapters.sierrachart.safety import check_account_kind
from adapters.sierrachart.safety import check_trade_account
from adapters.sierrachart.safety import check_trading_supported
from adapters.sierrachart.safety import is_simulation_account
from adapters.sierrachart.simulator import DtcSimulator
from adapters.sierrachart.simulator import protocol as p
from tests.sierrachart_helpers import ES
from tests.sierrachart_helpers import run_async
from tests.sierrachart_helpers import sim_config
from tests.sierrachart_helpers import start_rig


@pytest.mark.parametrize(
    ("account", "simulated"),
    [("Sim1", True), ("sim12", True), ("SIM", True), ("Simon", False), ("12345678", False), ("Sim1x", False)],
)
def test_simulation_accounts_are_recognised(account: str, simulated: bool) -> None:
    assert is_simulation_account(account) is simulated


def test_account_kind_must_match_live_flag() -> None:
    check_account_kind("Sim1", live=False)
    check_account_kind("APEX-4521", live=True)
    with pytest.raises(SierraChartSafetyError, match="simulation account but --live"):
        check_account_kind("Sim1", live=True)
    with pytest.raises(SierraChartSafetyError, match="pass --live"):
        check_account_kind("APEX-4521", live=False)


def test_listed_enabled_account_and_trading_flag_are_required() -> None:
    check_trade_account("Sim1", [("Sim1", False), ("Sim2", False)], live=False)
    with pytest.raises(SierraChartSafetyError, match=r"not offered .* Sim1, Sim2"):
        check_trade_account("Sim3", [("Sim1", False), ("Sim2", False)], live=False)
    with pytest.raises(SierraChartSafetyError, match="trading-disabled"):
        check_trade_account("Sim1", [("Sim1", True)], live=False)
    info = LogonInfo("SC", "", 8, False, False, False, False, True, "")
    with pytest.raises(SierraChartSafetyError, match="Allow Trading"):
        check_trading_supported(info)


def _refused(**kwargs: object) -> str:
    """Start a node against the simulator and return the execution client's start-up error."""
    outcome: dict[str, str] = {}
    sim_settings = kwargs.pop("sim", {})
    exec_overrides = kwargs.pop("exec", {})

    async def scenario() -> None:
        async with DtcSimulator(sim_config(**sim_settings)) as sim:  # type: ignore[arg-type]
            rig = await start_rig(sim, exec_overrides=exec_overrides, expect_running=False, timeout_connection=1.0)  # type: ignore[arg-type]
            await rig.wait(lambda: rig.exec_client.startup_error is not None, timeout=10, what="refusal")
            outcome["error"] = rig.exec_client.startup_error or ""
            await asyncio.sleep(0.1)
            assert not sim.received_of(p.SUBMIT_NEW_SINGLE_ORDER)
            assert not rig.node.trader.is_running or not rig.exec_client.is_connected
            await rig.stop()

    run_async(scenario)
    return outcome["error"]


def test_node_refuses_an_account_the_server_does_not_offer() -> None:
    assert "'Sim7' is not offered" in _refused(exec={"trade_account": "Sim7"})


def test_node_refuses_when_the_server_reports_trading_disabled() -> None:
    assert "Allow Trading" in _refused(sim={"allow_trading": False})
    assert "trading-disabled" in _refused(sim={"disabled_accounts": {"Sim1"}})


def test_node_refuses_a_simulation_account_under_live_and_a_funded_one_without() -> None:
    assert "simulation account but --live" in _refused(exec={"live": True})
    assert "pass --live" in _refused(sim={"trade_accounts": ("Sim1", "APEX-1")}, exec={"trade_account": "APEX-1"})


def test_node_refuses_a_symbol_the_service_does_not_know() -> None:
    error = _refused(exec={"symbol_template": "sc_data"})  # the simulator spells ESZ25-CME
    assert "does not know symbol ESZ25_FUT_CME" in error and "symbol_template" in error


def test_credentials_come_from_the_environment_only(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MIA_DTC_USERNAME", "trader")
    monkeypatch.setenv("MIA_DTC_PASSWORD", "s3cret")
    config = SierraChartExecClientConfig()
    assert config.credentials() == ("trader", "s3cret")
    assert "s3cret" not in repr(config) and "s3cret" not in config.json().decode()

    async def scenario() -> None:
        settings = sim_config(require_auth=True, username="trader", password="s3cret")
        async with DtcSimulator(settings) as sim:
            rig = await start_rig(sim)
            assert rig.exec_client.trading_enabled
            await rig.stop()

    run_async(scenario)


def test_instrument_ids_must_be_on_the_projects_venue() -> None:
    assert InstrumentId.from_str(ES).venue.value == "GLBX"
