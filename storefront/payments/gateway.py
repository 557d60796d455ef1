"""The only module that talks to Stripe: one shared client, meaningful idempotency keys, typed errors."""

import logging
from contextlib import contextmanager

import requests
import stripe
from requests.adapters import HTTPAdapter

from .objects import Charge, Dispute, Refund, id_of, method_summary, view

log = logging.getLogger(__name__)

# The Stripe API version every request is made in, and that the webhook endpoint is created in: the one
# this SDK release was generated for (stripe.api_version), so its objects have the shapes the SDK expects.
# Pinned here so that upgrading the SDK, not a change in the account's default, changes what Stripe sends.
API_VERSION = stripe.api_version


class PaymentError(Exception):
    """Stripe could not do what was asked."""


class GatewayUnavailable(PaymentError):
    """Stripe did not answer usefully (timeout, connection, rate limit, 5xx); trying later may work."""


class PaymentIntentMissing(PaymentError):
    """Stripe does not know this PaymentIntent (another account's, or made up)."""


class AmountLocked(PaymentError):
    """The PaymentIntent can no longer change: it is being paid, or was paid or cancelled."""

    def __init__(self, message, payment_intent):
        super().__init__(message)
        self.payment_intent = payment_intent


class AlreadyRefunded(PaymentError):
    """The payment was refunded in full already: nothing is left to give back."""


class PaymentRefused(PaymentError):
    """Stripe refused the request as made (an amount below its minimum, a currency it does not take)."""


class IdempotencyConflict(PaymentError):
    """The same idempotency key was used with other parameters: the state moved on meanwhile."""


class InvalidSignature(PaymentError):
    """A webhook whose Stripe-Signature does not verify."""


@contextmanager
def _typed_errors():
    """Stripe's exceptions as ours: unavailable (trying later may work) or refused."""
    try:
        yield
    except (stripe.APIConnectionError, stripe.RateLimitError, stripe.APIError) as err:
        raise GatewayUnavailable(str(err)) from err
    except stripe.StripeError as err:
        raise PaymentError(err.user_message or str(err)) from err


class StripeGateway:
    """PaymentIntents, refunds and webhook verification through one `stripe.StripeClient`."""

    def __init__(self, secret_key, *, store_id, api_base=None, timeout=10.0, max_retries=2, pool_size=64):
        # In every idempotency key and every PaymentIntent's metadata: two databases sharing one Stripe
        # account (staging beside development, a reset database) both have a cart 1.
        self.store_id = store_id
        session = requests.Session()
        adapter = HTTPAdapter(pool_connections=4, pool_maxsize=pool_size)
        session.mount("http://", adapter)
        session.mount("https://", adapter)
        self._client = stripe.StripeClient(
            secret_key,
            base_addresses={"api": api_base} if api_base else None,
            http_client=stripe.RequestsClient(session=session, timeout=timeout),
            max_network_retries=max_retries,
            stripe_version=API_VERSION,
        )

    def _metadata(self, cart_id, version):
        return {"store_id": self.store_id, "cart_id": str(cart_id), "cart_version": str(version)}

    def _key(self, *parts):
        return "-".join(["store", self.store_id, *map(str, parts)])

    def create_payment_intent(self, *, cart_id, version, amount, currency, attempt):
        """A PaymentIntent for one checkout attempt; asking again with the same attempt finds the same one."""
        params = {
            "amount": amount,
            "currency": currency,
            "automatic_payment_methods": {"enabled": True},
            "metadata": {**self._metadata(cart_id, version), "checkout_attempt": attempt},
        }
        key = self._key("attempt", attempt)
        return self._call(self._client.v1.payment_intents.create, params, options={"idempotency_key": key})

    def set_amount(self, pi_id, *, cart_id, version, amount):
        """Make the PaymentIntent charge exactly one cart version: amount and metadata in one update."""
        params = {"amount": amount, "metadata": self._metadata(cart_id, version)}
        key = self._key(pi_id, "cart", cart_id, f"v{version}")
        return self._call(self._client.v1.payment_intents.update, pi_id, params, options={"idempotency_key": key})

    def cancel(self, pi_id):
        """Cancel a PaymentIntent so that no money can move on it any more (AmountLocked if it already moves).

        No key of ours: Stripe keeps a refused cancel's answer for a day and would replay it to a later cancel
        of the same PaymentIntent after its state changed. The SDK's own key covers its retries of this call.
        """
        return self._call(self._client.v1.payment_intents.cancel, pi_id)

    def retrieve(self, pi_id):
        """The PaymentIntent's current state, whatever order its events arrived in."""
        return self._call(self._client.v1.payment_intents.retrieve, pi_id)

    def retrieve_charge(self, charge_id):
        """A charge as Stripe holds it now (its PaymentIntent, refunds, how it was paid); None if Stripe has none."""
        charge = self._read(self._client.v1.charges.retrieve, charge_id)
        if charge is None:
            return None
        pi = charge.get("payment_intent")
        return Charge(
            id=charge["id"],
            payment_intent=pi if isinstance(pi, str) else (pi or {}).get("id"),
            amount_refunded=charge.get("amount_refunded") or 0,
            payment_method=method_summary(charge.get("payment_method_details")),
        )

    def retrieve_dispute(self, dispute_id):
        """A dispute as Stripe holds it now; None if Stripe has none by that id."""
        found = self._read(self._client.v1.disputes.retrieve, dispute_id)
        if found is None:
            return None
        return Dispute(
            id=found["id"],
            payment_intent=id_of(found.get("payment_intent")),
            amount=found["amount"],
            currency=found["currency"],
            reason=found.get("reason") or "unknown",
            status=found["status"],
        )

    def retrieve_refund(self, refund_id):
        """A refund as Stripe holds it now; None if Stripe has none by that id."""
        found = self._read(self._client.v1.refunds.retrieve, refund_id)
        if found is None:
            return None
        return Refund(
            id=found["id"],
            payment_intent=id_of(found.get("payment_intent")),
            amount=found["amount"],
            currency=found["currency"],
            status=found.get("status") or "unknown",
            failure_reason=found.get("failure_reason"),
        )

    def create_webhook_endpoint(self, url, event_types):
        """A webhook endpoint at this API version, for exactly these event types: (its id, its signing secret)."""
        params = {"url": url, "enabled_events": sorted(event_types), "api_version": API_VERSION}
        with _typed_errors():
            endpoint = self._client.v1.webhook_endpoints.create(params)
        return endpoint["id"], endpoint["secret"]

    def webhook_endpoint_urls(self):
        """The URLs of the account's webhook endpoints (the first hundred)."""
        with _typed_errors():
            page = self._client.v1.webhook_endpoints.list(params={"limit": 100})
        return [endpoint["url"] for endpoint in page.data]

    @staticmethod
    def _read(method, object_id):
        """One object as a dict (None when Stripe has no such object), errors typed."""
        try:
            with _typed_errors():
                return method(object_id).to_dict()
        except PaymentError as err:
            if isinstance(err.__cause__, stripe.InvalidRequestError) and err.__cause__.code == "resource_missing":
                return None
            raise

    def payment_method_of(self, pi):
        """How a PaymentIntent was paid ({type, brand?, last4}) from its latest charge; None if unknown."""
        if not pi.latest_charge:
            return None
        try:
            charge = self.retrieve_charge(pi.latest_charge)
        except PaymentError as err:
            log.warning("PaymentIntent %s: charge %s not read (%s)", pi.id, pi.latest_charge, err)
            return None
        return charge.payment_method if charge else None

    def list_events(self, *, types, created_since, undelivered_only, starting_after=None):
        """One page (newest first) of the events of these types since a Unix time: (events as dicts, has_more).

        `undelivered_only` asks only for events some webhook endpoint has not acknowledged yet (still
        retrying, or given up): the ones a store may have missed.
        """
        params = {"types": list(types), "created": {"gte": created_since}, "limit": 100}
        if undelivered_only:
            params["delivery_success"] = False
        if starting_after:
            params["starting_after"] = starting_after
        with _typed_errors():
            page = self._client.v1.events.list(params=params)
        return [event.to_dict() for event in page.data], bool(page.has_more)

    def refund(self, pi_id, amount, *, reason_key):
        """Refund part of a payment (all that is left when `amount` is None) once per reason; the refund id."""
        params = {"payment_intent": pi_id, **({"amount": amount} if amount is not None else {})}
        try:
            key = self._key("refund", reason_key)
            refund = self._client.v1.refunds.create(params, options={"idempotency_key": key})
        except stripe.InvalidRequestError as err:
            if err.code == "charge_already_refunded":
                raise AlreadyRefunded(str(err)) from err
            raise PaymentError(str(err)) from err
        except (stripe.APIConnectionError, stripe.RateLimitError, stripe.APIError) as err:
            raise GatewayUnavailable(str(err)) from err
        except stripe.StripeError as err:
            raise PaymentError(str(err)) from err
        return refund["id"]

    def verify_event(self, payload, signature, secret):
        """A webhook event as a plain dict, only if its signature verifies with our secret."""
        if not secret:
            raise InvalidSignature("no webhook signing secret is configured")
        try:
            event = self._client.construct_event(payload, signature, secret)
        except (stripe.SignatureVerificationError, ValueError) as err:
            raise InvalidSignature(str(err)) from err
        except (AttributeError, TypeError) as err:  # signed, but the body is not a JSON object
            raise InvalidSignature(f"the event is not a JSON object: {err}") from err
        return event.to_dict()

    def _call(self, method, *args, **kwargs):
        try:
            return view(method(*args, **kwargs))
        except stripe.InvalidRequestError as err:
            raise self._invalid_request(err) from err
        except stripe.IdempotencyError as err:
            raise IdempotencyConflict(str(err)) from err
        except (stripe.APIConnectionError, stripe.RateLimitError, stripe.APIError) as err:
            raise GatewayUnavailable(str(err)) from err
        except stripe.StripeError as err:
            raise PaymentError(str(err)) from err

    @staticmethod
    def _invalid_request(err):
        error = (err.json_body or {}).get("error", {})
        if err.code == "payment_intent_unexpected_state" and error.get("payment_intent"):
            return AmountLocked(err.user_message or str(err), view(error["payment_intent"]))
        if err.code == "resource_missing":
            return PaymentIntentMissing(str(err))
        return PaymentRefused(err.user_message or str(err))
