"""Page routes: render only. The pages read the cart, products and orders from the JSON API."""

from urllib.parse import urlsplit

from flask import Blueprint, current_app, render_template, send_from_directory

bp = Blueprint("pages", __name__)

# Stripe's documented Content-Security-Policy needs for Stripe.js and the Payment Element
# (docs.stripe.com/security/guide#content-security-policy).
STRIPE_SOURCES = {
    "script-src": ("https://js.stripe.com", "https://*.js.stripe.com", "https://maps.googleapis.com"),
    "frame-src": ("https://js.stripe.com", "https://*.js.stripe.com", "https://hooks.stripe.com"),
    "connect-src": ("https://api.stripe.com", "https://maps.googleapis.com"),
}


def page_context():
    """What every page's template needs to reach Stripe.js."""
    config = current_app.config
    return {"stripe_js_url": config["STRIPE_JS_URL"], "publishable_key": config["STRIPE_PUBLISHABLE_KEY"]}


@bp.get("/")
def catalog():
    """The product catalog with add-to-cart buttons."""
    return render_template("catalog/index.html")


@bp.get("/cart")
def cart():
    """The cart with quantities and removal."""
    return render_template("cart/index.html")


@bp.get("/checkout")
def checkout():
    """Lines, total, the amount to be charged and the payment form."""
    return render_template("checkout/index.html", **page_context())


@bp.get("/orders/<int:order_id>")
def order(order_id):
    """An order's live status; the page itself reads the order (and only the session's own)."""
    return render_template("orders/show.html", order_id=order_id, **page_context())


@bp.get("/favicon.ico")
def favicon():
    """The shop's icon (browsers ask for it at this path even without a <link>)."""
    return send_from_directory(current_app.static_folder, "favicon.ico", mimetype="image/vnd.microsoft.icon")


def content_security_policy(config):
    """Scripts, frames and connections only from this store, Stripe's documented origins and the
    configured Stripe.js and API origins (the offline sandbox's, in development)."""
    extra = sorted({_origin(config.get("STRIPE_JS_URL")), _origin(config.get("STRIPE_API_BASE"))} - {None})
    directives = {
        "default-src": ("'self'",),
        "script-src": ("'self'", *STRIPE_SOURCES["script-src"], *extra),
        "frame-src": ("'self'", *STRIPE_SOURCES["frame-src"], *extra),
        "connect-src": ("'self'", *STRIPE_SOURCES["connect-src"], *extra),
        "img-src": ("'self'", "data:"),
        "style-src": ("'self'",),
        "object-src": ("'none'",),
        "base-uri": ("'self'",),
        "form-action": ("'self'",),
        "frame-ancestors": ("'none'",),
    }
    return "; ".join(f"{name} {' '.join(sources)}" for name, sources in directives.items())


def _origin(url):
    parts = urlsplit(url or "")
    return f"{parts.scheme}://{parts.netloc}" if parts.scheme and parts.netloc else None


@bp.after_app_request
def _protect_pages(response):
    """Every HTML answer (pages and error pages) carries the policy; JSON answers need none."""
    if response.mimetype == "text/html":
        response.headers.setdefault("Content-Security-Policy", content_security_policy(current_app.config))
    return response
