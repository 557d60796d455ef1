"""Domain errors and the one place that turns them, and HTTP errors, into JSON answers."""

from flask import jsonify, render_template, request
from sqlalchemy.exc import DBAPIError
from werkzeug.exceptions import HTTPException


class ShopError(Exception):
    """An error a shopper or client can act on; carries its HTTP status and a stable code."""

    status = 400
    code = "bad_request"

    def __init__(self, message, *, code=None, extra=None):
        super().__init__(message)
        self.message = message
        self.code = code or self.code
        self.extra = extra or {}


class InvalidInput(ShopError):
    status = 400
    code = "invalid_request"


class NotFound(ShopError):
    status = 404
    code = "not_found"


class Conflict(ShopError):
    status = 409
    code = "conflict"


class CartChanged(Conflict):
    code = "cart_changed"


class CheckoutInProgress(Conflict):
    code = "checkout_in_progress"


class PaymentInFlight(Conflict):
    code = "payment_in_flight"


class StoreUnavailable(ShopError):
    """The database failed (an outage, a killed connection): nothing was half-applied; try again."""

    status = 503
    code = "store_unavailable"


class OutOfStock(Conflict):
    """More units asked for than a product has available; `extra` names the product and what is left."""

    code = "out_of_stock"


class PaymentUnavailable(ShopError):
    status = 503
    code = "payment_unavailable"


def error_body(code, message, **extra):
    return {"error": {"code": code, "message": message}, **extra}


def register_error_handlers(app):
    """Answer every error with JSON on API routes: bad input never becomes a 500."""

    @app.errorhandler(ShopError)
    def _shop_error(err):
        return jsonify(error_body(err.code, err.message, **err.extra)), err.status

    @app.errorhandler(HTTPException)
    def _http_error(err):
        if not _wants_json():
            return _page(err.code, err.name), err.code
        default = (err.name or "error").lower().replace(" ", "_")
        code = {413: "payload_too_large", 429: "rate_limited"}.get(err.code, default)
        return jsonify(error_body(code, err.description or err.name)), err.code

    @app.errorhandler(DBAPIError)
    def _database_failed(err):
        # An outage or a killed connection: the transaction was rolled back, so trying again is safe.
        app.logger.warning("database error on %s %s: %s", request.method, request.path, err)
        return jsonify(error_body(StoreUnavailable.code, "The store could not save this; please try again.")), 503

    @app.errorhandler(Exception)
    def _unexpected(err):
        app.logger.exception("unhandled error on %s %s", request.method, request.path)
        if not _wants_json():
            return _page(500, "Something went wrong"), 500
        return jsonify(error_body("internal_error", "Something went wrong on our side.")), 500


def _page(status, title):
    """The store's own error page (a shopper who mistyped a URL still sees the shop, not a bare server page)."""
    try:
        return render_template("errors/page.html", status=status, title=title)
    except Exception:  # noqa: BLE001 - an error page must not fail in turn
        return f"<!doctype html><title>{status}</title><h1>{status} {title}</h1>"


def _wants_json():
    return request.path.startswith(("/api/", "/webhooks/", "/admin/api/")) or request.is_json
