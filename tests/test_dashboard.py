"""`mia dashboard` in headless Chromium: a backtest run folder, the numbers on the charts, live refresh, tokens."""

import json
import re
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

import msgspec
import numpy as np
import pandas as pd
import pytest
from conftest import REPO
from mia_ops_helpers import enrich_run

from mia_strategies.backtest import plan_backtest
from mia_strategies.backtest import run_backtest
from mia_strategies.config import BacktestConfig
from mia_strategies.dashboard.app import resolve_token
from mia_strategies.dashboard.app import start_dashboard
from mia_strategies.dashboard.data import load_run
from mia_strategies.dashboard.data import net_positions
from mia_strategies.dashboard.figures import FIGURES


CHROMIUM = "/usr/bin/chromium"
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
pytestmark = pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="needs Debian's chromium")


@pytest.fixture(scope="module")
def backtest_run(roll_week_catalog, tmp_path_factory) -> Path:
    """A real two-day ES + MNQ backtest, with the files the regime/risk/model actors will add."""
    out = tmp_path_factory.mktemp("dash") / "run"
    config = BacktestConfig(start="2025-12-08T00:00:00Z", end="2025-12-10T00:00:00Z")
    run_backtest(plan_backtest(config, REPO / "config", catalog=roll_week_catalog, out=out))
    plain = out.with_name("plain")
    shutil.copytree(out, plain)  # a run without the optional files
    enrich_run(out)
    return out


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        context = p.chromium.launch_persistent_context(
            tempfile.mkdtemp(prefix="mia-chromium-"),
            executable_path=CHROMIUM,
            args=CHROMIUM_ARGS,
            headless=True,
            viewport={"width": 1500, "height": 1000},
        )
        context.set_default_timeout(60_000)
        yield context
        context.close()


def _open(browser, url: str):
    page = browser.new_page()
    page.goto(url)
    for spec in FIGURES:
        page.wait_for_selector(f"#fig-{spec.key} .main-svg")
    return page


def _data(page, key: str) -> list[dict]:
    return page.evaluate(
        "(key) => document.querySelector(`#fig-${key} .js-plotly-plot`).data.map(t => JSON.parse(JSON.stringify(t)))",
        key,
    )


def _annotations(page, key: str) -> list[str]:
    return page.evaluate(
        "(key) => (document.querySelector(`#fig-${key} .js-plotly-plot`).layout.annotations || []).map(a => a.text)",
        key,
    )


def test_backtest_run_charts_show_the_run_numbers(backtest_run, browser, tmp_path):
    server = start_dashboard(backtest_run, port=0, refresh_s=60)
    try:
        page = _open(browser, server.url)
        equity = pd.read_csv(backtest_run / "equity.csv")
        trades = pd.read_csv(backtest_run / "positions.csv")
        summary = json.loads((backtest_run / "summary.json").read_text())

        eq, dd = _data(page, "equity")
        assert len(eq["y"]) == len(equity)
        assert np.allclose(eq["y"], equity["equity"])
        peak = np.maximum.accumulate(np.concatenate([[summary["starting_balance"]], equity["equity"]]))[1:]
        assert min(dd["y"]) == pytest.approx(-summary["max_drawdown"] * 100, rel=1e-6)
        assert np.allclose(dd["y"], (equity["equity"] / peak - 1) * 100)

        (bars,) = _data(page, "pnl_instrument")
        expected = trades.groupby("instrument_id")["realized_pnl"].sum()
        assert dict(zip(bars["x"], bars["y"], strict=True)) == pytest.approx(expected.to_dict())
        bars, share = _data(page, "pnl_regime")  # from per_regime.csv, which agrees with the trades
        per_regime = pd.read_csv(backtest_run / "per_regime.csv").groupby("regime")[["net_pnl", "bars"]].sum()
        assert dict(zip(bars["x"], bars["y"], strict=True)) == pytest.approx(per_regime["net_pnl"].to_dict())
        expected = trades.groupby("regime")["realized_pnl"].sum()
        assert dict(zip(bars["x"], bars["y"], strict=True)) == pytest.approx(
            expected.reindex(bars["x"]).fillna(0).to_dict()
        )
        time_share = per_regime["bars"] / per_regime["bars"].sum() * 100
        assert dict(zip(share["x"], share["y"], strict=True)) == pytest.approx(time_share.to_dict())

        regimes = pd.read_csv(backtest_run / "regime_states.csv")
        es = regimes[regimes["instrument_id"] == "ESZ25.GLBX"]
        traces = [t for t in _data(page, "regime_probabilities") if t["xaxis"] == "x"]
        assert [t["name"] for t in traces] == ["trend", "range", "defensive"]
        assert np.allclose(traces[2]["y"], [json.loads(p)[2] for p in es["probabilities"]])
        heat = _data(page, "transition_matrix")[0]
        assert np.allclose(np.ravel(heat["z"]), json.loads(es["transition_matrix"].iloc[-1]))

        (shap,) = _data(page, "feature_importance")
        importance = pd.read_csv(backtest_run / "feature_importance.csv").groupby("feature")["importance"].mean()
        assert shap["y"][-1] == importance.idxmax() and shap["x"][-1] == pytest.approx(importance.max())

        metrics = [json.loads(line) for line in (backtest_run / "model_metrics.jsonl").read_text().splitlines()]
        es_metrics = [m for m in metrics if m["instrument_id"] == "ESZ25.GLBX"]
        cvar = next(t for t in _data(page, "cvar") if t["name"] == "qrdqn ESZ25.GLBX")
        assert np.allclose(cvar["y"], [m["cvar_loss"] for m in es_metrics])
        quantiles = next(t for t in _data(page, "quantiles") if t["name"] == "qrdqn ESZ25.GLBX")
        assert np.allclose(quantiles["y"], sorted(es_metrics[-1]["quantiles"]))
        weights = {t["name"]: t["y"] for t in _data(page, "ensemble_weights") if t["xaxis"] == "x"}  # ESZ25
        assert set(weights) == {"sac", "ppo", "qrdqn"}
        assert np.allclose(np.sum([weights[k] for k in weights], axis=0), 1.0)
        first = es_metrics[0]["ensemble_weights"]
        assert weights["ppo"][0] == pytest.approx(first["ppo"] / sum(first.values()))

        risk = next(t for t in _data(page, "risk_state") if t["name"] == "ESZ25.GLBX")
        states = pd.read_json(backtest_run / "risk_states.jsonl", lines=True)
        assert risk["y"] == states[states["instrument_id"] == "ESZ25.GLBX"]["allowed_contracts"].tolist()
        assert "HALTED daily loss limit blocked: cvar" in risk["text"]

        (alerts,) = _data(page, "alerts")
        titles = alerts["cells"]["values"][alerts["header"]["values"].index("title")]
        assert titles[0] == "ESZ25 fill slipped 5.0 ticks" and "ES daily loss limit hit" in titles

        net = page.inner_text("#card-net-pandl .card-value")
        assert net == f"{'-' if summary['net_pnl'] < 0 else ''}${abs(summary['net_pnl']):,.2f}"
        assert page.inner_text("#card-trades .card-value") == f"{summary['trades']:,}"

        shot = tmp_path / "dashboard.png"
        page.screenshot(path=str(shot), full_page=True)
        assert shot.stat().st_size > 100_000
        page.close()
    finally:
        server.stop()


def test_market_selector_shows_one_market(backtest_run, browser):
    server = start_dashboard(backtest_run, port=0, refresh_s=60)
    try:
        page = _open(browser, server.url)
        page.click("#market")
        page.click(".dash-dropdown-option:has(input[value='MNQ'])")
        page.wait_for_function(
            "() => document.querySelector('#fig-pnl_instrument .js-plotly-plot').data[0].x.join() === 'MNQZ25.GLBX'",
        )
        trades = pd.read_csv(backtest_run / "positions.csv")
        mnq = trades[trades["root"] == "MNQ"]
        eq, _ = _data(page, "equity")
        assert eq["y"][-1] == pytest.approx(mnq["realized_pnl"].sum())
        assert [t["xaxis"] for t in _data(page, "regime_probabilities")] == ["x", "x", "x"]
        page.close()
    finally:
        server.stop()


def test_a_plain_backtest_folder_shows_its_own_files_and_says_what_is_missing(backtest_run, browser):
    """The folder ``mia backtest`` writes today: regimes, risk states, per-regime P&L and alerts, no models."""
    plain = backtest_run.with_name("plain")
    server = start_dashboard(plain, port=0, refresh_s=60)
    try:
        page = _open(browser, server.url)
        assert (
            "SHAP feature importance (feature_importance.csv not found)" in _annotations(page, "feature_importance")[0]
        )
        assert "model_metrics.jsonl not found" in _annotations(page, "cvar")[0]
        assert len(_data(page, "equity")[0]["y"]) == len(pd.read_csv(plain / "equity.csv"))

        bars, share = _data(page, "pnl_regime")
        per_regime = pd.read_csv(plain / "per_regime.csv").groupby("regime")[["net_pnl", "bars", "trades"]].sum()
        assert set(bars["x"]) == set(per_regime.index)
        assert dict(zip(bars["x"], bars["y"], strict=True)) == pytest.approx(per_regime["net_pnl"].to_dict())
        untraded = per_regime[per_regime["trades"] == 0].index  # a regime that blocks entries still shows its time
        assert all(dict(zip(share["x"], share["y"], strict=True))[r] > 0 for r in untraded)

        regimes = pd.read_csv(plain / "regime_states.csv")
        es = regimes[regimes["instrument_id"] == "ESZ25.GLBX"]
        traces = [t for t in _data(page, "regime_probabilities") if t["xaxis"] == "x"]
        assert np.allclose(traces[0]["y"], [json.loads(p)[0] for p in es["probabilities"]])

        states = pd.read_json(plain / "risk_states.jsonl", lines=True)
        es_states = states[states["instrument_id"] == "ESZ25.GLBX"]
        risk = next(t for t in _data(page, "risk_state") if t["name"] == "ESZ25.GLBX")
        assert risk["y"] == es_states["allowed_contracts"].tolist()
        first = next(i for i, b in enumerate(es_states["blocks"]) if b)
        assert risk["text"][first].endswith(f"blocked: {', '.join(es_states['blocks'].iloc[first])}")

        alerts = [json.loads(line) for line in (plain / "alerts.jsonl").read_text().splitlines()]
        (table,) = _data(page, "alerts")
        titles = table["cells"]["values"][table["header"]["values"].index("title")]
        assert titles[0] == alerts[-1]["title"]
        page.close()
    finally:
        server.stop()


def test_live_folder_refreshes_on_its_own(backtest_run, browser, tmp_path):
    live = tmp_path / "live"
    shutil.copytree(backtest_run, live)
    (live / "summary.json").unlink()
    (live / "run.json").write_text(json.dumps({"mode": "paper", "status": "running", "instruments": ["ES", "MNQ"]}))
    server = start_dashboard(live, port=0, refresh_s=0.5)
    try:
        page = _open(browser, server.url)
        assert "paper node" in page.inner_text("#status")
        before = len(_data(page, "equity")[0]["y"])
        with (live / "equity.csv").open("a") as handle:
            handle.write("2025-12-10T00:01:00.000000000Z,123456.78\n")
        alert = {
            "ts_event": 1765324860000000000,
            "priority": "error",
            "kind": "disconnect",
            "title": "IQFEED degraded: connection lost",
            "message": "",
            "instrument_id": "",
        }
        with (live / "alerts.jsonl").open("a") as handle:
            handle.write(json.dumps(alert) + "\n")
        page.wait_for_function(
            "(n) => document.querySelector('#fig-equity .js-plotly-plot').data[0].y.length === n + 1",
            arg=before,
            timeout=30_000,
        )
        assert _data(page, "equity")[0]["y"][-1] == pytest.approx(123456.78)
        (alerts,) = _data(page, "alerts")
        assert (
            alerts["cells"]["values"][alerts["header"]["values"].index("title")][0]
            == "IQFEED degraded: connection lost"
        )
        assert page.inner_text("#card-net-pandl .card-value") == "$23,456.78"  # from equity: no summary yet
        page.close()
    finally:
        server.stop()


def test_token_is_required_with_a_token_and_remembered_by_cookie(backtest_run):
    server = start_dashboard(backtest_run, port=0, token="s3cr3t-token")
    base = f"http://127.0.0.1:{server.port}"
    try:
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(f"{base}/_dash-layout", timeout=10)
        assert refused.value.code == 401
        with pytest.raises(urllib.error.HTTPError):
            urllib.request.urlopen(f"{base}/?token=wrong", timeout=10)
        with urllib.request.urlopen(f"{base}/?token=s3cr3t-token", timeout=10) as ok:
            assert ok.status == 200
            cookie = ok.headers["Set-Cookie"]
        assert "mia_dashboard_token=s3cr3t-token" in cookie and "HttpOnly" in cookie
        request = urllib.request.Request(f"{base}/_dash-layout", headers={"Cookie": cookie.split(";")[0]})
        with urllib.request.urlopen(request, timeout=10) as ok:
            assert ok.status == 200
        request = urllib.request.Request(f"{base}/_dash-layout", headers={"Authorization": "Bearer s3cr3t-token"})
        with urllib.request.urlopen(request, timeout=10) as ok:
            assert ok.status == 200
    finally:
        server.stop()
    assert resolve_token("127.0.0.1", None) is None
    assert resolve_token("0.0.0.0", "fixed") == "fixed"
    assert len(resolve_token("0.0.0.0", None) or "") >= 24
    with pytest.raises(ValueError, match="token is required"):
        start_dashboard(backtest_run, host="0.0.0.0", port=0)


def test_cli_bound_off_loopback_prints_a_token_url(backtest_run):
    child = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "mia_strategies.cli",
            "dashboard",
            str(backtest_run),
            "--host",
            "0.0.0.0",
            "--port",
            "0",
        ],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        assert child.stdout is not None
        deadline = time.monotonic() + 60
        url = None
        while url is None:
            assert time.monotonic() < deadline and child.poll() is None, "dashboard did not start"
            match = re.search(r"http://0\.0\.0\.0:(\d+)/\?token=(\S+)", child.stdout.readline())
            if match:
                url = (int(match.group(1)), match.group(2))
        port, token = url
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=10)
        assert refused.value.code == 401
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/?token={token}", timeout=10) as ok:
            assert ok.status == 200
    finally:
        child.terminate()
        child.wait(timeout=30)


def test_open_positions_are_netted_from_fills():
    fills = pd.DataFrame(
        {
            "ts": pd.to_datetime(["2025-12-08T15:00Z", "2025-12-08T15:01Z", "2025-12-08T15:02Z", "2025-12-08T15:03Z"]),
            "instrument_id": ["ESZ25.GLBX"] * 3 + ["MNQZ25.GLBX"],
            "side": ["BUY", "BUY", "SELL", "SELL"],
            "quantity": [1.0, 3.0, 2.0, 2.0],
            "price": [5000.0, 5004.0, 5010.0, 21000.0],
        },
    )
    table = net_positions(fills).set_index("instrument_id")
    assert table.loc["ESZ25.GLBX", "side"] == "LONG" and table.loc["ESZ25.GLBX", "quantity"] == 2
    assert table.loc["ESZ25.GLBX", "avg_px_open"] == pytest.approx(5003.0)
    assert table.loc["MNQZ25.GLBX", "side"] == "SHORT" and table.loc["MNQZ25.GLBX", "root"] == "MNQ"


def test_operator_control_records_regimes_and_metrics_for_the_dashboard(roll_week_catalog, tmp_path):
    from mia_ops_helpers import memory_backtest_config
    from nautilus_trader.backtest.node import BacktestNode

    from mia_strategies.ops.control import operator_control_config

    run_dir = tmp_path / "run"
    config, _ = memory_backtest_config(
        roll_week_catalog, tmp_path / "m.db", tmp_path / "bt", start="2025-12-09T14:30:00Z", end="2025-12-09T17:00:00Z"
    )
    feeder = config.engine.actors[0]
    feeder = msgspec.structs.replace(feeder, config={**feeder.config, "metrics": True})
    recorder = operator_control_config(run_dir, mode="backtest", poll_s=0)
    config = msgspec.structs.replace(config, engine=msgspec.structs.replace(config.engine, actors=[feeder, recorder]))
    node = BacktestNode(configs=[config])
    node.build()
    engine = node.get_engine(config.id)
    try:
        node.run()
        source = engine.trader.actors()[0]
        probs = dict(source.probs)
    finally:
        node.dispose()
    data = load_run(run_dir)
    assert len(data.regimes) == len(probs) > 50
    first = data.regimes.iloc[0]
    assert first["labels"] == ["trend", "range", "defensive"]
    assert np.allclose(first["probabilities"], probs[min(probs)])
    assert len(first["transition_matrix"]) == 9
    assert len(data.metrics) == len(probs)
    assert all(len(q) == 9 for q in data.metrics["quantiles"])
    assert set(data.metrics["ensemble_weights"].iloc[0]) == {"sac", "ppo"}
    assert not (run_dir / "control").exists() and not (run_dir / "live.json").exists()  # record only


def test_research_shap_cache_files_feed_the_importance_panel(tmp_path):
    from mia_strategies.dashboard.figures import feature_importance_figure

    run = tmp_path / "run"
    run.mkdir()
    for market, scale in (("ES", 1.0), ("MNQ", 2.0)):
        pd.DataFrame(
            {
                "market": market,
                "feature": ["ret_1", "atr_14", "ofi_10"],
                "importance": [0.5 * scale, 0.3 * scale, 0.2 * scale],
                "rank": [1, 2, 3],
                "selected": [True, True, False],
                "selection_frequency": [1.0, 0.75, 0.25],
                "method": "shap",
            },
        ).to_csv(run / f"feature_importance_{market}.csv", index=False)
    data = load_run(run)
    assert data.markets() == ["ES", "MNQ"]
    bars = feature_importance_figure(data, "MNQ").data[0]
    assert list(bars.y) == ["ofi_10", "atr_14", "ret_1"] and list(bars.x) == pytest.approx([0.4, 0.6, 1.0])
