"""A DTC server on real sockets that behaves like Sierra Chart's for everything the adapter uses.

One asyncio task per connection: the optional binary encoding handshake, logon (and refusals),
heartbeats both ways with dead-client detection, request/response batches, order entry handed to
``SimExchange`` and every unsolicited update broadcast to all logged-on connections. Fault hooks
reproduce what a real deployment does to a client: connections dropped (RST, FIN or LOGOFF) now or
right after a chosen message (for example between an order's acceptance and its fill), a server
that stops heartbeating or reading, logons refused, trading switched off, a restart with state
kept. Every message in either direction is recorded for assertions.
"""

import asyncio
import contextlib
import json
import socket
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from typing import Literal

from adapters.sierrachart.simulator import protocol as p
from adapters.sierrachart.simulator.config import SimulatorConfig
from adapters.sierrachart.simulator.exchange import SimExchange
from adapters.sierrachart.simulator.exchange import SimOrder


Message = dict[str, Any]
DropMode = Literal["rst", "fin", "logoff"]
_HANDLERS_BEFORE_LOGON = frozenset({p.LOGON_REQUEST, p.ENCODING_REQUEST})


@dataclass
class _DisconnectTrigger:
    predicate: Callable[[Message], bool]
    mode: DropMode
    reason: str
    do_not_reconnect: bool


class _Session:
    """One client connection."""

    def __init__(self, server: "DtcSimulator", reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.server = server
        self.reader = reader
        self.writer = writer
        self.logged_on = False
        self.closed = False
        self.heartbeat_interval = 10.0
        self.last_received = time.monotonic()
        self.heartbeat_task: asyncio.Task[None] | None = None
        self.client_name = ""

    def send(self, message: Message) -> None:
        """Write one JSON message (dropped silently once the connection is closing)."""
        if self.closed or self.writer.is_closing():
            return
        self.writer.write(p.dumps(message))
        self.server._record("sent", message)

    def close(self, mode: DropMode = "fin", reason: str = "", do_not_reconnect: bool = False) -> None:
        """Close the connection the way a server would: RST (abort), FIN, or LOGOFF then FIN."""
        if self.closed:
            return
        if mode == "logoff" and self.logged_on:
            self.send(
                {"Type": p.LOGOFF, "Reason": reason or "Server shutting down", "DoNotReconnect": int(do_not_reconnect)}
            )
        self.closed = True
        if self.heartbeat_task is not None:
            self.heartbeat_task.cancel()
        transport = self.writer.transport
        if mode == "rst":
            sock = transport.get_extra_info("socket")
            if sock is not None:
                with contextlib.suppress(OSError):
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
            transport.abort()
        else:
            self.writer.close()


class DtcSimulator:
    """The simulated Sierra Chart DTC server (see the module docstring).

    Use ``await sim.start()`` then connect to ``sim.port``. Market data is an input: call
    ``quote``/``trade`` (or attach a feed from ``adapters.sierrachart.simulator.feeds``).
    """

    def __init__(self, config: SimulatorConfig | None = None, clock: Callable[[], int] = time.time_ns) -> None:
        self.config = config or SimulatorConfig()
        self.exchange = SimExchange(self.config, self._broadcast, clock)
        self._server: asyncio.Server | None = None
        self._sessions: set[_Session] = set()
        self._tasks: set[asyncio.Task[None]] = set()
        self._port = self.config.port
        self.received: deque[Message] = deque(maxlen=self.config.traffic_limit)
        self.sent: deque[Message] = deque(maxlen=self.config.traffic_limit)
        self.logons = 0
        self._disconnect_triggers: list[_DisconnectTrigger] = []
        self._logon_refusals: deque[tuple[int, str, str]] = deque()
        self._paused_heartbeats = False
        self._paused_reading = False
        self._expiry_task: asyncio.Task[None] | None = None
        #: Called with each decoded client message and the ``time.perf_counter_ns()`` of the read that
        #: completed it (benchmarks measure when an order's bytes arrived).
        self.receive_hook: Callable[[Message, int], None] | None = None

    # -- lifecycle -----------------------------------------------------------------------------

    async def start(self) -> None:
        """Listen on ``config.host`` (port 0 picks a free port; read it from ``port``)."""
        self._server = await asyncio.start_server(self._handle, self.config.host, self._port, reuse_address=True)
        self._port = self._server.sockets[0].getsockname()[1]
        self._expiry_task = asyncio.get_running_loop().create_task(self._expire_loop())

    @property
    def port(self) -> int:
        """The listening port."""
        return self._port

    @property
    def connections(self) -> int:
        """Open client connections."""
        return sum(1 for s in self._sessions if not s.closed)

    @property
    def logged_on_connections(self) -> int:
        """Connections that completed logon."""
        return sum(1 for s in self._sessions if s.logged_on and not s.closed)

    async def stop(self) -> None:
        """Close every connection (FIN) and stop listening."""
        if self._expiry_task is not None:
            self._expiry_task.cancel()
            self._expiry_task = None
        for session in list(self._sessions):
            session.close("fin")
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None
        tasks = list(self._tasks)
        if tasks:
            _, pending = await asyncio.wait(tasks, timeout=1.0)
            for task in pending:
                task.cancel()
            if pending:
                await asyncio.wait(pending, timeout=1.0)

    async def restart(self, keep_state: bool = True) -> None:
        """Stop and listen again on the same port; ``keep_state=False`` forgets orders, fills, positions."""
        await self.stop()
        if not keep_state:
            self.exchange = SimExchange(self.config, self._broadcast, self.exchange._clock)
        await self.start()

    async def __aenter__(self) -> "DtcSimulator":
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    # -- market data and control ----------------------------------------------------------------

    def quote(
        self,
        symbol: str,
        bid: float | None,
        bid_size: float,
        ask: float | None,
        ask_size: float,
        ts_ns: int | None = None,
    ) -> None:
        """Feed a top-of-book update (display prices)."""
        self.exchange.quote(symbol, bid, bid_size, ask, ask_size, ts_ns)

    def trade(self, symbol: str, price: float, size: float, ts_ns: int | None = None) -> None:
        """Feed a trade print (display price)."""
        self.exchange.trade(symbol, price, size, ts_ns)

    def fill(self, server_order_id: str, quantity: float, price: float) -> None:
        """Force a fill without market data."""
        self.exchange.fill(server_order_id, quantity, price)

    def session_close(self) -> None:
        """End the trading day (DAY orders expire)."""
        self.exchange.session_close()

    def cancel_external(self, server_order_id: str) -> None:
        """Cancel an order from outside the DTC connection."""
        self.exchange.cancel_external(server_order_id)

    def set_allow_trading(self, allowed: bool) -> None:
        """Switch Sierra Chart's "Allow Trading" (logon flags follow on the next logon)."""
        self.config.allow_trading = allowed

    def disable_account(self, account: str, disabled: bool = True) -> None:
        """Mark a trade account as trading-disabled."""
        if disabled:
            self.config.disabled_accounts.add(account)
        else:
            self.config.disabled_accounts.discard(account)

    @property
    def orders(self) -> dict[str, SimOrder]:
        """Every order the server has seen, by ServerOrderID."""
        return self.exchange.orders

    # -- faults ---------------------------------------------------------------------------------

    def drop_connections(
        self, mode: DropMode = "rst", reason: str = "Server shutting down", do_not_reconnect: bool = False
    ) -> None:
        """Drop every client connection now."""
        for session in list(self._sessions):
            session.close(mode, reason, do_not_reconnect)

    def disconnect_after(
        self,
        predicate: Callable[[Message], bool],
        mode: DropMode = "fin",
        reason: str = "Server shutting down",
        do_not_reconnect: bool = False,
    ) -> None:
        """Drop every connection right after the next broadcast message that matches (one shot).

        ``disconnect_after(lambda m: m.get("OrderUpdateReason") == 2)`` cuts the client off between
        an order's acceptance and its fill: the fill happens while nobody is connected.
        """
        self._disconnect_triggers.append(_DisconnectTrigger(predicate, mode, reason, do_not_reconnect))

    def refuse_logons(
        self, result: int = p.LOGON_ERROR, text: str = "Logon refused", count: int = 1, address: str = ""
    ) -> None:
        """Answer the next ``count`` logons with ``result`` (2 error, 3 no reconnect, 4 new address)."""
        for _ in range(count):
            self._logon_refusals.append((result, text, address))

    def pause(self, heartbeats: bool = True, reading: bool = True) -> None:
        """Stop sending heartbeats and/or reading from clients (a hung server)."""
        self._paused_heartbeats = heartbeats
        self._paused_reading = reading
        if reading:
            for session in self._sessions:
                with contextlib.suppress(Exception):
                    session.writer.transport.pause_reading()  # type: ignore[attr-defined]

    def resume(self) -> None:
        """Undo ``pause``."""
        self._paused_heartbeats = False
        if self._paused_reading:
            self._paused_reading = False
            for session in self._sessions:
                with contextlib.suppress(Exception):
                    session.writer.transport.resume_reading()  # type: ignore[attr-defined]

    # -- assertions -----------------------------------------------------------------------------

    def received_of(self, message_type: int) -> list[Message]:
        """Client messages of one type, oldest first."""
        return [m for m in self.received if m.get("Type") == message_type]

    def sent_of(self, message_type: int) -> list[Message]:
        """Server messages of one type, oldest first."""
        return [m for m in self.sent if m.get("Type") == message_type]

    async def wait_for(
        self,
        message_type: int,
        predicate: Callable[[Message], bool] | None = None,
        timeout: float = 5.0,
        direction: Literal["received", "sent"] = "received",
        start: int = 0,
    ) -> Message:
        """Wait until a matching message was received (or sent); raise ``TimeoutError`` otherwise."""
        deadline = time.monotonic() + timeout
        while True:
            log = self.received if direction == "received" else self.sent
            for message in list(log)[start:]:
                if message.get("Type") == message_type and (predicate is None or predicate(message)):
                    return message
            if time.monotonic() >= deadline:
                raise TimeoutError(f"no {direction} message of type {message_type} within {timeout}s")
            await asyncio.sleep(0.005)

    async def flush(self) -> None:
        """Return once everything written so far has left the socket buffers."""
        for session in list(self._sessions):
            if not session.closed:
                with contextlib.suppress(ConnectionError):
                    await session.writer.drain()

    # -- internals ------------------------------------------------------------------------------

    def _record(self, direction: str, message: Message) -> None:
        (self.sent if direction == "sent" else self.received).append(message)

    def _broadcast(self, message: Message) -> None:
        for session in list(self._sessions):
            if session.logged_on:
                session.send(message)
        for trigger in list(self._disconnect_triggers):
            if trigger.predicate(message):
                self._disconnect_triggers.remove(trigger)
                self.drop_connections(trigger.mode, trigger.reason, trigger.do_not_reconnect)

    async def _expire_loop(self) -> None:
        while True:
            await asyncio.sleep(0.5)
            self.exchange.expire_due()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        session = _Session(self, reader, writer)
        sock = writer.get_extra_info("socket")
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._sessions.add(session)
        task = asyncio.current_task()
        if task is not None:
            self._tasks.add(task)  # type: ignore[arg-type]
        try:
            if self.config.encoding_mode == "automatic" and not await self._negotiate(session):
                return
            await self._read_loop(session)
        except (ConnectionError, asyncio.IncompleteReadError, OSError, asyncio.CancelledError):
            pass  # the client went away, or the server is stopping
        finally:
            session.close("fin")
            self._sessions.discard(session)
            if task is not None:
                self._tasks.discard(task)  # type: ignore[arg-type]

    async def _negotiate(self, session: _Session) -> bool:
        """Automatic encoding: the first 16 bytes must be the binary ENCODING_REQUEST."""
        data = await session.reader.readexactly(p.ENCODING_MESSAGE_SIZE)
        size, message_type, encoding = p.parse_encoding_request(data)
        if size != p.ENCODING_MESSAGE_SIZE or message_type != p.ENCODING_REQUEST:
            session.close("fin")
            return False
        self._record("received", {"Type": p.ENCODING_REQUEST, "Encoding": encoding, "Binary": 1})
        # The server only speaks JSON: a request for anything else is answered with JSON (a reject).
        session.writer.write(p.encoding_response_bytes(p.ENCODING_JSON))
        self._record("sent", {"Type": p.ENCODING_RESPONSE, "Encoding": p.ENCODING_JSON, "Binary": 1})
        return True

    async def _read_loop(self, session: _Session) -> None:
        buffer = bytearray()
        while not session.closed:
            data = await session.reader.read(65536)
            received_ns = time.perf_counter_ns()
            if not data:
                return
            session.last_received = time.monotonic()
            buffer.extend(data)
            while True:
                end = buffer.find(b"\x00")
                if end < 0:
                    break
                frame = bytes(buffer[:end])
                del buffer[: end + 1]
                if not frame:
                    continue
                if len(frame) > p.MAX_FRAME or not self._dispatch(session, frame, received_ns):
                    self._protocol_error(session)
                    return
                if session.closed:
                    return
            if len(buffer) > p.MAX_FRAME:
                self._protocol_error(session)
                return

    def _protocol_error(self, session: _Session) -> None:
        session.send({"Type": p.LOGOFF, "Reason": "Invalid message", "DoNotReconnect": 0})
        session.close("fin")

    def _dispatch(self, session: _Session, frame: bytes, received_ns: int = 0) -> bool:
        try:
            message = json.loads(frame.decode("latin-1"))
        except ValueError:
            return False
        if not isinstance(message, dict) or not isinstance(message.get("Type"), int | float):
            return False
        message["Type"] = int(message["Type"])
        self._record("received", message)
        if self.receive_hook is not None:
            self.receive_hook(message, received_ns)
        kind = message["Type"]
        if not session.logged_on:
            if kind == p.ENCODING_REQUEST:
                session.send(
                    {
                        "Type": p.ENCODING_RESPONSE,
                        "ProtocolVersion": 8,
                        "Encoding": p.ENCODING_JSON,
                        "ProtocolType": "DTC",
                    }
                )
            elif kind == p.LOGON_REQUEST:
                self._logon(session, message)
            return True  # anything else before logon is ignored (allowed by the spec)
        self._handle_logged_on(session, kind, message)
        return True

    def _handle_logged_on(self, session: _Session, kind: int, message: Message) -> None:
        exchange = self.exchange
        answers: dict[int, Callable[[Message], list[Message]]] = {
            p.TRADE_ACCOUNTS_REQUEST: exchange.trade_accounts,
            p.SECURITY_DEFINITION_FOR_SYMBOL_REQUEST: exchange.security_definition,
            p.ACCOUNT_BALANCE_REQUEST: exchange.account_balances,
            p.CURRENT_POSITIONS_REQUEST: exchange.current_positions,
            p.OPEN_ORDERS_REQUEST: exchange.open_orders,
            p.HISTORICAL_ORDER_FILLS_REQUEST: exchange.historical_fills,
        }
        entries: dict[int, Callable[[Message], None]] = {
            p.SUBMIT_NEW_SINGLE_ORDER: exchange.submit_single,
            p.SUBMIT_NEW_OCO_ORDER: exchange.submit_oco,
            p.CANCEL_ORDER: exchange.cancel,
            p.CANCEL_REPLACE_ORDER: exchange.cancel_replace,
        }
        if kind in answers:
            for answer in answers[kind](message):
                session.send(answer)
        elif kind in entries:
            entries[kind](message)
        elif kind == p.LOGOFF:
            session.close("fin")
        # HEARTBEAT only refreshes last_received; unknown types are ignored and recorded.

    def _logon(self, session: _Session, message: Message) -> None:
        if self._logon_refusals:
            result, text, address = self._logon_refusals.popleft()
            response: Message = {"Type": p.LOGON_RESPONSE, "ProtocolVersion": 8, "Result": result, "ResultText": text}
            if result == p.LOGON_RECONNECT_NEW_ADDRESS:
                response["ReconnectAddress"] = address
            session.send(response)
            session.close("fin")
            return
        if self.config.require_auth and (
            str(message.get("Username", "")) != self.config.username
            or str(message.get("Password", "")) != self.config.password
        ):
            session.send(
                {
                    "Type": p.LOGON_RESPONSE,
                    "ProtocolVersion": 8,
                    "Result": p.LOGON_ERROR,
                    "ResultText": "Invalid username or password",
                }
            )
            session.close("fin")
            return
        interval = message.get("HeartbeatIntervalInSeconds")
        session.heartbeat_interval = float(interval) if isinstance(interval, int | float) and interval > 0 else 10.0
        session.client_name = str(message.get("ClientName", ""))
        trading = int(self.config.allow_trading)
        session.send(
            {
                "Type": p.LOGON_RESPONSE,
                "ProtocolVersion": 8,
                "Result": p.LOGON_SUCCESS,
                "ResultText": f"Connected to SC DTC Protocol server. Service={self.config.service_name}"
                f"|SymbolSettings={self.config.service_name}",
                "ReconnectAddress": "",
                "Integer_1": 0,
                "ServerName": self.config.server_name,
                "MarketDepthUpdatesBestBidAndAsk": 0,
                "TradingIsSupported": trading,
                "OCOOrdersSupported": trading and int(self.config.oco_supported),
                "OrderCancelReplaceSupported": trading,
                "SymbolExchangeDelimiter": "",
                "SecurityDefinitionsSupported": 1,
                "HistoricalPriceDataSupported": 0,
                "ResubscribeWhenMarketDataFeedAvailable": 0,
                "MarketDepthIsSupported": 1,
                "OneHistoricalPriceDataRequestPerConnection": 0,
                "BracketOrdersSupported": trading and int(self.config.bracket_supported),
                "UsesMultiplePositionsPerSymbolAndTradeAccount": 0,
                "MarketDataSupported": 1,
            },
        )
        session.logged_on = True
        self.logons += 1
        session.heartbeat_task = asyncio.get_running_loop().create_task(self._heartbeat_loop(session))
        if self.config.auto_send_security_definitions:
            for spec in self.config.symbols.values():
                session.send(self.exchange.security_definition_message(spec, p.AUTO_SECURITY_DEFINITION_REQUEST_ID))

    async def _heartbeat_loop(self, session: _Session) -> None:
        interval = session.heartbeat_interval
        factor = self.config.heartbeat_timeout_factor
        step = min(interval, 0.25)
        next_beat = time.monotonic() + interval
        while not session.closed:
            await asyncio.sleep(step)
            now = time.monotonic()
            if factor > 0 and not self._paused_reading and now - session.last_received > factor * interval:
                session.close("fin")  # a silent client is gone
                return
            if now >= next_beat:
                next_beat = now + interval
                if not self._paused_heartbeats:
                    session.send({"Type": p.HEARTBEAT, "NumDroppedMessages": 0, "CurrentDateTime": int(time.time())})
