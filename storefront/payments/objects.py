"""What the gateway answers: plain, frozen views of Stripe's objects (this module never talks to Stripe)."""

from dataclasses import dataclass, field


@dataclass(frozen=True)
class PaymentIntent:
    """The part of a Stripe PaymentIntent the storefront reasons about."""

    id: str
    status: str
    amount: int
    amount_received: int
    currency: str
    # Held in memory for the page that needs it, never stored nor logged (hence no repr).
    client_secret: str | None = field(default=None, repr=False)
    metadata: dict = field(default_factory=dict)
    payment_error: str | None = None
    payment_error_message: str | None = None
    latest_charge: str | None = None

    @property
    def cart_ref(self):
        """(cart_id, cart_version) named by the metadata, or None when it names no cart of ours."""
        try:
            return int(self.metadata["cart_id"]), int(self.metadata["cart_version"])
        except (KeyError, TypeError, ValueError):
            return None


def view(pi):
    """A PaymentIntent (the SDK's object or its dict) as the store reasons about it."""
    if not isinstance(pi, dict):
        pi = pi.to_dict()
    error = pi.get("last_payment_error")
    charge = pi.get("latest_charge")
    return PaymentIntent(
        id=pi["id"],
        status=pi["status"],
        amount=pi["amount"],
        amount_received=pi.get("amount_received") or 0,
        currency=pi["currency"],
        client_secret=pi.get("client_secret"),
        metadata=dict(pi.get("metadata") or {}),
        payment_error=(error.get("code") or error.get("message") or "payment_error") if error else None,
        payment_error_message=error.get("message") if error else None,
        latest_charge=charge.get("id") if isinstance(charge, dict) else charge,
    )


@dataclass(frozen=True)
class Charge:
    """The part of a Stripe charge the store reasons about, as Stripe says it is now."""

    id: str
    payment_intent: str | None
    amount_refunded: int
    payment_method: dict | None = None


@dataclass(frozen=True)
class Dispute:
    """A dispute (chargeback) of one of our charges, as Stripe says it is now."""

    id: str
    payment_intent: str | None
    amount: int
    currency: str
    reason: str
    status: str

    @property
    def closed(self):
        """Stripe will not change it any more: won, lost, or a warning that ended."""
        return self.status in ("won", "lost", "warning_closed", "prevented")


@dataclass(frozen=True)
class Refund:
    """A refund as Stripe says it is now (a card refund can fail after it succeeded)."""

    id: str
    payment_intent: str | None
    amount: int
    currency: str
    status: str
    failure_reason: str | None


def id_of(value):
    """The id of an expandable field: the id itself, or the expanded object's."""
    return value if isinstance(value, str) or value is None else value.get("id")


def method_summary(details):
    """A charge's `payment_method_details` as the order page shows it: type, card brand, last 4."""
    kind = (details or {}).get("type")
    if not kind:
        return None
    specific = details.get(kind) or {}
    summary = {"type": kind, "last4": specific.get("last4")}
    if specific.get("brand"):
        summary["brand"] = specific["brand"]
    return summary
