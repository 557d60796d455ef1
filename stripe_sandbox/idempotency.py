"""Idempotency-Key handling as Stripe documents it.

- Keys are scoped per API key and apply to POST requests only (GET/DELETE ignore them).
- The same key with the same endpoint and params replays the saved answer, with
  `Idempotent-Replayed: true`; other params give 400 `idempotency_error`.
- A result is saved only once the endpoint began executing: validation errors,
  rate limits, lock timeouts and injected 500s are not saved, so retrying is safe.
- While the first request with a key is still executing, another one with the same key
  gets 409 `idempotency_key_in_use` (the SDK retries 409s).
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass

from . import errors


@dataclass
class Entry:
    fingerprint: tuple
    done: bool = False
    status: int = 0
    body: bytes = b""
    headers: tuple = ()
    created: float = 0.0


class IdempotencyStore:
    """Saved answers by (API key, Idempotency-Key)."""

    def __init__(self):
        self.lock = threading.Lock()
        self.entries: dict[tuple[str, str], Entry] = {}

    def clear(self) -> None:
        with self.lock:
            self.entries.clear()

    def begin(self, api_key: str, key: str, fingerprint: tuple) -> Entry | None:
        """Claim a key; return a finished entry to replay, or None to execute."""
        if len(key) > 255:
            raise errors.invalid("Idempotency-Key must be 255 characters or fewer.", code="idempotency_key_too_long")
        with self.lock:
            entry = self.entries.get((api_key, key))
            if entry is None:
                self.entries[(api_key, key)] = Entry(fingerprint, created=time.time())
                return None
        if entry.fingerprint != fingerprint:
            raise errors.StripeError(
                400,
                "Keys for idempotent requests can only be used with the same parameters they "
                f"were first used with. Try using a key other than '{key}' if you meant to "
                "execute a different request.",
                type="idempotency_error",
                before_execution=True,
            )
        if not entry.done:
            raise errors.StripeError(
                409,
                "There is currently another in-progress request using this Idempotent Key "
                "(that probably means you submitted twice, and the other request is still "
                "going through): " + key + ". Please try again later.",
                code="idempotency_key_in_use",
                before_execution=True,
            )
        return entry

    def finish(self, api_key: str, key: str, status: int, body: bytes, headers) -> None:
        with self.lock:
            entry = self.entries.get((api_key, key))
            if entry is not None:
                entry.done, entry.status, entry.body = True, status, body
                entry.headers = tuple(headers)

    def abandon(self, api_key: str, key: str) -> None:
        """Release a key whose request never began executing."""
        with self.lock:
            entry = self.entries.get((api_key, key))
            if entry is not None and not entry.done:
                del self.entries[(api_key, key)]
