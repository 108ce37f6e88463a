"""An asyncio DTC client: encoding handshake, logon, heartbeats, request batches, reconnect with backoff.

One TCP connection, one reader task, one heartbeat task. Requests carry a fresh ``RequestID`` and
complete when their batch does (``MessageNumber == TotalNumberMessages``, ``IsFinalMessage``, or a
``No...=1`` flag); their reject message type fails them with the server's text. Everything else,
including updates with ``RequestID == 0``, goes to the handler as it arrives, in order.

When the connection drops (EOF, reset, or no message for twice the heartbeat interval) the client
tells the handler, then reconnects with exponential backoff and logs on again; the handler's
``on_connected(reconnected=True)`` is where the execution client reconciles. It does not reconnect
after a ``LOGOFF`` with ``DoNotReconnect=1`` or a logon answered ``ERROR_NO_RECONNECT``; a logon
answered ``RECONNECT_NEW_ADDRESS`` moves it to the address given.
"""

import asyncio
import contextlib
import itertools
import socket
import time
from collections.abc import Iterable
from dataclasses import dataclass
from dataclasses import field
from typing import Any
from typing import Literal
from typing import Protocol

from nautilus_trader.common.component import Logger

from adapters.sierrachart.codec import ENCODING_FRAME_SIZE
from adapters.sierrachart.codec import DtcMessage
from adapters.sierrachart.codec import DtcProtocolError
from adapters.sierrachart.codec import FrameDecoder
from adapters.sierrachart.codec import encode_message
from adapters.sierrachart.codec import encoding_request
from adapters.sierrachart.codec import parse_encoding_frame
from adapters.sierrachart.constants import DTC_PROTOCOL_VERSION
from adapters.sierrachart.constants import Encoding
from adapters.sierrachart.constants import LogonStatus
from adapters.sierrachart.constants import MessageType
from adapters.sierrachart.constants import TradeMode


class DtcError(Exception):
    """Base class of DTC client errors."""


class DtcConnectionError(DtcError):
    """The connection could not be made, or was lost while a request waited."""


class DtcLogonError(DtcError):
    """The server refused the logon; ``no_reconnect`` when it said not to try again."""

    def __init__(self, text: str, result: int, no_reconnect: bool) -> None:
        super().__init__(text)
        self.result = result
        self.no_reconnect = no_reconnect


class DtcRequestRejected(DtcError):
    """The server answered a request with its reject message; the text is the server's."""


@dataclass(frozen=True)
class LogonInfo:
    """What the server said about itself in LOGON_RESPONSE."""

    server_name: str
    result_text: str
    protocol_version: int
    trading_supported: bool
    oco_supported: bool
    cancel_replace_supported: bool
    bracket_supported: bool
    security_definitions_supported: bool
    symbol_exchange_delimiter: str

    @classmethod
    def from_message(cls, message: DtcMessage) -> "LogonInfo":
        """Read the flags leniently (absent means 0, except cancel/replace whose header default is 1)."""
        return cls(
            server_name=message.text("ServerName"),
            result_text=message.text("ResultText"),
            protocol_version=message.integer("ProtocolVersion"),
            trading_supported=message.flag("TradingIsSupported"),
            oco_supported=message.flag("OCOOrdersSupported"),
            cancel_replace_supported=message.integer("OrderCancelReplaceSupported", 1) != 0,
            bracket_supported=message.flag("BracketOrdersSupported"),
            security_definitions_supported=message.flag("SecurityDefinitionsSupported"),
            symbol_exchange_delimiter=message.text("SymbolExchangeDelimiter"),
        )


@dataclass(frozen=True)
class ReconnectPolicy:
    """Exponential backoff between reconnect attempts (no jitter: runs are reproducible)."""

    initial_delay_secs: float = 0.5
    max_delay_secs: float = 30.0
    multiplier: float = 2.0
    #: ``None`` retries forever.
    max_attempts: int | None = None

    def delay(self, attempt: int) -> float:
        """Seconds to wait before attempt number ``attempt`` (1-based)."""
        return float(min(self.max_delay_secs, self.initial_delay_secs * self.multiplier ** max(0, attempt - 1)))


class DtcHandler(Protocol):
    """What the client reports to its owner."""

    def on_message(self, message: DtcMessage) -> None:
        """An unsolicited message (or one answering nobody's request)."""

    async def on_connected(self, info: LogonInfo, reconnected: bool) -> None:
        """Logged on; ``reconnected`` after a drop (time to reconcile)."""

    def on_disconnected(self, reason: str) -> None:
        """The connection dropped; the client reconnects unless ``on_fatal`` follows."""

    def on_fatal(self, reason: str) -> None:
        """The client gave up: the server said not to reconnect, or attempts ran out."""


@dataclass
class _Batch:
    responses: frozenset[int]
    rejects: frozenset[int]
    future: asyncio.Future[list[DtcMessage]]
    messages: list[DtcMessage] = field(default_factory=list)


_COMPLETION_FLAGS = ("NoOrders", "NoPositions", "NoOrderFills", "NoAccountBalances")


def batch_complete(message: DtcMessage) -> bool:
    """True when ``message`` is the last of its response batch."""
    if any(message.flag(name) for name in _COMPLETION_FLAGS) or message.flag("IsFinalMessage"):
        return True
    total = message.integer("TotalNumberMessages") or message.integer("TotalNumMessages")
    number = message.integer("MessageNumber")
    if total > 0 and number > 0:
        return number >= total
    # No batch counters at all: a single answer (SECURITY_DEFINITION_RESPONSE without IsFinalMessage)
    return message.type != MessageType.SECURITY_DEFINITION_RESPONSE or "IsFinalMessage" not in message


class DtcClient:
    """One DTC connection to a Sierra Chart server (see the module docstring).

    Parameters
    ----------
    host, port : str, int
        The DTC server (Sierra Chart's "Listening Port", 11099 by default).
    handler : DtcHandler
        Receives unsolicited messages and connection events.
    encoding_mode : {"automatic", "json"}
        "automatic" sends the binary ENCODING_REQUEST first (needed when Sierra's Encoding setting
        is Automatic); "json" starts with the JSON logon (Encoding set to JSON).
    username, password : str
        Only needed when "Require Authentication" is on. Never logged.
    heartbeat_interval_secs : int
        Sent in the logon; the peer is declared gone after twice this with nothing received.
    """

    def __init__(
        self,
        host: str,
        port: int,
        handler: DtcHandler,
        *,
        encoding_mode: Literal["automatic", "json"] = "automatic",
        username: str = "",
        password: str = "",
        client_name: str = "mia-nautilus",
        heartbeat_interval_secs: int = 10,
        trade_mode: TradeMode = TradeMode.SIMULATED,
        connect_timeout_secs: float = 10.0,
        request_timeout_secs: float = 20.0,
        reconnect: ReconnectPolicy | None = None,
        logger: Logger | None = None,
    ) -> None:
        self._host = host
        self._port = port
        self._handler = handler
        self._encoding_mode = encoding_mode
        self._username = username
        self._password = password
        self._client_name = client_name
        self._heartbeat_interval = max(1, int(heartbeat_interval_secs))
        self._trade_mode = trade_mode
        self._connect_timeout = connect_timeout_secs
        self._request_timeout = request_timeout_secs
        self._reconnect_policy = reconnect or ReconnectPolicy()
        self._log = logger or Logger(type(self).__name__)
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None
        self._reader_task: asyncio.Task[None] | None = None
        self._heartbeat_task: asyncio.Task[None] | None = None
        self._reconnect_task: asyncio.Task[None] | None = None
        self._pending: dict[int, _Batch] = {}
        self._request_ids = itertools.count(1)
        self._generation = 0
        self._closing = False
        self._server_said_stop = False
        self._last_received = 0.0
        self.logon_info: LogonInfo | None = None
        self.fatal_reason = ""
        self.reconnects = 0

    # -- properties ----------------------------------------------------------------------------

    @property
    def is_connected(self) -> bool:
        """Logged on and the connection is open."""
        return self._writer is not None and not self._writer.is_closing() and self.logon_info is not None

    @property
    def address(self) -> tuple[str, int]:
        """The server address in use (it changes after RECONNECT_NEW_ADDRESS)."""
        return self._host, self._port

    # -- connect / close -----------------------------------------------------------------------

    async def connect(self, attempts: int = 1) -> LogonInfo:
        """Connect and log on, trying up to ``attempts`` times with the backoff delays.

        Raises ``DtcLogonError`` at once when the server refuses without reconnect, and the last
        error when every attempt failed.
        """
        self._closing = False
        self._server_said_stop = False
        self.fatal_reason = ""
        last_error: Exception | None = None
        for attempt in range(1, max(1, attempts) + 1):
            try:
                info = await self._open()
            except DtcLogonError as exc:
                if exc.no_reconnect:
                    raise
                last_error = exc
            except (TimeoutError, OSError, DtcError, DtcProtocolError) as exc:
                last_error = exc
            else:
                return info
            if attempt < attempts:
                await asyncio.sleep(self._reconnect_policy.delay(attempt))
        assert last_error is not None
        if isinstance(last_error, DtcError):
            raise last_error
        raise DtcConnectionError(f"cannot connect to DTC server {self._host}:{self._port}: {last_error}") from None

    async def close(self, reason: str = "client shutdown") -> None:
        """Log off (when connected), close the connection and stop reconnecting."""
        self._closing = True
        if self._reconnect_task is not None:
            self._reconnect_task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._reconnect_task
            self._reconnect_task = None
        writer = self._writer
        if writer is not None and not writer.is_closing():
            with contextlib.suppress(Exception):
                writer.write(encode_message({"Type": MessageType.LOGOFF, "Reason": reason, "DoNotReconnect": 0}))
                await asyncio.wait_for(writer.drain(), 1.0)
        self._teardown("client closed")
        for task in (self._reader_task, self._heartbeat_task):
            if task is not None and task is not asyncio.current_task():
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
        self._reader_task = self._heartbeat_task = None

    def drop(self) -> None:
        """Abort the connection as if the network failed (used by fault tests and liveness checks)."""
        writer = self._writer
        if writer is not None:
            writer.transport.abort()

    # -- sending -------------------------------------------------------------------------------

    def send(self, message: dict[str, Any]) -> None:
        """Write one message; raises ``DtcConnectionError`` when not connected."""
        writer = self._writer
        if writer is None or writer.is_closing() or self.logon_info is None:
            raise DtcConnectionError("not connected to the DTC server")
        writer.write(encode_message(message))

    async def request(
        self,
        message: dict[str, Any],
        responses: Iterable[int],
        rejects: Iterable[int] = (),
        timeout: float | None = None,
    ) -> list[DtcMessage]:
        """Send a request with a fresh RequestID and return its whole answer batch."""
        request_id = next(self._request_ids)
        future: asyncio.Future[list[DtcMessage]] = asyncio.get_running_loop().create_future()
        self._pending[request_id] = _Batch(frozenset(responses), frozenset(rejects), future)
        try:
            self.send({**message, "RequestID": request_id})
            return await asyncio.wait_for(future, timeout or self._request_timeout)
        except TimeoutError:
            waited = timeout or self._request_timeout
            kind = message.get("Type")
            raise DtcConnectionError(f"no complete answer to DTC request type {kind} within {waited}s") from None
        finally:
            self._pending.pop(request_id, None)

    # -- connection internals ------------------------------------------------------------------

    async def _open(self) -> LogonInfo:
        """One connection attempt: TCP, encoding, logon, then start the reader and heartbeats."""
        self._teardown("reconnecting")
        reader, writer = await asyncio.wait_for(
            asyncio.open_connection(self._host, self._port),
            self._connect_timeout,
        )
        sock = writer.get_extra_info("socket")
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        try:
            decoder = FrameDecoder()
            if self._encoding_mode == "automatic":
                await self._negotiate(reader, writer)
            info, early = await self._logon(reader, writer, decoder)
        except BaseException:
            writer.transport.abort()
            raise
        self._generation += 1
        self._reader, self._writer = reader, writer
        self.logon_info = info
        self._last_received = time.monotonic()
        generation = self._generation
        loop = asyncio.get_running_loop()
        self._reader_task = loop.create_task(self._read_loop(reader, decoder, generation), name="dtc-reader")
        self._heartbeat_task = loop.create_task(self._heartbeat_loop(generation), name="dtc-heartbeat")
        self._log.info(f"Logged on to DTC server {info.server_name!r} at {self._host}:{self._port}")
        for message in early:  # arrived in the same read as the logon response
            self._dispatch(message)
        return info

    async def _negotiate(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(encoding_request(Encoding.JSON))
        data = await asyncio.wait_for(reader.readexactly(ENCODING_FRAME_SIZE), self._connect_timeout)
        frame = parse_encoding_frame(data)
        if frame.encoding != Encoding.JSON:
            raise DtcError(
                f"DTC server kept encoding {frame.encoding} instead of JSON (2): set Sierra Chart's DTC server "
                "Encoding to JSON or Automatic",
            )

    async def _logon(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        decoder: FrameDecoder,
    ) -> tuple[LogonInfo, list[DtcMessage]]:
        logon: dict[str, Any] = {
            "Type": MessageType.LOGON_REQUEST,
            "ProtocolVersion": DTC_PROTOCOL_VERSION,
            "Username": self._username,
            "Password": self._password,
            "HeartbeatIntervalInSeconds": self._heartbeat_interval,
            "ClientName": self._client_name,
            "TradeMode": int(self._trade_mode),  # legacy field: harmless where ignored
            "Integer_1": 0,
        }
        writer.write(encode_message(logon))
        deadline = time.monotonic() + self._connect_timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise DtcConnectionError("no LOGON_RESPONSE from the DTC server in time")
            data = await asyncio.wait_for(reader.read(65536), remaining)
            if not data:
                raise DtcConnectionError("DTC server closed the connection during logon")
            messages = decoder.feed(data)
            for n, message in enumerate(messages):
                if message.type == MessageType.LOGON_RESPONSE:
                    return self._logon_result(message), messages[n + 1 :]

    def _logon_result(self, message: DtcMessage) -> LogonInfo:
        result = message.integer("Result")
        text = message.text("ResultText") or "no reason given"
        if result == LogonStatus.SUCCESS:
            return LogonInfo.from_message(message)
        if result == LogonStatus.RECONNECT_NEW_ADDRESS:
            address = message.text("ReconnectAddress")
            host, _, port = address.rpartition(":")
            if host and port.isdigit():
                self._host, self._port = host, int(port)
            elif address:
                self._host = address
            raise DtcLogonError(f"DTC server asked to reconnect to {address or 'the same address'}", result, False)
        no_reconnect = result == LogonStatus.ERROR_NO_RECONNECT
        raise DtcLogonError(f"DTC logon refused: {text}", result, no_reconnect)

    def _teardown(self, reason: str) -> None:
        writer = self._writer
        self._writer = self._reader = None
        self.logon_info = None
        if writer is not None and not writer.is_closing():
            writer.close()
        for batch in self._pending.values():
            if not batch.future.done():
                batch.future.set_exception(DtcConnectionError(f"DTC connection lost ({reason})"))
        self._pending.clear()

    async def _read_loop(self, reader: asyncio.StreamReader, decoder: FrameDecoder, generation: int) -> None:
        reason = "connection closed by the server"
        try:
            while True:
                data = await reader.read(65536)
                if not data:
                    break
                self._last_received = time.monotonic()
                for message in decoder.feed(data):
                    self._dispatch(message)
        except asyncio.CancelledError:
            raise
        except DtcProtocolError as exc:
            reason = f"protocol error: {exc}"
        except (ConnectionError, OSError) as exc:
            reason = f"connection error: {exc.__class__.__name__}"
        self._connection_lost(generation, reason)

    async def _heartbeat_loop(self, generation: int) -> None:
        interval = float(self._heartbeat_interval)
        step = min(1.0, interval / 4)
        next_beat = time.monotonic() + interval
        while generation == self._generation and self._writer is not None:
            await asyncio.sleep(step)
            now = time.monotonic()
            if now - self._last_received > 2 * interval:
                self._log.warning(f"No DTC message for {now - self._last_received:.1f}s: connection declared dead")
                writer = self._writer
                if writer is not None:
                    writer.transport.abort()
                self._connection_lost(generation, "heartbeat timeout")
                return
            if now >= next_beat:
                next_beat = now + interval
                with contextlib.suppress(DtcError, ConnectionError, RuntimeError):
                    self.send({"Type": MessageType.HEARTBEAT})

    def _dispatch(self, message: DtcMessage) -> None:
        kind = message.type
        if kind == MessageType.HEARTBEAT:
            return
        if kind == MessageType.LOGOFF:
            self._server_said_stop = message.flag("DoNotReconnect")
            self._log.warning(f"DTC server logged off: {message.text('Reason') or 'no reason given'}")
            return
        request_id = message.integer("RequestID")
        batch = self._pending.get(request_id) if request_id else None
        if batch is not None and kind in batch.rejects:
            if not batch.future.done():
                batch.future.set_exception(DtcRequestRejected(message.text("RejectText") or "request rejected"))
            return
        if batch is not None and kind in batch.responses:
            batch.messages.append(message)
            if batch_complete(message) and not batch.future.done():
                batch.future.set_result(batch.messages)
            return
        self._handler.on_message(message)

    def _connection_lost(self, generation: int, reason: str) -> None:
        if generation != self._generation or self._closing:
            return
        self._generation += 1  # any later callback of this connection is stale
        self._teardown(reason)
        heartbeat = self._heartbeat_task
        if heartbeat is not None and heartbeat is not asyncio.current_task():
            heartbeat.cancel()
        self._log.warning(f"DTC connection lost: {reason}")
        self._handler.on_disconnected(reason)
        if self._server_said_stop:
            self._give_up("the DTC server logged off with DoNotReconnect")
            return
        self._reconnect_task = asyncio.get_running_loop().create_task(self._reconnect_loop(), name="dtc-reconnect")

    def _give_up(self, reason: str) -> None:
        self.fatal_reason = reason
        self._log.error(f"Not reconnecting to DTC server: {reason}")
        self._handler.on_fatal(reason)

    async def _reconnect_loop(self) -> None:
        policy = self._reconnect_policy
        for attempt in itertools.count(1):
            if self._closing:
                return
            if policy.max_attempts is not None and attempt > policy.max_attempts:
                self._give_up(f"{policy.max_attempts} reconnect attempts failed")
                return
            await asyncio.sleep(policy.delay(attempt))
            if self._closing:
                return
            try:
                info = await self._open()
            except DtcLogonError as exc:
                if exc.no_reconnect:
                    self._give_up(str(exc))
                    return
                self._log.warning(f"Reconnect attempt {attempt} refused: {exc}")
                continue
            except (TimeoutError, OSError, DtcError, DtcProtocolError) as exc:
                self._log.warning(f"Reconnect attempt {attempt} failed: {exc.__class__.__name__} {exc}")
                continue
            self.reconnects += 1
            self._reconnect_task = None
            await self._handler.on_connected(info, True)
            return
