/* Cart: lines with quantity and removal, kept current by the `cart` push. */
(function () {
  "use strict";

  const list = document.getElementById("cart-lines");
  const total = document.getElementById("cart-total");
  const empty = document.getElementById("cart-empty");
  const paid = document.getElementById("cart-paid");
  const paidLink = document.getElementById("cart-paid-link");
  const paidText = document.getElementById("cart-paid-text");
  const frozenBanner = document.getElementById("checkout-reason");
  const message = document.getElementById("page-message");
  const checkoutLink = document.getElementById("go-to-checkout");

  function showResult(result) {
    if (result.ok) {
      Store.acceptCart(result.data);
      Store.setMessage(message, "");
    } else {
      const stock = result.data && result.data.out_of_stock;
      if (stock && rows.has(stock.product_id)) {
        offerFix(rows.get(stock.product_id), stock); // said on the line itself, with the fix next to it
      } else {
        Store.setMessage(message, Store.errorMessage(result), "error");
      }
      if (result.data && result.data.cart) Store.acceptCart(result.data.cart);
    }
  }

  /* "Only 2 left" on the line, and a button that sets the quantity to what is left (or removes it). */
  function offerFix(entry, stock) {
    const left = Math.max(0, stock.available);
    entry.stockText.textContent = left > 0 ? "Only " + left + " left. " : "Sold out. ";
    // The accessible name starts with the visible words (WCAG 2.5.3), then says which line.
    const which = span("visually-hidden");
    which.textContent = ": " + stock.name;
    entry.fix.replaceChildren(left > 0 ? "Set to " + left : "Remove it", which);
    entry.fix.onclick = function () {
      entry.stock.hidden = true;
      if (left > 0) {
        entry.input.value = String(left);
        setQuantity(stock.product_id);
      } else {
        remove(stock.product_id);
      }
    };
    entry.stock.hidden = false;
    entry.fix.focus();
  }

  const rows = new Map(); // product_id -> {row, input, remove, unit, amount, item}

  async function setQuantity(product_id) {
    const entry = rows.get(product_id);
    const quantity = Number(entry.input.value);
    if (!Number.isInteger(quantity) || quantity < 0 || quantity > 99) {
      Store.setMessage(message, "Quantity must be a whole number from 0 to 99.", "error");
      entry.input.value = String(entry.item.quantity);
      return;
    }
    const result = await Store.api("PUT", "/api/cart/items/" + product_id, { quantity: quantity });
    showResult(result);
    if (!result.ok && rows.has(product_id)) rows.get(product_id).input.value = String(rows.get(product_id).item.quantity);
  }

  async function remove(product_id) {
    showResult(await Store.api("DELETE", "/api/cart/items/" + product_id));
  }

  function span(className) {
    const node = document.createElement("span");
    node.className = className;
    return node;
  }

  function createRow(item) {
    const entry = { row: document.createElement("li") };
    entry.row.className = "line";
    entry.row.dataset.testid = "cart-line-" + item.product_id;
    const name = span("line__name");
    name.textContent = item.name;
    entry.unit = span("line__unit");

    const label = document.createElement("label");
    label.className = "line__qty";
    const labelText = span("visually-hidden");
    labelText.textContent = "Quantity of " + item.name;
    entry.input = document.createElement("input");
    entry.input.type = "number";
    entry.input.min = "0";
    entry.input.max = "99";
    entry.input.inputMode = "numeric";
    entry.input.dataset.testid = "qty-" + item.product_id;
    entry.input.addEventListener("change", function () { setQuantity(item.product_id); });
    label.append(labelText, entry.input);

    entry.amount = span("line__total");
    entry.remove = document.createElement("button");
    entry.remove.type = "button";
    entry.remove.className = "button button--quiet";
    entry.remove.dataset.testid = "remove-" + item.product_id;
    entry.remove.textContent = "Remove";
    entry.remove.setAttribute("aria-label", "Remove " + item.name);
    entry.remove.addEventListener("click", function () { remove(item.product_id); });

    entry.stock = document.createElement("p");
    entry.stock.className = "line__stock";
    entry.stock.dataset.testid = "stock-" + item.product_id;
    entry.stock.setAttribute("role", "alert");
    entry.stock.hidden = true;
    entry.stockText = span("");
    entry.fix = document.createElement("button");
    entry.fix.type = "button";
    entry.fix.className = "button button--small";
    entry.fix.dataset.testid = "fix-" + item.product_id;
    entry.stock.append(entry.stockText, entry.fix);

    entry.row.append(name, entry.unit, label, entry.amount, entry.remove, entry.stock);
    return entry;
  }

  /* Update rows in place, so a push never throws away a quantity the shopper is typing. */
  function updateRow(entry, item, currency, frozen) {
    const quantityChanged = !entry.item || entry.item.quantity !== item.quantity;
    if (quantityChanged || document.activeElement !== entry.input) entry.input.value = String(item.quantity);
    entry.item = item;
    entry.unit.textContent = Store.money(item.unit_amount, currency) + " each";
    entry.amount.textContent = Store.money(item.line_total, currency);
    entry.input.disabled = frozen;
    entry.remove.disabled = frozen;
  }

  function render(cart) {
    const frozen = cart.status !== "open";
    const present = new Set(cart.items.map(function (item) { return item.product_id; }));
    rows.forEach(function (entry, product_id) {
      if (!present.has(product_id)) {
        entry.row.remove();
        rows.delete(product_id);
      }
    });
    cart.items.forEach(function (item, index) {
      let entry = rows.get(item.product_id);
      if (!entry) {
        entry = createRow(item);
        rows.set(item.product_id, entry);
      }
      updateRow(entry, item, cart.currency, frozen);
      // Move a row only when it is out of place: moving a node takes the focus away from its input.
      if (list.children[index] !== entry.row) list.insertBefore(entry.row, list.children[index] || null);
    });
    total.textContent = Store.money(cart.total, cart.currency);
    empty.hidden = cart.items.length > 0;
    renderPaid(cart);
    frozenBanner.hidden = !frozen;
    const closed = cart.items.length === 0 || frozen;
    checkoutLink.classList.toggle("is-disabled", closed);
    checkoutLink.setAttribute("aria-disabled", String(closed));
  }

  /* After a payment the cart is empty: every tab of it (opened before or after) links to the order. */
  function renderPaid(cart) {
    const order = Store.lastOrder();
    paid.hidden = !(order && cart.items.length === 0 && cart.status === "open");
    if (!order) return;
    paidText.textContent = Words.lastOrder(order);
    paidLink.href = "/orders/" + order.id;
  }

  Store.on("order", function () { if (Store.latestCart()) renderPaid(Store.latestCart()); });
  checkoutLink.addEventListener("click", function (event) {
    if (checkoutLink.getAttribute("aria-disabled") === "true") event.preventDefault();
  });
  Store.on("cart", render);
  Store.start();
})();
