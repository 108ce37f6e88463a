"""`mia report RUN_DIR`: the dashboard's figures as PNG and HTML in RUN_DIR/figures/<market>/."""

import json
import struct
from pathlib import Path

import pandas as pd
import pytest
from conftest import REPO
from conftest import run_mia
from mia_ops_helpers import enrich_run

from mia_strategies.backtest import plan_backtest
from mia_strategies.backtest import run_backtest
from mia_strategies.config import BacktestConfig
from mia_strategies.dashboard.figures import FIGURES


pytestmark = pytest.mark.skipif(not Path("/usr/bin/chromium").exists(), reason="kaleido needs Debian's chromium")


def _png_size(path: Path) -> tuple[int, int]:
    header = path.read_bytes()[:24]
    assert header[:8] == b"\x89PNG\r\n\x1a\n"
    return struct.unpack(">II", header[16:24])


def _plot_data(html: str) -> list[dict]:
    """The traces plotly embedded in a figure's HTML page."""
    start = html.index("Plotly.newPlot(")
    body = html[start:]
    first = body.index("[")
    data, _ = json.JSONDecoder().raw_decode(body[first:])
    return data


def test_report_writes_png_and_html_per_market(roll_week_catalog, tmp_path):
    run = tmp_path / "run"
    config = BacktestConfig(start="2025-12-08T00:00:00Z", end="2025-12-09T00:00:00Z")
    run_backtest(plan_backtest(config, REPO / "config", catalog=roll_week_catalog, out=run))
    enrich_run(run)

    result = run_mia("report", str(run), "--market", "ES", timeout=300)
    assert result.returncode == 0, result.stderr + result.stdout
    figures = run / "figures"
    assert sorted(p.name for p in figures.iterdir()) == ["ES", "portfolio"]
    for folder in ("portfolio", "ES"):
        for spec in FIGURES:
            png = figures / folder / f"{spec.key}.png"
            width, height = _png_size(png)
            assert width == 1200 and height >= 100, (png, height)
            assert png.stat().st_size > 5_000
            assert (figures / folder / f"{spec.key}.html").stat().st_size > 1_000
        assert (figures / folder / "plotly.min.js").exists()  # pages open offline
        index = (figures / folder / "index.html").read_text()
        assert all(f"{spec.key}.png" in index for spec in FIGURES)
    assert f"{2 * len(FIGURES)} figures (PNG and HTML) for portfolio, ES" in result.stdout

    # the HTML figures carry the run's numbers
    trades = pd.read_csv(run / "positions.csv")
    es = trades[trades["root"] == "ES"]
    (bars,) = _plot_data((figures / "ES" / "pnl_instrument.html").read_text())
    assert bars["x"] == ["ESZ25.GLBX"] and bars["y"][0] == pytest.approx(es["realized_pnl"].sum())
    equity = pd.read_csv(run / "equity.csv")
    curve = _plot_data((figures / "portfolio" / "equity.html").read_text())[0]
    assert curve["y"] == pytest.approx(equity["equity"].tolist())
    regime = _plot_data((figures / "ES" / "pnl_regime.html").read_text())[0]
    assert dict(zip(regime["x"], regime["y"], strict=True)) == pytest.approx(
        es.groupby("regime")["realized_pnl"].sum().to_dict()
    )

    # a second export replaces the first completely (no stale market folder survives)
    (figures / "stale.txt").write_text("old")
    again = run_mia("report", str(run), "--market", "ES", "--html-only", timeout=300)
    assert again.returncode == 0, again.stderr
    assert f"{2 * len(FIGURES)} HTML figures" in again.stdout
    assert not (figures / "stale.txt").exists() and not (figures / "ES" / "equity.png").exists()
    assert not [p for p in run.iterdir() if p.name.startswith(".figures-")]


def test_report_of_a_missing_folder_is_one_line(tmp_path):
    result = run_mia("report", str(tmp_path / "nope"), timeout=120)
    assert result.returncode == 2
    assert result.stderr.strip().count("\n") == 0 and "not a run folder" in result.stderr
