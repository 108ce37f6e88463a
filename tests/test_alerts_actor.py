"""The alert actor inside a real nautilus BacktestNode, delivering to local SMTP and Telegram servers."""

import email
import json
import math
from pathlib import Path

import msgspec
import pytest
import yaml
from conftest import REPO
from mia_ops_helpers import SmtpServer
from mia_ops_helpers import TelegramServer
from mia_ops_helpers import make_certificate
from nautilus_trader.backtest.node import BacktestNode
from nautilus_trader.model.enums import OrderSide

from mia_strategies.actors.alerts import alert_actor_config
from mia_strategies.actors.alerts import ensemble_balance
from mia_strategies.actors.alerts import slippage_in_ticks
from mia_strategies.actors.alerts import tail_mean
from mia_strategies.backtest import build_run_config
from mia_strategies.backtest import plan_backtest
from mia_strategies.config import BacktestConfig
from mia_strategies.config import FillModelSettings
from mia_strategies.config import VenueSettings


TOKEN = "777:actor-token"
PROVOCATEUR = ("mia_ops_helpers:Provocateur", "mia_ops_helpers:ProvocateurConfig")


def test_tail_mean_and_ensemble_balance_and_slippage():
    assert tail_mean([3, -8, 0, -6, 1, 2, 2.5, 0.5, 1.5, -1], 0.1) == -8
    assert tail_mean([3, -8, 0, -6, 1, 2, 2.5, 0.5, 1.5, -1], 0.2) == -7
    assert math.isnan(tail_mean([], 0.1))
    top, weight, effective = ensemble_balance({"sac": 1, "ppo": 17, "qrdqn": 2})
    assert top == "ppo" and weight == pytest.approx(0.85)
    assert effective == pytest.approx(1 / (0.05**2 + 0.85**2 + 0.1**2))
    assert ensemble_balance({"a": 1, "b": 1})[2] == pytest.approx(2.0)
    assert slippage_in_ticks(OrderSide.BUY, 5000.5, 5000.0, 0.25) == 2
    assert slippage_in_ticks(OrderSide.SELL, 4999.75, 5000.0, 0.25) == 1
    assert slippage_in_ticks(OrderSide.SELL, 5000.25, 5000.0, 0.25) == -1


@pytest.fixture
def servers(tmp_path):
    cert, key = make_certificate(tmp_path)
    with SmtpServer(cert, key) as smtp, TelegramServer(cert, key, TOKEN) as tg:
        yield cert, smtp, tg


def _alerts_yaml(path: Path, cert: Path, smtp_port: int, telegram_url: str) -> Path:
    data = {
        "dedup_window_s": 600,
        "retry": {"attempts": 2, "initial_backoff_s": 0.05, "timeout_s": 5},
        "channels": {
            "telegram": {
                "enabled": True,
                "min_priority": "warning",
                "base_url": telegram_url,
                "chat_id": "1",
                "ca_file": str(cert),
            },
            "email": {
                "enabled": True,
                "min_priority": "error",
                "host": "127.0.0.1",
                "port": smtp_port,
                "username": "alerts",
                "sender": "mia@example.com",
                "recipients": ["ops@example.com"],
                "ca_file": str(cert),
            },
            "log": {"enabled": True, "min_priority": "info"},
        },
        "thresholds": {"slippage_ticks": 1, "tail_loss_limit": 5.0, "ensemble_max_weight": 0.8, "regime_min_bars": 1},
    }
    path.write_text(yaml.safe_dump(data))
    return path


def test_node_events_become_alerts_on_local_servers(roll_week_catalog, servers, tmp_path, monkeypatch):
    cert, smtp, tg = servers
    monkeypatch.setenv("MIA_TELEGRAM_BOT_TOKEN", TOKEN)
    monkeypatch.setenv("MIA_SMTP_PASSWORD", "s3cret")
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    alerts_file = _alerts_yaml(tmp_path / "alerts.yaml", cert, smtp.port, tg.base_url)

    # Monday 8 Dec 2025, 14:00-17:30 CT: an hour of ES trading, the daily close, the evening reopen.
    config = BacktestConfig(
        instruments=["ES"],
        start="2025-12-08T20:00:00Z",
        end="2025-12-08T23:30:00Z",
        venue=VenueSettings(fill_model=FillModelSettings(prob_slippage=1.0)),  # every market order slips a tick
    )
    plan = plan_backtest(config, REPO / "config", catalog=roll_week_catalog, out=tmp_path / "bt")
    plan = type(plan)(**{**plan.__dict__, "strategy_impl": PROVOCATEUR})
    run_config = build_run_config(plan)
    actor = alert_actor_config(run_dir, alerts_file=alerts_file)
    run_config = msgspec.structs.replace(run_config, engine=msgspec.structs.replace(run_config.engine, actors=[actor]))
    node = BacktestNode(configs=[run_config])
    node.build()
    engine = node.get_engine(run_config.id)
    strategy = engine.trader.strategies()[0]
    strategy.risk_engine = engine.kernel.risk_engine
    try:
        node.run()
        positions = engine.trader.generate_positions_report()
        fills = engine.trader.generate_fills_report()
    finally:
        node.dispose()  # stops the actor: the alert manager delivers what is queued, then stops

    texts = tg.texts()
    joined = "\n".join(texts)
    # urgent and error from the bus, the venue, the risk engine and the client state
    assert sum(t.startswith("[URGENT] ES daily loss limit hit") for t in texts) == 1  # the repeat was held back
    assert "limit=2,000 value=2,150" in joined or "limit=2000" in joined
    assert "[ERROR] ESZ25 order rejected by the venue" in joined
    # the engine's own state change is alerted when nobody explained it (bar 14) ...
    assert sum("[URGENT] trading HALTED by the risk engine" in t for t in texts) == 1
    assert sum("[WARNING] trading ACTIVE again (was HALTED)" in t for t in texts) == 1
    # ... and replaced by the risk actor's RiskAlert when it did (bar 20)
    assert "[URGENT] risk HALT: daily_loss\nloss 2,150 > 2,000" in joined
    assert "[WARNING] risk: trading ACTIVE again" in joined
    assert "[ERROR] IQFEED degraded: connection lost" in joined
    # model diagnostics and regimes (warning)
    assert "[WARNING] ESZ25 regime trend -> defensive" in joined
    assert "[WARNING] ESZ25 cvar_loss 0.9 above limit 0.5" in joined
    assert "[WARNING] ESZ25 QR-DQN tail risk: lowest 10% mean -8" in joined
    assert "[WARNING] ESZ25 ensemble dominated by ppo (85%)" in joined
    assert "fill slipped 1.0 ticks" in joined
    # info alerts stay in the log: reconnect and the daily summary
    assert "reconnected" not in joined and "daily P&L" not in joined

    subjects = sorted(email.message_from_bytes(m.content)["Subject"] for m in smtp.messages)
    assert subjects == [
        "[MIA ERROR] ESZ25 order rejected by the venue",
        "[MIA ERROR] IQFEED degraded: connection lost",
        "[MIA URGENT] ES daily loss limit hit",
        "[MIA URGENT] risk HALT: daily_loss",
        "[MIA URGENT] trading HALTED by the risk engine",
    ]

    records = [json.loads(line) for line in (run_dir / "alerts.jsonl").read_text().splitlines()]
    kinds = [r["kind"] for r in records]
    assert [r["title"] for r in records if r["kind"] == "kill_switch"] == [
        "ES daily loss limit hit",
        "risk HALT: daily_loss",
    ]
    assert {"reconnect", "daily_pnl", "regime_change", "slippage", "halt", "resume"} <= set(kinds)
    daily = next(r for r in records if r["kind"] == "daily_pnl")
    realized = sum(float(str(p).split()[0]) for p in positions["realized_pnl"])
    assert daily["fields"]["day"] == "2025-12-08"
    assert daily["fields"]["trades"] == len(positions) == 1
    assert daily["fields"]["pnl"] == pytest.approx(realized, abs=0.01)
    slip = next(r for r in records if r["kind"] == "slippage")
    buy = fills[fills["order_side"].astype(str) == "BUY"].iloc[0]
    assert slip["fields"]["fill_px"] == pytest.approx(float(buy["last_px"]))
    assert slip["fields"]["fill_px"] - slip["fields"]["reference_px"] == pytest.approx(0.25)
    assert slip["fields"]["cost"] == pytest.approx(0.25 * 50)
