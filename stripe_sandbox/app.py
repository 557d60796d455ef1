"""The Flask app: request pipeline (ids, CORS, auth, faults, idempotency) and blueprints."""

from __future__ import annotations

from flask import Flask, Response, g, request

from . import auth, browser, control, disputes, endpoints, errors, events, payment_intents, refunds, versions
from .state import API_VERSION, SandboxState, new_id

CORS_PREFIXES = ("/v1/", "/_sandbox/", "/v3")
CORS_HEADERS = {
    "Access-Control-Allow-Methods": "GET, POST, DELETE, OPTIONS",
    "Access-Control-Allow-Headers": "Authorization, Content-Type, Idempotency-Key, "
    "Stripe-Version, Stripe-Account, X-Requested-With",
    "Access-Control-Expose-Headers": "Request-Id, Idempotent-Replayed, Stripe-Should-Retry, Stripe-Version",
    "Access-Control-Max-Age": "300",
}


def create_app(state: SandboxState | None = None) -> Flask:
    """Build the sandbox app around a SandboxState (a fresh default one if none given)."""
    app = Flask(__name__, static_folder=None)
    app.json.sort_keys = False
    app.config["SANDBOX_STATE"] = state or SandboxState()
    for bp in (payment_intents.bp, refunds.bp, disputes.bp, endpoints.bp, events.bp, control.bp, browser.bp):
        app.register_blueprint(bp)
    errors.register_error_handlers(app)
    app.before_request(_before)
    app.after_request(_after)
    return app


def _state() -> SandboxState:
    from flask import current_app

    return current_app.config["SANDBOX_STATE"]


def _fingerprint() -> tuple:
    return (request.path, tuple(sorted(request.form.items(multi=True))))


def _replay(entry) -> Response:
    resp = Response(entry.body, status=entry.status, headers=list(entry.headers))
    resp.headers["Idempotent-Replayed"] = "true"
    return resp


def _before():
    g.request_id = new_id("req", 14)
    if request.method == "OPTIONS":
        return Response(status=204)
    if not request.path.startswith("/v1/"):
        return None
    state = _state()
    auth.identify(state.settings)
    g.stripe_version = versions.requested(request.headers.get("Stripe-Version"))
    route = request.url_rule.rule if request.url_rule else request.path
    state.faults.check_rate_limit(f"{request.method} {route}")
    state.faults.check_error()
    g.hang = state.faults.pick_hang()
    key = request.headers.get("Idempotency-Key")
    if request.method == "POST" and key:
        entry = state.idempotency.begin(g.api_key, key, _fingerprint())
        if entry is not None:
            return _replay(entry)
        g.idempotency_key = key
    if request.endpoint not in payment_intents.LOCKING_ENDPOINTS:
        state.faults.sleep_latency()  # execution time (writes to one PaymentIntent spend it locked)
    return None


def _save_idempotent(response: Response) -> None:
    key = g.pop("idempotency_key", None)
    if key is None:
        return
    store = _state().idempotency
    err = g.get("error")
    if err is not None and err.before_execution:
        store.abandon(g.api_key, key)
        return
    headers = [(k, v) for k, v in response.headers.items() if k in ("Content-Type", "Stripe-Should-Retry")]
    headers.append(("Original-Request", g.request_id))
    store.finish(g.api_key, key, response.status_code, response.get_data(), headers)


def _after(response: Response) -> Response:
    _save_idempotent(response)
    response.headers["Request-Id"] = g.get("request_id", "")
    # Stripe answers in the version the request asked for (or the account's default).
    response.headers["Stripe-Version"] = g.get("stripe_version", API_VERSION)
    if request.path.startswith(CORS_PREFIXES):
        response.headers["Access-Control-Allow-Origin"] = request.headers.get("Origin", "*")
        response.headers["Vary"] = "Origin"
        response.headers.update(CORS_HEADERS)
    if g.get("hang"):
        _state().faults.hang()  # the answer is computed (and saved) but withheld
    return response
