"""The access token over loopback, on the real server (``streamlit run app.py`` with ARCHSCOPE_TOKEN set):
without it every route answers 403 (pages, the websocket handshake, static files, the bench's files),
except the health check; the first visit with ?token= is redirected without it and given a cookie; with
the cookie,
200. A page opened in Chromium through the token works and never shows it."""

import base64
import os
import socket
import tempfile
import urllib.error
import urllib.request
from urllib.parse import urlparse

import pytest

from benchmarks.harness import serve, wait_idle

pytestmark = pytest.mark.e2e
TOKEN = "t0ken-" + base64.urlsafe_b64encode(os.urandom(12)).decode()
ROUTES = [
    "/",
    "/backbones",
    "/static/js/not-there.js",
    "/ort/ort.wasm.min.mjs",
    "/bench/bench.html",
    "/bench-data/0123456789abcdef/config.json",
    "/_stcore/host-config",
]


class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


def status(url: str, cookie: str | None = None) -> tuple[int, dict]:
    req = urllib.request.Request(url, headers={"Cookie": cookie} if cookie else {})
    try:
        with urllib.request.build_opener(NoRedirect).open(req, timeout=30) as res:
            return res.status, dict(res.headers)
    except urllib.error.HTTPError as err:
        return err.code, dict(err.headers)


def websocket_status(url: str, cookie: str | None = None) -> str:
    """The status line the server answers a websocket handshake on Streamlit's stream with."""
    u = urlparse(url)
    key = base64.b64encode(os.urandom(16)).decode()
    lines = [
        "GET /_stcore/stream HTTP/1.1",
        f"Host: {u.netloc}",
        "Upgrade: websocket",
        "Connection: Upgrade",
        f"Sec-WebSocket-Key: {key}",
        "Sec-WebSocket-Version: 13",
        f"Origin: {url}",
    ]
    if cookie:
        lines.append(f"Cookie: {cookie}")
    with socket.create_connection((u.hostname, u.port), timeout=30) as s:
        s.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
        return s.recv(4096).decode("latin-1").split("\r\n")[0]


@pytest.fixture(scope="module")
def guarded():
    os.environ["ARCHSCOPE_TOKEN"] = TOKEN
    try:
        with serve(tempfile.mkdtemp(prefix="archscope-token-")) as url:
            yield url
    finally:
        os.environ.pop("ARCHSCOPE_TOKEN", None)


def test_without_the_token_every_route_is_refused_but_the_health_check(guarded):
    for route in ROUTES:
        code, _ = status(guarded + route)
        assert code == 403, route
        assert status(guarded + route + "?token=wrong")[0] == 403, route
    assert " 403 " in websocket_status(guarded)
    assert status(guarded + "/_stcore/health")[0] == 200


def test_with_the_token_the_first_visit_gets_a_cookie_and_every_route_answers(guarded):
    code, headers = status(guarded + "/backbones?token=" + TOKEN + "&bb.tab=Deployment")
    assert code == 303 and headers["location"] == "/backbones?bb.tab=Deployment"  # the token leaves the URL
    cookie = headers["set-cookie"].split(";")[0]
    assert "HttpOnly" in headers["set-cookie"] and "SameSite=Strict" in headers["set-cookie"]
    for route in ROUTES:
        expected = 404 if "0123456789abcdef" in route else 200  # (an unknown static path: the app page)
        assert status(guarded + route, cookie)[0] == expected, route
    assert " 101 " in websocket_status(guarded, cookie)


def test_a_page_opened_through_the_token_works_and_never_shows_it(page, guarded):
    page.goto(guarded + "/?token=" + TOKEN)
    wait_idle(page)
    assert "token" not in page.url and page.locator("h1").first.inner_text() == "Block explorer"
    assert TOKEN not in page.content() and page.locator("[data-testid='stException']").count() == 0
