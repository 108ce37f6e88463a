"""Real ES data through the CLI: `mia ingest lean` then `mia backtest`, on the shipped slice and the full set."""

import json
import shutil
from pathlib import Path

import pandas as pd
import pytest
from conftest import REPO
from conftest import SHARED_DATA
from conftest import run_mia

from mia_strategies.instruments import active_contract


SLICE = Path(__file__).resolve().parent / "data" / "lean_es"
SHARED_ES = SHARED_DATA / "es_lean_minute" / "minute" / "es"


def _bar_data_config(tmp_path: Path) -> Path:
    """The project config, but trading without trade ticks: Lean minute data has quotes and bars only,
    so the anomaly features (from trade prints) are missing and must not block every entry."""
    folder = tmp_path / "config"
    if not folder.exists():
        shutil.copytree(REPO / "config", folder)
        risk = folder / "risk.yaml"
        text = risk.read_text()
        assert "anomaly_missing: block" in text
        risk.write_text(text.replace("anomaly_missing: block", "anomaly_missing: ignore"))
    return folder / "backtest.yaml"


def _ingest_and_backtest(source: Path, tmp_path: Path, *extra: str) -> tuple[dict, pd.DataFrame, dict]:
    catalog = tmp_path / "catalog"
    ingest = run_mia("ingest", "lean", str(source), "--root", "ES", "--catalog", str(catalog))
    assert ingest.returncode == 0, ingest.stderr
    listing = run_mia("catalog", "ls", "--catalog", str(catalog))
    assert listing.returncode == 0 and "ESH14.GLBX" in listing.stdout, listing.stdout
    out = tmp_path / "run"
    config = _bar_data_config(tmp_path)
    args = ("--catalog", str(catalog), "--instruments", "ES", "--config", str(config), "--out", str(out), *extra)
    result = run_mia("backtest", *args)
    assert result.returncode == 0, result.stderr
    summary = json.loads((out / "summary.json").read_text())
    fills = pd.read_csv(out / "fills.csv", parse_dates=["ts"])
    fills.attrs["positions"] = pd.read_csv(out / "positions.csv")
    run = json.loads((out / "run.json").read_text())
    return summary, fills, run


def _assert_entries_only_in_the_active_contract(positions: pd.DataFrame, markets) -> None:
    """Every position opens in the contract the roll calendar makes active at that moment."""
    assert len(positions) > 0
    for _, position in positions.iterrows():
        opened = pd.Timestamp(position["opened_ts"]).value
        assert position["instrument_id"] == active_contract("ES", opened, markets).instrument_id("GLBX").value


def test_lean_slice_backtests_across_the_december_2013_roll(tmp_path, markets):
    summary, fills, run = _ingest_and_backtest(SLICE, tmp_path)
    assert run["contracts"] == ["ESZ13.GLBX", "ESH14.GLBX"]
    assert summary["decision_bars"] > 2000
    assert summary["trades"] > 0
    assert {r["regime"] for r in summary["per_regime"]} <= {"trend", "range", "defensive", "unknown"}
    assert sum(r["trades"] for r in summary["per_regime"]) == summary["trades"]
    assert set(fills["instrument_id"]) <= {"ESZ13.GLBX", "ESH14.GLBX"}
    assert "ESH14.GLBX" in set(fills["instrument_id"])  # traded after the roll
    # prices are real ES prices of late 2013 on the tick grid
    assert fills["price"].between(1600, 1900).all()
    assert ((fills["price"] * 4) % 1 == 0).all()
    _assert_entries_only_in_the_active_contract(fills.attrs["positions"], markets)


def test_default_risk_file_explains_why_bar_data_cannot_trade(tmp_path):
    catalog = tmp_path / "catalog"
    assert run_mia("ingest", "lean", str(SLICE), "--root", "ES", "--catalog", str(catalog)).returncode == 0
    args = ("--catalog", str(catalog), "--instruments", "ES", "--end", "2013-10-09", "--out", str(tmp_path / "r"))
    result = run_mia("backtest", *args, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    text = " ".join(result.stdout.split())
    assert "ES has no trade ticks" in text and "anomaly_missing" in text
    assert "no regime model for ES" in text  # and it says where the bar-rule regimes come from


@pytest.mark.realdata
def test_full_shared_es_minute_data_backtests(tmp_path, markets):
    if not SHARED_ES.is_dir():
        pytest.skip(f"real data not found at {SHARED_ES} (the shared data folder sits beside the repository)")
    summary, fills, run = _ingest_and_backtest(SHARED_ES, tmp_path, "--start", "2013-10-06", "--end", "2013-12-21")
    assert run["contracts"] == ["ESZ13.GLBX", "ESH14.GLBX"]
    assert summary["trades"] > 10 and summary["days"] >= 10
    _assert_entries_only_in_the_active_contract(fills.attrs["positions"], markets)
    # 2020 on its own: the March 2020 contract
    summary20, fills20, run20 = _ingest_and_backtest_2020(tmp_path)
    assert run20["contracts"] == ["ESH20.GLBX"]
    assert summary20["trades"] > 0 and set(fills20["instrument_id"]) == {"ESH20.GLBX"}


def _ingest_and_backtest_2020(tmp_path: Path):
    catalog = tmp_path / "catalog"  # already filled by the first call
    out = tmp_path / "run2020"
    result = run_mia(
        "backtest",
        *("--catalog", str(catalog), "--instruments", "ES", "--out", str(out)),
        *("--config", str(_bar_data_config(tmp_path))),
        *("--start", "2020-01-05", "--end", "2020-01-07"),
    )
    assert result.returncode == 0, result.stderr
    return (
        json.loads((out / "summary.json").read_text()),
        pd.read_csv(out / "fills.csv"),
        json.loads((out / "run.json").read_text()),
    )
