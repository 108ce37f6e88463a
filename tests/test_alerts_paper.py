"""A paper run against the IQFeed simulator with the operations actors: alerts reach local SMTP and
Telegram servers, the voice dialogue halts and resumes the node, and the dashboard renders it live.
"""

import email
import json
import re
import tempfile
import threading
import time
from pathlib import Path

import pandas as pd
import pytest
import yaml
from iqfeed_fixtures import client_config
from iqfeed_fixtures import current_ids
from iqfeed_fixtures import simulator_thread
from mia_ops_helpers import SmtpServer
from mia_ops_helpers import TelegramServer
from mia_ops_helpers import make_certificate

from adapters.iqfeed import IQFEED
from adapters.iqfeed import IQFeedLiveDataClientFactory
from adapters.iqfeed.simulator import SimulatorSource
from mia_strategies.actors.alerts import AlertActor
from mia_strategies.actors.alerts import AlertActorConfig
from mia_strategies.backtest import commissions_by_root
from mia_strategies.config import StrategyFile
from mia_strategies.dashboard.app import start_dashboard
from mia_strategies.dashboard.figures import FIGURES
from mia_strategies.live import ClientSpec
from mia_strategies.live import LiveNodeSpec
from mia_strategies.live import build_live_node
from mia_strategies.ops.control import OperatorControlActor
from mia_strategies.ops.control import OperatorControlConfig
from mia_strategies.ops.control import read_snapshot
from mia_strategies.ops.voice import RunFolderBackend
from mia_strategies.ops.voice import VoiceDialogue
from mia_strategies.paper import PaperLiveExecClientFactory
from mia_strategies.paper import PaperSettings


pytestmark = pytest.mark.timeout(240)
TOKEN = "4242:paper-token"
ROUND_TRIPPER = ("iqfeed_fixtures:RoundTripper", "iqfeed_fixtures:RoundTripperConfig")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def _wait(predicate, what: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.1)


def _alerts(out: Path) -> list[dict]:
    path = out / "alerts.jsonl"
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.endswith("}")]


def _alerts_yaml(path: Path, cert: Path, smtp_port: int, telegram: str) -> Path:
    path.write_text(
        yaml.safe_dump(
            {
                "retry": {"attempts": 3, "initial_backoff_s": 0.1, "timeout_s": 5},
                "channels": {
                    "telegram": {"enabled": True, "base_url": telegram, "chat_id": "7", "ca_file": str(cert)},
                    "email": {
                        "enabled": True,
                        "host": "127.0.0.1",
                        "port": smtp_port,
                        "username": "alerts",
                        "sender": "mia@example.com",
                        "recipients": ["desk@example.com"],
                        "ca_file": str(cert),
                    },
                },
                "thresholds": {"stale_data_s": 1.5, "stale_data_in_session_only": False},
            },
        ),
    )
    return path


def _dashboard_view(out: Path) -> dict:
    """Open the live run's dashboard in headless Chromium; return what it shows."""
    from playwright.sync_api import sync_playwright

    server = start_dashboard(out, port=0, refresh_s=1.0)
    try:
        with sync_playwright() as p:
            context = p.chromium.launch_persistent_context(
                tempfile.mkdtemp(prefix="mia-chromium-"),
                executable_path="/usr/bin/chromium",
                args=CHROMIUM_ARGS,
                headless=True,
                viewport={"width": 1500, "height": 1000},
            )
            context.set_default_timeout(60_000)
            page = context.new_page()
            page.goto(server.url)
            for spec in FIGURES:
                page.wait_for_selector(f"#fig-{spec.key} .main-svg")
            page.wait_for_function("() => document.querySelector('#card-trading .card-value')?.innerText === 'HALTED'")
            view = {
                "status": page.inner_text("#status"),
                "trading": page.inner_text("#card-trading .card-value"),
                "equity_points": page.evaluate(
                    "() => document.querySelector('#fig-equity .js-plotly-plot').data[0].y.length",
                ),
                "alert_titles": page.evaluate(
                    "() => { const t = document.querySelector('#fig-alerts .js-plotly-plot').data[0];"
                    " return t.cells.values[t.header.values.indexOf('title')]; }",
                ),
            }
            page.screenshot(path=str(out.parent / "paper-dashboard.png"), full_page=True)
            context.close()
        return view
    finally:
        server.stop()


def test_paper_run_alerts_voice_and_dashboard(markets, tmp_path, monkeypatch):
    monkeypatch.setenv("MIA_TELEGRAM_BOT_TOKEN", TOKEN)
    monkeypatch.setenv("MIA_SMTP_PASSWORD", "s3cret")
    cert, key = make_certificate(tmp_path)
    out = tmp_path / "paper"
    ids = current_ids(markets)
    with (
        SmtpServer(cert, key) as smtp,
        TelegramServer(cert, key, TOKEN) as tg,
        simulator_thread(markets, SimulatorSource(rate=40)) as sim,
    ):
        spec = LiveNodeSpec(
            mode="paper",
            roots=("ES", "MNQ"),
            markets=markets,
            strategy=StrategyFile(),
            data=ClientSpec(IQFEED, IQFeedLiveDataClientFactory, client_config(sim.ports)),
            execution=ClientSpec(
                markets.venue,
                PaperLiveExecClientFactory,
                PaperSettings().exec_config(commissions_by_root(markets), markets.venue),
            ),
            out_dir=out,
            bar_spec="1-SECOND",
            log_level="ERROR",
            strategy_impl=ROUND_TRIPPER,
            strategy_extra={"flat_minutes_before_close": 0},
        )
        run = build_live_node(spec)
        alerts_file = _alerts_yaml(tmp_path / "alerts.yaml", cert, smtp.port, tg.base_url)
        run.node.trader.add_actor(
            AlertActor(
                AlertActorConfig(
                    alerts_file=str(alerts_file),
                    run_dir=str(out),
                    instrument_ids=(ids["ES"].value, ids["MNQ"].value),
                    daily_summary=False,
                ),
            ),
        )
        run.node.trader.add_actor(OperatorControlActor(OperatorControlConfig(run_dir=str(out), poll_s=0.2)))
        seen: dict = {}
        failure: list[BaseException] = []

        def operate() -> None:
            try:
                _wait(lambda: read_snapshot(out).get("status") == "running", "the node's live.json")
                _wait(lambda: (out / "fills.csv").exists() and len(pd.read_csv(out / "fills.csv")) >= 2, "fills")
                sim.stop_listening()  # IQConnect dies: no quotes
                # both markets must be reported before quotes come back: each crosses the threshold at
                # its own last quote, possibly one watchdog check after the other
                watched = {ids["ES"].value, ids["MNQ"].value}

                def both_stale() -> bool:
                    return {a["instrument_id"] for a in _alerts(out) if a["kind"] == "stale_data"} >= watched

                _wait(both_stale, "the stale-data alerts of ES and MNQ", 20)
                sim.resume_listening()  # the IQFeed client reconnects and quotes resume
                _wait(lambda: any("quotes resumed" in a["title"] for a in _alerts(out)), "quotes resumed", 30)
                en = VoiceDialogue(RunFolderBackend(out), "en")
                seen["status"] = en.handle("status").text
                seen["ask"] = en.handle("halt trading").text
                seen["halted"] = en.handle("yes").text
                _wait(lambda: read_snapshot(out).get("trading_state") == "HALTED", "HALTED in live.json")
                _wait(lambda: any(a["kind"] == "halt" for a in _alerts(out)), "the halt alert")
                seen["dashboard"] = _dashboard_view(out)
                fr = VoiceDialogue(RunFolderBackend(out), "fr")
                seen["statut"] = fr.handle("statut").text
                seen["reprise"] = fr.handle("reprends le trading").text
                _wait(lambda: read_snapshot(out).get("trading_state") == "ACTIVE", "ACTIVE again")
                _wait(lambda: any(a["kind"] == "resume" for a in _alerts(out)), "the resume alert")
            except BaseException as err:
                failure.append(err)
            finally:
                run.stop()

        worker = threading.Thread(target=operate, name="operator", daemon=True)
        worker.start()
        run.run(duration_s=200)
        worker.join(timeout=30)
        if failure:
            raise failure[0]

        # the voice dialogue talked to the running node and the node obeyed
        assert seen["status"].startswith("paper node running. Trading is active. Equity plus ")
        assert seen["ask"] == "Halt all trading? Say yes to confirm or no to cancel."
        assert seen["halted"] == "Trading halted."
        assert seen["statut"].startswith("Nœud paper en marche. Le trading est arrêté.")
        assert seen["reprise"] == "Trading repris."
        done = sorted((out / "control" / "done").glob("*.json"))
        answers = [json.loads(p.read_text()) for p in done]
        assert [(a["command"], a["ok"]) for a in answers] == [("halt", True), ("resume", True)]

        # the dashboard rendered the running node's folder
        view = seen["dashboard"]
        assert view["status"].startswith("paper node") and view["trading"] == "HALTED"
        assert view["equity_points"] >= 1
        assert "operator halt (voice)" in view["alert_titles"]
        assert any(re.fullmatch(r"\w+ no quotes for \d+ s", t) for t in view["alert_titles"])

    # alerts reached the local servers: error and urgent by email, warning and above on Telegram
    texts = tg.texts()
    subjects = [email.message_from_bytes(m.content)["Subject"] for m in smtp.messages]
    es = ids["ES"].symbol.value
    assert any(t.startswith(f"[ERROR] {es} no quotes for") for t in texts)
    assert any(s.startswith(f"[MIA ERROR] {es} no quotes for") for s in subjects)
    assert any(t.startswith("[WARNING] operator halt (voice)") for t in texts)
    assert "[MIA URGENT] trading HALTED by the risk engine" in subjects
    assert any(t.startswith("[URGENT] trading HALTED by the risk engine") for t in texts)
    assert any(t.startswith("[WARNING] trading ACTIVE again (was HALTED)") for t in texts)
    records = _alerts(out)
    assert any(r["kind"] == "reconnect" and "quotes resumed" in r["title"] for r in records)  # info: log only
    assert not any("quotes resumed" in t for t in texts)
    assert json.loads((out / "run.json").read_text())["status"] == "stopped"
    assert read_snapshot(out)["status"] == "stopped"
