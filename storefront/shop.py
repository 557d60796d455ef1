"""The collaborators a use case needs, passed in so rules and services can be tested with fakes."""

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any


@dataclass
class Shop:
    session: Any
    gateway: Any
    publish: Any
    schedule_sync: Callable[[int], None]
    now: Callable[[], datetime]
    freeze_seconds: float = 900.0
    currency: str = "usd"
