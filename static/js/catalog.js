/* Catalog: product cards with add-to-cart; sold out is labelled and cannot be added; an add is confirmed
 * next to its button (a phone shows only part of the page); any refusal is shown in the shop's words. */
(function () {
  "use strict";

  const list = document.getElementById("product-list");
  const message = document.getElementById("page-message");
  const reason = document.getElementById("frozen-reason");
  const LOW_STOCK = 5; // "only N left" from here down
  const buttons = [];
  let frozen = false;

  /* While a payment is in flight the cart can't change: say so before the shopper clicks. */
  function renderFrozen(cart) {
    frozen = cart.status === "frozen";
    reason.hidden = !frozen;
    buttons.forEach(function (button) {
      button.disabled = frozen || button.dataset.busy === "true" || button.dataset.soldOut === "true";
    });
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

    const stock = stockLabel(product);
    const button = document.createElement("button");
    button.type = "button";
    button.className = "button button--primary";
    button.dataset.testid = "add-to-cart-" + product.id;
    // The accessible name starts with the visible words (WCAG 2.5.3), then says which product.
    const which = document.createElement("span");
    which.className = "visually-hidden";
    which.textContent = ": " + product.name;
    const soldOut = product.available === 0;
    button.dataset.soldOut = String(soldOut);
    button.disabled = soldOut;
    button.append(soldOut ? "Sold out" : "Add to cart", which);
    button.setAttribute("aria-describedby", "frozen-reason" + (stock ? " stock-" + product.id : ""));
    const added = document.createElement("p");
    added.className = "product-card__added";
    added.id = "added-" + product.id;
    added.dataset.testid = "added-" + product.id;
    added.setAttribute("role", "status");
    button.addEventListener("click", function () { add(product, button, added); });
    buttons.push(button);

    item.append(swatch, name, price);
    if (stock) item.append(stock);
    item.append(button, added);
    return item;
  }

  /* "Sold out" / "Only 3 left" for a tracked product (available is null when stock is not tracked). */
  function stockLabel(product) {
    if (product.available === null || product.available === undefined || product.available > LOW_STOCK) return null;
    const label = document.createElement("p");
    label.className = "product-card__stock" + (product.available === 0 ? " is-sold-out" : "");
    label.id = "stock-" + product.id;
    label.dataset.testid = "stock-" + product.id;
    label.textContent = product.available === 0 ? "Sold out" : "Only " + product.available + " left";
    return label;
  }

  async function add(product, button, added) {
    button.dataset.busy = "true";
    button.disabled = true;
    const result = await Store.api("POST", "/api/cart/items", { product_id: product.id, quantity: 1 });
    button.dataset.busy = "false";
    button.disabled = frozen;
    if (result.ok) {
      Store.acceptCart(result.data);
      const line = result.data.items.find(function (item) { return item.product_id === product.id; });
      added.textContent = "✓ Added" + (line ? " — " + line.quantity + " in your cart" : "");
      added.dataset.kind = "info";
      Store.setMessage(message, "");
    } else {
      // Next to the button the shopper pressed: on a phone the top of the page is out of sight.
      added.textContent = Store.errorMessage(result);
      added.dataset.kind = "error";
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
