"""API keys: secret keys for everything, publishable key + client_secret only for Stripe.js calls."""

from __future__ import annotations

import base64
import binascii
import hmac

from flask import g, request

from . import errors

SECRET = "secret"
PUBLISHABLE = "publishable"

NO_KEY = (
    "You did not provide an API key. You need to provide your API key in the Authorization "
    "header, using Bearer auth (e.g. 'Authorization: Bearer YOUR_SECRET_KEY'). See "
    "https://stripe.com/docs/api#authentication for details, or we can help at "
    "https://support.stripe.com/."
)
PUBLISHABLE_NOT_ALLOWED = (
    "This API call cannot be made with a publishable API key. Please use a secret API key. "
    "You can find a list of your API keys at https://dashboard.stripe.com/account/apikeys."
)


def _key_from_header() -> str | None:
    header = request.headers.get("Authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() == "bearer":
        return value.strip() or None
    if scheme.lower() == "basic":
        try:
            user = base64.b64decode(value.strip()).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            return None
        return user.partition(":")[0] or None
    # Stripe.js sends the publishable key as a `key` form field.
    return request.values.get("key") or None


def _masked(key: str) -> str:
    return key[:8] + "*" * max(len(key) - 12, 0) + key[-4:]


def identify(settings) -> None:
    """Set g.api_key / g.key_kind from the request, or raise Stripe's 401."""
    key = _key_from_header()
    if key is None:
        raise errors.authentication(NO_KEY)
    if hmac.compare_digest(key, settings.secret_key):
        g.api_key, g.key_kind = key, SECRET
    elif hmac.compare_digest(key, settings.publishable_key):
        g.api_key, g.key_kind = key, PUBLISHABLE
    else:
        raise errors.authentication(f"Invalid API Key provided: {_masked(key)}")


def is_secret() -> bool:
    return g.get("key_kind") == SECRET


def require_secret() -> None:
    """Refuse a publishable key on an endpoint Stripe.js may not call."""
    if not is_secret():
        raise errors.authentication(PUBLISHABLE_NOT_ALLOWED)


def require_client_secret(pi: dict, client_secret: str | None) -> None:
    """With a publishable key, the PaymentIntent's client_secret must be given and match."""
    if is_secret():
        return
    if not client_secret or not hmac.compare_digest(client_secret, pi["client_secret"]):
        raise errors.authentication(PUBLISHABLE_NOT_ALLOWED)
