"""Append-only JSON Lines journals in the run folder, and the risk-event tables read back from them.

The risk actor writes every published ``RiskState`` (``risk_states.jsonl``) and every alert
(``risk_alerts.jsonl``); the MIA strategy writes a snapshot per entry and exit
(``trade_snapshots.jsonl``) and one line per risk event it acts on (``risk_events.jsonl``: stops,
trailing moves, partial targets, exits on regime change, anomalies, news, macro windows, halts).
Each line is one JSON object, flushed as it is written so a crash loses nothing already decided.
``risk_event_table`` and ``risk_event_summary`` turn the journals into the per-instrument table
the backtest report shows.
"""

import json
import math
from pathlib import Path
from typing import IO
from typing import Any

import pandas as pd
from nautilus_trader.core.datetime import unix_nanos_to_iso8601


RISK_STATES = "risk_states.jsonl"
RISK_ALERTS = "risk_alerts.jsonl"
TRADE_SNAPSHOTS = "trade_snapshots.jsonl"
RISK_EVENTS = "risk_events.jsonl"

#: Columns of ``risk_event_summary`` in report order.
EVENT_KINDS: tuple[str, ...] = (
    "stop",
    "trailing_stop",
    "trail",
    "partial",
    "target",
    "exit",
    "halt",
    "reducing",
    "resume",
)


def _clean(value: Any) -> Any:
    """JSON-safe copy: NaN and infinities become null (strict JSON has no NaN)."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_clean(v) for v in value]
    return value


def iso(ts_ns: int) -> str:
    """UTC ISO time of a nanosecond timestamp, to the nanosecond (``2025-12-08T14:31:00.000000000Z``)."""
    return unix_nanos_to_iso8601(ts_ns)


class Journal:
    """One JSON Lines file, opened lazily and flushed per line; a no-op without a folder."""

    def __init__(self, folder: Path | None, name: str) -> None:
        self.path = folder / name if folder is not None else None
        self._fh: IO[str] | None = None
        self.count = 0

    def write(self, record: dict[str, Any]) -> None:
        """Append one record."""
        self.count += 1
        if self.path is None:
            return
        if self._fh is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._fh = self.path.open("a", encoding="utf-8")
        try:
            line = json.dumps(record, sort_keys=True, allow_nan=False)
        except ValueError:  # a NaN somewhere: strict JSON writes it as null
            line = json.dumps(_clean(record), sort_keys=True, allow_nan=False)
        self._fh.write(line + "\n")
        self._fh.flush()

    def close(self) -> None:
        """Close the file (reopened on the next write)."""
        if self._fh is not None:
            self._fh.close()
            self._fh = None


def read_journal(path: Path) -> list[dict[str, Any]]:
    """Every record of a journal (empty when the file does not exist)."""
    if not path.exists():
        return []
    with path.open(encoding="utf-8") as fh:
        return [json.loads(line) for line in fh if line.strip()]


def risk_event_table(run_dir: Path) -> pd.DataFrame:
    """Strategy risk events and actor alerts of a run, in time order.

    Columns: ``ts``, ``root`` (``ALL`` for account-wide alerts), ``instrument_id``, ``event`` (one of
    ``EVENT_KINDS``) and ``detail``.
    """
    rows: list[dict[str, Any]] = []
    for record in read_journal(run_dir / RISK_EVENTS):
        rows.append(
            {
                "ts": record["ts"],
                "root": record.get("root", ""),
                "instrument_id": record.get("instrument_id", ""),
                "event": record["event"],
                "detail": record.get("detail", ""),
            },
        )
    for record in read_journal(run_dir / RISK_ALERTS):
        kind = record.get("kind", "")
        if kind not in ("halt", "reducing", "resume"):
            continue
        rows.append(
            {
                "ts": record["ts"],
                "root": "ALL",
                "instrument_id": "",
                "event": kind,
                "detail": f"{record.get('reason', '')}: {record.get('detail', '')}".strip(": "),
            },
        )
    columns = ["ts", "root", "instrument_id", "event", "detail"]
    if not rows:
        return pd.DataFrame(columns=columns)
    frame = pd.DataFrame(rows, columns=columns)
    frame["ts"] = pd.to_datetime(frame["ts"], utc=True)
    return frame.sort_values(["ts", "root"], kind="stable").reset_index(drop=True)


def risk_event_summary(events: pd.DataFrame) -> pd.DataFrame:
    """Counts of each risk event per root (rows) and kind (columns ``EVENT_KINDS``)."""
    columns = list(EVENT_KINDS)
    if events.empty:
        return pd.DataFrame(columns=columns, index=pd.Index([], dtype=object, name="root"))
    table = pd.crosstab(events["root"], events["event"])
    table = table.reindex(columns=columns, fill_value=0).astype(int)
    table.index.name = "root"
    table.columns.name = None
    return table.sort_index()
