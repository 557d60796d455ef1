/* Checkout: what you see is what you pay.
 *
 * Pay names the amount it charges (the amount is shown once); the summary adds the cart total and the
 * amount to be charged, both labelled, only while they differ (the PaymentIntent catching up). Everything
 * is re-rendered on every `cart` push. Pay is enabled only while the page can reach the store, the shown
 * version is the latest, the cart is open, the PaymentIntent's amount equals the total and the Payment
 * Element has fetched that amount (elements.fetchUpdates). A burst of changes keeps Pay disabled once, not on and off: it is
 * enabled again only after the cart has been quiet for a moment. Pay runs the confirm handshake first;
 * only a 200 lets Stripe.js confirm the payment, and the outcome is shown on the order page.
 */
(function () {
  "use strict";

  const SETTLE_MS = 400;
  const q = function (id) { return document.getElementById(id); };
  const el = {
    lines: q("checkout-lines"), empty: q("checkout-empty"), panels: q("checkout-panels"),
    totals: q("checkout-totals"), total: q("checkout-total"), amount: q("checkout-amount"), form: q("payment-form"),
    button: q("pay-button"), status: q("pay-status"), message: q("checkout-message"),
    messageText: q("checkout-message-text"), fix: q("fix-quantity"), paid: q("checkout-paid"),
    paidLink: q("checkout-paid-link"), paidText: q("checkout-paid-text"), summaryTitle: q("summary-title"),
    inFlight: q("payment-in-flight"), inFlightText: q("in-flight-text"), finish: q("finish-authentication"),
    cancel: q("cancel-payment"), orderLink: q("in-flight-order-link"),
  };
  const Reasons = window.CheckoutReasons;
  const Refusals = window.CheckoutRefusals;

  const state = {
    cart: null, baseline: null, // what the page shows, and what it showed when Pay was last ready
    paying: false, ownAttempt: false, leaving: false, bankWaits: false, clientSecret: null,
    stripe: null, publishableKey: null, elements: null, paymentElement: null,
    mountedIntent: null, formReady: false, formError: "",
    fetched: null, fetching: false, // the "PaymentIntent:version:amount" the Payment Element has fetched
    starting: false, startedFor: null,
    changedAt: 0, settleTimer: null, messageCode: null, inspected: null,
    refusal: null, // a refusal that stands: {blocks: Pay waits for a fix, status: the line under Pay}
    lowStock: new Map(), // product id -> units left, from an out_of_stock refusal
  };

  function money(amount) { return Store.money(amount, state.cart.currency); }
  function payKey(cart) { return cart.payment.payment_intent_id + ":" + cart.version + ":" + cart.payment.amount; }

  function render(cart) {
    if (state.cart && state.cart.id === cart.id && state.cart.version !== cart.version) state.changedAt = Date.now();
    if (!state.baseline || state.baseline.id !== cart.id) state.baseline = cart;
    state.cart = cart;
    if (cart.status === "open") state.ownAttempt = false;
    const empty = cart.items.length === 0 && cart.status === "open";
    el.empty.hidden = !empty;
    el.panels.hidden = empty;
    renderPaidOrder(empty);
    if (state.refusal && state.refusal.blocks && cart.version > state.refusal.version) {
      state.lowStock.clear(); // the cart moved on (fixed in another tab): check again at Pay
      showMessage("");
    }
    const marks = window.CheckoutChanges.render(cart);
    state.lowStock.forEach(function (left, id) { marks.set(id, left > 0 ? "only " + left + " left" : "sold out"); });
    // One render writes every total the page shows, so two amounts never disagree on screen.
    Store.renderLines(el.lines, cart.items, cart.currency, "checkout-line-", marks);
    el.total.textContent = money(cart.total);
    // While the PaymentIntent catches up, its old amount is not shown: two amounts never disagree on screen.
    el.amount.textContent = !cart.payment ? "—" : synced(cart) ? money(cart.payment.amount) : "Updating…";
    el.amount.classList.toggle("is-updating", !synced(cart));
    el.totals.hidden = !cart.payment || synced(cart); // the same amount twice more says nothing new
    renderInFlight(cart);
    updatePay();
    ensurePaymentForm(cart);
    fetchAmount(cart);
  }

  /* After a payment this cart is empty: link to the order it became, as every tab of the cart does. */
  function renderPaidOrder(empty) {
    const order = Store.lastOrder();
    el.paid.hidden = !(empty && order);
    if (!order) return;
    el.paidText.textContent = Words.lastOrder(order);
    el.paidLink.href = "/orders/" + order.id;
  }

  function synced(cart) { return Boolean(cart.payment) && cart.payment.amount === cart.total; }

  /* Why Pay must stay disabled right now, or "" when it may be pressed. */
  function payBlocker() {
    const cart = state.cart;
    if (!cart) return "Loading your cart…";
    if (cart.items.length === 0) return "Your cart is empty.";
    if (state.paying) return state.bankWaits ? Words.PAYING.bank : Words.PAYING.paying;
    if (Store.connection() === "down") {
      return navigator.onLine === false
        ? "You're offline. Pay waits until your internet connection is back."
        : "Can't reach the store right now. Pay is paused until the connection is back.";
    }
    if (Store.connection() === "connecting") return "Connecting to the store…";
    if (cart.version !== Store.latestVersion()) return "Showing your latest cart…";
    if (cart.status !== "open") {
      return state.ownAttempt ? "Waiting for the payment result…" : "A payment for this cart is already under way.";
    }
    if (state.formError) return state.formError;
    if (state.refusal && state.refusal.blocks) return state.refusal.status;
    const changed = state.baseline && state.baseline.version !== cart.version;
    const waiting = !synced(cart) || state.fetched !== payKey(cart) || Date.now() - state.changedAt < SETTLE_MS;
    if (changed && waiting) return Reasons.changedReason(state.baseline, cart);
    if (!cart.payment) return "Preparing the payment…";
    if (!synced(cart)) return "Updating the amount to charge…";
    if (!state.elements || state.mountedIntent !== cart.payment.payment_intent_id || !state.formReady) {
      return "Loading the payment form…";
    }
    if (state.fetched !== payKey(cart) || Date.now() - state.changedAt < SETTLE_MS) return "Updating the amount to charge…";
    return "";
  }

  function updatePay() {
    const reason = payBlocker();
    if (!reason) state.baseline = state.cart;
    const cart = state.cart;
    el.button.disabled = Boolean(reason);
    el.button.textContent = cart && cart.items.length ? "Pay " + money(reason ? cart.total : cart.payment.amount) : "Pay";
    // A refusal that stands is never followed by "Ready": the line under Pay says what to do first.
    const standing = !reason && state.refusal ? state.refusal.status : "";
    el.status.textContent = reason || standing || "Ready to pay.";
    el.status.dataset.ready = String(!reason && !standing);
    clearTimeout(state.settleTimer);
    const settling = SETTLE_MS - (Date.now() - state.changedAt);
    if (reason && settling > 0) state.settleTimer = setTimeout(updatePay, settling + 10);
  }

  /* The message next to Pay. A refusal ({status, blocks, focus}) also changes the line under Pay, is brought
   * into view and moves the focus to what needs fixing. */
  function showMessage(text, kind, code, refusal) {
    state.messageCode = text ? code || null : null;
    state.refusal = text && refusal ? refusal : null;
    el.messageText.textContent = text || "";
    el.message.dataset.kind = kind || "error";
    el.message.hidden = !text;
    if (!refusal || !refusal.fix) {
      el.fix.hidden = true;
      el.fix.textContent = "";
    }
    if (state.cart) updatePay();
    if (!text || !refusal) return;
    el.message.scrollIntoView({ block: "nearest" });
    el.button.scrollIntoView({ block: "nearest" });
    const target = refusal.focus && refusal.focus();
    if (target && target.focus) target.focus({ preventScroll: true });
  }

  /* Stripe documents fetchUpdates after every server-side amount change: wallets show the amount in their sheet. */
  async function fetchAmount(cart) {
    if (state.fetching || !state.elements || !state.formReady || cart.status !== "open" || !synced(cart)) return;
    if (state.mountedIntent !== cart.payment.payment_intent_id || state.fetched === payKey(cart)) return;
    const key = payKey(cart);
    state.fetching = true;
    const result = await state.elements.fetchUpdates();
    state.fetching = false;
    if (result && result.error) {
      console.warn("checkout: fetchUpdates failed", result.error); // the gateway's words stay in the console
      state.formError = "The payment form could not update to the new amount. Nothing was charged; please reload the page.";
    } else {
      state.formError = "";
      state.fetched = key;
    }
    updatePay();
    if (state.cart && synced(state.cart) && payKey(state.cart) !== key && !state.formError) fetchAmount(state.cart);
  }

  /* Make sure a payment form exists for the cart's live PaymentIntent (re-POST is safe). */
  function ensurePaymentForm(cart) {
    if (state.starting || state.paying || cart.items.length === 0 || cart.status !== "open") return;
    if (cart.payment && cart.payment.payment_intent_id === state.mountedIntent) return;
    const key = cart.id + ":" + cart.version + ":" + (cart.payment ? cart.payment.payment_intent_id : "-");
    if (state.startedFor === key) return;
    state.startedFor = key;
    startCheckout();
  }

  async function startCheckout() {
    state.starting = true;
    const result = await Store.api("POST", "/api/checkout");
    state.starting = false;
    if (result.ok) {
      mount(result.data);
    } else if (!(result.data && result.data.error && result.data.error.code === "cart_empty")) {
      showMessage(Store.errorMessage(result), "error", result.data && result.data.error && result.data.error.code);
    }
    if (result.data && result.data.cart) Store.acceptCart(result.data.cart);
    await Store.refreshCart(); // the cart now names its PaymentIntent and the amount it charges
    if (state.cart) render(state.cart);
  }

  function stripeFor(publishableKey) {
    if (typeof Stripe !== "function") throw new Error("Stripe.js did not load");
    if (!state.stripe || state.publishableKey !== publishableKey) {
      state.stripe = Stripe(publishableKey);
      state.publishableKey = publishableKey;
    }
    return state.stripe;
  }

  function formFailed(detail) {
    console.warn("checkout: the payment form could not load:", detail); // for the shop's developer, not the shopper
    state.formError = "The payment form could not load. Nothing was charged. " +
      "Please reload the page; if this keeps happening, the shop's payment setup needs attention.";
    updatePay();
  }

  function mount(answer) {
    if (answer.payment_intent_id === state.mountedIntent) return;
    let stripe;
    try {
      stripe = stripeFor(answer.publishable_key);
    } catch (err) {
      formFailed(err.message);
      return;
    }
    if (state.paymentElement) state.paymentElement.destroy(); // Stripe's way to remove an Element for good
    Object.assign(state, { formReady: false, formError: "", fetched: null, mountedIntent: answer.payment_intent_id,
      clientSecret: answer.client_secret });
    state.elements = stripe.elements({ clientSecret: answer.client_secret });
    const element = state.elements.create("payment");
    element.on("ready", function () {
      if (element !== state.paymentElement) return;
      state.formReady = true;
      if (state.cart) render(state.cart);
    });
    element.on("loaderror", function (event) {
      if (element !== state.paymentElement) return;
      formFailed((event && event.error && event.error.message) || "unknown error");
    });
    element.on("change", detailsChanged);
    state.paymentElement = element;
    element.mount("#payment-element");
  }

  /* A 409 (or other refusal) from the handshake: show the newer cart instead of paying. */
  async function refused(result) {
    const data = result.data || {};
    const code = data.error && data.error.code;
    if (data.cart) Store.acceptCart(data.cart);
    Store.reconnect(); // a stale page had missed pushes: resume live updates
    await Store.refreshCart();
    const latest = Store.latestCart();
    const pressAgain = { blocks: false, status: "Read the message above, then press Pay again." };
    if (code === "cart_changed" && latest) {
      showMessage("Your cart changed in another tab — the amount to pay is now " +
        Store.money(latest.total, latest.currency) + ". Check it, then press Pay again.", "warning", code, pressAgain);
    } else if (code === "out_of_stock") {
      showMessage(Store.errorMessage(result), "error", code, Refusals.outOfStock(result) || pressAgain);
      if (state.cart) render(state.cart);
    } else if (code === "reservation_limit" || code === "rate_limited") {
      // A limit on what one shopper may hold or try at once: the message says what to do, the cart is open.
      showMessage(Store.errorMessage(result), "warning", code, pressAgain);
    } else {
      showMessage(Store.errorMessage(result), "error", code, pressAgain);
    }
  }

  async function pay(event) {
    event.preventDefault();
    if (payBlocker()) return;
    const shownVersion = state.cart.version;
    window.CheckoutChanges.acknowledge(state.cart); // paying is seeing: the change note has done its job
    showMessage("");
    state.paying = true;
    updatePay();
    try {
      const checked = await state.elements.submit(); // validate the form before freezing the cart
      if (checked && checked.error) {
        showMessage(Reasons.paymentErrorText(checked.error), "error", checked.error.code, Refusals.card(checked.error));
        return;
      }
      const handshake = await Store.api("POST", "/api/checkout/confirm", { cart_version: shownVersion });
      if (!handshake.ok) {
        await refused(handshake);
        return;
      }
      state.ownAttempt = true;
      await confirmWithStripe(handshake.data.order_id);
    } finally {
      if (!state.leaving) {
        state.paying = false;
        if (state.cart) render(state.cart);
      }
    }
  }

  async function confirmWithStripe(orderId) {
    const orderUrl = "/orders/" + orderId;
    const watching = window.CheckoutInFlight.watchBank(updatePay); // the 3-D Secure step: the bank waits
    const outcome = await state.stripe.confirmPayment({
      elements: state.elements,
      confirmParams: { return_url: location.origin + orderUrl },
      redirect: "if_required",
    }).finally(watching.stop);
    if (outcome.error) {
      // A declined number is cleared (Stripe keeps the rest of the form); the focus goes back to the form.
      if (Reasons.clearsCard(outcome.error) && state.paymentElement.clear) state.paymentElement.clear();
      showMessage(Reasons.paymentErrorText(outcome.error), "error", outcome.error.code, Refusals.card(outcome.error));
      return;
    }
    state.leaving = true;
    location.assign(orderUrl);
  }

  /* A refusal about the card stands until the shopper changes the payment details. */
  function detailsChanged(event) {
    if (event && event.empty) return; // the form was cleared (after a decline): nothing new entered yet
    if (state.refusal && !state.refusal.blocks && state.messageCode !== "cart_changed") {
      state.refusal = null;
      updatePay();
    }
  }

  Refusals.bind({ state: state, el: el, showMessage: showMessage });
  window.CheckoutInFlight.bind({ state: state, el: el, stripeFor: stripeFor, showMessage: showMessage });
  function renderInFlight(cart) { window.CheckoutInFlight.render(cart); }

  el.form.addEventListener("submit", pay);
  document.addEventListener("checkout:acknowledged", function () {
    if (state.cart) render(state.cart); // the marks on the lines go with the note
    el.summaryTitle.focus();
  });
  Store.on("order", function () { if (state.cart) renderPaidOrder(state.cart.items.length === 0 && state.cart.status === "open"); });
  Store.on("cart", render);
  Store.on("reachable", function () { if (state.messageCode === "network") showMessage(""); });
  Store.on("connection", function (connection) {
    if (connection === "up" && state.messageCode === "network") showMessage("");
    if (state.cart) render(state.cart);
  });
  Store.start();
})();
