"""Request guards shared by the JSON routes: JSON bodies only, and no cross-site writes."""

from flask import current_app, request
from flask.json.provider import DefaultJSONProvider

from .errors import InvalidInput, ShopError
from .proxy import log_refused_origin, served_origin

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
SAME_SITE_FETCH = frozenset({"same-origin", "none"})


class CrossSiteRequest(ShopError):
    status = 403
    code = "cross_site_request"


class ShopJSONProvider(DefaultJSONProvider):
    """Flask's JSON, parsing request bodies strictly: UTF-8 only (RFC 8259 between systems), and a body nested
    too deep to parse is invalid JSON (a 400), not a RecursionError (a 500).

    Every `request.get_json()` goes through here, so each JSON route, present or future, is covered.
    """

    def loads(self, s, **kwargs):
        try:
            if isinstance(s, bytes):
                s = s.decode("utf-8")  # json.loads would guess UTF-16 or 32 from the bytes; invalid is a ValueError
            return super().loads(s, **kwargs)
        except RecursionError as err:
            raise ValueError("JSON nested too deep") from err


def json_body():
    """The request's JSON object; anything else is a 400 naming the problem."""
    if not request.is_json:
        raise InvalidInput("Send a JSON body with Content-Type: application/json.", code="invalid_json")
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        raise InvalidInput("The body must be a JSON object (UTF-8, not nested too deep).", code="invalid_json")
    return body


def refuse_cross_site():
    """Before every state-changing API request: a browser saying it comes from another site gets 403.

    Browsers send Origin on cross-origin writes and Sec-Fetch-Site on all fetches; non-browser clients
    send neither and need no token. The session cookie is also SameSite=Lax.
    """
    if request.method in SAFE_METHODS or not request.path.startswith(("/api/", "/admin/api/")):
        return None
    site = request.headers.get("Sec-Fetch-Site")
    origin = request.headers.get("Origin")
    if site is not None and site not in SAME_SITE_FETCH:
        refuse(f"a {request.method} {request.path!r} (Sec-Fetch-Site: {site!r})", origin)
    if origin is not None and origin != served_origin(request.environ):
        refuse(f"a {request.method} {request.path!r}", origin)
    return None


def refuse(what, origin):
    """Log the refusal with what the app believed (a misconfigured proxy shows at once), then answer 403."""
    log_refused_origin(what, origin, request.environ, current_app.config["TRUSTED_PROXY_HOPS"])
    raise CrossSiteRequest("Cross-site requests are not allowed.")
