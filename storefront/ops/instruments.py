"""The store's Prometheus counters and histograms, counted where things happen (no storefront import here).

Under gunicorn, with PROMETHEUS_MULTIPROC_DIR set before the process starts, prometheus-client keeps these in
files of that directory, one per process, and /metrics adds up every process's (metrics.py): a worker process
sharing the directory with a web process on its host is counted too.
"""

from prometheus_client import Counter, Histogram

HTTP_REQUESTS = Counter(
    "storefront_http_requests",
    "HTTP requests answered, by route (its URL rule) and status",
    ("method", "route", "status"),
)
HTTP_SECONDS = Histogram(
    "storefront_http_request_duration_seconds", "Time to answer an HTTP request, by route", ["method", "route"]
)
RECONCILE_ERRORS = Counter(
    "storefront_reconcile_errors",
    "Items a reconciliation pass could not settle (Stripe unavailable or refusing, or a failure)",
)
BUDGET_WAIT_SECONDS = Histogram(
    "storefront_stripe_update_budget_wait_seconds",
    "Time a PaymentIntent update waited for its slot of the store-wide update budget",
    buckets=(0.0, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0),
)
