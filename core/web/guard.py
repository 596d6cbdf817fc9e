"""Who may talk to this server: the host names it answers to, and the access token beyond loopback.

- ``HostGuard``: every request, the websocket handshake included, must name this server by one of its
  own names in ``Host`` (and a browser's ``Origin``, when it sends one): the loopback names
  (``127.0.0.1``, ``localhost``, ``[::1]``) always; open to the network, also the address the server
  prints, the host of ``ARCHSCOPE_PUBLIC_URL`` and any name in ``ARCHSCOPE_ALLOWED_HOSTS``
  (comma-separated). Anything else is a 403 in words. A page on another site that rebinds its own name
  to 127.0.0.1 (DNS rebinding) can then neither read this server's files nor open its websocket: its
  requests carry its own name.
- ``TokenGuard``: with a token set, every route but the health check answers 403 without it. The first
  visit carries it as ``?token=…`` and is sent back to the same path without it (built from the raw
  path, so it never leaves this server; an odd path is a 400), with a cookie (``SameSite=Lax``, so a
  link clicked on a course page or in a mail works on the first click). The cookie holds a digest of the
  token, never the token, so any token the rule allows is a safe cookie value. The Cookie header is read
  pair by pair: another app's malformed cookie on the same host hides nothing. The refusal is a small
  page a phone can read, with a field to paste the token.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import os
import re
from html import escape
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

TOKEN_ENV = "ARCHSCOPE_TOKEN"
HOSTS_ENV = "ARCHSCOPE_ALLOWED_HOSTS"
PUBLIC_URL_ENV = "ARCHSCOPE_PUBLIC_URL"
COOKIE = "archscope_token"
OPEN_PATHS = frozenset({"/_stcore/health"})
LOOPBACK_NAMES = frozenset({"127.0.0.1", "localhost", "::1"})
TOKEN_RULE = re.compile(r"[!-~]{16,256}")  # printable ASCII, no space
_NAME = re.compile(r"[a-z0-9.-]{1,253}|\[[0-9a-f:.]+\]", re.IGNORECASE)


class TokenError(ValueError):
    """A chosen token that the rule refuses; the message says the rule."""


def check_token(token: str) -> str:
    """``token`` if it is 16 to 256 printable ASCII characters without a space, else a TokenError in words."""
    if not TOKEN_RULE.fullmatch(token):
        why = (
            f"it has {len(token)} characters"
            if token.isascii() and token.isprintable() and " " not in token
            else "it has a space, a control character or a non-ASCII letter"
        )
        raise TokenError(
            f"{TOKEN_ENV} must be 16 to 256 printable ASCII characters without spaces, and {why}: choose "
            "another (for example what `python3 -c 'import secrets; print(secrets.token_urlsafe(18))'` "
            "prints)"
        )
    return token


def cookie_value(token: str) -> str:
    """What the cookie carries for ``token``: a SHA-256 digest (hex), safe in any Cookie header."""
    return hashlib.sha256(token.encode()).hexdigest()


def cookies(scope: dict) -> dict[str, str]:
    """Every ``name=value`` pair of the request's Cookie headers, read one by one: a pair that does not
    parse is skipped, never the whole header."""
    out: dict[str, str] = {}
    for name, value in scope.get("headers", []):
        if name != b"cookie":
            continue
        for pair in value.decode("latin-1").split(";"):
            key, sep, val = pair.strip().partition("=")
            if sep and key and key not in out:
                out[key] = val.strip().strip('"')
    return out


def header(scope: dict, name: bytes) -> str:
    return next((v.decode("latin-1") for k, v in scope.get("headers", []) if k == name), "")


def host_name(value: str) -> str:
    """The name in a ``Host`` header or an origin's netloc, lower-case, without its port ("" if it is not
    one)."""
    value = value.strip().lower()
    if value.startswith("["):
        name, _, rest = value[1:].partition("]")
        port = rest[1:] if rest.startswith(":") else rest
        return name if (not port or port.isdigit()) and _NAME.fullmatch(f"[{name}]") else ""
    name, _, port = value.partition(":")
    return name if (not port or port.isdigit()) and _NAME.fullmatch(name or "-") else ""


def allowed_hosts(lan_address: str | None = None) -> frozenset[str]:
    """The names this server answers to: loopback's; open to the network, also ``lan_address`` (the one it
    prints), ``ARCHSCOPE_PUBLIC_URL``'s host and each name in ``ARCHSCOPE_ALLOWED_HOSTS``."""
    names = set(LOOPBACK_NAMES)
    if lan_address:
        names.add(lan_address.lower())
    public = os.environ.get(PUBLIC_URL_ENV, "").strip()
    if public:
        names.add((urlsplit(public).hostname or "").lower())
    names.update(h.strip().lower().strip("[]") for h in os.environ.get(HOSTS_ENV, "").split(",") if h.strip())
    names.discard("")
    return frozenset(names)


def _is_loopback(name: str) -> bool:
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return name == "localhost"


async def _answer(send: Any, status: int, body: bytes, kind: str = "text/plain; charset=utf-8") -> None:
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [(b"content-type", kind.encode()), (b"cache-control", b"no-store")],
        }
    )
    await send({"type": "http.response.body", "body": body})


class HostGuard:
    """ASGI middleware: a request (or websocket) whose ``Host`` or ``Origin`` names another server gets 403
    (see the module docstring)."""

    def __init__(self, app: Any, allowed: frozenset[str]) -> None:
        self.app, self.allowed = app, allowed

    def _ok(self, name: str) -> bool:
        return bool(name) and (name in self.allowed or _is_loopback(name))

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        host = host_name(header(scope, b"host"))
        origin = header(scope, b"origin")
        bad_origin = bool(origin) and origin != "null" and not self._ok(host_name(urlsplit(origin).netloc))
        if self._ok(host) and not bad_origin:
            await self.app(scope, receive, send)
            return
        if scope["type"] == "websocket":
            await send({"type": "websocket.close", "code": 1008})  # before accept: the handshake gets 403
            return
        what = "its Origin" if self._ok(host) else "the host name it was sent to"
        await _answer(
            send,
            403,
            f"This Archscope answers only its own names, and {what} is not one of them. Open it by the "
            "address its terminal printed; to give it another name, start it with ARCHSCOPE_ALLOWED_HOSTS "
            "(or ARCHSCOPE_PUBLIC_URL) set.\n".encode(),
        )


# the refusal: a page a phone can read (viewport, large type) with a field to paste the token
REFUSAL_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Archscope: access token</title>
<style>
body {{ font: 18px/1.5 system-ui, sans-serif; margin: 0 auto; max-width: 34rem; padding: 1.5rem; }}
h1 {{ font-size: 1.4rem; }} input {{ font: inherit; width: 100%; box-sizing: border-box; padding: .6rem; }}
button {{ font: inherit; margin-top: .8rem; padding: .6rem 1.2rem; }} .why {{ color: #a50f15; }}
</style></head><body>
<h1>This Archscope asks for its access token</h1>
<p>Open the link that the instructor shared (it carries the token), scan its QR code, or paste the token
here.</p>
{why}
<form method="get" action="{action}">
<label for="token">Access token</label>
<input id="token" name="token" type="password" autocomplete="off" autocapitalize="off" spellcheck="false">
<button type="submit">Open Archscope</button>
</form>
</body></html>
"""


class TokenGuard:
    """ASGI middleware: no token, no Archscope (see the module docstring). ``token`` is the instructor's;
    ``visitor`` (optional) a second one for a class (``core.web.roles``): either opens the app, and the
    cookie says which."""

    def __init__(self, app: Any, token: str, visitor: str = "") -> None:
        self.app, self.tokens = app, [t for t in (token, visitor) if t]
        self.cookies = [cookie_value(t) for t in self.tokens]

    def _match(self, given: str) -> str:
        """The cookie value of the token ``given`` is, or ""."""
        raw = given.encode("latin-1", "replace")
        hits = [c for t, c in zip(self.tokens, self.cookies) if hmac.compare_digest(raw, t.encode())]
        return hits[0] if given and hits else ""

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] not in ("http", "websocket") or scope.get("path") in OPEN_PATHS:
            await self.app(scope, receive, send)
            return
        held = cookies(scope).get(COOKIE, "").encode("latin-1", "replace")
        if any(hmac.compare_digest(held, c.encode()) for c in self.cookies):
            await self.app(scope, receive, send)
            return
        if scope["type"] == "websocket":
            await send({"type": "websocket.close", "code": 1008})  # before accept: the handshake gets 403
            return
        raw = scope.get("raw_path") or scope.get("path", "/").encode("utf-8", "replace")
        path = raw.decode("latin-1")
        if not re.fullmatch(r"/[!-~]*", path) or path.startswith(("//", "/\\")):
            await _answer(send, 400, b"This address is not one of Archscope's pages.\n")
            return
        query = parse_qsl(scope.get("query_string", b"").decode("latin-1"), keep_blank_values=True)
        given = next((v for k, v in query if k == "token"), None)
        if given is not None and (cookie := self._match(given)):
            rest = urlencode([(k, v) for k, v in query if k != "token"], encoding="latin-1")
            where = (scope.get("root_path", "") + path) + (f"?{rest}" if rest else "")
            await send(
                {
                    "type": "http.response.start",
                    "status": 303,
                    "headers": [
                        (b"location", where.encode("latin-1")),
                        (
                            b"set-cookie",
                            f"{COOKIE}={cookie}; Path=/; HttpOnly; SameSite=Lax".encode(),
                        ),
                        (b"cache-control", b"no-store"),
                    ],
                }
            )
            await send({"type": "http.response.body", "body": b""})
            return
        why = '<p class="why">That token is not this server\'s.</p>' if given is not None else ""
        page = REFUSAL_PAGE.format(why=why, action=escape(path, quote=True))
        await _answer(send, 403, page.encode(), "text/html; charset=utf-8")
