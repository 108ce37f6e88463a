"""Backtest results: performance metrics, CSV tables, ``summary.json``, an HTML report, a console table.

Every figure is computed from what the runner hands over: the equity series (balance + unrealized
P&L in the account currency, one point per decision-bar close), the closed round-trip positions
(``trades``) and the fills. Definitions, so a trader can check any number by hand:

Days and returns
    A *trading day* is a CME Globex session, named by the date it closes on
    (:func:`mia_strategies.sessions.trading_day`: anything at or after 17:00 CT counts for the next
    day, a Friday-evening/weekend stamp for Monday). The *daily return* of a day is its last equity
    point divided by the previous day's last equity point, minus 1; the first day is measured
    against the starting balance. Days without an equity point do not exist (no zero-return filler).
    ``days`` is the number of such trading days.

``starting_balance``, ``final_equity``, ``net_pnl``, ``total_return``
    ``final_equity`` is the last equity point (or, when there is no equity point at all, the
    starting balance plus the summed realized P&L of the trades). ``net_pnl = final_equity -
    starting_balance`` and ``total_return = final_equity / starting_balance - 1`` (a fraction:
    0.05 is +5 %). Both are net of commissions.

``sharpe``
    ``mean(r) / std(r) * sqrt(252)`` over the daily returns ``r``, with the sample standard
    deviation (ddof=1) and no risk-free rate. Null with fewer than 2 days or a (near-)zero std.

``sortino``
    ``mean(r) / dd * sqrt(252)`` with the downside deviation ``dd = sqrt(mean(min(r, 0)^2))`` taken
    over all days (target 0). Null with fewer than 2 days or no losing day.

``max_drawdown``
    The largest peak-to-trough fall of the equity series as a positive fraction of the peak,
    ``max(1 - equity / running_peak)``, where the starting balance is the first peak. 0 when equity
    never fell below a previous high.

``calmar``
    Annualised return ``(1 + total_return) ** (252 / days) - 1`` divided by ``max_drawdown``.
    Null with no day or a zero drawdown.

``cvar_95``
    Historical expected shortfall of the daily returns at 95 %: minus the mean of the worst
    ``k = max(1, floor(5 % of days))`` daily returns, so a positive number is an average loss
    fraction (0.02: the worst 5 % of days lost 2 % on average; negative if even those days gained).
    Null with no day.

``profit_factor``
    Gross profit / |gross loss| over the trades' realized P&L (net of commissions). Null when no
    trade lost money (including no trades).

``win_rate``, ``expectancy``, ``avg_mae``, ``avg_mfe``, ``trades``
    ``win_rate`` is the fraction of trades with realized P&L > 0 (a flat trade is not a win);
    ``expectancy`` the mean realized P&L per trade in the account currency; ``avg_mae`` /
    ``avg_mfe`` the mean adverse (<= 0) and favourable (>= 0) excursion per position in the account
    currency; ``trades`` the number of closed round trips. The averages are null without trades.

``commissions``
    Sum of the fill commissions (positive = paid); the trades' commissions when there are no fills.

``total_events``, ``elapsed_s``, ``events_per_second``
    Market-data events fed to the engine, wall-clock seconds of the run, and their ratio (null
    when no time elapsed).

Every undefined or non-finite number is ``None`` in the summary and ``null`` in ``summary.json``.
Every file is written atomically (temporary file in the same folder, then ``os.replace``) so a
crashed or interrupted run never leaves a half-written result next to good ones.
"""

import datetime as dt
import html
import json
import math
import os
import tempfile
from collections.abc import Callable
from collections.abc import Mapping
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots
from rich.table import Table

from mia_strategies.sessions import trading_day


#: Trading days per year used to annualise Sharpe, Sortino and Calmar.
ANNUALISATION_DAYS = 252

#: Every key :func:`compute_summary` returns (all always present).
SUMMARY_KEYS: tuple[str, ...] = (
    "total_return",
    "sharpe",
    "sortino",
    "calmar",
    "max_drawdown",
    "cvar_95",
    "profit_factor",
    "win_rate",
    "expectancy",
    "trades",
    "commissions",
    "total_events",
    "elapsed_s",
    "events_per_second",
    "starting_balance",
    "final_equity",
    "net_pnl",
    "days",
    "avg_mae",
    "avg_mfe",
)

#: Column order of ``positions.csv`` (extra columns of the trades frame follow in their own order).
TRADE_COLUMNS: tuple[str, ...] = (
    "position_id",
    "instrument_id",
    "root",
    "side",
    "quantity",
    "opened_ts",
    "closed_ts",
    "avg_px_open",
    "avg_px_close",
    "realized_pnl",
    "commissions",
    "mae",
    "mfe",
    "mae_points",
    "mfe_points",
    "regime",
    "exit_reason",
)
#: Column order of ``fills.csv``.
FILL_COLUMNS: tuple[str, ...] = (
    "ts",
    "instrument_id",
    "client_order_id",
    "venue_order_id",
    "trade_id",
    "side",
    "quantity",
    "price",
    "commission",
    "liquidity_side",
    "order_type",
)
#: Column order of ``equity.csv``.
EQUITY_COLUMNS: tuple[str, ...] = ("ts", "equity")
#: Columns of :func:`per_instrument`.
PER_INSTRUMENT_COLUMNS: tuple[str, ...] = (
    "trades",
    "net_pnl",
    "commissions",
    "win_rate",
    "avg_mae",
    "avg_mfe",
)

_HOUR_NS = 3_600_000_000_000
_STD_EPS = 1e-12  # a daily-return std below this is float noise on a flat series, not risk
_MAX_PLOT_POINTS = 20_000  # beyond this the equity trace is decimated (keeping extremes) for the HTML

Summary = dict[str, float | int | None]


# -- metrics ---------------------------------------------------------------------------------------


def _utc_index(index: pd.Index) -> pd.DatetimeIndex:
    """The index as UTC; naive stamps are taken as UTC (what nautilus produces)."""
    if not isinstance(index, pd.DatetimeIndex):
        raise TypeError(f"equity must be indexed by a DatetimeIndex, got {type(index).__name__}")
    return index.tz_localize("UTC") if index.tz is None else index.tz_convert("UTC")


def _trading_days(index: pd.DatetimeIndex) -> list[dt.date]:
    """``sessions.trading_day`` of every stamp, called once per distinct UTC hour.

    Chicago's UTC offset is a whole number of hours and the session boundary (17:00 CT) and midnight
    are whole local hours, so every stamp in one UTC hour belongs to the same trading day. That keeps
    a multi-year minute-bar series fast while still using the single definition in ``sessions``.
    """
    nanos = index.as_unit("ns").to_numpy(dtype="datetime64[ns]").view(np.int64)
    hours = nanos // _HOUR_NS
    cache: dict[int, dt.date] = {}
    days: list[dt.date] = []
    for hour in hours.tolist():
        day = cache.get(hour)
        if day is None:
            day = cache[hour] = trading_day(hour * _HOUR_NS)
        days.append(day)
    return days


def daily_returns(equity: pd.Series, starting_balance: float) -> pd.Series:
    """Return of each CME trading day, last equity of the day vs the previous day's last equity.

    The first day is measured against ``starting_balance`` so a loss on day one is not lost. The
    index holds ``datetime.date`` trading days (named ``trading_day``), in order.
    """
    if not starting_balance > 0:
        raise ValueError(f"starting_balance must be positive, was {starting_balance}")
    if equity.empty:
        return pd.Series([], index=pd.Index([], dtype=object, name="trading_day"), dtype=float, name="return")
    index = _utc_index(equity.index)
    values = pd.Series(equity.to_numpy(dtype=float), index=index).sort_index(kind="stable")
    days = _trading_days(pd.DatetimeIndex(values.index))
    last = values.groupby(pd.Index(days, dtype=object, name="trading_day"), sort=True).last()
    previous = np.concatenate(([float(starting_balance)], last.to_numpy(dtype=float)[:-1]))
    with np.errstate(divide="ignore", invalid="ignore"):
        returns = last.to_numpy(dtype=float) / previous - 1.0
    return pd.Series(returns, index=last.index, dtype=float, name="return")


def _finite(value: float | None) -> float | None:
    """``value`` as a plain float, or None when undefined or non-finite."""
    if value is None:
        return None
    value = float(value)
    return value + 0.0 if math.isfinite(value) else None  # + 0.0 turns -0.0 into 0.0


def _max_drawdown(equity: pd.Series, starting_balance: float) -> float:
    """Largest fall from a running peak, as a positive fraction; the starting balance is the first peak."""
    values = np.concatenate(([float(starting_balance)], equity.to_numpy(dtype=float)))
    peaks = np.maximum.accumulate(values)
    return float(np.max(1.0 - values / peaks))


def _drawdown_series(values: np.ndarray, starting_balance: float) -> np.ndarray:
    """Drawdown of each equity point as a positive fraction of the running peak (starting balance first)."""
    peaks = np.maximum.accumulate(np.concatenate(([float(starting_balance)], values)))[1:]
    return 1.0 - values / peaks


def _column(frame: pd.DataFrame, name: str) -> np.ndarray:
    """A numeric column as floats; an absent column reads as NaN (unknown), one per row."""
    if name not in frame.columns:
        return np.full(len(frame), np.nan)
    return pd.to_numeric(frame[name], errors="coerce").to_numpy(dtype=float)


def _mean(values: np.ndarray) -> float | None:
    """Mean of the known values, or None without any."""
    values = values[np.isfinite(values)]
    return float(np.mean(values)) if values.size else None


def compute_summary(
    equity: pd.Series,
    trades: pd.DataFrame,
    fills: pd.DataFrame,
    *,
    starting_balance: float,
    total_events: int,
    elapsed_s: float,
) -> Summary:
    """Every metric of the module docstring, keyed as in ``SUMMARY_KEYS``; undefined ones are None."""
    if not starting_balance > 0:
        raise ValueError(f"starting_balance must be positive, was {starting_balance}")
    equity = equity.sort_index(kind="stable")
    pnl = _column(trades, "realized_pnl")
    final_equity = float(starting_balance) + float(np.nansum(pnl)) if equity.empty else float(equity.iloc[-1])
    total_return = final_equity / float(starting_balance) - 1.0

    daily = daily_returns(equity, starting_balance).to_numpy(dtype=float)
    returns = daily[np.isfinite(daily)]  # a day after equity hit exactly 0 has no defined return
    n_days = int(returns.size)
    sharpe = sortino = cvar = None
    if n_days >= 2:
        mean = float(np.mean(returns))
        std = float(np.std(returns, ddof=1))
        if std > _STD_EPS:
            sharpe = mean / std * math.sqrt(ANNUALISATION_DAYS)
        downside = math.sqrt(float(np.mean(np.minimum(returns, 0.0) ** 2)))
        if downside > _STD_EPS:
            sortino = mean / downside * math.sqrt(ANNUALISATION_DAYS)
    if n_days:
        tail = max(1, n_days * 5 // 100)  # integer arithmetic: floor(5 % of days) without float slop
        cvar = -float(np.mean(np.sort(returns)[:tail]))

    max_dd = _max_drawdown(equity, starting_balance) if not equity.empty else 0.0
    calmar = None
    if n_days and max_dd > 0:
        growth = 1.0 + total_return
        annual = growth ** (ANNUALISATION_DAYS / n_days) - 1.0 if growth > 0 else -1.0
        calmar = annual / max_dd

    pnl = pnl[np.isfinite(pnl)]
    gross_profit = float(pnl[pnl > 0].sum())
    gross_loss = float(pnl[pnl < 0].sum())
    profit_factor = gross_profit / abs(gross_loss) if gross_loss < 0 else None

    fill_commissions = _column(fills, "commission")
    commissions = float(np.nansum(fill_commissions if len(fills) else _column(trades, "commissions")))

    summary: Summary = {
        "total_return": total_return,
        "sharpe": sharpe,
        "sortino": sortino,
        "calmar": calmar,
        "max_drawdown": max_dd,
        "cvar_95": cvar,
        "profit_factor": profit_factor,
        "win_rate": float(np.mean(pnl > 0)) if pnl.size else None,
        "expectancy": _mean(pnl),
        "trades": len(trades),
        "commissions": commissions,
        "total_events": int(total_events),
        "elapsed_s": float(elapsed_s),
        "events_per_second": total_events / elapsed_s if elapsed_s > 0 else None,
        "starting_balance": float(starting_balance),
        "final_equity": final_equity,
        "net_pnl": final_equity - float(starting_balance),
        "days": len(daily),
        "avg_mae": _mean(_column(trades, "mae")),
        "avg_mfe": _mean(_column(trades, "mfe")),
    }
    return {k: v if isinstance(v, int) else _finite(v) for k, v in summary.items()}


def per_instrument(trades: pd.DataFrame) -> pd.DataFrame:
    """Per contract root (ES, NQ, ...): trades, net P&L, commissions, win rate, mean MAE/MFE.

    Shows whether one market carries or sinks the book. Indexed by ``root``, sorted.
    """
    columns = list(PER_INSTRUMENT_COLUMNS)
    if trades.empty or "root" not in trades.columns:
        return pd.DataFrame(columns=columns, index=pd.Index([], dtype=object, name="root"))
    frame = pd.DataFrame(
        {
            "root": trades["root"].astype(str).to_numpy(),
            "realized_pnl": _column(trades, "realized_pnl"),
            "commissions": _column(trades, "commissions"),
            "mae": _column(trades, "mae"),
            "mfe": _column(trades, "mfe"),
        }
    )
    frame["win"] = frame["realized_pnl"] > 0
    grouped = frame.groupby("root", sort=True)
    out = pd.DataFrame(
        {
            "trades": grouped.size().astype(int),
            "net_pnl": grouped["realized_pnl"].sum(),
            "commissions": grouped["commissions"].sum(),
            "win_rate": grouped["win"].mean().astype(float),
            "avg_mae": grouped["mae"].mean(),
            "avg_mfe": grouped["mfe"].mean(),
        }
    )
    out.index.name = "root"
    return out[columns]


#: Columns of ``per_regime.csv`` beside ``root`` and ``regime``.
PER_REGIME_COLUMNS: tuple[str, ...] = ("bars", "time_share", "trades", "net_pnl", "win_rate")


def per_regime(trades: pd.DataFrame, regime_bars: Mapping[str, Mapping[str, int]]) -> pd.DataFrame:
    """Per root and regime: decision bars spent in it, their share of the root's bars, and the round
    trips opened in it (count, net P&L, win rate).

    Says whether the edge lives in one regime and how much of the time the book actually sits there.
    ``regime_bars`` is the strategy's count per root and regime; trades carry the regime of their entry.
    """
    keys: set[tuple[str, str]] = {(r, g) for r, per in regime_bars.items() for g in per}
    frame = pd.DataFrame(
        {
            "root": trades["root"].astype(str).to_numpy() if "root" in trades else np.array([], dtype=object),
            "regime": trades["regime"].fillna("").astype(str).replace("", "unknown").to_numpy()
            if "regime" in trades
            else np.array([], dtype=object),
            "realized_pnl": _column(trades, "realized_pnl") if "realized_pnl" in trades else np.array([]),
        }
    )
    keys.update(zip(frame["root"], frame["regime"], strict=True))
    rows = []
    for root, regime in sorted(keys):
        bars = int(regime_bars.get(root, {}).get(regime, 0))
        total = sum(regime_bars.get(root, {}).values())
        pnl = frame.loc[(frame["root"] == root) & (frame["regime"] == regime), "realized_pnl"]
        rows.append(
            {
                "root": root,
                "regime": regime,
                "bars": bars,
                "time_share": bars / total if total else math.nan,
                "trades": len(pnl),
                "net_pnl": float(pnl.sum()),
                "win_rate": float((pnl > 0).mean()) if len(pnl) else math.nan,
            }
        )
    out = pd.DataFrame(rows, columns=["root", "regime", *PER_REGIME_COLUMNS])
    return out.set_index(["root", "regime"])


def _or_dash(value: object, fmt: Callable[[float], str]) -> str:
    """A number formatted, or "-" when undefined (NaN, or null read back from JSON)."""
    if isinstance(value, int | float) and math.isfinite(value):
        return fmt(float(value))
    return "-"


def per_regime_table(table: pd.DataFrame, title: str = "per regime") -> Table:
    """The per-regime frame as a console table."""
    out = Table(title=title)
    for column in ("root", "regime", "time", "bars", "trades", "net P&L", "win rate"):
        out.add_column(column, justify="left" if column in ("root", "regime") else "right")
    for key, row in table.iterrows():
        root, regime = key if isinstance(key, tuple) else (key, "")
        out.add_row(
            str(root),
            str(regime),
            _or_dash(row["time_share"], _pct),
            str(int(row["bars"])),
            str(int(row["trades"])),
            _or_dash(row["net_pnl"], _money),
            _or_dash(row["win_rate"], _pct),
        )
    return out


def add_breakdowns(
    summary: dict[str, Any],
    regimes: pd.DataFrame,
    risk_events: pd.DataFrame,
) -> dict[str, pd.DataFrame]:
    """Put the per-regime results and risk-event counts into ``summary``; return them as report sections."""
    summary["per_regime"] = json.loads(regimes.reset_index().to_json(orient="records"))
    sections = {"Per regime (time in regime, P&L of trades entered in it)": regimes}
    if not risk_events.empty:
        summary["risk_events"] = {
            str(root): {str(k): int(v) for k, v in row.items()} for root, row in risk_events.iterrows()
        }
        sections["Risk events per instrument"] = risk_events
    return sections


def _frame_html(frame: pd.DataFrame, heading: str) -> str:
    """A small HTML table under a heading (index columns included)."""
    if frame.empty:
        return ""
    body = frame.reset_index().to_html(index=False, float_format=lambda v: f"{v:,.4g}", na_rep="-", border=0)
    body = body.replace('class="dataframe"', 'class="summary"')
    return f"<h2>{html.escape(heading)}</h2>\n{body}"


# -- files -----------------------------------------------------------------------------------------


def _atomic_write(path: Path, text: str) -> Path:
    """Write ``text`` to ``path`` via a temp file in the same folder + ``os.replace`` (never half-written)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, 0o644)  # mkstemp makes it owner-only; results are meant to be shared
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def _iso_utc(values: pd.Series | pd.Index) -> pd.Series:
    """Timestamps as ISO-8601 UTC with nanoseconds (``2025-01-02T14:30:00.000000000Z``); NaT as ``""``.

    A fixed width keeps the files diff- and sort-friendly and ``pd.to_datetime(utc=True)`` reads
    them back to the nanosecond.
    """
    stamps = pd.Series(pd.to_datetime(values, utc=True))
    naive = stamps.dt.tz_convert("UTC").dt.tz_localize(None).dt.as_unit("ns").to_numpy(dtype="datetime64[ns]")
    text = np.char.add(np.datetime_as_string(naive, unit="ns"), "Z")  # vectorised: millions of bars
    missing = stamps.isna().to_numpy()
    if missing.any():
        text = np.where(missing, "", text)
    return pd.Series(text, index=stamps.index, dtype=object)


def _is_timestamp_column(column: pd.Series) -> bool:
    """Datetime dtype, or an object column of Timestamps (how a frame built from rows holds them)."""
    if pd.api.types.is_datetime64_any_dtype(column):
        return True
    values = column.dropna()
    return bool(len(values)) and all(isinstance(v, dt.datetime) for v in values)


def _ordered(frame: pd.DataFrame, columns: Sequence[str]) -> pd.DataFrame:
    """The known columns first in a fixed order (absent ones empty), then any extras as they come."""
    extras = [c for c in frame.columns if c not in columns]
    out = frame.reindex(columns=[*columns, *extras]).reset_index(drop=True)
    for name in out.columns:
        if _is_timestamp_column(out[name]):
            out[name] = _iso_utc(out[name]).to_numpy()
    return out


def _csv(frame: pd.DataFrame) -> str:
    """CSV text; floats use Python's shortest round-trip repr, so nothing is rounded away."""
    return str(frame.to_csv(index=False, lineterminator="\n"))


def write_tables(out_dir: Path, fills: pd.DataFrame, trades: pd.DataFrame, equity: pd.Series) -> None:
    """``fills.csv``, ``positions.csv`` (the trades frame incl. MAE/MFE) and ``equity.csv`` in ``out_dir``.

    Timestamps are ISO UTC, columns are in a fixed order so tools and diffs keep working run to run,
    and an empty input still gets its header.
    """
    out_dir = Path(out_dir)
    _atomic_write(out_dir / "fills.csv", _csv(_ordered(fills, FILL_COLUMNS)))
    _atomic_write(out_dir / "positions.csv", _csv(_ordered(trades, TRADE_COLUMNS)))
    if equity.empty:
        eq = pd.DataFrame(columns=list(EQUITY_COLUMNS))
    else:
        eq = pd.DataFrame({"ts": _iso_utc(_utc_index(equity.index)).to_numpy(), "equity": equity.to_numpy(dtype=float)})
    _atomic_write(out_dir / "equity.csv", _csv(eq))


def _jsonable(value: object) -> object:
    """Plain JSON types; NaN/inf and unknowns that are not numbers become null (strict JSON)."""
    if value is None or isinstance(value, bool | str):
        return value
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, int | np.integer):
        return int(value)
    if isinstance(value, float | np.floating):
        return _finite(float(value))
    if isinstance(value, np.bool_):
        return bool(value)
    if isinstance(value, pd.Timestamp | dt.datetime | dt.date):
        return value.isoformat()
    return str(value)


def write_summary(out_dir: Path, summary: Mapping[str, object]) -> Path:
    """``summary.json``: sorted keys, NaN/inf as null so any strict JSON reader accepts it."""
    text = json.dumps(_jsonable(summary), sort_keys=True, indent=2, allow_nan=False) + "\n"
    return _atomic_write(Path(out_dir) / "summary.json", text)


# -- presentation ----------------------------------------------------------------------------------


def _money(value: float) -> str:
    sign = "-" if value < 0 else ""
    return f"{sign}${abs(value):,.2f}"


def _pct(value: float) -> str:
    return f"{value * 100:,.2f}%"


def _signed_pct(value: float) -> str:
    return f"{value * 100:+,.2f}%"


def _ratio(value: float) -> str:
    return f"{value:,.2f}"


def _count(value: float) -> str:
    return f"{value:,.0f}"


def _seconds(value: float) -> str:
    return f"{value:,.1f} s"


#: (key, label, formatter) for the console table, in reading order.
_CONSOLE_ROWS: tuple[tuple[str, str, Callable[[float], str]], ...] = (
    ("total_return", "Total return", _signed_pct),
    ("net_pnl", "Net P&L", _money),
    ("sharpe", "Sharpe", _ratio),
    ("sortino", "Sortino", _ratio),
    ("max_drawdown", "Max drawdown", _pct),
    ("cvar_95", "CVaR 95% (daily)", _pct),
    ("profit_factor", "Profit factor", _ratio),
    ("win_rate", "Win rate", _pct),
    ("expectancy", "Expectancy / trade", _money),
    ("trades", "Trades", _count),
    ("commissions", "Commissions", _money),
    ("events_per_second", "Events / s", _count),
)
#: Extra rows shown in the HTML report only.
_REPORT_EXTRA_ROWS: tuple[tuple[str, str, Callable[[float], str]], ...] = (
    ("starting_balance", "Starting balance", _money),
    ("final_equity", "Final equity", _money),
    ("days", "Trading days", _count),
    ("calmar", "Calmar", _ratio),
    ("avg_mae", "Avg MAE / trade", _money),
    ("avg_mfe", "Avg MFE / trade", _money),
    ("total_events", "Events", _count),
    ("elapsed_s", "Elapsed", _seconds),
)
_MISSING = "n/a"


def _format(summary: Mapping[str, object], key: str, fmt: Callable[[float], str]) -> str:
    """One summary value for a human; undefined (None/NaN/absent) shows as ``n/a``."""
    value = summary.get(key)
    if isinstance(value, bool) or not isinstance(value, int | float | np.integer | np.floating):
        return _MISSING
    number = float(value)
    return fmt(number) if math.isfinite(number) else _MISSING


def summary_table(summary: Mapping[str, object], title: str = "Backtest summary") -> Table:
    """The few numbers a trader looks at first, formatted (%, $, thousands separators)."""
    table = Table(title=title, show_header=True, header_style="bold")
    table.add_column("Metric")
    table.add_column("Value", justify="right")
    for key, label, fmt in _CONSOLE_ROWS:
        table.add_row(label, _format(summary, key, fmt))
    return table


def _decimate(values: np.ndarray, drawdown: np.ndarray, limit: int = _MAX_PLOT_POINTS) -> np.ndarray:
    """Positions to plot: all, or per bucket its first, last, high, low and deepest drawdown.

    Keeps a multi-year minute-bar report small and quick to open while every peak and trough
    (hence the max drawdown) stays visible. At most ``limit`` positions, in order.
    """
    n = values.size
    if n <= limit:
        return np.arange(n)
    bucket = math.ceil(n / (limit // 5))
    groups = pd.Series(np.arange(n) // bucket)
    keep: set[int] = set()
    keep.update(groups.groupby(groups).head(1).index.tolist())
    keep.update(groups.groupby(groups).tail(1).index.tolist())
    by_value = pd.Series(values).groupby(groups)
    keep.update(by_value.idxmin().tolist())
    keep.update(by_value.idxmax().tolist())
    keep.update(pd.Series(drawdown).groupby(groups).idxmax().tolist())
    return np.array(sorted(keep), dtype=np.int64)


def _summary_html(summary: Mapping[str, object]) -> str:
    """The summary as a small two-column HTML table."""
    rows = "\n".join(
        f"<tr><th>{html.escape(label)}</th><td>{html.escape(_format(summary, key, fmt))}</td></tr>"
        for key, label, fmt in (*_CONSOLE_ROWS, *_REPORT_EXTRA_ROWS)
    )
    return f'<table class="summary">\n{rows}\n</table>'


def _report_figure(equity: pd.Series, trades: pd.DataFrame, starting_balance: float) -> go.Figure:
    """Equity over drawdown (shared time axis), then per-instrument P&L bars beside MAE vs MFE."""
    fig = make_subplots(
        rows=3,
        cols=2,
        specs=[[{"colspan": 2}, None], [{"colspan": 2}, None], [{}, {}]],
        row_heights=[0.45, 0.2, 0.35],
        vertical_spacing=0.1,
        subplot_titles=("Equity", "Drawdown (%)", "Net P&L by instrument", "MAE vs MFE per trade"),
    )
    # Rows 1 and 2 share the time axis (zoom one, the other follows); row 3 has its own axes.
    fig.update_xaxes(matches="x", row=2, col=1)

    def note(text: str, axis: str) -> None:
        fig.add_annotation(
            text=text,
            xref=f"{axis} domain",
            yref=f"{axis.replace('x', 'y')} domain",
            x=0.5,
            y=0.5,
            showarrow=False,
            font={"size": 16, "color": "grey"},
        )

    if equity.empty:
        note("no equity data", "x")
        note("no equity data", "x2")
    else:
        series = equity.sort_index(kind="stable")
        values = series.to_numpy(dtype=float)
        drawdown = _drawdown_series(values, starting_balance)
        keep = _decimate(values, drawdown)
        stamps = _utc_index(series.index)[keep].strftime("%Y-%m-%d %H:%M:%S").tolist()
        # Plain lists, not numpy arrays: plotly would base64-encode arrays, hiding the values.
        fig.add_trace(
            go.Scatter(x=stamps, y=values[keep].tolist(), mode="lines", name="equity", line={"width": 1.5}),
            row=1,
            col=1,
        )
        fig.add_trace(
            go.Scatter(
                x=stamps,
                y=(-drawdown[keep] * 100.0).tolist(),
                mode="lines",
                name="drawdown %",
                fill="tozeroy",
                line={"width": 1, "color": "firebrick"},
            ),
            row=2,
            col=1,
        )
    fig.update_xaxes(showticklabels=False, row=1, col=1)
    fig.update_xaxes(title_text="time (UTC)", row=2, col=1)
    fig.update_yaxes(title_text="equity", row=1, col=1)
    fig.update_yaxes(title_text="drawdown %", row=2, col=1)

    if trades.empty:
        note("no trades", "x3")
        note("no trades", "x4")
    else:
        table = per_instrument(trades)
        net = table["net_pnl"].astype(float)
        fig.add_trace(
            go.Bar(
                x=[str(r) for r in table.index],
                y=net.tolist(),
                name="net P&L",
                marker={"color": ["seagreen" if v >= 0 else "firebrick" for v in net]},
            ),
            row=3,
            col=1,
        )
        pnl = _column(trades, "realized_pnl")
        mae = _column(trades, "mae")
        mfe = _column(trades, "mfe")
        labels = [
            " ".join(str(row.get(c, "")) for c in ("position_id", "instrument_id", "exit_reason")).strip()
            for row in trades.to_dict("records")
        ]
        for name, mask, colour in (("win", pnl > 0, "seagreen"), ("loss", ~(pnl > 0), "firebrick")):
            if not mask.any():
                continue
            fig.add_trace(
                go.Scatter(
                    x=mae[mask].tolist(),
                    y=mfe[mask].tolist(),
                    mode="markers",
                    name=name,
                    marker={"color": colour, "size": 7, "opacity": 0.7},
                    text=[labels[i] for i in np.flatnonzero(mask)],
                ),
                row=3,
                col=2,
            )
        fig.update_xaxes(title_text="MAE (worst open P&L)", row=3, col=2)
        fig.update_yaxes(title_text="MFE (best open P&L)", row=3, col=2)
        fig.update_yaxes(title_text="net P&L", row=3, col=1)
    fig.update_layout(height=1000, template="plotly_white", legend={"orientation": "h"})
    return fig


_PAGE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>{title}</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 1.5em; }}
table.summary {{ border-collapse: collapse; font-size: 0.9em; }}
table.summary th {{ text-align: left; padding: 2px 1.5em 2px 0; font-weight: normal; color: #444; }}
table.summary td {{ text-align: right; padding: 2px 0; font-variant-numeric: tabular-nums; }}
</style>
</head>
<body>
<h1>{title}</h1>
{table}
{sections}
{figure}
</body>
</html>
"""


def write_report(
    out_dir: Path,
    equity: pd.Series,
    trades: pd.DataFrame,
    summary: Mapping[str, object],
    title: str = "MIA backtest",
    sections: Mapping[str, pd.DataFrame] | None = None,
) -> Path:
    """``report.html``: one self-contained file (plotly.js inlined) that opens on an offline host.

    ``sections`` adds one table per heading (per-regime results, risk events per instrument).
    """
    start = summary.get("starting_balance")
    if isinstance(start, int | float) and math.isfinite(start) and start > 0:
        starting_balance = float(start)
    else:
        starting_balance = float(equity.iloc[0]) if not equity.empty else 1.0
    figure = _report_figure(equity, trades, starting_balance)
    body = figure.to_html(full_html=False, include_plotlyjs=True)
    extra = "\n".join(_frame_html(frame, heading) for heading, frame in (sections or {}).items())
    page = _PAGE.format(title=html.escape(title), table=_summary_html(summary), sections=extra, figure=body)
    return _atomic_write(Path(out_dir) / "report.html", page)


__all__ = [
    "ANNUALISATION_DAYS",
    "EQUITY_COLUMNS",
    "FILL_COLUMNS",
    "PER_INSTRUMENT_COLUMNS",
    "SUMMARY_KEYS",
    "TRADE_COLUMNS",
    "Summary",
    "compute_summary",
    "daily_returns",
    "per_instrument",
    "per_regime",
    "per_regime_table",
    "summary_table",
    "write_report",
    "write_summary",
    "write_tables",
]
