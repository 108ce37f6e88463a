"""``mia dtc-sim``: the Sierra Chart DTC server simulator for dry runs (and ``config/sierrachart.yaml``)."""

import asyncio
import contextlib
import signal
import time
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING
from typing import Annotated

import typer

from mia_strategies.errors import ConfigError


if TYPE_CHECKING:
    from adapters.sierrachart.settings import SierraChartSettings


def load_sierrachart_settings(path: Path | None) -> tuple["SierraChartSettings", Path]:
    """``config/sierrachart.yaml`` (or ``path``) and the folder its relative file names resolve from."""
    from adapters.sierrachart.settings import SierraChartSettings
    from mia_strategies.config import config_dir
    from mia_strategies.config import load_config

    if path is None:
        path = config_dir() / "sierrachart.yaml"
        if not path.exists():
            return SierraChartSettings(), config_dir()
    settings: SierraChartSettings = load_config(path, "sierrachart")
    return settings, path.parent


def parse_roots(text: str | None, default: list[str]) -> list[str]:
    """``ES,MNQ`` → ``["ES", "MNQ"]``; one-line error when empty."""
    roots = [r.strip().upper() for r in (text.split(",") if text else default) if r.strip()]
    if not roots:
        raise ConfigError("--instruments: list at least one root such as ES or MNQ")
    return roots


def parse_address(text: str, what: str) -> tuple[str, int]:
    """``HOST:PORT`` (or ``PORT``) → ``(host, port)``."""
    host, _, port = text.rpartition(":")
    if not port.isdigit() or not 0 < int(port) < 65536:
        raise ConfigError(f"{what} {text!r}: use HOST:PORT such as 127.0.0.1:5009")
    return host or "127.0.0.1", int(port)


def dtc_sim(
    host: Annotated[str, typer.Option("--host", help="Address to listen on (keep 127.0.0.1).")] = "127.0.0.1",
    port: Annotated[
        int | None, typer.Option("--port", min=0, max=65535, help="Port (default from config: 11099; 0 picks one).")
    ] = None,
    instruments: Annotated[str | None, typer.Option("--instruments", help="Roots to list, e.g. ES,MNQ.")] = None,
    iqfeed: Annotated[
        str | None,
        typer.Option("--iqfeed", help="Price fills from this IQConnect (or `mia iqfeed-sim`) Level 1 port, HOST:PORT."),
    ] = None,
    catalog: Annotated[
        Path | None, typer.Option("--catalog", help="Price fills by replaying this catalog's ticks.")
    ] = None,
    speed: Annotated[float, typer.Option("--speed", min=0.01, max=1000.0, help="Catalog replay speed factor.")] = 1.0,
    encoding: Annotated[
        str | None, typer.Option("--encoding", help="automatic (binary handshake first) or json.")
    ] = None,
    config: Annotated[
        Path | None, typer.Option("--config", help="Sierra Chart YAML (default: config/sierrachart.yaml).")
    ] = None,
    duration: Annotated[float | None, typer.Option("--duration", min=0.1, help="Stop after this many seconds.")] = None,
) -> None:
    """Run the Sierra Chart DTC server simulator on real sockets until Ctrl-C (a dry-run stand-in for Sierra Chart)."""
    from mia_strategies.cli import console
    from mia_strategies.config import load_markets

    settings, base = load_sierrachart_settings(config)
    markets = load_markets(base / settings.node.markets_file)
    roots = parse_roots(instruments, settings.node.instruments)
    for root in roots:
        markets.root(root)
    if encoding is not None and encoding not in ("automatic", "json"):
        raise ConfigError(f"--encoding {encoding!r}: use automatic or json")
    if iqfeed is not None and catalog is not None:
        raise ConfigError("--iqfeed and --catalog both price the fills: pass one of them")
    if catalog is not None and not catalog.is_dir():
        raise ConfigError(f"--catalog {catalog}: not a folder")
    follow = parse_address(iqfeed, "--iqfeed") if iqfeed else None
    sim_config = settings.simulator_config(markets, roots, port=port)
    sim_config.host = host
    if encoding is not None:
        sim_config.encoding_mode = encoding  # type: ignore[assignment]
    try:
        asyncio.run(_serve(sim_config, settings, markets, follow, catalog, speed, duration, console))
    except OSError as exc:
        raise ConfigError(
            f"cannot listen on {host}:{sim_config.port} ({exc.strerror or exc}): pass --port 0 or another port"
        ) from None


async def _serve(
    sim_config: object,
    settings: "SierraChartSettings",
    markets: object,
    follow: tuple[str, int] | None,
    catalog: Path | None,
    speed: float,
    duration: float | None,
    console: object,
) -> None:
    from adapters.sierrachart.settings import iqfeed_symbol_map
    from adapters.sierrachart.simulator import DtcSimulator
    from adapters.sierrachart.simulator import SimulatorConfig
    from adapters.sierrachart.simulator.feeds import IQFeedLevel1Feed
    from mia_strategies.config import MarketsConfig

    assert isinstance(sim_config, SimulatorConfig)
    print_ = console.print  # type: ignore[attr-defined]
    sim = DtcSimulator(sim_config)
    await sim.start()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop.set)
    if duration is not None:
        loop.call_later(duration, stop.set)
    symbols = ", ".join(sim_config.symbols)
    print_(f"DTC simulator listening on {sim_config.host}:{sim.port} (encoding {sim_config.encoding_mode})")
    print_(f"port: {sim.port}")
    print_(f"accounts: {', '.join(sim_config.trade_accounts)}; symbols: {symbols}")
    feed: IQFeedLevel1Feed | None = None
    replay_task: asyncio.Task[int] | None = None
    try:
        if follow is not None:
            assert isinstance(markets, MarketsConfig)
            roots = sorted({s.underlying for s in sim_config.symbols.values()})
            mapping = iqfeed_symbol_map(markets, roots, settings.symbol_template, dict(settings.symbol_overrides))
            feed = IQFeedLevel1Feed(sim, follow[0], follow[1], mapping)
            await feed.start()
            print_(f"prices from IQFeed Level 1 at {follow[0]}:{follow[1]} ({', '.join(mapping)})")
        elif catalog is not None:
            replay_task = loop.create_task(_replay_catalog(sim, catalog, markets, speed))
            print_(f"prices from {catalog} at {speed:g}x")
        else:
            print_("no price feed: orders rest, market orders are rejected (pass --iqfeed or --catalog)")
        print_("Ctrl-C to stop")
        started = time.monotonic()
        await stop.wait()
        print_(
            f"stopping after {time.monotonic() - started:.1f}s: {len(sim.orders)} orders, "
            f"{len(sim.exchange.fills)} fills, {sim.logons} logons",
        )
    finally:
        if replay_task is not None:
            replay_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await replay_task
        if feed is not None:
            await feed.stop()
        await sim.stop()


async def _replay_catalog(sim: object, catalog: Path, markets: object, speed: float) -> int:
    """Replay each root's catalog contract as the simulator's active contract of that root."""
    from nautilus_trader.persistence.catalog import ParquetDataCatalog

    from adapters.sierrachart.simulator.feeds import CatalogReplay
    from adapters.sierrachart.simulator.feeds import load_catalog_ticks
    from adapters.sierrachart.simulator.server import DtcSimulator
    from mia_strategies.config import MarketsConfig
    from mia_strategies.instruments import parse_contract_symbol

    assert isinstance(sim, DtcSimulator) and isinstance(markets, MarketsConfig)
    by_root: dict[str, str] = {}
    for symbol in sim.config.symbols.values():
        by_root.setdefault(symbol.underlying, symbol.symbol)  # the first listed contract is the active one
    mapping: dict[str, str] = {}
    for instrument in ParquetDataCatalog(str(catalog)).instruments():
        try:
            root = parse_contract_symbol(instrument.id.symbol.value, markets).root
        except ConfigError:
            continue
        if root in by_root and root not in {parse_contract_symbol(k.split(".")[0], markets).root for k in mapping}:
            mapping[instrument.id.value] = by_root[root]
    ticks = await asyncio.to_thread(load_catalog_ticks, catalog, list(mapping))
    return await CatalogReplay(sim, ticks, mapping, speed=speed).run()


def register(app: typer.Typer, groups: Mapping[str, typer.Typer]) -> None:
    """Add ``mia dtc-sim``; register ``config/sierrachart.yaml``'s model for ``mia config check``."""
    from adapters.sierrachart.settings import SierraChartSettings
    from mia_strategies.config import register_config_kind

    register_config_kind("sierrachart", SierraChartSettings)
    app.command("dtc-sim")(dtc_sim)
