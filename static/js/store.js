/* Shared page code: JSON helpers, money formatting, the live cart (Socket.IO) and a tiny event bus.
 *
 * The server is the only source of truth. Every page reads the cart over HTTP, then keeps it
 * current from the `cart` push; the highest cart version seen wins and older pushes are ignored.
 */
(function () {
  "use strict";

  const listeners = {};
  let latest = null; // the freshest cart this tab has seen
  let lastOrder = null; // the cart's latest order ({id, status}), so an emptied cart can link to it
  let socket = null;

  function on(event, handler) {
    (listeners[event] = listeners[event] || []).push(handler);
  }

  function emit(event, payload) {
    (listeners[event] || []).forEach(function (handler) {
      try {
        handler(payload);
      } catch (err) {
        console.error("store: handler for", event, "failed", err);
      }
    });
  }

  /* fetch JSON; resolves to {ok, status, data}; a network failure resolves with status 0. */
  async function api(method, path, body) {
    const init = {
      method: method,
      credentials: "same-origin",
      headers: { Accept: "application/json" },
    };
    if (method !== "GET") {
      init.headers["Content-Type"] = "application/json";
      if (body !== undefined) init.body = JSON.stringify(body);
    }
    let response;
    try {
      response = await fetch(path, init);
    } catch (err) {
      return { ok: false, status: 0, data: networkError() };
    }
    emit("reachable"); // the store answered, whatever it said
    let data = null;
    try {
      data = await response.json();
    } catch (err) {
      data = null;
    }
    if (!response.ok && !(data && data.error)) {
      data = Object.assign({}, data, {
        error: { code: "http_" + response.status, message: Words.server({}) },
      });
    }
    return { ok: response.ok, status: response.status, data: data };
  }

  function networkError() {
    return { error: { code: "network", message: Words.SERVER.network } };
  }

  /* An API answer as the shopper reads it (words.js: our sentences, never a status code). */
  function errorMessage(result) {
    return Words.server(result);
  }

  /* Amounts are integers in the currency's minor unit, with Stripe's exponents (money.js). */
  function money(amount, currency) {
    return Money.format(amount, currency);
  }

  function isSameOrStale(incoming, current) {
    if (!current || incoming.id !== current.id) return false;
    if (incoming.version !== current.version) return incoming.version < current.version;
    // Same version: the PaymentIntent's amount only ever catches up with the total, never falls back.
    const had = current.payment, got = incoming.payment;
    const synced = had && had.amount === current.total;
    const regressed = synced && got && got.payment_intent_id === had.payment_intent_id && got.amount !== incoming.total;
    return Boolean(regressed && incoming.status === current.status);
  }

  /* Take a cart from any source (HTTP answer, push, 409 body); true if it became the latest. */
  function acceptCart(cart) {
    if (!cart || typeof cart.version !== "number") return false;
    if (isSameOrStale(cart, latest)) return false;
    // Only some answers name the order a frozen cart is paying (GET /api/cart does): keep it for this freeze.
    if (cart.status === "frozen" && !cart.order_id && latest && latest.id === cart.id && latest.status === "frozen") {
      cart = Object.assign({}, cart, { order_id: latest.order_id });
    }
    if (cart.order_id && !(lastOrder && lastOrder.id === cart.order_id)) {
      lastOrder = { id: cart.order_id, status: "awaiting_payment" };
    }
    // GET /api/cart names the cart's latest order (`last_order`): a tab opened after a payment links to it too.
    if (cart.last_order && !(lastOrder && lastOrder.id > cart.last_order.id)) {
      lastOrder = { id: cart.last_order.id, status: cart.last_order.status };
    }
    latest = cart;
    emit("cart", cart);
    return true;
  }

  async function refreshCart() {
    const result = await api("GET", "/api/cart");
    if (result.ok) acceptCart(result.data);
    return result;
  }

  function itemCount(cart) {
    return cart ? cart.items.reduce(function (sum, item) { return sum + item.quantity; }, 0) : 0;
  }

  function renderBadge(cart) {
    const badge = document.getElementById("cart-badge");
    if (!badge) return;
    const count = itemCount(cart);
    badge.textContent = String(count);
    const words = document.getElementById("cart-badge-words");
    if (words) words.textContent = count === 1 ? " item" : " items";
    badge.classList.toggle("is-empty", count === 0);
    badge.dataset.cartVersion = String(cart.version);
  }

  let connection = "connecting"; // "connecting" until the first connect, then "up" or "down"

  function renderConnection(connected) {
    const was = connection;
    connection = connected ? "up" : "down";
    const indicator = document.getElementById("live-status");
    if (indicator) {
      indicator.hidden = connected;
      const words = connectionWords();
      if (indicator.textContent !== words) indicator.textContent = words;
    }
    if (was !== connection) emit("connection", connection);
  }

  /* Whose connection is down: the browser knows when it is offline; otherwise the shop did not answer. */
  function connectionWords() {
    return navigator.onLine === false
      ? "You're offline. Check your internet connection; paying is paused until you're back online."
      : "Can't reach the store right now — reconnecting… Paying is paused until the connection is back.";
  }

  /* A payment in flight is shown on every page, before the shopper tries to change the cart. */
  function renderFrozen(cart) {
    const notice = document.getElementById("frozen-notice");
    if (!notice || document.body.dataset.page === "checkout") return;
    const link = document.getElementById("frozen-order-link");
    const frozen = cart.status === "frozen";
    const here = document.body.dataset.page === "order" && cart.order_id &&
      location.pathname === "/orders/" + cart.order_id;
    notice.hidden = !frozen || Boolean(here);
    link.hidden = !cart.order_id;
    if (cart.order_id) link.href = "/orders/" + cart.order_id;
  }

  function connect() {
    if (typeof io !== "function") {
      console.error("store: the Socket.IO client is missing");
      return;
    }
    socket = io({ withCredentials: true });
    socket.on("connect", async function () {
      renderConnection(true);
      await refreshCart();
      emit("connect");
    });
    socket.on("disconnect", function () {
      renderConnection(false);
      emit("disconnect");
    });
    socket.on("connect_error", async function () {
      renderConnection(false);
      if (socket.active) return; // the client retries by itself
      // Refused (e.g. no cart in the session yet): make sure the cookie exists, then retry.
      await refreshCart();
      setTimeout(function () { socket.connect(); }, 1000);
    });
    socket.on("cart", acceptCart);
    socket.on("order", function (order) {
      if (order && order.id) lastOrder = { id: order.id, status: order.status };
      emit("order", order);
    });
    // The browser knows first when the network goes: stop live updates (and paying) until it is back.
    window.addEventListener("offline", function () { socket.disconnect(); renderConnection(false); });
    window.addEventListener("online", function () { socket.connect(); });
  }

  /* Resume live updates if they were paused (a page that learned it is stale calls this). */
  function reconnect() {
    if (socket && !socket.connected) socket.connect();
  }

  /* Start a page: read the cart (which sets the session cookie), then open the socket. */
  async function start() {
    const result = await refreshCart();
    connect();
    return result;
  }

  /* Render "quantity × name … line total" rows into a list (checkout summary, order page). `marks` (optional)
   * maps a product id to a short word shown on its line ("added", "new price", "only 2 left"). */
  function renderLines(list, items, currency, testidPrefix, marks) {
    list.replaceChildren.apply(list, items.map(function (item) {
      const row = document.createElement("li");
      row.className = "line";
      row.dataset.testid = testidPrefix + item.product_id;
      const name = document.createElement("span");
      name.className = "line__name";
      name.textContent = item.quantity + " × " + item.name;
      const mark = marks && marks.get(item.product_id);
      if (mark) {
        row.classList.add("line--changed");
        const tag = document.createElement("span");
        tag.className = "line__mark";
        tag.textContent = mark;
        name.append(" ", tag);
      }
      const total = document.createElement("span");
      total.className = "line__total";
      total.textContent = money(item.line_total, currency);
      row.append(name, total);
      return row;
    }));
  }

  function setMessage(element, text, kind) {
    if (!element) return;
    element.textContent = text || "";
    element.dataset.kind = kind || "error";
    element.hidden = !text;
  }

  on("cart", renderBadge);
  on("cart", renderFrozen);

  window.Store = {
    on: on,
    api: api,
    money: money,
    errorMessage: errorMessage,
    acceptCart: acceptCart,
    refreshCart: refreshCart,
    itemCount: itemCount,
    setMessage: setMessage,
    renderLines: renderLines,
    reconnect: reconnect,
    start: start,
    latestCart: function () { return latest; },
    /* The cart's latest order ({id, status}) or null: an emptied cart links to it. */
    lastOrder: function () { return lastOrder; },
    latestVersion: function () { return latest ? latest.version : null; },
    socket: function () { return socket; },
    connection: function () { return connection; },
  };
})();
