"""Paper trading: the live node builder with the IQFeed client and the paper sandbox, end to end."""

import json
import os
import signal
import subprocess
import sys
import time
from decimal import Decimal
from pathlib import Path

import pandas as pd
import pytest
from conftest import run_mia
from iqfeed_fixtures import client_config
from iqfeed_fixtures import current_ids
from iqfeed_fixtures import simulator_thread

from adapters.iqfeed import IQFEED
from adapters.iqfeed import IQFeedLiveDataClientFactory
from adapters.iqfeed.simulator import SimulatorSource
from mia_strategies.backtest import commissions_by_root
from mia_strategies.config import StrategyFile
from mia_strategies.errors import ConfigError
from mia_strategies.live import ClientSpec
from mia_strategies.live import LiveNodeSpec
from mia_strategies.live import build_live_node
from mia_strategies.live import plan_slots
from mia_strategies.paper import PaperLiveExecClientFactory
from mia_strategies.paper import PaperSettings
from mia_strategies.results import FILL_COLUMNS
from mia_strategies.results import SUMMARY_KEYS


pytestmark = pytest.mark.timeout(180)
ROUND_TRIPPER = ("iqfeed_fixtures:RoundTripper", "iqfeed_fixtures:RoundTripperConfig")


def _spec(markets, ports, out_dir: Path, **overrides) -> LiveNodeSpec:
    values = {
        "mode": "paper",
        "roots": ("ES", "MNQ"),
        "markets": markets,
        "strategy": StrategyFile(),
        "data": ClientSpec(IQFEED, IQFeedLiveDataClientFactory, client_config(ports)),
        "execution": ClientSpec(
            markets.venue,
            PaperLiveExecClientFactory,
            PaperSettings().exec_config(commissions_by_root(markets), markets.venue),
        ),
        "out_dir": out_dir,
        "bar_spec": "1-SECOND",
        "log_level": "ERROR",
        "strategy_impl": ROUND_TRIPPER,
        "strategy_extra": {"flat_minutes_before_close": 0},
    }
    values.update(overrides)
    return LiveNodeSpec(**values)


def test_plan_slots_hold_the_active_and_the_next_contract(markets):
    now = pd.Timestamp("2025-12-05 15:00", tz="UTC").value  # ESZ25 active; rolls into ESH26 on Dec 11
    slots = plan_slots(("ES", "MNQ"), markets, now, "1-MINUTE")
    assert [s.instrument_id for s in slots] == ["ESZ25.GLBX", "ESH26.GLBX", "MNQZ25.GLBX", "MNQH26.GLBX"]
    assert slots[0].active_from_ns <= now < slots[0].active_to_ns == slots[1].active_from_ns
    assert slots[0].bar_type == "ESZ25.GLBX-1-MINUTE-LAST-INTERNAL"


def test_paper_node_trades_with_per_contract_commissions_and_writes_the_run_folder(markets, tmp_path):
    ids = current_ids(markets)
    out = tmp_path / "paper"
    with simulator_thread(markets, SimulatorSource(rate=40)) as sim:
        run = build_live_node(_spec(markets, sim.ports, out))
        account_id = f"{markets.venue}-001"
        outcome = run.run(duration_s=9.0)

    fills = pd.read_csv(out / "fills.csv")
    assert list(fills.columns) == list(FILL_COLUMNS)
    assert len(fills) >= 2 and set(fills["instrument_id"]) <= {ids["ES"].value, ids["MNQ"].value}
    per_contract = {ids["ES"].value: 2.25, ids["MNQ"].value: 0.62}
    expected = fills["instrument_id"].map(per_contract) * fills["quantity"]
    assert (fills["commission"] - expected).abs().max() < 1e-9, "commissions are not per contract by root"
    orders = pd.read_csv(out / "orders.csv")
    assert {"client_order_id", "status", "tags"} <= set(orders.columns) and len(orders) >= len(fills)
    assert (orders["status"] == "FILLED").sum() == len(fills)
    # brackets rest at the venue: the entry's fill reached the position before its stop and target
    # were released (no reduce-only rejection), and no order filled at a trade print off the quote
    market_moved = ("was in the market", "would have been a TAKER", "already closed")  # latency, not defects
    rejected = orders.loc[orders["status"] == "REJECTED", "reason"].fillna("").tolist()
    assert all(any(reason in text for reason in market_moved) for text in rejected), rejected[:3]
    exits = orders[orders["tags"].isin(["exit:stop", "exit:target"])]
    assert (exits["status"] == "FILLED").sum() >= 1 and exits["status"].isin(["CANCELED", "REJECTED"]).sum() >= 1
    positions = pd.read_csv(out / "positions.csv")
    assert len(positions) == len(outcome.trades) >= 1
    assert (positions["mae"] <= 0).all() and (positions["mfe"] >= 0).all()
    mult = positions["root"].map({"ES": 50.0, "MNQ": 2.0})
    sign = positions["side"].map({"LONG": 1.0, "SHORT": -1.0})
    gross = sign * (positions["avg_px_close"] - positions["avg_px_open"]) * positions["quantity"] * mult
    assert ((gross - positions["commissions"]) - positions["realized_pnl"]).abs().max() < 1e-6
    summary = json.loads((out / "summary.json").read_text())
    assert set(SUMMARY_KEYS) <= set(summary) and summary["trades"] == len(positions)
    assert summary["commissions"] == pytest.approx(fills["commission"].sum())
    info = json.loads((out / "run.json").read_text())
    assert info["mode"] == "paper" and info["status"] == "stopped"
    assert info["contracts"][0] == ids["ES"].value
    assert (out / "report.html").stat().st_size > 1000
    assert account_id.startswith("GLBX")


def test_build_rejects_a_used_folder_and_a_wrongly_named_execution_client(markets, tmp_path):
    used = tmp_path / "used"
    used.mkdir()
    (used / "x").write_text("keep me")
    ports = dict.fromkeys(("level1", "lookup", "depth", "admin", "bars"), 1)
    with pytest.raises(ConfigError, match="not empty"):
        build_live_node(_spec(markets, ports, used))
    wrong = ClientSpec("SANDBOX", PaperLiveExecClientFactory, PaperSettings().exec_config({}, "GLBX"))
    with pytest.raises(ConfigError, match="named after the venue"):
        build_live_node(_spec(markets, ports, tmp_path / "new", execution=wrong))
    assert (used / "x").read_text() == "keep me"


def test_paper_settings_build_the_sandbox_config_with_commissions(markets):
    settings = PaperSettings(starting_balance=Decimal(50_000))
    config = settings.exec_config(commissions_by_root(markets), "GLBX")
    assert config.venue == "GLBX" and config.starting_balances == ["50000 USD"]
    assert config.commissions["ES"] == "2.25" and config.commissions["MNQ"] == "0.62"
    assert config.trade_execution is False and config.book_type == "L1_MBP"


def test_cli_paper_simulate_runs_end_to_end(tmp_path):
    out = tmp_path / "run"
    result = run_mia(
        "paper", "--simulate", "--duration", "6", "--out", str(out), "--log-level", "ERROR", timeout=150, cwd=tmp_path
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert "paper run stopped" in result.stdout and str(out) in result.stdout.replace("\n", "")
    files = ("fills.csv", "orders.csv", "positions.csv", "equity.csv", "summary.json", "report.html", "run.json")
    for name in (*files, "nautilus.log"):
        assert (out / name).exists(), name
    info = json.loads((out / "run.json").read_text())
    assert info["status"] == "stopped" and info["iqfeed"]["simulated"] is True
    # the default strategy's actors ran and asked the data client only for what it serves
    log = (out / "nautilus.log").read_text()
    assert "[ERROR]" not in log, [line for line in log.splitlines() if "[ERROR]" in line][:5]
    assert "SubscribeData(client_id=IQFEED" in log and "OptionChainSnapshot{'instrument_id': 'ES" in log
    assert "RiskActor" in log and "FeatureActor" in log


def test_cli_paper_stops_cleanly_on_sigint(tmp_path):
    out = tmp_path / "run"
    proc = subprocess.Popen(
        [sys.executable, "-m", "mia_strategies.cli", "paper", "--simulate", "--out", str(out), "--log-level", "ERROR"],
        cwd=tmp_path,  # the risk state file (relative to the working folder) stays out of the repository
        env={**os.environ},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.time() + 90
        while time.time() < deadline:
            info = out / "run.json"
            if info.exists() and json.loads(info.read_text()).get("status") == "running":
                break
            time.sleep(0.2)
        else:
            pytest.fail("the paper node never started")
        time.sleep(2.0)
        proc.send_signal(signal.SIGINT)
        stdout, stderr = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 0, stderr[-2000:]
    assert json.loads((out / "run.json").read_text())["status"] == "stopped"
    assert (out / "summary.json").exists() and "paper run stopped" in stdout


def test_cli_paper_without_iqconnect_is_one_line(tmp_path):
    result = run_mia(
        "paper", "--level1-port", "1", "--out", str(tmp_path / "r"), "--duration", "1", timeout=60, cwd=tmp_path
    )
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "no IQConnect at 127.0.0.1:1" in lines[0] and "--simulate" in lines[0]
    assert not (tmp_path / "r").exists()


def test_paper_mia_strategy_feeds_iqfeed_level2_into_the_depth_features(markets, tmp_path):
    # Arrange: the assembled MIA strategy (feature, regime and risk actors) on 1-second bars; the
    # IQFeed client's depth port is on, so the feature actor keeps the L2 book from its deltas
    ids = current_ids(markets)
    out = tmp_path / "paper"
    with simulator_thread(markets, SimulatorSource(rate=40)) as sim:
        spec = _spec(markets, sim.ports, out, strategy_impl=None, strategy_extra={})
        assert spec.data.config.use_depth_port
        run = build_live_node(spec)
        features = next(a for a in run.node.trader.actors() if type(a).__name__ == "FeatureActor")

        # Act
        run.run(duration_s=8.0)

    # Assert: books were built and read at bar closes, and the depth features have values
    hub = features._hub
    assert hub.stats.depth > 0 and hub.stats.bars > 0
    state = hub.instruments[ids["ES"].value]
    values = dict(zip([s.name for s in hub._reg.specs], state.full_vector().tolist(), strict=True))
    assert -1.0 <= values["depth_imbalance_10"] <= 1.0
    assert values["depth_total_10"] > 0.0 and values["depth_slope_bid"] >= 0.0 and values["depth_slope_ask"] >= 0.0
