"""risk.yaml and router_config.yaml: the shipped files validate; bad values are one-line errors."""

from pathlib import Path

import pytest
from conftest import REPO
from conftest import run_mia

from mia_strategies.config import load_config
from mia_strategies.errors import ConfigError
from mia_strategies.risk.config import RiskConfig
from mia_strategies.risk.config import RouterConfig
from mia_strategies.risk.config import load_risk
from mia_strategies.risk.config import load_router
from mia_strategies.risk.limits import Breach
from mia_strategies.risk.limits import RiskLedger
from mia_strategies.risk.limits import save_ledger


CONFIG = REPO / "config"


def test_shipped_files_validate_and_match_the_defaults():
    assert load_risk(CONFIG / "risk.yaml") == RiskConfig()
    assert load_router(CONFIG / "router_config.yaml") == RouterConfig()
    risk = RiskConfig()
    assert risk.sizing.kelly_fraction == 0.1 and risk.sizing.orderflow_imbalance_limit == 0.9
    assert risk.leverage["trend"] == 5.0 and risk.leverage["defensive"] == 1.0
    assert risk.exits.stop_atr == 2.0 and risk.exits.trail_atr == {"trend": 1.5}
    assert risk.exits.targets_r == [2.0, 4.0]
    assert risk.cvar.limit == 0.1 and risk.cvar.alpha == 0.95
    assert risk.blocks.bearish_news_below == -0.5
    assert RouterConfig().probability_threshold == 0.65


@pytest.mark.parametrize(
    ("name", "text", "message"),
    [
        ("risk.yaml", "kill_switches:\n  max_daily_loss: -100\n", "kill_switches.max_daily_loss"),
        ("risk.yaml", "kill_switches:\n  max_contracts: {ES: 0}\n", "kill_switches.max_contracts.ES"),
        ("risk.yaml", "exits:\n  min_stop_ticks: 0\n", "inside the spread"),
        ("risk.yaml", "exits:\n  stop_atr: -2\n", "exits.stop_atr"),
        ("risk.yaml", "leverage: {trend: 0.5, range: 1, defensive: 1}\n", "below 1"),
        ("risk.yaml", "leverage: {trend: 5}\n", "every regime"),
        ("risk.yaml", "exits:\n  targets_r: [4, 2]\n", "strictly increasing"),
        ("risk.yaml", "exits:\n  target_fractions: [0.5, 0.6]\n", "add up to 1"),
        ("risk.yaml", "cvar:\n  min_trades: 80\n", "min_trades"),
        ("risk.yaml", "sizing:\n  kelly_fraction: 2\n", "sizing.kelly_fraction"),
        ("risk.yaml", "kill_switches:\n  sticky: [bad_switch]\n", "kill_switches.sticky"),
        ("router_config.yaml", "probability_threshold: 0.4\n", "probability_threshold"),
        ("router_config.yaml", "modes:\n  trend: {providers: [nope]}\n", "every regime"),
        (
            "router_config.yaml",
            "modes:\n  trend: {providers: [nope]}\n  range: {providers: []}\n  defensive: {enabled: false}\n",
            "unknown providers",
        ),
        ("router_config.yaml", "providers:\n  x: {kind: magic}\n", "providers.x"),
    ],
)
def test_bad_values_are_one_line_errors_naming_the_key(tmp_path: Path, name, text, message):
    path = tmp_path / name
    path.write_text(text)
    loader = load_risk if name == "risk.yaml" else load_router
    with pytest.raises(ConfigError) as err:
        loader(path)
    assert message in str(err.value) and str(path) in str(err.value)
    assert "\n" not in str(err.value)


def test_mia_config_check_knows_the_risk_and_router_files(tmp_path):
    ok = run_mia("config", "check", str(CONFIG / "risk.yaml"))
    assert ok.returncode == 0 and "ok" in ok.stdout, ok.stderr
    assert run_mia("config", "check", str(CONFIG / "router_config.yaml")).returncode == 0
    bad = tmp_path / "risk.yaml"
    bad.write_text("leverage: {trend: 0, range: 1, defensive: 1}\n")
    result = run_mia("config", "check", str(bad))
    assert result.returncode == 2
    assert result.stderr.strip().count("\n") == 0 and "leverage" in result.stderr


def _mia(*args: str):
    """Run a ``mia`` command in-process (the one-line error path is tested through the real CLI above)."""
    from typer.testing import CliRunner

    from mia_strategies.cli import app

    return CliRunner().invoke(app, list(args))


def test_mia_risk_commands(tmp_path):
    size = _mia("risk", "size", "--root", "ES", "--price", "6830", "--atr", "2.5", "--probability", "0.7")
    assert size.exit_code == 0, size.output
    assert "ES 1 contracts" in size.output  # 5x trend leverage on $100k allows one $341k ES contract
    state = tmp_path / "state.json"
    status = _mia("risk", "status", "--state", str(state))
    assert status.exit_code == 0 and "nothing halted" in status.output
    refused = _mia("risk", "reset", "--state", str(state))
    assert isinstance(refused.exception, ConfigError) and "--confirm" in str(refused.exception)
    ledger = RiskLedger(trading_day="2025-12-10", day_start_equity=100_000.0, peak_equity=101_000.0)
    ledger.halt(Breach("max_drawdown", "dd 0.2"), 1, sticky=True)
    save_ledger(state, ledger)
    assert "HALTED by max_drawdown" in _mia("risk", "status", "--state", str(state)).output
    reset = _mia("risk", "reset", "--state", str(state), "--confirm")
    assert reset.exit_code == 0 and "cleared max_drawdown" in reset.output
    assert "no halts in force" in _mia("risk", "status", "--state", str(state)).output
    missing = _mia("risk", "events", str(tmp_path / "nope"))
    assert isinstance(missing.exception, ConfigError) and "no such run folder" in str(missing.exception)
    bad_regime = _mia(
        "risk", "size", "--root", "ES", "--price", "1", "--atr", "1", "--probability", "0.7", "--regime", "x"
    )
    assert isinstance(bad_regime.exception, ConfigError)


def test_load_config_by_kind_after_registration():
    assert isinstance(load_config(CONFIG / "risk.yaml", "risk"), RiskConfig)
    assert isinstance(load_config(CONFIG / "router_config.yaml", "router_config"), RouterConfig)
