"""The gate in front of every /admin path: off (404) without ADMIN_PASSWORD, HTTP Basic (user admin) with it,
wrong logins throttled per client address and per account (see throttle.py)."""

import hmac
import logging

from flask import current_app, jsonify, request
from werkzeug.exceptions import NotFound

from ..errors import error_body

ADMIN_USER = "admin"
REALM = 'Basic realm="Store admin", charset="UTF-8"'
ASK = "The merchant pages need the admin user and password."

log = logging.getLogger(__name__)


def is_admin_path(path):
    return path == "/admin" or path.startswith("/admin/")


def _same(given, expected):
    return hmac.compare_digest(given.encode("utf-8"), expected.encode("utf-8"))


def credentials_match(authorization, password):
    """True for HTTP Basic credentials of user `admin` with the password (compared in constant time)."""
    if authorization is None or authorization.type != "basic":
        return False
    user, given = authorization.username or "", authorization.password or ""
    # Both compared, always: no early exit telling which one was wrong.
    return _same(user, ADMIN_USER) & _same(given, password)


def admin_gate():
    """Before every request: /admin is absent without a password and asks for it otherwise."""
    if not is_admin_path(request.path):
        return None
    password = current_app.config.get("ADMIN_PASSWORD") or ""
    if not password:
        raise NotFound()
    if request.headers.get("Authorization") is None:  # a browser's first visit: asked, not counted as a guess
        return _answer(401, "unauthorized", ASK)
    # Every admin path is gated here, before routing: an unknown /admin path is no way to guess unthrottled.
    throttle = current_app.extensions["admin_throttle"]
    address, account = request.remote_addr or "unknown", _account(request.authorization)
    refused = throttle.refusal(address, account)
    if refused is not None:
        wait, scope = refused
        log.warning("admin login from %s refused for %d s: too many wrong logins for this %s", address, wait, scope)
        answer = _answer(429, "rate_limited", f"Too many wrong logins; try again in {wait} seconds.")
        answer.headers["Retry-After"] = str(wait)
        return answer
    if credentials_match(request.authorization, password):
        return None
    throttle.count_failure(address, account)
    return _answer(401, "unauthorized", ASK)


def _account(authorization):
    """The account a login tried (bounded: the name is the client's to choose)."""
    user = authorization.username if authorization is not None and authorization.type == "basic" else None
    return "user:" + (user or "")[:64]


def _answer(status, code, message):
    """JSON under /admin/api/, plain text for the pages; a 401 asks for HTTP Basic."""
    answer = (
        jsonify(error_body(code, message))
        if request.path.startswith("/admin/api/")
        else current_app.response_class(message + "\n", mimetype="text/plain")
    )
    answer.status_code = status
    if status == 401:
        answer.headers["WWW-Authenticate"] = REALM
    return answer
