"""Open and describe a nautilus ``ParquetDataCatalog`` without reading the data itself.

The catalog layout in nautilus 1.221 is ``<catalog>/data/<snake_type>/<identifier>/<start>_<end>.parquet``
where ``<snake_type>`` is ``quote_tick``, ``trade_tick``, ``bar``, ``futures_contract`` or
``custom_<name>``, ``<identifier>`` is an instrument id (``ESZ13.GLBX``) or a bar type
(``ESZ13.GLBX-1-MINUTE-LAST-EXTERNAL``), and the file name holds the first and last ``ts_init`` of
the file as ``2013-10-07T00-01-00-000000000Z``. Summaries read those names and the parquet footers
(row counts), so ``mia catalog ls`` stays fast on catalogs of any size.
"""

import os
import re
import shutil
import uuid
from collections.abc import Iterator
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

import pandas as pd
import pyarrow.parquet as pq
from nautilus_trader.persistence.catalog import ParquetDataCatalog
from rich import box
from rich.table import Table

from mia_strategies.errors import CatalogError


#: Catalog used when neither ``--catalog`` nor ``$MIA_CATALOG`` is given (relative to the cwd).
DEFAULT_CATALOG = Path("data/catalog")
CATALOG_ENV = "MIA_CATALOG"

_FILE_TS_RE = re.compile(r"^(\d{4}-\d{2}-\d{2})T(\d{2})-(\d{2})-(\d{2})-(\d{9})Z$")


@dataclass(frozen=True)
class CatalogEntry:
    """One data type and identifier in a catalog: its time range, row and file counts."""

    data_type: str
    identifier: str
    start_ns: int | None
    end_ns: int | None
    rows: int
    files: int


@dataclass(frozen=True)
class CatalogFile:
    """One parquet file of a catalog with the ``ts_init`` interval its name (or footer) records."""

    data_type: str
    identifier: str
    path: Path
    start_ns: int | None
    end_ns: int | None


def default_catalog_path() -> Path:
    """Return the catalog folder to use when none is given.

    ``$MIA_CATALOG`` when set (and not empty), else ``data/catalog`` relative to the current
    working directory; the CLI and the backtest runner share this so both find the same data.
    """
    env = os.environ.get(CATALOG_ENV, "").strip()
    return Path(env) if env else DEFAULT_CATALOG


def catalog_has_data(path: Path) -> bool:
    """True when ``path`` is a folder with at least one parquet file under ``data/``."""
    data_dir = Path(path) / "data"
    if not data_dir.is_dir():
        return False
    return next(data_dir.rglob("*.parquet"), None) is not None


def _how_to_fill() -> str:
    return (
        "run `mia backtest` with no --catalog to build the demo catalog, "
        "or fill it with `mia ingest csv ...` / `mia ingest lean ...`"
    )


def open_catalog(path: Path) -> ParquetDataCatalog:
    """Open an existing, non-empty catalog; one-line CatalogError saying how to fill it otherwise."""
    path = Path(path)
    if not path.exists():
        raise CatalogError(f"catalog {path} not found: {_how_to_fill()}")
    if not path.is_dir():
        raise CatalogError(f"catalog {path} is not a folder: pass the catalog folder with --catalog")
    if not catalog_has_data(path):
        raise CatalogError(f"catalog {path} holds no data: {_how_to_fill()}")
    return ParquetDataCatalog(str(path.resolve()))


def parse_file_timestamp(text: str) -> int | None:
    """Nanoseconds of a catalog file-name timestamp (``2013-10-07T00-01-00-000000000Z``), else None."""
    match = _FILE_TS_RE.match(text)
    if match is None:
        return None
    date, hh, mm, ss, nanos = match.groups()
    try:
        base = pd.Timestamp(f"{date}T{hh}:{mm}:{ss}", tz="UTC")
    except ValueError:
        return None
    return int(base.value) + int(nanos)


def parse_file_interval(path: Path) -> tuple[int, int] | None:
    """The ``(first, last)`` ``ts_init`` that a catalog file name records, or None if it has none."""
    first, sep, last = Path(path).stem.partition("_")
    if not sep:
        return None
    start = parse_file_timestamp(first)
    end = parse_file_timestamp(last)
    if start is None or end is None:
        return None
    return start, end


def _footer_interval(path: Path) -> tuple[int, int] | None:
    """Min/max ``ts_init`` from the parquet column statistics: the fallback for foreign file names."""
    try:
        meta = pq.ParquetFile(path).metadata
        col = meta.schema.to_arrow_schema().get_field_index("ts_init")
        if col < 0 or meta.num_row_groups == 0:
            return None
        lows: list[int] = []
        highs: list[int] = []
        for i in range(meta.num_row_groups):
            stats = meta.row_group(i).column(col).statistics
            if stats is None or not stats.has_min_max:
                return None
            lows.append(int(stats.min))
            highs.append(int(stats.max))
        return min(lows), max(highs)
    except (OSError, ValueError):
        return None


def iter_catalog_files(path: Path, data_type: str | None = None) -> Iterator[CatalogFile]:
    """Every parquet data file of the catalog (optionally of one type) with its interval from its name.

    Files stored directly in ``data/<type>/`` (custom data without an instrument) get identifier ``""``.
    """
    data_dir = Path(path) / "data"
    if not data_dir.is_dir():
        return
    type_dirs = [data_dir / data_type] if data_type else sorted(p for p in data_dir.iterdir() if p.is_dir())
    for type_dir in type_dirs:
        if not type_dir.is_dir():
            continue
        for file in sorted(type_dir.rglob("*.parquet")):
            rel = file.parent.relative_to(type_dir)
            identifier = "" if rel == Path(".") else rel.as_posix()
            interval = parse_file_interval(file) or _footer_interval(file)
            start, end = interval if interval else (None, None)
            yield CatalogFile(type_dir.name, identifier, file, start, end)


def file_intervals(path: Path, data_type: str, identifier: str) -> list[tuple[int, int]]:
    """Sorted ``(start, end)`` intervals of the files of one type and identifier (file names only)."""
    folder = Path(path) / "data" / data_type / identifier.replace("/", "")
    if not folder.is_dir():
        return []
    intervals = [iv for f in folder.glob("*.parquet") if (iv := parse_file_interval(f)) is not None]
    return sorted(intervals)


def _min(a: int | None, b: int | None) -> int | None:
    if a is None or b is None:
        return b if a is None else a
    return min(a, b)


def _max(a: int | None, b: int | None) -> int | None:
    if a is None or b is None:
        return b if a is None else a
    return max(a, b)


def summarize(path: Path) -> list[CatalogEntry]:
    """One entry per data type and identifier: time range, rows and files, sorted by type then id.

    Reads file names and parquet footers only, never the rows, so it is fast on large catalogs.
    """
    grouped: dict[tuple[str, str], CatalogEntry] = {}
    for file in iter_catalog_files(path):
        try:
            rows = pq.ParquetFile(file.path).metadata.num_rows
        except (OSError, ValueError) as exc:
            raise CatalogError(
                f"catalog file {file.path} is unreadable ({exc.__class__.__name__}): delete it or re-ingest",
            ) from None
        key = (file.data_type, file.identifier)
        old = grouped.get(key)
        if old is None:
            grouped[key] = CatalogEntry(file.data_type, file.identifier, file.start_ns, file.end_ns, rows, 1)
        else:
            grouped[key] = CatalogEntry(
                file.data_type,
                file.identifier,
                _min(old.start_ns, file.start_ns),
                _max(old.end_ns, file.end_ns),
                old.rows + rows,
                old.files + 1,
            )
    return [grouped[k] for k in sorted(grouped)]


def data_range(path: Path, data_type: str, identifiers: Sequence[str]) -> tuple[int, int] | None:
    """Earliest start and latest end (ns) of ``data_type`` over ``identifiers``; None when there is none.

    Identifiers are matched exactly (instrument ids for ticks, bar types for ``bar``); an empty
    sequence matches nothing. Only file names are read (footers for foreign file names).
    """
    start: int | None = None
    end: int | None = None
    for identifier in dict.fromkeys(identifiers):
        folder = Path(path) / "data" / data_type / identifier.replace("/", "")
        if not folder.is_dir():
            continue
        for file in folder.glob("*.parquet"):
            interval = parse_file_interval(file) or _footer_interval(file)
            if interval is not None:
                start = _min(start, interval[0])
                end = _max(end, interval[1])
    if start is None or end is None:
        return None
    return start, end


def format_ns(ns: int | None) -> str:
    """UTC ISO time of a nanosecond timestamp (``2013-10-07T13:31:00Z``); ``-`` for None."""
    if ns is None:
        return "-"
    ts = pd.Timestamp(ns, tz="UTC")
    text = ts.strftime("%Y-%m-%dT%H:%M:%S")
    frac = ns % 1_000_000_000
    if frac:
        text += f".{frac:09d}".rstrip("0")
    return text + "Z"


def render_summary(entries: list[CatalogEntry]) -> Table:
    """A rich table of a catalog summary: UTC ISO times and thousands separators."""
    table = Table(title="catalog contents", title_justify="left", box=box.SIMPLE_HEAD)
    table.add_column("type", no_wrap=True)
    table.add_column("identifier", overflow="fold", ratio=1)
    table.add_column("start (UTC)", no_wrap=True)
    table.add_column("end (UTC)", no_wrap=True)
    table.add_column("rows", justify="right", no_wrap=True)
    table.add_column("files", justify="right", no_wrap=True)
    for e in entries:
        table.add_row(
            e.data_type,
            e.identifier or "-",
            format_ns(e.start_ns),
            format_ns(e.end_ns),
            f"{e.rows:,}",
            f"{e.files:,}",
        )
    return table


def intervals_overlap(a: tuple[int, int], b: tuple[int, int]) -> bool:
    """True when two closed ``[start, end]`` intervals share a point (nautilus files must be disjoint)."""
    return a[0] <= b[1] and b[0] <= a[1]


class StagedCatalog:
    """Write into a staging catalog next to the target, then move the files in only on success.

    The staging folder sits beside the catalog (same file system, so each move is an atomic
    rename) and is removed on exit whatever happens, so a failed ingestion leaves the catalog
    exactly as it was. Use as a context manager; call :meth:`commit` once everything is built.
    """

    def __init__(self, catalog_path: Path) -> None:
        self.target = Path(catalog_path).resolve()
        self.staging = self.target.parent / f".{self.target.name}.staging-{uuid.uuid4().hex[:12]}"
        self._catalog: ParquetDataCatalog | None = None

    def __enter__(self) -> "StagedCatalog":
        try:
            self.target.parent.mkdir(parents=True, exist_ok=True)
            self.staging.mkdir()
        except OSError as exc:
            raise CatalogError(f"cannot create catalog {self.target}: {exc.strerror or exc}") from None
        self._catalog = ParquetDataCatalog(str(self.staging))
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        shutil.rmtree(self.staging, ignore_errors=True)

    @property
    def catalog(self) -> ParquetDataCatalog:
        """The staging catalog to ``write_data`` into."""
        if self._catalog is None:
            raise RuntimeError("StagedCatalog used outside its `with` block")
        return self._catalog

    def commit(self) -> int:
        """Move every staged file into the target; return how many. Nothing moves if any would clash.

        A staged file clashes when the target already has a file of that name or one whose
        interval overlaps it (nautilus requires disjoint files per type and identifier).
        """
        data_dir = self.staging / "data"
        staged = sorted(data_dir.rglob("*.parquet")) if data_dir.is_dir() else []
        plan: list[tuple[Path, Path]] = []
        for src in staged:
            rel = src.relative_to(self.staging)
            dest = self.target / rel
            interval = parse_file_interval(src)
            if dest.exists():
                raise CatalogError(f"catalog {self.target} already has {rel}; nothing written")
            if interval is not None and dest.parent.is_dir():
                for other in dest.parent.glob("*.parquet"):
                    other_iv = parse_file_interval(other)
                    if other_iv is not None and intervals_overlap(interval, other_iv):
                        raise CatalogError(
                            f"catalog {self.target} already has {other.relative_to(self.target)} overlapping "
                            f"{rel.name}; nothing written",
                        )
            plan.append((src, dest))
        moved: list[tuple[Path, Path]] = []
        try:
            for src, dest in plan:
                dest.parent.mkdir(parents=True, exist_ok=True)
                os.replace(src, dest)
                moved.append((src, dest))
        except OSError as exc:
            for src, dest in reversed(moved):
                try:
                    os.replace(dest, src)
                except OSError:
                    dest.unlink(missing_ok=True)
            raise CatalogError(f"cannot write into catalog {self.target}: {exc.strerror or exc}") from None
        return len(moved)
