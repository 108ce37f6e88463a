"""News headlines: files into ``NewsHeadline`` data, and the offline sentiment model that scores them.

Files are CSV (header ``ts,source,headline,symbols,story_id``; ``symbols`` separated by ``;`` or
spaces) or JSON lines with the same keys. ``ts`` is the publication time (ISO 8601, UTC unless it
carries an offset, or unix seconds/ms/ns); it becomes both ``ts_event`` and ``ts_init``, so a
backtest sees a story when a live feed would have delivered it.

Sentiment is VADER's compound score (-1..1) from the lexicon bundled with the ``vaderSentiment``
package, extended with a few market words (``parameters.news.lexicon`` in feature_sets.yaml). It
runs offline: nothing is downloaded, ever, and the same text always gets the same score.
"""

import csv
import io
import json
from collections.abc import Iterable
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pandas as pd
from nautilus_trader.model.identifiers import InstrumentId

from catalog.store import StagedCatalog
from catalog.types import NewsHeadline
from mia_strategies.errors import DataValidationError


#: Instrument id stories are filed under when they name no contract (market-wide news).
NEWS_INSTRUMENT_ID = InstrumentId.from_str("NEWS.GLBX")
_MAX_ERRORS = 5


class SentimentModel:
    """VADER's compound score with extra lexicon entries; deterministic and fully offline."""

    def __init__(self, extra_lexicon: Mapping[str, float] | None = None) -> None:
        from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

        self._analyzer = SentimentIntensityAnalyzer()
        for word, valence in (extra_lexicon or {}).items():
            self._analyzer.lexicon[word.lower()] = float(valence)
        self._cache: dict[str, float] = {}

    def score(self, text: str) -> float:
        """Compound sentiment of ``text`` in [-1, 1]; 0 for empty text."""
        cached = self._cache.get(text)
        if cached is not None:
            return cached
        value = float(self._analyzer.polarity_scores(text)["compound"]) if text.strip() else 0.0
        if len(self._cache) > 10_000:
            self._cache.clear()
        self._cache[text] = value
        return value


def _parse_ts(value: Any) -> int:
    """Publication time → UTC ns; numbers are unix seconds, ms or ns by magnitude."""
    if isinstance(value, int | float) or (isinstance(value, str) and value.strip().lstrip("-").isdigit()):
        number = int(float(value))
        if number > 10**17:
            return number
        if number > 10**11:
            return number * 1_000_000
        return number * 1_000_000_000
    stamp = pd.Timestamp(str(value).strip())
    if stamp is pd.NaT:
        raise ValueError("empty time")
    stamp = stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")
    return int(stamp.value)


def _symbols(value: Any) -> str:
    if isinstance(value, list | tuple):
        parts = [str(v) for v in value]
    else:
        parts = str(value or "").replace(";", " ").replace(",", " ").split()
    return ",".join(p.strip().upper() for p in parts if p.strip())


def _records(path: Path, text: str) -> Iterable[tuple[int, dict[str, Any]]]:
    if path.suffix.lower() in (".jsonl", ".ndjson", ".json"):
        for line_no, line in enumerate(text.splitlines(), start=1):
            if line.strip():
                try:
                    record = json.loads(line)
                except json.JSONDecodeError as exc:
                    raise DataValidationError(f"{path}: line {line_no}: not JSON ({exc.msg})") from None
                if not isinstance(record, dict):
                    raise DataValidationError(f"{path}: line {line_no}: expected an object")
                yield line_no, record
        return
    reader = csv.DictReader(io.StringIO(text))
    if reader.fieldnames is None or not {"ts", "headline"} <= {f.strip() for f in reader.fieldnames}:
        raise DataValidationError(
            f"{path}: header must name at least ts and headline (ts,source,headline,symbols,story_id)"
        )
    for line_no, row in enumerate(reader, start=2):
        yield line_no, {k.strip(): v for k, v in row.items() if k is not None}


def load_headlines(path: Path | str, instrument_id: InstrumentId = NEWS_INSTRUMENT_ID) -> list[NewsHeadline]:
    """Read and validate a headline file; stories sorted by time, duplicates (same story_id) dropped."""
    path = Path(path)
    if not path.is_file():
        raise DataValidationError(f"{path}: news file not found")
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise DataValidationError(f"{path}: cannot read the news file ({exc.__class__.__name__})") from None
    out: list[NewsHeadline] = []
    seen: set[str] = set()
    errors: list[str] = []
    for line_no, record in _records(path, text):
        headline = str(record.get("headline") or "").strip()
        if not headline:
            errors.append(f"line {line_no}: headline is empty")
            continue
        try:
            ts = _parse_ts(record.get("ts"))
        except (ValueError, TypeError):
            errors.append(f"line {line_no}: cannot read the time {record.get('ts')!r}")
            continue
        story_id = str(record.get("story_id") or f"{ts}-{line_no}")
        if story_id in seen:
            continue
        seen.add(story_id)
        out.append(
            NewsHeadline(
                instrument_id=instrument_id,
                story_id=story_id,
                source=str(record.get("source") or "").strip(),
                headline=" ".join(headline.split()),
                symbols=_symbols(record.get("symbols")),
                ts_event=ts,
                ts_init=ts,
            ),
        )
    if errors:
        more = f" (+{len(errors) - _MAX_ERRORS} more)" if len(errors) > _MAX_ERRORS else ""
        raise DataValidationError(f"{path}: " + "; ".join(errors[:_MAX_ERRORS]) + more + "; nothing loaded")
    return sorted(out, key=lambda h: (h.ts_init, h.story_id))


def ingest_news(path: Path | str, catalog_path: Path, instrument_id: InstrumentId = NEWS_INSTRUMENT_ID) -> int:
    """Validate a headline file and write it into the catalog atomically; return the story count."""
    headlines = load_headlines(path, instrument_id)
    if not headlines:
        raise DataValidationError(f"{path}: the file holds no headlines, nothing written")
    with StagedCatalog(catalog_path) as staged:
        staged.catalog.write_data(headlines)
        staged.commit()
    return len(headlines)
