/* Changes that stay until seen: when the cart changes from elsewhere (another tab, or the shop), the checkout
 * says what changed and by how much, marks the changed lines, and keeps saying it until the shopper presses
 * "OK, got it" or pays. A change made by the shop (the cart's `notices`) is told in the shop's words, as news.
 */
(function () {
  "use strict";

  const box = document.getElementById("checkout-changes");
  const text = document.getElementById("changes-text");
  const ok = document.getElementById("changes-ok");
  let seen = null; // the cart as the shopper last acknowledged it
  let shopSaid = new Map(); // product id -> the shop's sentence, for changes since `seen`
  let marks = new Map(); // product id -> what to mark on its line

  function money(amount, cart) { return Store.money(amount, cart.currency); }

  /* The sentence for everything between `seen` and `cart`, or "" when nothing the shopper sees changed. */
  function sentence(cart) {
    (cart.notices || []).forEach(function (notice) { shopSaid.set(notice.product_id, notice.message); });
    const changes = CheckoutReasons.lineChanges(seen, cart);
    const fromTabs = changes.filter(function (change) { return !shopSaid.has(change.product_id); });
    const fromShop = changes.filter(function (change) { return shopSaid.has(change.product_id); });
    marks = new Map();
    changes.forEach(function (change) { if (change.mark) marks.set(change.product_id, change.mark); });
    if (!changes.length && seen.total === cart.total) return "";
    const total = seen.total === cart.total ? "" : "total " + money(seen.total, seen) + " → " + money(cart.total, cart);
    const said = fromShop.map(function (change) { return shopSaid.get(change.product_id); });
    if (fromTabs.length) {
      said.push(CheckoutReasons.joined(fromTabs) + " in another tab" + (total ? ": " + total : "") + ".");
    } else if (total) {
      said.push("Your new " + total + ".");
    }
    return said.join(" ");
  }

  /* Show (or keep) the note for this cart; the marks for its lines (product id -> "added", "new price"…). */
  function render(cart) {
    if (!seen || seen.id !== cart.id || cart.items.length === 0) acknowledge(cart);
    const said = cart.status === "open" || cart.status === "frozen" ? sentence(cart) : "";
    box.hidden = !said;
    box.dataset.origin = shopSaid.size && said.indexOf("another tab") < 0 ? "shop" : "tab";
    if (text.textContent !== said) text.textContent = said;
    if (!said) { shopSaid = new Map(); marks = new Map(); }
    return marks;
  }

  /* The shopper has seen the cart as it is (or changed it here, or paid): nothing is news any more. */
  function acknowledge(cart) {
    seen = cart || Store.latestCart();
    shopSaid = new Map();
    marks = new Map();
    box.hidden = true;
    text.textContent = "";
  }

  ok.addEventListener("click", function () {
    acknowledge(Store.latestCart());
    document.dispatchEvent(new CustomEvent("checkout:acknowledged"));
  });

  window.CheckoutChanges = { render: render, acknowledge: acknowledge };
})();
