"""uvicorn as `liifsr serve` runs it: bounded in time and in connections.

uvicorn's h11 protocol closes idle keep-alive connections but has no bound on how long a
request may take to arrive: a client that sends half a request line, or trickles an
upload a byte at a time, holds its connection (and, for an upload, a request task) for
ever, and enough of them exhaust the server. `BoundedH11Protocol` adds the two missing
deadlines (headers, then body) and answers 408 when one passes; `limit_concurrency`
answers 503 beyond a number of connections and requests at once.
"""

from __future__ import annotations

import asyncio
import socket
import time
from dataclasses import dataclass

import h11
import uvicorn
from uvicorn.protocols.http.h11_impl import H11Protocol

# The slowest a request body may arrive on average, beyond the `body_timeout_s` grace.
from liifsr.serve import BODY_MIN_BYTES_PER_S


@dataclass(frozen=True)
class WebLimits:
    header_timeout_s: float = 10.0  # from the connection (or the request's first byte) to its last header
    body_timeout_s: float = 30.0  # the body: this, plus one second per BODY_MIN_BYTES_PER_S received
    max_connections: int = 100  # connections and requests at once; more get 503


class BoundedH11Protocol(H11Protocol):
    """uvicorn's h11 protocol with a deadline on each request's headers and body."""

    limits = WebLimits()  # replaced per server by `protocol_for`

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        self._timer: asyncio.TimerHandle | None = None
        self._body_started: float | None = None
        self._body_bytes = 0
        super().connection_made(transport)
        self._arm(self.limits.header_timeout_s)  # a connection that never sends is bounded too

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        state = self.conn.their_state
        if state is h11.IDLE:  # a request has begun (this is its first byte, or more of its headers)
            if self._timer is None:
                self._arm(self.limits.header_timeout_s)
        elif state is h11.SEND_BODY:
            if self._body_started is None:  # the headers are complete: the body's clock starts
                self._disarm()
                self._body_started, self._body_bytes = time.monotonic(), 0
                self._arm(self.limits.body_timeout_s)
            self._body_bytes += len(data)  # the headers' bytes too, once: a little slack
        else:  # the request is complete (or the connection is over): nothing to wait for
            self._disarm()

    def on_response_complete(self) -> None:
        self._disarm()
        super().on_response_complete()

    def _body_deadline(self) -> float:
        assert self._body_started is not None
        return self._body_started + self.limits.body_timeout_s + self._body_bytes / BODY_MIN_BYTES_PER_S

    def _arm(self, delay: float) -> None:
        self._timer = self.loop.call_later(delay, self._expired)

    def _disarm(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._body_started = None

    def _expired(self) -> None:
        self._timer = None
        state = self.conn.their_state
        if state is h11.SEND_BODY and self._body_started is not None:
            remaining = self._body_deadline() - time.monotonic()
            if remaining > 0:  # more of the body arrived meanwhile: it has earned more time
                self._timer = self.loop.call_later(remaining, self._expired)
                return
            what, option = "the request body", "--body-timeout"
        elif state is h11.IDLE:
            what, option = "the request line and headers", "--header-timeout"
        else:
            return
        if self.transport.is_closing():
            return
        # No response of this request has begun (their headers are not all here, or the
        # app is still waiting for the body): say why before closing.
        if state is h11.IDLE or (self.cycle is not None and not self.cycle.response_started):
            body = f"{what} arrived too slowly (liifsr serve {option}); send the request again, faster\n".encode()
            self.transport.write(b"HTTP/1.1 408 Request Timeout\r\ncontent-type: text/plain; charset=utf-8\r\n"
                                 b"connection: close\r\ncontent-length: " + str(len(body)).encode() + b"\r\n\r\n" + body)
        self.logger.info("closed a connection: %s arrived too slowly", what)
        self.transport.close()  # the app, if it waits for the body, is told the client left


def protocol_for(limits: WebLimits) -> type[BoundedH11Protocol]:
    """The protocol class with these limits (uvicorn builds one instance per connection)."""
    return type("BoundedH11Protocol", (BoundedH11Protocol,), {"limits": limits})


def uvicorn_config(app, host: str, port: int, limits: WebLimits, log_level: str = "warning") -> uvicorn.Config:
    return uvicorn.Config(app, host=host, port=port, log_level=log_level, http=protocol_for(limits), ws="none",
                          limit_concurrency=limits.max_connections)


def listening_sockets(host: str, port: int) -> list[socket.socket]:
    """Sockets bound to `host`:`port` and listening, made as uvicorn's own start-up makes
    them (asyncio's `create_server`: every address the name resolves to, SO_REUSEADDR,
    IPv6 sockets IPv6-only), but now, before the model loads: a port in use (OSError) is
    found in a moment instead of after the load, and uvicorn, given these, binds nothing
    itself. Connections that arrive meanwhile wait in the backlog."""
    infos = socket.getaddrinfo(host or None, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    sockets: list[socket.socket] = []
    try:
        for family, kind, proto, _, address in dict.fromkeys(infos):  # once each, in the resolver's order
            sock = socket.socket(family, kind, proto)
            sockets.append(sock)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if family == socket.AF_INET6:  # as asyncio: the IPv4 address gets its own socket
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            sock.bind(address)
            sock.listen(2048)  # uvicorn's default backlog; listening holds the port against a later SO_REUSEADDR bind
    except BaseException:
        for sock in sockets:
            sock.close()
        raise
    return sockets
