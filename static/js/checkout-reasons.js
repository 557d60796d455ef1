/* The checkout's sentences: what changed in the cart, and what a refused payment means for the shopper.
 * Gateway outcomes go through Words (words.js), so no Stripe English reaches the page. */
(function () {
  "use strict";

  function byProduct(cart) {
    const map = new Map();
    (cart ? cart.items : []).forEach(function (item) { map.set(item.product_id, item); });
    return map;
  }

  /* Each line that differs between two versions: {product_id, text, mark} ("2 × Paper filters added"). */
  function lineChanges(before, after) {
    const was = byProduct(before), now = byProduct(after);
    const changes = [];
    now.forEach(function (item, id) {
      const old = was.get(id);
      const had = old ? old.quantity : 0;
      if (item.quantity > had) changes.push({ product_id: id, text: (item.quantity - had) + " × " + item.name + " added", mark: "added" });
      else if (item.quantity < had) changes.push({ product_id: id, text: (had - item.quantity) + " × " + item.name + " removed", mark: "fewer" });
      else if (old && old.unit_amount !== item.unit_amount) {
        changes.push({ product_id: id, text: item.name + " now " + Store.money(item.unit_amount, after.currency) + " each", mark: "new price" });
      }
    });
    was.forEach(function (item, id) {
      if (!now.has(id)) changes.push({ product_id: id, text: item.name + " removed", mark: null });
    });
    return changes;
  }

  function joined(changes) {
    const parts = changes.map(function (change) { return change.text; });
    if (parts.length > 3) return parts.slice(0, 3).join(", ") + " and " + (parts.length - 3) + " more changes";
    return parts.join(", ");
  }

  /* "2 × Paper filters added, Espresso beans removed" between two versions of a cart ("" if the same). */
  function cartChanges(before, after) {
    return joined(lineChanges(before, after));
  }

  /* Why Pay waits while the cart moved on from what the shopper last saw ready. */
  function changedReason(before, after) {
    if (after.notices && after.notices.length) return "The shop updated your cart. Updating the amount…";
    const what = cartChanges(before, after);
    return (what ? "Your cart changed in another tab: " + what + "." : "Your cart changed in another tab.") +
      " Updating the amount…";
  }

  /* Card and form errors in the shop's words; each says what to do next. */
  function paymentErrorText(error) {
    return Words.payment(error);
  }

  /* True for errors after which the card number should be entered again (Stripe keeps the rest). */
  function clearsCard(error) {
    return error.type === "card_error";
  }

  window.CheckoutReasons = { lineChanges: lineChanges, joined: joined, cartChanges: cartChanges,
    changedReason: changedReason, paymentErrorText: paymentErrorText, clearsCard: clearsCard };
})();
