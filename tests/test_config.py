"""Configuration: shipped files validate, bad values name the file, key and accepted range."""

import subprocess
import sys
from pathlib import Path

import pytest

from mia_strategies.config import BacktestConfig
from mia_strategies.config import MarketsConfig
from mia_strategies.config import StrategyFile
from mia_strategies.config import load_config
from mia_strategies.errors import ConfigError


ROOT = Path(__file__).resolve().parents[1]
CONFIG = ROOT / "config"


@pytest.mark.parametrize(
    ("name", "model"),
    [("markets.yaml", MarketsConfig), ("backtest.yaml", BacktestConfig), ("strategy.yaml", StrategyFile)],
)
def test_shipped_config_files_validate(name, model):
    assert isinstance(load_config(CONFIG / name), model)


def test_shipped_markets_have_true_cme_specs():
    markets = load_config(CONFIG / "markets.yaml")
    assert markets.venue == "GLBX"
    assert {r: s.multiplier for r, s in markets.roots.items()} == {"ES": 50, "MES": 5, "NQ": 20, "MNQ": 2}
    assert all(str(s.tick_size) == "0.25" and s.months == "HMUZ" for s in markets.roots.values())
    assert markets.roll.days_before_expiry == 8


def _write(tmp_path, name, text):
    path = tmp_path / name
    path.write_text(text)
    return path


def test_out_of_range_value_names_file_key_and_range(tmp_path):
    path = _write(tmp_path, "backtest.yaml", "venue:\n  fill_model:\n    prob_slippage: 1.5\n")
    with pytest.raises(ConfigError) as err:
        load_config(path)
    message = str(err.value)
    assert str(path) in message
    assert "venue.fill_model.prob_slippage" in message
    assert "0 <= value <= 1" in message
    assert "1.5" in message
    assert "\n" not in message


def test_nested_dict_value_reports_its_range(tmp_path):
    text = (CONFIG / "markets.yaml").read_text().replace("multiplier: 50", "multiplier: -50")
    path = _write(tmp_path, "markets.yaml", text)
    with pytest.raises(ConfigError, match=r"roots\.ES\.multiplier: .*0 < value <= 1000000; was -50"):
        load_config(path)


def test_margin_maint_above_init_is_rejected(tmp_path):
    text = (CONFIG / "markets.yaml").read_text().replace("margin_maint: 0.055", "margin_maint: 0.5", 1)
    path = _write(tmp_path, "markets.yaml", text)
    with pytest.raises(ConfigError, match="margin_maint must not exceed margin_init"):
        load_config(path)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("roll_policy: sometimes\n", "one of 'roll', 'close'"),
        ("venu: 3\n", "venu: unknown key"),
        ("venue: [1,\n", "fix the YAML syntax"),
        ("- a\n- b\n", "top level must be a mapping"),
        ("start: 2025-12-10\nend: 2025-12-09\n", "end must be after start"),
        ("instruments: []\n", "list at least one root"),
    ],
)
def test_invalid_backtest_files_give_one_line(tmp_path, text, expected):
    path = _write(tmp_path, "backtest.yaml", text)
    with pytest.raises(ConfigError) as err:
        load_config(path)
    assert expected in str(err.value)
    assert str(path) in str(err.value)


def test_unknown_kind_from_name_asks_for_kind(tmp_path):
    path = _write(tmp_path, "whatever.yaml", "a: 1\n")
    with pytest.raises(ConfigError, match="--kind"):
        load_config(path)
    assert isinstance(load_config(_write(tmp_path, "x.yaml", "strategy: atr_breakout\n"), "strategy"), StrategyFile)


def _mia(*args, cwd=ROOT):
    return subprocess.run(
        [sys.executable, "-m", "mia_strategies.cli", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_cli_config_check_ok_and_error(tmp_path):
    ok = _mia("config", "check", "config/backtest.yaml")
    assert ok.returncode == 0, ok.stderr
    assert "ok" in ok.stdout
    bad = _write(tmp_path, "strategy.yaml", "params:\n  stop_atr: 0\n")
    result = _mia("config", "check", str(bad))
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "params.stop_atr" in lines[0] and "0 < value <= 20" in lines[0]
    assert "Traceback" not in result.stderr


def test_cli_config_check_missing_file():
    result = _mia("config", "check", "config/nope.yaml")
    assert result.returncode == 2
    assert "file not found" in result.stderr and "Traceback" not in result.stderr
