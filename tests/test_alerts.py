"""Alert manager against real local servers: SMTP with STARTTLS, the Telegram Bot API, an SMS gateway."""

import email
import email.policy
import time
from pathlib import Path

import pytest
import yaml
from conftest import REPO
from conftest import run_mia
from mia_ops_helpers import SmsGatewayServer
from mia_ops_helpers import SmtpServer
from mia_ops_helpers import TelegramServer
from mia_ops_helpers import dead_port
from mia_ops_helpers import make_certificate

from mia_strategies.errors import ConfigError
from mia_strategies.ops.alerts import Alert
from mia_strategies.ops.alerts import AlertManager
from mia_strategies.ops.alerts import AlertsConfig
from mia_strategies.ops.alerts import Priority
from mia_strategies.ops.alerts import alert_payload


TOKEN = "123456:TEST-token"
ENV = {
    "MIA_TELEGRAM_BOT_TOKEN": TOKEN,
    "MIA_SMTP_PASSWORD": "s3cret",
    "MIA_SMS_ACCOUNT_SID": "AC0123",
    "MIA_SMS_AUTH_TOKEN": "sms-token",
}


@pytest.fixture
def tls(tmp_path: Path) -> tuple[Path, Path]:
    return make_certificate(tmp_path)


def settings(
    cert: Path,
    *,
    telegram: str | None = None,
    smtp_port: int | None = None,
    sms: str | None = None,
    log_path: Path | None = None,
    **overrides: object,
) -> dict:
    """An alerts.yaml mapping pointing every given channel at a local server."""
    channels: dict = {"log": {"enabled": True, "min_priority": "info", "path": str(log_path) if log_path else None}}
    if telegram:
        channels["telegram"] = {
            "enabled": True,
            "min_priority": "warning",
            "base_url": telegram,
            "chat_id": "4242",
            "ca_file": str(cert),
        }
    if smtp_port:
        channels["email"] = {
            "enabled": True,
            "min_priority": "error",
            "host": "127.0.0.1",
            "port": smtp_port,
            "username": "alerts",
            "sender": "mia@example.com",
            "recipients": ["ops@example.com", "trader@example.com"],
            "ca_file": str(cert),
        }
    if sms:
        channels["sms"] = {
            "enabled": True,
            "min_priority": "urgent",
            "base_url": sms,
            "from_number": "+15550001111",
            "to_numbers": ["+15552223333"],
            "ca_file": str(cert),
        }
    data: dict = {"channels": channels, "retry": {"attempts": 3, "initial_backoff_s": 0.05, "timeout_s": 5}}
    data.update(overrides)
    return data


def manager(data: dict, **kwargs: object) -> AlertManager:
    return AlertManager(AlertsConfig.model_validate(data), env=ENV, **kwargs).start()  # type: ignore[arg-type]


def alert(title: str = "ES daily loss limit hit", priority: Priority = Priority.URGENT, **kw: object) -> Alert:
    return Alert(kind=str(kw.pop("kind", "kill_switch")), priority=priority, title=title, **kw)  # type: ignore[arg-type]


def wait_for(predicate, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out waiting"
        time.sleep(0.02)


def test_urgent_alert_reaches_email_telegram_sms_and_log(tls, tmp_path):
    cert, key = tls
    log_path = tmp_path / "alerts.jsonl"
    with (
        SmtpServer(cert, key) as smtp,
        TelegramServer(cert, key, TOKEN) as tg,
        SmsGatewayServer(cert, key) as sms,
    ):
        m = manager(settings(cert, telegram=tg.base_url, smtp_port=smtp.port, sms=sms.base_url, log_path=log_path))
        outcome = m.submit(
            alert(
                message="daily loss 2,150 USD > limit 2,000 USD",
                instrument_id="ESZ25.GLBX",
                ts_event=1_765_200_000 * 10**9,
            ),
        )
        assert outcome == "queued"
        assert m.flush(20)
        m.close()

        # Email: over STARTTLS, logged in, to both recipients, with the priority in the subject.
        assert len(smtp.messages) == 1
        mail = smtp.messages[0]
        assert mail.tls and mail.login == "alerts"
        assert sorted(mail.rcpt_tos) == ["ops@example.com", "trader@example.com"]
        parsed = email.message_from_bytes(mail.content, policy=email.policy.default)
        assert parsed["Subject"] == "[MIA URGENT] ES daily loss limit hit"
        assert "daily loss 2,150 USD > limit 2,000 USD" in parsed.get_content()
        assert "ESZ25.GLBX" in parsed.get_content()

        # Telegram: sendMessage with the bot token in the path, the chat id and the text.
        assert len(tg.requests) == 1
        body = tg.requests[0].json()
        assert tg.requests[0].path == f"/bot{TOKEN}/sendMessage"
        assert body["chat_id"] == "4242"
        assert body["text"].startswith("[URGENT] ES daily loss limit hit")
        assert body["disable_notification"] is False

        # SMS: Twilio form fields, basic auth with the account SID and token.
        assert len(sms.requests) == 1
        form = sms.requests[0].form()
        assert sms.requests[0].basic_auth() == ("AC0123", "sms-token")
        assert form["To"] == "+15552223333" and form["From"] == "+15550001111"
        assert form["Body"].startswith("MIA URGENT: ES daily loss limit hit")

    record = [line for line in log_path.read_text().splitlines() if line]
    assert len(record) == 1 and '"priority": "urgent"' in record[0]
    assert all(r.ok for r in m.results)
    assert {r.channel for r in m.results} == {"email", "telegram", "sms", "log"}


def test_routing_follows_priorities_and_event_rules(tls):
    cert, key = tls
    with SmtpServer(cert, key) as smtp, TelegramServer(cert, key, TOKEN) as tg, SmsGatewayServer(cert, key) as sms:
        data = settings(cert, telegram=tg.base_url, smtp_port=smtp.port, sms=sms.base_url)
        data["events"] = {"regime_change": {"priority": "info", "channels": ["telegram"]}}
        m = manager(data)
        assert m.route(alert(priority=Priority.INFO, kind="daily_pnl")) == ["log"]
        assert m.route(alert(priority=Priority.WARNING, kind="slippage")) == ["telegram", "log"]
        assert m.route(alert(priority=Priority.ERROR, kind="rejection")) == ["telegram", "email", "log"]
        assert m.route(alert(priority=Priority.URGENT)) == ["telegram", "email", "sms", "log"]
        # a rule naming channels overrides the priority routing
        assert m.route(alert(priority=Priority.INFO, kind="regime_change")) == ["telegram"]
        m.submit(alert("regime ES: trend -> defensive", Priority.INFO, kind="regime_change"))
        m.submit(alert("fill slipped 6 ticks", Priority.WARNING, kind="slippage"))
        assert m.flush(20)
        m.close()
        assert len(tg.requests) == 2
        assert tg.requests[0].json()["disable_notification"] is True  # info is silent on the phone
        assert smtp.messages == [] and sms.requests == []


def test_duplicates_within_window_are_counted_not_resent(tls):
    cert, key = tls
    now = [1000.0]
    with TelegramServer(cert, key, TOKEN) as tg:
        m = manager(settings(cert, telegram=tg.base_url, dedup_window_s=60), clock=lambda: now[0])
        outcomes = [m.submit(alert("DTC disconnected", Priority.ERROR, kind="disconnect")) for _ in range(5)]
        assert outcomes == ["queued"] + ["duplicate"] * 4
        assert m.submit(alert("IQFeed disconnected", Priority.ERROR, kind="disconnect")) == "queued"
        now[0] += 61  # the window has passed: sent again, saying how many repeats were held back
        assert m.submit(alert("DTC disconnected", Priority.ERROR, kind="disconnect")) == "queued"
        assert m.flush(20)
        m.close()
    texts = tg.texts()
    assert len(texts) == 3
    assert "repeated 4 more time(s)" in texts[2]
    assert m.stats()["submitted"]["duplicate"] == 4


def test_rate_limit_holds_back_and_reports_but_urgent_always_goes(tls):
    cert, key = tls
    with TelegramServer(cert, key, TOKEN) as tg:
        data = settings(cert, telegram=tg.base_url)
        data["channels"]["telegram"]["rate_limit"] = {"max_per_minute": 2}
        m = manager(data)
        for i in range(5):
            m.submit(alert(f"slippage {i}", Priority.WARNING, kind="slippage"))
        m.submit(alert("kill switch", Priority.URGENT))
        assert m.flush(20)
        m.close()
    texts = tg.texts()
    assert len(texts) == 3
    assert texts[0].startswith("[WARNING] slippage 0") and texts[1].startswith("[WARNING] slippage 1")
    assert texts[2].startswith("[URGENT] kill switch")
    assert "+3 alert(s) held back by the rate limit" in texts[2]
    assert m.stats()["channels"]["telegram"]["rate_limited"] == 3


def test_failing_server_is_retried_with_backoff_until_it_answers(tls):
    cert, key = tls
    with TelegramServer(cert, key, TOKEN) as tg:
        tg.fail_next(2, status=500)
        m = manager(settings(cert, telegram=tg.base_url))
        started = time.monotonic()
        m.submit(alert("order rejected", Priority.ERROR, kind="rejection"))
        assert m.flush(20)
        m.close()
    assert len(tg.requests) == 3  # two 500s, then delivered
    telegram = [r for r in m.results if r.channel == "telegram"]
    assert telegram[-1].ok and telegram[-1].attempts == 3
    assert time.monotonic() - started >= 0.05 + 0.1  # backoff 0.05 s then 0.1 s


def test_telegram_429_waits_retry_after(tls):
    cert, key = tls
    with TelegramServer(cert, key, TOKEN) as tg:
        tg.fail_next(1, status=429, body={"ok": False, "error_code": 429, "parameters": {"retry_after": 0.3}})
        m = manager(settings(cert, telegram=tg.base_url))
        started = time.monotonic()
        m.submit(alert("halt", Priority.URGENT))
        assert m.flush(20)
        m.close()
    assert len(tg.requests) == 2
    assert time.monotonic() - started >= 0.3


def test_channel_that_is_down_is_retried_and_reported_through_the_others(tls):
    cert, key = tls
    port = dead_port()
    with TelegramServer(cert, key, TOKEN) as tg:
        m = manager(settings(cert, telegram=tg.base_url, smtp_port=port))
        m.submit(alert("trading halted", Priority.URGENT))
        assert m.flush(20)
        m.close()
    failed = [r for r in m.results if r.channel == "email"]
    assert len(failed) == 1 and not failed[0].ok and failed[0].attempts == 3
    assert "Connection refused" in failed[0].detail or "refused" in failed[0].detail.lower()
    texts = tg.texts()
    assert texts[0].startswith("[URGENT] trading halted")
    assert any("alert channel email is failing" in t for t in texts)
    assert m.stats()["channels"]["email"]["failed"] == 1


def test_wrong_token_is_not_retried(tls):
    cert, key = tls
    with TelegramServer(cert, key, "999:other") as tg:
        m = manager(settings(cert, telegram=tg.base_url))
        m.submit(alert("halt", Priority.URGENT))
        assert m.flush(20)
        m.close()
    result = next(r for r in m.results if r.channel == "telegram")
    assert not result.ok and result.attempts == 1 and "HTTP 401" in result.detail
    assert TOKEN not in result.detail  # the secret never appears in reports


def test_untrusted_certificate_fails_without_leaking(tls, tmp_path):
    cert, key = tls
    other, _ = make_certificate(tmp_path / "..")  # a different CA: the server's cert is not trusted
    with TelegramServer(cert, key, TOKEN) as tg:
        data = settings(cert, telegram=tg.base_url)
        data["channels"]["telegram"]["ca_file"] = str(other)
        m = manager(data)
        m.submit(alert("halt", Priority.URGENT))
        assert m.flush(20)
        m.close()
    result = next(r for r in m.results if r.channel == "telegram")
    assert not result.ok and "CERTIFICATE_VERIFY_FAILED" in result.detail
    assert tg.requests == []


def test_submit_never_blocks_on_a_dead_channel_and_drops_when_full(tls):
    cert, _ = tls
    data = settings(cert, smtp_port=dead_port(), queue_size=3)
    data["channels"]["log"]["enabled"] = False
    data["retry"] = {"attempts": 5, "initial_backoff_s": 2.0, "timeout_s": 5}
    m = manager(data)
    started = time.perf_counter()
    outcomes = [m.submit(alert(f"rejection {i}", Priority.ERROR, kind="rejection")) for i in range(20)]
    elapsed = time.perf_counter() - started
    assert elapsed < 0.5  # the caller (the node's event loop) never waits on the dead server
    assert outcomes[:3] == ["queued"] * 3  # one being retried plus a full queue, or a full queue of three
    assert outcomes[-1] == "dropped"
    assert sum(r.detail == "queue full" for r in m.results) == outcomes.count("dropped")
    m.close(timeout=0.2)  # shutting down interrupts the backoff


def test_missing_secret_is_a_one_line_config_error(tls):
    cert, _ = tls
    data = settings(cert, telegram="https://127.0.0.1:1")
    with pytest.raises(ConfigError, match=r"\$MIA_TELEGRAM_BOT_TOKEN is not set"):
        AlertManager(AlertsConfig.model_validate(data), env={})


def test_plain_http_only_to_loopback(tls):
    cert, _ = tls
    data = settings(cert, telegram="http://api.telegram.org")
    with pytest.raises(ConfigError, match="must use https"):
        AlertManager(AlertsConfig.model_validate(data), env=ENV)


def test_disabled_event_kind_is_not_sent(tls):
    cert, _ = tls
    data = settings(cert, events={"regime_change": {"enabled": False, "priority": "info"}})
    m = manager(data)
    assert m.submit(alert("regime", Priority.INFO, kind="regime_change")) == "disabled"
    m.close()


def test_bus_payload_round_trip_uses_rule_priority_when_absent():
    payload = alert_payload(
        "kill_switch",
        "ES drawdown limit",
        message="drawdown 6.1% > 6%",
        instrument_id="ESZ25.GLBX",
        ts_event=5,
        source="RiskActor",
        fields={"limit": 0.06, "value": 0.061},
    )
    assert "priority" not in payload
    parsed = Alert.from_payload(payload, default_priority=Priority.URGENT)
    assert parsed.priority is Priority.URGENT and parsed.fields == {"limit": 0.06, "value": 0.061}
    assert "limit=0.06 value=0.061" in parsed.text()
    with pytest.raises(ValueError, match="kind"):
        Alert.from_payload({"title": "x"})
    with pytest.raises(ValueError, match="unknown priority"):
        Alert.from_payload({"kind": "x", "title": "y", "priority": "loud"})


def test_mia_alerts_test_sends_every_priority_through_every_channel(tls, tmp_path):
    cert, key = tls
    with SmtpServer(cert, key) as smtp, TelegramServer(cert, key, TOKEN) as tg, SmsGatewayServer(cert, key) as sms:
        config = tmp_path / "alerts.yaml"
        data = settings(
            cert, telegram=tg.base_url, smtp_port=smtp.port, sms=sms.base_url, log_path=tmp_path / "a.jsonl"
        )
        config.write_text(yaml.safe_dump(data))
        result = run_mia("alerts", "test", "--config", str(config), env=ENV, timeout=120)
        assert result.returncode == 0, result.stderr + result.stdout
        assert len(smtp.messages) == 4 and len(tg.requests) == 4 and len(sms.requests) == 4
        subjects = sorted(email.message_from_bytes(m.content)["Subject"] for m in smtp.messages)
        assert subjects == [f"[MIA {p}] MIA test alert ({p.lower()})" for p in ("ERROR", "INFO", "URGENT", "WARNING")]
        assert "16 of 16 deliveries ok" in result.stdout


def test_mia_alerts_test_reports_a_dead_channel_and_fails(tls, tmp_path):
    cert, _ = tls
    config = tmp_path / "alerts.yaml"
    data = settings(cert, smtp_port=dead_port())
    data["retry"] = {"attempts": 2, "initial_backoff_s": 0.01, "timeout_s": 2}
    config.write_text(yaml.safe_dump(data))
    result = run_mia("alerts", "test", "--config", str(config), env=ENV, timeout=120)
    assert result.returncode == 2
    assert "4 of 8 deliveries failed" in result.stderr
    assert "email" in result.stdout and "refused" in result.stdout.lower()


def test_shipped_alerts_yaml_is_valid():
    result = run_mia("config", "check", str(REPO / "config" / "alerts.yaml"), timeout=120)
    assert result.returncode == 0, result.stderr


def test_invalid_alerts_yaml_is_one_line(tmp_path):
    bad = tmp_path / "alerts.yaml"
    bad.write_text(yaml.safe_dump({"channels": {"email": {"enabled": True, "port": 70000}}}))
    result = run_mia("config", "check", str(bad), timeout=120)
    assert result.returncode == 2
    assert "channels.email.port" in result.stderr and "accepted: 1 <= value <= 65535" in result.stderr
    bad.write_text(yaml.safe_dump({"events": {"kill_switch": {"priority": "loud"}}}))
    result = run_mia("config", "check", str(bad), timeout=120)
    assert result.returncode == 2 and "events.kill_switch.priority" in result.stderr
    assert result.stderr.count("\n") == 1
