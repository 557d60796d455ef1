/* The checkout's sentences: what changed in the cart, and what a refused payment means for the shopper. */
(function () {
  "use strict";

  function quantities(cart) {
    const map = new Map();
    (cart ? cart.items : []).forEach(function (item) { map.set(item.product_id, item); });
    return map;
  }

  /* "2 × Paper filters added, Espresso beans removed" between two versions of a cart ("" if the same). */
  function cartChanges(before, after) {
    const was = quantities(before), now = quantities(after);
    const parts = [];
    now.forEach(function (item, id) {
      const old = was.get(id);
      const had = old ? old.quantity : 0;
      if (item.quantity > had) parts.push((item.quantity - had) + " × " + item.name + " added");
      else if (item.quantity < had) parts.push((had - item.quantity) + " × " + item.name + " removed");
      else if (old && old.unit_amount !== item.unit_amount) {
        parts.push(item.name + " now " + Store.money(item.unit_amount, after.currency) + " each");
      }
    });
    was.forEach(function (item, id) {
      if (!now.has(id)) parts.push(item.name + " removed");
    });
    if (parts.length > 3) return parts.slice(0, 3).join(", ") + " and " + (parts.length - 3) + " more changes";
    return parts.join(", ");
  }

  /* Why Pay waits while the cart moved on from what the shopper last saw ready. */
  function changedReason(before, after) {
    const what = cartChanges(before, after);
    return (what ? "Your cart changed in another tab: " + what + "." : "Your cart changed in another tab.") +
      " Updating the amount…";
  }

  /* SEPA Direct Debit is a way out only where the PaymentIntent takes it (eur, as on Stripe). */
  function declineNextStep(error) {
    const types = (error.payment_intent && error.payment_intent.payment_method_types) || [];
    const debit = types.indexOf("sepa_debit") >= 0 ? ", or pay by SEPA Direct Debit." : ".";
    return " Nothing was charged. Try another card" + debit;
  }

  /* Card and form errors are written for shoppers; each says what to do next. */
  function paymentErrorText(error) {
    if (error.code === "payment_intent_authentication_failure") {
      return "Your bank could not confirm it was you, so nothing was charged. You can try again, or use another card.";
    }
    if (error.type === "card_error") {
      const message = error.message || "Your card was declined.";
      if (error.code === "incorrect_number" || error.code === "invalid_number") {
        return message + " Check the number and try again.";
      }
      return message + declineNextStep(error);
    }
    if (error.type === "validation_error" && error.message) return error.message;
    return "The payment did not go through" + (error.message ? ": " + error.message : ".") +
      " Nothing was charged; please try again.";
  }

  /* True for errors after which the card details should be entered again (Stripe keeps them otherwise). */
  function clearsCard(error) {
    return error.type === "card_error";
  }

  window.CheckoutReasons = { cartChanges: cartChanges, changedReason: changedReason,
    paymentErrorText: paymentErrorText, clearsCard: clearsCard };
})();
