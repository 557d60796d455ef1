"""GET /api/products and the demo catalog."""

from flask import Blueprint, jsonify
from sqlalchemy import select

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


def product_view(product):
    return {"id": product.id, "name": product.name, "unit_amount": product.unit_amount, "currency": product.currency}


@bp.get("/products")
def list_products():
    products = db.session.execute(select(Product).order_by(Product.id)).scalars()
    return jsonify([product_view(p) for p in products])


def seed_catalog(session, currency):
    """Add the demo products to an empty catalog."""
    if session.execute(select(Product.id).limit(1)).first() is not None:
        return
    session.add_all(Product(name=name, unit_amount=amount, currency=currency) for name, amount in DEMO_CATALOG)
    session.commit()
