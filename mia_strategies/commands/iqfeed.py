"""``mia iqfeed-sim`` (the IQConnect simulator for dry runs) and ``mia ingest iqfeed`` (history into the catalog)."""

import asyncio
import contextlib
import signal
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING
from typing import Annotated

import typer

from mia_strategies.errors import ConfigError
from mia_strategies.errors import MiaError


if TYPE_CHECKING:
    from adapters.iqfeed.config import IQFeedSettings


PORT_NAMES = ("level1", "lookup", "depth", "admin", "bars")


def load_iqfeed_settings(path: Path | None) -> "IQFeedSettings":
    """``config/iqfeed.yaml`` (or ``path``); defaults when the config folder has none."""
    from adapters.iqfeed.config import IQFeedSettings
    from mia_strategies.config import config_dir
    from mia_strategies.config import load_config

    if path is None:
        path = config_dir() / "iqfeed.yaml"
        if not path.exists():
            return IQFeedSettings()
    settings: IQFeedSettings = load_config(path, "iqfeed")
    return settings


def port_overrides(
    level1: int | None, lookup: int | None, depth: int | None, admin: int | None, bars: int | None, offset: int
) -> dict[str, int]:
    """Ports given on the command line (``--port-offset`` shifts the defaults, as the simulator spec does)."""
    from adapters.iqfeed.constants import DEFAULT_PORTS

    ports = {name: port + offset for name, port in DEFAULT_PORTS.items()} if offset else {}
    for name, value in zip(PORT_NAMES, (level1, lookup, depth, admin, bars), strict=True):
        if value is not None:
            ports[name] = value
    for name, value in ports.items():
        if not 0 <= value <= 65535:
            raise ConfigError(f"--{name}-port {value}: use 1-65535 (0 in the simulator picks a free port)")
    return ports


def _roots(text: str | None, default: list[str]) -> tuple[str, ...]:
    roots = tuple(r.strip().upper() for r in (text.split(",") if text else default) if r.strip())
    if not roots:
        raise ConfigError("--instruments: list at least one root such as ES or MNQ")
    return roots


ConfigOpt = Annotated[Path | None, typer.Option("--config", help="IQFeed YAML (default: config/iqfeed.yaml).")]
Level1Opt = Annotated[int | None, typer.Option("--level1-port", help="Level 1 port (5009).")]
LookupOpt = Annotated[int | None, typer.Option("--lookup-port", help="Lookup port (9100).")]
DepthOpt = Annotated[int | None, typer.Option("--depth-port", help="Level 2 port (9200).")]
AdminOpt = Annotated[int | None, typer.Option("--admin-port", help="Admin port (9300).")]
BarsOpt = Annotated[int | None, typer.Option("--bars-port", help="Derivative (bars) port (9400).")]
OffsetOpt = Annotated[int, typer.Option("--port-offset", help="Add this to every default port (e.g. 10000).")]


def iqfeed_sim(
    host: Annotated[str, typer.Option("--host", help="Address to listen on.")] = "127.0.0.1",
    level1_port: Level1Opt = None,
    lookup_port: LookupOpt = None,
    depth_port: DepthOpt = None,
    admin_port: AdminOpt = None,
    bars_port: BarsOpt = None,
    port_offset: OffsetOpt = 0,
    any_ports: Annotated[bool, typer.Option("--any-ports", help="Let the system pick free ports.")] = False,
    catalog: Annotated[
        Path | None,
        typer.Option("--catalog", help="Serve this catalog's futures trades as history (HTT/HIT/HDT)."),
    ] = None,
    replay: Annotated[
        bool,
        typer.Option("--replay", help="Also stream the catalog's ticks live, as today's contracts."),
    ] = False,
    speed: Annotated[float, typer.Option("--speed", min=0.01, max=1000.0, help="Replay speed factor.")] = 1.0,
    rate: Annotated[float | None, typer.Option("--rate", min=0.0, help="Random-walk events/s per symbol.")] = None,
    seed: Annotated[int | None, typer.Option("--seed", help="Random seed.")] = None,
    instruments: Annotated[str | None, typer.Option("--instruments", help="Roots to list, e.g. ES,MNQ.")] = None,
    protocol: Annotated[str, typer.Option("--protocol", help="Protocol a new connection starts with.")] = "6.2",
    config: ConfigOpt = None,
) -> None:
    """Run the IQConnect simulator on real sockets until Ctrl-C (a dry-run stand-in for IQConnect)."""
    from adapters.iqfeed.constants import DEFAULT_PORTS
    from adapters.iqfeed.simulator import SimulatorConfig
    from adapters.iqfeed.simulator import SimulatorSource
    from adapters.iqfeed.simulator import build_simulator
    from adapters.iqfeed.simulator.wire import PROTOCOLS
    from mia_strategies.cli import console
    from mia_strategies.config import load_markets

    settings = load_iqfeed_settings(config)
    if protocol not in PROTOCOLS:
        raise ConfigError(f"--protocol {protocol!r}: use one of {', '.join(PROTOCOLS)}")
    if catalog is not None and not catalog.is_dir():
        raise ConfigError(f"--catalog {catalog}: not a folder")
    if replay and catalog is None:
        raise ConfigError("--replay needs --catalog")
    ports = dict.fromkeys(PORT_NAMES, 0) if any_ports else {**DEFAULT_PORTS}
    ports.update(port_overrides(level1_port, lookup_port, depth_port, admin_port, bars_port, port_offset))
    sim_settings = settings.simulator
    source = SimulatorSource(
        roots=_roots(instruments, sim_settings.roots),
        catalog=catalog,
        replay=replay,
        speed=speed,
        rate=sim_settings.rate if rate is None else rate,
        seed=sim_settings.seed if seed is None else seed,
    )
    sim_config = SimulatorConfig(
        host=host,
        ports=ports,
        default_protocol=protocol,
        seed=source.seed,
        news_interval=sim_settings.news_interval_secs,
    )
    markets = load_markets()

    async def serve() -> None:
        simulator = build_simulator(markets, source, sim_config)
        try:
            bound = await simulator.start()
        except OSError as exc:
            raise ConfigError(
                f"cannot listen on {host} ({exc.strerror or exc}): a port is in use (is IQConnect running?); "
                "pass --port-offset 10000 or --any-ports",
            ) from None
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.add_signal_handler(sig, stop.set)
        symbols = ", ".join(sorted(simulator.market.universe.specs))
        console.print(f"[bold]IQConnect simulator[/] on {host}: " + " ".join(f"{n}={bound[n]}" for n in PORT_NAMES))
        console.print(f"symbols: {symbols}; aliases: {', '.join(sorted(simulator.market.universe.aliases))}")
        console.print("press Ctrl-C to stop")
        try:
            await stop.wait()
        finally:
            await simulator.close()
            console.print("simulator stopped")

    asyncio.run(serve())


def ingest_iqfeed_command(
    instruments: Annotated[
        str,
        typer.Option("--instruments", help="Roots (ES,MNQ: every contract active in the range) or contracts (ESZ25)."),
    ],
    start: Annotated[str, typer.Option("--start", help="Start, ISO date/time (UTC if naive).")],
    end: Annotated[str, typer.Option("--end", help="End, ISO date/time (UTC if naive).")],
    kinds: Annotated[
        str,
        typer.Option("--kinds", help="ticks (trades), quotes (the touch at each trade), bars (1 minute), daily."),
    ] = "ticks,quotes,bars,daily",
    catalog: Annotated[
        Path | None,
        typer.Option("--catalog", help="Catalog folder (default: $MIA_CATALOG, else ./data/catalog)."),
    ] = None,
    host: Annotated[str | None, typer.Option("--host", help="IQConnect host (default from config).")] = None,
    lookup_port: LookupOpt = None,
    port_offset: OffsetOpt = 0,
    config: ConfigOpt = None,
) -> None:
    """Download IQFeed history (ticks, 1-minute and daily bars) into the catalog; resumable and idempotent."""
    from rich.progress import BarColumn
    from rich.progress import MofNCompleteColumn
    from rich.progress import Progress
    from rich.progress import TextColumn
    from rich.progress import TimeElapsedColumn

    from adapters.iqfeed.history import ingest_iqfeed
    from catalog.store import default_catalog_path
    from mia_strategies.backtest import parse_time
    from mia_strategies.cli import console
    from mia_strategies.config import load_markets

    settings = load_iqfeed_settings(config)
    ports = settings.ports.model_dump() | port_overrides(None, lookup_port, None, None, None, port_offset)
    start_ns = parse_time(start, "start")
    end_ns = parse_time(end, "end")
    assert start_ns is not None and end_ns is not None
    path = catalog or default_catalog_path()
    names = [n for n in instruments.split(",") if n.strip()]
    wanted = [k.strip() for k in kinds.split(",") if k.strip()]
    progress = Progress(
        TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), console=console
    )
    task = progress.add_task("iqfeed batches", total=None)
    with progress:
        report = ingest_iqfeed(
            path,
            names,
            start_ns,
            end_ns,
            load_markets(),
            kinds=wanted,
            host=host or settings.host,
            port=ports["lookup"],
            progress=lambda done, total: progress.update(task, completed=done, total=total),
            request_timeout=settings.request_timeout_secs,
        )
    rows = ", ".join(f"{n:,} {k}" for k, n in report.rows.items() if n)
    console.print(
        f"iqfeed: {report.batches} batches: {report.written} written ({rows or 'nothing new'}), "
        f"{report.skipped} already in the catalog, {report.empty} without data; catalog {path}",
    )


def register(app: typer.Typer, groups: Mapping[str, typer.Typer]) -> None:
    """Add ``mia iqfeed-sim`` and ``mia ingest iqfeed``; register ``config/iqfeed.yaml``'s model."""
    from adapters.iqfeed.config import IQFeedSettings
    from mia_strategies.config import register_config_kind

    register_config_kind("iqfeed", IQFeedSettings)
    app.command("iqfeed-sim")(iqfeed_sim)
    groups["ingest"].command("iqfeed")(ingest_iqfeed_command)


__all__ = ["MiaError", "ingest_iqfeed_command", "iqfeed_sim", "load_iqfeed_settings", "port_overrides", "register"]
