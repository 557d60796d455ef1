"""Logging, configured once by the app (LOG_LEVEL, LOG_FORMAT), with a request id on every line of a request.

create_app calls `configure_logging` before anything logs, so every process that builds the app (the web
servers, `flask --app storefront worker`, `reconcile`, `db upgrade`) writes the same lines: a timestamp, the
level, the process id, the logger, the request id ("-" outside a request) and the message; as one JSON object a
line with LOG_FORMAT=json (the default in production). migrations/env.py leaves a configured root logger alone.
"""

import logging
import re
import sys
import time
import uuid

from flask import g, has_request_context, request

TEXT_FORMAT = "%(asctime)s %(levelname)s [%(process)d] %(name)s [%(request_id)s] %(message)s"
JSON_FIELDS = ("asctime", "levelname", "process", "name", "request_id", "message")
JSON_RENAMED = {"asctime": "time", "levelname": "level", "name": "logger", "process": "pid"}
# An incoming X-Request-Id is kept only if it is a short plain token (a proxy's or a load balancer's id):
# anything else could forge log lines or carry a payload, and gets an id of our own.
SANE_REQUEST_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,127}")
# Probes and scrapes come every few seconds: their access lines are DEBUG, not INFO.
QUIET_PATHS = frozenset({"/healthz", "/readyz", "/metrics"})

access_log = logging.getLogger("storefront.access")


class RequestIdFilter(logging.Filter):
    """Gives every record a `request_id`: the current request's, or "-"."""

    def filter(self, record):
        if not hasattr(record, "request_id"):
            record.request_id = g.get("request_id", "-") if has_request_context() else "-"
        return True


class StderrHandler(logging.StreamHandler):
    """Writes to whatever sys.stderr is when a line is logged (a redirected stream, a test's capture)."""

    @property
    def stream(self):
        return sys.stderr

    @stream.setter
    def stream(self, _value):
        pass


def formatter(kind):
    """The formatter LOG_FORMAT names: `text` (one line, for a terminal) or `json` (one object a line)."""
    if kind == "json":
        from pythonjsonlogger.json import JsonFormatter

        return JsonFormatter(
            " ".join(f"%({field})s" for field in JSON_FIELDS), rename_fields=JSON_RENAMED, timestamp=False
        )
    if kind == "text":
        return logging.Formatter(TEXT_FORMAT)
    raise RuntimeError(f"LOG_FORMAT must be json or text, not {kind!r}")


def configure_logging(config):
    """One handler on the root logger (stderr) at LOG_LEVEL; calling it again replaces it, not adds one.

    Handlers someone else put on the root logger (pytest's caplog, a test's recorder) are left in place.
    """
    root = logging.getLogger()
    for handler in [h for h in root.handlers if getattr(h, "storefront", False)]:
        root.removeHandler(handler)
    handler = StderrHandler()
    handler.storefront = True
    handler.setFormatter(formatter(config["LOG_FORMAT"]))
    handler.addFilter(RequestIdFilter())
    root.addHandler(handler)
    root.setLevel(config["LOG_LEVEL"])
    # Stripe's SDK logs every request at INFO: the store logs what it did with them instead.
    logging.getLogger("stripe").setLevel(logging.WARNING)


def request_id_from(header):
    """The incoming id if it is a sane token, else a new one."""
    if header and SANE_REQUEST_ID.fullmatch(header):
        return header
    return uuid.uuid4().hex


def install_request_logging(app):
    """A request id (X-Request-Id in and out) and, with ACCESS_LOG, one access line per request."""
    app.before_request(_start_request)
    if app.config["ACCESS_LOG"]:
        app.after_request(_log_access)
    app.after_request(_return_request_id)


def _start_request():
    g.request_id = request_id_from(request.headers.get("X-Request-Id"))
    g.request_started = time.perf_counter()


def _return_request_id(response):
    if "request_id" in g:
        response.headers["X-Request-Id"] = g.request_id
    return response


def request_seconds():
    """Seconds since this request began (0 if it never reached the app's before_request)."""
    started = g.get("request_started")
    return time.perf_counter() - started if started is not None else 0.0


def _log_access(response):
    duration_ms = round(request_seconds() * 1000, 1)
    level = logging.DEBUG if request.path in QUIET_PATHS else logging.INFO
    access_log.log(
        level,
        "%s %s %s %.1fms",
        request.method,
        request.path,
        response.status_code,
        duration_ms,
        extra={
            "method": request.method,
            "path": request.path,
            "status": response.status_code,
            "duration_ms": duration_ms,
            "remote_addr": request.remote_addr,
        },
    )
    return response
