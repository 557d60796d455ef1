"""GET /api/products and the demo catalog."""

from flask import Blueprint, jsonify
from sqlalchemy import select

from ..cart.repository import AVAILABLE
from ..extensions import db
from ..models import Product

bp = Blueprint("catalog", __name__, url_prefix="/api")

DEMO_CATALOG = [
    ("Single-origin coffee beans, 1 kg", 2400),
    ("Ceramic pour-over dripper", 3200),
    ("Gooseneck kettle", 6500),
    ("Burr grinder", 12900),
    ("Paper filters, 100 pack", 700),
    ("Insulated travel mug", 2800),
    ("Digital brew scale", 4500),
    ("Barista apron", 3900),
]


def product_view(product, available):
    """A product as the catalog shows it; `available` is None when its stock is not tracked."""
    return {
        "id": product.id,
        "name": product.name,
        "unit_amount": product.unit_amount,
        "currency": product.currency,
        "available": None if available is None else max(0, available),
    }


def products_with_availability(session, *, active_only):
    """(product, available) pairs in id order, in one statement."""
    query = select(Product, AVAILABLE).order_by(Product.id)
    if active_only:
        query = query.where(Product.active)
    return session.execute(query).all()


def available_of(session, product_id):
    """Units of one product a shopper can still add (None when not tracked), as the catalog counts them."""
    available = session.scalar(select(AVAILABLE).where(Product.id == product_id))
    return None if available is None else max(0, available)


@bp.get("/products")
def list_products():
    rows = products_with_availability(db.session, active_only=True)
    return jsonify([product_view(product, available) for product, available in rows])


def seed_catalog(session, currency):
    """Add the demo products to an empty catalog."""
    if session.execute(select(Product.id).limit(1)).first() is not None:
        return
    session.add_all(Product(name=name, unit_amount=amount, currency=currency) for name, amount in DEMO_CATALOG)
    session.commit()
