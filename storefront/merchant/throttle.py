"""Failed admin logins, counted per client address and per account in Flask-Limiter's store.

Only a wrong login counts (credentials sent and refused): the right password within the limits costs
nothing, and a browser's first visit, which sends none, is not a guess. Past either limit, that address
or account is refused, even with the right password, until the limit's window passes.
"""

import logging
import math
import time

from limits import parse_many
from limits.strategies import FixedWindowRateLimiter

log = logging.getLogger(__name__)


class LoginThrottle:
    """One app's admin login limits (ADMIN_LOGIN_RATE_LIMIT per address, ADMIN_ACCOUNT_RATE_LIMIT per account)."""

    def __init__(self, storage, config):
        self._window = FixedWindowRateLimiter(storage)
        self._prefix = config.get("RATELIMIT_KEY_PREFIX") or "storefront"
        self._swallow = config.get("RATELIMIT_SWALLOW_ERRORS", True)
        self._scopes = (
            ("address", parse_many(config["ADMIN_LOGIN_RATE_LIMIT"])),
            ("account", parse_many(config["ADMIN_ACCOUNT_RATE_LIMIT"])),
        )

    def refusal(self, address, account):
        """(seconds to wait, "address" or "account") if either is past its limit, else None."""
        now, worst = time.time(), None
        for scope, item, ids in self._counted(address, account):
            if not self._guarded(self._window.test, item, ids, default=True):
                stats = self._guarded(self._window.get_window_stats, item, ids, default=None)
                wait = max(1, math.ceil(stats.reset_time - now)) if stats else 1
                if worst is None or wait > worst[0]:
                    worst = (wait, scope)
        return worst

    def count_failure(self, address, account):
        """One more wrong login for this address and this account."""
        for _, item, ids in self._counted(address, account):
            self._guarded(self._window.hit, item, ids, default=True)

    def _counted(self, address, account):
        for (scope, limits), who in zip(self._scopes, (address, account), strict=True):
            for item in limits:
                yield scope, item, (self._prefix, f"admin_login_{scope}", who)

    def _guarded(self, call, item, ids, default):
        try:
            return call(item, *ids)
        except Exception:
            # As for every other limit (RATELIMIT_SWALLOW_ERRORS): a failing store lets logins be checked
            # without a count, logged, rather than locking the merchant out with it.
            if not self._swallow:
                raise
            log.exception("admin login limit %s not counted: the rate-limit store failed", item)
            return default
