"""/healthz (the process is alive), /readyz (it can serve: database, Redis, a worker) and /metrics (Prometheus).

/metrics is served only to a scraper holding METRICS_TOKEN (a bearer token; unset, /metrics is 404): behind a
proxy on the same host every request comes from loopback, so "loopback only" would publish the store's figures
through the proxy, while a token protects them wherever the scraper runs, whatever the proxy forwards.
"""

import hmac

from flask import Blueprint, Response, current_app, jsonify, request

from ..errors import error_body
from ..models import utcnow
from . import health, metrics

bp = Blueprint("ops", __name__)


@bp.get("/healthz")
def healthz():
    """Alive: this process answers HTTP (no database, no Redis: a restart would not fix them)."""
    return jsonify(status="ok")


@bp.get("/readyz")
def readyz():
    """Ready to serve: 200 if every check passes, else 503 with the failed checks named."""
    checks = health.readiness(current_app, utcnow())
    failed = sorted(name for name, check in checks.items() if not check["ok"])
    body = {"status": "unavailable" if failed else "ok", "failed": failed, "checks": checks}
    return jsonify(body), 503 if failed else 200


@bp.get("/metrics")
def metrics_page():
    """The Prometheus exposition, for a bearer of METRICS_TOKEN."""
    token = current_app.config["METRICS_TOKEN"]
    if not token:
        return jsonify(error_body("not_found", "Metrics are off: set METRICS_TOKEN.")), 404
    scheme, _, given = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not hmac.compare_digest(given.strip().encode(), token.encode()):
        answer = jsonify(error_body("unauthorized", "Send Authorization: Bearer <METRICS_TOKEN>."))
        answer.headers["WWW-Authenticate"] = 'Bearer realm="metrics"'
        return answer, 401
    body, content_type = metrics.render(current_app)
    return Response(body, content_type=content_type)


def observe_requests(app):
    """Count every answered request (route, status, duration) for /metrics."""
    from ..logs import request_seconds

    @app.after_request
    def _observe(response):
        metrics.observe_request(request, response.status_code, request_seconds())
        return response
