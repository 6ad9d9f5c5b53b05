"""Which requests `liifsr serve` answers at all: the web pages of other sites must not use it.

Two attacks, two checks, both before any route runs (`Guard`, an ASGI middleware):
- DNS rebinding: a page of `attacker.example` makes its name resolve to 127.0.0.1 and
  reads this server as if it were its own. The browser still sends `Host:
  attacker.example`, so only the names the server was started for are answered
  (`HostPolicy`); others get 421.
- Cross-site requests: a page of any site may send "simple" POSTs (a form, `text/plain`)
  here without asking. State-changing requests are refused when `Origin` or
  `Sec-Fetch-Site` say they come from another site, and must carry a JSON content type
  or the `X-Liifsr` header, which a browser sends for another site only after a CORS
  preflight that this server never grants. Requests to `/api/` from another site are
  refused whatever their method (a page may not spend this model's time on its tiles).
Both answer one JSON line `{"error": "..."}` naming the fix, like the routes' errors.
"""

from __future__ import annotations

import ipaddress
import json
from collections.abc import Awaitable, Callable, Iterable, MutableMapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

# The header the page's own script sends with every state-changing request.
CUSTOM_HEADER = "x-liifsr"
STATE_CHANGING = frozenset({"POST", "PUT", "DELETE", "PATCH"})
WILDCARD_BINDS = frozenset({"0.0.0.0", "::", ""})
LOOPBACK_NAMES = ("127.0.0.1", "localhost", "::1")

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]


def ip_literal(name: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    """The address `name` spells literally (IPv6 with or without brackets), or None for a DNS name."""
    try:
        return ipaddress.ip_address(name[1:-1] if name.startswith("[") and name.endswith("]") else name)
    except ValueError:
        return None


def is_loopback(host: str) -> bool:
    """Whether `host` is this machine whatever any DNS says: `localhost` or a literal
    loopback address. A name such as `127.0.0.1.nip.io` is not: DNS decides where it goes."""
    if host.lower() == "localhost":
        return True
    address = ip_literal(host)
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped  # ::ffff:127.0.0.1
    return address is not None and address.is_loopback


def split_host(value: str) -> tuple[str, int | None] | None:
    """A `Host` header's (name, port): name lower-case, IPv6 without brackets; None when malformed."""
    value = value.strip().lower()
    if value.startswith("["):
        name, bracket, rest = value[1:].partition("]")
        if not bracket or (rest and not rest.startswith(":")):
            return None
        port_text = rest[1:] if rest else None
    else:
        name, colon, port_text = value.partition(":")
        port_text = port_text if colon else None
    if not name or (port_text is not None and not (port_text.isascii() and port_text.isdigit() and 0 < int(port_text) < 65536)):
        return None
    return name, None if port_text is None else int(port_text)


def _bare(name: str) -> str:
    return name.strip().lower().removeprefix("[").removesuffix("]")


@dataclass(frozen=True)
class HostPolicy:
    """The `Host` names this server answers to.

    - `names` (the loopback names and the `--host` value): with the server's port (or no
      port when that is 80);
    - any literal IP address with the server's port, when the server listens on every
      address (0.0.0.0 or ::): which addresses reach it is unknowable here, and DNS cannot
      rebind a literal address (a page would have to be served from it);
    - `any_port_names` (`--allow-host`): with any port or none (the name a reverse proxy
      in front of the server is reached by).
    """

    port: int
    names: frozenset[str]
    any_ip: bool = False
    any_port_names: frozenset[str] = frozenset()

    @classmethod
    def for_bind(cls, host: str, port: int, allow: Iterable[str] = ()) -> HostPolicy:
        bare = _bare(host)
        return cls(port, frozenset({*LOOPBACK_NAMES, *([] if bare in WILDCARD_BINDS else [bare])}),
                   any_ip=bare in WILDCARD_BINDS, any_port_names=frozenset(_bare(name) for name in allow))

    def allows(self, host_header: str | None) -> bool:
        parsed = split_host(host_header) if host_header else None
        if parsed is None:
            return False
        name, port = parsed
        if name in self.any_port_names:
            return True
        if port != self.port and not (port is None and self.port == 80):
            return False
        return name in self.names or (self.any_ip and ip_literal(name) is not None)

    def refusal(self, host_header: str | None) -> str:
        shown = f"Host {host_header!r}" if host_header else "a request without a Host header"
        return (f"{shown} is not a name this server was started for (open http://127.0.0.1:{self.port}/, "
                "or start liifsr serve with --allow-host NAME for the name you use)")


def _own_origin(origin: str, host_header: str) -> bool:
    """Whether `Origin` is this server as the `Host` header names it (scheme http or https,
    for a reverse proxy; a port left out is the scheme's default)."""
    try:
        parts = urlsplit(origin)
        origin_port = parts.port
    except ValueError:
        return False
    host = split_host(host_header)
    if parts.scheme not in ("http", "https") or host is None or parts.hostname is None:
        return False
    default = 443 if parts.scheme == "https" else 80
    return _bare(parts.hostname) == host[0] and (origin_port or default) == (host[1] or default)


def cross_site_reason(method: str, path: str, headers: dict[str, str]) -> str | None:
    """Why a request must be refused as coming from another site's page, or None."""
    fetch_site = headers.get("sec-fetch-site", "").lower()
    from_other_site = fetch_site in ("cross-site", "same-site")
    if path.startswith("/api/") and from_other_site:
        return f"requests from another site's page are refused (Sec-Fetch-Site: {fetch_site}); use the page this server serves"
    if method not in STATE_CHANGING:
        return None
    if from_other_site:
        return f"{method} from another site's page is refused (Sec-Fetch-Site: {fetch_site}); use the page this server serves"
    origin = headers.get("origin")
    if origin is not None and not _own_origin(origin, headers.get("host", "")):
        return f"{method} from origin {origin!r} is refused (not this server's own); use the page this server serves"
    media_type = headers.get("content-type", "").split(";")[0].strip().lower()
    if media_type != "application/json" and CUSTOM_HEADER not in headers:
        return (f"{method} needs a JSON body (Content-Type: application/json) or the header 'X-Liifsr: 1' "
                "(which other sites' pages cannot send); the page sends it, so do scripts")
    return None


async def _refuse(send: Send, status: int, message: str) -> None:
    body = json.dumps({"error": message}).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})


class Guard:
    """ASGI middleware: 421 for a `Host` the policy refuses, 403 for another site's request."""

    def __init__(self, app: Callable[[Scope, Receive, Send], Awaitable[None]], policy: HostPolicy) -> None:
        self.app = app
        self.policy = policy

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":  # lifespan; websockets are off (`web.py`)
            return await self.app(scope, receive, send)
        headers: dict[str, str] = {}
        for key, value in scope["headers"]:
            headers.setdefault(key.decode("latin-1").lower(), value.decode("latin-1"))
        host = headers.get("host")
        if not self.policy.allows(host):
            return await _refuse(send, 421, self.policy.refusal(host))
        reason = cross_site_reason(scope["method"], scope["path"], headers)
        if reason is not None:
            return await _refuse(send, 403, reason)
        await self.app(scope, receive, send)
