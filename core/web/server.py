"""What Archscope's server adds to Streamlit's: headers that make every page cross-origin isolated, routes
for the browser bench's files, and an access token beyond loopback. ``app.py`` hands these to ``st.App``
with the address and port the server was started with; ``streamlit run`` serves them.

- Every HTTP response carries COOP ``same-origin``, COEP ``require-corp`` and CORP ``same-origin``. A
  page is then cross-origin isolated (``crossOriginIsolated === true``) where the browser allows it (a
  secure context: https, or http on localhost / 127.0.0.1), and onnxruntime-web may use WASM threads.
  Everything the app loads is its own (the offline first visit makes no outbound request), so nothing is
  blocked by COEP.
- ``/ort/<file>``: the vendored onnxruntime-web (``assets/ort``); ``/bench/<file>``: the bench page and
  module (``assets/bench``); ``/bench-data/<id>/<file>``: one prepared bench
  (``core.deploy.browser.bench_folder``), inside the data directory. Only plain file names are served
  (no slash, no leading dot): anything else is a 404.
- An access token (``TokenGuard``) when one is set: ``ARCHSCOPE_TOKEN`` in the environment, or, when the
  server binds beyond loopback (``--server.address 0.0.0.0``, to reach a phone on the LAN) without one,
  a random token made at start and printed with the URL and a QR code. Then every route but
  ``/_stcore/health`` answers 403 to a request without it (pages, the websocket, static files, the
  bench's files): the first visit carries it as ``?token=…`` and is redirected to the same page without
  it, with a cookie that carries it from then on, so it stays out of the address bar, the history and
  the store. The default (127.0.0.1, no token) is unguarded.
"""

from __future__ import annotations

import io
import ipaddress
import os
import re
import secrets
import socket
import sys
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from core.deploy.bench_server import BENCH_DIR, CONTENT_TYPES, ISOLATION_HEADERS, ORT_DIR, verify_runtime
from core.deploy.browser import bench_root
from core.jobs import yielding
from core.web import preload, roles
from core.web.guard import (  # noqa: F401  (TOKEN_ENV, COOKIE, TokenGuard: re-exported)
    COOKIE,
    OPEN_PATHS,
    PUBLIC_URL_ENV,
    TOKEN_ENV,
    HostGuard,
    TokenError,
    TokenGuard,
    allowed_hosts,
    check_token,
)

NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]*")
BENCH_ID = re.compile(r"[0-9a-f]{16}")
_HEADERS = [(k.lower().encode(), v.encode()) for k, v in ISOLATION_HEADERS.items()]


class CrossOriginIsolation:
    """ASGI middleware: the isolation headers on every HTTP response (the websocket is left alone)."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def with_headers(message: dict) -> None:
            if message["type"] == "http.response.start":
                names = {k.lower() for k, _ in message.get("headers", [])}
                message["headers"] = [
                    *message.get("headers", []),
                    *(h for h in _HEADERS if h[0] not in names),
                ]
            await send(message)

        await self.app(scope, receive, with_headers)


class MarkPageLoads:
    """ASGI middleware: each request but the health check (a page, its static files, its websocket) marks a
    page load, so a counting job gives way while it lasts (``core.jobs.yielding``)."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope.get("type") in ("http", "websocket") and scope.get("path") not in OPEN_PATHS:
            yielding.mark()
        await self.app(scope, receive, send)


def is_loopback(address: str) -> bool:
    if address in ("", "localhost"):
        return address == "localhost"
    try:
        return ipaddress.ip_address(address).is_loopback
    except ValueError:
        return False


def lan_address() -> str:
    """This machine's address on its local network (the route a packet would take; nothing is sent)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        try:
            s.connect(("10.255.255.255", 1))
            return s.getsockname()[0]
        except OSError:
            return "127.0.0.1"


def access_token(address: str) -> str:
    """The instructor's token this server asks for: ``ARCHSCOPE_TOKEN`` (checked by ``guard.check_token``:
    a TokenError says the rule), else a random one when it binds beyond loopback, else none. With a
    token in effect, a visitors' token is made too when ``ARCHSCOPE_VISITOR_TOKEN`` is not given
    (``core.web.roles``). Both are set in the environment, so the pages can show the links. Streamlit's
    default address (unset) binds every interface, so it counts as beyond loopback."""
    token = os.environ.get(TOKEN_ENV, "")
    if token.strip():
        token = check_token(token)
    elif is_loopback(address):
        return ""
    else:
        token = secrets.token_urlsafe(18)
        os.environ[TOKEN_ENV] = token
    if not roles.visitor_token():
        os.environ[roles.VISITOR_TOKEN_ENV] = secrets.token_urlsafe(18)
    if roles.visitor_token() == token:
        raise TokenError(
            f"{roles.VISITOR_TOKEN_ENV} must differ from {TOKEN_ENV}: the visitors' link would open "
            "everything"
        )
    return token


def printed_address(address: str) -> str:
    """The address a phone reaches this server by: the one it binds, or its LAN address when it binds every
    interface."""
    return lan_address() if address in ("", "0.0.0.0", "::") else address


def phone_url(address: str, port: int, token: str) -> str:
    """The link (and QR code) for a phone: ``ARCHSCOPE_PUBLIC_URL`` when set (behind a proxy or in a
    container, the address people reach), else this machine's address and port; the token as a query."""
    public = os.environ.get(PUBLIC_URL_ENV, "").strip().rstrip("/")
    base = public or f"http://{printed_address(address)}:{port}"
    return f"{base}/?{urlencode({'token': token})}"


# what a phone on the LAN gets over plain http, said beside its link
PLAIN_HTTP = (
    "Over plain http on a network address (http://192.168.…), a phone's browser is not in a secure context: "
    "the page cannot be cross-origin isolated, so onnxruntime-web runs on one WASM thread (wasm-N is "
    "skipped, and says so) and has no WebGPU. Threads need HTTPS: start Streamlit with "
    "`--server.sslCertFile` and `--server.sslKeyFile` and a certificate the phone trusts. Each result "
    "records whether it ran cross-origin isolated."
)


def qr_png(text: str) -> bytes:
    """A QR code of ``text`` (a link) as PNG bytes, for a page to show."""
    import segno

    buf = io.BytesIO()
    segno.make(text, error="l").save(buf, kind="png", scale=6, border=2)
    return buf.getvalue()


def announce(url: str, visitors: str = "") -> None:
    """The links and the visitors' QR code in the terminal that started the server: the instructor's link
    (everything; keep it to yourself) and the visitors' (browse, time blocks, measure their own
    browser)."""
    print(
        f"\n  Archscope, the instructor's link (it can do everything; keep it to yourself):\n  {url}\n",
        file=sys.stderr,
    )
    if not visitors:
        return
    print(f"  Archscope for the class (a visitor's link: share this one):\n  {visitors}\n", file=sys.stderr)
    try:
        import segno

        segno.make(visitors, error="l").terminal(out=sys.stderr, compact=True)
    except Exception:  # noqa: BLE001  the link alone still works
        pass


def _file(folder: Path, name: str) -> Any:
    from starlette.responses import PlainTextResponse, Response

    if not NAME.fullmatch(name) or not (folder / name).is_file():
        return PlainTextResponse("not found", status_code=404)
    return Response(
        (folder / name).read_bytes(),
        media_type=CONTENT_TYPES.get(Path(name).suffix, "application/octet-stream"),
        headers={"Cache-Control": "no-store"},
    )


async def _ort(request: Any) -> Any:
    from starlette.responses import PlainTextResponse

    name = request.path_params["name"]
    verdicts = verify_runtime(ORT_DIR)
    if name in verdicts and verdicts[name]:
        return PlainTextResponse(
            f"assets/ort/{name} {verdicts[name]}, so it is not served: reinstall Archscope's assets/ort.",
            status_code=503,
        )
    if name not in verdicts:
        return PlainTextResponse("not found", status_code=404)
    return _file(ORT_DIR, name)


async def _bench(request: Any) -> Any:
    return _file(BENCH_DIR, request.path_params["name"])


async def _bench_data(request: Any) -> Any:
    from starlette.responses import PlainTextResponse

    bench_id = request.path_params["bench"]
    if not BENCH_ID.fullmatch(bench_id):
        return PlainTextResponse("not found", status_code=404)
    return _file(bench_root() / bench_id, request.path_params["name"])


def routes() -> list[Any]:
    from starlette.routing import Route

    return [
        Route("/ort/{name}", _ort),
        Route("/bench/{name}", _bench),
        Route("/bench-data/{bench}/{name}", _bench_data),
    ]


def middleware(address: str, port: int) -> list[Any]:
    """The isolation headers, the preload's request watch, the page-load mark, and the token guard when a
    server bound to ``address`` asks for a token (announced once, with ``port`` in the link)."""
    from starlette.middleware import Middleware

    token = access_token(address)
    verify_runtime()  # at start: a changed file is said in the log now, and never served
    out = [Middleware(CrossOriginIsolation), Middleware(preload.HoldWhileLoading), Middleware(MarkPageLoads)]
    if token:
        visitor = roles.visitor_token()
        if not is_loopback(address):
            announce(phone_url(address, port, token), phone_url(address, port, visitor) if visitor else "")
        out.insert(0, Middleware(TokenGuard, token=token, visitor=visitor))
    lan = None if is_loopback(address) else printed_address(address)
    out.insert(0, Middleware(HostGuard, allowed=allowed_hosts(lan)))
    return out
