"""Two roles on the pages (core/web/roles.py): with the class's tokens set, a session without the
instructor's cookie is a visitor. It finds Delete, Forget, Clean up and the launch buttons disabled with
one sentence why, and a forced click changes nothing; without any token (loopback), everyone is the
instructor, as before."""

import shutil

import pytest

from core.runs import record as runs
from core.web import roles
from core.web.guard import TOKEN_ENV
from tests.app._util import open_page, texts

INSTRUCTOR_TOKEN = "instructor-token-0123456789"
VISITOR_TOKEN = "visitor-token-0123456789"


def force(widget):
    """The widget as a hand-made client would treat it: AppTest, like a browser, refuses to press a
    disabled control, but nothing stops a crafted websocket message from saying it was pressed."""
    widget.proto.disabled = False
    return widget


@pytest.fixture()
def as_visitor(monkeypatch):
    monkeypatch.setenv(TOKEN_ENV, INSTRUCTOR_TOKEN)
    monkeypatch.setenv(roles.VISITOR_TOKEN_ENV, VISITOR_TOKEN)  # AppTest carries no cookie: a visitor


def test_a_role_comes_from_the_cookie_and_is_the_least_without_one(monkeypatch):
    from core.web.guard import COOKIE, cookie_value

    monkeypatch.delenv(TOKEN_ENV, raising=False)
    monkeypatch.delenv(roles.VISITOR_TOKEN_ENV, raising=False)
    assert roles.role_of({}) == roles.INSTRUCTOR  # loopback without a token, as before
    monkeypatch.setenv(TOKEN_ENV, INSTRUCTOR_TOKEN)
    monkeypatch.setenv(roles.VISITOR_TOKEN_ENV, VISITOR_TOKEN)
    assert roles.role_of({COOKIE: cookie_value(INSTRUCTOR_TOKEN)}) == roles.INSTRUCTOR
    assert roles.role_of({COOKIE: cookie_value(VISITOR_TOKEN)}) == roles.VISITOR
    assert roles.role_of({}) == roles.VISITOR and roles.role_of({COOKIE: INSTRUCTOR_TOKEN}) == roles.VISITOR
    assert not roles.allowed(roles.VISITOR, "runs.edit") and roles.allowed(roles.VISITOR, "time-blocks")
    assert all(roles.allowed(roles.INSTRUCTOR, a) for a in roles.INSTRUCTOR_ONLY)


def test_the_visitors_link_opens_the_app_with_its_own_cookie():
    import asyncio
    import threading

    from core.web.guard import TokenGuard, cookie_value

    async def app(scope, receive, send):
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})

    guard = TokenGuard(app, INSTRUCTOR_TOKEN, VISITOR_TOKEN)

    def call(query=b"", cookie=""):
        sent = []

        async def send(message):
            sent.append(message)

        scope = {
            "type": "http",
            "path": "/",
            "raw_path": b"/",
            "query_string": query,
            "headers": [(b"cookie", cookie.encode())] if cookie else [],
        }
        thread = threading.Thread(target=lambda: asyncio.run(guard(scope, None, send)))
        thread.start()
        thread.join()
        return sent[0]

    for token in (INSTRUCTOR_TOKEN, VISITOR_TOKEN):
        start = call(f"token={token}".encode())
        assert start["status"] == 303
        assert dict(start["headers"])[b"set-cookie"].startswith(
            f"archscope_token={cookie_value(token)};".encode()
        )
        assert call(cookie=f"archscope_token={cookie_value(token)}")["status"] == 200
    assert call(b"token=someone-elses-token-000")["status"] == 403


def test_a_visitor_finds_the_launch_buttons_disabled_with_why(as_visitor):
    at = open_page("pages/transfer.py")
    start = at.button(key="tr.launch")
    assert start.disabled and "for the instructor" in start.help
    assert any("You opened a visitor's link" in c for c in texts(at, "caption"))
    at = open_page("pages/backbones.py", {"bb.tab": "Measure"})
    assert at.button(key="bb.launch").disabled and not at.exception
    at = open_page("pages/blocks.py", {"blocks.tab": "Deploy"})
    assert at.button(key="dep.start").disabled


def test_without_a_token_everyone_is_the_instructor_as_before(monkeypatch):
    monkeypatch.delenv(TOKEN_ENV, raising=False)
    monkeypatch.delenv(roles.VISITOR_TOKEN_ENV, raising=False)
    at = open_page("pages/transfer.py")
    assert not at.button(key="tr.launch").disabled
    at = open_page("pages/backbones.py", {"bb.tab": "Measure"})
    assert not at.button(key="bb.launch").disabled


def test_a_visitor_cannot_delete_rename_forget_or_clean_up_even_by_a_forced_click(
    seeded_dir, tmp_path, monkeypatch, as_visitor
):
    week = tmp_path / "week"
    # the store and the runs' folders, without their weights and caches (560 MB): nothing here reads them
    shutil.copytree(
        seeded_dir, week, ignore=shutil.ignore_patterns("*.pt", "*.safetensors", "*.onnx", "cache")
    )
    monkeypatch.setenv("ARCHSCOPE_DATA_DIR", str(week))
    before = {r.id: (r.name, r.tags) for r in runs.all_runs()}
    at = open_page("pages/runs.py")
    run_id = at.selectbox(key="runs.manage").value
    at.checkbox(key=f"runs.sure.{run_id}").check().run()
    delete = at.button(key=f"runs.delete.{run_id}")
    assert delete.disabled and "for the instructor" in delete.help
    force(delete).click().run()  # as a crafted client would send it: nothing happens whatever was sent
    assert {r.id: (r.name, r.tags) for r in runs.all_runs()} == before and (
        week / "runs" / str(run_id)
    ).is_dir()
    clean = at.button(key="usage.clean")
    assert clean.disabled
    before_files = sorted(p.name for p in week.iterdir())
    force(clean).click().run()
    assert sorted(p.name for p in week.iterdir()) == before_files and not at.exception

    from core.deploy import devices

    known = {r["device"]["id"] for r in devices.stored()}
    at = open_page("pages/backbones.py", {"bb.tab": "Deployment"})
    forget = at.button(key="dep.browser.forget")
    assert forget.disabled and "Forgetting a device is for the instructor" in forget.help
    force(forget).click().run()
    assert {r["device"]["id"] for r in devices.stored()} == known and not at.exception


def test_the_action_itself_is_refused_to_a_visitor_whatever_the_control_said(monkeypatch):
    """Behind each control the page checks the role again where the action runs (``refused``), so a control
    that a stale page still shows enabled changes nothing either."""
    from streamlit.testing.v1 import AppTest

    def script():
        import streamlit as st

        from pages._widgets import refused

        st.text(f"refused={refused('runs.edit')}")

    monkeypatch.setenv(TOKEN_ENV, INSTRUCTOR_TOKEN)
    monkeypatch.setenv(roles.VISITOR_TOKEN_ENV, VISITOR_TOKEN)
    at = AppTest.from_function(script, default_timeout=60).run()
    assert at.text[0].value == "refused=True" and "for the instructor" in at.error[0].value
    monkeypatch.delenv(TOKEN_ENV)
    monkeypatch.delenv(roles.VISITOR_TOKEN_ENV)
    at = AppTest.from_function(script, default_timeout=60).run()
    assert at.text[0].value == "refused=False" and not at.error
