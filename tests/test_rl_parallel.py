"""Walk-forward windows and sweeps: out-of-sample only, and the same results serially and on Ray."""

import numpy as np
import pandas as pd
import pytest

from mia_strategies import sessions
from mia_strategies.errors import ConfigError
from mia_strategies.providers.config import TradeProbabilityConfig
from research.rl.config import AlgoConfig
from research.rl.config import ModelParamsConfig
from research.rl.config import RewardSettings
from research.rl.config import TradingEnvConfig
from research.rl.config import WalkForwardSettings
from research.rl.pipeline import Settings
from research.rl.sweep import grid_points
from research.rl.sweep import parse_grid
from research.rl.sweep import sweep
from research.rl.synthetic import synthetic_market
from research.rl.walkforward import make_windows
from research.rl.walkforward import walk_forward


PPO = {"net_arch": [8], "n_steps": 64, "batch_size": 32, "n_epochs": 2, "learning_rate": 1e-3}


@pytest.fixture(scope="module")
def setup(markets):
    data = synthetic_market("ES", markets, days=4, bar_minutes=30, seed=41)
    settings = Settings(
        env=TradingEnvConfig(reward=RewardSettings(method="pnl")),
        algo=AlgoConfig(walk_forward=WalkForwardSettings(train_days=2, test_days=1, step_days=1)),
        params=ModelParamsConfig.model_validate(
            {"ppo": {"default": PPO}, "sac": {"default": {"net_arch": [8], "learning_starts": 50}}}
        ),
        markets=markets,
        trade_probability=TradeProbabilityConfig(),
    )
    return data, settings


def test_windows_roll_over_trading_days_and_test_after_training(setup):
    data, settings = setup
    windows = make_windows(data, settings.algo.walk_forward)
    assert len(windows) == 2
    for w in windows:
        assert w.train_start_ns < w.train_end_ns == w.test_start_ns < w.test_end_ns
        train_days = {sessions.trading_day(int(t)) for t in data.window(w.train_start_ns, w.train_end_ns).ts_ns}
        test_days = {sessions.trading_day(int(t)) for t in data.window(w.test_start_ns, w.test_end_ns).ts_ns}
        assert len(train_days) == 2 and len(test_days) == 1 and max(train_days) < min(test_days)
    assert windows[1].train_start_ns > windows[0].train_start_ns
    with pytest.raises(Exception, match="walk-forward needs at least"):
        make_windows(data.take(slice(0, 40)), settings.algo.walk_forward)


def test_walk_forward_reports_out_of_sample_only_and_ray_equals_serial(setup, tmp_path):
    data, settings = setup
    serial = walk_forward(["ppo"], data, settings, total_timesteps=128, seed=5)
    parallel = walk_forward(["ppo"], data, settings, backend="ray", num_cpus=2, total_timesteps=128, seed=5)
    rows = serial.rows()
    assert len(rows) == 2 and (rows["test_start"] > rows["train_end"]).all()
    pd.testing.assert_frame_equal(rows, parallel.rows())
    pd.testing.assert_frame_equal(serial.oos("ppo"), parallel.oos("ppo"))
    oos = serial.oos("ppo")
    windows = serial.windows
    assert oos["ts"].astype("int64").min() >= windows[0].test_start_ns  # nothing from a training window
    assert len(oos) == rows["oos_bars"].sum()
    written = serial.write(tmp_path)
    assert {p.name for p in written} == {"walk_forward.csv", "walk_forward_summary.csv", "oos_ppo.csv"}
    summary = pd.read_csv(tmp_path / "walk_forward_summary.csv")
    assert summary.loc[0, "oos_bars"] == len(oos) and summary.loc[0, "windows"] == 2
    assert summary.loc[0, "oos_pnl"] == pytest.approx(oos["pnl"].sum())


def test_sweep_scores_every_grid_point_out_of_sample(setup):
    data, settings = setup
    grid = parse_grid(["learning_rate=0.001,0.003", "net_arch=8,8x8"])
    assert grid == {"learning_rate": [0.001, 0.003], "net_arch": [[8], [8, 8]]}
    assert len(grid_points(grid)) == 4
    days = data.trading_days()
    last = sorted(set(days))[-1]
    train, test = data.take(np.flatnonzero(days != last)), data.take(np.flatnonzero(days == last))
    frame = sweep("ppo", {"learning_rate": [0.001, 0.003]}, train, test, settings, total_timesteps=128)
    assert frame["param_learning_rate"].tolist() == [0.001, 0.003]
    assert (frame["oos_bars"] == len(test) - 1).all()
    with pytest.raises(ConfigError, match="sweep point"):
        sweep("ppo", {"n_steps": [1]}, train, test, settings, total_timesteps=128)
