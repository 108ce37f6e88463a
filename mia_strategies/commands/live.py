"""``mia live``: the backtest's strategy on IQFeed data, with orders sent to Sierra Chart over DTC.

``mia live --dry-run`` runs the same node end to end on this machine against both simulators: the
IQConnect simulator (prices for the strategy) and the DTC simulator (fills), wired so the DTC
simulator fills at exactly the prices the IQConnect simulator serves. Without ``--dry-run`` it
connects to IQConnect and Sierra Chart as ``config/iqfeed.yaml`` and ``config/sierrachart.yaml``
say; ``--live`` is required to trade a funded (non-simulation) account, and refused with a Sim
account.
"""

import datetime as dt
import socket
from collections.abc import Mapping
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING
from typing import Annotated
from typing import Any

import typer

from mia_strategies.errors import ConfigError
from mia_strategies.errors import MiaError


if TYPE_CHECKING:
    from adapters.sierrachart.execution import SierraChartExecutionClient


class SierraChartUnavailable(MiaError):
    """Nothing listens where Sierra Chart's DTC server (or IQConnect) should be."""


class LiveStartRefused(MiaError):
    """The execution client refused to start (wrong account, trading disabled, unknown symbol...)."""


def _check_reachable(host: str, port: int, what: str, hint: str) -> None:
    try:
        with socket.create_connection((host, port), timeout=3.0):
            return
    except OSError as exc:
        raise SierraChartUnavailable(f"no {what} at {host}:{port} ({exc.strerror or exc}): {hint}") from None


def exec_client_of(node: Any) -> "SierraChartExecutionClient":
    """The node's Sierra Chart execution client (nautilus keeps clients by id in the engine)."""
    from adapters.sierrachart.execution import SierraChartExecutionClient

    for client in node.kernel.exec_engine._clients.values():
        if isinstance(client, SierraChartExecutionClient):
            return client
    raise RuntimeError("the node has no Sierra Chart execution client")


def _watch(run: Any, client: "SierraChartExecutionClient") -> None:
    """Stop the node when the execution client refuses to start or gives up for good (checked 5x/s)."""
    if client.startup_error is not None or client.fatal_error is not None:
        run.node.stop()
        return
    run.loop.call_later(0.2, _watch, run, client)


def live(
    dry_run: Annotated[
        bool,
        typer.Option("--dry-run", help="Run end to end against the IQConnect and DTC simulators on this machine."),
    ] = False,
    live_money: Annotated[
        bool,
        typer.Option("--live", help="Trade a funded (non-simulation) account: real money. Refused with Sim accounts."),
    ] = False,
    config: Annotated[
        Path | None, typer.Option("--config", help="Sierra Chart YAML (default: config/sierrachart.yaml).")
    ] = None,
    instruments: Annotated[
        str | None, typer.Option("--instruments", help="Comma-separated roots, e.g. ES,MNQ.")
    ] = None,
    out: Annotated[Path | None, typer.Option("--out", help="Run folder (default: a new runs/live-<time>/).")] = None,
    duration: Annotated[
        float | None, typer.Option("--duration", min=1.0, help="Stop after this many seconds (default: Ctrl-C).")
    ] = None,
    account: Annotated[str | None, typer.Option("--account", help="Trade account (default from config).")] = None,
    dtc: Annotated[
        str | None, typer.Option("--dtc", help="Sierra Chart DTC server HOST:PORT (default from config).")
    ] = None,
    iqfeed_host: Annotated[
        str | None, typer.Option("--iqfeed-host", help="IQConnect host (default from config).")
    ] = None,
    sim_rate: Annotated[
        float | None,
        typer.Option("--sim-rate", min=0.0, help="Dry run: IQConnect simulator events/s per symbol."),
    ] = None,
    catalog: Annotated[
        Path | None,
        typer.Option("--catalog", help="Dry run: replay this catalog's ticks as today's contracts."),
    ] = None,
    speed: Annotated[float, typer.Option("--speed", min=0.01, max=1000.0, help="Dry run: catalog replay speed.")] = 1.0,
    bar_spec: Annotated[
        str | None,
        typer.Option(
            "--bar-spec", help="Decision bars, e.g. 5-SECOND for a quick dry run (default: node.bar_minutes)."
        ),
    ] = None,
    log_level: Annotated[str | None, typer.Option("--log-level", help="nautilus console log level.")] = None,
) -> None:
    """Trade the strategy through Sierra Chart until --duration or Ctrl-C (SIGTERM too); write a run folder."""
    from mia_strategies.commands.sierrachart import load_sierrachart_settings
    from mia_strategies.commands.sierrachart import parse_address
    from mia_strategies.commands.sierrachart import parse_roots

    settings, base = load_sierrachart_settings(config)
    if dry_run and live_money:
        raise ConfigError("--dry-run trades the simulators' Sim1 account: drop --live")
    if log_level is not None and log_level.upper() not in ("ERROR", "WARNING", "INFO", "DEBUG"):
        raise ConfigError(f"--log-level {log_level!r}: use ERROR, WARNING, INFO or DEBUG")
    if catalog is not None and not dry_run:
        raise ConfigError("--catalog replays prices into the simulators: it needs --dry-run")
    if catalog is not None and not catalog.is_dir():
        raise ConfigError(f"--catalog {catalog}: not a folder")
    roots = parse_roots(instruments, settings.node.instruments)
    dtc_address = parse_address(dtc, "--dtc") if dtc else None
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%d-%H%M%S")
    out_dir = out or Path("runs") / (f"live-dryrun-{stamp}" if dry_run else f"live-{stamp}")
    if out_dir.exists() and any(out_dir.iterdir()):
        raise ConfigError(f"--out {out_dir} is not empty: choose a new folder so no result is overwritten")
    if bar_spec is not None and not _valid_bar_spec(bar_spec):
        raise ConfigError(f"--bar-spec {bar_spec!r}: use N-SECOND or N-MINUTE, e.g. 5-SECOND or 1-MINUTE")
    options = _Options(
        settings, base, roots, out_dir, duration, account, dtc_address, iqfeed_host, live_money, log_level
    )
    if bar_spec is not None:
        options.bar_spec = bar_spec.upper()
    if dry_run:
        _dry_run(options, sim_rate, catalog, speed)
    else:
        _run_live(options)


def _valid_bar_spec(text: str) -> bool:
    count, _, unit = text.upper().partition("-")
    return count.isdigit() and int(count) > 0 and unit in ("SECOND", "MINUTE")


class _Options:
    """The resolved command line."""

    def __init__(
        self,
        settings: Any,
        base: Path,
        roots: list[str],
        out_dir: Path,
        duration: float | None,
        account: str | None,
        dtc: tuple[str, int] | None,
        iqfeed_host: str | None,
        live_money: bool,
        log_level: str | None,
    ) -> None:
        from mia_strategies.commands.iqfeed import load_iqfeed_settings
        from mia_strategies.config import load_markets
        from mia_strategies.config import load_strategy

        self.settings = settings
        self.base = base
        self.roots = roots
        self.out_dir = out_dir
        self.duration = duration
        self.account = account
        self.dtc = dtc
        self.iqfeed_host = iqfeed_host
        self.live_money = live_money
        self.log_level = (log_level or settings.node.log_level).upper()
        self.bar_spec = f"{settings.node.bar_minutes}-MINUTE"
        self.markets_file = base / settings.node.markets_file
        self.markets = load_markets(self.markets_file)
        for root in roots:
            self.markets.root(root)
        self.strategy = load_strategy(base / settings.node.strategy_file)
        iq_file = base / settings.node.iqfeed_file
        self.iq = load_iqfeed_settings(iq_file if iq_file.exists() else None)


def _run_live(options: _Options) -> None:
    settings = options.settings
    host, port = options.dtc or (settings.host, settings.port)
    iq_host = options.iqfeed_host or options.iq.host
    _check_reachable(
        host,
        port,
        "Sierra Chart DTC server",
        "start Sierra Chart with its DTC server enabled (docs/sierrachart.md), or try `mia live --dry-run`",
    )
    _check_reachable(iq_host, options.iq.ports.level1, "IQConnect", "start IQConnect, or try `mia live --dry-run`")
    _run(
        options,
        host,
        port,
        iq_host,
        options.iq.ports.model_dump(),
        options.account,
        settings.state_file,
        simulated=False,
    )


def _dry_run(options: _Options, sim_rate: float | None, catalog: Path | None, speed: float) -> None:
    from adapters.iqfeed.simulator import SimulatorConfig as IQSimulatorConfig
    from adapters.iqfeed.simulator import SimulatorSource
    from adapters.iqfeed.simulator import SimulatorThread
    from adapters.iqfeed.simulator import build_simulator
    from adapters.sierrachart.safety import is_simulation_account
    from adapters.sierrachart.settings import iqfeed_symbol_map
    from adapters.sierrachart.simulator import DtcSimulator
    from adapters.sierrachart.simulator.feeds import IQFeedMarketBridge
    from mia_strategies.cli import console

    settings = options.settings
    markets = options.markets
    iq = options.iq
    roots = tuple(options.roots)
    source = SimulatorSource(
        roots=roots,
        catalog=catalog,
        replay=catalog is not None,
        speed=speed,
        rate=iq.simulator.rate if sim_rate is None else sim_rate,
        seed=iq.simulator.seed,
    )
    iq_config = IQSimulatorConfig(host="127.0.0.1", seed=source.seed, news_interval=iq.simulator.news_interval_secs)
    dtc_config = settings.simulator_config(markets, options.roots, port=0)
    holder: dict[str, DtcSimulator] = {}
    thread = SimulatorThread(lambda: build_simulator(markets, source, iq_config))
    ports = thread.start()

    async def start_dtc() -> int:
        sim = DtcSimulator(dtc_config)
        await sim.start()
        bridge = IQFeedMarketBridge(
            sim, iqfeed_symbol_map(markets, options.roots, settings.symbol_template, dict(settings.symbol_overrides))
        )
        assert thread.simulator is not None
        thread.simulator.market.listeners.append(bridge)
        holder["sim"] = sim
        return sim.port

    try:
        dtc_port = thread.run(start_dtc)
        account = options.account or settings.trade_account
        if not is_simulation_account(account):
            account = dtc_config.trade_accounts[0]
        console.print("IQConnect simulator on 127.0.0.1: " + " ".join(f"{k}={v}" for k, v in ports.items()))
        console.print(f"DTC simulator on 127.0.0.1:{dtc_port} (account {account})")
        state = options.out_dir / "sierrachart-orders.jsonl"
        _run(options, "127.0.0.1", dtc_port, "127.0.0.1", ports, account, state, simulated=True)
    finally:
        if "sim" in holder:
            try:
                sim = holder["sim"]
                thread.run(sim.stop)
            except Exception:  # the simulators go down with the thread anyway
                pass
        thread.stop()


def _run(
    options: _Options,
    dtc_host: str,
    dtc_port: int,
    iq_host: str,
    iq_ports: dict[str, int],
    account: str | None,
    state_file: Path,
    simulated: bool,
) -> None:
    import pandas as pd

    from adapters.iqfeed import IQFEED
    from adapters.iqfeed import IQFeedLiveDataClientFactory
    from adapters.sierrachart.factories import SierraChartLiveExecClientFactory
    from mia_strategies.assembly import persistent_risk_state
    from mia_strategies.backtest import commissions_by_root
    from mia_strategies.cli import console
    from mia_strategies.instruments import active_contract
    from mia_strategies.instruments import next_contract
    from mia_strategies.live import ClientSpec
    from mia_strategies.live import LiveNodeSpec
    from mia_strategies.live import build_live_node
    from mia_strategies.results import per_regime_table
    from mia_strategies.results import summary_table

    settings = options.settings
    markets = options.markets
    roots = tuple(options.roots)
    data_config = options.iq.client_config(roots, host=iq_host, ports=iq_ports, markets_file=str(options.markets_file))
    now = dt.datetime.now(dt.UTC).timestamp()
    claims = []
    for root in roots:  # orders and positions recovered at start-up belong to the strategy
        active = active_contract(root, int(now * 1e9), markets)
        for contract in (active, next_contract(active, markets.root(root))):
            claims.append(contract.instrument_id(markets.venue).value)
    exec_config = settings.exec_config(
        markets_file=options.markets_file,
        commissions=commissions_by_root(markets),
        live=options.live_money,
        host=dtc_host,
        port=dtc_port,
        trade_account=account,
        state_file=state_file,
        instrument_ids=claims,
    )
    spec = LiveNodeSpec(
        mode="live",
        roots=roots,
        markets=markets,
        strategy=options.strategy,
        data=ClientSpec(IQFEED, IQFeedLiveDataClientFactory, data_config),
        execution=ClientSpec(markets.venue, SierraChartLiveExecClientFactory, exec_config, reconciliation=True),
        out_dir=options.out_dir,
        config_base=options.base,
        risk_state_path=(
            persistent_risk_state(options.strategy, options.base, "live" if not simulated else "dry-run")
            if options.strategy.strategy == "mia"
            else None
        ),
        starting_balance=Decimal(str(settings.node.starting_balance)),
        bar_spec=options.bar_spec.upper(),
        roll_policy=settings.node.roll_policy,
        trader_id=settings.node.trader_id,
        log_level=options.log_level,
        strategy_extra={"external_order_claims": claims},
        extra_run_info={
            "sierrachart": {
                "host": dtc_host,
                "port": dtc_port,
                "account": exec_config.trade_account,
                "live": options.live_money,
                "simulated": simulated,
                "symbol_template": settings.symbol_template,
            },
            "iqfeed": {"host": iq_host, "ports": iq_ports, "simulated": simulated},
        },
    )
    run = build_live_node(spec)
    client = exec_client_of(run.node)
    run.loop.call_soon(_watch, run, client)
    contracts = ", ".join(s.instrument_id for s in run.slots)
    until = f"for {options.duration:g} s" if options.duration else "until Ctrl-C"
    kind = "DRY RUN" if simulated else ("LIVE MONEY" if options.live_money else "simulation account")
    console.print(
        f"[bold]live[/] ({kind}) {', '.join(roots)} ({contracts}) via Sierra Chart {dtc_host}:{dtc_port} {until}"
    )
    console.print(f"run folder: {options.out_dir}")
    for note in run.notes:
        console.print(f"[yellow]note:[/] {note}")
    outcome = run.run(duration_s=options.duration)
    if client.startup_error is not None:
        raise LiveStartRefused(f"Sierra Chart execution client refused to start: {client.startup_error}")
    console.print(summary_table(outcome.summary, title="Live session summary"))
    if outcome.summary.get("per_regime"):
        console.print(per_regime_table(pd.DataFrame(outcome.summary["per_regime"]).set_index(["root", "regime"])))
    if client.fatal_error is not None:
        console.print(f"[bold red]stopped early[/]: {client.fatal_error}")
    console.print(
        f"live run stopped: {outcome.summary.get('orders', 0)} orders, {len(outcome.fills)} fills, "
        f"{len(outcome.trades)} closed trades, {outcome.summary.get('open_positions', 0)} open positions; "
        f"results in [bold]{options.out_dir}[/] (orders.csv, fills.csv, positions.csv, summary.json, report.html)",
    )
    if client.fatal_error is not None:
        raise LiveStartRefused(f"Sierra Chart connection lost for good: {client.fatal_error}")


def register(app: typer.Typer, groups: Mapping[str, typer.Typer]) -> None:
    """Add ``mia live``."""
    app.command("live")(live)
