"""Operator control of a running node through its run folder: commands in, a state snapshot out.

``mia voice`` (or any operator tool) runs in another process than the node. They meet in the run
folder, which both can already reach and which needs no network port:

- ``RUN_DIR/control/inbox/<id>.json``: a command, written atomically (temporary file, then rename):
  ``{"id", "command": "halt" | "resume" | "flatten", "source", "requested"}``.
- ``RUN_DIR/control/done/<id>.json``: the same command with the node's answer added: ``ok``,
  ``detail``, ``done`` (ISO time). The inbox file is removed once the answer is written.
- ``RUN_DIR/live.json``: a snapshot the node rewrites every ``snapshot_s``: mode, trader, update
  time, trading state, equity, realised P&L of the trading day, open positions with unrealised P&L,
  working orders and the latest regime per instrument. The dashboard and the voice read it.
- ``RUN_DIR/regime_states.csv`` and ``RUN_DIR/model_metrics.jsonl``: every ``RegimeState`` and
  every ``mia.metrics`` payload the node publishes, appended (buffered, flushed on each poll and at
  stop) in the formats of :mod:`mia_strategies.dashboard.data`, so a live dashboard shows regimes
  and model diagnostics. With ``poll_s = 0`` (backtests) the actor only records.

:class:`OperatorControlActor` runs in the node. ``halt`` and ``resume`` set nautilus's risk engine
trading state (``HALTED`` / ``ACTIVE``), found the way the risk actor finds it; ``flatten``
publishes the risk actor's ``FlattenCommand`` on ``mia.risk.flatten``, which every MIA strategy
obeys. Every executed command is also published on :data:`OPERATOR_TOPIC` and raised as an
``operator`` alert on ``mia.alerts``, so the people watching the alerts know who did what.
"""

import csv
import datetime as dt
import io
import json
import math
import os
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from nautilus_trader.common.actor import Actor
from nautilus_trader.common.messages import TradingStateChanged
from nautilus_trader.config import ActorConfig
from nautilus_trader.config import ImportableActorConfig
from nautilus_trader.core.data import Data
from nautilus_trader.model.data import DataType
from nautilus_trader.model.enums import PositionSide
from nautilus_trader.model.enums import TradingState
from nautilus_trader.model.events import PositionClosed
from nautilus_trader.model.identifiers import Venue

from catalog.types import RegimeState
from mia_strategies import sessions
from mia_strategies.ops.alerts import ALERTS_TOPIC
from mia_strategies.ops.alerts import METRICS_TOPIC
from mia_strategies.ops.alerts import alert_payload


CONTROL_DIR = "control"
INBOX = "inbox"
DONE = "done"
LIVE_FILE = "live.json"
#: Bus topic of executed operator commands (for any component that wants to know: the risk actor).
OPERATOR_TOPIC = "mia.operator"
COMMANDS = ("halt", "resume", "flatten")

_NS = 1_000_000_000


REGIME_FILE = "regime_states.csv"
METRICS_FILE = "model_metrics.jsonl"
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
_FLUSH_LINES = 1000


def _regime_row(state: RegimeState) -> str:
    """One ``regime_states.csv`` line (CSV-quoted; arrays as JSON)."""
    values = [
        dt.datetime.fromtimestamp(state.ts_event / 1e9, tz=dt.UTC).isoformat(),
        state.instrument_id.value,
        state.regime,
        repr(float(state.confidence)),
        str(int(state.bars_in_regime)),
        state.labels,
        json.dumps([round(float(v), 8) for v in state.probabilities]),
        json.dumps([round(float(v), 8) for v in state.transition_matrix]),
        state.model_version,
    ]
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\n").writerow(values)
    return buffer.getvalue()


def _jsonable(value: Any) -> Any:
    """numpy values in metric payloads as plain numbers and lists."""
    if hasattr(value, "tolist"):
        return value.tolist()
    return str(value)


def _find_risk_engine(actor: Actor) -> Any:
    """nautilus's risk engine, found among the message bus subscribers the way the risk actor does."""
    try:
        from mia_strategies.actors.risk import find_risk_engine
    except ImportError:
        return None
    return find_risk_engine(actor)


def _now_iso() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds")


def _atomic_json(path: Path, value: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump(value, handle, sort_keys=True, default=str)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def submit_command(run_dir: Path | str, command: str, source: str = "operator") -> str:
    """Drop a command in the node's inbox; return its id (see :func:`wait_result`)."""
    if command not in COMMANDS:
        raise ValueError(f"unknown command {command!r}: use one of {', '.join(COMMANDS)}")
    request_id = f"{time.time_ns()}-{uuid.uuid4().hex[:8]}"
    payload = {"id": request_id, "command": command, "source": source, "requested": _now_iso()}
    _atomic_json(Path(run_dir) / CONTROL_DIR / INBOX / f"{request_id}.json", payload)
    return request_id


def wait_result(run_dir: Path | str, request_id: str, timeout_s: float = 10.0) -> dict[str, Any] | None:
    """The node's answer to a command, or None when it did not answer within ``timeout_s``."""
    path = Path(run_dir) / CONTROL_DIR / DONE / f"{request_id}.json"
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if path.exists():
            try:
                value = json.loads(path.read_text(encoding="utf-8"))
            except (OSError, ValueError):
                value = None
            if isinstance(value, dict):
                return value
        time.sleep(0.05)
    return None


def read_snapshot(run_dir: Path | str) -> dict[str, Any]:
    """The node's latest ``live.json`` (empty when there is none or it is unreadable)."""
    try:
        value = json.loads((Path(run_dir) / LIVE_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return value if isinstance(value, dict) else {}


def operator_control_config(
    run_dir: Path,
    mode: str = "paper",
    venue: str = "GLBX",
    poll_s: float = 0.5,
) -> ImportableActorConfig:
    """The actor's importable config: ``mia paper`` and ``mia live``; backtests pass ``poll_s=0``."""
    return ImportableActorConfig(
        actor_path="mia_strategies.ops.control:OperatorControlActor",
        config_path="mia_strategies.ops.control:OperatorControlConfig",
        config={"run_dir": str(run_dir), "mode": mode, "venue": venue, "poll_s": poll_s},
    )


class OperatorControlConfig(ActorConfig, frozen=True):
    """Configuration of :class:`OperatorControlActor`.

    Parameters
    ----------
    run_dir : str
        The run folder (its ``control/`` inbox and ``live.json``).
    mode : str, default "paper"
        Shown in the snapshot (``paper`` or ``live``).
    venue : str, default "GLBX"
        Venue of the account whose equity the snapshot reports.
    poll_s : float, default 0.5
        How often the inbox is read; 0 turns commands and snapshots off (record only: backtests).
    snapshot_s : float, default 1.0
        How often ``live.json`` is rewritten.
    """

    run_dir: str
    mode: str = "paper"
    venue: str = "GLBX"
    poll_s: float = 0.5
    snapshot_s: float = 1.0


class OperatorControlActor(Actor):
    """Execute operator commands from the run folder's inbox; keep ``live.json`` current."""

    def __init__(self, config: OperatorControlConfig) -> None:
        super().__init__(config)
        self._run_dir = Path(config.run_dir)
        self._risk_engine: Any = None
        self._trading_state = "ACTIVE"
        self._regimes: dict[str, dict[str, Any]] = {}
        self._day = ""
        self._day_pnl = 0.0
        self._day_trades = 0
        self._last_snapshot_ns = 0
        self.executed: list[dict[str, Any]] = []
        self._regime_rows: list[str] = []
        self._metric_lines: list[str] = []

    def bind_risk_engine(self, risk_engine: Any) -> None:
        """Use ``risk_engine`` (``kernel.risk_engine``) for halt and resume."""
        self._risk_engine = risk_engine

    # -- LIFECYCLE ---------------------------------------------------------------------------------

    def on_start(self) -> None:
        """Find the risk engine, create the inbox, subscribe, start polling."""
        if self._risk_engine is None:
            self._risk_engine = _find_risk_engine(self)
        if self._risk_engine is not None:
            self._trading_state = self._risk_engine.trading_state.name
        self._run_dir.mkdir(parents=True, exist_ok=True)
        self.msgbus.subscribe("events.risk", self._on_risk_event)
        self.msgbus.subscribe("events.position.*", self._on_position_event)
        self.msgbus.subscribe(METRICS_TOPIC, self._on_metrics)
        self.subscribe_data(DataType(RegimeState))
        if self.config.poll_s <= 0:
            return  # record only
        (self._run_dir / CONTROL_DIR / INBOX).mkdir(parents=True, exist_ok=True)
        (self._run_dir / CONTROL_DIR / DONE).mkdir(parents=True, exist_ok=True)
        every = dt.timedelta(seconds=self.config.poll_s)
        self.clock.set_timer("mia-operator-poll", interval=every, callback=self._poll)
        self._write_snapshot()
        if self._risk_engine is None:
            self.log.warning("operator control: no risk engine found; halt and resume will be refused")

    def on_stop(self) -> None:
        """Stop polling; leave a last snapshot."""
        if "mia-operator-poll" in self.clock.timer_names:
            self.clock.cancel_timer("mia-operator-poll")
        self.msgbus.unsubscribe("events.risk", self._on_risk_event)
        self.msgbus.unsubscribe("events.position.*", self._on_position_event)
        self.msgbus.unsubscribe(METRICS_TOPIC, self._on_metrics)
        self._flush_records()
        if self.config.poll_s > 0:
            self._write_snapshot(status="stopped")

    # -- EVENTS --------------------------------------------------------------------------------------

    def _on_risk_event(self, event: Any) -> None:
        if isinstance(event, TradingStateChanged):
            self._trading_state = event.state.name

    def _on_position_event(self, event: Any) -> None:
        if not isinstance(event, PositionClosed):
            return
        day = sessions.trading_day(event.ts_event).isoformat()
        if day != self._day:
            self._day, self._day_pnl, self._day_trades = day, 0.0, 0
        self._day_pnl += event.realized_pnl.as_double()
        self._day_trades += 1

    def on_data(self, data: Data) -> None:
        """Keep the latest regime of each instrument for the snapshot; record every regime state."""
        if isinstance(data, RegimeState):
            self._regimes[data.instrument_id.value] = {
                "regime": data.regime,
                "confidence": round(float(data.confidence), 4),
                "ts": data.ts_event,
            }
            self._regime_rows.append(_regime_row(data))
            if len(self._regime_rows) >= _FLUSH_LINES:
                self._flush_records()

    def _on_metrics(self, payload: Any) -> None:
        if isinstance(payload, dict):
            self._metric_lines.append(json.dumps(payload, sort_keys=True, default=_jsonable) + "\n")
            if len(self._metric_lines) >= _FLUSH_LINES:
                self._flush_records()

    def _flush_records(self) -> None:
        """Append buffered regime states and model metrics to the run folder."""
        try:
            if self._regime_rows:
                path = self._run_dir / REGIME_FILE
                new = not path.exists()
                with path.open("a", encoding="utf-8") as handle:
                    if new:
                        handle.write(",".join(REGIME_COLUMNS) + "\n")
                    handle.writelines(self._regime_rows)
                self._regime_rows.clear()
            if self._metric_lines:
                with (self._run_dir / METRICS_FILE).open("a", encoding="utf-8") as handle:
                    handle.writelines(self._metric_lines)
                self._metric_lines.clear()
        except OSError as err:
            self.log.error(f"operator control: cannot append to the run folder: {err}")

    # -- COMMANDS ------------------------------------------------------------------------------------

    def _poll(self, event: Any) -> None:
        inbox = self._run_dir / CONTROL_DIR / INBOX
        try:
            pending = sorted(p for p in inbox.glob("*.json") if not p.name.startswith("."))
        except OSError:
            pending = []
        for path in pending:
            self._handle_file(path)
        self._flush_records()
        now = self.clock.timestamp_ns()
        if pending or now - self._last_snapshot_ns >= int(self.config.snapshot_s * _NS):
            self._write_snapshot()

    def _handle_file(self, path: Path) -> None:
        try:
            request = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            request = {"id": path.stem, "command": "?"}
        if not isinstance(request, dict):
            request = {"id": path.stem, "command": "?"}
        ok, detail = self.execute(str(request.get("command", "")), str(request.get("source", "operator")))
        answer = {**request, "ok": ok, "detail": detail, "done": _now_iso(), "trading_state": self._trading_state}
        _atomic_json(self._run_dir / CONTROL_DIR / DONE / f"{request.get('id', path.stem)}.json", answer)
        path.unlink(missing_ok=True)

    def execute(self, command: str, source: str = "operator") -> tuple[bool, str]:
        """Carry out one command now; return (done, what happened)."""
        ts = self.clock.timestamp_ns()
        if command in ("halt", "resume"):
            if self._risk_engine is None:
                return False, "no risk engine is reachable from this node"
            state = TradingState.HALTED if command == "halt" else TradingState.ACTIVE
            self._risk_engine.set_trading_state(state)
            self._trading_state = state.name
            detail = f"trading state set to {state.name}"
        elif command == "flatten":
            from mia_strategies.risk.messages import FLATTEN_TOPIC
            from mia_strategies.risk.messages import FlattenCommand

            self.msgbus.publish(FLATTEN_TOPIC, FlattenCommand(ts, f"operator:{source}"))
            detail = "flatten sent to every MIA strategy"
        else:
            return False, f"unknown command {command!r}"
        record = {"ts_ns": ts, "command": command, "source": source, "detail": detail}
        self.executed.append(record)
        self.msgbus.publish(OPERATOR_TOPIC, record)
        self.msgbus.publish(
            ALERTS_TOPIC,
            alert_payload(
                "operator",
                f"operator {command} ({source})",
                message=detail,
                ts_event=ts,
                source=self.id.value,
                dedup_key=f"operator|{command}|{ts}",
            ),
        )
        self.log.warning(f"operator command {command} from {source}: {detail}")
        self._write_snapshot()
        return True, detail

    # -- SNAPSHOT ------------------------------------------------------------------------------------

    def snapshot(self, status: str = "running") -> dict[str, Any]:
        """What the node looks like now (``live.json``)."""
        venue = Venue(self.config.venue)
        account = self.portfolio.account(venue)
        equity = None
        currency = ""
        if account is not None:
            currency = account.base_currency.code if account.base_currency else ""
            balance = account.balance_total(account.base_currency)
            unrealized = self.portfolio.unrealized_pnls(venue)
            equity = (balance.as_double() if balance is not None else 0.0) + sum(
                m.as_double() for m in unrealized.values()
            )
        positions = []
        for position in self.cache.positions_open():
            pnl = self.portfolio.unrealized_pnl(position.instrument_id)
            positions.append(
                {
                    "instrument_id": position.instrument_id.value,
                    "side": "LONG" if position.side == PositionSide.LONG else "SHORT",
                    "quantity": position.quantity.as_double(),
                    "avg_px_open": float(position.avg_px_open),
                    "unrealized_pnl": pnl.as_double() if pnl is not None else math.nan,
                },
            )
        today = sessions.trading_day(self.clock.timestamp_ns()).isoformat()
        return {
            "mode": self.config.mode,
            "status": status,
            "trader_id": self.trader_id.value if self.trader_id is not None else "",
            "updated": _now_iso(),
            "trading_state": self._trading_state,
            "currency": currency,
            "equity": equity,
            "day": today,
            "day_realized_pnl": self._day_pnl if self._day == today else 0.0,
            "day_trades": self._day_trades if self._day == today else 0,
            "positions": positions,
            "working_orders": self.cache.orders_open_count(),
            "regimes": self._regimes,
        }

    def _write_snapshot(self, status: str = "running") -> None:
        self._last_snapshot_ns = self.clock.timestamp_ns()
        try:
            _atomic_json(self._run_dir / LIVE_FILE, self.snapshot(status))
        except OSError as err:
            self.log.error(f"operator control: cannot write {LIVE_FILE}: {err}")


__all__ = [
    "COMMANDS",
    "CONTROL_DIR",
    "LIVE_FILE",
    "OPERATOR_TOPIC",
    "OperatorControlActor",
    "OperatorControlConfig",
    "operator_control_config",
    "read_snapshot",
    "submit_command",
    "wait_result",
]
