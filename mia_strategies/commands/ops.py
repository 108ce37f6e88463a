"""Operations commands: ``mia alerts test``, ``mia dashboard``, ``mia report``, ``mia memory``, ``mia voice``.

Also registers the ``alerts`` and ``mia_config`` file kinds for ``mia config check``. Heavy modules
(Dash, kaleido, nautilus) are imported inside the commands so ``mia --help`` stays fast.
"""

import sys
from collections.abc import Iterator
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated
from typing import Any

import typer
from rich.console import Console
from rich.table import Table

from mia_strategies.errors import ConfigError
from mia_strategies.errors import MiaError


console = Console(width=None if sys.stdout.isatty() else 160)

alerts_app = typer.Typer(help="Alert channels: Telegram, email, SMS, log.", no_args_is_help=True)
memory_app = typer.Typer(help="The market memory (market_memory.db).", no_args_is_help=True)

AlertsConfigOpt = Annotated[
    Path | None,
    typer.Option("--config", help="alerts.yaml (default: config/alerts.yaml)."),
]
MiaConfigOpt = Annotated[
    Path | None,
    typer.Option("--settings", help="mia_config.yaml (default: config/mia_config.yaml)."),
]


# -- alerts -----------------------------------------------------------------------------------------


@alerts_app.command("test")
def alerts_test(
    config: AlertsConfigOpt = None,
    timeout: Annotated[float, typer.Option("--timeout", min=1, max=600, help="Seconds to wait for delivery.")] = 120,
) -> None:
    """Send one alert of each priority through every enabled channel and show what each did."""
    from dataclasses import replace

    from mia_strategies.ops.alerts import AlertManager
    from mia_strategies.ops.alerts import load_alerts_config
    from mia_strategies.ops.alerts import make_test_alerts

    cfg = load_alerts_config(config)
    manager = AlertManager(cfg)
    channels = tuple(manager.channel_names)
    if not channels:
        raise ConfigError("alerts: no channel is enabled; enable one under channels: in alerts.yaml")
    console.print(f"sending 4 test alerts through {', '.join(channels)} ...")
    manager.start()
    for alert in make_test_alerts():
        manager.submit(replace(alert, channels=channels))
    finished = manager.flush(timeout)
    manager.close(timeout=1.0)
    results = [r for r in manager.results if r.kind == "test"]
    table = Table(title="alert delivery", header_style="bold")
    for column in ("channel", "priority", "result", "attempts", "detail"):
        table.add_column(column)
    for r in sorted(results, key=lambda r: (r.channel, r.priority)):
        table.add_row(r.channel, r.priority, "ok" if r.ok else "FAILED", str(r.attempts), r.detail)
    console.print(table)
    expected = 4 * len(channels)
    failed = expected - sum(r.ok for r in results)
    if not finished:
        raise MiaError(f"alerts test: deliveries still running after {timeout:.0f} s; check the channels above")
    if failed:
        raise MiaError(f"alerts test: {failed} of {expected} deliveries failed (see the table above)")
    console.print(f"{expected} of {expected} deliveries ok")


# -- memory -----------------------------------------------------------------------------------------

MemoryPathOpt = Annotated[
    Path | None,
    typer.Option("--path", help="market_memory.db (default: memory.path in config/mia_config.yaml)."),
]


def _memory_path(path: Path | None, settings_file: Path | None) -> Path:
    from mia_strategies.ops.settings import load_mia_config

    return path or load_mia_config(settings_file).memory.path


@memory_app.command("stats")
def memory_stats(path: MemoryPathOpt = None, settings: MiaConfigOpt = None) -> None:
    """Show what the market memory holds: patterns, outcomes, feature sets, range, size, integrity."""
    from mia_strategies.ops.memory import MarketMemory

    db = _memory_path(path, settings)
    with MarketMemory(db, read_only=True) as memory:
        stats = memory.stats()
    table = Table(title=f"market memory {db}", show_header=False)
    table.add_column("what")
    table.add_column("value", justify="right")
    table.add_row("patterns", f"{stats.patterns:,}")
    table.add_row("with outcome", f"{stats.with_outcome:,}")
    for name, count in stats.feature_sets.items():
        table.add_row(f"feature set {name}", f"{count:,}")
    for name, count in stats.instruments.items():
        table.add_row(f"instrument {name}", f"{count:,}")
    table.add_row("first bar", _iso_ns(stats.first_ts))
    table.add_row("last bar", _iso_ns(stats.last_ts))
    table.add_row("file size", f"{stats.size_bytes / 1e6:,.2f} MB")
    table.add_row("WAL size", f"{stats.wal_bytes / 1e6:,.2f} MB")
    table.add_row("journal mode", stats.journal_mode)
    table.add_row("integrity", stats.integrity)
    console.print(table)
    if stats.integrity != "ok":
        raise MiaError(f"{db}: integrity check failed ({stats.integrity}); restore a backup or rebuild the memory")


@memory_app.command("vacuum")
def memory_vacuum(
    path: MemoryPathOpt = None,
    settings: MiaConfigOpt = None,
    keep: Annotated[
        int | None,
        typer.Option("--keep", min=1, help="Keep only the newest N patterns before compacting."),
    ] = None,
) -> None:
    """Checkpoint the WAL and compact the file (safe while readers are open; stop the writing node first)."""
    from mia_strategies.ops.memory import MarketMemory

    db = _memory_path(path, settings)
    if not db.exists():
        raise ConfigError(f"{db}: no market memory here (a node with the memory actor creates it)")
    with MarketMemory(db) as memory:
        pruned = memory.prune(keep) if keep is not None else 0
        before, after = memory.vacuum()
    pruned_text = f", {pruned:,} old patterns removed" if pruned else ""
    console.print(f"{db}: vacuumed {before / 1e6:,.2f} MB -> {after / 1e6:,.2f} MB{pruned_text}")


def _iso_ns(ts: int | None) -> str:
    if ts is None:
        return "-"
    import datetime as dt

    return dt.datetime.fromtimestamp(ts / 1e9, tz=dt.UTC).strftime("%Y-%m-%d %H:%M UTC")


# -- dashboard and report ---------------------------------------------------------------------------


def _latest_run(runs: Path) -> Path:
    candidates = [p for p in runs.iterdir() if p.is_dir() and not p.name.endswith(".partial")] if runs.is_dir() else []
    if not candidates:
        raise ConfigError(f"no run folder in {runs}: run `mia backtest` first or pass RUN_DIR")
    return max(candidates, key=lambda p: p.stat().st_mtime)


def dashboard(
    run_dir: Annotated[
        Path | None,
        typer.Argument(help="Run folder of a backtest or a running paper/live node (default: newest in ./runs)."),
    ] = None,
    host: Annotated[str | None, typer.Option("--host", help="Bind address (default 127.0.0.1).")] = None,
    port: Annotated[int | None, typer.Option("--port", min=0, max=65535, help="Port (0: any free port).")] = None,
    refresh: Annotated[float | None, typer.Option("--refresh", min=0.5, help="Seconds between reloads.")] = None,
    settings: MiaConfigOpt = None,
) -> None:
    """Serve the web dashboard of a run folder; bound elsewhere than 127.0.0.1 it needs a token."""
    import os
    import threading

    from mia_strategies.dashboard.app import is_loopback
    from mia_strategies.dashboard.app import resolve_token
    from mia_strategies.dashboard.app import start_dashboard
    from mia_strategies.ops.settings import load_mia_config

    cfg = load_mia_config(settings).dashboard
    folder = run_dir or _latest_run(Path("runs"))
    bind = host or cfg.host
    token = resolve_token(bind, os.environ.get(cfg.token_env) or None)
    server = start_dashboard(
        folder,
        host=bind,
        port=cfg.port if port is None else port,
        refresh_s=refresh or cfg.refresh_s,
        token=token,
        recent_alerts=cfg.recent_alerts,
    )
    console.print(f"dashboard of [bold]{folder}[/] at {server.url}", soft_wrap=True)
    if not is_loopback(bind):
        where = (
            f"${cfg.token_env}"
            if os.environ.get(cfg.token_env)
            else "a fresh token (set $" + cfg.token_env + " to fix it)"
        )
        console.print(f"bound to {bind}: every request needs {where}; share the URL above only with operators")
    console.print("press Ctrl+C to stop")
    stop = threading.Event()
    try:
        stop.wait()
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()


def report(
    run_dir: Annotated[Path, typer.Argument(help="Run folder (backtest, paper or live).")],
    market: Annotated[
        list[str] | None,
        typer.Option("--market", help="Only these markets (roots, repeatable); default: every market of the run."),
    ] = None,
    html_only: Annotated[bool, typer.Option("--html-only", help="Skip the PNG images (much faster).")] = False,
) -> None:
    """Export the dashboard's figures as PNG and HTML into RUN_DIR/figures/<market>/."""
    from rich.progress import BarColumn
    from rich.progress import MofNCompleteColumn
    from rich.progress import Progress
    from rich.progress import TextColumn

    from mia_strategies.dashboard.report import export_report

    progress = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), console=console)
    task = progress.add_task("figures", total=None)
    with progress:
        result = export_report(
            run_dir,
            markets=[m.upper() for m in market] if market else None,
            png=not html_only,
            progress=lambda done, total: progress.update(task, completed=done, total=total),
        )
    count = sum(1 for f in result.files if f.suffix == (".html" if html_only else ".png") and f.name != "index.html")
    kind = "HTML figures" if html_only else "figures (PNG and HTML)"
    console.print(f"{count} {kind} for {', '.join(result.markets)} written to {result.folder} (open index.html)")


# -- voice ----------------------------------------------------------------------------------------

_QUIT = {"quit", "exit", "bye", "quitter", "sortir", "au revoir"}


def voice(
    run_dir: Annotated[
        Path | None,
        typer.Argument(help="Run folder of the node to talk to (default: newest in ./runs)."),
    ] = None,
    language: Annotated[str | None, typer.Option("--language", help="en or fr (default: mia_config.yaml).")] = None,
    speak: Annotated[
        bool | None,
        typer.Option("--speak/--no-speak", help="Speak replies and alerts (default: vocal_enabled)."),
    ] = None,
    reply_wav_dir: Annotated[
        Path | None,
        typer.Option("--reply-wav-dir", help="Write each spoken reply to a WAV file here instead of the speakers."),
    ] = None,
    say: Annotated[
        str | None, typer.Option("--say", help="Only say this text (with --wav: render it) and exit.")
    ] = None,
    wav: Annotated[Path | None, typer.Option("--wav", help="With --say: the WAV file to write.")] = None,
    listen: Annotated[bool, typer.Option("--listen", help="Take commands from the microphone (vosk).")] = False,
    engine: Annotated[
        str | None,
        typer.Option("--engine", help="Speech engine: auto, espeak-ng or pyttsx3 (default: mia_config.yaml)."),
    ] = None,
    settings: MiaConfigOpt = None,
) -> None:
    """Talk to a node: status, positions, P&L, regime, halt, resume, flatten (typed or spoken)."""
    from mia_strategies.ops.settings import load_mia_config
    from mia_strategies.ops.voice import Speaker

    cfg = load_mia_config(settings)
    if engine is not None:
        if engine not in ("auto", "espeak-ng", "pyttsx3"):
            raise ConfigError(f"--engine {engine!r}: use auto, espeak-ng or pyttsx3")
        cfg = cfg.model_copy(update={"voice": cfg.voice.model_copy(update={"engine": engine})})
    lang = (language or cfg.language).lower()
    if lang not in ("en", "fr"):
        raise ConfigError(f"--language {language!r}: use en or fr")
    if say is not None:
        speaker = Speaker(lang, cfg.voice.engine, cfg.voice.rate_wpm)  # type: ignore[arg-type]
        if wav is not None:
            from mia_strategies.ops.voice import wav_rms

            speaker.render(say, wav)
            duration, rms = wav_rms(wav)
            console.print(f"{wav}: {duration:.2f} s of speech (RMS {rms:.3f}) by {speaker.backend}")
        else:
            speaker.say(say)
        return
    _dialogue(run_dir or _latest_run(Path("runs")), lang, speak, reply_wav_dir, listen, cfg)


def _dialogue(run_dir: Path, lang: str, speak: bool | None, wav_dir: Path | None, listen: bool, cfg: Any) -> None:
    """The interactive loop: one utterance in, one reply out; alerts spoken as they arrive."""
    import threading

    from mia_strategies.ops.voice import AlertTail
    from mia_strategies.ops.voice import RunFolderBackend
    from mia_strategies.ops.voice import Speaker
    from mia_strategies.ops.voice import VoiceDialogue
    from mia_strategies.ops.voice import VoskListener
    from mia_strategies.ops.voice import alert_sentence

    if not run_dir.is_dir():
        raise ConfigError(f"{run_dir}: not a run folder (pass the folder of a running node)")
    vocal = cfg.vocal_enabled if speak is None else speak
    speaker = Speaker(lang, cfg.voice.engine, cfg.voice.rate_wpm) if (vocal or wav_dir) else None  # type: ignore[arg-type]
    dialogue = VoiceDialogue(RunFolderBackend(run_dir), lang, cfg.voice.confirm_timeout_s)  # type: ignore[arg-type]
    lock = threading.Lock()
    counter = [0]

    def out(prefix: str, text: str) -> None:
        with lock:
            console.print(f"{prefix} {text}", highlight=False, soft_wrap=True)
            if speaker is None:
                return
            if wav_dir is not None:
                counter[0] += 1
                speaker.render(text, wav_dir / f"{counter[0]:04d}-{prefix.strip('>: ')}.wav")
            else:
                speaker.say(text)

    stop = threading.Event()
    tail = AlertTail(run_dir / "alerts.jsonl", cfg.voice.speak_min_priority)

    def watch_alerts() -> None:
        while not stop.wait(1.0):
            for record in tail.poll():
                out("alert>", alert_sentence(record, lang))  # type: ignore[arg-type]

    watcher = threading.Thread(target=watch_alerts, name="mia-voice-alerts", daemon=True)
    watcher.start()
    source = VoskListener(cfg.voice.stt_model).utterances() if listen else _typed_lines()
    hello = "Talking to" if lang == "en" else "Connecté à"
    out("mia>", f"{hello} {run_dir.name}.")
    try:
        for line in source:
            text = line.strip()
            if not text:
                continue
            if text.lower() in _QUIT:
                break
            console.print(f"you> {text}", highlight=False)
            out("mia>", dialogue.handle(text).text)
    finally:
        stop.set()
        watcher.join(timeout=2)


def _typed_lines() -> Iterator[str]:
    """Lines from stdin (a prompt when a person types)."""
    interactive = sys.stdin.isatty()
    while True:
        try:
            line = input("you> ") if interactive else sys.stdin.readline()
        except EOFError:
            return
        if not interactive and line == "":
            return
        yield line


def register(app: typer.Typer, groups: Mapping[str, typer.Typer]) -> None:
    """Add the operations commands and register the alerts and mia_config file kinds."""
    from mia_strategies.config import register_config_kind
    from mia_strategies.ops.alerts import AlertsConfig
    from mia_strategies.ops.settings import MiaConfig

    register_config_kind("alerts", AlertsConfig)
    register_config_kind("mia_config", MiaConfig)
    app.add_typer(alerts_app, name="alerts")
    app.add_typer(memory_app, name="memory")
    app.command("dashboard")(dashboard)
    app.command("report")(report)
    app.command("voice")(voice)
