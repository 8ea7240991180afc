"""The RADIUS authentication server: asyncio UDP on IPv4 and IPv6, decisions in threads.

The event loop only receives and sends datagrams; each request is decided in a small thread
pool, because the verification engine and the database driver are synchronous (the same code
the REST API runs). The pipeline of one datagram (:meth:`RadiusServer.handle`):

1. the sender must be a registered client (else dropped: ``unknown_client``);
2. a retransmission gets the cached answer (:mod:`.cache`), never a second verification;
3. :func:`.packets.parse`: layout, code, Message-Authenticator, Proxy-State, the PAP secret;
4. :class:`.modes.Decider`: the verification engine, the audit row;
5. the reply, Message-Authenticator first (:func:`.packets.encode_reply`).

Anything dropped is counted in ``keyfob_radius_dropped_total`` by reason and logged at most
once a minute per reason (a flood of forged packets must not become a flood of log lines).
Nothing from a packet's attributes is ever logged: only the sender's address and the reason.

Several processes (or hosts) may serve one PostgreSQL database: the replay rule is the
database's compare-and-set and the challenge State lives in the database, so any of them may
answer any request.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import threading
import time
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, cast

from prometheus_client import CollectorRegistry

from keyfob.server.context import ServerContext
from keyfob.server.metrics import MetricSet
from keyfob.server.radius.cache import RetransmissionCache
from keyfob.server.radius.clients import ClientTable
from keyfob.server.radius.modes import Decider
from keyfob.server.radius.packets import Code, Drop, DropReason, encode_reply, parse
from keyfob.server.web.ratelimit import LoginLimiter

log = logging.getLogger("keyfob.radius")

DEFAULT_PORT = 1812
# Threads deciding requests: SQLite has one writer (more threads only fight over the GIL and
# its lock: 4 measured best); PostgreSQL waits on round trips, so more help (8).
# Unlike the REST API on SQLite (api/blocking.py), a decision is not made inline on the event
# loop: under radclient (bench/bench_radius.py) inline, 1 and 2 threads cost as much CPU per
# answer as 4 or more (about 0.8 ms, 40 µs of it the datagram's parsing and signing, the rest
# the validation) and answered fewer pairs a second, since the loop cannot take the next
# datagram while it decides (measured on a shared machine, where more threads also get more
# of the cores). Threads also keep a blocking directory (LDAP) lookup off the loop.
THREADS = {"sqlite": 4, "postgresql": 8}
MAX_IN_FLIGHT = 256  # requests waiting for a thread; past this, datagrams are dropped
LOG_EVERY = 60.0
_ANSWERS = {
    Code.ACCESS_ACCEPT: "accept",
    Code.ACCESS_REJECT: "reject",
    Code.ACCESS_CHALLENGE: "challenge",
}


class RadiusMetrics(MetricSet):
    """The RADIUS counters, in the REST app's registry when both run in one process."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        super().__init__(registry)
        self.dropped = self.counter(
            "keyfob_radius_dropped",
            "RADIUS datagrams dropped without an answer, by reason",
            "reason",
        )
        self.answers = self.counter(
            "keyfob_radius_answers",
            "RADIUS answers sent, by kind (retransmissions not included)",
            "answer",
        )
        self.retransmissions = self.counter(
            "keyfob_radius_retransmissions", "Retransmitted requests answered from the cache"
        )
        self.seconds = self.latency("keyfob_radius_seconds", "Time to decide a RADIUS request")


@dataclass
class DropLog:
    """One warning per reason per ``every`` seconds, with how many were dropped since."""

    every: float = LOG_EVERY
    _last: dict[str, float] = field(default_factory=dict)
    _count: dict[str, int] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def note(self, reason: DropReason, sender: str) -> None:
        now = time.monotonic()
        with self._lock:
            self._count[reason] = self._count.get(reason, 0) + 1
            if now - self._last.get(reason, -self.every) < self.every:
                return
            count, self._count[reason], self._last[reason] = self._count[reason], 0, now
        log.warning(
            "RADIUS: dropped %d datagram(s) without an answer (%s); latest from %s",
            count,
            reason.value,
            sender,
        )


class RadiusServer:
    """Everything one process needs to answer RADIUS; :meth:`handle` is the whole pipeline."""

    def __init__(self, ctx: ServerContext, registry: CollectorRegistry | None = None) -> None:
        self.ctx = ctx
        self.clients = ClientTable(ctx)
        self.cache = RetransmissionCache()
        # One VPN's users may all arrive through one NAS: the per-address bound is wide.
        self.decider = Decider(ctx, LoginLimiter(ctx, per_user=5, per_address=100))
        self.metrics = RadiusMetrics(registry)
        self.drop_log = DropLog()
        threads = THREADS.get(ctx.engine.dialect.name, 8)
        self.executor = ThreadPoolExecutor(threads, thread_name_prefix="keyfob-radius")
        self.in_flight = 0

    def warn_relaxed(self) -> None:
        """At start: name every client allowed to leave out the Message-Authenticator."""
        for known in self.clients.refresh():
            if not known.record.require_message_authenticator:
                log.warning(
                    "RADIUS client %r (%s) may send Access-Requests without "
                    "Message-Authenticator: it is open to Blast-RADIUS (CVE-2024-3596); "
                    "update it and run: keyfob admin radius-client set %s "
                    "--require-message-authenticator",
                    known.name,
                    known.record.address,
                    known.name,
                )

    def handle(self, data: bytes, host: str) -> bytes | None:
        """The reply to one datagram, or None (dropped, counted, logged at a bounded rate)."""
        try:
            return self._handle(data, host)
        except Drop as drop:
            self.dropped(drop.reason, host)
        except Exception:
            # Never a value from the packet in the log: only that something broke, and where.
            log.exception("RADIUS: error while answering a request from %s", host)
            self.dropped(DropReason.INTERNAL_ERROR, host)
        return None

    def dropped(self, reason: DropReason, host: str) -> None:
        self.metrics.dropped.labels(reason.value).inc()
        self.drop_log.note(reason, host)

    def _handle(self, data: bytes, host: str) -> bytes | None:
        client = self.clients.match(host)
        if client is None:
            raise Drop(DropReason.UNKNOWN_CLIENT)
        if len(data) < 20:
            raise Drop(DropReason.MALFORMED)
        key = self.cache.key(client.id, host, data)
        cached = self.cache.begin(key, data)
        if cached is not None:
            self.metrics.retransmissions.inc()
            return cached
        reply = None
        try:
            started = time.perf_counter()
            request = parse(
                data,
                client.secret,
                require_message_authenticator=client.record.require_message_authenticator,
            )
            answer = self.decider.decide(client, request, host)
            reply = encode_reply(request, answer)
            self.metrics.seconds.observe(time.perf_counter() - started)
            self.metrics.answers.labels(_ANSWERS[answer.code]).inc()
        finally:
            self.cache.finish(key, reply)
        return reply

    def close(self) -> None:
        self.executor.shutdown(wait=True, cancel_futures=True)


class _Protocol(asyncio.DatagramProtocol):
    def __init__(self, server: RadiusServer) -> None:
        self.server = server
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: tuple[Any, ...]) -> None:
        host = str(addr[0])
        if self.server.in_flight >= MAX_IN_FLIGHT:
            self.server.dropped(DropReason.OVERLOAD, host)
            return
        self.server.in_flight += 1
        loop = asyncio.get_running_loop()
        future = loop.run_in_executor(self.server.executor, self.server.handle, data, host)
        future.add_done_callback(lambda done: self._send(done, addr))

    def _send(self, done: asyncio.Future[bytes | None], addr: tuple[Any, ...]) -> None:
        self.server.in_flight -= 1
        if done.cancelled() or done.exception() is not None:
            return
        reply = done.result()
        if reply is not None and self.transport is not None:
            self.transport.sendto(reply, addr)


def open_socket(host: str, port: int) -> socket.socket:
    """A UDP socket on ``host``; ``::`` listens on IPv6 and IPv4 (dual stack), ``0.0.0.0``
    on IPv4 only."""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_DGRAM, flags=socket.AI_PASSIVE)
    family, kind, proto, _, address = infos[0]
    sock = socket.socket(family, kind, proto)
    try:
        if family == socket.AF_INET6 and host in ("::", ""):
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 * 1024 * 1024)
        sock.bind(address)
    except OSError:
        sock.close()
        raise
    sock.setblocking(False)
    return sock


async def serve(
    server: RadiusServer,
    hosts: Iterable[str],
    port: int,
    started: threading.Event | None = None,
    stop: asyncio.Event | None = None,
) -> None:
    """Listen on every host until ``stop`` is set (or the task is cancelled)."""
    loop = asyncio.get_running_loop()
    transports = []
    try:
        for host in hosts:
            sock = open_socket(host, port)
            transport, _ = await loop.create_datagram_endpoint(lambda: _Protocol(server), sock=sock)
            transports.append(transport)
            log.info("RADIUS listening on %s port %d/udp", host, port)
        if started is not None:
            started.set()
        await (stop or asyncio.Event()).wait()
    finally:
        for transport in transports:
            transport.close()


class RadiusThread:
    """The server in a thread of its own (with its own event loop), beside ``keyfob serve``'s
    HTTP server: started before uvicorn, stopped after it."""

    def __init__(self, server: RadiusServer, hosts: list[str], port: int) -> None:
        self.server, self.hosts, self.port = server, hosts, port
        self._started = threading.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="keyfob-radius", daemon=True)

    def _run(self) -> None:
        async def main() -> None:
            self._loop, self._stop = asyncio.get_running_loop(), asyncio.Event()
            await serve(self.server, self.hosts, self.port, self._started, self._stop)

        try:
            asyncio.run(main())
        except BaseException as exc:  # reported to start(): a port in use, say
            self._error = exc
            self._started.set()

    def start(self) -> None:
        self.server.warn_relaxed()
        self._thread.start()
        self._started.wait(10)
        if self._error is not None:
            raise self._error

    def stop(self) -> None:
        if self._loop is not None and self._stop is not None:
            with contextlib.suppress(RuntimeError):  # the loop already ended
                self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(timeout=10)
        self.server.close()
