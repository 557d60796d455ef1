/* Catalog: product cards with add-to-cart; any refusal is shown with the server's message. */
(function () {
  "use strict";

  const list = document.querySelector("[data-testid=product-list]");
  const message = document.querySelector("[data-testid=page-message]");
  const reason = document.querySelector("[data-testid=catalog-frozen]");
  const buttons = [];
  let frozen = false;

  /* While a payment is in flight the cart can't change: say so before the shopper clicks. */
  function renderFrozen(cart) {
    frozen = cart.status === "frozen";
    reason.hidden = !frozen;
    buttons.forEach(function (button) { button.disabled = frozen || button.dataset.busy === "true"; });
  }

  function card(product) {
    const item = document.createElement("li");
    item.className = "product-card";
    item.dataset.testid = "product-" + product.id;

    const swatch = document.createElement("div");
    swatch.className = "product-card__swatch";
    swatch.style.setProperty("--hue", String((product.id * 67) % 360));
    swatch.setAttribute("aria-hidden", "true");
    swatch.textContent = product.name.charAt(0);

    const name = document.createElement("h2");
    name.className = "product-card__name";
    name.textContent = product.name;

    const price = document.createElement("p");
    price.className = "product-card__price";
    price.textContent = Store.money(product.unit_amount, product.currency);

    const button = document.createElement("button");
    button.type = "button";
    button.className = "button button--primary";
    button.dataset.testid = "add-to-cart-" + product.id;
    // The accessible name starts with the visible words (WCAG 2.5.3), then says which product.
    const which = document.createElement("span");
    which.className = "visually-hidden";
    which.textContent = ": " + product.name;
    button.append("Add to cart", which);
    button.setAttribute("aria-describedby", "frozen-reason");
    button.addEventListener("click", function () { add(product, button); });
    buttons.push(button);

    item.append(swatch, name, price, button);
    return item;
  }

  async function add(product, button) {
    button.dataset.busy = "true";
    button.disabled = true;
    const result = await Store.api("POST", "/api/cart/items", { product_id: product.id, quantity: 1 });
    button.dataset.busy = "false";
    button.disabled = frozen;
    if (result.ok) {
      Store.acceptCart(result.data);
      Store.setMessage(message, "Added " + product.name + " to your cart.", "info");
    } else {
      Store.setMessage(message, Store.errorMessage(result), "error");
    }
  }

  async function loadProducts() {
    const result = await Store.api("GET", "/api/products");
    list.replaceChildren();
    list.setAttribute("aria-busy", "false");
    if (!result.ok) {
      Store.setMessage(message, Store.errorMessage(result), "error");
      return;
    }
    result.data.forEach(function (product) { list.append(card(product)); });
    if (Store.latestCart()) renderFrozen(Store.latestCart());
  }

  Store.on("cart", renderFrozen);
  loadProducts();
  Store.start();
})();
