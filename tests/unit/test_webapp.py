"""What app.py's server adds (core/web/server.py): which addresses need a token, the token that is made
when none is given, the phone link, and the bench's files served by name only."""

import asyncio
import threading

from core.web import server as webapp
from core.web.guard import cookie_value as guard_digest


def test_a_token_is_asked_for_beyond_loopback_and_made_when_none_is_given(monkeypatch):
    monkeypatch.delenv(webapp.TOKEN_ENV, raising=False)
    for address in ("127.0.0.1", "localhost", "::1", "127.0.0.2"):
        assert webapp.is_loopback(address) and webapp.access_token(address) == ""  # the default: no token
    made = webapp.access_token("0.0.0.0")
    assert len(made) >= 20 and webapp.access_token("0.0.0.0") == made  # made once, then kept
    monkeypatch.setenv(webapp.TOKEN_ENV, "chosen-token-0123")
    assert webapp.access_token("127.0.0.1") == "chosen-token-0123" == webapp.access_token("192.168.1.5")
    assert webapp.phone_url("192.168.1.5", 8501, "abc") == "http://192.168.1.5:8501/?token=abc"
    assert webapp.phone_url("0.0.0.0", 8501, "abc").endswith(":8501/?token=abc")
    assert not webapp.is_loopback("") and not webapp.is_loopback(
        "0.0.0.0"
    )  # Streamlit's unset: every interface


def test_the_guard_answers_before_the_app(monkeypatch):
    seen = []

    async def app(scope, receive, send):
        seen.append(scope["path"])
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})

    guard = webapp.TokenGuard(webapp.CrossOriginIsolation(app), "s3cret")

    def call(path, query=b"", cookie=None, kind="http"):
        sent = []

        async def send(message):
            sent.append(message)

        headers = [(b"cookie", cookie.encode())] if cookie else []
        scope = {"type": kind, "path": path, "query_string": query, "headers": headers}
        # a thread of its own: an earlier test in this process may have left an asyncio loop running here
        thread = threading.Thread(target=lambda: asyncio.run(guard(scope, None, send)))
        thread.start()
        thread.join()
        return sent

    assert call("/")[0]["status"] == 403 and seen == []
    assert call("/", cookie="archscope_token=wrong; other=1")[0]["status"] == 403
    assert call("/", cookie="broken\x00cookie;;=")[0]["status"] == 403
    assert call("/_stcore/health")[0]["status"] == 200 and seen == ["/_stcore/health"]
    assert call("/_stcore/stream", kind="websocket") == [{"type": "websocket.close", "code": 1008}]
    start = call("/runs", b"token=s3cret&runs.x=step")[0]
    assert start["status"] == 303 and dict(start["headers"])[b"location"] == b"/runs?runs.x=step"
    assert call("/runs", cookie="archscope_token=s3cret")[0]["status"] == 403  # the cookie holds a digest
    ok = call("/runs", cookie=f"archscope_token={guard_digest('s3cret')}")[0]
    assert ok["status"] == 200 and (b"cross-origin-embedder-policy", b"require-corp") in ok["headers"]
