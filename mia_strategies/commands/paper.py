"""``mia paper``: the backtest's strategy on live IQFeed data with the simulated (sandbox) venue."""

import socket
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING
from typing import Annotated

import typer

from mia_strategies.commands.iqfeed import AdminOpt
from mia_strategies.commands.iqfeed import BarsOpt
from mia_strategies.commands.iqfeed import DepthOpt
from mia_strategies.commands.iqfeed import Level1Opt
from mia_strategies.commands.iqfeed import LookupOpt
from mia_strategies.commands.iqfeed import OffsetOpt
from mia_strategies.errors import ConfigError
from mia_strategies.errors import MiaError


if TYPE_CHECKING:
    from mia_strategies.paper import PaperSettings


class IQConnectUnavailable(MiaError):
    """Nothing listens where IQConnect should be."""


def _check_reachable(host: str, port: int) -> None:
    try:
        with socket.create_connection((host, port), timeout=3.0):
            return
    except OSError as exc:
        raise IQConnectUnavailable(
            f"no IQConnect at {host}:{port} ({exc.strerror or exc}): start IQConnect, or run `mia iqfeed-sim` "
            "in another terminal, or pass --simulate",
        ) from None


def paper(
    config: Annotated[Path | None, typer.Option("--config", help="Paper YAML (default: config/paper.yaml).")] = None,
    instruments: Annotated[
        str | None, typer.Option("--instruments", help="Comma-separated roots, e.g. ES,MNQ (default from config).")
    ] = None,
    out: Annotated[Path | None, typer.Option("--out", help="Run folder (default: a new runs/paper-<time>/).")] = None,
    duration: Annotated[
        float | None, typer.Option("--duration", min=1.0, help="Stop after this many seconds (default: Ctrl-C).")
    ] = None,
    simulate: Annotated[
        bool, typer.Option("--simulate", help="Start the IQConnect simulator in-process instead of using IQConnect.")
    ] = False,
    sim_rate: Annotated[
        float | None, typer.Option("--sim-rate", min=0.0, help="Simulator events/s per symbol (with --simulate).")
    ] = None,
    iqfeed_host: Annotated[
        str | None, typer.Option("--iqfeed-host", help="IQConnect host (default from config).")
    ] = None,
    level1_port: Level1Opt = None,
    lookup_port: LookupOpt = None,
    depth_port: DepthOpt = None,
    admin_port: AdminOpt = None,
    bars_port: BarsOpt = None,
    port_offset: OffsetOpt = 0,
    log_level: Annotated[str | None, typer.Option("--log-level", help="nautilus console log level.")] = None,
) -> None:
    """Paper-trade the strategy on IQFeed data (or the simulator) until --duration or Ctrl-C; write a run folder."""
    import datetime as dt

    import pandas as pd

    from adapters.iqfeed import IQFEED
    from adapters.iqfeed import IQFeedLiveDataClientFactory
    from adapters.iqfeed.simulator import SimulatorConfig
    from adapters.iqfeed.simulator import SimulatorSource
    from adapters.iqfeed.simulator import SimulatorThread
    from adapters.iqfeed.simulator import build_simulator
    from mia_strategies.assembly import persistent_risk_state
    from mia_strategies.backtest import commissions_by_root
    from mia_strategies.cli import console
    from mia_strategies.commands.iqfeed import load_iqfeed_settings
    from mia_strategies.commands.iqfeed import port_overrides
    from mia_strategies.config import load_markets
    from mia_strategies.config import load_strategy
    from mia_strategies.live import ClientSpec
    from mia_strategies.live import LiveNodeSpec
    from mia_strategies.live import build_live_node
    from mia_strategies.paper import PaperLiveExecClientFactory
    from mia_strategies.results import per_regime_table
    from mia_strategies.results import summary_table

    settings, base = load_paper_settings(config)
    if log_level is not None and log_level.upper() not in ("ERROR", "WARNING", "INFO", "DEBUG"):
        raise ConfigError(f"--log-level {log_level!r}: use ERROR, WARNING, INFO or DEBUG")
    markets_file = base / settings.markets_file
    markets = load_markets(markets_file)
    strategy = load_strategy(base / settings.strategy_file)
    iq = load_iqfeed_settings(base / settings.iqfeed_file if (base / settings.iqfeed_file).exists() else None)
    roots = tuple(
        r.strip().upper() for r in (instruments.split(",") if instruments else settings.instruments) if r.strip()
    )
    if not roots:
        raise ConfigError("--instruments: list at least one root such as ES or MNQ")
    for root in roots:
        markets.root(root)
    host = iqfeed_host or iq.host
    ports = iq.ports.model_dump() | port_overrides(
        level1_port, lookup_port, depth_port, admin_port, bars_port, port_offset
    )
    out_dir = out or Path("runs") / f"paper-{dt.datetime.now(dt.UTC):%Y%m%d-%H%M%S}"
    if out_dir.exists() and any(out_dir.iterdir()):
        raise ConfigError(f"--out {out_dir} is not empty: choose a new folder so no result is overwritten")

    simulator: SimulatorThread | None = None
    if simulate:
        source = SimulatorSource(
            roots=roots, rate=iq.simulator.rate if sim_rate is None else sim_rate, seed=iq.simulator.seed
        )
        sim_config = SimulatorConfig(host="127.0.0.1", seed=source.seed, news_interval=iq.simulator.news_interval_secs)
        simulator = SimulatorThread(lambda: build_simulator(markets, source, sim_config))
        ports = simulator.start()
        host = "127.0.0.1"
        console.print("IQConnect simulator on 127.0.0.1: " + " ".join(f"{k}={v}" for k, v in ports.items()))
    try:
        _check_reachable(host, ports["level1"])
        data_config = iq.client_config(roots, host=host, ports=ports, markets_file=str(markets_file))
        spec = LiveNodeSpec(
            mode="paper",
            roots=roots,
            markets=markets,
            strategy=strategy,
            data=ClientSpec(IQFEED, IQFeedLiveDataClientFactory, data_config),
            execution=ClientSpec(
                markets.venue,
                PaperLiveExecClientFactory,
                settings.exec_config(commissions_by_root(markets), markets.venue),
            ),
            out_dir=out_dir,
            config_base=base,
            risk_state_path=persistent_risk_state(strategy, base, "paper") if strategy.strategy == "mia" else None,
            starting_balance=settings.starting_balance,
            currency=settings.currency,
            bar_spec=f"{settings.bar_minutes}-MINUTE",
            roll_policy=settings.roll_policy,
            trader_id=settings.trader_id,
            log_level=(log_level or settings.log_level).upper(),
            extra_run_info={
                "iqfeed": {"host": host, "ports": ports, "simulated": simulate},
                "paper": settings.model_dump(mode="json"),
            },
        )
        run = build_live_node(spec)
        contracts = ", ".join(s.instrument_id for s in run.slots)
        until = f"for {duration:g} s" if duration else "until Ctrl-C"
        console.print(f"[bold]paper[/] {', '.join(roots)} ({contracts}) on IQFeed {host}:{ports['level1']} {until}")
        console.print(f"run folder: {out_dir}")
        for note in run.notes:
            console.print(f"[yellow]note:[/] {note}")
        outcome = run.run(duration_s=duration)
    finally:
        if simulator is not None:
            simulator.stop()
    console.print(summary_table(outcome.summary, title="Paper session summary"))
    if outcome.summary.get("per_regime"):
        console.print(per_regime_table(pd.DataFrame(outcome.summary["per_regime"]).set_index(["root", "regime"])))
    console.print(
        f"paper run stopped: {outcome.summary.get('orders', 0)} orders, {len(outcome.fills)} fills, "
        f"{len(outcome.trades)} closed trades; results in [bold]{out_dir}[/] "
        "(orders.csv, fills.csv, positions.csv, summary.json, report.html)",
    )


def load_paper_settings(path: Path | None) -> tuple["PaperSettings", Path]:
    """``config/paper.yaml`` (or ``path``) and the folder its relative file names resolve from."""
    from mia_strategies.config import config_dir
    from mia_strategies.config import load_config
    from mia_strategies.paper import PaperSettings

    if path is None:
        path = config_dir() / "paper.yaml"
        if not path.exists():
            return PaperSettings(), config_dir()
    settings: PaperSettings = load_config(path, "paper")
    return settings, path.parent


def register(app: typer.Typer, groups: Mapping[str, typer.Typer]) -> None:
    """Add ``mia paper``; register ``config/paper.yaml``'s model for ``mia config check``."""
    from mia_strategies.config import register_config_kind
    from mia_strategies.paper import PaperSettings

    register_config_kind("paper", PaperSettings)
    app.command("paper")(paper)
