/* The checkout's refusals that need more than a sentence: out of stock at confirm (Pay waits, the line says
 * how many are left, and "Set to N" fixes it in place) and a refused card or missing details (the form takes
 * the focus). Each returns what checkout.js's showMessage needs: {blocks, status, focus, fix}.
 */
(function () {
  "use strict";

  let state = null, el = null, showMessage = null;

  function bind(context) {
    state = context.state;
    el = context.el;
    showMessage = context.showMessage;
  }

  /* "Set to 2" on the line that ran out: fix the quantity in place, without leaving the checkout. */
  function offerFix(stock) {
    const left = Math.max(0, stock.available);
    el.fix.textContent = left > 0 ? "Set " + stock.name + " to " + left : "Remove " + stock.name;
    el.fix.hidden = false;
    el.fix.onclick = async function () {
      el.fix.disabled = true;
      const path = "/api/cart/items/" + stock.product_id;
      const result = left > 0 ? await Store.api("PUT", path, { quantity: left }) : await Store.api("DELETE", path);
      el.fix.disabled = false;
      if (!result.ok) {
        showMessage(Store.errorMessage(result), "error", result.data && result.data.error && result.data.error.code);
        return;
      }
      state.lowStock.delete(stock.product_id);
      window.CheckoutChanges.acknowledge(result.data); // changed here, by the shopper: not news
      showMessage("");
      Store.acceptCart(result.data);
      el.button.focus();
    };
  }

  /* Out of stock at confirm: Pay waits, the line says how many are left, and the fix is one press away. */
  function outOfStock(result) {
    const stock = (result.data && result.data.out_of_stock) || null;
    if (!stock) return null;
    state.lowStock.set(stock.product_id, stock.available);
    offerFix(stock);
    const left = Math.max(0, stock.available);
    return {
      blocks: true, version: Store.latestVersion(),
      status: left > 0 ? "Only " + left + " of " + stock.name + " left: change the quantity, then pay."
        : stock.name + " is sold out: remove it, then pay.",
      fix: true,
      focus: function () { return el.fix; },
    };
  }

  /* A refused card or missing details: Pay stays available, the line under it says what to do, and the
   * payment form takes the focus (Stripe's Element.focus(); the first empty field of a plain form). */
  function card(error) {
    const details = Words.fieldToFix(error) === "details";
    return {
      blocks: false,
      status: details ? "Fill in the payment details above, then press Pay." : "Enter another card above, then press Pay.",
      focus: function () {
        if (state.paymentElement && typeof state.paymentElement.focus === "function") return state.paymentElement;
        const fields = document.querySelectorAll("#payment-element input:not([type=radio]):not([disabled])");
        return Array.prototype.find.call(fields, function (field) { return field.offsetParent && !field.value; }) ||
          fields[0] || null;
      },
    };
  }

  window.CheckoutRefusals = { bind: bind, outOfStock: outOfStock, card: card };
})();
