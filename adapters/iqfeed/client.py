"""The IQConnect protocol client: one asyncio connection per port, lookups, reconnects.

Each port (Level 1 5009, lookup 9100, depth 9200, admin 9300, bars 9400) is one
:class:`IQFeedConnection`: it opens the socket, speaks protocol 6.2 (``S,SET PROTOCOL,6.2`` and
asserts the ``S,CURRENT PROTOCOL`` reply), reads LF-framed latin-1 lines (CRs stripped, lines split
across reads reassembled), hands each line to its subclass, and when the server closes the socket or
an error occurs it reconnects with exponential backoff and replays its session state (field
selection, watches). A stale feed (no line for ``stale_after`` seconds on a port that has a
heartbeat) is treated as a dead socket.

The lookup port (:class:`LookupClient`) gives every request a unique id and a future; rows are
collected until the ``!ENDMSG!`` terminator (which also follows every error), ``E,...`` replies
become typed exceptions, a request with no reply within its (idle) timeout fails with
:class:`IQFeedTimeoutError` and any line that arrives for it later is dropped and counted; on a
disconnect every pending request fails at once with :class:`IQFeedConnectionLost`. Requests are
paced by a token bucket at DTN's ~50 per second.

Nothing here knows nautilus: subclasses deliver split fields to callbacks and the data client
parses them (see ``adapters.iqfeed.parsing``).
"""

import abc
import asyncio
import contextlib
import itertools
import logging
import os
import time
from collections import deque
from collections.abc import Callable
from collections.abc import Iterable
from dataclasses import dataclass
from dataclasses import field

from adapters.iqfeed.constants import ENV_LOGIN
from adapters.iqfeed.constants import ENV_PASSWORD
from adapters.iqfeed.constants import ENV_PRODUCT_ID
from adapters.iqfeed.constants import ENV_PRODUCT_VERSION
from adapters.iqfeed.constants import LOOKUP_RATE_PER_SECOND
from adapters.iqfeed.constants import PROTOCOL_VERSION


_log = logging.getLogger("adapters.iqfeed")

Fields = list[str]
FieldsHandler = Callable[[Fields], None]


# -- errors ---------------------------------------------------------------------------------------


class IQFeedError(Exception):
    """Base class of every IQFeed client error."""


class IQFeedProtocolError(IQFeedError):
    """The server does not speak protocol 6.2 (an IQConnect older than 6.2): fatal, no reconnect."""


class IQFeedConnectionError(IQFeedError):
    """IQConnect cannot be reached on a port."""


class IQFeedConnectionLost(IQFeedError):
    """The connection closed while a request was pending."""


class IQFeedTimeoutError(IQFeedError):
    """No reply (or no further row) within the request's timeout."""


class IQFeedLookupError(IQFeedError):
    """An ``E,<message>,`` reply to a lookup request."""

    def __init__(self, message: str, request_id: str = "", command: str = "") -> None:
        super().__init__(f"{message} (request {request_id}: {command})" if request_id else message)
        self.message = message
        self.request_id = request_id
        self.command = command


class IQFeedNoDataError(IQFeedLookupError):
    """``!NO_DATA!``: the symbol exists but the range holds nothing."""


class IQFeedInvalidSymbolError(IQFeedLookupError):
    """``Invalid symbol.``"""


class IQFeedUnauthorizedError(IQFeedLookupError):
    """``Unauthorized user ID.``: the account is not entitled to this data."""


class IQFeedSyntaxError(IQFeedLookupError):
    """``!SYNTAX_ERROR!``: the server did not understand the request."""


class IQFeedInvalidParametersError(IQFeedLookupError):
    """``Invalid number of parameters.``"""


_ERRORS: tuple[tuple[str, type[IQFeedLookupError]], ...] = (
    ("!NO_DATA!", IQFeedNoDataError),
    ("Invalid symbol", IQFeedInvalidSymbolError),
    ("Unauthorized", IQFeedUnauthorizedError),
    ("!SYNTAX_ERROR!", IQFeedSyntaxError),
    ("Invalid number of parameters", IQFeedInvalidParametersError),
)


def lookup_error(message: str, request_id: str = "", command: str = "") -> IQFeedLookupError:
    """The typed exception for an ``E`` reply's message."""
    for marker, cls in _ERRORS:
        if marker in message:
            return cls(message, request_id, command)
    return IQFeedLookupError(message, request_id, command)


def split_lines(pending: str, chunk: bytes) -> tuple[list[str], str]:
    """Frame one read: complete LF-terminated lines (CRs stripped, blanks dropped) and the unfinished rest.

    latin-1 maps every byte to one character, so a chunk can be decoded whole even when a line is
    split across reads; the unfinished tail waits in ``pending`` for the next read.
    """
    text = pending + chunk.decode("latin-1")
    cut = text.rfind("\n")
    if cut < 0:
        return [], text
    body = text[:cut]
    if "\r" in body:
        body = body.replace("\r", "")
    return [line for line in body.split("\n") if line], text[cut + 1 :]


# -- settings and statistics ----------------------------------------------------------------------


@dataclass(frozen=True)
class ReconnectPolicy:
    """Exponential backoff between reconnect attempts: initial, doubled each failure, capped."""

    initial_delay: float = 0.25
    max_delay: float = 30.0
    factor: float = 2.0

    def delays(self) -> Iterable[float]:
        """The delay before each successive attempt."""
        delay = self.initial_delay
        while True:
            yield delay
            delay = min(self.max_delay, delay * self.factor)


@dataclass
class ConnectionStats:
    """Counters of one connection, for logs, the data client's state and tests."""

    lines: int = 0
    connects: int = 0
    disconnects: int = 0
    errors: int = 0
    unknown: int = 0
    malformed: int = 0
    late: int = 0
    handler_errors: int = 0
    stale: int = 0
    last_line_monotonic: float = 0.0

    def as_dict(self) -> dict[str, float]:
        """Plain dict."""
        return {k: v for k, v in self.__dict__.items() if k != "last_line_monotonic"}


@dataclass(frozen=True)
class ConnectionOptions:
    """Settings every port shares.

    ``stale_after`` applies to the ports in ``heartbeat_ports`` only: Level 1 gets a ``T`` line every
    second, so silence there means a dead feed; the lookup port is silent between requests.
    """

    client_name: str = "MIA"
    reconnect: ReconnectPolicy = ReconnectPolicy()
    handshake_timeout: float = 5.0
    stale_after: float | None = 10.0
    heartbeat_ports: frozenset[str] = frozenset(("level1", "admin"))


StateCallback = Callable[[str, str], None]


def _noop_state(port: str, state: str) -> None:
    return None


# -- one port -------------------------------------------------------------------------------------


class IQFeedConnection(abc.ABC):
    """One IQConnect port: connect, handshake, read lines, reconnect and replay session state.

    Subclasses implement :meth:`handle_line` and may override :meth:`on_session_start` (called
    after every successful handshake, to re-apply their state) and :meth:`on_session_end`.
    """

    #: Lines the server sends without being asked that need no handling on any port.
    _IGNORED_SYSTEM = frozenset(("KEY", "KEYOK", "IP", "CUST", "STATS", "CURRENT LOG LEVELS", "WATCHES"))

    def __init__(
        self,
        name: str,
        host: str,
        port: int,
        options: "ConnectionOptions | None" = None,
        on_state: StateCallback | None = None,
    ) -> None:
        opts = options or ConnectionOptions()
        self.name = name
        self.host = host
        self.port = port
        self.client_name = opts.client_name
        self.reconnect_policy = opts.reconnect
        self.handshake_timeout = opts.handshake_timeout
        self.stale_after = opts.stale_after if name in opts.heartbeat_ports else None
        self.stats = ConnectionStats()
        self.protocol: str | None = None
        self._on_state = on_state or _noop_state
        self._writer: asyncio.StreamWriter | None = None
        self._reader_task: asyncio.Task[None] | None = None
        self._supervisor: asyncio.Task[None] | None = None
        self._stopping = False
        self._connected = asyncio.Event()
        self._waiters: dict[str, asyncio.Future[Fields]] = {}
        #: System replies that came before anyone waited for them (latest per type, this session only).
        self._unclaimed: dict[str, Fields] = {}
        self._protocol_rejected = False

    # -- public ------------------------------------------------------------------------------------

    @property
    def is_connected(self) -> bool:
        """Whether a session is open and handshaken."""
        return self._connected.is_set()

    async def start(self, required: bool = True) -> None:
        """Open the first session; with ``required`` a refused connection raises at once.

        Afterwards (and for optional ports, from the start) a supervisor keeps the port connected,
        reconnecting with backoff whenever the session ends.
        """
        self._stopping = False
        if required:
            await self._open_session()
        self._supervisor = asyncio.get_running_loop().create_task(
            self._supervise(open_first=not required),
            name=f"iqfeed-{self.name}",
        )

    async def stop(self) -> None:
        """Close the session and stop reconnecting."""
        self._stopping = True
        if self._supervisor is not None:
            self._supervisor.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._supervisor
            self._supervisor = None
        await self._close()

    async def wait_connected(self, timeout: float) -> bool:
        """Wait until a session is open (True) or ``timeout`` passes (False)."""
        try:
            await asyncio.wait_for(self._connected.wait(), timeout)
        except TimeoutError:
            return False
        return True

    def send(self, line: str) -> None:
        """Send one command (``\\r\\n`` appended); raises IQFeedConnectionLost without a session."""
        writer = self._writer
        if writer is None or writer.is_closing():
            raise IQFeedConnectionLost(f"{self.name} port is not connected")
        writer.write(line.encode("latin-1") + b"\r\n")

    def drop_connection(self) -> None:
        """Close the socket as if the server had (a stale feed); the supervisor reconnects."""
        if self._writer is not None:
            self._writer.close()

    # -- hooks ---------------------------------------------------------------------------------------

    @abc.abstractmethod
    def handle_line(self, fields: Fields, line: str) -> None:
        """Handle one line (split on commas); subclasses dispatch on ``fields[0]``."""

    async def on_session_start(self) -> None:  # noqa: B027 - optional hook, most ports have no session state
        """Re-apply session state after a handshake (field selection, watches)."""

    def on_session_end(self) -> None:  # noqa: B027 - optional hook
        """Forget per-session state after the socket closed."""

    # -- helpers for subclasses -------------------------------------------------------------------------

    def expect(self, key: str) -> asyncio.Future[Fields]:
        """A future resolved with the fields of the next system line whose type is ``key``.

        A line of that type that arrived while nobody waited resolves it at once: the reader handles a
        whole chunk before a waiting coroutine runs again, so a reply can land between one ``expect``
        being resolved and the next being registered (callers check the content and expect again).
        """
        future: asyncio.Future[Fields] = asyncio.get_running_loop().create_future()
        early = self._unclaimed.pop(key, None)
        if early is not None:
            future.set_result(early)
        else:
            self._waiters[key] = future
        return future

    async def wait_for(self, future: asyncio.Future[Fields], what: str) -> Fields:
        """Await a reply within the handshake timeout."""
        try:
            return await asyncio.wait_for(future, self.handshake_timeout)
        except TimeoutError:
            raise IQFeedTimeoutError(f"{self.name}: no {what} within {self.handshake_timeout}s") from None

    def resolve(self, key: str, fields: Fields) -> bool:
        """Resolve the waiter for ``key`` (if any) with ``fields``."""
        future = self._waiters.pop(key, None)
        if future is not None and not future.done():
            future.set_result(fields)
            return True
        self._unclaimed[key] = fields
        return False

    def set_state(self, state: str) -> None:
        """Report a state change of this port."""
        try:
            self._on_state(self.name, state)
        except Exception:  # a callback must never kill the connection
            _log.exception("iqfeed %s: state callback failed", self.name)

    # -- internals -----------------------------------------------------------------------------------

    async def _open_session(self) -> None:
        try:
            reader, writer = await asyncio.wait_for(
                asyncio.open_connection(self.host, self.port),
                self.handshake_timeout,
            )
        except (OSError, TimeoutError) as exc:
            raise IQFeedConnectionError(
                f"cannot reach IQConnect {self.name} port at {self.host}:{self.port} ({exc})"
            ) from None
        self._writer = writer
        self._unclaimed.clear()  # nothing from an earlier session answers this one
        self._reader_task = asyncio.get_running_loop().create_task(self._read(reader), name=f"iqfeed-{self.name}-read")
        try:
            await self._handshake()
            await self.on_session_start()
        except BaseException:
            await self._close()
            raise
        self.stats.connects += 1
        self._connected.set()
        self.set_state("connected")

    async def _handshake(self) -> None:
        """``S,SET PROTOCOL,6.2`` until ``S,CURRENT PROTOCOL,6.2`` comes back.

        Another version may be announced unsolicited first (the admin port greets with the
        default protocol), so replies are read until 6.2 or the timeout; a server that rejects
        6.2 (``E,6.2 is not a valid protocol.``) is too old and fails at once.
        """
        self._protocol_rejected = False
        deadline = time.monotonic() + self.handshake_timeout
        reply = self.expect("CURRENT PROTOCOL")
        self.send(f"S,SET PROTOCOL,{PROTOCOL_VERSION}")
        seen = ""
        while True:
            remaining = deadline - time.monotonic()
            try:
                fields = await asyncio.wait_for(reply, max(remaining, 0.0))
            except TimeoutError:
                if seen:
                    break
                raise IQFeedTimeoutError(
                    f"{self.name}: no S,CURRENT PROTOCOL reply within {self.handshake_timeout}s"
                ) from None
            if self._protocol_rejected:
                break
            seen = fields[2].strip() if len(fields) > 2 else ""
            if seen == PROTOCOL_VERSION:
                self.protocol = seen
                self.send(f"S,SET CLIENT NAME,{self.client_name}")
                return
            reply = self.expect("CURRENT PROTOCOL")
        self.protocol = seen
        raise IQFeedProtocolError(
            f"IQConnect {self.name} port does not speak protocol {PROTOCOL_VERSION} "
            f"(it answered {seen or 'an error'}): install IQFeed client 6.2 or later",
        )

    async def _supervise(self, open_first: bool) -> None:
        delays = iter(self.reconnect_policy.delays())
        if not open_first:
            await self._wait_session_end()
            delays = iter(self.reconnect_policy.delays())
        while not self._stopping:
            try:
                await self._open_session()
            except IQFeedProtocolError as exc:
                _log.error("iqfeed %s: %s", self.name, exc)
                self.set_state("protocol_error")
                return
            except (IQFeedError, OSError) as exc:
                delay = next(delays)
                _log.warning("iqfeed %s: reconnect failed (%s); retrying in %.2fs", self.name, exc, delay)
                self.set_state("reconnecting")
                await asyncio.sleep(delay)
                continue
            delays = iter(self.reconnect_policy.delays())
            _log.info("iqfeed %s: connected to %s:%s", self.name, self.host, self.port)
            await self._wait_session_end()

    async def _wait_session_end(self) -> None:
        task = self._reader_task
        watchdog = None
        if self.stale_after is not None:
            watchdog = asyncio.get_running_loop().create_task(self._watch_stale(), name=f"iqfeed-{self.name}-stale")
        try:
            if task is not None:
                with contextlib.suppress(Exception):
                    await task
        finally:
            if watchdog is not None:
                watchdog.cancel()
        await self._close()

    async def _watch_stale(self) -> None:
        assert self.stale_after is not None
        while True:
            await asyncio.sleep(min(1.0, self.stale_after / 4))
            idle = time.monotonic() - self.stats.last_line_monotonic
            if self.is_connected and idle > self.stale_after:
                self.stats.stale += 1
                _log.warning("iqfeed %s: no data for %.1fs: stale feed, reconnecting", self.name, idle)
                self.set_state("stale")
                self.drop_connection()
                return

    async def _close(self) -> None:
        was_connected = self._connected.is_set()
        self._connected.clear()
        writer, self._writer = self._writer, None
        if writer is not None:
            writer.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(writer.wait_closed(), 1.0)
        task, self._reader_task = self._reader_task, None
        if task is not None and not task.done():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        for future in self._waiters.values():
            if not future.done():
                future.set_exception(IQFeedConnectionLost(f"{self.name} port closed"))
        self._waiters.clear()
        if was_connected:
            self.stats.disconnects += 1
            self.on_session_end()
            self.set_state("stopped" if self._stopping else "disconnected")

    async def _read(self, reader: asyncio.StreamReader) -> None:
        try:
            await self._read_lines(reader)
        finally:
            for future in self._waiters.values():
                if not future.done():
                    future.set_exception(IQFeedConnectionLost(f"{self.name} port closed"))
            self._waiters.clear()

    async def _read_lines(self, reader: asyncio.StreamReader) -> None:
        pending = ""
        stats = self.stats
        handle = self.handle_line
        while True:
            try:
                chunk = await reader.read(1 << 16)
            except (ConnectionError, OSError):
                break
            if not chunk:
                break  # EOF: the server closed the socket
            stats.last_line_monotonic = time.monotonic()
            lines, pending = split_lines(pending, chunk)
            for line in lines:
                stats.lines += 1
                fields = line.split(",")
                try:
                    if fields[0] == "S" and len(fields) > 1 and self._system(fields):
                        continue
                    handle(fields, line)
                except Exception:
                    stats.handler_errors += 1
                    _log.exception("iqfeed %s: failed to handle line %r", self.name, line[:200])

    def _system(self, fields: Fields) -> bool:
        """Handle system lines every port shares; True when consumed."""
        kind = fields[1]
        if kind == "CURRENT PROTOCOL":
            self.resolve(kind, fields)
            return True
        if kind in self._IGNORED_SYSTEM:
            return True
        self.resolve(kind, fields)
        return False

    def unhandled(self, line: str) -> None:
        """Count (and log at debug) a line no handler understood."""
        self.stats.unknown += 1
        _log.debug("iqfeed %s: unknown line %r", self.name, line[:200])

    def protocol_rejected(self, fields: Fields) -> bool:
        """An ``E,<v> is not a valid protocol.,`` reply: fail the handshake waiter."""
        text = fields[1] if len(fields) > 1 else ""
        if "valid protocol" not in text:
            return False
        self._protocol_rejected = True
        future = self._waiters.pop("CURRENT PROTOCOL", None)
        if future is not None and not future.done():
            future.set_result(["S", "CURRENT PROTOCOL", ""])
        return True


# -- Level 1 (5009) ---------------------------------------------------------------------------------


@dataclass
class Level1Handlers:
    """Where Level 1 lines go (each receives the comma-split fields)."""

    update: FieldsHandler  # P and Q
    fundamental: FieldsHandler | None = None
    news: FieldsHandler | None = None
    timestamp: FieldsHandler | None = None
    not_found: FieldsHandler | None = None
    system: FieldsHandler | None = None  # S lines not handled by the client itself
    error: FieldsHandler | None = None


class Level1Client(IQFeedConnection):
    """Port 5009: watches, the selected update fields, news, timestamps; re-applied on reconnect."""

    def __init__(
        self,
        host: str,
        port: int,
        handlers: Level1Handlers,
        update_fields: Iterable[str],
        options: ConnectionOptions | None = None,
        on_state: StateCallback | None = None,
    ) -> None:
        super().__init__("level1", host, port, options, on_state)
        self.handlers = handlers
        self.update_fields = tuple(update_fields)
        self.fieldnames: tuple[str, ...] = ()
        self.fundamental_fieldnames: tuple[str, ...] = ()
        self.watches: dict[str, str] = {}
        self.news_on = False
        #: ``real_time`` or ``delayed`` per IQConnect's ``S,CUST`` greeting (None before it).
        self.service: str | None = None
        self._fundamental_waiters: dict[str, list[asyncio.Future[Fields]]] = {}

    async def on_session_start(self) -> None:
        """Select fields, ask for the fundamental layout, timestamps on, news, then re-watch."""
        reply = self.expect("CURRENT UPDATE FIELDNAMES")
        self.send("S,SELECT UPDATE FIELDS," + ",".join(self.update_fields))
        wanted = ("Symbol", *self.update_fields)
        for _ in range(3):  # an unsolicited default-layout announcement may come first
            names = await self.wait_for(reply, "S,CURRENT UPDATE FIELDNAMES")
            if tuple(names[2:]) == wanted:
                break
            reply = self.expect("CURRENT UPDATE FIELDNAMES")
        layout = self.expect("FUNDAMENTAL FIELDNAMES")
        self.send("S,REQUEST FUNDAMENTAL FIELDNAMES")
        await self.wait_for(layout, "S,FUNDAMENTAL FIELDNAMES")
        self.send("S,TIMESTAMPSON")
        if self.news_on:
            self.send("S,NEWSON")
        for symbol, mode in list(self.watches.items()):
            self.send(f"{mode}{symbol}")

    def _system(self, fields: Fields) -> bool:
        """Keep ``S,CUST``: a ``delayed`` service means every price is minutes old (no real-time entitlement)."""
        if fields[1] == "CUST":
            self.service = fields[2] if len(fields) > 2 else ""
            if self.handlers.system is not None:
                self.handlers.system(fields)
            return True
        return super()._system(fields)

    @property
    def delayed(self) -> bool:
        """Whether IQConnect announced a delayed (not real-time) service."""
        return self.service is not None and self.service != "real_time"

    def on_session_end(self) -> None:
        """Pending fundamental requests cannot be answered any more."""
        for waiters in self._fundamental_waiters.values():
            for future in waiters:
                if not future.done():
                    future.set_exception(IQFeedConnectionLost("level1 port closed"))
        self._fundamental_waiters.clear()

    def watch(self, symbol: str, trades_only: bool = False) -> None:
        """Watch trades and quotes (``w``) or trades only (``t``); kept across reconnects."""
        mode = "t" if trades_only else "w"
        if self.watches.get(symbol) == mode:
            return
        self.watches[symbol] = mode
        if self.is_connected:
            self.send(f"{mode}{symbol}")

    def unwatch(self, symbol: str) -> None:
        """Stop watching ``symbol``."""
        if self.watches.pop(symbol, None) is not None and self.is_connected:
            self.send(f"r{symbol}")

    def set_news(self, on: bool) -> None:
        """Streaming news headlines on or off (kept across reconnects)."""
        self.news_on = on
        if self.is_connected:
            self.send("S,NEWSON" if on else "S,NEWSOFF")

    async def fundamentals(self, symbol: str, timeout: float) -> Fields:
        """The ``F`` line of ``symbol`` (watching it briefly when not watched)."""
        future: asyncio.Future[Fields] = asyncio.get_running_loop().create_future()
        self._fundamental_waiters.setdefault(symbol, []).append(future)
        temporary = symbol not in self.watches
        self.send(f"w{symbol}" if temporary else f"f{symbol}")
        try:
            return await asyncio.wait_for(future, timeout)
        except TimeoutError:
            raise IQFeedTimeoutError(f"no fundamentals for {symbol} within {timeout}s") from None
        finally:
            waiters = self._fundamental_waiters.get(symbol, [])
            if future in waiters:
                waiters.remove(future)
            if temporary and symbol not in self.watches and self.is_connected:
                self.send(f"r{symbol}")

    def handle_line(self, fields: Fields, line: str) -> None:
        """Dispatch one Level 1 line."""
        kind = fields[0]
        h = self.handlers
        if kind == "Q" or kind == "P":
            h.update(fields)
        elif kind == "T":
            if h.timestamp is not None:
                h.timestamp(fields)
        elif kind == "F":
            self._fundamental(fields)
        elif kind == "N":
            if h.news is not None:
                h.news(fields)
        elif kind == "n":
            self._not_found(fields)
        elif kind == "S":
            self._level1_system(fields, line)
        elif kind == "E":
            if self.protocol_rejected(fields):
                return
            self.stats.errors += 1
            if h.error is not None:
                h.error(fields)
        elif kind in ("R", "C"):
            self.stats.unknown += 1  # regional quotes and trade corrections are not used
        else:
            self.unhandled(line)

    def _fundamental(self, fields: Fields) -> None:
        symbol = fields[1] if len(fields) > 1 else ""
        for future in self._fundamental_waiters.pop(symbol, []):
            if not future.done():
                future.set_result(fields)
        if self.handlers.fundamental is not None:
            self.handlers.fundamental(fields)

    def _not_found(self, fields: Fields) -> None:
        symbol = fields[1] if len(fields) > 1 else ""
        self.watches.pop(symbol, None)
        for future in self._fundamental_waiters.pop(symbol, []):
            if not future.done():
                future.set_exception(IQFeedInvalidSymbolError(f"unknown symbol {symbol}"))
        if self.handlers.not_found is not None:
            self.handlers.not_found(fields)

    def _level1_system(self, fields: Fields, line: str) -> None:
        kind = fields[1] if len(fields) > 1 else ""
        if kind == "CURRENT UPDATE FIELDNAMES":
            self.fieldnames = tuple(fields[2:])
        elif kind == "FUNDAMENTAL FIELDNAMES":
            self.fundamental_fieldnames = tuple(fields[2:])
        if self.handlers.system is not None:
            self.handlers.system(fields)


# -- lookups (9100) ---------------------------------------------------------------------------------


class TokenBucket:
    """Pace requests: at most ``burst`` at once, refilled at ``rate`` per second."""

    def __init__(self, rate: float, burst: float | None = None) -> None:
        self.rate = rate
        self.capacity = burst if burst is not None else rate
        self._tokens = self.capacity
        self._updated = time.monotonic()
        self._lock = asyncio.Lock()

    async def acquire(self) -> None:
        """Take one token, sleeping until one is available."""
        async with self._lock:
            while True:
                now = time.monotonic()
                self._tokens = min(self.capacity, self._tokens + (now - self._updated) * self.rate)
                self._updated = now
                if self._tokens >= 1.0:
                    self._tokens -= 1.0
                    return
                await asyncio.sleep((1.0 - self._tokens) / self.rate)


_DATA_IDS = frozenset(("LH", "LC", "LS", "LN", "LM", "LT"))


@dataclass
class _Pending:
    command: str
    future: asyncio.Future[list[str]]
    rows: list[str] = field(default_factory=list)
    error: str | None = None
    active: bool = False


class LookupClient(IQFeedConnection):
    """Port 9100: request/response lookups (history, chains, news, symbols) by request id."""

    def __init__(
        self,
        host: str,
        port: int,
        *,
        request_timeout: float = 30.0,
        rate_per_second: float = LOOKUP_RATE_PER_SECOND,
        options: ConnectionOptions | None = None,
        on_state: StateCallback | None = None,
    ) -> None:
        super().__init__("lookup", host, port, options, on_state)
        self.request_timeout = request_timeout
        self.limiter = TokenBucket(rate_per_second)
        self._ids = itertools.count(1)
        self._pending: dict[str, _Pending] = {}
        self._expired: deque[str] = deque(maxlen=4096)
        self._expired_set: set[str] = set()
        self.unattributed: int = 0

    async def request(self, command: str, timeout: float | None = None) -> list[str]:
        """Send ``command`` (with ``{rid}`` where the request id goes) and return its data rows.

        Rows are the lines after the request id and the 6.2 data identifier (``LH``, ``LC``, ...).
        Raises a typed :class:`IQFeedLookupError`, :class:`IQFeedTimeoutError` when no line arrives
        within ``timeout`` seconds (the timer restarts on every row), or :class:`IQFeedConnectionLost`.
        """
        if "{rid}" not in command:
            raise ValueError(f"command {command!r} has no {{rid}} placeholder")
        await self.limiter.acquire()
        rid = f"MIA{next(self._ids)}"
        text = command.replace("{rid}", rid)
        future: asyncio.Future[list[str]] = asyncio.get_running_loop().create_future()
        pending = _Pending(text, future)
        self._pending[rid] = pending
        try:
            self.send(text)
        except IQFeedConnectionLost:
            self._pending.pop(rid, None)
            raise
        limit = self.request_timeout if timeout is None else timeout
        try:
            while True:
                try:
                    return await asyncio.wait_for(asyncio.shield(future), limit)
                except TimeoutError:
                    if pending.active:
                        pending.active = False
                        continue
                    raise IQFeedTimeoutError(f"lookup {text!r}: no reply within {limit}s") from None
        finally:
            if self._pending.pop(rid, None) is not None and not future.done():
                future.cancel()
                self._remember_expired(rid)

    def _remember_expired(self, rid: str) -> None:
        if len(self._expired) == self._expired.maxlen:
            self._expired_set.discard(self._expired[0])
        self._expired.append(rid)
        self._expired_set.add(rid)

    def on_session_end(self) -> None:
        """Every pending request fails at once."""
        for rid, pending in list(self._pending.items()):
            if not pending.future.done():
                pending.future.set_exception(
                    IQFeedConnectionLost(f"lookup connection closed during {pending.command!r}")
                )
            self._remember_expired(rid)
        self._pending.clear()

    def handle_line(self, fields: Fields, line: str) -> None:
        """Route a reply line to its request by id; drop (and count) late or foreign lines."""
        rid = fields[0]
        pending = self._pending.get(rid)
        if pending is None:
            if rid in self._expired_set:
                self.stats.late += 1
            elif rid == "E" and self.protocol_rejected(fields):
                return
            else:
                self.unattributed += 1
                self.unhandled(line)
            return
        pending.active = True
        second = fields[1] if len(fields) > 1 else ""
        if second == "!ENDMSG!":
            if pending.future.done():
                return
            if pending.error is not None:
                pending.future.set_exception(lookup_error(pending.error, rid, pending.command))
            else:
                pending.future.set_result(pending.rows)
        elif second == "E" and pending.error is None and not pending.rows:
            pending.error = fields[2] if len(fields) > 2 else "unknown error"
        else:
            start = len(rid) + 1
            if second in _DATA_IDS:
                start += len(second) + 1
            pending.rows.append(line[start:])


# -- depth (9200) -----------------------------------------------------------------------------------


@dataclass
class DepthHandlers:
    """Where depth lines go."""

    update: FieldsHandler  # 0, 3-9
    clear: FieldsHandler  # S,CLEAR DEPTH
    rewatch: Callable[[str], None]  # before a symbol's snapshot is requested again
    not_found: FieldsHandler | None = None
    no_depth: FieldsHandler | None = None
    error: FieldsHandler | None = None


class DepthClient(IQFeedConnection):
    """Port 9200: market-by-price (``WPL``) and market-by-order (``WOR``) watches, re-applied on reconnect."""

    def __init__(
        self,
        host: str,
        port: int,
        handlers: DepthHandlers,
        options: ConnectionOptions | None = None,
        on_state: StateCallback | None = None,
    ) -> None:
        super().__init__("depth", host, port, options, on_state)
        self.handlers = handlers
        self.watches: dict[str, tuple[str, int]] = {}

    async def on_session_start(self) -> None:
        """Re-watch every symbol (its consumer clears the book first)."""
        for symbol, (kind, levels) in list(self.watches.items()):
            self.handlers.rewatch(symbol)
            self.send(self._command(kind, symbol, levels))

    @staticmethod
    def _command(kind: str, symbol: str, levels: int) -> str:
        return f"WPL,{symbol},{levels}" if kind == "WPL" and levels > 0 else f"{kind},{symbol}"

    def watch(self, symbol: str, by_order: bool, levels: int = 0) -> None:
        """``WOR`` (by order) or ``WPL`` (by price, up to ``levels``) for ``symbol``."""
        kind = "WOR" if by_order else "WPL"
        self.watches[symbol] = (kind, levels)
        if self.is_connected:
            self.handlers.rewatch(symbol)
            self.send(self._command(kind, symbol, levels))

    def unwatch(self, symbol: str) -> None:
        """Stop the depth watch of ``symbol``."""
        watch = self.watches.pop(symbol, None)
        if watch is not None and self.is_connected:
            self.send(f"{'ROR' if watch[0] == 'WOR' else 'RPL'},{symbol}")

    def handle_line(self, fields: Fields, line: str) -> None:
        """Dispatch one depth line."""
        kind = fields[0]
        h = self.handlers
        if kind in ("0", "3", "4", "5", "6", "7", "8", "9"):
            h.update(fields)
        elif kind == "S":
            if len(fields) > 1 and fields[1] == "CLEAR DEPTH":
                h.clear(fields)
            elif len(fields) > 1 and fields[1] in ("SERVER CONNECTED", "SERVER DISCONNECTED"):
                return
            else:
                self.unhandled(line)
        elif kind == "T" or kind == "O":
            return  # timestamps (heartbeat only) and the deprecated O message
        elif kind == "n":
            self.watches.pop(fields[1] if len(fields) > 1 else "", None)
            if h.not_found is not None:
                h.not_found(fields)
        elif kind == "q":
            self.watches.pop(fields[1] if len(fields) > 1 else "", None)
            if h.no_depth is not None:
                h.no_depth(fields)
        elif kind == "E":
            if self.protocol_rejected(fields):
                return
            self.stats.errors += 1
            if h.error is not None:
                h.error(fields)
        else:
            self.unhandled(line)


# -- streaming bars (9400) ----------------------------------------------------------------------------


@dataclass
class BarWatch:
    """One ``BW`` watch; ``resume_from_ns`` is where a re-watch's backfill starts (UTC ns)."""

    symbol: str
    interval_secs: int
    request_id: str
    resume_from_ns: int
    update_interval: int = 0


@dataclass
class BarHandlers:
    """Where bar lines go."""

    bar: FieldsHandler
    not_found: FieldsHandler | None = None
    error: FieldsHandler | None = None


class BarsClient(IQFeedConnection):
    """Port 9400: ``BW`` interval-bar watches; a re-watch asks for the bars since the last one it had."""

    def __init__(
        self,
        host: str,
        port: int,
        handlers: BarHandlers,
        format_begin: Callable[[int], str],
        options: ConnectionOptions | None = None,
        on_state: StateCallback | None = None,
    ) -> None:
        super().__init__("bars", host, port, options, on_state)
        self.handlers = handlers
        self.watches: dict[str, BarWatch] = {}
        self._format_begin = format_begin

    def _command(self, watch: BarWatch) -> str:
        begin = self._format_begin(watch.resume_from_ns)
        return f"BW,{watch.symbol},{watch.interval_secs},{begin},,,,,{watch.request_id},s,,{watch.update_interval}"

    async def on_session_start(self) -> None:
        """Re-watch every bar stream from where it stopped (the server backfills with BH rows)."""
        for watch in list(self.watches.values()):
            self.send(self._command(watch))

    def watch(self, watch: BarWatch) -> None:
        """Start (or replace) a bar watch."""
        self.watches[watch.request_id] = watch
        if self.is_connected:
            self.send(self._command(watch))

    def unwatch(self, request_id: str) -> None:
        """Stop a bar watch."""
        watch = self.watches.pop(request_id, None)
        if watch is not None and self.is_connected:
            self.send(f"BR,{watch.symbol},{watch.request_id}")

    def handle_line(self, fields: Fields, line: str) -> None:
        """Dispatch one 9400 line."""
        kind = fields[0]
        h = self.handlers
        second = fields[1] if len(fields) > 1 else ""
        if kind in ("BH", "BU", "BC") or second in ("BH", "BU", "BC"):
            h.bar(fields)
        elif kind == "n":
            symbol = second
            for rid, watch in list(self.watches.items()):
                if watch.symbol == symbol:
                    self.watches.pop(rid)
            if h.not_found is not None:
                h.not_found(fields)
        elif kind == "S":
            if second not in (
                "REPLACED PREVIOUS WATCH",
                "SERVER CONNECTED",
                "SERVER DISCONNECTED",
                "SYMBOL LIMIT REACHED",
            ):
                self.unhandled(line)
        elif kind == "T":
            return
        elif kind == "E":
            if self.protocol_rejected(fields):
                return
            self.stats.errors += 1
            if h.error is not None:
                h.error(fields)
        else:
            self.unhandled(line)


# -- admin (9300) ---------------------------------------------------------------------------------------


class AdminClient(IQFeedConnection):
    """Port 9300: feed statistics once a second; registers the product and login from the environment.

    ``IQFEED_PRODUCT_ID`` (and ``IQFEED_PRODUCT_VERSION``), ``IQFEED_LOGIN`` and ``IQFEED_PASSWORD``
    are read from the environment only when the session starts and are never logged.
    """

    def __init__(
        self,
        host: str,
        port: int,
        on_stats: FieldsHandler | None = None,
        options: ConnectionOptions | None = None,
        on_state: StateCallback | None = None,
    ) -> None:
        super().__init__("admin", host, port, options, on_state)
        self.on_stats = on_stats
        self.last_stats: Fields = []

    @property
    def server_connected(self) -> bool | None:
        """IQConnect's link to DTN per the last ``S,STATS`` (None before the first one)."""
        if len(self.last_stats) > 12:
            return self.last_stats[12] == "Connected"
        return None

    async def on_session_start(self) -> None:
        """Register the product and log in when the environment provides them."""
        product = os.environ.get(ENV_PRODUCT_ID, "").strip()
        if product:
            version = os.environ.get(ENV_PRODUCT_VERSION, "").strip()
            self.send(f"S,REGISTER CLIENT APP,{product}" + (f",{version}" if version else ""))
        login = os.environ.get(ENV_LOGIN, "").strip()
        password = os.environ.get(ENV_PASSWORD, "")
        if login and password:
            self.send(f"S,SET LOGINID,{login}")
            self.send(f"S,SET PASSWORD,{password}")
            self.send("S,SET AUTOCONNECT,On")
            self.send("S,CONNECT")

    def _system(self, fields: Fields) -> bool:
        if fields[1] == "STATS":
            self.last_stats = fields
            if self.on_stats is not None:
                self.on_stats(fields)
            return True
        return super()._system(fields)

    def handle_line(self, fields: Fields, line: str) -> None:
        """Admin replies need no handling beyond the statistics."""
        if fields[0] == "E" and self.protocol_rejected(fields):
            return
        if fields[0] != "S":
            self.unhandled(line)
