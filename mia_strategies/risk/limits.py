"""Kill switches and the halt record that survives a restart within the trading day.

``KillSwitches`` evaluates the limits of ``risk.yaml`` against numbers the risk actor measures
(equity against the day's start and the running peak, contracts held, orders per minute) and names
every breach. ``RiskLedger`` is what is persisted: the trading day, its starting equity, the equity
peak and the halts in force, written atomically after every change so a node restarted the same
trading day comes back halted, with the same daily-loss reference. Halts end when the trading day
does, except the ``sticky`` ones (drawdown by default), which wait for ``mia risk reset``.
"""

import datetime as dt
import json
import math
import os
from collections import deque
from collections.abc import Mapping
from dataclasses import asdict
from dataclasses import dataclass
from dataclasses import field
from pathlib import Path
from typing import Any

from mia_strategies.errors import MiaError
from mia_strategies.risk.config import KillSwitchSettings


_MINUTE_NS = 60_000_000_000
STATE_VERSION = 1


class RiskStateError(MiaError):
    """The persisted risk state cannot be read: trading must not start on a guess."""


@dataclass(frozen=True)
class Breach:
    """One kill-switch breach: which limit, and the numbers that broke it."""

    switch: str
    detail: str


@dataclass
class Halt:
    """A halt in force: the kill switch, why, when, on which trading day, and whether it is sticky."""

    switch: str
    detail: str
    ts_ns: int
    trading_day: str
    sticky: bool


@dataclass
class RiskLedger:
    """The persisted state of the risk actor (one file per trader)."""

    trading_day: str = ""
    day_start_equity: float | None = None
    peak_equity: float | None = None
    halts: list[Halt] = field(default_factory=list)
    version: int = STATE_VERSION

    def to_json(self) -> str:
        """Stable JSON (sorted keys) for the state file."""
        return json.dumps(asdict(self), indent=2, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> "RiskLedger":
        """Parse the state file; raises ValueError/KeyError/TypeError on a malformed one."""
        raw = json.loads(text)
        if not isinstance(raw, dict) or raw.get("version") != STATE_VERSION:
            raise ValueError(f"unsupported state version {raw.get('version') if isinstance(raw, dict) else raw!r}")
        halts = [Halt(**h) for h in raw.get("halts", [])]
        return cls(
            trading_day=str(raw.get("trading_day", "")),
            day_start_equity=_optional_float(raw.get("day_start_equity")),
            peak_equity=_optional_float(raw.get("peak_equity")),
            halts=halts,
        )

    def roll_day(self, day: dt.date, equity: float) -> list[Halt]:
        """Start trading day ``day`` at ``equity``: drop the previous day's non-sticky halts, return them."""
        lifted = [h for h in self.halts if not h.sticky and h.trading_day != day.isoformat()]
        self.halts = [h for h in self.halts if h.sticky or h.trading_day == day.isoformat()]
        self.trading_day = day.isoformat()
        self.day_start_equity = equity
        self.peak_equity = equity if self.peak_equity is None else max(self.peak_equity, equity)
        return lifted

    def halt(self, breach: Breach, ts_ns: int, sticky: bool) -> Halt | None:
        """Record a halt for ``breach`` unless that switch already halts; return the new halt."""
        if any(h.switch == breach.switch for h in self.halts):
            return None
        record = Halt(breach.switch, breach.detail, ts_ns, self.trading_day, sticky)
        self.halts.append(record)
        return record


def _optional_float(value: object) -> float | None:
    if value is None:
        return None
    number = float(value)  # type: ignore[arg-type]
    return number if math.isfinite(number) else None


def load_ledger(path: Path) -> RiskLedger | None:
    """The persisted ledger, None when there is no file; a damaged file is a one-line error."""
    if not path.exists():
        return None
    try:
        return RiskLedger.from_json(path.read_text(encoding="utf-8"))
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise RiskStateError(
            f"risk state {path} is unreadable ({exc.__class__.__name__}: {exc}); "
            "inspect it, then run `mia risk reset --state` on it to start clean",
        ) from None


def save_ledger(path: Path, ledger: RiskLedger) -> None:
    """Write the ledger atomically (temp file in the same folder, then rename)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(ledger.to_json(), encoding="utf-8")
    os.replace(tmp, path)


class OrderRate:
    """Orders submitted in the trailing minute."""

    def __init__(self) -> None:
        self._times: deque[int] = deque()

    def add(self, ts_ns: int) -> int:
        """Count an order at ``ts_ns`` and return how many fell in the minute ending then."""
        self._times.append(ts_ns)
        while self._times and self._times[0] <= ts_ns - _MINUTE_NS:
            self._times.popleft()
        return len(self._times)


class KillSwitches:
    """The limits of ``risk.yaml``; each check returns the breaches it finds (empty: none)."""

    def __init__(self, settings: KillSwitchSettings) -> None:
        self.settings = settings

    def check_equity(self, equity: float, day_start: float | None, peak: float | None) -> list[Breach]:
        """Daily loss against the day's starting equity; drawdown against the equity peak."""
        out: list[Breach] = []
        s = self.settings
        if day_start is not None and day_start - equity >= s.max_daily_loss:
            out.append(
                Breach("max_daily_loss", f"loss {day_start - equity:.2f} >= limit {s.max_daily_loss:.2f} today"),
            )
        if peak is not None and peak > 0 and (peak - equity) / peak >= s.max_drawdown:
            out.append(
                Breach(
                    "max_drawdown",
                    f"drawdown {(peak - equity) / peak:.4f} >= limit {s.max_drawdown:.4f} from peak {peak:.2f}",
                ),
            )
        return out

    def check_contracts(self, held_by_root: Mapping[str, int]) -> list[Breach]:
        """Contracts held per root and in total against their limits."""
        out: list[Breach] = []
        s = self.settings
        for root, held in sorted(held_by_root.items()):
            limit = s.contracts_limit(root)
            if abs(held) > limit:
                out.append(Breach("max_contracts", f"{root} holds {abs(held)} contracts > limit {limit}"))
        total = sum(abs(v) for v in held_by_root.values())
        if total > s.max_contracts_total:
            out.append(Breach("max_contracts", f"{total} contracts in total > limit {s.max_contracts_total}"))
        return out[:1]

    def check_order_rate(self, orders_last_minute: int) -> list[Breach]:
        """Orders submitted in the trailing minute against the limit."""
        limit = self.settings.max_orders_per_minute
        if orders_last_minute > limit:
            return [Breach("max_orders_per_minute", f"{orders_last_minute} orders in a minute > limit {limit}")]
        return []


def describe_ledger(ledger: RiskLedger) -> dict[str, Any]:
    """A plain summary for ``mia risk status``."""
    return {
        "trading_day": ledger.trading_day,
        "day_start_equity": ledger.day_start_equity,
        "peak_equity": ledger.peak_equity,
        "halts": [asdict(h) for h in ledger.halts],
    }
