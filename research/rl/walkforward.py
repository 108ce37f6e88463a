"""Walk-forward evaluation: roll train/test windows over trading days and report out-of-sample results only.

Window ``k`` trains on ``train_days`` trading days starting at day ``k * step_days`` and tests on the
``test_days`` days right after them (disjoint and later). Every (window, algorithm) pair is one job,
run serially or on Ray (``research.rl.parallel``); the report holds only test-window numbers: one
row per job, a summary per algorithm over all its test windows, and the concatenated out-of-sample
bars (position, reward, P&L) per algorithm.
"""

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from mia_strategies import sessions
from mia_strategies.errors import CatalogError
from mia_strategies.providers.ensemble import empirical_cvar
from research.env import MarketData
from research.rl.config import WalkForwardSettings
from research.rl.parallel import run_jobs
from research.rl.pipeline import Settings
from research.rl.train import train_policy


@dataclass(frozen=True)
class Window:
    """One walk-forward window: training days, then the later test days (``[start, end)`` in ns)."""

    index: int
    train_start_ns: int
    train_end_ns: int
    test_start_ns: int
    test_end_ns: int


def make_windows(data: MarketData, settings: WalkForwardSettings) -> list[Window]:
    """The rolling windows over the trading days of ``data`` (at most ``max_windows``)."""
    days = data.trading_days()
    distinct = sorted(set(days.tolist()))
    first_row = {d: int(np.flatnonzero(days == d)[0]) for d in distinct}
    end_ns = data.end_ns + 1
    bounds = [int(data.ts_ns[first_row[d]]) for d in distinct] + [end_ns]
    span = settings.train_days + settings.test_days
    if len(distinct) < span:
        raise CatalogError(
            f"{data.root}: {len(distinct)} trading days; walk-forward needs at least {span} "
            f"({settings.train_days} to train + {settings.test_days} to test)",
        )
    windows: list[Window] = []
    start = 0
    while start + span <= len(distinct):
        mid = start + settings.train_days
        windows.append(Window(len(windows), bounds[start], bounds[mid], bounds[mid], bounds[mid + settings.test_days]))
        if settings.max_windows is not None and len(windows) >= settings.max_windows:
            break
        start += settings.step_days
    return windows


@dataclass(frozen=True)
class WindowJob:
    """Train one algorithm on one window's training days and test it on its test days."""

    algo: str
    window: Window
    train: MarketData
    test: MarketData
    settings: Settings
    seed: int
    total_timesteps: int | None


@dataclass(frozen=True)
class WindowResult:
    """Out-of-sample results of one job (no model: walk-forward reports, it does not register)."""

    algo: str
    window: int
    train_range: dict[str, Any]
    test_range: dict[str, Any]
    summary: dict[str, Any]
    oos: pd.DataFrame


def run_window(job: WindowJob) -> WindowResult:
    """Train and test one job (the unit a Ray worker runs)."""
    result = train_policy(
        job.algo,
        job.train,
        job.test,
        env_config=job.settings.env,
        algo_config=job.settings.algo,
        model_params=job.settings.params,
        markets=job.settings.markets,
        seed=job.seed,
        total_timesteps=job.total_timesteps,
    )
    run = result.eval_run
    oos = pd.DataFrame(
        {
            "ts": pd.to_datetime(run.ts_ns, utc=True),
            "window": job.window.index,
            "position": run.positions,
            "reward": run.rewards,
            "pnl": run.pnl,
        },
    )
    return WindowResult(
        job.algo, job.window.index, result.train_range, result.eval_range, result.evaluation.to_dict(), oos
    )


@dataclass(frozen=True)
class WalkForwardReport:
    """Out-of-sample results of a walk-forward run."""

    market: str
    windows: list[Window]
    results: list[WindowResult]

    def rows(self) -> pd.DataFrame:
        """One row per (window, algorithm) with the test window's metrics."""
        records = []
        for r in self.results:
            records.append(
                {
                    "window": r.window,
                    "algo": r.algo,
                    "train_start": r.train_range.get("start"),
                    "train_end": r.train_range.get("end"),
                    "test_start": r.test_range.get("start"),
                    "test_end": r.test_range.get("end"),
                    **{f"oos_{k}": v for k, v in r.summary.items()},
                },
            )
        return pd.DataFrame.from_records(records)

    def oos(self, algo: str) -> pd.DataFrame:
        """Every out-of-sample bar of ``algo``, in time order."""
        frames = [r.oos for r in self.results if r.algo == algo]
        return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()

    def summary(self) -> pd.DataFrame:
        """Per algorithm over all test windows: P&L, reward, Sharpe of daily P&L, CVaR 95% of bar rewards."""
        records = []
        for algo in dict.fromkeys(r.algo for r in self.results):
            oos = self.oos(algo)
            days = [sessions.trading_day(int(t)) for t in oos["ts"].astype("int64")]
            daily = oos.groupby(days)["pnl"].sum().to_numpy() if len(oos) else np.zeros(0)
            sd = float(daily.std(ddof=1)) if len(daily) > 1 else math.nan
            records.append(
                {
                    "algo": algo,
                    "windows": sum(1 for r in self.results if r.algo == algo),
                    "oos_bars": len(oos),
                    "oos_pnl": float(oos["pnl"].sum()) if len(oos) else 0.0,
                    "oos_total_reward": float(oos["reward"].sum()) if len(oos) else 0.0,
                    "oos_mean_reward": float(oos["reward"].mean()) if len(oos) else math.nan,
                    "oos_sharpe": float(daily.mean() / sd * math.sqrt(252)) if sd and sd > 0 else math.nan,
                    "oos_cvar_95": empirical_cvar(oos["reward"].to_numpy(), 0.95) if len(oos) else math.nan,
                },
            )
        return pd.DataFrame.from_records(records)

    def write(self, out_dir: Path) -> list[Path]:
        """``walk_forward.csv``, ``walk_forward_summary.csv`` and ``oos_<algo>.csv`` in ``out_dir``."""
        out_dir.mkdir(parents=True, exist_ok=True)
        written = [out_dir / "walk_forward.csv", out_dir / "walk_forward_summary.csv"]
        self.rows().to_csv(written[0], index=False)
        self.summary().to_csv(written[1], index=False)
        for algo in dict.fromkeys(r.algo for r in self.results):
            path = out_dir / f"oos_{algo}.csv"
            self.oos(algo).to_csv(path, index=False)
            written.append(path)
        return written


def walk_forward(
    algos: list[str],
    data: MarketData,
    settings: Settings,
    *,
    backend: str = "serial",
    address: str | None = None,
    num_cpus: int | None = None,
    seed: int | None = None,
    total_timesteps: int | None = None,
) -> WalkForwardReport:
    """Run every (window, algorithm) job and collect the out-of-sample results."""
    windows = make_windows(data, settings.algo.walk_forward)
    jobs = [
        WindowJob(
            algo=algo,
            window=w,
            train=data.window(w.train_start_ns, w.train_end_ns),
            test=data.window(w.test_start_ns, w.test_end_ns),
            settings=settings,
            seed=settings.algo.seed if seed is None else seed,
            total_timesteps=total_timesteps,
        )
        for w in windows
        for algo in algos
    ]
    results = run_jobs(run_window, jobs, backend=backend, address=address, num_cpus=num_cpus)
    return WalkForwardReport(data.root, windows, results)
