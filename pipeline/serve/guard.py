"""What stands in front of every route: the Host a request names, its method and size, the token,
the requests in progress, and the security headers of every response.

- **Host.** A web page the user visits can point its own name at 127.0.0.1 (DNS rebinding) and read
  a service that trusts any `Host`. So only names this service was started for are answered
  (`HostCheck`): an address (no name can be rebound through one; loopback ones only with
  `--no-auth`), `localhost`, and with a token also this machine's names and the `--allow-host` list.
- **Token.** `Authorization: Bearer T`, or the page's cookie, or once `/?token=T` (moved into the
  cookie); compared in constant time. `public` paths (the health check) need none. The cookie holds a value derived from the token
  (`session_value`), never the token, under a name of its own per port.
- **Size.** Only GET and HEAD (405), no body (413), a head of at most 16 KiB (431), at most
  `max_requests` requests in progress (503; sockets are limited in `pipeline.serve.connections`).
- **Headers.** A Content-Security-Policy that lets the page load only its own files and be framed
  by nobody, `nosniff`, no referrer, and resources not readable cross-origin.
"""

import fnmatch
import hashlib
import hmac
import ipaddress
import socket
from collections.abc import Callable

from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, PlainTextResponse, RedirectResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

MAX_HEAD_BYTES = 16 * 1024  # headers and query string of one request
COOKIE_DAYS = 30
SECURITY_HEADERS = [
    (
        b"content-security-policy",
        b"default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; media-src 'self'; connect-src 'self'; "
        b"frame-ancestors 'none'; base-uri 'none'; form-action 'none'",
    ),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
    (b"x-frame-options", b"DENY"),
    (b"cross-origin-resource-policy", b"same-origin"),
    (b"cross-origin-opener-policy", b"same-origin"),
]


def session_value(token: str) -> str:
    """What the page's cookie holds: derived from the token, so a cookie read by another service on
    the same host name (cookies ignore ports) does not give away the token itself."""
    return hmac.new(token.encode(), b"actionlstm page session", hashlib.sha256).hexdigest()


def host_name(header: str) -> str:
    """The name or address of a Host header, without its port, lower case ('[::1]:80' -> '::1')."""
    host = header.strip().lower()
    if host.startswith("[") and "]" in host:
        return host[1:].split("]", 1)[0]
    return host.rsplit(":", 1)[0] if host.count(":") == 1 else host


class HostCheck:
    """Which `Host` headers are answered (see the module's docstring). `allow` takes names and
    patterns (`*.example.com`; `*` answers any name, for a proxy that rewrites Host as it likes)."""

    def __init__(self, bound: str, token: bool, allow: list[str] = ()):
        self.loopback_only = not token
        names = {"localhost"}
        if token:
            machine = socket.gethostname().lower()
            names |= {host_name(bound), machine, f"{machine.split('.')[0]}.local", *(host_name(n) for n in allow)}
        self.names = {n.rstrip(".") for n in names if n}

    def allows(self, header: str | None) -> bool:
        if header is None:
            return True  # HTTP/1.0 without Host: no browser sends that, so no page can either
        host = host_name(header).rstrip(".")
        try:
            address = ipaddress.ip_address(host)
        except ValueError:
            return any(fnmatch.fnmatchcase(host, name) for name in self.names)
        return address.is_loopback or not self.loopback_only


class Guard:
    """ASGI middleware in front of every route (see the module's docstring)."""

    def __init__(
        self,
        app: ASGIApp,
        token: str | None,
        hosts: HostCheck,
        cookie: str,
        max_requests: int,
        log: Callable[[str], None] = print,
        public: set[str] = frozenset(),
    ):
        self.app = app
        self.token = token
        self.public = public  # paths that need no token (the health check's)
        self.session = session_value(token) if token is not None else None
        self.hosts = hosts
        self.cookie = cookie
        self.max_requests = max_requests
        self.in_progress = 0
        self.log = log
        self.refused_hosts: set[str] = set()  # names refused so far, said once each in the log (the first 100)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_secured(message: Message) -> None:
            if message["type"] == "http.response.start":
                message = {**message, "headers": [*message.get("headers", []), *SECURITY_HEADERS]}
            await send(message)

        refusal = self._refusal(Request(scope))
        if refusal is not None:
            await refusal(scope, receive, send_secured)
            return
        self.in_progress += 1
        try:
            await self.app(scope, receive, send_secured)
        finally:
            self.in_progress -= 1

    def _refusal(self, request: Request) -> Response | None:
        """The answer to a request that does not get through, or None."""
        host = request.headers.get("host")
        path = request.scope["path"]  # not request.url: a Host like '[::1' makes no URL
        if not self.hosts.allows(host):
            name = host_name(host)[:100]
            if name not in self.refused_hosts and len(self.refused_hosts) < 100:
                self.refused_hosts.add(name)
                self.log(f"refused a request for host name {name!r} (not one this service answers to; see --allow-host)")
            what = "start it with --allow-host NAME to answer to a name" if self.token else "--no-auth answers to localhost only"
            return PlainTextResponse(f"this service does not answer to the host name in this request ({what})\n", 400)
        if request.method not in ("GET", "HEAD"):
            return PlainTextResponse("only GET is served\n", 405, {"Allow": "GET, HEAD"})
        if request.headers.get("content-length", "0") not in ("", "0") or "transfer-encoding" in request.headers:
            return PlainTextResponse("requests carry no body\n", 413)
        if sum(len(name) + len(value) for name, value in request.scope["headers"]) + len(request.scope["query_string"]) > MAX_HEAD_BYTES:
            return PlainTextResponse("request head too large\n", 431)
        if self.in_progress >= self.max_requests:
            return JSONResponse({"error": "too many requests in progress"}, 503, {"Retry-After": "1"})
        if self.token is None or path in self.public:
            return None
        if not self._authorised(request, path):
            return self._unauthorised(path)
        if path == "/" and "token" in request.query_params:  # the printed URL: the token goes, a cookie stays
            response = RedirectResponse("/", 303)
            secure = request.scope["scheme"] == "https"
            response.set_cookie(self.cookie, self.session, COOKIE_DAYS * 24 * 3600, httponly=True, samesite="strict", secure=secure)
            return response
        return None

    def _authorised(self, request: Request, path: str) -> bool:
        header = request.headers.get("authorization", "")
        if header.lower().startswith("bearer "):
            return hmac.compare_digest(header[7:].strip().encode(), self.token.encode())
        if path == "/" and "token" in request.query_params:
            return hmac.compare_digest(request.query_params["token"].encode(), self.token.encode())
        return hmac.compare_digest(request.cookies.get(self.cookie, "").encode(), self.session.encode())

    @staticmethod
    def _unauthorised(path: str) -> Response:
        headers = {"WWW-Authenticate": "Bearer"}
        if path == "/":
            page = (
                "<!doctype html><title>ActionLSTM</title>"
                "<p>Open the URL the service printed when it started (it ends in <code>?token=...</code>).</p>"
            )
            return HTMLResponse(page, 401, headers)
        return JSONResponse({"error": "a valid token is needed (Authorization: Bearer TOKEN)"}, 401, headers)
