"""The access token over loopback, on the real server (``streamlit run app.py`` with ARCHSCOPE_TOKEN set):
without it every route answers 403 (pages, the websocket handshake, static files, the bench's files),
except the health check; the first visit with ?token= is redirected without it and given a cookie; with
the cookie,
200. A page opened in Chromium through the token works and never shows it."""

import base64
import os
import re
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
    assert "HttpOnly" in headers["set-cookie"] and "SameSite=Lax" in headers["set-cookie"]
    for route in ROUTES:
        expected = 404 if "0123456789abcdef" in route else 200  # (an unknown static path: the app page)
        assert status(guarded + route, cookie)[0] == expected, route
    assert " 101 " in websocket_status(guarded, cookie)


def test_a_page_opened_through_the_token_works_and_never_shows_it(page, guarded):
    page.goto(guarded + "/?token=" + TOKEN)
    wait_idle(page)
    assert "token" not in page.url and page.locator("h1").first.inner_text() == "Block explorer"
    assert TOKEN not in page.content() and page.locator("[data-testid='stException']").count() == 0


def host_status(url: str, path: str, host: str) -> int:
    """The status the server answers a request for ``path`` that names it ``host``."""
    u = urlparse(url)
    with socket.create_connection((u.hostname, u.port), timeout=30) as s:
        s.sendall(f"GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n".encode())
        return int(s.recv(4096).decode("latin-1").split(" ")[1])


def rebinding_websocket_status(url: str) -> str:
    u = urlparse(url)
    key = base64.b64encode(os.urandom(16)).decode()
    lines = [
        "GET /_stcore/stream HTTP/1.1",
        f"Host: rebind.example:{u.port}",
        "Upgrade: websocket",
        "Connection: Upgrade",
        f"Sec-WebSocket-Key: {key}",
        "Sec-WebSocket-Version: 13",
        f"Origin: http://rebind.example:{u.port}",
    ]
    with socket.create_connection((u.hostname, u.port), timeout=30) as s:
        s.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
        return s.recv(4096).decode("latin-1").split("\r\n")[0]


@pytest.mark.parametrize("address", ["127.0.0.1", "0.0.0.0"], ids=["default", "lan"])
def test_a_rebound_host_name_gets_403_on_every_route_and_the_websocket(address, monkeypatch):
    if address == "0.0.0.0":
        monkeypatch.setenv("ARCHSCOPE_TOKEN", TOKEN)
    else:
        monkeypatch.delenv("ARCHSCOPE_TOKEN", raising=False)
    with serve(tempfile.mkdtemp(prefix="archscope-hosts-"), address=address) as url:
        port = urlparse(url).port
        for path in (
            "/",
            "/bench-data/0123456789abcdef/config.json",
            "/_stcore/host-config",
            "/_stcore/health",
        ):
            assert host_status(url, path, f"rebind.example:{port}") == 403, path
        assert " 403 " in rebinding_websocket_status(url)
        assert host_status(url, "/_stcore/health", f"127.0.0.1:{port}") == 200
        assert host_status(url, "/_stcore/health", f"localhost:{port}") == 200


def test_a_token_link_clicked_on_another_site_opens_the_app_on_the_first_click(page, guarded):
    """A course page (another site: localhost, not 127.0.0.1) links to the app with its token; the click
    lands in the app, and a reload stays there."""
    import http.server
    import threading

    link = guarded + "/?token=" + TOKEN

    class Course(http.server.BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802
            body = f'<!doctype html><a id="go" href="{link}">Open Archscope</a>'.encode()
            self.send_response(200)
            self.send_header("Content-Type", "text/html")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    course = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Course)
    threading.Thread(target=course.serve_forever, daemon=True).start()
    try:
        page.goto(f"http://localhost:{course.server_address[1]}/")
        page.click("#go")
        wait_idle(page)
        assert page.locator("h1").first.inner_text() == "Block explorer" and "token" not in page.url
        page.reload()
        wait_idle(page)
        assert page.locator("h1").first.inner_text() == "Block explorer"
    finally:
        course.shutdown()


def test_the_refusal_page_on_a_phone_takes_a_pasted_token(browser, guarded):
    context = browser.new_context(viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True)
    phone = context.new_page()
    try:
        response = phone.goto(guarded + "/runs")
        assert response.status == 403
        size = phone.evaluate("() => parseFloat(getComputedStyle(document.body).fontSize)")
        width = phone.evaluate("() => document.documentElement.scrollWidth")
        assert size >= 16 and width <= 390  # readable, nothing to scroll sideways
        phone.fill("input[name=token]", TOKEN)
        phone.click("button[type=submit]")
        wait_idle(phone)
        assert phone.locator("h1").first.inner_text() == "Runs" and "token" not in phone.url
    finally:
        context.close()


def test_a_visitor_finds_delete_forget_clean_up_and_the_launch_buttons_disabled(page, seeded_dir, tmp_path):
    """The class's link over a week of use: the visitor sees every page, and each control that would change
    or cost the instructor's machine is disabled with its reason."""
    import shutil

    from playwright.sync_api import expect

    week = tmp_path / "week"
    # the store and the runs' folders, without their weights and caches (560 MB): nothing here reads them
    shutil.copytree(
        seeded_dir, week, ignore=shutil.ignore_patterns("*.pt", "*.safetensors", "*.onnx", "cache")
    )
    visitor = "visitor-" + base64.urlsafe_b64encode(os.urandom(12)).decode()
    os.environ["ARCHSCOPE_TOKEN"], os.environ["ARCHSCOPE_VISITOR_TOKEN"] = TOKEN, visitor
    try:
        with serve(week) as url:
            page.goto(f"{url}/runs?token={visitor}")
            wait_idle(page)
            page.get_by_text("Rename, tag or delete a run").click()
            expect(page.get_by_role("button", name="Delete run")).to_be_disabled()
            expect(page.get_by_role("button", name="Save")).to_be_disabled()
            page.get_by_role("button", name="Clean up").click()
            expect(page.get_by_role("button", name="Delete these")).to_be_disabled()
            page.goto(f"{url}/transfer")
            wait_idle(page)
            expect(page.get_by_role("button", name="Start fine-tuning")).to_be_disabled()
            expect(page.get_by_text("You opened a visitor's link")).to_be_visible()
            page.goto(f"{url}/backbones?bb.tab=Deployment")
            wait_idle(page)
            page.get_by_text("Rename or forget a device").click()
            expect(page.get_by_role("button", name="Forget")).to_be_disabled()
            page.goto(f"{url}/backbones?bb.tab=Measure")
            wait_idle(page)
            expect(page.get_by_role("button", name=re.compile(r"^Measure \d+ model"))).to_be_disabled()
            assert page.locator("[data-testid='stException']").count() == 0
    finally:
        os.environ.pop("ARCHSCOPE_TOKEN", None)
        os.environ.pop("ARCHSCOPE_VISITOR_TOKEN", None)


def test_a_token_the_rule_refuses_stops_the_server_at_start_in_words(tmp_path):
    import subprocess
    import sys

    from benchmarks.harness import ROOT, free_port

    env = {**os.environ, "ARCHSCOPE_DATA_DIR": str(tmp_path), "ARCHSCOPE_TOKEN": "has a space 0123456789"}
    cmd = [
        sys.executable,
        "-m",
        "streamlit",
        "run",
        "app.py",
        "--server.port",
        str(free_port()),
        "--server.address",
        "0.0.0.0",
        "--server.headless",
        "true",
        "--browser.gatherUsageStats",
        "false",
    ]
    out = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 2 and "Traceback" not in out.stderr
    assert (
        "Archscope cannot start: ARCHSCOPE_TOKEN must be 16 to 256 printable ASCII characters" in out.stderr
    )
