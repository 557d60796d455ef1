/* Checkout: what you see is what you pay.
 *
 * The page shows the cart total and the amount the PaymentIntent will charge, re-rendered on every
 * `cart` push. Pay is enabled only while the shown version is the latest, the cart is open and the
 * PaymentIntent's amount equals the total. Pay runs the confirm handshake first; only a 200 lets
 * Stripe.js confirm the payment, and the outcome is shown on the order page, never here.
 */
(function () {
  "use strict";

  const el = {
    lines: document.querySelector("[data-testid=checkout-lines]"),
    empty: document.querySelector("[data-testid=checkout-empty]"),
    total: document.querySelector("[data-testid=checkout-total]"),
    amount: document.querySelector("[data-testid=checkout-amount]"),
    version: document.querySelector("[data-testid=checkout-version]"),
    form: document.getElementById("payment-form"),
    button: document.querySelector("[data-testid=pay-button]"),
    status: document.querySelector("[data-testid=pay-status]"),
    message: document.querySelector("[data-testid=checkout-message]"),
  };

  const state = {
    cart: null, // the cart this page shows
    paying: false, // a payment is under way in this tab
    ownAttempt: false, // this tab froze the cart; its outcome is still pending on the server
    leaving: false,
    stripe: null,
    publishableKey: null,
    elements: null,
    mountedIntent: null,
    starting: false,
    startedFor: null, // the cart state the last POST /api/checkout was made for
  };

  function money(amount) {
    return Store.money(amount, state.cart.currency);
  }

  function render(cart) {
    state.cart = cart;
    if (cart.status === "open") state.ownAttempt = false;
    Store.renderLines(el.lines, cart.items, cart.currency, "checkout-line-");
    el.empty.hidden = cart.items.length > 0;
    el.total.textContent = money(cart.total);
    el.amount.textContent = cart.payment ? money(cart.payment.amount) : "—";
    el.amount.classList.toggle("is-updating", !cart.payment || cart.payment.amount !== cart.total);
    el.version.textContent = String(cart.version);
    updatePay();
    ensurePaymentForm(cart);
  }

  /* Why Pay must stay disabled right now, or "" when it may be pressed. */
  function payBlocker() {
    const cart = state.cart;
    if (!cart) return "Loading your cart…";
    if (cart.items.length === 0) return "Your cart is empty";
    if (state.paying) return "Payment in progress…";
    if (cart.version !== Store.latestVersion()) return "Your cart changed — showing the latest…";
    if (cart.status !== "open") {
      return state.ownAttempt ? "Waiting for the payment result…" : "A payment is in progress in another tab";
    }
    if (!cart.payment) return "Preparing the payment…";
    if (cart.payment.amount !== cart.total) return "Updating the amount to charge…";
    if (!state.elements || state.mountedIntent !== cart.payment.payment_intent_id) return "Loading the payment form…";
    return "";
  }

  function updatePay() {
    const reason = payBlocker();
    el.button.disabled = Boolean(reason);
    el.button.textContent = reason ? "Pay" : "Pay " + money(state.cart.payment.amount);
    el.status.textContent = reason || "Ready: " + money(state.cart.payment.amount) + " will be charged.";
    el.status.dataset.ready = String(!reason);
  }

  function showMessage(text, kind) {
    Store.setMessage(el.message, text, kind || "error");
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
      showMessage(Store.errorMessage(result));
    }
    if (result.data && result.data.cart) Store.acceptCart(result.data.cart);
    await Store.refreshCart(); // the cart now names its PaymentIntent and the amount it charges
    if (state.cart) render(state.cart);
  }

  function mount(answer) {
    if (answer.payment_intent_id === state.mountedIntent) return;
    if (typeof Stripe !== "function") {
      showMessage("The payment form could not load. Please reload the page.");
      return;
    }
    if (!state.stripe || state.publishableKey !== answer.publishable_key) {
      state.stripe = Stripe(answer.publishable_key);
      state.publishableKey = answer.publishable_key;
    }
    document.getElementById("payment-element").replaceChildren();
    state.elements = state.stripe.elements({ clientSecret: answer.client_secret });
    state.elements.create("payment").mount("#payment-element");
    state.mountedIntent = answer.payment_intent_id;
  }

  /* A 409 (or other refusal) from the handshake: show the newer cart instead of paying. */
  function refused(result) {
    const data = result.data || {};
    const code = data.error && data.error.code;
    if (data.cart) {
      Store.acceptCart(data.cart);
      Store.reconnect(); // a stale page had missed pushes: resume live updates
    }
    const latest = Store.latestCart();
    if (code === "cart_changed" && latest) {
      showMessage("Your cart changed — the amount to pay is now " + Store.money(latest.total, latest.currency), "warning");
    } else {
      showMessage(Store.errorMessage(result));
    }
  }

  async function pay(event) {
    event.preventDefault();
    if (payBlocker()) return;
    const shownVersion = state.cart.version;
    showMessage("");
    state.paying = true;
    updatePay();
    try {
      if (typeof state.elements.submit === "function") {
        const checked = await state.elements.submit(); // validate the form before freezing the cart
        if (checked && checked.error) {
          showMessage(checked.error.message);
          return;
        }
      }
      const handshake = await Store.api("POST", "/api/checkout/confirm", { cart_version: shownVersion });
      if (!handshake.ok) {
        refused(handshake);
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

  /* Card and form errors are written for shoppers; others get a plain sentence. */
  function paymentErrorText(error) {
    if (error.code === "payment_intent_authentication_failure") {
      return "Your bank could not confirm it was you, so nothing was charged. You can try again.";
    }
    if ((error.type === "card_error" || error.type === "validation_error") && error.message) return error.message;
    return "The payment did not go through" + (error.message ? ": " + error.message : ". Please try again.");
  }

  async function confirmWithStripe(orderId) {
    const orderUrl = "/orders/" + orderId;
    if (typeof state.elements.fetchUpdates === "function") await state.elements.fetchUpdates();
    const outcome = await state.stripe.confirmPayment({
      elements: state.elements,
      confirmParams: { return_url: location.origin + orderUrl },
      redirect: "if_required",
    });
    if (outcome.error) {
      showMessage(paymentErrorText(outcome.error));
      return;
    }
    state.leaving = true;
    location.assign(orderUrl);
  }

  el.form.addEventListener("submit", pay);
  Store.on("cart", render);
  Store.on("connect", function () { if (state.cart) updatePay(); });
  Store.start();
})();
