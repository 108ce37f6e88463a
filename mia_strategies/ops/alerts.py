"""Alert manager: priorities routed to Telegram, email, SMS and the log, off the trading event loop.

Why it is built this way:

- A trading node must never wait on, or crash because of, a phone or mail server. ``submit`` only
  checks de-duplication and puts the alert on one bounded queue per channel; a worker thread per
  channel does the network I/O with timeouts, retries with exponential backoff, and reports a
  channel that stays down through the other channels. A full queue drops (and counts) the alert
  rather than block the caller.
- The same alert repeated within ``dedup_window_s`` is counted, not resent; the next delivery after
  the window says how many repeats were held back. Each channel has a rate limit (alerts per minute);
  ``urgent`` alerts are never rate limited, held-back ones are counted and mentioned in the next
  message of that channel.
- Routing is by priority (each channel has a ``min_priority``) unless ``config/alerts.yaml`` names
  the channels for an event kind. Secrets (bot token, SMTP password, SMS credentials) come only from
  environment variables whose names the config holds; they are never logged.

Wire formats, so a local test server (or a proxy) can stand in for the real service:

- Telegram Bot API: ``POST {base_url}/bot{TOKEN}/sendMessage`` with a JSON body ``{"chat_id",
  "text", "disable_notification"}``; success is ``{"ok": true, ...}``; a 429 may carry
  ``parameters.retry_after`` seconds.
- SMS gateway (Twilio REST): ``POST {base_url}/2010-04-01/Accounts/{SID}/Messages.json``, form
  fields ``To``, ``From``, ``Body``, HTTP basic auth ``SID:AUTH_TOKEN``; success is 2xx.
- Email: SMTP with STARTTLS (or implicit TLS), optional login, one message to all recipients.

The bus payload other components publish on :data:`ALERTS_TOPIC` is documented in
:func:`alert_payload` and ``docs/operations.md``.
"""

import base64
import contextlib
import datetime as dt
import enum
import json
import logging
import os
import queue
import smtplib
import socket
import ssl
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections import deque
from collections.abc import Callable
from collections.abc import Iterable
from collections.abc import Mapping
from dataclasses import dataclass
from dataclasses import field
from dataclasses import replace
from email.message import EmailMessage
from pathlib import Path
from typing import Annotated
from typing import Any
from typing import Literal
from typing import Protocol
from typing import TypeVar

from pydantic import BaseModel
from pydantic import ConfigDict
from pydantic import Field
from pydantic import field_validator

from mia_strategies.errors import ConfigError


#: Message-bus topic on which any component (the risk actor, adapters) publishes an alert payload.
ALERTS_TOPIC = "mia.alerts"
#: Message-bus topic of model diagnostics (``cvar_loss``, QR-DQN quantiles, ``ensemble_weights``).
METRICS_TOPIC = "mia.metrics"

log = logging.getLogger("mia.alerts")


class Priority(enum.IntEnum):
    """How loud an alert is; channels take alerts at or above their ``min_priority``."""

    INFO = 10
    WARNING = 20
    ERROR = 30
    URGENT = 40

    @classmethod
    def parse(cls, value: "Priority | str | int") -> "Priority":
        """Accept a Priority, its name in any case (``"urgent"``) or its number."""
        if isinstance(value, Priority):
            return value
        if isinstance(value, str):
            try:
                return cls[value.strip().upper()]
            except KeyError:
                raise ValueError(f"unknown priority {value!r}: use info, warning, error or urgent") from None
        return cls(int(value))

    @property
    def label(self) -> str:
        """Lower-case name as written in the config (``urgent``)."""
        return self.name.lower()


PriorityName = Literal["info", "warning", "error", "urgent"]
ChannelName = Literal["telegram", "email", "sms", "log"]
CHANNEL_NAMES: tuple[str, ...] = ("telegram", "email", "sms", "log")

FieldValue = str | int | float | bool


@dataclass(frozen=True)
class Alert:
    """One alert. ``kind`` names the event (``kill_switch``, ``rejection``, ...) and picks its rule.

    ``dedup_key`` identifies "the same alert" for de-duplication (default: kind, instrument and
    title). ``channels`` forces the target channels (``mia alerts test``); ``exclude_channels``
    keeps some out (a failure report never goes to the channel that failed).
    """

    kind: str
    priority: Priority
    title: str
    message: str = ""
    instrument_id: str = ""
    ts_event: int = 0
    source: str = ""
    dedup_key: str = ""
    fields: Mapping[str, FieldValue] = field(default_factory=dict)
    channels: tuple[str, ...] | None = None
    exclude_channels: tuple[str, ...] = ()
    repeats: int = 0

    @property
    def key(self) -> str:
        """The de-duplication key."""
        return self.dedup_key or f"{self.kind}|{self.instrument_id}|{self.title}"

    @classmethod
    def from_payload(cls, payload: "Mapping[str, Any] | Alert", default_priority: Priority | None = None) -> "Alert":
        """Build an alert from a bus payload (see :func:`alert_payload`); raise ValueError if malformed."""
        if isinstance(payload, Alert):
            return payload
        if not isinstance(payload, Mapping):
            raise ValueError(f"alert payload must be a mapping, was {type(payload).__name__}")
        kind = str(payload.get("kind", "")).strip()
        title = str(payload.get("title", "")).strip()
        if not kind or not title:
            raise ValueError("alert payload needs non-empty 'kind' and 'title'")
        raw_priority = payload.get("priority")
        if raw_priority is None:
            if default_priority is None:
                raise ValueError(f"alert payload {kind!r} has no 'priority' and its kind has no rule")
            priority = default_priority
        else:
            priority = Priority.parse(raw_priority)
        raw_fields = payload.get("fields") or {}
        if not isinstance(raw_fields, Mapping):
            raise ValueError("alert payload 'fields' must be a mapping")
        fields = {str(k): v if isinstance(v, FieldValue) else str(v) for k, v in raw_fields.items()}
        return cls(
            kind=kind,
            priority=priority,
            title=title,
            message=str(payload.get("message", "")),
            instrument_id=str(payload.get("instrument_id", "")),
            ts_event=int(payload.get("ts_event", 0) or 0),
            source=str(payload.get("source", "")),
            dedup_key=str(payload.get("dedup_key", "")),
            fields=fields,
        )

    def to_record(self) -> dict[str, Any]:
        """A JSON-ready record (``alerts.jsonl`` lines)."""
        return {
            "ts": _iso(self.ts_event) if self.ts_event else _iso(time.time_ns()),
            "ts_event": self.ts_event,
            "priority": self.priority.label,
            "kind": self.kind,
            "title": self.title,
            "message": self.message,
            "instrument_id": self.instrument_id,
            "source": self.source,
            "repeats": self.repeats,
            "fields": dict(self.fields),
        }

    def text(self) -> str:
        """The alert as a few lines of plain text (Telegram, email body)."""
        lines = [f"[{self.priority.name}] {self.title}"]
        if self.message:
            lines.append(self.message)
        if self.fields:
            lines.append(" ".join(f"{k}={_fmt_field(v)}" for k, v in self.fields.items()))
        where = " · ".join(p for p in (self.instrument_id, _iso(self.ts_event) if self.ts_event else "") if p)
        if where:
            lines.append(where)
        if self.repeats:
            lines.append(f"(repeated {self.repeats} more time(s) since the last notice)")
        return "\n".join(lines)

    def short_text(self, limit: int) -> str:
        """One line for SMS, cut to ``limit`` characters."""
        parts = [f"MIA {self.priority.name}: {self.title}"]
        if self.message:
            parts.append(self.message)
        if self.instrument_id:
            parts.append(self.instrument_id)
        if self.repeats:
            parts.append(f"(+{self.repeats} repeats)")
        text = " - ".join(parts)
        return text if len(text) <= limit else text[: max(0, limit - 1)] + "…"


def alert_payload(
    kind: str,
    title: str,
    *,
    priority: PriorityName | None = None,
    message: str = "",
    instrument_id: str = "",
    ts_event: int = 0,
    source: str = "",
    dedup_key: str = "",
    fields: Mapping[str, FieldValue] | None = None,
) -> dict[str, Any]:
    """The plain-dict payload to publish on :data:`ALERTS_TOPIC` (no import of this module needed).

    ``msgbus.publish("mia.alerts", {"kind": "kill_switch", "priority": "urgent", "title": "ES daily
    loss limit hit", "message": "...", "instrument_id": "ESZ25.GLBX", "ts_event": bar.ts_event,
    "source": "RiskActor", "fields": {"limit": 2000.0, "value": 2150.0}})``. Only ``kind`` and
    ``title`` are required; without ``priority`` the kind's rule in ``alerts.yaml`` decides.
    """
    payload: dict[str, Any] = {"kind": kind, "title": title}
    optional: dict[str, Any] = {
        "priority": priority,
        "message": message,
        "instrument_id": instrument_id,
        "ts_event": ts_event,
        "source": source,
        "dedup_key": dedup_key,
        "fields": dict(fields) if fields else None,
    }
    payload.update({k: v for k, v in optional.items() if v})
    return payload


def _iso(ts_ns: int) -> str:
    return dt.datetime.fromtimestamp(ts_ns / 1e9, tz=dt.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _fmt_field(value: FieldValue) -> str:
    if isinstance(value, float):
        return f"{value:,.4g}" if abs(value) < 1e4 else f"{value:,.0f}"
    return str(value)


# -- configuration (config/alerts.yaml) -------------------------------------------------------------


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


_M = TypeVar("_M", bound=BaseModel)


class RetrySettings(_Model):
    """How a channel retries a failed delivery: ``attempts`` tries, backoff doubling up to a cap."""

    attempts: Annotated[int, Field(ge=1, le=10)] = 4
    initial_backoff_s: Annotated[float, Field(ge=0, le=60)] = 1.0
    max_backoff_s: Annotated[float, Field(ge=0, le=600)] = 30.0
    timeout_s: Annotated[float, Field(gt=0, le=120)] = 10.0


class RateLimitSettings(_Model):
    """At most ``max_per_minute`` alerts per minute on one channel (urgent alerts always go)."""

    max_per_minute: Annotated[int, Field(ge=1, le=600)] = 20


def _check_env_name(value: str) -> str:
    if not value or not value.replace("_", "").isalnum():
        raise ValueError("must be an environment variable name such as MIA_SMTP_PASSWORD")
    return value


class TelegramSettings(_Model):
    """Telegram Bot API: the bot token comes from the environment variable named by ``token_env``."""

    enabled: bool = False
    min_priority: PriorityName = "warning"
    base_url: str = "https://api.telegram.org"
    chat_id: str = ""
    token_env: str = "MIA_TELEGRAM_BOT_TOKEN"
    ca_file: Path | None = None
    rate_limit: RateLimitSettings = RateLimitSettings()

    _env = field_validator("token_env")(_check_env_name)


class EmailSettings(_Model):
    """SMTP with STARTTLS (port 587) or implicit TLS (``security: ssl``, port 465)."""

    enabled: bool = False
    min_priority: PriorityName = "error"
    host: str = ""
    port: Annotated[int, Field(ge=1, le=65535)] = 587
    security: Literal["starttls", "ssl"] = "starttls"
    username: str = ""
    password_env: str = "MIA_SMTP_PASSWORD"
    sender: str = ""
    recipients: list[str] = []
    ca_file: Path | None = None
    rate_limit: RateLimitSettings = RateLimitSettings(max_per_minute=10)

    _env = field_validator("password_env")(_check_env_name)


class SmsSettings(_Model):
    """An HTTP SMS gateway in Twilio's REST format; credentials from two environment variables."""

    enabled: bool = False
    min_priority: PriorityName = "urgent"
    base_url: str = "https://api.twilio.com"
    account_sid_env: str = "MIA_SMS_ACCOUNT_SID"
    auth_token_env: str = "MIA_SMS_AUTH_TOKEN"
    from_number: str = ""
    to_numbers: list[str] = []
    max_chars: Annotated[int, Field(ge=40, le=1600)] = 320
    ca_file: Path | None = None
    rate_limit: RateLimitSettings = RateLimitSettings(max_per_minute=5)

    _env = field_validator("account_sid_env", "auth_token_env")(_check_env_name)


class LogSettings(_Model):
    """The log channel: Python logging ``mia.alerts`` plus, optionally, a JSON-lines file."""

    enabled: bool = True
    min_priority: PriorityName = "info"
    path: Path | None = None


class ChannelsSettings(_Model):
    """Every channel and its settings."""

    telegram: TelegramSettings = TelegramSettings()
    email: EmailSettings = EmailSettings()
    sms: SmsSettings = SmsSettings()
    log: LogSettings = LogSettings()


class EventRule(_Model):
    """Whether an event kind raises alerts, how loud, and (optionally) exactly which channels get it."""

    enabled: bool = True
    priority: PriorityName
    channels: list[ChannelName] | None = None


class EventsSettings(_Model):
    """One rule per event kind the node raises (see docs/operations.md for what triggers each)."""

    kill_switch: EventRule = EventRule(priority="urgent")
    halt: EventRule = EventRule(priority="urgent")
    resume: EventRule = EventRule(priority="warning")
    risk_state: EventRule = EventRule(enabled=False, priority="error")
    risk_block: EventRule = EventRule(priority="warning")
    rejection: EventRule = EventRule(priority="error")
    disconnect: EventRule = EventRule(priority="error")
    reconnect: EventRule = EventRule(priority="info")
    stale_data: EventRule = EventRule(priority="error")
    regime_change: EventRule = EventRule(priority="info")
    cvar_breach: EventRule = EventRule(priority="warning")
    tail_risk: EventRule = EventRule(priority="warning")
    ensemble_imbalance: EventRule = EventRule(priority="warning")
    slippage: EventRule = EventRule(priority="warning")
    daily_pnl: EventRule = EventRule(priority="info")
    channel_failure: EventRule = EventRule(priority="error")
    operator: EventRule = EventRule(priority="warning")

    def rule(self, kind: str) -> EventRule | None:
        """The rule of ``kind`` or None for a kind without one."""
        value = getattr(self, kind, None) if kind in type(self).model_fields else None
        return value if isinstance(value, EventRule) else None


class Thresholds(_Model):
    """Limits that turn model diagnostics and fills into alerts."""

    cvar_loss_limit: float | None = None
    tail_fraction: Annotated[float, Field(gt=0, le=0.5)] = 0.1
    tail_loss_limit: float | None = None
    ensemble_max_weight: Annotated[float, Field(gt=0, le=1)] = 0.8
    ensemble_min_effective: Annotated[float, Field(ge=1, le=100)] = 1.5
    slippage_ticks: Annotated[float, Field(gt=0, le=1000)] = 4.0
    regime_min_confidence: Annotated[float, Field(ge=0, le=1)] = 0.0
    regime_min_bars: Annotated[int, Field(ge=1, le=10_000)] = 3
    stale_data_s: Annotated[float, Field(ge=0, le=86_400)] = 0.0
    stale_data_in_session_only: bool = True


class AlertsConfig(_Model):
    """``config/alerts.yaml``: channels, routing by priority, de-duplication, retries, thresholds."""

    enabled: bool = True
    dedup_window_s: Annotated[float, Field(ge=0, le=86_400)] = 300.0
    queue_size: Annotated[int, Field(ge=1, le=100_000)] = 1000
    retry: RetrySettings = RetrySettings()
    channels: ChannelsSettings = ChannelsSettings()
    events: EventsSettings = EventsSettings()
    thresholds: Thresholds = Thresholds()


def load_alerts_config(path: Path | None = None) -> AlertsConfig:
    """Load ``alerts.yaml`` (default: the config folder's); defaults when the folder has none."""
    from mia_strategies.config import config_dir

    if path is None:
        path = config_dir() / "alerts.yaml"
        if not path.exists():
            return AlertsConfig()
    return load_model(path, AlertsConfig)


def load_model(path: Path, model: type[_M]) -> _M:
    """Read and validate one YAML file into ``model``; errors are the project's one-line ConfigError."""
    from pydantic import ValidationError

    from mia_strategies.config import format_validation_error
    from mia_strategies.config import read_yaml

    raw = read_yaml(path)
    try:
        return model.model_validate(raw)
    except ValidationError as err:
        raise ConfigError(format_validation_error(path, model, err)) from None


# -- channels ---------------------------------------------------------------------------------------


class ChannelError(Exception):
    """A delivery failed; ``retryable`` says whether trying again can help."""

    def __init__(self, message: str, *, retryable: bool = True, retry_after_s: float | None = None) -> None:
        super().__init__(message)
        self.retryable = retryable
        self.retry_after_s = retry_after_s


class Channel(Protocol):
    """A delivery channel: ``send`` blocks (in a worker thread) and raises ChannelError on failure."""

    name: str
    min_priority: Priority

    def send(self, alert: Alert, timeout_s: float) -> str: ...


def _require_env(env: Mapping[str, str], name: str, channel: str) -> str:
    value = env.get(name, "")
    if not value:
        raise ConfigError(f"alerts: {channel} is enabled but ${name} is not set (export it or disable the channel)")
    return value


def _ssl_context(ca_file: Path | None) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=str(ca_file) if ca_file else None)
    return context


def _is_loopback(host: str) -> bool:
    return host in ("127.0.0.1", "localhost", "::1") or host.startswith("127.")


def _check_base_url(url: str, channel: str) -> str:
    parsed = urllib.parse.urlparse(url)
    if parsed.scheme not in ("https", "http") or not parsed.hostname:
        raise ConfigError(f"alerts: {channel}.base_url {url!r} must be an https:// URL")
    if parsed.scheme == "http" and not _is_loopback(parsed.hostname):
        raise ConfigError(f"alerts: {channel}.base_url {url!r} must use https (credentials travel in the request)")
    return url.rstrip("/")


def _http_failure(err: Exception) -> ChannelError:
    """Map an HTTP client error to a ChannelError; 4xx other than 408/429 are not worth retrying."""
    if isinstance(err, urllib.error.HTTPError):
        retry_after: float | None = None
        with contextlib.suppress(Exception):
            body = json.loads(err.read().decode("utf-8", "replace") or "{}")
            retry_after = float(body.get("parameters", {}).get("retry_after")) if isinstance(body, dict) else None
        if retry_after is None and err.headers is not None and err.headers.get("Retry-After"):
            with contextlib.suppress(ValueError):
                retry_after = float(err.headers["Retry-After"])
        retryable = err.code in (408, 429) or err.code >= 500
        return ChannelError(f"HTTP {err.code} {err.reason}", retryable=retryable, retry_after_s=retry_after)
    if isinstance(err, urllib.error.URLError):
        return ChannelError(f"cannot connect: {err.reason}")
    return ChannelError(f"{type(err).__name__}: {err}")


class TelegramChannel:
    """Telegram Bot API ``sendMessage`` over HTTPS; the token is part of the URL and never logged."""

    name = "telegram"

    def __init__(self, settings: TelegramSettings, env: Mapping[str, str]) -> None:
        if not settings.chat_id:
            raise ConfigError("alerts: telegram is enabled but channels.telegram.chat_id is empty")
        self.min_priority = Priority.parse(settings.min_priority)
        self._base_url = _check_base_url(settings.base_url, "telegram")
        self._token = _require_env(env, settings.token_env, "telegram")
        self._chat_id = settings.chat_id
        self._context = _ssl_context(settings.ca_file)

    def send(self, alert: Alert, timeout_s: float) -> str:
        """Post the message; return Telegram's message id."""
        body = json.dumps(
            {
                "chat_id": self._chat_id,
                "text": alert.text()[:4096],
                "disable_notification": alert.priority < Priority.WARNING,
            },
        ).encode("utf-8")
        request = urllib.request.Request(
            f"{self._base_url}/bot{self._token}/sendMessage",
            data=body,
            headers={"Content-Type": "application/json"},
            method="POST",
        )
        try:
            with urllib.request.urlopen(request, timeout=timeout_s, context=self._context) as response:
                reply = json.loads(response.read().decode("utf-8") or "{}")
        except (urllib.error.URLError, OSError, ValueError) as err:
            raise _http_failure(err) from None
        if not isinstance(reply, dict) or not reply.get("ok"):
            description = reply.get("description", "no description") if isinstance(reply, dict) else "bad reply"
            raise ChannelError(f"Telegram refused the message: {description}", retryable=False)
        result = reply.get("result") or {}
        return f"message_id={result.get('message_id', '?')}" if isinstance(result, dict) else "ok"


class EmailChannel:
    """One email per alert to every recipient, over SMTP with STARTTLS or implicit TLS."""

    name = "email"

    def __init__(self, settings: EmailSettings, env: Mapping[str, str]) -> None:
        if not settings.host or not settings.sender or not settings.recipients:
            raise ConfigError("alerts: email is enabled but host, sender or recipients is empty in channels.email")
        self.min_priority = Priority.parse(settings.min_priority)
        self._settings = settings
        self._password = _require_env(env, settings.password_env, "email") if settings.username else ""
        self._context = _ssl_context(settings.ca_file)

    def _message(self, alert: Alert) -> EmailMessage:
        message = EmailMessage()
        message["Subject"] = f"[MIA {alert.priority.name}] {alert.title}"
        message["From"] = self._settings.sender
        message["To"] = ", ".join(self._settings.recipients)
        message["X-MIA-Priority"] = alert.priority.label
        message["X-MIA-Kind"] = alert.kind
        message.set_content(alert.text() + "\n")
        return message

    def send(self, alert: Alert, timeout_s: float) -> str:
        """Connect, secure, log in, send; return the accepted recipients."""
        s = self._settings
        try:
            client: smtplib.SMTP
            if s.security == "ssl":
                client = smtplib.SMTP_SSL(s.host, s.port, timeout=timeout_s, context=self._context)
            else:
                client = smtplib.SMTP(s.host, s.port, timeout=timeout_s)
            with client:
                client.ehlo()
                if s.security == "starttls":
                    if not client.has_extn("starttls"):
                        raise ChannelError(f"{s.host}:{s.port} does not offer STARTTLS", retryable=False)
                    client.starttls(context=self._context)
                    client.ehlo()
                if s.username:
                    client.login(s.username, self._password)
                refused = client.send_message(self._message(alert))
        except ChannelError:
            raise
        except smtplib.SMTPAuthenticationError as err:
            raise ChannelError(f"SMTP login refused ({err.smtp_code})", retryable=False) from None
        except smtplib.SMTPRecipientsRefused:
            raise ChannelError("SMTP server refused every recipient", retryable=False) from None
        except ssl.SSLCertVerificationError as err:
            raise ChannelError(f"TLS certificate not trusted: {err.verify_message}", retryable=False) from None
        except (smtplib.SMTPException, OSError) as err:
            raise ChannelError(f"SMTP {type(err).__name__}: {err}") from None
        accepted = len(s.recipients) - len(refused)
        return f"accepted by {accepted} recipient(s)"


class SmsChannel:
    """SMS through a gateway speaking Twilio's REST API: one POST per recipient number."""

    name = "sms"

    def __init__(self, settings: SmsSettings, env: Mapping[str, str]) -> None:
        if not settings.from_number or not settings.to_numbers:
            raise ConfigError("alerts: sms is enabled but from_number or to_numbers is empty in channels.sms")
        self.min_priority = Priority.parse(settings.min_priority)
        self._settings = settings
        self._base_url = _check_base_url(settings.base_url, "sms")
        self._sid = _require_env(env, settings.account_sid_env, "sms")
        token = _require_env(env, settings.auth_token_env, "sms")
        self._auth = "Basic " + base64.b64encode(f"{self._sid}:{token}".encode()).decode("ascii")
        self._context = _ssl_context(settings.ca_file)

    def send(self, alert: Alert, timeout_s: float) -> str:
        """Send to every number; fail (retryably) if any number was not accepted."""
        url = f"{self._base_url}/2010-04-01/Accounts/{urllib.parse.quote(self._sid)}/Messages.json"
        body = alert.short_text(self._settings.max_chars)
        sids: list[str] = []
        for number in self._settings.to_numbers:
            form = urllib.parse.urlencode({"To": number, "From": self._settings.from_number, "Body": body})
            request = urllib.request.Request(
                url,
                data=form.encode("utf-8"),
                headers={"Authorization": self._auth, "Content-Type": "application/x-www-form-urlencoded"},
                method="POST",
            )
            try:
                with urllib.request.urlopen(request, timeout=timeout_s, context=self._context) as response:
                    reply = json.loads(response.read().decode("utf-8") or "{}")
            except (urllib.error.URLError, OSError, ValueError) as err:
                raise _http_failure(err) from None
            sids.append(str(reply.get("sid", "?")) if isinstance(reply, dict) else "?")
        return "sid=" + ",".join(sids)


class LogChannel:
    """Python logging (``mia.alerts``) and, when a path is set, one JSON line per alert."""

    name = "log"

    def __init__(self, settings: LogSettings, path: Path | None = None) -> None:
        self.min_priority = Priority.parse(settings.min_priority)
        self._path = path or settings.path
        self._lock = threading.Lock()

    _LEVELS: Mapping[Priority, int] = {
        Priority.INFO: logging.INFO,
        Priority.WARNING: logging.WARNING,
        Priority.ERROR: logging.ERROR,
        Priority.URGENT: logging.CRITICAL,
    }

    def send(self, alert: Alert, timeout_s: float) -> str:
        """Log the alert and append it to the JSON-lines file."""
        log.log(self._LEVELS[alert.priority], "%s", alert.text().replace("\n", " | "))
        if self._path is None:
            return "logged"
        line = json.dumps(alert.to_record(), sort_keys=True, default=str) + "\n"
        try:
            with self._lock:
                self._path.parent.mkdir(parents=True, exist_ok=True)
                with self._path.open("a", encoding="utf-8") as handle:
                    handle.write(line)
                    handle.flush()
        except OSError as err:
            raise ChannelError(f"cannot append to {self._path}: {err.strerror}") from None
        return f"written to {self._path.name}"


def build_channels(config: AlertsConfig, env: Mapping[str, str], log_path: Path | None = None) -> list[Channel]:
    """The enabled channels; a missing secret or setting raises a one-line ConfigError."""
    c = config.channels
    channels: list[Channel] = []
    if c.telegram.enabled:
        channels.append(TelegramChannel(c.telegram, env))
    if c.email.enabled:
        channels.append(EmailChannel(c.email, env))
    if c.sms.enabled:
        channels.append(SmsChannel(c.sms, env))
    if c.log.enabled:
        channels.append(LogChannel(c.log, log_path))
    return channels


# -- manager ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class DeliveryResult:
    """What happened to one alert on one channel."""

    channel: str
    kind: str
    priority: str
    title: str
    ok: bool
    attempts: int
    detail: str
    at: float


SubmitOutcome = Literal["queued", "duplicate", "disabled", "dropped", "no_channel"]


class _Bucket:
    """Token bucket: ``rate`` alerts per minute, bursting up to the same number."""

    def __init__(self, per_minute: int, now: float) -> None:
        self.capacity = float(per_minute)
        self.tokens = float(per_minute)
        self.rate = per_minute / 60.0
        self.stamp = now

    def take(self, now: float) -> bool:
        self.tokens = min(self.capacity, self.tokens + (now - self.stamp) * self.rate)
        self.stamp = now
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            return True
        return False


class _Worker:
    """One channel's queue and thread: rate limit, retries with backoff, results."""

    def __init__(self, manager: "AlertManager", channel: Channel, per_minute: int | None) -> None:
        self.channel = channel
        self.manager = manager
        self.queue: queue.Queue[Alert | None] = queue.Queue(maxsize=manager.config.queue_size)
        self.bucket = _Bucket(per_minute, time.monotonic()) if per_minute else None
        self.rate_limited = 0
        self.pending = 0
        self.lock = threading.Lock()
        self.thread = threading.Thread(target=self._run, name=f"mia-alerts-{channel.name}", daemon=True)

    def offer(self, alert: Alert) -> bool:
        with self.lock:
            try:
                self.queue.put_nowait(alert)
            except queue.Full:
                return False
            self.pending += 1
            return True

    def _run(self) -> None:
        while True:
            alert = self.queue.get()
            if alert is None:
                return
            try:
                self._deliver(alert)
            except Exception as err:  # a channel bug must not kill the worker
                log.exception("alert channel %s crashed on %s", self.channel.name, alert.kind)
                self.manager._record(self.channel.name, alert, ok=False, attempts=1, detail=f"crash: {err!r}")
            finally:
                with self.lock:
                    self.pending -= 1

    def _deliver(self, alert: Alert) -> None:
        if self.bucket is not None and alert.priority < Priority.URGENT and not self.bucket.take(time.monotonic()):
            self.rate_limited += 1
            self.manager._record(self.channel.name, alert, ok=False, attempts=0, detail="rate limited")
            return
        if self.rate_limited:
            held, self.rate_limited = self.rate_limited, 0
            alert = replace(alert, message=(alert.message + f" (+{held} alert(s) held back by the rate limit)").strip())
        retry = self.manager.config.retry
        delay = retry.initial_backoff_s
        last = ""
        for attempt in range(1, retry.attempts + 1):
            try:
                detail = self.channel.send(alert, retry.timeout_s)
            except ChannelError as err:
                last = str(err)
                name = self.channel.name
                log.warning("alert channel %s attempt %d/%d failed: %s", name, attempt, retry.attempts, last)
                if not err.retryable or attempt == retry.attempts:
                    self.manager._record(self.channel.name, alert, ok=False, attempts=attempt, detail=last)
                    self.manager._channel_failed(self.channel.name, alert, last, attempt)
                    return
                wait = min(retry.max_backoff_s, max(delay, err.retry_after_s or 0.0))
                if self.manager._stopping.wait(wait):
                    detail = f"{last}; shut down before the next attempt"
                    self.manager._record(self.channel.name, alert, ok=False, attempts=attempt, detail=detail)
                    return
                delay = min(retry.max_backoff_s, delay * 2 if delay > 0 else 0.0)
                continue
            self.manager._record(self.channel.name, alert, ok=True, attempts=attempt, detail=detail)
            return


@dataclass
class _Seen:
    first: float
    held: int = 0


class AlertManager:
    """Route, de-duplicate and deliver alerts; ``submit`` never blocks and never raises on delivery.

    Parameters
    ----------
    config : AlertsConfig
        The parsed ``alerts.yaml``.
    env : Mapping[str, str], optional
        Where secrets are read (default ``os.environ``).
    clock : Callable[[], float], optional
        Seconds for the de-duplication window (default monotonic wall time; a node passes its own
        clock so backtests de-duplicate on data time).
    channels : Iterable[Channel], optional
        Channels to use instead of those built from the config.
    log_path : Path, optional
        JSON-lines file of the log channel (overrides ``channels.log.path``).
    """

    def __init__(
        self,
        config: AlertsConfig,
        *,
        env: Mapping[str, str] | None = None,
        clock: Callable[[], float] = time.monotonic,
        channels: Iterable[Channel] | None = None,
        log_path: Path | None = None,
    ) -> None:
        self.config = config
        self._clock = clock
        built = list(channels) if channels is not None else build_channels(config, env or os.environ, log_path)
        limits = {
            "telegram": config.channels.telegram.rate_limit.max_per_minute,
            "email": config.channels.email.rate_limit.max_per_minute,
            "sms": config.channels.sms.rate_limit.max_per_minute,
        }
        self._workers = {ch.name: _Worker(self, ch, limits.get(ch.name)) for ch in built}
        self._seen: dict[str, _Seen] = {}
        self._prune_at = 4096
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._started = False
        self.results: deque[DeliveryResult] = deque(maxlen=1000)
        self.counts: dict[str, int] = {"queued": 0, "duplicate": 0, "disabled": 0, "dropped": 0, "no_channel": 0}
        self._listeners: list[Callable[[DeliveryResult], None]] = []

    @property
    def channel_names(self) -> list[str]:
        """Names of the channels in use."""
        return list(self._workers)

    def start(self) -> "AlertManager":
        """Start the worker threads (idempotent)."""
        if not self._started:
            self._started = True
            for worker in self._workers.values():
                worker.thread.start()
        return self

    def add_listener(self, listener: Callable[[DeliveryResult], None]) -> None:
        """Call ``listener`` (from a worker thread) after every delivery attempt sequence."""
        self._listeners.append(listener)

    def route(self, alert: Alert) -> list[str]:
        """The channels an alert goes to: forced, or the rule's, or every channel its priority reaches."""
        if alert.channels is not None:
            targets = [c for c in alert.channels if c in self._workers]
        else:
            rule = self.config.events.rule(alert.kind)
            if rule is not None and rule.channels is not None:
                targets = [c for c in rule.channels if c in self._workers]
            else:
                targets = [n for n, w in self._workers.items() if alert.priority >= w.channel.min_priority]
        return [t for t in targets if t not in alert.exclude_channels]

    def priority_of(self, kind: str, fallback: Priority = Priority.WARNING) -> Priority:
        """The configured priority of an event kind."""
        rule = self.config.events.rule(kind)
        return Priority.parse(rule.priority) if rule is not None else fallback

    def is_enabled(self, kind: str) -> bool:
        """Whether alerts of this kind are raised at all."""
        rule = self.config.events.rule(kind)
        return self.config.enabled and (rule is None or rule.enabled)

    def submit(self, alert: Alert) -> SubmitOutcome:
        """Queue an alert for its channels unless it is disabled or a repeat within the window."""
        if not self.is_enabled(alert.kind) and alert.channels is None:
            return self._count("disabled")
        if alert.channels is None:
            repeats = self._dedup(alert.key)
            if repeats is None:
                return self._count("duplicate")
            if repeats:
                alert = replace(alert, repeats=repeats)
        targets = self.route(alert)
        if not targets:
            return self._count("no_channel")
        if not self._started:
            self.start()
        queued = False
        for name in targets:
            if self._workers[name].offer(alert):
                queued = True
            else:
                log.error("alert queue of %s is full; dropped %s", name, alert.kind)
                self._record(name, alert, ok=False, attempts=0, detail="queue full")
        return self._count("queued" if queued else "dropped")

    def _count(self, outcome: SubmitOutcome) -> SubmitOutcome:
        with self._lock:
            self.counts[outcome] += 1
        return outcome

    def _dedup(self, key: str) -> int | None:
        """None when the key was seen within the window (counted); else the repeats held back before."""
        window = self.config.dedup_window_s
        now = self._clock()
        with self._lock:
            seen = self._seen.get(key)
            if seen is not None and now - seen.first < window:
                seen.held += 1
                return None
            held = seen.held if seen is not None else 0
            self._seen[key] = _Seen(first=now)
            if len(self._seen) > self._prune_at:  # forget expired keys; amortised O(1) per alert
                self._seen = {k: v for k, v in self._seen.items() if now - v.first < window}
                self._prune_at = max(4096, 2 * len(self._seen))
            return held

    def _record(self, channel: str, alert: Alert, *, ok: bool, attempts: int, detail: str) -> None:
        result = DeliveryResult(
            channel=channel,
            kind=alert.kind,
            priority=alert.priority.label,
            title=alert.title,
            ok=ok,
            attempts=attempts,
            detail=detail,
            at=time.time(),
        )
        self.results.append(result)
        for listener in list(self._listeners):
            try:
                listener(result)
            except Exception:
                log.exception("alert listener failed")

    def _channel_failed(self, channel: str, alert: Alert, error: str, attempts: int) -> None:
        """Report a channel that stays down through the other channels (never about itself)."""
        log.error("alert channel %s gave up on %r after %d attempt(s): %s", channel, alert.title, attempts, error)
        if alert.kind == "channel_failure":
            return
        report = Alert(
            kind="channel_failure",
            priority=self.priority_of("channel_failure", Priority.ERROR),
            title=f"alert channel {channel} is failing",
            message=f"could not deliver {alert.priority.label} alert {alert.title!r} "
            f"after {attempts} attempt(s): {error}",
            dedup_key=f"channel_failure|{channel}",
            source="AlertManager",
            exclude_channels=(channel,),
        )
        self.submit(report)

    def pending(self) -> int:
        """Alerts queued or being delivered."""
        return sum(w.pending for w in self._workers.values())

    def flush(self, timeout: float = 30.0) -> bool:
        """Wait until every queued alert is delivered or given up; False on timeout."""
        deadline = time.monotonic() + timeout
        while self.pending():
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.01)
        return True

    def close(self, timeout: float = 5.0) -> None:
        """Deliver what is queued (up to ``timeout``), then stop the workers."""
        if not self._started:
            return
        self.flush(timeout)
        self._stopping.set()
        for worker in self._workers.values():
            with contextlib.suppress(queue.Full):
                worker.queue.put_nowait(None)
        for worker in self._workers.values():
            worker.thread.join(timeout=max(0.1, timeout))
        self._started = False

    def stats(self) -> dict[str, Any]:
        """Counts of submissions, deliveries and failures by channel."""
        by_channel: dict[str, dict[str, int]] = {n: {"sent": 0, "failed": 0, "rate_limited": 0} for n in self._workers}
        for r in list(self.results):
            entry = by_channel.setdefault(r.channel, {"sent": 0, "failed": 0, "rate_limited": 0})
            if r.ok:
                entry["sent"] += 1
            elif r.detail == "rate limited":
                entry["rate_limited"] += 1
            else:
                entry["failed"] += 1
        return {"submitted": dict(self.counts), "channels": by_channel}


def make_test_alerts(priorities: Iterable[Priority] = tuple(Priority)) -> list[Alert]:
    """One test alert per priority, addressed to every channel (``mia alerts test``)."""
    now = time.time_ns()
    hostname = socket.gethostname()
    return [
        Alert(
            kind="test",
            priority=p,
            title=f"MIA test alert ({p.label})",
            message=f"Sent by `mia alerts test` on {hostname}: the {p.label} route works.",
            ts_event=now,
            source="mia alerts test",
        )
        for p in priorities
    ]


__all__ = [
    "ALERTS_TOPIC",
    "CHANNEL_NAMES",
    "METRICS_TOPIC",
    "Alert",
    "AlertManager",
    "AlertsConfig",
    "Channel",
    "ChannelError",
    "DeliveryResult",
    "EmailChannel",
    "LogChannel",
    "Priority",
    "SmsChannel",
    "TelegramChannel",
    "alert_payload",
    "build_channels",
    "load_alerts_config",
    "make_test_alerts",
]
