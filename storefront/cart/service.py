"""Cart use cases: read, apply a rule, write the new version if the cart is still the one read, then publish."""

from sqlalchemy import bindparam, select
from sqlalchemy.exc import IntegrityError

from ..database import statement_connection
from ..errors import CheckoutInProgress, NotFound, OutOfStock
from ..models import Cart, CartSnapshot, Order
from . import domain, repository

# A change that finds its cart moved on (another tab's change came first) reads it again this many
# times, then takes the cart's row lock.
OPTIMISTIC_ATTEMPTS = 3


def lock_cart(session, cart_id):
    """The cart row as a model, locked until commit (FOR UPDATE on PostgreSQL; SQLite transactions are IMMEDIATE)."""
    cart = session.execute(
        select(Cart).where(Cart.id == cart_id).with_for_update().execution_options(populate_existing=True)
    ).scalar_one_or_none()
    if cart is None:
        raise NotFound("This cart does not exist.", code="cart_not_found")
    return cart


def cart_view(cart):
    """The cart (a model) as the API and the `cart` push show it."""
    return repository.state_of(cart).view()


def reserve_cart_id(shop):
    """A new cart id, with no row: the cart is written on its first change."""
    try:
        return repository.reserve_id(shop.session.connection())
    finally:
        shop.session.commit()


def create_cart(shop, cart_id):
    """Write the reserved cart `cart_id`, empty, with its first snapshot; False if it already exists."""
    shop.session.add(Cart(id=cart_id, version=1, total=0, status="open", currency=shop.currency))
    shop.session.add(CartSnapshot(cart_id=cart_id, version=1, items=[], total=0, currency=shop.currency))
    try:
        shop.session.commit()
    except IntegrityError:
        shop.session.rollback()  # another tab's first change wrote it a moment ago
        return False
    return True


def discard_unchanged_cart(shop, cart_id):
    """Remove a cart written for a first change that failed, unless something has changed it since."""
    session = shop.session
    session.rollback()
    try:
        unchanged = session.execute(
            select(Cart.id)
            .where(Cart.id == cart_id, Cart.version == 1, Cart.status == "open", Cart.payment_intent_id.is_(None))
            .with_for_update()
        ).scalar_one_or_none()
        if unchanged is not None:
            repository.delete_carts(session.connection(), [cart_id])
        session.commit()
    except Exception:
        session.rollback()
        raise


def empty_view(cart_id, currency):
    """What a cart with no row yet looks like: version 1, nothing in it."""
    return repository.CartState(cart_id, 1, "open", currency, None, None, None).view()


def read_cart(shop, cart_id):
    """The cart's current view: empty for a reserved cart with no row yet (or one removed as abandoned); a
    frozen one names the order being paid (`order_id`), for the pages' link."""
    try:
        conn = statement_connection(shop.session)
        view = repository.read(conn, cart_id)[0].view()
        if view["status"] == "frozen":
            view["order_id"] = conn.execute(
                _AWAITING_ORDER,
                {"pi": view["payment"] and view["payment"]["payment_intent_id"], "version": view["version"]},
            ).scalar()
        return view
    except NotFound:
        return empty_view(cart_id, shop.currency)
    finally:
        shop.session.commit()


_AWAITING_ORDER = select(Order.id).where(
    Order.payment_intent_id == bindparam("pi"), Order.cart_version == bindparam("version")
)


def add_item(shop, cart_id, product_id, quantity):
    """Add to a line (creating it)."""
    return _change(shop, cart_id, product_id, lambda q: domain.added(q, product_id, quantity))


def set_quantity(shop, cart_id, product_id, quantity):
    """Set a line's quantity; 0 removes it."""
    return _change(shop, cart_id, product_id, lambda q: domain.with_quantity(q, product_id, quantity))


def remove_item(shop, cart_id, product_id):
    """Remove a line (removing an absent line is a no-op that still answers the cart)."""
    return _change(shop, cart_id, product_id, lambda q: domain.with_quantity(q, product_id, 0))


def _change(shop, cart_id, product_id, rule):
    from ..checkout.service import release_expired_freeze

    try:
        return _apply(shop, cart_id, product_id, rule)
    except CheckoutInProgress:
        if not release_expired_freeze(shop, cart_id):
            raise
    shop.session.rollback()  # the release committed; its pushes may since have re-read models
    return _apply(shop, cart_id, product_id, rule)


def _apply(shop, cart_id, product_id, rule):
    """Read, apply the rule, write if the cart is still the version read; a cart that keeps changing under
    the change (many tabs at once) is then locked, so the change waits its turn instead of racing again."""
    for _ in range(OPTIMISTIC_ATTEMPTS):
        view = _attempt(shop, cart_id, product_id, rule, lock=False)
        if view is not None:
            return view
    return _attempt(shop, cart_id, product_id, rule, lock=True)


def _check_offer(state, product, product_id, after):
    """A product withdrawn from sale can only leave a cart; a line may grow only to the units available."""
    before = state.quantities.get(product_id, 0)
    wanted = after.get(product_id, 0)
    if not product.active and wanted > before:
        raise NotFound(f"No product with id {product_id}.", code="product_not_found")
    if wanted > before:
        domain.ensure_available(product, wanted)


def _attempt(shop, cart_id, product_id, rule, *, lock):
    """One try: the new cart's view, pushed and synced; None when another change came first."""
    session = shop.session
    try:
        if lock:
            conn = session.connection()
            repository.lock(conn, cart_id)
        else:
            conn = statement_connection(session)
        state, product = repository.read(conn, cart_id, product_id)
        if product is None:
            raise NotFound(f"No product with id {product_id}.", code="product_not_found")
        domain.ensure_editable(state.status)
        after = rule(state.quantities)
        if after == state.quantities:
            session.commit()
            return state.view()
        _check_offer(state, product, product_id, after)
        new = repository.write_change(conn, state, after, {product_id: product})
        session.commit()
    except OutOfStock as err:
        session.rollback()
        err.extra = {**err.extra, "cart": state.view()}
        raise
    except Exception:
        session.rollback()
        raise
    if new is None:
        return None
    view = new.view()
    shop.publish.cart(view)
    shop.schedule_sync(cart_id)
    return view
