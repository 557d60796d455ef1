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
RELEASE = API_VERSION.split(".")[1]
# The first version of the sandbox's major release. Stripe's docs: "Each major release, such as Acacia,
# includes changes that aren't backward-compatible ... Each monthly release includes only backward-compatible
# changes, and uses the same name as the last major release" (docs.stripe.com/api/versioning), and
# docs.stripe.com/api-versions named 2026-09-30.endive the current version (majors come twice a year: acacia
# 2024-09-30, basil 2025-03-31, clover 2025-09-30).
RELEASE_START = datetime.date(2026, 9, 30)


def _not_modelled(header: str) -> errors.StripeError:
    return errors.StripeError(
        400,
        f"The Stripe sandbox does not model API version {header}: it answers as {API_VERSION} and the other "
        f"monthly versions of the {RELEASE} release ({RELEASE_START.isoformat()}.{RELEASE} on), whose changes are "
        "backward-compatible. An older release behaves differently on Stripe (its own defaults and object "
        "shapes), so the sandbox refuses it rather than answer with today's behaviour.",
        before_execution=True,
    )


def requested(header: str | None) -> str:
    """The version to answer with: the header's, or the sandbox's own when none was sent.

    Refuses what Stripe refuses: a malformed or impossible date, a version newer than the
    sandbox's, a named release without its name (or an older one with a name), beta flags. A real
    version of an older major release is refused too: the sandbox does not model its behaviour.
    """
    if header is None:
        return API_VERSION
    version = header.strip()
    date = _release_date(version)
    named = "." in version
    if date is None or date > LATEST or named != (date >= FIRST_NAMED_RELEASE):
        raise errors.StripeError(400, f"Invalid Stripe API version: {header}", before_execution=True)
    if date < RELEASE_START or version.split(".")[-1] != RELEASE:
        raise _not_modelled(header)
    return version
