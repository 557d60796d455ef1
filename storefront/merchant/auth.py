"""The gate in front of every /admin path: off (404) without ADMIN_PASSWORD, HTTP Basic (user admin) with it."""

import hmac

from flask import current_app, jsonify, request
from werkzeug.exceptions import NotFound

from ..errors import error_body

ADMIN_USER = "admin"
REALM = 'Basic realm="Store admin", charset="UTF-8"'


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
    if credentials_match(request.authorization, password):
        return None
    body = error_body("unauthorized", "The merchant pages need the admin user and password.")
    answer = (
        jsonify(body)
        if request.path.startswith("/admin/api/")
        else current_app.response_class("The merchant pages need the admin user and password.\n", mimetype="text/plain")
    )
    answer.status_code = 401
    answer.headers["WWW-Authenticate"] = REALM
    return answer
