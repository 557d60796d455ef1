/* Shared page code: JSON helpers, money formatting, the live cart (Socket.IO) and a tiny event bus.
 *
 * The server is the only source of truth. Every page reads the cart over HTTP, then keeps it
 * current from the `cart` push; the highest cart version seen wins and older pushes are ignored.
 */
(function () {
  "use strict";

  const listeners = {};
  let latest = null; // the freshest cart this tab has seen
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
    let data = null;
    try {
      data = await response.json();
    } catch (err) {
      data = null;
    }
    if (!response.ok && !(data && data.error)) {
      data = Object.assign({}, data, {
        error: { code: "http_" + response.status, message: "Something went wrong (" + response.status + "). Please try again." },
      });
    }
    return { ok: response.ok, status: response.status, data: data };
  }

  function networkError() {
    return { error: { code: "network", message: "The store can't be reached. Check your connection and try again." } };
  }

  function errorMessage(result) {
    return (result.data && result.data.error && result.data.error.message) || "Something went wrong. Please try again.";
  }

  const formatters = {};

  /* Amounts are integers in the currency's minor unit. */
  function money(amount, currency) {
    const code = (currency || "usd").toUpperCase();
    if (!formatters[code]) {
      formatters[code] = new Intl.NumberFormat(navigator.language || "en-US", { style: "currency", currency: code });
    }
    const digits = formatters[code].resolvedOptions().maximumFractionDigits;
    return formatters[code].format(amount / Math.pow(10, digits));
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
    const badge = document.querySelector("[data-testid=cart-badge]");
    if (!badge) return;
    const count = itemCount(cart);
    badge.textContent = String(count);
    badge.setAttribute("aria-label", count === 1 ? "1 item in your cart" : count + " items in your cart");
    badge.classList.toggle("is-empty", count === 0);
    badge.dataset.cartVersion = String(cart.version);
  }

  function renderConnection(connected) {
    const indicator = document.querySelector("[data-testid=live-status]");
    if (!indicator) return;
    indicator.hidden = connected;
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
    socket.on("order", function (order) { emit("order", order); });
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

  /* Render "quantity × name … line total" rows into a list (checkout summary, order page). */
  function renderLines(list, items, currency, testidPrefix) {
    list.replaceChildren.apply(list, items.map(function (item) {
      const row = document.createElement("li");
      row.className = "line";
      row.dataset.testid = testidPrefix + item.product_id;
      const name = document.createElement("span");
      name.className = "line__name";
      name.textContent = item.quantity + " × " + item.name;
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
    latestVersion: function () { return latest ? latest.version : null; },
    socket: function () { return socket; },
  };
})();
