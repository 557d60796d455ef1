/* A checkout page that opens while its cart is frozen by a payment it did not start (another tab, or this
 * page before a reload): say what is happening and offer the way out — finish the bank's confirmation
 * (Stripe.js handleNextAction, for a PaymentIntent that `requires_action`) or cancel the payment.
 */
(function () {
  "use strict";

  const MONEY_MOVING = ["processing", "requires_capture", "succeeded"];
  const TEXTS = {
    requires_action: "Your bank asked you to confirm this payment, and that step was not finished (the page " +
      "was reloaded or closed). Finish it now, or cancel the payment to change your cart.",
    processing: "Your bank is processing this payment, so it can't be cancelled. The order page shows the result.",
    other: "It was started in another tab, or before this page was reloaded. Your cart can't change until it " +
      "finishes, or until you cancel it.",
  };

  let ctx = null;
  let inspectedFor = null;
  let clientSecret = null;

  function bind(context) {
    ctx = context;
    ctx.el.finish.addEventListener("click", finish);
    ctx.el.cancel.addEventListener("click", cancel);
  }

  function render(cart) {
    const state = ctx.state, el = ctx.el;
    const show = cart.status === "frozen" && !state.ownAttempt && !state.paying && !state.leaving;
    el.inFlight.hidden = !show;
    if (!show) {
      inspectedFor = null;
      return;
    }
    el.orderLink.hidden = !cart.order_id;
    if (cart.order_id) el.orderLink.href = "/orders/" + cart.order_id;
    const key = cart.id + ":" + cart.version + ":" + (cart.payment ? cart.payment.payment_intent_id : "-");
    if (inspectedFor !== key) {
      inspectedFor = key;
      inspect();
    }
  }

  /* Ask Stripe (with the publishable key) what the frozen cart's PaymentIntent is waiting for. */
  async function inspect() {
    const el = ctx.el;
    el.finish.hidden = true;
    el.inFlightText.textContent = TEXTS.other;
    const answer = await Store.api("POST", "/api/checkout");
    if (!answer.ok) return;
    let stripe;
    try {
      stripe = ctx.stripeFor(answer.data.publishable_key);
    } catch (err) {
      return; // the cancel button still works without Stripe.js
    }
    clientSecret = answer.data.client_secret;
    const found = await stripe.retrievePaymentIntent(clientSecret);
    const status = found.paymentIntent && found.paymentIntent.status;
    el.finish.hidden = status !== "requires_action";
    el.cancel.hidden = MONEY_MOVING.includes(status);
    el.inFlightText.textContent = TEXTS[status] || TEXTS.other;
  }

  async function finish() {
    const el = ctx.el;
    el.finish.disabled = true;
    const result = await ctx.state.stripe.handleNextAction({ clientSecret: clientSecret });
    el.finish.disabled = false;
    if (result.error) {
      ctx.showMessage(CheckoutReasons.paymentErrorText(result.error), "error", result.error.code,
        { blocks: false, status: "Read the message above.", focus: function () { return el.cancel.hidden ? null : el.cancel; } });
      return;
    }
    const cart = Store.latestCart();
    ctx.state.leaving = true;
    location.assign(cart && cart.order_id ? "/orders/" + cart.order_id : "/checkout");
  }

  async function cancel() {
    const el = ctx.el;
    el.cancel.disabled = true;
    const result = await Store.api("POST", "/api/checkout/cancel");
    el.cancel.disabled = false;
    const data = result.data || {};
    if (result.ok) {
      Store.acceptCart(data);
      ctx.showMessage("The payment was cancelled and nothing was charged. Your cart is open again: change it, " +
        "or pay now.", "info");
      return;
    }
    if (data.cart) Store.acceptCart(data.cart);
    if (data.error && data.error.code === "payment_in_flight") {
      ctx.showMessage("Your bank is already processing this payment, so it can't be cancelled now. " +
        "The order page will show the result.", "warning", "payment_in_flight");
    } else {
      ctx.showMessage(Store.errorMessage(result), "error", data.error && data.error.code,
        { blocks: false, status: "Read the message above." });
    }
  }

  /* While this page's own payment is being confirmed, ask Stripe.js what it waits for: an open 3-D Secure
   * challenge means the bank waits for the shopper (state.bankWaits), not "payment in progress". */
  function watchBank(changed) {
    const state = ctx.state;
    let stopped = false, timer = null;
    async function ask() {
      const found = await state.stripe.retrievePaymentIntent(state.clientSecret).catch(function () { return null; });
      if (stopped) return;
      const waits = Boolean(found && found.paymentIntent && found.paymentIntent.status === "requires_action");
      if (waits !== state.bankWaits) { state.bankWaits = waits; changed(); }
      timer = setTimeout(ask, 1500);
    }
    timer = setTimeout(ask, 500);
    return { stop: function () { stopped = true; clearTimeout(timer); state.bankWaits = false; } };
  }

  window.CheckoutInFlight = { bind: bind, render: render, watchBank: watchBank };
})();
