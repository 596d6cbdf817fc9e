"""Two roles for a server shared with a class: the instructor can do everything; a visitor can browse every
page, time blocks, measure in its own browser and name its own device, and nothing that changes or costs
the instructor's machine (delete, rename or tag runs; forget devices; clean up; upload datasets; start
fine-tunes, backbone measurements, deployments, profiles, exports or compound scaling; stop another's
job).

Who is who: the instructor's link carries ``ARCHSCOPE_TOKEN``, a visitor's ``ARCHSCOPE_VISITOR_TOKEN``
(both made at start when the server is open to the network and none is given); the guard
(``core.web.guard.TokenGuard``) trades either for a cookie holding its digest, and a page reads the role
from that cookie (``role_of``). Without any token (the default, loopback) everyone is the instructor, as
before. With tokens, a session without the instructor's cookie is a visitor: the least it can be. The
pages draw the controls a visitor lacks as disabled with ``why_not``, and check ``allowed`` again before
acting, whatever the page sent."""

from __future__ import annotations

import hmac
import os
from typing import Mapping

from core.web.guard import COOKIE, TOKEN_ENV, check_token, cookie_value

VISITOR_TOKEN_ENV = "ARCHSCOPE_VISITOR_TOKEN"
INSTRUCTOR = "instructor"
VISITOR = "visitor"
# each action a visitor lacks, and the one sentence a page shows beside its disabled control
INSTRUCTOR_ONLY = {
    "runs.edit": "Renaming, tagging and deleting runs is for the instructor (their link, not a visitor's).",
    "devices.forget": "Forgetting a device is for the instructor: a visitor names its own device instead.",
    "cleanup": "Cleaning up the data directory is for the instructor.",
    "upload": "Uploading a dataset is for the instructor: a visitor explores the demo set.",
    "finetune": "Starting, resuming or stopping a fine-tune (or an LR test) is for the instructor.",
    "measure": "Measuring backbones on this server is for the instructor; everyone sees its figures.",
    "deploy": "Deploying on this server is for the instructor; measure in this browser instead.",
    "profile": "Profiling a backbone's layers on this server is for the instructor.",
    "scaling": "Counting the compound-scaling networks on this server is for the instructor.",
    "export": "Exporting a run to ONNX on this server is for the instructor.",
    "experiment": "Starting the freezing-depth experiment is for the instructor.",
    "jobs.stop": "Stopping a job on this server is for the instructor.",
}


def visitor_token() -> str:
    """``ARCHSCOPE_VISITOR_TOKEN`` checked by the token rule (a TokenError in words), or ""."""
    token = os.environ.get(VISITOR_TOKEN_ENV, "")
    return check_token(token) if token.strip() else ""


def tokens() -> dict[str, str]:
    """The role each token in effect gives: {token: role}."""
    out = {}
    if visitor := os.environ.get(VISITOR_TOKEN_ENV, "").strip():
        out[visitor] = VISITOR
    if instructor := os.environ.get(TOKEN_ENV, "").strip():
        out[instructor] = INSTRUCTOR
    return out


def role_of(cookies: Mapping[str, str]) -> str:
    """The role of a session whose request carried ``cookies``: the instructor without any token in effect
    or with the instructor's cookie; else a visitor."""
    given = str(cookies.get(COOKIE, "") or "").encode("latin-1", "replace")
    known = tokens()
    if not known:
        return INSTRUCTOR
    for token, role in known.items():
        if role == INSTRUCTOR and hmac.compare_digest(given, cookie_value(token).encode()):
            return INSTRUCTOR
    return VISITOR


def allowed(role: str, action: str) -> bool:
    """Whether ``role`` may do ``action`` (an action that ``INSTRUCTOR_ONLY`` does not list, anyone may)."""
    return role == INSTRUCTOR or action not in INSTRUCTOR_ONLY


def why_not(action: str) -> str:
    return INSTRUCTOR_ONLY.get(action, "")
