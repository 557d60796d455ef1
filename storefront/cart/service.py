"""Cart use cases: load and lock, apply a rule, bump the version, commit, then publish."""

from sqlalchemy import select

from ..errors import CheckoutInProgress, NotFound
from ..models import Cart, CartLine, CartSnapshot, Product
from . import domain


def lock_cart(session, cart_id):
    """The cart row, locked until commit (FOR UPDATE on PostgreSQL; SQLite transactions are IMMEDIATE)."""
    cart = session.execute(
        select(Cart).where(Cart.id == cart_id).with_for_update().execution_options(populate_existing=True)
    ).scalar_one_or_none()
    if cart is None:
        raise NotFound("This cart does not exist.", code="cart_not_found")
    return cart


def lines_of(cart):
    """The cart's lines as domain values, in the order they were added."""
    return [
        domain.Line(line.product_id, line.product.name, line.product.unit_amount, line.quantity)
        for line in cart.lines
    ]


def cart_view(cart):
    """The cart as the API and the `cart` push show it."""
    lines = lines_of(cart)
    payment = None
    if cart.payment_intent_id:
        payment = {"payment_intent_id": cart.payment_intent_id, "amount": cart.pi_amount, "status": cart.pi_status}
    return {
        "id": cart.id,
        "version": cart.version,
        "status": cart.status,
        "currency": cart.currency,
        "items": [line.as_dict() for line in lines],
        "total": domain.total(lines),
        "payment": payment,
    }


def create_cart(shop):
    """A new empty cart with its first snapshot."""
    cart = Cart(version=1, status="open", currency=shop.currency)
    shop.session.add(cart)
    shop.session.flush()
    shop.session.add(CartSnapshot(cart_id=cart.id, version=1, items=[], total=0, currency=cart.currency))
    shop.session.commit()
    return cart


def read_cart(shop, cart_id):
    """The cart's current view."""
    cart = shop.session.get(Cart, cart_id, populate_existing=True)
    if cart is None:
        raise NotFound("This cart does not exist.", code="cart_not_found")
    view = cart_view(cart)
    shop.session.commit()
    return view


def add_item(shop, cart_id, product_id, quantity):
    """Add to a line (creating it)."""
    _product(shop.session, product_id)
    return _change(shop, cart_id, lambda q: domain.added(q, product_id, quantity))


def set_quantity(shop, cart_id, product_id, quantity):
    """Set a line's quantity; 0 removes it."""
    _product(shop.session, product_id)
    return _change(shop, cart_id, lambda q: domain.with_quantity(q, product_id, quantity))


def remove_item(shop, cart_id, product_id):
    """Remove a line (removing an absent line is a no-op that still answers the cart)."""
    _product(shop.session, product_id)
    return _change(shop, cart_id, lambda q: domain.with_quantity(q, product_id, 0))


def _change(shop, cart_id, rule):
    from ..checkout.service import release_expired_freeze

    try:
        return _apply(shop, cart_id, rule)
    except CheckoutInProgress:
        if not release_expired_freeze(shop, cart_id):
            raise
    return _apply(shop, cart_id, rule)


def _apply(shop, cart_id, rule):
    session = shop.session
    try:
        cart = lock_cart(session, cart_id)
        domain.ensure_editable(cart.status)
        before = {line.product_id: line.quantity for line in cart.lines}
        after = rule(before)
        if after == before:
            view = cart_view(cart)
            session.commit()
            return view
        replace_lines(session, cart, after)
        view = cart_view(cart)
        session.commit()
    except Exception:
        session.rollback()
        raise
    shop.publish.cart(view)
    shop.schedule_sync(cart_id)
    return view


def replace_lines(session, cart, quantities):
    """Write new quantities, bump the version and record its snapshot, all in the caller's transaction."""
    existing = {line.product_id: line for line in cart.lines}
    position = max((line.position for line in cart.lines), default=0)
    for product_id, line in existing.items():
        if product_id not in quantities:
            cart.lines.remove(line)
    for product_id, quantity in quantities.items():
        if product_id in existing:
            existing[product_id].quantity = quantity
        else:
            position += 1
            cart.lines.append(CartLine(product_id=product_id, quantity=quantity, position=position))
    session.flush()
    session.expire(cart, ["lines"])
    cart.version += 1
    lines = lines_of(cart)
    session.add(
        CartSnapshot(
            cart_id=cart.id,
            version=cart.version,
            items=[line.as_dict() for line in lines],
            total=domain.total(lines),
            currency=cart.currency,
        )
    )


def _product(session, product_id):
    product = session.get(Product, product_id)
    if product is None:
        raise NotFound(f"No product with id {product_id}.", code="product_not_found")
    return product
