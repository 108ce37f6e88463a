"""``mia risk``: the persisted halt state, position sizing by hand, and a run's risk events.

- ``mia risk status``: the trading day, daily-loss reference, equity peak and halts in force.
- ``mia risk reset --confirm``: clear the halts (after a human looked at why they fired).
- ``mia risk size``: the contracts the sizing rules give for a price, ATR, probability and equity.
- ``mia risk events RUN``: stops, trailing moves, partial targets, exits and halts per instrument.

``register`` also makes ``config/risk.yaml`` and ``config/router_config.yaml`` known to
``mia config check``.
"""

from collections.abc import Mapping
from pathlib import Path
from typing import Annotated

import typer

from mia_strategies.errors import ConfigError


StateOpt = Annotated[
    Path | None,
    typer.Option("--state", help="Risk state file (default: state_file of config/risk.yaml)."),
]


def _state_path(state: Path | None) -> Path:
    from mia_strategies.risk.config import load_risk

    return state if state is not None else load_risk().state_file


def status(state: StateOpt = None) -> None:
    """Show the persisted risk state: trading day, daily-loss reference, peak, halts in force."""
    from mia_strategies.cli import console
    from mia_strategies.risk.limits import load_ledger

    path = _state_path(state)
    ledger = load_ledger(path)
    if ledger is None:
        console.print(f"{path}: no risk state yet (nothing halted)")
        return
    console.print(
        f"{path}: trading day {ledger.trading_day or '-'}, day start equity {ledger.day_start_equity}, "
        f"peak {ledger.peak_equity}",
    )
    if not ledger.halts:
        console.print("no halts in force")
    for halt in ledger.halts:
        kind = "sticky" if halt.sticky else f"until the end of {halt.trading_day}"
        console.print(f"HALTED by {halt.switch} ({kind}): {halt.detail}")


def reset(
    state: StateOpt = None,
    confirm: Annotated[bool, typer.Option("--confirm", help="Really clear every halt.")] = False,
    peak: Annotated[bool, typer.Option("--peak", help="Also forget the equity peak (drawdown restarts).")] = False,
) -> None:
    """Clear the halts of the persisted risk state so trading can resume at the next start."""
    from mia_strategies.cli import console
    from mia_strategies.risk.limits import load_ledger
    from mia_strategies.risk.limits import save_ledger

    path = _state_path(state)
    if not confirm:
        raise ConfigError(f"mia risk reset clears every halt in {path}: pass --confirm once you know why they fired")
    ledger = load_ledger(path)
    if ledger is None:
        console.print(f"{path}: no risk state (nothing to reset)")
        return
    cleared = [h.switch for h in ledger.halts]
    ledger.halts = []
    if peak:
        ledger.peak_equity = None
    save_ledger(path, ledger)
    console.print(f"{path}: cleared {', '.join(cleared) or 'no halts'}{' and the equity peak' if peak else ''}")


def size(
    root: Annotated[str, typer.Option("--root", help="Futures root, e.g. ES.")],
    price: Annotated[float, typer.Option("--price", min=0.0, help="Entry price.")],
    atr: Annotated[float, typer.Option("--atr", min=0.0, help="ATR(14) of the decision bars, in points.")],
    probability: Annotated[float, typer.Option("--probability", min=0.0, max=1.0, help="Signal probability.")],
    equity: Annotated[float, typer.Option("--equity", min=0.0, help="Account equity.")] = 100_000.0,
    regime: Annotated[str, typer.Option("--regime", help="trend, range or defensive.")] = "trend",
    atr_dynamic: Annotated[float | None, typer.Option("--atr-dynamic", help="z-score of ATR (optional).")] = None,
    imbalance: Annotated[float | None, typer.Option("--imbalance", help="orderflow_imbalance (optional).")] = None,
    risk_file: Annotated[Path | None, typer.Option("--risk", help="Risk YAML (default: config/risk.yaml).")] = None,
) -> None:
    """Contracts the risk rules allow for one entry, and how the number came about."""
    from mia_strategies.cli import console
    from mia_strategies.config import load_markets
    from mia_strategies.risk.config import REGIMES
    from mia_strategies.risk.config import load_risk
    from mia_strategies.risk.exits import payoff_ratio
    from mia_strategies.risk.sizing import contract_room
    from mia_strategies.risk.sizing import leverage_contracts
    from mia_strategies.risk.sizing import margin_contracts
    from mia_strategies.risk.sizing import size_entry

    if regime not in REGIMES:
        raise ConfigError(f"--regime {regime!r}: use one of {', '.join(REGIMES)}")
    risk = load_risk(risk_file)
    spec = load_markets().root(root.upper())
    multiplier = float(spec.multiplier)
    stop = risk.exits.stop_atr * atr
    leverage = risk.leverage[regime]  # type: ignore[index]
    limits = risk.kill_switches
    cap = min(
        leverage_contracts(equity, price, multiplier, leverage),
        margin_contracts(equity, price, multiplier, float(spec.margin_init), risk.sizing.margin_buffer),
        contract_room(limits.contracts_limit(root.upper()), limits.max_contracts_total, 0, 0),
    )
    decision = size_entry(
        probability=probability,
        payoff=payoff_ratio(risk.exits),
        equity=equity,
        stop_distance=stop,
        multiplier=multiplier,
        cap=cap,
        settings=risk.sizing,
        atr_dynamic=atr_dynamic,
        orderflow_imbalance=imbalance,
    )
    console.print(
        f"{root.upper()} {decision.contracts} contracts: Kelly {decision.kelly:.3f} x {risk.sizing.kelly_fraction:g} "
        f"-> risk {decision.risk_fraction:.4f} of equity = {decision.kelly_contracts} contracts at a "
        f"{stop:g}-point stop (${stop * multiplier:,.2f} each); scales vol {decision.volatility_scale:.2f} "
        f"flow {decision.orderflow_scale:.2f}; cap {decision.cap} ({regime} leverage {leverage:g}x, margin, limits)",
    )


def events(run: Annotated[Path, typer.Argument(help="Run folder of a backtest, paper or live session.")]) -> None:
    """Risk events of a run per instrument: stops, trailing moves, partials, targets, exits, halts."""
    from rich.table import Table

    from mia_strategies.cli import console
    from mia_strategies.risk.journal import risk_event_summary
    from mia_strategies.risk.journal import risk_event_table

    if not run.is_dir():
        raise ConfigError(f"{run}: no such run folder")
    table = risk_event_summary(risk_event_table(run))
    if table.empty:
        console.print(f"{run}: no risk events recorded")
        return
    out = Table(title=f"risk events in {run}")
    out.add_column("root")
    for column in table.columns:
        out.add_column(str(column), justify="right")
    for root, row in table.iterrows():
        out.add_row(str(root), *(str(int(v)) for v in row))
    console.print(out)


def register(app: typer.Typer, groups: Mapping[str, typer.Typer]) -> None:
    """Add ``mia risk`` and make the risk and router files checkable."""
    from mia_strategies.risk.config import register_kinds

    register_kinds()
    risk_app = typer.Typer(help="Risk state, sizing and risk events.", no_args_is_help=True)
    risk_app.command("status")(status)
    risk_app.command("reset")(reset)
    risk_app.command("size")(size)
    risk_app.command("events")(events)
    app.add_typer(risk_app, name="risk")
