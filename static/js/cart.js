/* Cart: lines with quantity and removal, kept current by the `cart` push. */
(function () {
  "use strict";

  const list = document.querySelector("[data-testid=cart-lines]");
  const total = document.querySelector("[data-testid=cart-total]");
  const empty = document.querySelector("[data-testid=cart-empty]");
  const frozenBanner = document.querySelector("[data-testid=cart-frozen]");
  const message = document.querySelector("[data-testid=page-message]");
  const checkoutLink = document.querySelector("[data-testid=go-to-checkout]");

  function showResult(result) {
    if (result.ok) {
      Store.acceptCart(result.data);
      Store.setMessage(message, "");
    } else {
      Store.setMessage(message, Store.errorMessage(result), "error");
      if (result.data && result.data.cart) Store.acceptCart(result.data.cart);
    }
  }

  async function setQuantity(item, input) {
    const quantity = Number(input.value);
    if (!Number.isInteger(quantity) || quantity < 0 || quantity > 99) {
      Store.setMessage(message, "Quantity must be a whole number from 0 to 99.", "error");
      input.value = String(item.quantity);
      return;
    }
    showResult(await Store.api("PUT", "/api/cart/items/" + item.product_id, { quantity: quantity }));
  }

  async function remove(item) {
    showResult(await Store.api("DELETE", "/api/cart/items/" + item.product_id));
  }

  function line(item, currency, frozen) {
    const row = document.createElement("li");
    row.className = "line";
    row.dataset.testid = "cart-line-" + item.product_id;

    const name = document.createElement("span");
    name.className = "line__name";
    name.textContent = item.name;

    const unit = document.createElement("span");
    unit.className = "line__unit";
    unit.textContent = Store.money(item.unit_amount, currency) + " each";

    const label = document.createElement("label");
    label.className = "line__qty";
    const labelText = document.createElement("span");
    labelText.className = "visually-hidden";
    labelText.textContent = "Quantity of " + item.name;
    const input = document.createElement("input");
    input.type = "number";
    input.min = "0";
    input.max = "99";
    input.inputMode = "numeric";
    input.value = String(item.quantity);
    input.disabled = frozen;
    input.dataset.testid = "qty-" + item.product_id;
    input.addEventListener("change", function () { setQuantity(item, input); });
    label.append(labelText, input);

    const amount = document.createElement("span");
    amount.className = "line__total";
    amount.textContent = Store.money(item.line_total, currency);

    const button = document.createElement("button");
    button.type = "button";
    button.className = "button button--quiet";
    button.dataset.testid = "remove-" + item.product_id;
    button.textContent = "Remove";
    button.setAttribute("aria-label", "Remove " + item.name);
    button.disabled = frozen;
    button.addEventListener("click", function () { remove(item); });

    row.append(name, unit, label, amount, button);
    return row;
  }

  function render(cart) {
    const frozen = cart.status !== "open";
    const focused = document.activeElement && document.activeElement.dataset.testid;
    list.replaceChildren.apply(list, cart.items.map(function (item) { return line(item, cart.currency, frozen); }));
    if (focused) {
      const again = list.querySelector("[data-testid='" + focused + "']");
      if (again && !again.disabled) again.focus();
    }
    total.textContent = Store.money(cart.total, cart.currency);
    empty.hidden = cart.items.length > 0;
    frozenBanner.hidden = !frozen;
    checkoutLink.classList.toggle("is-disabled", cart.items.length === 0);
    checkoutLink.setAttribute("aria-disabled", String(cart.items.length === 0));
  }

  Store.on("cart", render);
  Store.start();
})();
