"""Page routes: render only. The pages read the cart, products and orders from the JSON API."""

from flask import Blueprint, current_app, render_template

bp = Blueprint("pages", __name__)


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
    return render_template("checkout/index.html", stripe_js_url=current_app.config["STRIPE_JS_URL"])


@bp.get("/orders/<int:order_id>")
def order(order_id):
    """An order's live status; the page itself reads the order (and only the session's own)."""
    return render_template("orders/show.html", order_id=order_id)
