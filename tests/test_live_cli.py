"""``mia dtc-sim`` and ``mia live`` as a user runs them (subprocesses), including the dry run end to end."""

import asyncio
import json
import socket
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from adapters.sierrachart.client import DtcClient
from adapters.sierrachart.constants import MessageType
from tests.conftest import REPO
from tests.conftest import run_mia


class _Quiet:
    def on_message(self, message: object) -> None:
        return None

    async def on_connected(self, info: object, reconnected: bool) -> None:
        return None

    def on_disconnected(self, reason: str) -> None:
        return None

    def on_fatal(self, reason: str) -> None:
        return None


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_dtc_sim_prints_its_port_serves_clients_and_stops_cleanly() -> None:
    process = subprocess.Popen(
        [sys.executable, "-m", "mia_strategies.cli", "dtc-sim", "--port", "0", "--duration", "4"],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        port = 0
        deadline = time.monotonic() + 20
        lines = []
        while not port and time.monotonic() < deadline:
            line = process.stdout.readline()  # type: ignore[union-attr]
            lines.append(line)
            if line.startswith("port: "):
                port = int(line.split()[1])
        assert port, "".join(lines)

        async def talk() -> list[str]:
            client = DtcClient("127.0.0.1", port, _Quiet(), connect_timeout_secs=5)
            info = await client.connect()
            assert info.trading_supported
            accounts = await client.request(
                {"Type": MessageType.TRADE_ACCOUNTS_REQUEST}, responses=(MessageType.TRADE_ACCOUNT_RESPONSE,)
            )
            await client.close()
            return [m.text("TradeAccount") for m in accounts]

        assert asyncio.run(asyncio.wait_for(talk(), 10)) == ["Sim1", "Sim2"]
        output, _ = process.communicate(timeout=20)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 0
    assert "stopping after" in output and "1 logons" in output


def _mia_in_process(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str]:
    """Run the ``mia`` entry point in this process (fast for one-line error paths); exit code and stderr."""
    from mia_strategies.cli import main

    argv = sys.argv
    sys.argv = ["mia", *args]
    try:
        main()
        code = 0
    except SystemExit as exc:
        code = int(exc.code or 0)
    finally:
        sys.argv = argv
    return code, capsys.readouterr().err


def test_live_refuses_bad_combinations_and_missing_servers_in_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, err = _mia_in_process(capsys, "live", "--dry-run", "--live", "--out", str(tmp_path / "a"))
    assert code == 2 and "drop --live" in err and "Traceback" not in err
    port = _free_port()
    code, err = _mia_in_process(capsys, "live", "--dtc", f"127.0.0.1:{port}", "--out", str(tmp_path / "b"))
    assert code == 2 and f"no Sierra Chart DTC server at 127.0.0.1:{port}" in err and len(err.strip().splitlines()) == 1
    code, err = _mia_in_process(capsys, "live", "--bar-spec", "5-HOUR", "--out", str(tmp_path / "c"))
    assert code == 2 and "--bar-spec" in err
    bad = tmp_path / "sierrachart.yaml"
    bad.write_text("port: 11099\ntrade_account: Sim1\nheartbeat_interval_secs: 2\n")
    code, err = _mia_in_process(capsys, "config", "check", str(bad))
    assert code == 2 and "heartbeat_interval_secs" in err
    assert _mia_in_process(capsys, "config", "check", str(REPO / "config" / "sierrachart.yaml"))[0] == 0


def test_live_dry_run_trades_end_to_end_against_both_simulators(tmp_path: Path) -> None:
    config_dir = tmp_path / "config"
    config_dir.mkdir()
    (config_dir / "strategy.yaml").write_text(
        "strategy: atr_breakout\nparams:\n  channel_bars: 4\n  atr_period: 3\n  stop_atr: 1.0\n  target_atr: 1.0\n"
        "  min_breakout_ticks: 0\n  cooldown_bars: 1\n  flat_minutes_before_close: 0\n",
    )
    (config_dir / "sierrachart.yaml").write_text(
        "node:\n"
        "  instruments: [ES]\n"
        f"  markets_file: {REPO / 'config' / 'markets.yaml'}\n"
        "  strategy_file: strategy.yaml\n"
        f"  iqfeed_file: {REPO / 'config' / 'iqfeed.yaml'}\n",
    )
    out = tmp_path / "run"
    result = run_mia(
        "live",
        "--dry-run",
        "--config",
        str(config_dir / "sierrachart.yaml"),
        "--duration",
        "25",
        "--bar-spec",
        "1-SECOND",
        "--sim-rate",
        "40",
        "--out",
        str(out),
        timeout=180,
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "DRY RUN" in result.stdout
    for name in (
        "orders.csv",
        "fills.csv",
        "positions.csv",
        "summary.json",
        "report.html",
        "run.json",
        "sierrachart-orders.jsonl",
    ):
        assert (out / name).exists(), name
    orders = pd.read_csv(out / "orders.csv")
    fills = pd.read_csv(out / "fills.csv")
    assert len(orders) >= 3, result.stdout[-2000:]  # at least one bracket: entry, stop, target
    assert {"entry", "exit:stop", "exit:target"} <= set(orders["tags"].dropna())
    assert len(fills) >= 1 and fills["trade_id"].str.startswith("E").all()
    entries = orders[orders["tags"] == "entry"]
    assert (entries["status"] == "FILLED").any()
    run = json.loads((out / "run.json").read_text())
    assert run["mode"] == "live" and run["sierrachart"]["simulated"] and run["sierrachart"]["account"] == "Sim1"
    assert run["status"] == "stopped"
    state = [json.loads(line) for line in (out / "sierrachart-orders.jsonl").read_text().splitlines()]
    assert any(entry["k"] == "bind" for entry in state)  # server ids were persisted as orders were accepted
