"""Stripe-shaped API errors and the Flask handlers that render them."""

from __future__ import annotations

import logging

from flask import Flask, g, jsonify, request
from werkzeug.exceptions import HTTPException

log = logging.getLogger(__name__)

DOC_URL = "https://stripe.com/docs/error-codes/"


class StripeError(Exception):
    """An error answered as Stripe answers it: `{"error": {...}}` with a status."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        type: str = "invalid_request_error",
        code: str | None = None,
        param: str | None = None,
        extra: dict | None = None,
        headers: dict | None = None,
        before_execution: bool = False,
    ):
        super().__init__(message)
        self.status = status
        self.message = message
        self.type = type
        self.code = code
        self.param = param
        self.extra = extra or {}
        self.headers = headers or {}
        # Stripe saves no idempotent result when a request never began executing.
        self.before_execution = before_execution

    def body(self) -> dict:
        """The JSON body Stripe sends for this error."""
        err: dict = {"message": self.message, "type": self.type}
        if self.code:
            err["code"] = self.code
            err["doc_url"] = DOC_URL + self.code.replace("_", "-")
        if self.param:
            err["param"] = self.param
        err.update(self.extra)
        # No `request_log_url`: Stripe's is a Dashboard link (a string, never null), and the
        # sandbox has no Dashboard.
        return {"error": err}


def invalid(message: str, param: str | None = None, code: str | None = None) -> StripeError:
    """A 400 for bad input, raised before the endpoint starts executing."""
    return StripeError(400, message, code=code, param=param, before_execution=True)


def missing(param: str) -> StripeError:
    """Stripe's `parameter_missing` error."""
    return invalid(f"Missing required param: {param}.", param, "parameter_missing")


def unknown_param(param: str) -> StripeError:
    """Stripe's `parameter_unknown` error."""
    return invalid(f"Received unknown parameter: {param}", param, "parameter_unknown")


def not_modelled(param: str) -> StripeError:
    """A parameter Stripe knows but the sandbox does not model: refused, never accepted and ignored."""
    return invalid(
        f"Received unknown parameter: {param}. (Stripe takes it, but the Stripe sandbox does not model it, "
        "so it refuses it rather than ignore it.)",
        param,
        "parameter_unknown",
    )


def only_one_of(*params: str) -> StripeError:
    """Stripe's refusal of mutually exclusive parameters sent together."""
    return invalid(f"You may only specify one of these parameters: {', '.join(params)}.", params[0])


def no_such(kind: str, object_id: str, param: str = "id", status: int = 404) -> StripeError:
    """Stripe's `resource_missing` error ("No such payment_intent: 'pi_x'")."""
    return StripeError(
        status,
        f"No such {kind}: '{object_id}'",
        code="resource_missing",
        param=param,
        before_execution=True,
    )


def unexpected_state(message: str, pi: dict, param: str | None = None) -> StripeError:
    """Stripe's `payment_intent_unexpected_state`, with the PaymentIntent embedded."""
    return StripeError(
        400,
        message,
        code="payment_intent_unexpected_state",
        param=param,
        extra={"payment_intent": pi},
    )


def authentication(message: str) -> StripeError:
    """A 401 as Stripe sends for a missing or unusable API key."""
    return StripeError(401, message, before_execution=True)


def api_error(message: str = "An unknown error occurred") -> StripeError:
    """A 500 `api_error`."""
    return StripeError(500, message, type="api_error", before_execution=True)


def render(err: StripeError):
    """Turn a StripeError into a Flask response."""
    g.error = err
    resp = jsonify(err.body())
    resp.status_code = err.status
    for name, value in err.headers.items():
        resp.headers[name] = value
    return resp


def register_error_handlers(app: Flask) -> None:
    """Answer every failure in Stripe's error shape; never a traceback."""
    app.register_error_handler(StripeError, render)

    @app.errorhandler(HTTPException)
    def _http(exc: HTTPException):
        if exc.code == 404 or exc.code == 405:
            msg = (
                f"Unrecognized request URL ({request.method}: {request.path}). "
                "Please see https://stripe.com/docs or we can help at "
                "https://support.stripe.com/."
            )
            return render(StripeError(404, msg, before_execution=True))
        return render(StripeError(exc.code or 400, exc.description or exc.name, before_execution=True))

    @app.errorhandler(Exception)
    def _bug(exc: Exception):
        log.exception("sandbox bug while handling %s %s", request.method, request.path)
        return render(api_error())
