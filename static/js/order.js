/* Order status: "processing" until the server knows the outcome, then paid or failed, pushed live.
 * It says what was bought, when, how it was paid and what happens next. Returning from a Stripe
 * redirect (payment_intent_client_secret, redirect_status in the URL), it asks Stripe.js at once,
 * so a failed redirect does not show "processing" until the webhook arrives.
 */
(function () {
  "use strict";

  const section = document.getElementById("order");
  const orderId = Number(section.dataset.orderId);
  const q = function (id) { return document.getElementById(id); };
  const el = {
    title: q("order-title"), status: q("order-status"), detail: q("order-detail"), next: q("order-next"),
    facts: q("order-facts"), date: q("order-date"), method: q("order-payment-method"), lines: q("order-lines"),
    summary: q("order-summary"), amount: q("order-amount"), actions: q("order-actions"),
  };
  let redirectFailure = null; // our words for a redirect that failed (words.js), until the server agrees
  let bankWaits = false; // the PaymentIntent waits for the shopper's bank confirmation (3-D Secure)
  let inspected = false;

  const STATUS = {
    awaiting_payment: "Payment processing…",
    paid: "Paid",
    payment_failed: "Payment failed — your cart is back",
    needs_review: "Payment received — we're checking this order",
    refunded: "Refunded",
    partially_refunded: "Partly refunded",
    bank_confirmation: "Waiting for your bank's confirmation",
  };

  /* The state the shopper is in, which is finer than the order's status (a partial refund, the bank waiting). */
  function shownStatus(order) {
    if (order.status === "paid" && order.amount_refunded > 0) return "partially_refunded";
    if (order.status === "awaiting_payment" && bankWaits && !isDebit(order)) return "bank_confirmation";
    return order.status;
  }

  function needsReviewText(order) {
    const paid = Store.money(order.amount_received, order.currency);
    if (order.amount_received === order.amount) {
      return "We received your payment of " + paid + ", but an item in this order sold out before it arrived. " +
        "A person is checking it: we send the order if it is back in stock, or refund you in full. " +
        "Nothing else is needed from you.";
    }
    return "The amount received (" + paid + ") did not match this order's total (" +
      Store.money(order.amount, order.currency) + "), so a person is checking it. We refund any difference " +
      "automatically; nothing else is needed from you.";
  }

  function isDebit(order) { return order.payment_method && order.payment_method.type === "sepa_debit"; }

  function nextStep(order) {
    switch (shownStatus(order)) {
      case "bank_confirmation":
        return "Your bank asked you to confirm this payment (3-D Secure), and it is waiting for you. " +
          "Go back to the checkout to finish confirming it, or to cancel it. Nothing has been charged yet.";
      case "partially_refunded":
        return "We refunded " + Store.money(order.amount_refunded, order.currency) + " of the " +
          Store.money(order.amount_received || order.amount, order.currency) + " you paid. Refunds usually reach " +
          "your account within 5–10 business days; the rest of your order stands.";
      case "awaiting_payment":
        return isDebit(order)
          ? "Your SEPA Direct Debit is on its way. A bank debit can take several business days to confirm; " +
            "we keep your order and update this page as soon as your bank confirms."
          : "We're waiting for the payment provider to confirm. This usually takes a few seconds; you can keep this page open.";
      case "paid":
        return "Thank you! Your payment was received. We'll pack your order and send it out; keep this page as your receipt.";
      case "payment_failed":
        return "Nothing was charged for this order" + (order.failure_reason ? ": " + order.failure_reason : ".") +
          " Your items are back in your cart — you can pay again with another card or by bank debit.";
      case "needs_review":
        return needsReviewText(order);
      case "refunded":
        return "We refunded " + Store.money(order.amount_refunded || order.amount_received, order.currency) +
          ". Refunds usually reach your account within 5–10 business days.";
      default:
        return "";
    }
  }

  const BRANDS = { visa: "Visa", mastercard: "Mastercard", amex: "American Express", discover: "Discover" };

  function methodText(method) {
    if (!method) return "Not known yet";
    if (method.type === "card") {
      const brand = BRANDS[method.brand] || (method.brand ? method.brand.charAt(0).toUpperCase() + method.brand.slice(1) : "Card");
      return brand + " ending in " + method.last4;
    }
    if (method.type === "sepa_debit") return "SEPA Direct Debit from the account ending in " + method.last4;
    return method.type.replace(/_/g, " ");
  }

  function dateText(iso) {
    const date = new Date(iso);
    if (Number.isNaN(date.getTime())) return "—";
    return new Intl.DateTimeFormat(navigator.language || "en-US", { dateStyle: "long", timeStyle: "short" }).format(date);
  }

  function actions(order) {
    const links = order.status === "payment_failed"
      ? [["/cart", "Back to your cart", "back-to-cart", true], ["/checkout", "Pay another way", "pay-again", false]]
      : order.status === "bank_confirmation"
        ? [["/checkout", "Finish at the checkout", "finish-at-checkout", true]]
        : [["/", "Continue shopping", "continue-shopping", order.status === "paid"]];
    el.actions.replaceChildren.apply(el.actions, links.map(function (spec) {
      const link = document.createElement("a");
      link.href = spec[0];
      link.textContent = spec[1];
      link.dataset.testid = spec[2];
      link.className = "button" + (spec[3] ? " button--primary" : "");
      return link;
    }));
  }

  function render(order) {
    const failedAtStripe = redirectFailure && order.status === "awaiting_payment";
    const status = failedAtStripe ? "payment_failed" : shownStatus(order);
    el.title.textContent = "Order #" + order.id;
    el.status.textContent = failedAtStripe ? "Payment failed" : STATUS[status] || "We're updating this order's status…";
    el.status.dataset.status = status;
    el.detail.textContent = failedAtStripe
      ? redirectFailure
      : "";
    el.detail.hidden = !el.detail.textContent;
    el.next.textContent = failedAtStripe ? "" : nextStep(order);
    el.next.hidden = !el.next.textContent;
    el.date.textContent = dateText(order.created_at);
    el.method.textContent = methodText(order.payment_method);
    el.facts.hidden = false;
    Store.renderLines(el.lines, order.items, order.currency, "order-line-");
    el.lines.hidden = order.items.length === 0;
    el.amount.textContent = Store.money(order.amount, order.currency);
    el.summary.hidden = false;
    actions({ status: status });
  }

  let requests = 0;

  async function load() {
    const mine = ++requests;
    const result = await Store.api("GET", "/api/orders/" + orderId);
    if (mine !== requests) return; // a later read is on its way and wins
    if (result.ok) {
      render(result.data);
      if (result.data.status === "awaiting_payment") inspectPayment(result.data);
    } else if (result.status === 404) {
      el.title.textContent = "Order not found";
      el.status.textContent = "We couldn't find this order. It may belong to another browser, or the link is mistyped.";
      el.status.dataset.status = "not_found";
      el.actions.querySelector("a").classList.add("button--primary");
    } else {
      el.status.textContent = Store.errorMessage(result);
      el.status.dataset.status = "error";
    }
  }

  /* Stripe's return from a redirect: read the PaymentIntent with Stripe.js, as Stripe documents. */
  async function readRedirect() {
    const params = new URLSearchParams(location.search);
    const secret = params.get("payment_intent_client_secret");
    if (!secret || typeof Stripe !== "function" || !section.dataset.publishableKey) return;
    let found;
    try {
      found = await Stripe(section.dataset.publishableKey).retrievePaymentIntent(secret);
    } catch (err) {
      return;
    }
    const pi = found && found.paymentIntent;
    if (pi && pi.status === "requires_payment_method") {
      redirectFailure = Words.payment(pi.last_payment_error || {});
      await load();
    }
  }

  /* A card order still awaiting payment: is the bank waiting for the shopper (3-D Secure), or processing?
   * Asked once, with Stripe.js and the cart's client secret, while this order is the one the cart is paying. */
  async function inspectPayment(order) {
    const cart = Store.latestCart();
    if (inspected || isDebit(order) || !cart || cart.order_id !== orderId || typeof Stripe !== "function") return;
    inspected = true;
    const answer = await Store.api("POST", "/api/checkout");
    if (!answer.ok || !answer.data.client_secret) return;
    try {
      const found = await Stripe(answer.data.publishable_key).retrievePaymentIntent(answer.data.client_secret);
      bankWaits = Boolean(found.paymentIntent && found.paymentIntent.status === "requires_action");
    } catch (err) {
      return;
    }
    if (bankWaits) load();
  }

  Store.on("order", function (push) {
    if (push && Number(push.id) === orderId) load();
  });
  Store.on("connect", load);
  load();
  readRedirect();
  Store.start();
})();
