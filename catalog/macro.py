"""Macro calendar files: scheduled releases (FOMC, CPI, NFP, ...) as ``MacroEvent`` data.

File format (CSV with a header; ``#`` starts a comment line)::

    date,time,timezone,name,importance,country,known_from
    2013-10-30,14:00,America/New_York,FOMC: rate decision,3,US,
    2013-10-22,08:30,America/New_York,NFP: employment situation (Sep),3,US,2013-10-17

``name`` starts with its category (``FOMC``, ``CPI``, ``NFP``, ``PCE``, ``GDP``, ``RETAIL``, ``PPI``,
``ISM``) followed by a colon; ``importance`` is 1 (low) to 3 (high). ``known_from`` is when the date
became public (a rescheduled or unscheduled release); empty means a year ahead, as regular calendars
are. Each event becomes a ``MacroEvent`` with ``ts_event`` = the release time and ``ts_init`` = the
time it became known, so a backtest learns of a release no earlier than a live trader could.
"""

import csv
import datetime as dt
from dataclasses import dataclass
from pathlib import Path
from zoneinfo import ZoneInfo
from zoneinfo import ZoneInfoNotFoundError

import pandas as pd
from nautilus_trader.model.identifiers import InstrumentId

from catalog.store import StagedCatalog
from catalog.types import MacroEvent
from mia_strategies.errors import DataValidationError


#: Instrument id macro events are filed under (market-wide, not one contract).
MACRO_INSTRUMENT_ID = InstrumentId.from_str("MACRO.GLBX")
CATEGORIES = ("FOMC", "CPI", "NFP", "PCE", "GDP", "RETAIL", "PPI", "ISM")
_COLUMNS = ("date", "time", "timezone", "name", "importance", "country", "known_from")
_DEFAULT_LEAD = dt.timedelta(days=365)
_MAX_ERRORS = 5


def category_of(name: str) -> str:
    """The release category: the part of ``name`` before a colon when it is a known one, else a keyword match."""
    head = name.split(":", 1)[0].strip().upper()
    if head in CATEGORIES:
        return head
    upper = name.upper()
    for category in CATEGORIES:
        if category in upper:
            return category
    if "PAYROLL" in upper or "EMPLOYMENT SITUATION" in upper:
        return "NFP"
    return "OTHER"


@dataclass(frozen=True)
class _Row:
    line: int
    values: dict[str, str]


def _parse_time(date: str, time: str, tz: ZoneInfo) -> dt.datetime:
    day = dt.date.fromisoformat(date.strip())
    clock = dt.time.fromisoformat(time.strip() or "00:00")
    return dt.datetime.combine(day, clock, tzinfo=tz)


def _parse_known(text: str, tz: ZoneInfo) -> dt.datetime | None:
    text = text.strip()
    if not text:
        return None
    if " " in text or "T" in text:
        stamp = pd.Timestamp(text.replace("T", " "))
        return stamp.tz_localize(tz).to_pydatetime() if stamp.tzinfo is None else stamp.to_pydatetime()
    return dt.datetime.combine(dt.date.fromisoformat(text), dt.time(0, 0), tzinfo=tz)


def _ns(value: dt.datetime) -> int:
    return int(pd.Timestamp(value).tz_convert("UTC").value)


def _event(row: _Row) -> MacroEvent:
    v = row.values
    try:
        tz = ZoneInfo(v.get("timezone", "").strip() or "America/New_York")
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"unknown time zone {v.get('timezone')!r}") from None
    when = _parse_time(v["date"], v.get("time", ""), tz)
    known = _parse_known(v.get("known_from", ""), tz) or when - _DEFAULT_LEAD
    if known > when:
        raise ValueError(f"known_from {known.isoformat()} is after the release {when.isoformat()}")
    name = v["name"].strip()
    if not name:
        raise ValueError("name is empty")
    importance = int(v.get("importance", "").strip() or "1")
    if not 1 <= importance <= 3:
        raise ValueError(f"importance must be 1, 2 or 3, was {importance}")
    return MacroEvent(
        instrument_id=MACRO_INSTRUMENT_ID,
        name=name,
        country=(v.get("country", "") or "US").strip() or "US",
        importance=importance,
        ts_event=_ns(when),
        ts_init=_ns(known),
    )


def load_macro_calendar(path: Path | str) -> list[MacroEvent]:
    """Read and validate a calendar file; events sorted by release time. One-line error on bad rows."""
    path = Path(path)
    if not path.is_file():
        raise DataValidationError(f"{path}: macro calendar not found (see config/macro_calendar.csv for the format)")
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise DataValidationError(f"{path}: cannot read the macro calendar ({exc.__class__.__name__})") from None
    lines = [
        (i, line)
        for i, line in enumerate(text.splitlines(), start=1)
        if line.strip() and not line.lstrip().startswith("#")
    ]
    if not lines:
        return []
    reader = csv.reader([line for _, line in lines])
    header = [h.strip().lower() for h in next(reader)]
    missing = [c for c in ("date", "name") if c not in header]
    if missing:
        raise DataValidationError(f"{path}: header lacks {', '.join(missing)} (expected {','.join(_COLUMNS)})")
    events: list[MacroEvent] = []
    errors: list[str] = []
    for (line_no, _), fields in zip(lines[1:], reader, strict=True):
        values = {h: (fields[j] if j < len(fields) else "") for j, h in enumerate(header)}
        try:
            events.append(_event(_Row(line_no, values)))
        except (ValueError, KeyError) as exc:
            errors.append(f"line {line_no}: {exc}")
    if errors:
        more = f" (+{len(errors) - _MAX_ERRORS} more)" if len(errors) > _MAX_ERRORS else ""
        raise DataValidationError(f"{path}: " + "; ".join(errors[:_MAX_ERRORS]) + more + "; nothing loaded")
    return sorted(events, key=lambda e: (e.ts_event, e.name))


def ingest_macro_calendar(path: Path | str, catalog_path: Path) -> int:
    """Validate a calendar file and write its events into the catalog atomically; return the count."""
    events = load_macro_calendar(path)
    if not events:
        raise DataValidationError(f"{path}: the calendar holds no events, nothing written")
    with StagedCatalog(catalog_path) as staged:
        staged.catalog.write_data(sorted(events, key=lambda e: e.ts_init))
        staged.commit()
    return len(events)
