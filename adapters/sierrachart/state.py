"""The adapter's persisted memory: which server order is which nautilus order, which fills were seen.

Sierra Chart's fills history carries only the ``ServerOrderID``, and its ``ClientOrderID`` may be
a shortened form of nautilus's (DTC allows 31 characters). To reconcile fills that happened while
the adapter was disconnected, or before a restart, the adapter must know, for every order it sent,
the nautilus order behind each server id: this store keeps that map (plus what is needed to rebuild
the order: side, type, prices, contingency links) and the execution ids already turned into fills.

It is an append-only JSON-lines file: each change is one line, written and flushed right after the
event that caused it (``fsync`` optional), so a crash loses at most the line being written. Opening
replays the file and rewrites it compactly (atomic rename) without records older than the
retention period.
"""

import contextlib
import hashlib
import json
import os
import time
from base64 import b32encode
from dataclasses import asdict
from dataclasses import dataclass
from dataclasses import field
from pathlib import Path
from typing import IO
from typing import Any

from adapters.sierrachart.constants import CLIENT_ORDER_ID_MAX_LEN


_NS_PER_DAY = 86_400 * 1_000_000_000


def dtc_client_order_id(client_order_id: str) -> str:
    """The DTC ``ClientOrderID`` for a nautilus id: itself when it fits, else a stable 22-character digest.

    DTC allows 31 printable characters; nautilus ids are usually 27-30 (``O-20251121-143000-001-000-12``)
    but UUID ids and long strategy tags exceed it. The digest is deterministic, so the same nautilus
    id always maps to the same DTC id (and the store maps it back).
    """
    if len(client_order_id) <= CLIENT_ORDER_ID_MAX_LEN and client_order_id.isascii() and client_order_id.isprintable():
        return client_order_id
    digest = hashlib.blake2b(client_order_id.encode("utf-8"), digest_size=12).digest()
    return "N-" + b32encode(digest).decode("ascii").rstrip("=")[:20]


@dataclass
class OrderRecord:
    """One order this adapter sent, enough to rebuild it in a fresh nautilus cache."""

    dtc_client_order_id: str
    client_order_id: str
    strategy_id: str
    instrument_id: str
    order_side: str
    order_type: str
    quantity: str
    time_in_force: str
    price: str | None = None
    trigger_price: str | None = None
    contingency_type: str = "NO_CONTINGENCY"
    order_list_id: str | None = None
    linked_order_ids: list[str] = field(default_factory=list)
    parent_order_id: str | None = None
    tags: list[str] = field(default_factory=list)
    reduce_only: bool = False
    ts_submitted: int = 0
    server_order_ids: list[str] = field(default_factory=list)

    @property
    def server_order_id(self) -> str | None:
        """The latest server id (it may change on cancel/replace)."""
        return self.server_order_ids[-1] if self.server_order_ids else None


class OrderIdStore:
    """Server order id ↔ client order id map and seen execution ids, persisted as JSON lines.

    ``path=None`` keeps everything in memory (tests, dry runs that need no restart).
    """

    def __init__(self, path: Path | None, *, retention_days: int = 7, fsync: bool = False) -> None:
        self.path = path
        self._fsync = fsync
        self._retention_ns = retention_days * _NS_PER_DAY
        self._by_dtc_id: dict[str, OrderRecord] = {}
        self._by_client_id: dict[str, OrderRecord] = {}
        self._by_server_id: dict[str, OrderRecord] = {}
        self._fills: dict[str, int] = {}
        self.last_fill_ns = 0
        self._file: IO[str] | None = None
        if path is not None:
            self._load(path)

    # -- queries -------------------------------------------------------------------------------

    def by_server_id(self, server_order_id: str) -> OrderRecord | None:
        """The order behind a server id (current or previous)."""
        return self._by_server_id.get(server_order_id)

    def by_dtc_id(self, dtc_id: str) -> OrderRecord | None:
        """The order behind a DTC ClientOrderID."""
        return self._by_dtc_id.get(dtc_id)

    def by_client_order_id(self, client_order_id: str) -> OrderRecord | None:
        """The order of a nautilus client order id."""
        return self._by_client_id.get(client_order_id)

    def records(self) -> list[OrderRecord]:
        """Every known order, oldest first."""
        return sorted(self._by_dtc_id.values(), key=lambda r: r.ts_submitted)

    def fill_seen(self, exec_id: str) -> bool:
        """An execution id already turned into a nautilus fill (in this or an earlier run)."""
        return exec_id in self._fills

    # -- updates -------------------------------------------------------------------------------

    def record_order(self, record: OrderRecord) -> None:
        """Remember an order as it is sent."""
        self._index(record)
        self._append({"k": "order", **asdict(record)})

    def bind(self, dtc_id: str, server_order_id: str) -> OrderRecord | None:
        """Attach a (new) server id to an order; no-op when already known."""
        record = self._by_dtc_id.get(dtc_id)
        if record is None or server_order_id in record.server_order_ids:
            return record
        record.server_order_ids.append(server_order_id)
        self._by_server_id[server_order_id] = record
        self._append({"k": "bind", "c": dtc_id, "s": server_order_id})
        return record

    def record_fill(self, exec_id: str, ts_ns: int) -> None:
        """Remember an execution id as applied."""
        if exec_id in self._fills:
            return
        self._fills[exec_id] = ts_ns
        self.last_fill_ns = max(self.last_fill_ns, ts_ns)
        self._append({"k": "fill", "e": exec_id, "t": ts_ns})

    def close(self) -> None:
        """Flush and close the file."""
        if self._file is not None:
            self._file.close()
            self._file = None

    # -- persistence ---------------------------------------------------------------------------

    def _index(self, record: OrderRecord) -> None:
        self._by_dtc_id[record.dtc_client_order_id] = record
        self._by_client_id[record.client_order_id] = record
        for server_id in record.server_order_ids:
            self._by_server_id[server_id] = record

    def _append(self, entry: dict[str, Any]) -> None:
        if self._file is None:
            return
        self._file.write(json.dumps(entry, separators=(",", ":")) + "\n")
        self._file.flush()
        if self._fsync:
            os.fsync(self._file.fileno())

    def _load(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        if path.exists():
            with path.open(encoding="utf-8") as handle:
                for line in handle:
                    with contextlib.suppress(ValueError, KeyError, TypeError):
                        self._replay(json.loads(line))  # a torn last line (crash mid-write) is skipped
        self._compact(path)
        self._file = path.open("a", encoding="utf-8")

    def _replay(self, entry: dict[str, Any]) -> None:
        kind = entry.pop("k")
        if kind == "order":
            self._index(OrderRecord(**entry))
        elif kind == "bind":
            record = self._by_dtc_id.get(entry["c"])
            if record is not None and entry["s"] not in record.server_order_ids:
                record.server_order_ids.append(entry["s"])
                self._by_server_id[entry["s"]] = record
        elif kind == "fill":
            self._fills[entry["e"]] = int(entry["t"])
            self.last_fill_ns = max(self.last_fill_ns, int(entry["t"]))

    def _compact(self, path: Path) -> None:
        """Rewrite the file without records older than the retention period (atomic rename)."""
        cutoff = time.time_ns() - self._retention_ns
        records = [r for r in self._by_dtc_id.values() if r.ts_submitted >= cutoff]
        fills = {e: t for e, t in self._fills.items() if t >= cutoff}
        self._by_dtc_id.clear()
        self._by_client_id.clear()
        self._by_server_id.clear()
        self._fills = fills
        for record in records:
            self._index(record)
        tmp = path.with_name(path.name + ".tmp")
        with tmp.open("w", encoding="utf-8") as handle:
            for record in sorted(records, key=lambda r: r.ts_submitted):
                handle.write(json.dumps({"k": "order", **asdict(record)}, separators=(",", ":")) + "\n")
            for exec_id, ts in fills.items():
                handle.write(json.dumps({"k": "fill", "e": exec_id, "t": ts}, separators=(",", ":")) + "\n")
            handle.flush()
            os.fsync(handle.fileno())
        tmp.replace(path)
