/* What the merchant changed in the cart's latest version (a new price, a withdrawn product): each
 * notice's `message`, shown above the page's content until a version without notices arrives. */
(function () {
  Store.on("cart", function (cart) {
    let box = document.querySelector("[data-testid=cart-notices]");
    if (!box) {
      box = document.createElement("div");
      box.className = "banner banner--info";
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
