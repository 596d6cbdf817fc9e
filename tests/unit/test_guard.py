"""Who may talk to the server (core/web/guard.py), in-process: the host names it answers to (DNS rebinding
refused on every route and the websocket), token links that work as people share them (a Lax cookie
holding a digest, read pair by pair), the token rule, redirects built from the raw path that stay on
this server, and a refusal page a phone can read. Each case fails on the code before it."""

import asyncio
import threading

import pytest

from core.web import guard
from core.web import server as webapp

TOKEN = "s3cret-token-0123456789"


def app_that_answers(seen: list):
    async def app(scope, receive, send):
        seen.append(scope["path"])
        if scope["type"] == "websocket":
            await send({"type": "websocket.accept"})
            return
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})

    return app


def call(middleware, path="/", query=b"", headers=(), kind="http", raw_path=None):
    sent = []

    async def send(message):
        sent.append(message)

    scope = {
        "type": kind,
        "path": path,
        "raw_path": raw_path if raw_path is not None else path.encode(),
        "query_string": query,
        "headers": [(k.encode(), v.encode("latin-1")) for k, v in headers],
    }
    # a thread of its own: an earlier test in this process may have left an asyncio loop running here
    thread = threading.Thread(target=lambda: asyncio.run(middleware(scope, None, send)))
    thread.start()
    thread.join()
    return sent


ROUTES = ["/", "/bench-data/0123456789abcdef/config.json", "/_stcore/host-config", "/_stcore/health"]


@pytest.mark.parametrize("lan", [None, "192.168.1.20"], ids=["loopback", "lan"])
def test_a_request_for_another_host_name_is_refused_on_every_route_and_the_websocket(lan):
    seen: list = []
    hosts = guard.HostGuard(app_that_answers(seen), guard.allowed_hosts(lan))
    for path in ROUTES:
        refused = call(hosts, path, headers=[("host", "rebind.example:8501")])
        assert refused[0]["status"] == 403 and b"answers only its own names" in refused[1]["body"]
    assert call(hosts, "/_stcore/stream", kind="websocket", headers=[("host", "rebind.example:8501")]) == [
        {"type": "websocket.close", "code": 1008}
    ]
    assert seen == []
    for host in (
        "127.0.0.1:8501",
        "localhost:8501",
        "[::1]:8501",
        "localhost",
        *([f"{lan}:8501"] if lan else []),
    ):
        assert call(hosts, "/", headers=[("host", host)])[0]["status"] == 200, host
    # the websocket's Origin must be one of its names too: a rebinding page's origin is its own
    bad = call(
        hosts,
        "/_stcore/stream",
        kind="websocket",
        headers=[("host", "127.0.0.1:8501"), ("origin", "http://rebind.example:8501")],
    )
    assert bad == [{"type": "websocket.close", "code": 1008}]
    good = call(
        hosts,
        "/_stcore/stream",
        kind="websocket",
        headers=[("host", "127.0.0.1:8501"), ("origin", "http://127.0.0.1:8501")],
    )
    assert good == [{"type": "websocket.accept"}]
    assert call(hosts, "/", headers=[("host", "192.168.1.99:8501")])[0]["status"] == (
        200 if lan == "192.168.1.99" else 403
    )


def test_names_given_by_the_instructor_are_answered(monkeypatch):
    monkeypatch.setenv(guard.HOSTS_ENV, "archscope.lab, Lecture-Hall.local")
    monkeypatch.setenv(guard.PUBLIC_URL_ENV, "https://hall.example.org/archscope")
    names = guard.allowed_hosts("10.0.0.5")
    assert {"archscope.lab", "lecture-hall.local", "hall.example.org", "10.0.0.5", "127.0.0.1"} <= names
    hosts = guard.HostGuard(app_that_answers([]), names)
    assert call(hosts, "/", headers=[("host", "Lecture-Hall.local:8501")])[0]["status"] == 200
    assert call(hosts, "/", headers=[("host", "evil.lab")])[0]["status"] == 403
    assert webapp.phone_url("0.0.0.0", 8501, "tok&en") == "https://hall.example.org/archscope/?token=tok%26en"


def test_a_token_link_sets_a_lax_cookie_that_holds_a_digest_never_the_token():
    seen: list = []
    tokens = guard.TokenGuard(app_that_answers(seen), TOKEN)
    start = call(tokens, "/runs", query=f"token={TOKEN}&runs.x=step".encode())[0]
    headers = dict(start["headers"])
    assert start["status"] == 303 and headers[b"location"] == b"/runs?runs.x=step"
    cookie = headers[b"set-cookie"].decode()
    assert "SameSite=Lax" in cookie and "HttpOnly" in cookie and TOKEN not in cookie
    value = cookie.split(";")[0].split("=", 1)[1]
    assert value == guard.cookie_value(TOKEN) and len(value) == 64
    assert call(tokens, "/runs", headers=[("cookie", f"archscope_token={value}")])[0]["status"] == 200
    assert call(tokens, "/runs", headers=[("cookie", f"archscope_token={TOKEN}")])[0]["status"] == 403


@pytest.mark.parametrize(
    "neighbour",
    [
        'other={"a": 1, "b": [2, 3]}',
        "spaced=a b c",
        'quoted="x;y',
        "=novalue",
        "justaname",
        "broken\x00cookie",
    ],
)
def test_another_apps_malformed_cookie_on_the_same_host_hides_nothing(neighbour):
    tokens = guard.TokenGuard(app_that_answers([]), TOKEN)
    ours = f"archscope_token={guard.cookie_value(TOKEN)}"
    for header in (f"{neighbour}; {ours}", f"{ours}; {neighbour}"):
        assert call(tokens, "/", headers=[("cookie", header)])[0]["status"] == 200, header


@pytest.mark.parametrize(
    "token, ok",
    [
        ("short", False),
        ("has a space in it 0123", False),
        ("ünïcödé-tökén-0123456789", False),
        ("tab\tinside-0123456789", False),
        ("x" * 257, False),
        ("x" * 16, True),
        ('every;odd,char"=\\ok-0123', True),  # safe: the cookie holds a digest
    ],
)
def test_a_chosen_token_is_checked_at_start_with_the_rule_in_words(token, ok, monkeypatch):
    monkeypatch.setenv(guard.TOKEN_ENV, token)
    if ok:
        assert webapp.access_token("0.0.0.0") == token
        tokens = guard.TokenGuard(app_that_answers([]), token)
        from urllib.parse import urlencode

        start = call(tokens, "/", query=urlencode({"token": token}).encode())[0]
        cookie = dict(start["headers"])[b"set-cookie"].decode().split(";")[0]
        assert call(tokens, "/", headers=[("cookie", cookie)])[0]["status"] == 200
    else:
        with pytest.raises(guard.TokenError, match="16 to 256 printable ASCII characters without spaces"):
            webapp.access_token("0.0.0.0")


@pytest.mark.parametrize(
    "raw, status, location",
    [
        (b"/%2Fevil.example/x", 303, b"/%2Fevil.example/x"),  # encoded: a path of this server
        (b"//evil.example/x", 400, None),
        (b"/\\evil.example", 400, None),
        (b"/%F0%9F%98%80", 303, b"/%F0%9F%98%80"),  # an emoji, as sent: never a 500
        (b"/%0D%0ASet-Cookie:x=1", 303, b"/%0D%0ASet-Cookie:x=1"),  # CRLF stays encoded
        (b"/a\r\nSet-Cookie: x=1", 400, None),
        ("/ü".encode(), 400, None),
    ],
)
def test_the_redirect_is_built_from_the_raw_path_and_stays_on_this_server(raw, status, location):
    tokens = guard.TokenGuard(app_that_answers([]), TOKEN)
    answer = call(tokens, raw.decode("utf-8", "replace"), query=f"token={TOKEN}".encode(), raw_path=raw)[0]
    assert answer["status"] == status
    if location is not None:
        assert dict(answer["headers"])[b"location"] == location


def test_the_refusal_is_a_page_a_phone_can_read_with_a_field_for_the_token():
    tokens = guard.TokenGuard(app_that_answers([]), TOKEN)
    start, body = call(tokens, "/backbones")
    page = body["body"].decode()
    assert start["status"] == 403 and (b"content-type", b"text/html; charset=utf-8") in start["headers"]
    assert '<meta name="viewport" content="width=device-width, initial-scale=1">' in page
    assert 'name="token"' in page and 'action="/backbones"' in page and "not this server" not in page
    wrong = call(tokens, "/", query=b"token=wrong")[1]["body"].decode()
    assert (
        "That token is not this server" in wrong and "wrong" not in wrong.split("<form")[0].split("</h1>")[1]
    )
