"""Read a run folder: every file is optional, and a file being appended to by a live node is fine.

The run folder is the contract between the parts that produce results and the dashboard: backtests
(``mia_strategies.backtest``), live and paper nodes (:mod:`mia_strategies.dashboard.feed`), the
regime, risk and model actors, and research (SHAP). Each file below has one name and fixed columns;
a missing file means "this run does not have that data" and the dashboard says so.

=========================  ====================================================================
file                       columns (timestamps ISO-8601 UTC, or integer ns where noted)
=========================  ====================================================================
``summary.json``           backtest metrics (see ``mia_strategies.results``)
``run.json``               run description; ``mode`` is ``backtest`` (default), ``paper`` or ``live``
``live.json``              snapshot of a running node (``mia_strategies.ops.control``): ``mode``,
                           ``status``, ``trader_id``, ``updated``, ``trading_state``, ``equity``,
                           ``day_realized_pnl``, ``positions`` (with unrealised P&L),
                           ``working_orders``, ``regimes``
``equity.csv``             ``ts, equity``
``per_regime.csv``         ``root, regime, bars, time_share, trades, net_pnl, win_rate``
                           (``mia_strategies.results.per_regime``: decision bars in each regime and
                           the round trips entered in it); ``summary.json``'s ``per_regime`` when
                           absent, else the P&L per regime is summed from ``positions.csv``
``positions.csv``          closed round trips, ``mia_strategies.results.TRADE_COLUMNS`` (incl. ``root``,
                           ``regime``, ``realized_pnl``, ``closed_ts``)
``fills.csv``              ``mia_strategies.results.FILL_COLUMNS``
``open_positions.csv``     ``ts, instrument_id, side, quantity, avg_px_open, unrealized_pnl,
                           realized_pnl``; without it open positions are netted from ``fills.csv``
``orders.csv``             orders with their latest state (``mia_strategies.live.ORDER_COLUMNS``:
                           ``ts_init, ts_last, client_order_id, venue_order_id, instrument_id, side,
                           order_type, quantity, price, trigger_price, status, filled_qty, avg_px,
                           tags``); the dashboard shows those still working
``regime_states.csv``      ``ts, instrument_id, regime, confidence, bars_in_regime, labels,
                           probabilities, transition_matrix, model_version`` (``labels``
                           comma-separated; ``probabilities`` and ``transition_matrix`` JSON
                           arrays, the matrix row-major n x n)
``risk_states.jsonl``      written by the risk actor: one ``RiskState`` per line with ``ts,
                           instrument_id, allowed_contracts, leverage_cap, stop_distance,
                           target_distance, trailing_distance, trading_state, halt_reason``
                           (``risk_states.csv`` with the same columns is read when it is absent)
``risk_alerts.jsonl``      the risk actor's alerts (``ts, kind, reason, detail, trading_state``),
                           shown when the run has no ``alerts.jsonl`` (the alert actor's file
                           already holds them)
``feature_importance.csv`` ``feature, importance`` and optionally ``market`` (root) and
                           ``feature_set``: mean absolute SHAP value per feature; research's
                           ``feature_importance_<MARKET>.csv`` (``mia features select``'s cache,
                           same columns) are read when it is absent
``model_metrics.jsonl``    one ``mia.metrics`` payload per line: ``ts_event`` (ns), ``instrument_id``,
                           ``source``, ``cvar_loss``, ``cvar_limit``, ``quantiles`` (list),
                           ``ensemble_weights`` (object)
``alerts.jsonl``           one alert per line as written by the alert actor
=========================  ====================================================================
"""

import hashlib
import json
import math
import re
from dataclasses import dataclass
from dataclasses import field
from pathlib import Path
from typing import Any

import pandas as pd


#: File names, in one place for the feed, the docs and the tests.
SUMMARY = "summary.json"
RUN = "run.json"
LIVE = "live.json"
EQUITY = "equity.csv"
PER_REGIME = "per_regime.csv"
POSITIONS = "positions.csv"
FILLS = "fills.csv"
OPEN_POSITIONS = "open_positions.csv"
ORDERS = "orders.csv"
REGIMES = "regime_states.csv"
RISK = "risk_states.jsonl"
RISK_CSV = "risk_states.csv"
RISK_ALERTS = "risk_alerts.jsonl"
IMPORTANCE = "feature_importance.csv"
METRICS = "model_metrics.jsonl"
ALERTS = "alerts.jsonl"
RUN_FILES = (
    SUMMARY,
    RUN,
    LIVE,
    EQUITY,
    PER_REGIME,
    POSITIONS,
    FILLS,
    OPEN_POSITIONS,
    ORDERS,
    REGIMES,
    RISK,
    RISK_CSV,
    RISK_ALERTS,
    IMPORTANCE,
    METRICS,
    ALERTS,
)
#: Order states that are still working at the venue (or about to be).
WORKING_STATUSES = frozenset(
    (
        "INITIALIZED",
        "SUBMITTED",
        "ACCEPTED",
        "TRIGGERED",
        "PARTIALLY_FILLED",
        "PENDING_UPDATE",
        "PENDING_CANCEL",
        "EMULATED",
        "RELEASED",
    ),
)
_RISK_PRIORITY = {"halt": "urgent", "reducing": "error", "resume": "warning", "block": "warning", "unblock": "info"}

OPEN_POSITION_COLUMNS = ("ts", "instrument_id", "side", "quantity", "avg_px_open", "unrealized_pnl", "realized_pnl")
ORDER_COLUMNS = (
    "ts",
    "client_order_id",
    "instrument_id",
    "side",
    "order_type",
    "quantity",
    "filled_qty",
    "price",
    "trigger_price",
    "status",
    "tags",
)
REGIME_COLUMNS = (
    "ts",
    "instrument_id",
    "regime",
    "confidence",
    "bars_in_regime",
    "labels",
    "probabilities",
    "transition_matrix",
    "model_version",
)
RISK_COLUMNS = (
    "ts",
    "instrument_id",
    "allowed_contracts",
    "leverage_cap",
    "stop_distance",
    "target_distance",
    "trailing_distance",
    "trading_state",
    "halt_reason",
)

_CONTRACT = re.compile(r"^([A-Z0-9]+?)[FGHJKMNQUVXZ]\d{1,2}$")


def root_of(instrument_id: str) -> str:
    """``ESZ25.GLBX`` -> ``ES``, ``MNQH26.GLBX`` -> ``MNQ``; anything else is its own market."""
    symbol = str(instrument_id).split(".")[0]
    match = _CONTRACT.match(symbol)
    return match.group(1) if match else symbol


def _read_json(path: Path) -> dict[str, Any]:
    try:
        value = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return value if isinstance(value, dict) else {}


def _read_csv(path: Path) -> pd.DataFrame | None:
    """A CSV or None when absent; a half-written last line (live writer) is skipped."""
    if not path.exists():
        return None
    try:
        frame = pd.read_csv(path, on_bad_lines="skip", engine="python")
    except (pd.errors.EmptyDataError, pd.errors.ParserError, OSError, UnicodeDecodeError):
        return pd.DataFrame()
    return frame


def _frame(path: Path) -> pd.DataFrame:
    frame = _read_csv(path)
    return pd.DataFrame() if frame is None else frame


def _read_jsonl(path: Path) -> list[dict[str, Any]] | None:
    if not path.exists():
        return None
    rows: list[dict[str, Any]] = []
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return []
    for line in text.splitlines():
        line = line.strip()
        if not line:
            continue
        try:
            value = json.loads(line)
        except ValueError:
            continue  # a line still being written
        if isinstance(value, dict):
            rows.append(value)
    return rows


def _times(values: pd.Series) -> pd.Series:
    """ISO strings or integer nanoseconds to UTC timestamps (unparseable -> NaT)."""
    if pd.api.types.is_numeric_dtype(values):
        return pd.to_datetime(values, unit="ns", utc=True, errors="coerce")
    return pd.to_datetime(values, utc=True, errors="coerce", format="mixed")


def _with_ts(frame: pd.DataFrame | None, column: str = "ts") -> pd.DataFrame:
    if frame is None or frame.empty or column not in frame.columns:
        return pd.DataFrame() if frame is None else frame.iloc[0:0]
    out = frame.copy()
    out[column] = _times(out[column])
    return out.dropna(subset=[column]).sort_values(column, kind="stable").reset_index(drop=True)


def _json_list(value: Any) -> list[float]:
    if isinstance(value, list):
        return [float(v) for v in value]
    if not isinstance(value, str) or not value.strip():
        return []
    try:
        parsed = json.loads(value)
    except ValueError:
        parsed = [v for v in re.split(r"[\s;,]+", value.strip("[] ")) if v]
    try:
        return [float(v) for v in parsed]
    except (TypeError, ValueError):
        return []


def _add_root(frame: pd.DataFrame) -> pd.DataFrame:
    if not frame.empty and "instrument_id" in frame.columns and "root" not in frame.columns:
        frame = frame.copy()
        frame["root"] = frame["instrument_id"].astype(str).map(root_of)
    return frame


@dataclass
class RunData:
    """Everything the dashboard shows, read from one run folder; absent files give empty tables."""

    path: Path
    mode: str = "backtest"
    summary: dict[str, Any] = field(default_factory=dict)
    run_info: dict[str, Any] = field(default_factory=dict)
    live: dict[str, Any] = field(default_factory=dict)
    equity: pd.Series = field(default_factory=lambda: pd.Series(dtype=float))
    trades: pd.DataFrame = field(default_factory=pd.DataFrame)
    per_regime: pd.DataFrame = field(default_factory=pd.DataFrame)
    fills: pd.DataFrame = field(default_factory=pd.DataFrame)
    open_positions: pd.DataFrame = field(default_factory=pd.DataFrame)
    orders: pd.DataFrame = field(default_factory=pd.DataFrame)
    regimes: pd.DataFrame = field(default_factory=pd.DataFrame)
    risk: pd.DataFrame = field(default_factory=pd.DataFrame)
    importance: pd.DataFrame = field(default_factory=pd.DataFrame)
    metrics: pd.DataFrame = field(default_factory=pd.DataFrame)
    alerts: pd.DataFrame = field(default_factory=pd.DataFrame)
    present: frozenset[str] = frozenset()

    @property
    def starting_balance(self) -> float:
        """From the summary, else the first equity point (for drawdowns)."""
        value = self.summary.get("starting_balance")
        if isinstance(value, int | float) and math.isfinite(value) and value > 0:
            return float(value)
        return float(self.equity.iloc[0]) if not self.equity.empty else 1.0

    def markets(self) -> list[str]:
        """Roots present in any per-instrument table."""
        roots: set[str] = set()
        for frame in (
            self.trades,
            self.per_regime,
            self.open_positions,
            self.orders,
            self.regimes,
            self.risk,
            self.metrics,
        ):
            if not frame.empty and "root" in frame.columns:
                roots.update(str(r) for r in frame["root"].dropna().unique() if str(r))
        if not self.importance.empty and "market" in self.importance.columns:
            roots.update(str(r) for r in self.importance["market"].dropna().unique() if str(r))
        for name in self.run_info.get("instruments", []) or []:
            roots.add(str(name))
        return sorted(roots)

    def has(self, name: str) -> bool:
        """Whether the run folder holds file ``name``."""
        return name in self.present


def signature(run_dir: Path) -> str:
    """A digest of (name, mtime, size) of every run file: changes whenever a writer touched the folder.

    A string, because browsers hold numbers as doubles and nanosecond times do not survive the trip.
    """
    digest = hashlib.sha1(usedforsecurity=False)
    for name in RUN_FILES:
        try:
            stat = (run_dir / name).stat()
        except OSError:
            continue
        digest.update(f"{name}:{stat.st_mtime_ns}:{stat.st_size};".encode())
    return digest.hexdigest()


def load_run(run_dir: Path | str) -> RunData:
    """Read every file of a run folder that exists (see the module docstring for names and columns)."""
    path = Path(run_dir)
    if not path.is_dir():
        from mia_strategies.errors import ConfigError

        raise ConfigError(f"{path}: not a run folder (pass the folder mia backtest or mia paper wrote)")
    present = frozenset(name for name in RUN_FILES if (path / name).exists())
    if any(path.glob("feature_importance_*.csv")):
        present = present | {IMPORTANCE}
    data = RunData(path=path, present=present)
    data.summary = _read_json(path / SUMMARY)
    data.run_info = _read_json(path / RUN)
    data.live = _read_json(path / LIVE)
    data.mode = str(data.live.get("mode") or data.run_info.get("mode") or "backtest")

    equity = _with_ts(_read_csv(path / EQUITY))
    if not equity.empty and "equity" in equity.columns:
        values = pd.to_numeric(equity["equity"], errors="coerce")
        data.equity = pd.Series(values.to_numpy(), index=pd.DatetimeIndex(equity["ts"]), name="equity").dropna()
    data.trades = _add_root(_with_ts(_read_csv(path / POSITIONS), "closed_ts"))
    data.per_regime = _load_per_regime(path / PER_REGIME, data.summary)
    data.fills = _add_root(_with_ts(_read_csv(path / FILLS)))
    live_positions = data.live.get("positions") if data.live.get("status") == "running" else None
    if OPEN_POSITIONS in present:
        data.open_positions = _add_root(_frame(path / OPEN_POSITIONS))
    elif isinstance(live_positions, list):  # the running node's own view, with unrealised P&L
        frame = pd.DataFrame.from_records(live_positions, columns=list(OPEN_POSITION_COLUMNS)[1:6])
        data.open_positions = _add_root(frame.assign(ts=data.live.get("updated", "")))
    else:
        data.open_positions = net_positions(data.fills)
    data.orders = _working_orders(_frame(path / ORDERS))
    data.regimes = _load_regimes(path / REGIMES)
    if RISK in present:
        rows = _read_jsonl(path / RISK) or []
        data.risk = _add_root(_with_ts(pd.DataFrame.from_records(rows) if rows else pd.DataFrame()))
    else:
        data.risk = _add_root(_with_ts(_read_csv(path / RISK_CSV)))
    data.importance = _load_importance(path / IMPORTANCE)
    data.metrics = _load_metrics(path / METRICS)
    data.alerts = _load_alerts(path / ALERTS) if ALERTS in present else _risk_alerts(path / RISK_ALERTS)
    return data


def net_positions(fills: pd.DataFrame) -> pd.DataFrame:
    """Open positions netted from the fills (NETTING: adding averages the price, reducing keeps it)."""
    columns = list(OPEN_POSITION_COLUMNS)
    if fills.empty or not {"instrument_id", "side", "quantity", "price"} <= set(fills.columns):
        return pd.DataFrame(columns=[*columns, "root"])
    rows = []
    for iid, part in fills.groupby(fills["instrument_id"].astype(str), sort=True):
        net = 0.0
        avg = 0.0
        last_ts = None
        for side, qty, px, ts in zip(part["side"], part["quantity"], part["price"], part["ts"], strict=True):
            signed = float(qty) * (1.0 if str(side).upper() == "BUY" else -1.0)
            if net == 0 or (net > 0) == (signed > 0):
                avg = (avg * abs(net) + float(px) * abs(signed)) / (abs(net) + abs(signed))
            elif abs(signed) > abs(net):
                avg = float(px)  # crossed through flat: the rest opens at this fill
            net += signed
            if abs(net) < 1e-9:
                net, avg = 0.0, 0.0
            last_ts = ts
        if net:
            rows.append(
                {
                    "ts": last_ts,
                    "instrument_id": iid,
                    "side": "LONG" if net > 0 else "SHORT",
                    "quantity": abs(net),
                    "avg_px_open": avg,
                    "unrealized_pnl": math.nan,
                    "realized_pnl": math.nan,
                },
            )
    return _add_root(pd.DataFrame(rows, columns=columns))


def _working_orders(frame: pd.DataFrame) -> pd.DataFrame:
    if frame.empty:
        return frame
    if "status" in frame.columns:
        frame = frame[frame["status"].astype(str).str.upper().isin(WORKING_STATUSES)]
    if "ts" not in frame.columns and "ts_last" in frame.columns:
        frame = frame.assign(ts=frame["ts_last"])
    return _add_root(frame.reset_index(drop=True))


def _risk_alerts(path: Path) -> pd.DataFrame:
    rows = _read_jsonl(path)
    if not rows:
        return pd.DataFrame()
    records = [
        {
            "ts": row.get("ts_ns") or row.get("ts"),
            "priority": _RISK_PRIORITY.get(str(row.get("kind", "")), "warning"),
            "kind": f"risk_{row.get('kind', '')}",
            "title": f"risk {row.get('kind', '')}: {row.get('reason', '')}".rstrip(": "),
            "message": str(row.get("detail", "")),
            "instrument_id": "",
        }
        for row in rows
    ]
    frame = pd.DataFrame.from_records(records)
    frame["ts"] = [_times(pd.Series([v])).iloc[0] for v in frame["ts"]]
    return frame.dropna(subset=["ts"]).sort_values("ts", kind="stable").reset_index(drop=True)


def _load_per_regime(path: Path, summary: dict[str, Any]) -> pd.DataFrame:
    """The run's own per-regime table: it knows the bars spent in regimes nobody traded in."""
    frame = _read_csv(path)
    if frame is None:
        rows = summary.get("per_regime")
        frame = pd.DataFrame.from_records(rows) if isinstance(rows, list) and rows else pd.DataFrame()
    if frame.empty or not {"root", "regime", "net_pnl"} <= set(frame.columns):
        return pd.DataFrame()
    frame = frame.copy()
    frame["root"] = frame["root"].astype(str)
    frame["regime"] = frame["regime"].fillna("").astype(str).replace("", "unknown")
    for column in ("bars", "time_share", "trades", "net_pnl", "win_rate"):
        frame[column] = pd.to_numeric(frame[column], errors="coerce") if column in frame.columns else math.nan
    return frame.reset_index(drop=True)


def _load_regimes(path: Path) -> pd.DataFrame:
    frame = _add_root(_with_ts(_read_csv(path)))
    if frame.empty:
        return frame
    frame = frame.copy()
    labels = frame["labels"] if "labels" in frame.columns else pd.Series("", index=frame.index)
    frame["labels"] = [
        [s.strip() for s in str(v).split(",") if s.strip()] if isinstance(v, str) else [] for v in labels
    ]
    for column in ("probabilities", "transition_matrix"):
        values = frame[column] if column in frame.columns else pd.Series("", index=frame.index)
        frame[column] = [_json_list(v) for v in values]
    return frame


def _load_importance(path: Path) -> pd.DataFrame:
    """``feature_importance.csv``, or research's per-market ``feature_importance_<MARKET>.csv`` files."""
    frame = _read_csv(path)
    if frame is None:
        parts = [
            f for f in (_read_csv(p) for p in sorted(path.parent.glob("feature_importance_*.csv"))) if f is not None
        ]
        frame = pd.concat(parts, ignore_index=True) if parts else None
    if frame is None or frame.empty or not {"feature", "importance"} <= set(frame.columns):
        return pd.DataFrame() if frame is None else frame.iloc[0:0]
    frame = frame.copy()
    frame["importance"] = pd.to_numeric(frame["importance"], errors="coerce")
    return frame.dropna(subset=["importance"])


def _load_metrics(path: Path) -> pd.DataFrame:
    rows = _read_jsonl(path)
    if rows is None:
        return pd.DataFrame()
    records = []
    for row in rows:
        ts = row.get("ts_event", row.get("ts"))
        weights = row.get("ensemble_weights")
        records.append(
            {
                "ts": ts,
                "instrument_id": str(row.get("instrument_id", "")),
                "source": str(row.get("source", "")),
                "cvar_loss": _maybe_float(row.get("cvar_loss")),
                "cvar_limit": _maybe_float(row.get("cvar_limit")),
                "quantiles": _json_list(row.get("quantiles")) or None,
                "ensemble_weights": weights if isinstance(weights, dict) else None,
            },
        )
    frame = pd.DataFrame.from_records(records)
    if frame.empty:
        return frame
    frame["ts"] = _times(pd.Series([r["ts"] for r in records]))
    return _add_root(frame.dropna(subset=["ts"]).sort_values("ts", kind="stable").reset_index(drop=True))


def _load_alerts(path: Path) -> pd.DataFrame:
    rows = _read_jsonl(path)
    if rows is None:
        return pd.DataFrame()
    frame = pd.DataFrame.from_records(rows)
    if frame.empty:
        return frame
    if "ts_event" in frame.columns:
        stamps = _times(pd.to_numeric(frame["ts_event"], errors="coerce").fillna(0).astype("int64"))
        fallback = _times(frame["ts"].str.replace(" UTC", "", regex=False)) if "ts" in frame.columns else stamps
        frame["ts"] = stamps.where(pd.to_numeric(frame["ts_event"], errors="coerce").fillna(0) > 0, fallback)
    elif "ts" in frame.columns:
        frame["ts"] = _times(frame["ts"].str.replace(" UTC", "", regex=False))
    for column in ("priority", "kind", "title", "message", "instrument_id"):
        if column not in frame.columns:
            frame[column] = ""
    return frame.sort_values("ts", kind="stable").reset_index(drop=True)


def _maybe_float(value: Any) -> float | None:
    if value is None or isinstance(value, bool):
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None
