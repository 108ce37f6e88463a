"""A protocol-faithful fake IQConnect on real sockets: Level 1, lookup, depth, admin and bar ports.

Built from ``shared/docs/iqfeed-protocol.md`` section 7 (general rules, byte-level script, error
cases). One asyncio server per port on 127.0.0.1 (any port, 0 = pick one); every connection is a
session with its own protocol version, client name, watches, field set and flags. The market
(:mod:`adapters.iqfeed.simulator.market`) is shared: its quotes and trades fan out to the watching
sessions as ``Q`` lines, depth updates and interval bars, and every trade is kept for history
lookups, so a client that reconnects can backfill exactly what it missed.

Faults for tests: :meth:`IQFeedSimulator.disconnect_all` (server-side close of every socket),
:meth:`IQFeedSimulator.stop_listening` / :meth:`IQFeedSimulator.resume_listening` (IQConnect dies and
comes back on the same ports), ``lookup_delay`` (slow replies), ``fragment`` (every line split
across several writes), :meth:`IQFeedSimulator.push_raw` (malformed or unknown lines),
:meth:`IQFeedSimulator.push_system` (``S,SERVER DISCONNECTED`` and friends), and ``unauthorized``
symbols in the universe. Every command received is logged in ``commands``.
"""

import asyncio
import contextlib
import datetime as dt
import logging
import random
from collections.abc import Awaitable
from collections.abc import Callable
from collections.abc import Iterator
from dataclasses import dataclass
from dataclasses import field
from typing import Protocol

from adapters.iqfeed.simulator import lookups
from adapters.iqfeed.simulator import wire
from adapters.iqfeed.simulator.market import Book
from adapters.iqfeed.simulator.market import DepthChange
from adapters.iqfeed.simulator.market import Market
from adapters.iqfeed.simulator.market import SymbolSpec
from adapters.iqfeed.simulator.market import Trade


_log = logging.getLogger("adapters.iqfeed.simulator")
_NS = 1_000_000_000

PORTS = ("level1", "lookup", "depth", "admin", "bars")


class Feed(Protocol):
    """Something that moves the market until cancelled."""

    def run(self, market: Market) -> Awaitable[None]:
        """Run forever (or until the data ends)."""


@dataclass
class SimulatorConfig:
    """Where and how the simulator listens.

    ``ports`` maps port names (level1, lookup, depth, admin, bars) to port numbers; 0 picks a free
    one (see :attr:`IQFeedSimulator.ports` after :meth:`IQFeedSimulator.start`).
    """

    host: str = "127.0.0.1"
    ports: dict[str, int] = field(default_factory=lambda: dict.fromkeys(PORTS, 0))
    default_protocol: str = "6.2"
    lookup_delay: float = 0.0
    fragment: bool = False
    symbol_limit: int = 500
    login: str = "FAKELOGIN"
    seed: int = 7
    news_interval: float | None = None  # seconds between generated headlines; None: only pushed ones
    protocols: tuple[str, ...] = wire.PROTOCOLS  # an old IQConnect accepts fewer (6.2 came with 6.2.0.x)
    delayed: bool = False  # a login without real-time exchange entitlement: ``S,CUST,delayed,...``


class IQFeedSimulator:
    """The fake IQConnect: start it, point a client at :attr:`ports`, drive it with the hooks."""

    def __init__(self, market: Market, config: SimulatorConfig | None = None, feed: Feed | None = None) -> None:
        self.market = market
        self.config = config or SimulatorConfig()
        self.feed = feed
        self.ports: dict[str, int] = {}
        self.commands: list[tuple[str, str]] = []
        self.stories: list[lookups.NewsStory] = []
        self.sessions: set[Session] = set()
        self._servers: dict[str, asyncio.Server] = {}
        self._tasks: list[asyncio.Task[None]] = []
        self._feed_task: asyncio.Task[None] | None = None
        self._story_ids = 22_290_175_664
        self._news_rng = random.Random(f"{self.config.seed}:news")
        self.muted: set[str] = set()
        market.listeners.append(self)

    # -- lifecycle ------------------------------------------------------------------------------------

    @property
    def lookup_delay(self) -> float:
        """Seconds every lookup reply waits (slow-server tests)."""
        return self.config.lookup_delay

    @lookup_delay.setter
    def lookup_delay(self, value: float) -> None:
        self.config.lookup_delay = value

    @property
    def fragment(self) -> bool:
        """Whether lines are split across several writes."""
        return self.config.fragment

    @fragment.setter
    def fragment(self, value: bool) -> None:
        self.config.fragment = value

    async def start(self) -> dict[str, int]:
        """Listen on every port, start the feed and the clocks; return the bound ports."""
        await self._listen(self.config.ports)
        loop = asyncio.get_running_loop()
        self._tasks.append(loop.create_task(self._tick(), name="iqfeed-sim-tick"))
        self.resume_feed()
        return dict(self.ports)

    def pause_feed(self) -> None:
        """Freeze the market (the feed stops moving it; pushes still work)."""
        if self._feed_task is not None:
            self._feed_task.cancel()
            self._feed_task = None

    def resume_feed(self) -> None:
        """Let the feed move the market again."""
        if self.feed is not None and self._feed_task is None:
            self._feed_task = asyncio.get_running_loop().create_task(self._run_feed(self.feed), name="iqfeed-sim-feed")

    async def _run_feed(self, feed: Feed) -> None:
        try:
            await feed.run(self.market)
        except asyncio.CancelledError:
            raise
        except Exception:
            _log.exception("simulator feed failed")

    async def _listen(self, ports: dict[str, int]) -> None:
        factories: dict[str, Callable[[asyncio.StreamReader, asyncio.StreamWriter], Session]] = {
            "level1": lambda r, w: Level1Session(self, r, w),
            "lookup": lambda r, w: LookupSession(self, r, w),
            "depth": lambda r, w: DepthSession(self, r, w),
            "admin": lambda r, w: AdminSession(self, r, w),
            "bars": lambda r, w: BarsSession(self, r, w),
        }
        for name in PORTS:
            make = factories[name]

            async def accept(
                reader: asyncio.StreamReader,
                writer: asyncio.StreamWriter,
                make: Callable[[asyncio.StreamReader, asyncio.StreamWriter], Session] = make,
            ) -> None:
                session = make(reader, writer)
                self.sessions.add(session)
                try:
                    await session.run()
                finally:
                    self.sessions.discard(session)

            server = await asyncio.start_server(accept, self.config.host, ports.get(name, 0), reuse_address=True)
            self._servers[name] = server
            self.ports[name] = server.sockets[0].getsockname()[1]

    async def stop_listening(self) -> None:
        """IQConnect dies: stop accepting and close every socket (the market keeps moving)."""
        for server in self._servers.values():
            server.close()
        for server in self._servers.values():
            with contextlib.suppress(Exception):
                await server.wait_closed()
        self._servers.clear()
        self.disconnect_all()

    async def resume_listening(self) -> None:
        """IQConnect is back, on the same ports as before."""
        await self._listen(self.ports)

    def disconnect_all(self) -> None:
        """Close every client socket from the server side (FIN)."""
        for session in list(self.sessions):
            session.close()

    async def close(self) -> None:
        """Stop everything: servers, sessions, feed and clocks."""
        self.pause_feed()
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self._tasks.clear()
        await self.stop_listening()
        for session in list(self.sessions):
            await session.wait_closed()

    # -- hooks -----------------------------------------------------------------------------------------

    def _of(self, port: str) -> list["Session"]:
        return [s for s in self.sessions if s.port == port]

    def mute(self, port: str, muted: bool = True) -> None:
        """A hung IQConnect: sessions of ``port`` stop sending anything (sockets stay open) until unmuted."""
        if muted:
            self.muted.add(port)
        else:
            self.muted.discard(port)

    def push_raw(self, port: str, line: str) -> None:
        """Send ``line`` as is (plus CRLF) to every session of ``port``: malformed input for clients."""
        for session in self._of(port):
            session.write(line)

    def push_system(self, port: str, line: str) -> None:
        """Send a system line (``S,SERVER DISCONNECTED``) to every session of ``port``."""
        self.push_raw(port, line)

    def push_news(
        self, headline: str, symbols: tuple[str, ...] = (), source: str = "DTN", text: str = ""
    ) -> lookups.NewsStory:
        """Publish a headline: stored for ``NHL`` and streamed to Level 1 sessions with news on."""
        self._story_ids += 1
        story = lookups.NewsStory(
            str(self._story_ids), source, self.market.clock(), symbols, headline, text or headline
        )
        self.stories.append(story)
        line = f"N,{source},{story.story_id},{':'.join(symbols)},{wire.news_time(story.ts_ns)},{headline}"
        for session in self._of("level1"):
            if isinstance(session, Level1Session) and session.news_on:
                session.write(line)
        return story

    # -- market listener ------------------------------------------------------------------------------

    def on_quote(self, symbol: str, book: Book, depth: list[DepthChange]) -> None:
        """Fan a quote out to Level 1 and depth sessions."""
        for session in list(self.sessions):
            if isinstance(session, Level1Session):
                session.on_quote(symbol, book)
            elif isinstance(session, DepthSession):
                session.on_book(symbol, book)

    def on_trade(self, symbol: str, book: Book, trade: Trade) -> None:
        """Fan a trade out to Level 1 and bar sessions."""
        for session in list(self.sessions):
            if isinstance(session, Level1Session):
                session.on_trade(symbol, book, trade)
            elif isinstance(session, BarsSession):
                session.on_trade(symbol, trade)

    # -- clocks ----------------------------------------------------------------------------------------

    async def _tick(self) -> None:
        """Every 50 ms: complete bars; every second: ``T`` lines, ``S,STATS``, generated news."""
        last_second = self.market.clock() // _NS
        next_news = (
            None if self.config.news_interval is None else self.market.clock() + int(self.config.news_interval * _NS)
        )
        while True:
            await asyncio.sleep(0.05)
            now = self.market.clock()
            for session in list(self.sessions):
                if isinstance(session, BarsSession):
                    session.complete_bars(now)
            if now // _NS != last_second:
                last_second = now // _NS
                for session in list(self.sessions):
                    session.every_second(now)
            if next_news is not None and now >= next_news:
                self._generated_news()
                next_news = now + int((self.config.news_interval or 1.0) * _NS)

    def _generated_news(self) -> None:
        specs = [s for s in self.market.universe.specs.values() if s.kind == "future"]
        if not specs:
            return
        spec = self._news_rng.choice(specs)
        verb = self._news_rng.choice(("rally", "slip", "hold steady", "extend gains", "pare losses"))
        self.push_news(f"{spec.root} futures {verb}, traders eye the close", (f"@{spec.root}", "SPY"))


# -- sessions -------------------------------------------------------------------------------------------


class Session:
    """One client connection: line framing, protocol and client name, output (optionally fragmented)."""

    port = ""

    def __init__(self, server: IQFeedSimulator, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.server = server
        self.market = server.market
        self.reader = reader
        self.writer = writer
        self.protocol = server.config.default_protocol
        self.client_name = ""
        self._closed = asyncio.Event()
        self._out: asyncio.Queue[bytes] | None = None
        self._writer_task: asyncio.Task[None] | None = None
        self._rng = random.Random(f"{server.config.seed}:{id(self)}")

    async def run(self) -> None:
        """Greet, then read commands until the client or the server closes the socket."""
        try:
            await self.greet()
            buffer = b""
            while not self._closed.is_set():
                chunk = await self.reader.read(1 << 16)
                if not chunk:
                    break
                buffer += chunk
                *lines, buffer = buffer.split(b"\n")
                for raw in lines:
                    line = raw.decode("latin-1").replace("\r", "")
                    if not line.strip():
                        continue
                    self.server.commands.append((self.port, line))
                    await self.command(line)
                    await self.drain()
        except (ConnectionError, OSError):
            pass
        finally:
            self.close()
            await self.wait_closed()

    async def greet(self) -> None:
        """Unsolicited lines on connect."""

    async def command(self, line: str) -> None:
        """Handle one client line."""
        if not self.common(line):
            self.write("E,!SYNTAX_ERROR!,")

    def common(self, line: str) -> bool:
        """``S,SET PROTOCOL`` and ``S,SET CLIENT NAME`` (every port); True when handled."""
        if line.startswith("S,SET PROTOCOL,"):
            version = line.split(",", 2)[2].strip()
            if version in self.server.config.protocols:
                self.protocol = version
                self.write(f"S,CURRENT PROTOCOL,{version},")
                self.after_protocol()
            else:
                self.write(f"E,{version} is not a valid protocol.,")
            return True
        if line.startswith("S,SET CLIENT NAME,"):
            self.client_name = line.split(",", 2)[2]
            return True
        return False

    def after_protocol(self) -> None:
        """Hook after a protocol change."""

    def every_second(self, now_ns: int) -> None:
        """Hook on each wall-clock second."""

    # -- output -------------------------------------------------------------------------------------------

    def write(self, line: str) -> None:
        """Queue one line (CRLF appended); fragmented into several writes in fragment mode."""
        if self._closed.is_set() or self.port in self.server.muted:
            return
        data = line.encode("latin-1", errors="replace") + b"\r\n"
        if not self.server.config.fragment:
            try:
                self.writer.write(data)
            except (ConnectionError, RuntimeError, OSError):
                self.close()
            return
        if self._out is None:
            self._out = asyncio.Queue()
            self._writer_task = asyncio.get_running_loop().create_task(self._write_fragments())
        self._out.put_nowait(data)

    def write_many(self, lines: list[str]) -> None:
        """Several lines in one write (big lookup replies); line by line in fragment mode."""
        if not lines:
            return
        if self.server.config.fragment or self._closed.is_set() or self.port in self.server.muted:
            for line in lines:
                self.write(line)
            return
        try:
            self.writer.write(("\r\n".join(lines) + "\r\n").encode("latin-1", errors="replace"))
        except (ConnectionError, RuntimeError, OSError):
            self.close()

    async def _write_fragments(self) -> None:
        assert self._out is not None
        while True:
            data = await self._out.get()
            cuts = sorted(self._rng.sample(range(1, len(data)), min(3, len(data) - 1))) if len(data) > 1 else []
            start = 0
            for cut in [*cuts, len(data)]:
                try:
                    self.writer.write(data[start:cut])
                    await self.writer.drain()
                except (ConnectionError, RuntimeError, OSError):
                    self.close()
                    return
                start = cut
                await asyncio.sleep(0.001)

    async def drain(self) -> None:
        """Wait for the socket buffer (keeps big replies from piling up in memory)."""
        with contextlib.suppress(ConnectionError, RuntimeError, OSError):
            await self.writer.drain()

    def close(self) -> None:
        """Close the socket from the server side."""
        if self._closed.is_set():
            return
        self._closed.set()
        if self._writer_task is not None:
            self._writer_task.cancel()
        with contextlib.suppress(Exception):
            self.writer.close()

    async def wait_closed(self) -> None:
        """Wait until the socket is closed."""
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self.writer.wait_closed(), 1.0)


# -- Level 1 --------------------------------------------------------------------------------------------


class Level1Session(Session):
    """Port 5009: watches, dynamic field sets, fundamentals, news, timestamps, statistics."""

    port = "level1"

    def __init__(self, server: IQFeedSimulator, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        super().__init__(server, reader, writer)
        self.fields: tuple[str, ...] = wire.DEFAULT_UPDATE_FIELDS
        self.watches: dict[str, str] = {}  # symbol as asked → "w" | "t"
        self.timestamps = True
        self.news_on = False

    async def greet(self) -> None:
        """``S,KEY``, ``S,SERVER CONNECTED``, ``S,IP``, ``S,CUST``."""
        limit = self.server.config.symbol_limit
        self.write("S,KEY,FAKE0000,")
        self.write("S,SERVER CONNECTED")
        self.write("S,IP,127.0.0.1 60004,")
        exchanges = "CME CBOT NYMEX COMEX CFE NASDAQ NYSE INDEX DTNNEWS"
        service = "delayed" if self.server.config.delayed else "real_time"
        self.write(f"S,CUST,{service},127.0.0.1,60002,FAKETOKEN,6.2.0.25,0,{exchanges},,{limit},QT_API,,")

    def after_protocol(self) -> None:
        """Announce the current field set (clients expect one right after the protocol reply)."""
        self.write("S,CURRENT UPDATE FIELDNAMES," + ",".join(self.fields))

    def _all_fields(self) -> tuple[str, ...]:
        return wire.UPDATE_FIELDS_60 if self.protocol in ("5.0", "5.1", "5.2", "6.0") else wire.ALL_UPDATE_FIELDS

    async def command(self, line: str) -> None:
        """Dispatch one Level 1 command."""
        if self.common(line):
            return
        if line.startswith("S,"):
            self._system(line)
            return
        head, rest = line[:1], line[1:].strip()
        if head in ("w", "t") and rest and "," not in rest:
            self._watch(rest, head)
        elif head == "r" and rest and "," not in rest:
            self.watches.pop(rest, None)
        elif head == "f" and rest and "," not in rest:
            if rest in self.watches:
                self._snapshot(rest)
        elif line == "T":
            self.write(wire.timestamp_line(self.market.clock()))
        else:
            self.write("E,!SYNTAX_ERROR!,")

    def _system(self, line: str) -> None:
        parts = line.split(",")
        kind = parts[1] if len(parts) > 1 else ""
        if kind == "SELECT UPDATE FIELDS":
            names = [p.strip() for p in parts[2:] if p.strip()]
            valid = set(self._all_fields())
            self.fields = ("Symbol", *(n for n in names if n in valid and n != "Symbol"))
            self.write("S,CURRENT UPDATE FIELDNAMES," + ",".join(self.fields))
        elif kind == "REQUEST CURRENT UPDATE FIELDNAMES":
            self.write("S,CURRENT UPDATE FIELDNAMES," + ",".join(self.fields))
        elif kind == "REQUEST ALL UPDATE FIELDNAMES":
            self.write("S,UPDATE FIELDNAMES," + ",".join(self._all_fields()))
        elif kind == "REQUEST FUNDAMENTAL FIELDNAMES":
            self.write("S,FUNDAMENTAL FIELDNAMES," + ",".join(wire.FUNDAMENTAL_FIELDS))
        elif kind == "TIMESTAMPSON":
            self.timestamps = True
        elif kind == "TIMESTAMPSOFF":
            self.timestamps = False
        elif kind == "NEWSON":
            self.news_on = True
        elif kind == "NEWSOFF":
            self.news_on = False
        elif kind == "REQUEST STATS":
            self.write(_stats_line(self.server, self.market.clock(), len(self.watches)))
        elif kind == "REQUEST WATCHES":
            self.write("S,WATCHES," + "".join(f"{s}," for s in self.watches))
        elif kind == "UNWATCH ALL":
            self.watches.clear()
        elif kind in ("CONNECT", "DISCONNECT"):
            self.write("S,SERVER CONNECTED" if kind == "CONNECT" else "S,SERVER DISCONNECTED")
        elif kind in ("REGON", "REGOFF", "SET LOG LEVELS"):
            return
        else:
            self.write("E,!SYNTAX_ERROR!,")

    def _watch(self, symbol: str, mode: str) -> None:
        canonical = self.market.universe.resolve(symbol)
        if canonical is None:
            self.write(f"n,{symbol}")
            return
        if symbol not in self.watches and len(self.watches) >= self.server.config.symbol_limit:
            self.write(f"S,SYMBOL LIMIT REACHED,{symbol},")
            return
        self.watches[symbol] = mode
        self._snapshot(symbol)

    def _snapshot(self, symbol: str) -> None:
        canonical = self.market.universe.resolve(symbol)
        if canonical is None:
            return
        book = self.market.book(canonical)
        self.write(_fundamental_line(symbol, self.market.universe.specs[canonical]))
        contents = ("C" if book.last is not None else "") + "ba" + ("v" if book.total_volume else "")
        self.write(self._update("P", symbol, book, contents))

    def on_quote(self, symbol: str, book: Book) -> None:
        """A ``Q`` (``b``/``a``) to every trades-and-quotes watcher of the symbol or its aliases."""
        if not self.watches:
            return
        for name in self.market.universe.names_for(symbol):
            if self.watches.get(name) == "w":
                self.write(self._update("Q", name, book, "ba"))

    def on_trade(self, symbol: str, book: Book, trade: Trade) -> None:
        """A ``Q`` (``C``, ``v``) to every watcher of the symbol or its aliases."""
        if not self.watches:
            return
        for name in self.market.universe.names_for(symbol):
            if name in self.watches:
                self.write(self._update("Q", name, book, "Cv"))

    def every_second(self, now_ns: int) -> None:
        """The 1-second ``T`` line when timestamps are on."""
        if self.timestamps:
            self.write(wire.timestamp_line(now_ns))

    def _update(self, kind: str, symbol: str, book: Book, contents: str) -> str:
        values = [kind, symbol]
        for name in self.fields[1:]:
            values.append(_field_value(name, book, contents))
        return ",".join(values) + ","


def _field_value(name: str, book: Book, contents: str) -> str:
    last = book.last
    spec = book.spec
    if name in ("Most Recent Trade", "Last"):
        return book.px(last.price) if last else ""
    if name in ("Most Recent Trade Size", "Last Size"):
        return str(last.size) if last else ""
    if name in ("Most Recent Trade Time", "Last Time"):
        return wire.l1_time(last.ts_ns) if last else ""
    if name in ("Most Recent Trade Date", "Last Date"):
        return wire.l1_date(last.ts_ns) if last else ""
    if name in ("Most Recent Trade Market Center", "Last Market Center", "Bid Market Center", "Ask Market Center"):
        return str(spec.listed_market)
    if name == "Most Recent Trade Conditions":
        return "01" if last else ""
    if name == "Most Recent Trade Aggressor":
        return str(last.aggressor) if last else ""
    if name == "Most Recent Trade Day Code":
        return str(wire.to_eastern(last.ts_ns).day) if last else ""
    simple: dict[str, Callable[[], str]] = {
        "Bid": lambda: book.px(book.bid),
        "Ask": lambda: book.px(book.ask),
        "Bid Size": lambda: str(book.bid_size),
        "Ask Size": lambda: str(book.ask_size),
        "Bid Time": lambda: wire.l1_time(book.bid_time) if book.bid_time else "",
        "Ask Time": lambda: wire.l1_time(book.ask_time) if book.ask_time else "",
        "Total Volume": lambda: str(book.total_volume),
        "TickID": lambda: str(book.tick_id) if book.tick_id else "",
        "Message Contents": lambda: contents,
        "Open": lambda: book.px(book.open) if book.open is not None else "",
        "High": lambda: book.px(book.high) if book.high is not None else "",
        "Low": lambda: book.px(book.low) if book.low is not None else "",
        "Number of Trades Today": lambda: str(book.trades_today),
        "Decimal Precision": lambda: str(spec.precision),
        "Delay": lambda: "0",
        "Market Open": lambda: "1" if spec.kind == "future" else "",
        "Exchange ID": lambda: f"{spec.listed_market:X}",
        "Spread": lambda: book.px(book.ask - book.bid),
    }
    getter = simple.get(name)
    return getter() if getter is not None else ""


def _fundamental_line(symbol: str, spec: SymbolSpec) -> str:
    values = dict.fromkeys(wire.FUNDAMENTAL_FIELDS, "")
    values.update(
        {
            "Symbol": symbol,
            "Exchange ID": str(spec.listed_market),
            "Company Name": spec.description,
            "Precision": str(spec.precision),
            "Security Type": str(spec.security_type),
            "Listed Market": str(spec.listed_market),
            "Expiration Date": spec.expiration.strftime("%m/%d/%Y") if spec.expiration else "",
            "Exchange Root": spec.root if spec.kind == "future" else "",
            "Session Open Time": "18:00:00" if spec.kind == "future" else "09:30:00",
            "Session Close Time": "17:00:00" if spec.kind == "future" else "16:00:00",
            "Base Currency": "USD",
            "Contract Months": spec.contract_months,
            "Minimum Tick Size": f"{spec.tick:g}",
        },
    )
    return "F," + ",".join(values[n] for n in wire.FUNDAMENTAL_FIELDS) + ","


def _stats_line(server: IQFeedSimulator, now_ns: int, watched: int) -> str:
    when = wire.stats_time(now_ns)
    clients = len(server.sessions)
    limit = server.config.symbol_limit
    login = server.config.login
    return (
        f"S,STATS,127.0.0.1,60003,{limit},{watched},{clients},0,0,0,{when},{when},Connected,6.2.0.25,{login},"
        "1.00,0.10,0.10,1.00,0.10,0.10,"
    )


# -- lookups ------------------------------------------------------------------------------------------------


class LookupSession(Session):
    """Port 9100: history, chains, news and symbol lookups, one request at a time, in order."""

    port = "lookup"

    async def command(self, line: str) -> None:
        """Answer one request (after ``lookup_delay``); errors end with the terminator too."""
        if self.common(line):
            return
        try:
            request = lookups.parse_request(line, self.protocol)
        except lookups.LookupFailure as failure:
            rid = getattr(failure, "request_id", "")
            if self.server.config.lookup_delay:
                await asyncio.sleep(self.server.config.lookup_delay)
            self._error(rid, failure.text)
            return
        if self.server.config.lookup_delay:
            await asyncio.sleep(self.server.config.lookup_delay)
        prefix = f"{request.request_id}," if request.request_id else ""
        data_id = _DATA_IDS.get(request.command, "LH")
        if self.protocol == "6.2":
            prefix += f"{data_id},"
        try:
            rows = self._rows(request)
            first = next(rows, None)
        except lookups.LookupFailure as failure:
            self._error(request.request_id, failure.text)
            return
        if first is not None:
            chunk = [prefix + first]
            for row in rows:
                chunk.append(prefix + row)
                if len(chunk) == 2000:
                    self.write_many(chunk)
                    chunk = []
                    await self.drain()
            self.write_many(chunk)
        self.write((f"{request.request_id}," if request.request_id else "") + "!ENDMSG!,")

    def _rows(self, request: lookups.Request) -> Iterator[str]:
        cmd = request.command
        if cmd in ("HTX", "HTD", "HTT"):
            return lookups.ticks(self.market, request)
        if cmd in ("HIX", "HID", "HIT"):
            return lookups.intervals(self.market, request)
        if cmd in ("HDX", "HDT", "HWX", "HMX"):
            return lookups.dailies(self.market, request)
        if cmd in ("CFU", "CFS"):
            return lookups.futures_chain(self.market, request)
        if cmd == "CFO":
            return lookups.options_chain(self.market, request)
        if cmd == "NHL":
            return lookups.headlines(self.server.stories, request)
        if cmd == "NSY":
            return lookups.story(self.server.stories, request)
        return lookups.symbol_search(self.market, request)

    def _error(self, request_id: str, text: str) -> None:
        prefix = f"{request_id}," if request_id else ""
        self.write(f"{prefix}E,{text},")
        self.write(f"{prefix}!ENDMSG!,")


_DATA_IDS = {"CFU": "LC", "CFS": "LC", "CFO": "LC", "NHL": "LN", "NSY": "LN", "SBF": "LS"}


# -- depth --------------------------------------------------------------------------------------------------


@dataclass
class _DepthWatch:
    kind: str  # "WPL" | "WOR" | "w" (protocol <= 6.1)
    levels: int
    visible: dict[str, dict[int, tuple[int, int]]] = field(default_factory=lambda: {"B": {}, "A": {}})


class DepthSession(Session):
    """Port 9200: ``WPL`` price levels (7/8/9) and ``WOR`` orders (6/3/4/5); ``w`` (Z/2) before 6.2."""

    port = "depth"

    def __init__(self, server: IQFeedSimulator, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        super().__init__(server, reader, writer)
        self.watches: dict[str, _DepthWatch] = {}
        self.timestamps = True

    async def greet(self) -> None:
        """``S,SERVER CONNECTED`` (no trailing comma)."""
        self.write("S,SERVER CONNECTED")

    async def command(self, line: str) -> None:
        """Dispatch one depth command."""
        if self.common(line):
            return
        parts = [p.strip() for p in line.split(",")]
        cmd = parts[0]
        if cmd in ("WPL", "WOR") and len(parts) >= 2 and parts[1] and self.protocol == "6.2":
            levels = self.market.depth_levels
            if cmd == "WPL" and len(parts) > 2 and parts[2]:
                if not parts[2].isdigit():
                    self.write("E,!SYNTAX_ERROR!,")
                    return
                levels = max(1, min(int(parts[2]), self.market.depth_levels))
            self._watch(parts[1], cmd, levels)
        elif cmd in ("RPL", "ROR") and len(parts) >= 2 and self.protocol == "6.2":
            self.watches.pop(parts[1], None)
        elif line.startswith("w") and self.protocol != "6.2" and "," not in line:
            self._watch(line[1:].strip(), "w", self.market.depth_levels)
        elif line.startswith("r") and self.protocol != "6.2" and "," not in line:
            self.watches.pop(line[1:].strip(), None)
        elif line == "T":
            self.write(wire.timestamp_line(self.market.clock()))
        elif line in ("S,TIMESTAMPSON", "S,TIMESTAMPSOFF"):
            self.timestamps = line.endswith("ON")
        elif line in ("S,CONNECT", "S,DISCONNECT"):
            return
        else:
            self.write("E,!SYNTAX_ERROR!,")

    def _watch(self, symbol: str, kind: str, levels: int) -> None:
        canonical = self.market.universe.resolve(symbol)
        if canonical is None:
            self.write(f"n,{symbol}")
            return
        book = self.market.book(canonical)
        if not book.spec.has_depth:
            self.write(f"q,{symbol},")
            return
        watch = _DepthWatch(kind, levels)
        self.watches[symbol] = watch
        self._emit(symbol, book, watch, snapshot=True)

    def on_book(self, symbol: str, book: Book) -> None:
        """Send what changed in the visible part of the ladder to every watcher of the symbol."""
        if not self.watches:
            return
        for name in self.market.universe.names_for(symbol):
            watch = self.watches.get(name)
            if watch is not None:
                self._emit(name, book, watch, snapshot=False)

    def every_second(self, now_ns: int) -> None:
        """``T`` lines, as on Level 1."""
        if self.timestamps:
            self.write(wire.timestamp_line(now_ns))

    def _emit(self, symbol: str, book: Book, watch: _DepthWatch, snapshot: bool) -> None:
        now = self.market.clock()
        time_s, date_s = wire.depth_time_date(now)
        p = book.spec.precision
        if watch.kind == "w":
            self._emit_market_makers(symbol, book, watch, snapshot, time_s)
            return
        for side in ("B", "A"):
            ladder = book.levels[side]
            prices = sorted(ladder, reverse=side == "B")[: watch.levels]
            new = {px: (ladder[px].size, ladder[px].order_id) for px in prices}
            old = watch.visible[side]
            for px in prices:
                size, order_id = new[px]
                before = old.get(px)
                if before == (size, order_id) and not snapshot:
                    continue
                if watch.kind == "WPL":
                    kind = "7" if snapshot else "8"
                    self.write(f"{kind},{symbol},{side},{book.px(px)},{size},1,{p},{time_s},{date_s},")
                else:
                    if snapshot:
                        kind = "6"
                    elif before is None or before[1] != order_id:
                        kind = "3"
                    else:
                        kind = "4"
                    self.write(f"{kind},{symbol},{order_id},,{side},{book.px(px)},{size},1,{p},{time_s},{date_s},")
            for px, (_, order_id) in old.items():
                if px in new and new[px][1] == order_id:
                    continue
                if px in new and watch.kind == "WPL":
                    continue
                if watch.kind == "WPL":
                    self.write(f"9,{symbol},{side},{book.px(px)},{time_s},{date_s},")
                else:
                    self.write(f"5,{symbol},{order_id},,{side},{time_s},{date_s},")
            watch.visible[side] = new

    def _emit_market_makers(self, symbol: str, book: Book, watch: _DepthWatch, snapshot: bool, time_s: str) -> None:
        """Protocol <= 6.1 depth: level k is pseudo market maker ``MDkk`` with its bid and ask."""
        date_s = wire.depth_time_date(self.market.clock())[1]
        bids = sorted(book.levels["B"], reverse=True)[: watch.levels]
        asks = sorted(book.levels["A"])[: watch.levels]
        rows = list(zip(bids, asks, strict=False))
        for k, (bid, ask) in enumerate(rows):
            bsz, asz = book.levels["B"][bid].size, book.levels["A"][ask].size
            key = f"MD{k + 1:02d}"
            state = (bid, bsz), (ask, asz)
            old_b, old_a = watch.visible["B"].get(k), watch.visible["A"].get(k)
            if not snapshot and (old_b, old_a) == state:
                continue
            watch.visible["B"][k], watch.visible["A"][k] = state
            last = "T" if k == len(rows) - 1 else "F"
            kind = "Z" if snapshot else "2"
            self.write(
                f"{kind},{symbol},{key},{book.px(bid)},{book.px(ask)},{bsz},{asz},{time_s},{date_s},52,{time_s},T,T,{last},"
            )


# -- bars (9400) -----------------------------------------------------------------------------------------


@dataclass
class _BarWatch:
    symbol: str  # as requested
    canonical: str
    interval_ns: int
    request_id: str
    update_interval_ns: int
    current_start: int
    last_update_ns: int = 0


class BarsSession(Session):
    """Port 9400: ``BW`` watches backfill history as ``BH``, update the forming bar (``BU``), close it (``BC``).

    Bars are labelled with their start time [fake: the sources do not pin it] and, like the
    history port, aggregate the market's recorded trades, so a backfill after a reconnect holds
    exactly the bars the live stream would have sent. Interval types other than seconds (``s``)
    are a syntax error here.
    """

    port = "bars"

    def __init__(self, server: IQFeedSimulator, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        super().__init__(server, reader, writer)
        self.watches: dict[tuple[str, str], _BarWatch] = {}

    async def greet(self) -> None:
        """``S,SERVER CONNECTED``."""
        self.write("S,SERVER CONNECTED")

    async def command(self, line: str) -> None:
        """Dispatch one bar command."""
        if self.common(line):
            return
        parts = line.split(",")
        cmd = parts[0].strip()
        if cmd == "BW":
            self._watch(parts[1:])
        elif cmd == "BR" and len(parts) >= 2:
            symbol = parts[1].strip()
            rid = parts[2].strip() if len(parts) > 2 else ""
            for key in [k for k in self.watches if k[0] == symbol and (not rid or k[1] == rid)]:
                self.watches.pop(key)
        elif line.strip() == "S,REQUEST WATCHES":
            items = "".join(f"{w.symbol},{w.interval_ns // _NS},{w.request_id}," for w in self.watches.values())
            self.write("S,WATCHES," + items)
        elif line.strip() == "S,UNWATCH ALL":
            self.watches.clear()
        elif line.strip() in ("S,CONNECT", "S,DISCONNECT"):
            return
        else:
            self.write("E,!SYNTAX_ERROR!,")

    def _watch(self, args: list[str]) -> None:
        args = [a.strip() for a in args] + [""] * max(0, 11 - len(args))
        if len(args) > 11:
            self.write("E,Invalid number of parameters.,")
            return
        symbol, interval_txt, begin_txt, max_days, max_points = args[0], args[1], args[2], args[3], args[4]
        rid, interval_type, update_txt = args[7], args[8], args[10]
        if not symbol or not interval_txt.isdigit() or int(interval_txt) <= 0 or interval_type not in ("", "s"):
            self.write("E,!SYNTAX_ERROR!,")
            return
        if (
            (max_points and not max_points.isdigit())
            or (max_days and not max_days.isdigit())
            or (update_txt and not update_txt.isdigit())
        ):
            self.write("E,!SYNTAX_ERROR!,")
            return
        canonical = self.market.universe.resolve(symbol)
        if canonical is None:
            self.write(f"n,{symbol}")
            return
        try:
            begin = wire.parse_request_datetime(begin_txt)
        except ValueError:
            self.write("E,!SYNTAX_ERROR!,")
            return
        key = (symbol, rid)
        if key in self.watches:
            self.write(f"S,REPLACED PREVIOUS WATCH,{symbol},")
        interval_ns = int(interval_txt) * _NS
        now = self.market.clock()
        watch = _BarWatch(symbol, canonical, interval_ns, rid, int(update_txt or 0) * _NS, now - now % interval_ns)
        self.watches[key] = watch
        self._backfill(watch, begin, int(max_days) if max_days else None, int(max_points) if max_points else None, now)

    def _backfill(
        self, watch: _BarWatch, begin: int | None, max_days: int | None, max_points: int | None, now: int
    ) -> None:
        if begin is None and max_days is None and max_points is None:
            return
        start = begin
        if max_days is not None:
            start = max(start or 0, now - max_days * 86_400 * _NS)
        if start is not None:
            start -= start % watch.interval_ns  # the bar containing the begin time
        bars = lookups.interval_bars(self.market, watch.canonical, watch.interval_ns // _NS, start, now)
        complete = bars.start + watch.interval_ns <= now
        bars = bars.select(complete)
        if max_points is not None and max_points < len(bars):
            bars = bars.select(slice(len(bars) - max_points, None))
        for i in range(len(bars)):
            self._write_bar("BH", watch, bars, i)

    def _write_bar(self, kind: str, watch: _BarWatch, bars: lookups.BarsArrays, i: int) -> None:
        book = self.market.book(watch.canonical)
        prefix = f"{watch.request_id}," if watch.request_id else ""
        self.write(
            f"{prefix}{kind},{watch.symbol},{wire.history_bar_time(int(bars.start[i]))},{book.px(int(bars.open[i]))},"
            f"{book.px(int(bars.high[i]))},{book.px(int(bars.low[i]))},{book.px(int(bars.close[i]))},"
            f"{bars.total_volume[i]},{bars.volume[i]},{bars.trades[i]},"
        )

    def on_trade(self, symbol: str, trade: Trade) -> None:
        """Update the forming bar of every watch of the symbol (``BU``, throttled by UpdateInterval)."""
        for watch in self.watches.values():
            if watch.canonical != symbol:
                continue
            if trade.ts_ns >= watch.current_start + watch.interval_ns:
                self.complete_bars(trade.ts_ns)
            if watch.update_interval_ns and trade.ts_ns - watch.last_update_ns < watch.update_interval_ns:
                continue
            watch.last_update_ns = trade.ts_ns
            bars = lookups.interval_bars(
                self.market, symbol, watch.interval_ns // _NS, watch.current_start, trade.ts_ns
            )
            if len(bars):
                self._write_bar("BU", watch, bars, len(bars) - 1)

    def complete_bars(self, now_ns: int) -> None:
        """Send ``BC`` for every bar whose interval has ended (intervals without trades send nothing)."""
        for watch in self.watches.values():
            if now_ns < watch.current_start + watch.interval_ns:
                continue
            completed_end = now_ns - now_ns % watch.interval_ns
            bars = lookups.interval_bars(
                self.market, watch.canonical, watch.interval_ns // _NS, watch.current_start, completed_end - 1
            )
            for i in range(len(bars)):
                self._write_bar("BC", watch, bars, i)
            watch.current_start = completed_end


# -- admin -----------------------------------------------------------------------------------------------------


class AdminSession(Session):
    """Port 9300: statistics once a second, registration and login settings."""

    port = "admin"

    def __init__(self, server: IQFeedSimulator, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        super().__init__(server, reader, writer)
        self.client_stats = False

    async def greet(self) -> None:
        """As a real IQConnect 6.2 greets (the current protocol is announced unasked)."""
        self.write("S,AUTOCONNECT ON,")
        self.write(f"S,CURRENT PROTOCOL,{self.protocol},")
        self.write(f"S,CURRENT LOGINID,{self.server.config.login},")
        self.write("S,CURRENT PASSWORD,(*****),")
        self.write(_stats_line(self.server, self.market.clock(), 0))

    async def command(self, line: str) -> None:
        """Answer one admin command."""
        if self.common(line):
            return
        parts = line.split(",")
        kind = parts[1].strip() if len(parts) > 1 and parts[0] == "S" else ""
        value = parts[2].strip() if len(parts) > 2 else ""
        if kind == "REGISTER CLIENT APP":
            self.write("S,REGISTER CLIENT APP COMPLETED,")
        elif kind == "REMOVE CLIENT APP":
            self.write("S,REMOVE CLIENT APP COMPLETED,")
        elif kind == "SET LOGINID":
            self.write(f"S,CURRENT LOGINID,{value},")
        elif kind == "SET PASSWORD":
            self.write("S,CURRENT PASSWORD,(*****),")
        elif kind == "SET AUTOCONNECT":
            self.write(f"S,AUTOCONNECT {value.upper()},")
        elif kind == "SET SAVE LOGIN INFO":
            self.write("S,LOGIN INFO SAVED," if value.lower() == "on" else "S,LOGIN INFO NOT SAVED,")
        elif kind in ("CLIENTSTATS ON", "CLIENTSTATS OFF"):
            self.client_stats = kind.endswith("ON")
        elif kind in ("CONNECT", "DISCONNECT"):
            self.write("S,SERVER CONNECTED" if kind == "CONNECT" else "S,SERVER DISCONNECTED")
        else:
            self.write("E,!SYNTAX_ERROR!,")

    def every_second(self, now_ns: int) -> None:
        """``S,STATS`` once a second."""
        watched = sum(len(s.watches) for s in self.server.sessions if isinstance(s, Level1Session))
        self.write(_stats_line(self.server, now_ns, watched))


def eastern_now(clock: Callable[[], int]) -> dt.datetime:
    """The simulator's clock as an Eastern datetime (for logs and the CLI)."""
    return wire.to_eastern(clock())
