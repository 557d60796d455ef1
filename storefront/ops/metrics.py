"""Prometheus metrics at /metrics: the instruments' counts (every process's, under PROMETHEUS_MULTIPROC_DIR) and
the store's own gauges, computed when scraped from the database, which is their truth for every process alike."""

import logging
import os

from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, CollectorRegistry, generate_latest, multiprocess
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from sqlalchemy import func, select
from sqlalchemy.exc import SQLAlchemyError

from ..models import Cart, Order, Product, StockReservation, WebhookEvent, utcnow
from ..payments.sync import LAGGING
from ..webhooks.inbox import ATTENTION_ATTEMPTS
from . import heartbeat
from .health import probe_engine

log = logging.getLogger(__name__)

carts, orders, products = Cart.__table__, Order.__table__, Product.__table__
events, reservations = WebhookEvent.__table__, StockReservation.__table__


def render(app):
    """The exposition text and its content type."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        counted = CollectorRegistry()
        multiprocess.MultiProcessCollector(counted)
    else:
        counted = REGISTRY
    store = CollectorRegistry(auto_describe=False)
    store.register(StoreGauges(app))
    return generate_latest(counted) + generate_latest(store), CONTENT_TYPE_LATEST


class StoreGauges(Collector):
    """The store's state, read from the database at each scrape (on the probes' connection, short timeouts)."""

    def __init__(self, app):
        self._app = app

    def collect(self):
        try:
            with probe_engine(self._app).connect() as conn:
                values = store_values(conn, utcnow())
        except SQLAlchemyError as err:
            log.warning("metrics: the database could not be read: %s", err)
            yield GaugeMetricFamily("storefront_database_up", "1 if the store's gauges could be read", value=0)
            return
        yield GaugeMetricFamily("storefront_database_up", "1 if the store's gauges could be read", value=1)
        for name, value in values.items():
            if value is not None:
                yield GaugeMetricFamily(name, GAUGES[name], value=value)


GAUGES = {
    "storefront_lagging_carts": "Carts whose PaymentIntent does not charge their latest total yet",
    "storefront_inbox_events": "Recorded webhook events not yet processed",
    "storefront_inbox_due_events": "Recorded webhook events due for processing now",
    "storefront_inbox_oldest_due_event_age_seconds": "Seconds since the oldest event due now was received (0: none)",
    "storefront_inbox_events_needing_attention": f"Unprocessed webhook events tried {ATTENTION_ATTEMPTS} times or more",
    "storefront_worker_heartbeat_age_seconds": "Seconds since any worker last began a turn (absent: none ever did)",
    "storefront_stock_reserved_units": "Units of tracked products held by frozen carts",
}


def store_values(conn, now):
    """{gauge name: value} of the store's gauges; a value of None is left out (no heartbeat yet)."""
    unprocessed = events.c.due_at.is_not(None)
    due, oldest_due = conn.execute(
        select(func.count(), func.min(events.c.received_at)).where(events.c.due_at <= now)
    ).one()
    return {
        "storefront_lagging_carts": _count(conn, carts, LAGGING),
        "storefront_inbox_events": _count(conn, events, unprocessed),
        "storefront_inbox_due_events": due,
        "storefront_inbox_oldest_due_event_age_seconds": _age(now, oldest_due),
        "storefront_inbox_events_needing_attention": _count(
            conn, events, unprocessed, events.c.attempts >= ATTENTION_ATTEMPTS
        ),
        "storefront_worker_heartbeat_age_seconds": heartbeat.age_seconds(conn, now),
        "storefront_stock_reserved_units": _reserved_units(conn),
    }


def _count(conn, table, *where):
    return conn.execute(select(func.count()).select_from(table).where(*where)).scalar()


def _age(now, then):
    return 0.0 if then is None else max((now - then).total_seconds(), 0.0)


def _reserved_units(conn):
    held = (
        select(func.coalesce(func.sum(reservations.c.quantity), 0))
        .select_from(reservations.join(products, products.c.id == reservations.c.product_id))
        .join(orders, orders.c.id == reservations.c.order_id)
        .join(carts, carts.c.id == orders.c.cart_id)
        .where(carts.c.status == "frozen", products.c.stock.is_not(None))
    )
    return int(conn.execute(held).scalar())


def observe_request(request, status, seconds):
    """Count one answered request under its route (the URL rule, so ids in paths make no new series)."""
    from .instruments import HTTP_REQUESTS, HTTP_SECONDS

    route = request.url_rule.rule if request.url_rule is not None else "unmatched"
    HTTP_REQUESTS.labels(request.method, route, str(status)).inc()
    HTTP_SECONDS.labels(request.method, route).observe(seconds)
