"""Real local servers for the operations tests: SMTP with STARTTLS, Telegram Bot API, SMS gateway.

Every server binds 127.0.0.1 port 0 and records what it received, so a test asserts on the bytes a
real client sent. TLS uses a self-signed certificate made with the system ``openssl`` for each test.
Failures are injected the way a real service fails (HTTP 500/429 replies, a closed port).
"""

import abc
import base64
import json
import math
import socket
import ssl
import subprocess
import threading
import time
import urllib.parse
from dataclasses import dataclass
from dataclasses import field
from http.server import BaseHTTPRequestHandler
from http.server import ThreadingHTTPServer
from pathlib import Path
from typing import Any

import msgspec
import numpy as np
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult
from nautilus_trader.common.actor import Actor
from nautilus_trader.common.enums import ComponentState
from nautilus_trader.common.messages import ComponentStateChanged
from nautilus_trader.config import ActorConfig
from nautilus_trader.core.data import Data
from nautilus_trader.core.uuid import UUID4
from nautilus_trader.model.data import Bar
from nautilus_trader.model.data import BarType
from nautilus_trader.model.data import DataType
from nautilus_trader.model.enums import OrderSide
from nautilus_trader.model.enums import TradingState
from nautilus_trader.model.identifiers import ClientId

from catalog.types import FeatureVector
from catalog.types import RegimeState
from mia_strategies.ops.alerts import ALERTS_TOPIC
from mia_strategies.ops.alerts import METRICS_TOPIC
from mia_strategies.ops.alerts import alert_payload
from mia_strategies.risk.messages import RiskAlert
from mia_strategies.strategies.base import MiaStrategy
from mia_strategies.strategies.base import MiaStrategyConfig


def make_certificate(folder: Path) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 and localhost: (cert.pem, key.pem)."""
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        [
            "openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-sha256", "-days", "2",
            "-keyout", str(key), "-out", str(cert), "-subj", "/CN=localhost",
            "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost",
        ],
        check=True,
        capture_output=True,
        timeout=60,
    )  # fmt: skip
    return cert, key


def server_context(cert: Path, key: Path) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(str(cert), str(key))
    return context


def dead_port() -> int:
    """A port on 127.0.0.1 where nothing listens (connection refused)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# -- SMTP -------------------------------------------------------------------------------------------


@dataclass
class ReceivedMail:
    mail_from: str
    rcpt_tos: list[str]
    content: bytes
    tls: bool
    login: str


@dataclass
class _MailHandler:
    messages: list[ReceivedMail] = field(default_factory=list)
    event: threading.Event = field(default_factory=threading.Event)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        auth = getattr(session, "auth_data", None)
        login = auth.login.decode() if auth is not None and session.authenticated else ""
        self.messages.append(
            ReceivedMail(
                mail_from=envelope.mail_from,
                rcpt_tos=list(envelope.rcpt_tos),
                content=bytes(envelope.content),
                tls=session.ssl is not None,
                login=login,
            ),
        )
        self.event.set()
        return "250 Message accepted for delivery"


class _BoundController(Controller):
    """aiosmtpd's threaded controller on a socket bound to port 0 beforehand (no fixed port)."""

    def __init__(self, handler: Any, **kwargs: Any) -> None:
        self._sock = socket.socket()
        self._sock.bind(("127.0.0.1", 0))
        super().__init__(handler, hostname="127.0.0.1", port=self._sock.getsockname()[1], **kwargs)

    def _create_server(self) -> Any:
        return self.loop.create_server(self._factory_invoker, sock=self._sock, ssl=self.ssl_context)


class SmtpServer:
    """An SMTP server on 127.0.0.1 that requires STARTTLS, accepts one login, and keeps every message."""

    def __init__(self, cert: Path, key: Path, username: str = "alerts", password: str = "s3cret") -> None:
        self.handler = _MailHandler()
        self.username = username
        self.password = password
        self.logins: list[str] = []

        def authenticate(server: Any, session: Any, envelope: Any, mechanism: str, data: Any) -> AuthResult:
            ok = data.login.decode() == self.username and data.password.decode() == self.password
            self.logins.append(data.login.decode())
            return AuthResult(success=ok, handled=False, auth_data=data)

        self.controller = _BoundController(
            self.handler,
            tls_context=server_context(cert, key),
            require_starttls=True,
            authenticator=authenticate,
            auth_require_tls=True,
        )
        self.port = self.controller.port

    def __enter__(self) -> "SmtpServer":
        self.controller.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.controller.stop()

    @property
    def messages(self) -> list[ReceivedMail]:
        return self.handler.messages


# -- HTTP (Telegram Bot API, Twilio-style SMS gateway) ------------------------------------------------


@dataclass
class ReceivedRequest:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body.decode())

    def form(self) -> dict[str, str]:
        return {k: v[0] for k, v in urllib.parse.parse_qs(self.body.decode()).items()}

    def basic_auth(self) -> tuple[str, str]:
        scheme, _, value = self.headers.get("Authorization", "").partition(" ")
        assert scheme == "Basic"
        user, _, password = base64.b64decode(value).decode().partition(":")
        return user, password


class _RecordingServer(abc.ABC):
    """An HTTPS server whose ``respond(request)`` decides the reply; ``fail_next`` injects failures."""

    def __init__(self, cert: Path | None, key: Path | None) -> None:
        self.requests: list[ReceivedRequest] = []
        self.failures: list[tuple[int, dict[str, Any]]] = []
        self.lock = threading.Lock()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                request = ReceivedRequest("POST", self.path, dict(self.headers.items()), self.rfile.read(length))
                with outer.lock:
                    outer.requests.append(request)
                    failure = outer.failures.pop(0) if outer.failures else None
                status, reply = failure if failure is not None else outer.respond(request)
                payload = json.dumps(reply).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, format: str, *args: Any) -> None:
                return

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        if cert is not None and key is not None:
            self.httpd.socket = server_context(cert, key).wrap_socket(self.httpd.socket, server_side=True)
        self.port = int(self.httpd.server_address[1])
        scheme = "https" if cert is not None else "http"
        self.base_url = f"{scheme}://127.0.0.1:{self.port}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    @abc.abstractmethod
    def respond(self, request: ReceivedRequest) -> tuple[int, dict[str, Any]]:
        """The reply (status, JSON body) in the service's own format."""

    def fail_next(self, count: int, status: int = 500, body: dict[str, Any] | None = None) -> None:
        with self.lock:
            self.failures.extend([(status, body or {"ok": False, "description": "Internal Server Error"})] * count)

    def __enter__(self) -> "_RecordingServer":
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


class TelegramServer(_RecordingServer):
    """Speaks the Bot API's ``sendMessage``: checks the token in the path, answers ``{"ok": true}``."""

    def __init__(self, cert: Path | None, key: Path | None, token: str = "123456:TEST-token") -> None:
        super().__init__(cert, key)
        self.token = token
        self.message_id = 0

    def respond(self, request: ReceivedRequest) -> tuple[int, dict[str, Any]]:
        if request.path != f"/bot{self.token}/sendMessage":
            return 401, {"ok": False, "error_code": 401, "description": "Unauthorized"}
        body = request.json()
        if not body.get("chat_id") or not body.get("text"):
            return 400, {"ok": False, "error_code": 400, "description": "Bad Request: message text is empty"}
        self.message_id += 1
        chat = {"id": body["chat_id"], "type": "private"}
        return 200, {"ok": True, "result": {"message_id": self.message_id, "chat": chat, "text": body["text"]}}

    def texts(self) -> list[str]:
        return [r.json()["text"] for r in self.requests if r.path.endswith("/sendMessage")]


class SmsGatewayServer(_RecordingServer):
    """Speaks Twilio's ``Messages.json``: basic auth by account SID and token, answers 201 with a sid."""

    def __init__(self, cert: Path | None, key: Path | None, sid: str = "AC0123", token: str = "sms-token") -> None:
        super().__init__(cert, key)
        self.sid = sid
        self.token = token

    def respond(self, request: ReceivedRequest) -> tuple[int, dict[str, Any]]:
        if request.path != f"/2010-04-01/Accounts/{self.sid}/Messages.json":
            return 404, {"code": 20404, "message": "The requested resource was not found"}
        try:
            user, password = request.basic_auth()
        except (AssertionError, ValueError):
            return 401, {"code": 20003, "message": "Authenticate"}
        if (user, password) != (self.sid, self.token):
            return 401, {"code": 20003, "message": "Authenticate"}
        form = request.form()
        if not form.get("To") or not form.get("Body"):
            return 400, {"code": 21604, "message": "A 'To' phone number is required."}
        return 201, {"sid": f"SM{len(self.requests):032d}", "status": "queued", "to": form["To"], "body": form["Body"]}

    def bodies(self) -> list[dict[str, str]]:
        return [r.form() for r in self.requests]


# -- a strategy that makes a node produce every kind of event the alert actor handles ---------------


class ProvocateurConfig(MiaStrategyConfig, frozen=True):
    """Which decision bar does what (counted from 1)."""

    reject_at: int = 3
    buy_at: int = 4
    kill_switch_at: int = 5
    regime_at: int = 6
    metrics_at: int = 9
    close_at: int = 12
    halt_at: int = 14
    degrade_at: int = 16
    resume_at: int = 18
    risk_halt_at: int = 20


class Provocateur(MiaStrategy):
    """On fixed decision bars: a venue rejection, a fill, a bus kill switch, regimes, metrics, a halt.

    ``risk_engine`` is set by the test after ``BacktestNode.build()`` so the halt is the real risk
    engine's trading state change.
    """

    risk_engine: Any = None

    def __init__(self, config: ProvocateurConfig) -> None:
        super().__init__(config)
        self._cfg = config
        self.count = 0

    def on_decision_bar(self, root: str, bar: Bar) -> None:
        self.count += 1
        n, c = self.count, self._cfg
        iid = bar.bar_type.instrument_id
        ts = bar.ts_event
        if n == c.reject_at:  # reduce-only sell while flat: the simulated venue rejects it
            order = self.order_factory.market(iid, OrderSide.SELL, self.instrument(iid).make_qty(1), reduce_only=True)
            self.submit_order(order)
        elif n == c.buy_at:
            self.submit_order(self.order_factory.market(iid, OrderSide.BUY, self.instrument(iid).make_qty(1)))
        elif n == c.kill_switch_at:
            payload = alert_payload(
                "kill_switch",
                "ES daily loss limit hit",
                message="daily loss 2,150 USD > limit 2,000 USD",
                instrument_id=iid.value,
                ts_event=ts,
                source="RiskActor",
                fields={"limit": 2000.0, "value": 2150.0},
            )
            self.msgbus.publish(ALERTS_TOPIC, payload)
            self.msgbus.publish(ALERTS_TOPIC, payload)  # a repeat within the window: counted, not resent
        elif n in (c.regime_at, c.regime_at + 1):
            regime = "trend" if n == c.regime_at else "defensive"
            probs = np.array([0.8, 0.1, 0.1]) if regime == "trend" else np.array([0.1, 0.2, 0.7])
            state = RegimeState(
                instrument_id=iid,
                regime=regime,
                probabilities=probs,
                confidence=float(probs.max()),
                transition_matrix=np.eye(3).ravel(),
                ts_event=ts,
                ts_init=ts,
            )
            self.publish_data(DataType(RegimeState), state)
        elif n == c.metrics_at:
            metrics = {
                "instrument_id": iid.value,
                "ts_event": ts,
                "source": "qrdqn",
                "cvar_loss": 0.9,
                "cvar_limit": 0.5,
                "quantiles": [-8.0, -6.0, -1.0, 0.0, 0.5, 1.0, 1.5, 2.0, 2.5, 3.0],
                "ensemble_weights": {"sac": 0.05, "ppo": 0.85, "qrdqn": 0.10},
            }
            self.msgbus.publish(METRICS_TOPIC, metrics)
        elif n == c.close_at:
            self.close_all_positions(iid)
        elif n == c.halt_at:
            self.risk_engine.set_trading_state(TradingState.HALTED)
        elif n == c.halt_at + 1:
            self.risk_engine.set_trading_state(TradingState.ACTIVE)
        elif n == c.risk_halt_at:  # the risk actor's way: explain, then set the engine state
            self.msgbus.publish(ALERTS_TOPIC, RiskAlert(ts, "halt", "daily_loss", "loss 2,150 > 2,000", "HALTED"))
            self.risk_engine.set_trading_state(TradingState.HALTED)
        elif n == c.risk_halt_at + 1:
            self.risk_engine.set_trading_state(TradingState.ACTIVE)
            self.msgbus.publish(ALERTS_TOPIC, RiskAlert(ts, "resume", "", "trading state HALTED -> ACTIVE", "ACTIVE"))
        elif n in (c.degrade_at, c.resume_at):
            state = ComponentState.DEGRADED if n == c.degrade_at else ComponentState.RUNNING
            event = ComponentStateChanged(
                trader_id=self.trader_id,
                component_id=ClientId("IQFEED"),
                component_type="IQFeedDataClient",
                state=state,
                config={},
                event_id=UUID4(),
                ts_event=ts,
                ts_init=ts,
            )
            self.msgbus.publish("events.system.IQFEED", event)


# -- market memory: a feature/regime publisher and crash-test writers -------------------------------


class FeatureFeederConfig(ActorConfig, frozen=True):
    """Bars to turn into features; ``delay_ms`` slows each bar so a test can kill the process mid-run."""

    bar_types: tuple[str, ...]
    feature_set: str = "ES.test"
    delay_ms: float = 0.0
    metrics: bool = False


class FeatureFeeder(Actor):
    """Publishes a FeatureVector and a RegimeState on every bar (what the feature and regime actors do)."""

    def __init__(self, config: FeatureFeederConfig) -> None:
        super().__init__(config)
        self.closes: dict[str, list[tuple[int, float]]] = {}
        self.contexts: list[FeatureVector] = []
        self.features: dict[int, np.ndarray] = {}
        self.probs: dict[int, np.ndarray] = {}

    def on_start(self) -> None:
        for bar_type in self.config.bar_types:
            self.subscribe_bars(BarType.from_str(bar_type))
        self.subscribe_data(DataType(FeatureVector))

    def on_bar(self, bar: Bar) -> None:
        iid = bar.bar_type.instrument_id
        series = self.closes.setdefault(iid.value, [])
        close = bar.close.as_double()
        series.append((bar.ts_event, close))
        past = [c for _, c in series[-6:]]
        ret1 = math.log(close / past[-2]) if len(past) > 1 else 0.0
        ret5 = math.log(close / past[0]) if len(past) > 1 else 0.0
        spread = (bar.high.as_double() - bar.low.as_double()) / close
        values = np.array([ret1 * 1e4, ret5 * 1e4, spread * 1e4, float(bar.volume.as_double())])
        self.features[bar.ts_event] = values
        self.publish_data(
            DataType(FeatureVector),
            FeatureVector(
                instrument_id=iid,
                feature_set=self.config.feature_set,
                values=values,
                ts_event=bar.ts_event,
                ts_init=bar.ts_init,
            ),
        )
        up = 1.0 / (1.0 + math.exp(-ret5 * 2e3))
        probs = np.array([up * 0.8, 0.2, (1 - up) * 0.8])
        labels = ("trend", "range", "defensive")
        self.probs[bar.ts_event] = probs
        self.publish_data(
            DataType(RegimeState),
            RegimeState(
                instrument_id=iid,
                regime=labels[int(np.argmax(probs))],
                probabilities=probs,
                confidence=float(probs.max()),
                transition_matrix=np.full(9, 1 / 3),
                ts_event=bar.ts_event,
                ts_init=bar.ts_init,
            ),
        )
        if self.config.metrics:  # what a QR-DQN / ensemble provider publishes once per bar
            quantiles = sorted(float(v) for v in ret5 * 1e4 + np.linspace(-2.0, 2.0, 9))
            self.msgbus.publish(
                METRICS_TOPIC,
                {
                    "instrument_id": iid.value,
                    "ts_event": bar.ts_event,
                    "source": "qrdqn",
                    "cvar_loss": abs(ret5) * 1e4,
                    "cvar_limit": 5.0,
                    "quantiles": quantiles,
                    "ensemble_weights": {"sac": up, "ppo": 1.0 - up},
                },
            )
        if self.config.delay_ms:
            time.sleep(self.config.delay_ms / 1000)

    def on_data(self, data: Data) -> None:
        if isinstance(data, FeatureVector) and data.feature_set.startswith("memory:"):
            self.contexts.append(data)


def memory_backtest_config(
    catalog: Path, db: Path, out: Path, *, start: str, end: str, delay_ms: float = 0.0, **memory: Any
):
    """A BacktestRunConfig over the demo catalog with the feeder and the market-memory actor."""
    from nautilus_trader.config import ImportableActorConfig

    from mia_strategies.backtest import build_run_config
    from mia_strategies.backtest import plan_backtest
    from mia_strategies.config import BacktestConfig

    repo = Path(__file__).resolve().parents[1]
    plan = plan_backtest(
        BacktestConfig(instruments=["ES"], start=start, end=end), repo / "config", catalog=catalog, out=out
    )
    plan = type(plan)(**{**plan.__dict__, "strategy_impl": HOLD_NOTHING})
    run_config = build_run_config(plan)
    bar_types = [s.bar_type for s in plan.slots]
    feeder = ImportableActorConfig(
        actor_path="mia_ops_helpers:FeatureFeeder",
        config_path="mia_ops_helpers:FeatureFeederConfig",
        config={"bar_types": bar_types, "delay_ms": delay_ms},
    )
    actor = ImportableActorConfig(
        actor_path="mia_strategies.actors.memory:MarketMemoryActor",
        config_path="mia_strategies.actors.memory:MarketMemoryActorConfig",
        config={"path": str(db), "bar_types": bar_types, **memory},
    )
    engine = msgspec.structs.replace(run_config.engine, actors=[feeder, actor])
    return msgspec.structs.replace(run_config, engine=engine), bar_types


class Idle(MiaStrategy):
    """Trades nothing: the memory tests need bars, not orders."""

    def on_decision_bar(self, root: str, bar: Bar) -> None:
        return


HOLD_NOTHING = ("mia_ops_helpers:Idle", "mia_strategies.strategies.base:MiaStrategyConfig")


def memory_backtest_main(catalog: str, db: str, out: str, start: str, end: str, delay_ms: str) -> None:
    """Child-process entry of the kill test: run the memory backtest with FULL synchronous commits."""
    from nautilus_trader.backtest.node import BacktestNode

    config, _ = memory_backtest_config(
        Path(catalog), Path(db), Path(out), start=start, end=end, delay_ms=float(delay_ms), synchronous="FULL"
    )
    node = BacktestNode(configs=[config])
    print("started", flush=True)
    node.run()
    node.dispose()
    print("finished", flush=True)


def memory_writer_main(db: str, count: str) -> None:
    """Child-process entry of the store kill test: write, commit, then acknowledge each pattern on stdout."""
    from mia_strategies.ops.memory import MarketMemory
    from mia_strategies.ops.memory import Pattern

    rng = np.random.default_rng(3)
    with MarketMemory(db, synchronous="NORMAL", commit_every=1, checkpoint_every=50) as memory:
        for i in range(int(count)):
            ts = 1_765_000_000_000_000_000 + i * 60_000_000_000
            memory.store(
                Pattern("ESZ25.GLBX", ts, "ES.test", rng.normal(size=8), "trend", rng.dirichlet(np.ones(3)), 5000.0 + i)
            )
            if i >= 5:
                memory.set_outcome("ESZ25.GLBX", ts - 5 * 60_000_000_000, float(rng.normal()), ts)
            memory.commit()
            print(ts, flush=True)  # acknowledged only after the commit returned


# -- run folders: what the regime, risk and model actors and research will write ----------------------

LABELS = ("trend", "range", "defensive")


def enrich_run(run_dir: Path, seed: int = 5) -> dict[str, Any]:
    """Add regime, risk, SHAP, model-metric and alert files to a backtest run folder, deterministically.

    Also labels each closed trade with the regime in force when it opened (what the strategy will do
    once the regime actor runs). Returns what was written so tests can compare numbers.
    """
    import pandas as pd

    rng = np.random.default_rng(seed)
    equity = pd.read_csv(run_dir / "equity.csv", parse_dates=["ts"])
    positions = pd.read_csv(run_dir / "positions.csv", parse_dates=["opened_ts", "closed_ts"])
    start, end = equity["ts"].iloc[0], equity["ts"].iloc[-1]
    stamps = pd.date_range(start.ceil("10min"), end, freq="10min")
    regime_rows, risk_rows, metric_lines = [], [], []
    for root, contract in (("ES", "ESZ25.GLBX"), ("MNQ", "MNQZ25.GLBX")):
        logits = np.cumsum(rng.normal(size=(len(stamps), 3)), axis=0) * 0.4
        probs = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
        matrix = np.array([[0.90, 0.07, 0.03], [0.05, 0.90, 0.05], [0.04, 0.08, 0.88]])
        for i, ts in enumerate(stamps):
            p = probs[i]
            regime_rows.append(
                {
                    "ts": ts.isoformat(),
                    "instrument_id": contract,
                    "regime": LABELS[int(np.argmax(p))],
                    "confidence": round(float(p.max()), 6),
                    "bars_in_regime": i % 7,
                    "labels": ",".join(LABELS),
                    "probabilities": json.dumps([round(float(v), 6) for v in p]),
                    "transition_matrix": json.dumps(
                        (matrix + (0.01 if root == "MNQ" else 0)).round(4).ravel().tolist()
                    ),
                    "model_version": "hmm-test-1",
                },
            )
            halted = root == "ES" and len(stamps) // 2 <= i < len(stamps) // 2 + 3
            risk_rows.append(
                {
                    "ts": ts.isoformat(),
                    "instrument_id": contract,
                    "allowed_contracts": 0 if halted else 1 + i % 3,
                    "leverage_cap": 2.0,
                    "stop_distance": 4.0,
                    "target_distance": 6.0,
                    "trailing_distance": 3.0,
                    "trading_state": "HALTED" if halted else "ACTIVE",
                    "halt_reason": "daily loss limit" if halted else "",
                    "blocks": ["cvar"] if halted else [],
                },
            )
            weights = rng.dirichlet([4, 2, 1])
            metric_lines.append(
                {
                    "ts_event": int(ts.value),
                    "instrument_id": contract,
                    "source": "qrdqn",
                    "cvar_loss": round(float(0.3 + 0.4 * abs(np.sin(i / 5))), 6),
                    "cvar_limit": 0.6,
                    "quantiles": sorted(round(float(v), 4) for v in rng.normal(0.2, 1.5, size=11)),
                    "ensemble_weights": {
                        "sac": float(weights[0]),
                        "ppo": float(weights[1]),
                        "qrdqn": float(weights[2]),
                    },
                },
            )
    regimes = pd.DataFrame(regime_rows)
    regimes.to_csv(run_dir / "regime_states.csv", index=False)
    with (run_dir / "risk_states.jsonl").open("w") as handle:  # the risk actor's file, replaced
        for row in risk_rows:
            handle.write(json.dumps(row) + "\n")
    with (run_dir / "model_metrics.jsonl").open("w") as handle:
        for line in metric_lines:
            handle.write(json.dumps(line) + "\n")
    features = ["ret_1", "ret_5", "atr_14", "rsi_14", "spread", "ofi_10", "vol_ratio", "news_sent"]
    importance = []
    for root in ("ES", "MNQ"):
        for j, name in enumerate(features):
            importance.append(
                {
                    "feature": name,
                    "importance": round(0.5 / (j + 1) + (0.01 if root == "MNQ" else 0), 6),
                    "market": root,
                }
            )
    pd.DataFrame(importance).to_csv(run_dir / "feature_importance.csv", index=False)
    alerts = [
        {
            "ts_event": int(stamps[3].value),
            "priority": "urgent",
            "kind": "kill_switch",
            "title": "ES daily loss limit hit",
            "message": "daily loss 2,150 > 2,000",
            "instrument_id": "ESZ25.GLBX",
        },
        {
            "ts_event": int(stamps[5].value),
            "priority": "info",
            "kind": "regime_change",
            "title": "MNQZ25 regime range -> trend",
            "message": "",
            "instrument_id": "MNQZ25.GLBX",
        },
        {
            "ts_event": int(stamps[8].value),
            "priority": "warning",
            "kind": "slippage",
            "title": "ESZ25 fill slipped 5.0 ticks",
            "message": "",
            "instrument_id": "ESZ25.GLBX",
        },
    ]
    with (run_dir / "alerts.jsonl").open("w") as handle:
        for alert in alerts:
            handle.write(json.dumps(alert) + "\n")
    # the regime in force when each trade opened
    labelled = []
    for _, trade in positions.iterrows():
        part = regimes[
            (regimes["instrument_id"] == trade["instrument_id"]) & (pd.to_datetime(regimes["ts"]) <= trade["opened_ts"])
        ]
        labelled.append(part["regime"].iloc[-1] if len(part) else "")
    positions["regime"] = labelled
    positions.to_csv(run_dir / "positions.csv", index=False, date_format="%Y-%m-%dT%H:%M:%S.%fZ")
    # and the per-regime table the backtest derives from the same labels
    from mia_strategies.dashboard.data import root_of
    from mia_strategies.results import per_regime

    roots = regimes["instrument_id"].map(root_of)
    regime_bars = {root: regimes[roots == root]["regime"].value_counts().to_dict() for root in ("ES", "MNQ")}
    per_regime(positions.assign(regime=labelled), regime_bars).reset_index().to_csv(
        run_dir / "per_regime.csv", index=False
    )
    return {
        "regimes": regimes,
        "risk": pd.DataFrame(risk_rows),
        "metrics": metric_lines,
        "importance": importance,
        "alerts": alerts,
        "positions": positions,
    }
