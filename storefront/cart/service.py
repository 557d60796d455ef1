"""Cart use cases: read, apply a rule, write the new version if the cart is still the one read, then publish.

Each use case is one unit of work (`shop.uow()`) of Core statements through `cart.repository`; a change
is one read and one version-guarded write. A frozen cart refuses every change, however old its freeze:
releasing an expired freeze asks Stripe, which is the worker's job, never a change's.
"""

from sqlalchemy import bindparam, select
from sqlalchemy.exc import IntegrityError

from ..errors import CheckoutInProgress, NotFound, OutOfStock
from ..models import Order
from . import domain, repository

# A change that finds its cart moved on (another tab's change came first) reads it again this many
# times, then takes the cart's row lock.
OPTIMISTIC_ATTEMPTS = 3


def reserve_cart_id(shop):
    """A new cart id, with no row: the cart is written on its first change."""
    with shop.uow(statements=True) as uow:
        cart_id = repository.reserve_id(uow.conn)
        uow.commit()
    return cart_id


def create_cart(shop, cart_id):
    """Write the reserved cart `cart_id`, empty, with its first snapshot; False if it already exists."""
    try:
        with shop.uow() as uow:
            repository.create(uow.conn, cart_id, shop.currency)
            uow.commit()
    except IntegrityError:  # another tab's first change wrote it a moment ago
        return False
    return True


def discard_unchanged_cart(shop, cart_id):
    """Remove a cart written for a first change that failed, unless something has changed it since."""
    with shop.uow() as uow:
        repository.delete_if_unchanged(uow.conn, cart_id)
        uow.commit()


def empty_view(cart_id, currency):
    """What a cart with no row yet looks like: version 1, nothing in it, no order."""
    return {**repository.CartState(cart_id, 1, "open", currency, None, None, None).view(), "last_order": None}


def read_cart(shop, cart_id):
    """The cart's current view: empty for a reserved cart with no row yet (or one removed as abandoned); a
    frozen one names the order being paid (`order_id`), and every one its latest order (`last_order`, {id,
    status} or None), for the pages' links: a tab opened after a payment links to the order it became."""
    with shop.uow(statements=True) as uow:  # reads only: leaving the block ends it
        try:
            state, last_order = repository.read_with_last_order(uow.conn, cart_id)
        except NotFound:
            return empty_view(cart_id, shop.currency)
        view = {**state.view(), "last_order": last_order}
        if view["status"] == "frozen":
            view["order_id"] = uow.conn.execute(
                _AWAITING_ORDER,
                {"pi": view["payment"] and view["payment"]["payment_intent_id"], "version": view["version"]},
            ).scalar()
    return view


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
    """Read, apply the rule, write if the cart is still the version read; a cart that keeps changing under
    the change (many tabs at once) is then locked, so the change waits its turn instead of racing again."""
    for _ in range(OPTIMISTIC_ATTEMPTS):
        view = _attempt(shop, cart_id, product_id, rule, lock=False)
        if view is not None:
            return view
    return _attempt(shop, cart_id, product_id, rule, lock=True)


def _ensure_editable(state):
    """A frozen cart refuses every change; the refusal carries the cart, so the page shows it as it is."""
    try:
        domain.ensure_editable(state.status)
    except CheckoutInProgress as err:
        err.extra = {**err.extra, "cart": state.view()}
        raise


def _check_offer(state, product, product_id, after):
    """A product withdrawn from sale can only leave a cart; a line may grow only to the units available."""
    before = state.quantities.get(product_id, 0)
    wanted = after.get(product_id, 0)
    if not product.active and wanted > before:
        raise NotFound(f"No product with id {product_id}.", code="product_not_found")
    if wanted > before:
        try:
            domain.ensure_available(product, wanted)
        except OutOfStock as err:
            err.extra = {**err.extra, "cart": state.view()}
            raise


def _attempt(shop, cart_id, product_id, rule, *, lock):
    """One try: the new cart's view, pushed and synced after the commit; None when another change came first.

    Optimistic (no lock), it is two self-contained statements: the read and the guarded write."""
    with shop.uow(statements=not lock) as uow:
        if lock:
            repository.lock(uow.conn, cart_id)
        state, product = repository.read(uow.conn, cart_id, product_id)
        if product is None:
            raise NotFound(f"No product with id {product_id}.", code="product_not_found")
        _ensure_editable(state)
        after = rule(state.quantities)
        if after == state.quantities:
            return state.view()
        _check_offer(state, product, product_id, after)
        new = repository.write_change(uow.conn, state, after, {product_id: product})
        if new is None:
            return None
        view = new.view()
        uow.after_commit(lambda: shop.publish.cart(view))
        uow.after_commit(lambda: shop.schedule_sync(cart_id))
        uow.commit()
    return view
