"""Sample the server with py-spy (if installed) during a phase, and say where its CPU time went."""

import asyncio
import os
import re
import shutil
import sys
from collections import Counter
from pathlib import Path

SAMPLES_PER_SECOND = 100
FRAME = re.compile(r"^(?P<func>.*) \((?P<file>[^:()]+)(?::\d+)?\)$")
# First match wins, walking from the innermost frame outwards: time in the standard library (a socket
# send, a json.dumps) counts for the library that called it.
CATEGORIES = [
    ("sqlalchemy", "SQLAlchemy"),
    ("psycopg", "psycopg"),
    ("flask_socketio", "Socket.IO"),
    ("socketio", "Socket.IO"),
    ("engineio", "Engine.IO"),
    ("eventlet", "eventlet (hub, green I/O, wsgi)"),
    ("stripe", "Stripe SDK"),
    ("urllib3", "requests/urllib3"),
    ("requests", "requests/urllib3"),
    ("flask_limiter", "rate limiter"),
    ("limits", "rate limiter"),
    ("redis", "Redis client"),
    ("werkzeug", "Flask/Werkzeug"),
    ("flask", "Flask/Werkzeug"),
    ("jinja2", "Flask/Werkzeug"),
    ("storefront", "storefront code"),
    ("bench", "baseline server code"),
]


def find_py_spy():
    """The py-spy executable: $BENCH_PY_SPY, next to this Python, or on PATH; None if absent."""
    for candidate in (
        os.environ.get("BENCH_PY_SPY"),
        str(Path(sys.executable).with_name("py-spy")),
        shutil.which("py-spy"),
    ):
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    return None


async def record(py_spy, pid, seconds, output):
    """Sample `pid` for `seconds` into a collapsed-stack file; False if py-spy could not attach."""
    process = await asyncio.create_subprocess_exec(
        py_spy,
        "record",
        "--pid",
        str(pid),
        "--duration",
        str(max(1, int(seconds))),
        "--rate",
        str(SAMPLES_PER_SECOND),
        "--format",
        "raw",
        "--output",
        str(output),
        "--nonblocking",
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
    )
    return await process.wait() == 0 and Path(output).exists()


def category(frames):
    for frame in reversed(frames):
        match = FRAME.match(frame)
        path = match.group("file") if match else frame
        for marker, name in CATEGORIES:
            if f"/{marker}/" in path or path.startswith(f"{marker}/"):
                return name
    return "Python stdlib"


def storefront_function(frame):
    match = FRAME.match(frame)
    if not match or "storefront/" not in match.group("file"):
        return None
    module = match.group("file").split("storefront/", 1)[1].removesuffix(".py").replace("/", ".")
    return f"{module}.{match.group('func')}"


def summarize(path, seconds):
    """{busy: share of one core, self: [(category, share)], storefront: [(function, share)]} from a raw file."""
    by_category, inclusive, total = Counter(), Counter(), 0
    for line in Path(path).read_text(errors="replace").splitlines():
        stack, _, count = line.rpartition(" ")
        if not count.isdigit():
            continue
        frames, n = stack.split(";"), int(count)
        total += n
        by_category[category(frames)] += n
        for function in {f for f in map(storefront_function, frames) if f}:
            inclusive[function] += n
    if not total:
        return None
    return {
        "busy": total / (SAMPLES_PER_SECOND * seconds),
        "samples": total,
        "self": [(name, n / total) for name, n in by_category.most_common(8)],
        "storefront": [(name, n / total) for name, n in inclusive.most_common(6)],
    }
