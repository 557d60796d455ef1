"""GET /api/products and the demo catalog."""

from flask import Blueprint, jsonify
from sqlalchemy import insert, select

from ..cart.repository import AVAILABLE
from ..models import Product
from ..unit_of_work import UnitOfWork
from ..wiring import current_shop

bp = Blueprint("catalog", __name__, url_prefix="/api")
products = Product.__table__

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


# Every product column and what a shopper can still add, in id order: one statement for any number.
_WITH_AVAILABILITY = select(*products.c, AVAILABLE.label("available")).order_by(products.c.id)
_ACTIVE_WITH_AVAILABILITY = _WITH_AVAILABILITY.where(products.c.active)


def products_with_availability(conn, *, active_only):
    """Product rows (every column, and `available`: None when not tracked, may be below 0) in id order."""
    return conn.execute(_ACTIVE_WITH_AVAILABILITY if active_only else _WITH_AVAILABILITY).all()


def available_of(conn, product_id):
    """Units of one product a shopper can still add (None when not tracked), as the catalog counts them."""
    available = conn.scalar(select(AVAILABLE).where(products.c.id == product_id))
    return None if available is None else max(0, available)


@bp.get("/products")
def list_products():
    with current_shop().uow() as uow:
        rows = products_with_availability(uow.conn, active_only=True)
        uow.commit()
    return jsonify([product_view(row, row.available) for row in rows])


def seed_catalog(session, currency):
    """Add the demo products to an empty catalog (a startup step, in its own transaction on `session`)."""
    with UnitOfWork(session) as uow:
        if uow.conn.execute(select(products.c.id).limit(1)).first() is None:
            uow.conn.execute(
                insert(products),
                [{"name": name, "unit_amount": amount, "currency": currency} for name, amount in DEMO_CATALOG],
            )
        uow.commit()
