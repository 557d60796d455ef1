"""Where the app believes it is served: the reverse proxy's forwarded headers, trusted only when configured.

TRUSTED_PROXY_HOPS counts the proxies in front of the app (werkzeug's ProxyFix): each appends to
X-Forwarded-For and sets X-Forwarded-Proto/-Host/-Port, and only the last that many values are believed.
Zero (the default) believes none of them, since any client can send them. The same-origin checks of the
JSON API (guards.py) and of the Socket.IO handshake compare the browser's Origin with what this module
says, so a proxy that sends no X-Forwarded-Proto is refused, and logged, in both places alike.
"""

import logging

from werkzeug.middleware.proxy_fix import ProxyFix
from werkzeug.wsgi import get_host

log = logging.getLogger(__name__)


def trust_proxies(app):
    """Wrap the app in ProxyFix for TRUSTED_PROXY_HOPS proxies; with none configured, leave it as it is.

    Called after socketio.init_app, which installs engine.io's middleware as app.wsgi_app: wrapping it
    here puts ProxyFix outside, so the Socket.IO handshake sees the same scheme, host and address as Flask.
    """
    hops = app.config["TRUSTED_PROXY_HOPS"]
    if hops:
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=hops, x_proto=hops, x_host=hops, x_port=hops)


def served_origin(environ):
    """The origin the app believes it is served at (`https://shop.example`), as the browser would write it."""
    return f"{environ.get('wsgi.url_scheme', 'http')}://{get_host(environ)}"


def log_refused_origin(what, origin, environ, hops):
    """One WARNING naming the Origin seen and the origin the app believed: a misconfigured proxy shows at once."""
    if hops:
        hint = f"trusting {hops} proxy hop(s): does the proxy send X-Forwarded-Proto, -Host and -Port?"
    else:
        hint = "no proxy trusted: behind a proxy, set TRUSTED_PROXY_HOPS"
    believed = served_origin(environ)
    log.warning("refused %s from origin %r: this app believes it is served at %s (%s)", what, origin, believed, hint)


def socket_origin_check(hops):
    """engine.io's origin check (its `cors_allowed_origins` callable): the page's own origin only.

    engine.io's default would also accept X-Forwarded-Proto and -Host as sent, trusted or not; this
    believes only what ProxyFix fixed, as the HTTP API does, and logs a refusal as a WARNING.
    """

    def same_origin(origin, environ):
        if origin == served_origin(environ):
            return True
        if origin:
            log_refused_origin("a Socket.IO connection", origin, environ, hops)
        return False

    return same_origin
