"""The `Stripe-Version` request header: checked as Stripe checks it and echoed in the answer."""

from __future__ import annotations

import datetime
import re

from . import errors
from .state import API_VERSION

# From this release on, Stripe names every version after a plant ("2024-09-30.acacia").
FIRST_NAMED_RELEASE = datetime.date(2024, 9, 30)
_VERSION = re.compile(r"(\d{4})-(\d{2})-(\d{2})(?:\.([a-z]+))?")


def _release_date(version: str) -> datetime.date | None:
    match = _VERSION.fullmatch(version)
    if not match:
        return None
    try:
        return datetime.date(int(match[1]), int(match[2]), int(match[3]))
    except ValueError:
        return None


LATEST = _release_date(API_VERSION)


def requested(header: str | None) -> str:
    """The version to answer with: the header's, or the sandbox's own when none was sent.

    Refuses what Stripe refuses: a malformed or impossible date, a version newer than the
    sandbox's, a named release without its name (or an older one with a name), beta flags.
    """
    if header is None:
        return API_VERSION
    version = header.strip()
    date = _release_date(version)
    named = "." in version
    if date is None or date > LATEST or named != (date >= FIRST_NAMED_RELEASE):
        raise errors.StripeError(400, f"Invalid Stripe API version: {header}", before_execution=True)
    return version
