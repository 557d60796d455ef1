"""The invariant checker: the storefront's database against Stripe's record and what shoppers were answered.

- I4/I1: every succeeded PaymentIntent naming one of our carts has exactly one settled order, for the version
  its metadata names, whose lines are that version's snapshot and total the amount received; no order is paid
  without a succeeded payment, and no PaymentIntent has two settled orders.
- Refunds: what Stripe refunded on each PaymentIntent is exactly what its orders owe and recorded.
- I3: each cart's history replays: every version is one 2xx answer's change applied to the version before,
  or a paid order's lines leaving the cart; the cart ends at its last version. So a 2xx change is in an
  order or still in the cart, and nothing else is.
- I2: every pushed cart is a committed version; a tab is pushed every version it was answered.
- I5: an order pushed as paid is paid in the end.
- No 5xx but 503 `payment_unavailable` (Stripe failing past the retries) was answered to a shopper.
- Merchant price changes: a version with the same quantities at other prices is the merchant's (repricing).
- Stock: never negative; never more reserved than on hand; every reservation belongs to an order still
  awaiting payment (the rest were sold or released); for products whose stock was set once, what is left
  is exactly that minus the units of the orders that sold it (never sold beyond what was on hand).
"""

from collections import Counter, defaultdict

from sqlalchemy import select

from storefront.cart.domain import with_quantity, without_snapshot
from storefront.checkout.domain import SETTLED_ORDER_STATUSES
from storefront.extensions import db
from storefront.models import Cart, CartLine, CartSnapshot, Order, OrderHistory, Product, StockReservation

DEGRADED = {(503, "payment_unavailable")}


def load_store(app):
    """Carts, snapshots and orders, as plain data."""
    with app.app_context():
        session = db.session
        carts = {c.id: (c.version, c.status) for c in session.execute(select(Cart)).scalars()}
        lines = defaultdict(dict)
        for line in session.execute(select(CartLine)).scalars():
            lines[line.cart_id][line.product_id] = line.quantity
        snapshots = defaultdict(dict)
        for s in session.execute(select(CartSnapshot)).scalars():
            snapshots[s.cart_id][s.version] = ({i["product_id"]: i["quantity"] for i in s.items}, s.total)
        orders = [
            {
                "id": o.id,
                "cart_id": o.cart_id,
                "pi": o.payment_intent_id,
                "version": o.cart_version,
                "status": o.status,
                "amount": o.amount,
                "received": o.amount_received,
                "refund_due": o.refund_due,
                "refunded": o.amount_refunded,
                "lines": {i["product_id"]: i["quantity"] for i in o.items},
                "line_total": sum(i["line_total"] for i in o.items),
            }
            for o in session.execute(select(Order)).scalars()
        ]
        db.session.remove()
    return carts, lines, snapshots, orders


def load_prices(app):
    """{cart_id: {version: {product_id: unit_amount}}} from the snapshots."""
    with app.app_context():
        prices = defaultdict(dict)
        for s in db.session.execute(select(CartSnapshot)).scalars():
            prices[s.cart_id][s.version] = {i["product_id"]: i["unit_amount"] for i in s.items}
        db.session.remove()
    return prices


def load_stock(app):
    """Products' stock, the reservations, and the orders whose payment found the stock gone."""
    with app.app_context():
        session = db.session
        stock = {p.id: p.stock for p in session.execute(select(Product)).scalars()}
        held = [(r.order_id, r.product_id, r.quantity) for r in session.execute(select(StockReservation)).scalars()]
        unsold = set(session.execute(select(OrderHistory.order_id).where(OrderHistory.kind == "stock")).scalars())
        db.session.remove()
    return stock, held, unsold


def check_stock(app, orders, ledger, violations):
    """Stock never negative, reservations only for payments in flight, the ledger products exact."""
    stock, held, unsold = load_stock(app)
    by_id = {o["id"]: o for o in orders}
    reserved = Counter()
    for order_id, product_id, quantity in held:
        reserved[product_id] += quantity
        status = by_id.get(order_id, {}).get("status")
        if status != "awaiting_payment":
            violations.append(f"order {order_id} is {status} but still holds {quantity} of product {product_id}")
    for product_id, units in stock.items():
        if units is not None and (units < 0 or reserved[product_id] > units):
            violations.append(f"product {product_id}: stock {units}, reserved {reserved[product_id]}")
    for product_id, initial in (ledger or {}).items():
        sold = sum(
            o["lines"].get(product_id, 0)
            for o in orders
            if o["status"] in SETTLED_ORDER_STATUSES and o["id"] not in unsold
        )
        if stock[product_id] != initial - sold:
            violations.append(f"product {product_id}: {initial} on hand, {sold} sold, {stock[product_id]} left")


def repriced(history, prices, version):
    """A version with the same quantities at other prices: the merchant changed a price (or it reopened)."""
    return history[version][0] == history[version - 1][0] and prices.get(version) != prices.get(version - 1)


def applied(op, quantities):
    kind, product_id, quantity = op
    if kind == "add":
        return {**quantities, product_id: quantities.get(product_id, 0) + quantity}
    return with_quantity(quantities, product_id, quantity if kind == "set" else 0)


def check_payments(intents, refunds, orders, carts, violations):
    """Stripe's succeeded payments against settled orders, and refunds against what is owed."""
    by_pi = defaultdict(list)
    for order in orders:
        by_pi[order["pi"]].append(order)
    for pi in intents:
        check_payment(pi, by_pi.get(pi["id"], []), carts, violations)
    check_refunds(refunds, by_pi, violations)


def check_payment(pi, orders, carts, violations):
    settled = [o for o in orders if o["status"] in SETTLED_ORDER_STATUSES]
    if pi["status"] != "succeeded":
        if settled:
            violations.append(f"{pi['id']} is {pi['status']} but orders {[o['id'] for o in settled]} are settled")
        return
    meta = pi.get("metadata") or {}
    if not (meta.get("cart_id", "").isdigit() and int(meta["cart_id"]) in carts):
        return
    if len(settled) != 1:
        violations.append(f"{pi['id']} succeeded with {len(settled)} settled orders")
        return
    order = settled[0]
    if order["version"] != int(meta["cart_version"]) or order["received"] != pi["amount_received"]:
        violations.append(
            f"order {order['id']} (v{order['version']}, received {order['received']}) does not "
            f"match {pi['id']} (v{meta['cart_version']}, received {pi['amount_received']})"
        )
    if order["status"] == "paid" and order["line_total"] != pi["amount_received"]:
        violations.append(
            f"paid order {order['id']} lines total {order['line_total']}, received {pi['amount_received']}"
        )
    if order["status"] != "paid" and order["refund_due"] != pi["amount_received"] - order["amount"]:
        violations.append(f"order {order['id']} is {order['status']} owing {order['refund_due']}")


def check_refunds(refunds, by_pi, violations):
    refunded = Counter()
    for refund in refunds:
        refunded[refund["payment_intent"]] += refund["amount"]
    for pi_id in set(by_pi) | set(refunded):
        owed = sum(o["refund_due"] for o in by_pi.get(pi_id, []))
        if refunded[pi_id] != owed:
            violations.append(f"{pi_id}: refunded {refunded[pi_id]} at Stripe, owed {owed}")
        for order in by_pi.get(pi_id, []):
            if order["refunded"] != order["refund_due"]:
                violations.append(f"order {order['id']} records {order['refunded']} refunded of {order['refund_due']}")


def answered_changes(cart_id, traces, history, violations):
    """Which answered 2xx change created each version; an answer matching no version is a violation."""
    creators = defaultdict(list)
    for op, version, lines in (m for t in traces for m in t.mutations):
        stored = history.get(version, (None,))[0]
        if stored != lines:
            violations.append(f"cart {cart_id}: a 2xx answer shows v{version} as {lines}, stored {stored}")
        elif version > 1 and applied(op, history[version - 1][0]) == lines != history[version - 1][0]:
            creators[version].append(op)
        elif applied(op, lines) != lines:
            violations.append(f"cart {cart_id}: {op} answered v{version} without being applied to it")
    return creators


def leaves(before, order):
    """The cart's lines once a paid order's lines leave it."""
    items = [{"product_id": p, "quantity": q} for p, q in order["lines"].items()]
    return without_snapshot(before, items)


def departure(cart_id, version, history, claims, paid, violations):
    """Whether this version is a paid order's lines leaving the cart: "yes", "maybe" (an answered change that
    changes nothing at this version explains it as well), or "" (an answered change made it)."""
    before, after = history[version - 1][0], history[version][0]
    # A claim that changes `after` again can only be the change that made it (an add, say); one that does
    # not (removing a line that is gone) may have been answered at this version without changing it.
    makers = [op for op in claims if applied(op, after) != after]
    if len(makers) > 1:
        violations.append(f"cart {cart_id} v{version}: claimed by {len(makers)} changes (lost update)")
    if makers:
        return ""
    if any(leaves(before, o) == after for o in paid):
        return "maybe" if claims else "yes"
    if not claims:
        violations.append(f"cart {cart_id} v{version}: {before} -> {after} is no answered change and no payment")
    return ""


def check_history(cart_id, traces, snapshots, orders, final, violations, prices=None):
    """Replay one cart: each version is one answered change or one paid order leaving it."""
    history = snapshots.get(cart_id, {})
    if sorted(history) != list(range(1, len(history) + 1)) or history.get(1, ({}, 0))[0] != {}:
        violations.append(f"cart {cart_id}: snapshots are not versions 1..n from empty")
        return
    creators = answered_changes(cart_id, traces, history, violations)
    mine = [o for o in orders if o["cart_id"] == cart_id]
    paid = [o for o in mine if o["status"] in SETTLED_ORDER_STATUSES]
    for order in mine:
        if (order["lines"], order["amount"]) != history.get(order["version"]):
            violations.append(f"order {order['id']} is not the snapshot of cart {cart_id} v{order['version']}")
    prices = prices or {}
    departures = Counter(
        "reprice"
        if repriced(history, prices, version) and not creators.get(version)
        else departure(cart_id, version, history, creators.get(version, []), paid, violations)
        for version in range(2, len(history) + 1)
    )
    if not departures["yes"] <= len(paid) <= departures["yes"] + departures["maybe"]:
        violations.append(
            f"cart {cart_id}: {len(paid)} settled orders but {departures['yes']} paid snapshots "
            f"left it (history {history}, answered {dict(creators)}, orders {mine})"[:1500]
        )
    if final != history[len(history)][0]:
        violations.append(f"cart {cart_id}: lines {final} are not its last snapshot {history[len(history)][0]}")


def check_shoppers(traces, snapshots, orders, violations):
    """Pushes are committed versions; no paid push for an order that is not paid; no unexpected 5xx."""
    final_status = {o["id"]: o["status"] for o in orders}
    for trace in traces:
        violations.extend(trace.problems)
        history = snapshots.get(trace.cart_id, {})
        for version, lines in trace.pushes:
            if history.get(version, (None,))[0] != lines:
                violations.append(f"cart {trace.cart_id}: pushed v{version} {lines} was never committed")
        for order_id, status in trace.order_pushes:
            if status == "paid" and final_status.get(order_id) not in SETTLED_ORDER_STATUSES:
                violations.append(f"order {order_id} was pushed as paid but ends {final_status.get(order_id)}")
        for (operation, status, code), count in trace.statuses.items():
            if status >= 500 and (status, code) not in DEGRADED:
                violations.append(f"cart {trace.cart_id}: {count}x {status} {code} on {operation}")


def check(app, traces, intents, refunds, ledger=None):
    """All invariants; returns the list of violations (empty when the store kept every promise)."""
    carts, lines, snapshots, orders = load_store(app)
    prices = load_prices(app)
    violations = []
    check_payments(intents, refunds, orders, carts, violations)
    check_stock(app, orders, ledger, violations)
    by_cart = defaultdict(list)
    for trace in traces:
        by_cart[trace.cart_id].append(trace)
    for cart_id in carts:
        check_history(
            cart_id,
            by_cart.get(cart_id, []),
            snapshots,
            orders,
            lines.get(cart_id, {}),
            violations,
            prices.get(cart_id, {}),
        )
    check_shoppers(traces, snapshots, orders, violations)
    return violations, orders
