/* Order status: "processing" until the server knows the outcome, then paid or failed, pushed live. */
(function () {
  "use strict";

  const section = document.getElementById("order");
  const orderId = Number(section.dataset.orderId);
  const status = document.querySelector("[data-testid=order-status]");
  const detail = document.querySelector("[data-testid=order-detail]");
  const lines = document.querySelector("[data-testid=order-lines]");
  const summary = document.querySelector("[data-testid=order-summary]");
  const amount = document.querySelector("[data-testid=order-amount]");

  const TEXTS = {
    awaiting_payment: function () { return "Payment processing…"; },
    paid: function (order) { return "Paid — order #" + order.id; },
    payment_failed: function () { return "Payment failed — your cart is back"; },
    needs_review: function (order) { return "Payment received — order #" + order.id + " is being reviewed"; },
    refunded: function (order) { return "Refunded — order #" + order.id; },
  };

  const DETAILS = {
    awaiting_payment: "We'll update this page as soon as the payment provider confirms. You can keep it open.",
    paid: "Thank you! Your payment was received.",
    payment_failed: "Nothing was charged for this order. ",
    needs_review: "The amount received did not match this order; we're checking it and refunding any difference.",
    refunded: "This order's payment has been refunded.",
  };

  function render(order) {
    const text = TEXTS[order.status] ? TEXTS[order.status](order) : "Order status: " + order.status;
    status.textContent = text;
    status.dataset.status = order.status;
    detail.textContent = DETAILS[order.status] || "";
    if (order.status === "payment_failed") {
      const link = document.createElement("a");
      link.href = "/cart";
      link.dataset.testid = "back-to-cart";
      link.textContent = "Return to your cart";
      detail.append(link);
    }
    detail.hidden = !detail.textContent;
    Store.renderLines(lines, order.items, order.currency, "order-line-");
    lines.hidden = order.items.length === 0;
    amount.textContent = Store.money(order.amount, order.currency);
    summary.hidden = false;
  }

  let requests = 0;

  async function load() {
    const mine = ++requests;
    const result = await Store.api("GET", "/api/orders/" + orderId);
    if (mine !== requests) return; // a later read is on its way and wins
    if (result.ok) {
      render(result.data);
    } else if (result.status === 404) {
      status.textContent = "We couldn't find this order.";
      status.dataset.status = "not_found";
    } else {
      status.textContent = Store.errorMessage(result);
      status.dataset.status = "error";
    }
  }

  Store.on("order", function (push) {
    if (push && Number(push.id) === orderId) load();
  });
  Store.on("connect", load);
  load();
  Store.start();
})();
