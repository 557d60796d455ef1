/* What the shop changed in the cart's latest version (a new price, a withdrawn product): each notice's
 * `message`, shown as news above the page's content until a version without notices arrives. The checkout
 * tells these in its own change note (checkout-changes.js), which stays until the shopper has seen it. */
(function () {
  if (document.body.dataset.page === "checkout") return;
  Store.on("cart", function (cart) {
    let box = document.getElementById("cart-notices");
    if (!box) {
      box = document.createElement("div");
      box.className = "banner banner--info";
      box.id = "cart-notices";
      box.dataset.testid = "cart-notices";
      box.setAttribute("role", "status");
      document.getElementById("main").prepend(box);
    }
    const notices = cart.notices || [];
    box.replaceChildren.apply(box, notices.map(function (notice) {
      const line = document.createElement("p");
      line.textContent = notice.message;
      return line;
    }));
    box.hidden = notices.length === 0;
  });
})();
