/* Stripe.js shim served by the offline Stripe sandbox at /v3/.
 * The part of Stripe.js a checkout page uses: Stripe(pk), elements({clientSecret}),
 * elements.create('payment'), mount, on('ready' | 'loaderror' | 'change'), clear, destroy,
 * fetchUpdates, submit, confirmPayment, handleNextAction, retrievePaymentIntent. It calls the
 * sandbox straight from the browser (CORS), exactly as Stripe.js calls api.stripe.com, and
 * behaves as Stripe documents: the element loads the PaymentIntent with the publishable key
 * (a wrong key is a `loaderror`, never a blank form), shows the amount it will charge and
 * re-reads it on fetchUpdates(). Plain JS, no build; no inline styles (a page's CSP may forbid
 * them). */
(function () {
  "use strict";
  var script = document.currentScript;
  var API = script && script.src ? new URL(script.src).origin : window.location.origin;
  var TEST_CARDS = [
    ["4242424242424242", "succeeds"],
    ["4000000000000002", "declined"],
    ["4000000000009995", "insufficient funds"],
    ["4000002500003155", "3D Secure"]
  ];
  var TEST_IBANS = [
    ["AT611904300234573201", "processing, then succeeds"],
    ["AT861904300235473202", "processing, then fails"],
    ["AT321904300235473204", "succeeds late"]
  ];

  function encode(value, prefix, out) {
    if (value === null || value === undefined) return out;
    if (typeof value === "object") {
      Object.keys(value).forEach(function (k) {
        encode(value[k], prefix ? prefix + "[" + k + "]" : k, out);
      });
    } else {
      out.push(encodeURIComponent(prefix) + "=" + encodeURIComponent(String(value)));
    }
    return out;
  }

  function piIdOf(clientSecret) {
    return String(clientSecret || "").split("_secret_")[0];
  }

  function api(key, method, path, params) {
    var body = encode(params || {}, "", []).join("&");
    var url = API + path + (method === "GET" && body ? "?" + body : "");
    return fetch(url, {
      method: method,
      headers: {
        "Authorization": "Bearer " + key,
        "Content-Type": "application/x-www-form-urlencoded"
      },
      body: method === "GET" ? undefined : body
    }).then(function (resp) {
      return resp.json();
    }).catch(function (err) {
      return {error: {type: "api_connection_error", message: String(err)}};
    });
  }

  function el(tag, attrs, text) {
    var node = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (k) { node.setAttribute(k, attrs[k]); });
    if (text) node.textContent = text;
    return node;
  }

  function PaymentElement(elements) {
    this.elements = elements;
    this.handlers = {};
    this.root = null;
  }

  PaymentElement.prototype.on = function (name, handler) {
    (this.handlers[name] = this.handlers[name] || []).push(handler);
    return this;
  };

  PaymentElement.prototype.emit = function (name, payload) {
    (this.handlers[name] || []).forEach(function (h) { h(payload); });
  };

  PaymentElement.prototype.method = function () {
    var sepa = this.root && this.root.querySelector("[data-testid=sandbox-method-sepa]");
    return sepa && sepa.checked ? "sepa_debit" : "card";
  };

  PaymentElement.prototype.value = function (testid) {
    var input = this.root && this.root.querySelector("[data-testid=" + testid + "]");
    return input ? input.value.replace(/\s+/g, "") : "";
  };

  PaymentElement.prototype.paymentMethodData = function () {
    if (this.method() === "sepa_debit") {
      return {type: "sepa_debit", sepa_debit: {iban: this.value("sandbox-iban")}};
    }
    return {type: "card", card: {number: this.value("sandbox-card-number")}};
  };

  PaymentElement.prototype.validate = function () {
    if (this.method() === "sepa_debit") {
      if (this.value("sandbox-iban").length < 15) {
        return {type: "validation_error", code: "incomplete_iban", message: "Your IBAN is incomplete."};
      }
    } else if (!/^\d{12,19}$/.test(this.value("sandbox-card-number"))) {
      return {type: "validation_error", code: "incomplete_number",
              message: "Your card number is incomplete."};
    }
    return null;
  };

  PaymentElement.prototype.section = function (kind, label, radioId, inputId, list) {
    var self = this;
    var box = el("fieldset", {"data-testid": "sandbox-section-" + kind});
    var radio = el("input", {type: "radio", name: "sandbox-method", value: kind,
                             "data-testid": radioId});
    if (kind === "card") radio.checked = true;
    var legend = el("label");
    legend.appendChild(radio);
    legend.appendChild(document.createTextNode(" " + label));
    box.appendChild(legend);
    var input = el("input", {type: "text", autocomplete: "off", "data-testid": inputId,
                             placeholder: list[0][0]});
    box.appendChild(input);
    var ul = el("ul", {"data-testid": "sandbox-test-" + kind});
    list.forEach(function (item) {
      var li = el("li");
      var fill = el("button", {type: "button"}, item[0]);
      fill.addEventListener("click", function () {
        input.value = item[0];
        radio.checked = true;
        self.changed();
      });
      li.appendChild(fill);
      li.appendChild(document.createTextNode(" " + item[1]));
      ul.appendChild(li);
    });
    box.appendChild(ul);
    input.addEventListener("input", function () { radio.checked = true; self.changed(); });
    radio.addEventListener("change", function () { self.changed(); });
    return box;
  };

  PaymentElement.prototype.changed = function () {
    this.emit("change", {elementType: "payment", complete: !this.validate(),
                         empty: false, value: {type: this.method()}});
  };

  PaymentElement.prototype.mount = function (target) {
    if (this.destroyed) throw new Error("This Element has already been destroyed. Please create a new one.");
    var node = typeof target === "string" ? document.querySelector(target) : target;
    var self = this;
    this.root = el("div", {"data-testid": "sandbox-payment-element"});
    node.innerHTML = "";
    node.appendChild(this.root);
    // Like Stripe's Payment Element, it loads the PaymentIntent first: a bad key or secret is a loaderror.
    this.elements.stripe.retrievePaymentIntent(this.elements.clientSecret).then(function (result) {
      if (self.destroyed) return;
      if (result.error) {
        self.root.appendChild(el("p", {"data-testid": "sandbox-load-error"}, result.error.message));
        self.emit("loaderror", {elementType: "payment", error: result.error});
        return;
      }
      self.amount = el("p", {"data-testid": "sandbox-amount"});
      self.root.appendChild(self.amount);
      self.showAmount(result.paymentIntent);
      self.root.appendChild(self.section("card", "Card", "sandbox-method-card",
                                        "sandbox-card-number", TEST_CARDS));
      // As Stripe's Payment Element: only the methods the PaymentIntent takes (SEPA Debit is eur only).
      if ((result.paymentIntent.payment_method_types || []).indexOf("sepa_debit") >= 0) {
        self.root.appendChild(self.section("sepa", "SEPA Direct Debit", "sandbox-method-sepa",
                                          "sandbox-iban", TEST_IBANS));
      }
      self.emit("ready", {elementType: "payment"});
    });
    return this;
  };

  /* What a wallet's payment sheet would show: the amount the Element last loaded. */
  PaymentElement.prototype.showAmount = function (pi) {
    if (!this.amount || !pi) return;
    this.amount.setAttribute("data-amount", String(pi.amount));
    this.amount.setAttribute("data-currency", pi.currency);
    this.amount.textContent = "Sandbox payment of " + pi.amount + " " + String(pi.currency).toUpperCase() +
      " (minor units)";
  };

  PaymentElement.prototype.clear = function () {
    if (!this.root) return;
    Array.prototype.forEach.call(this.root.querySelectorAll("input[type=text]"), function (input) {
      input.value = "";
    });
    this.changed();
  };

  PaymentElement.prototype.unmount = function () {
    if (this.root && this.root.parentNode) this.root.parentNode.removeChild(this.root);
  };

  PaymentElement.prototype.destroy = function () {
    this.unmount();
    this.destroyed = true;
    this.handlers = {};
    if (this.elements.element === this) this.elements.element = null;
    Stripe.sandboxStats.destroyed += 1;
  };

  function Elements(stripe, options) {
    this.stripe = stripe;
    this.clientSecret = (options || {}).clientSecret;
    this.element = null;
  }

  Elements.prototype.create = function (type) {
    if (type !== "payment") throw new Error("The sandbox shim only offers the 'payment' element.");
    if (this.element) throw new Error("Can only create one Element of type payment.");
    this.element = new PaymentElement(this);
    Stripe.sandboxStats.created += 1;
    return this.element;
  };

  Elements.prototype.getElement = function () { return this.element; };

  Elements.prototype.fetchUpdates = function () {
    var self = this;
    return this.stripe.retrievePaymentIntent(this.clientSecret).then(function (result) {
      if (result.paymentIntent) {
        self.paymentIntent = result.paymentIntent;
        if (self.element) self.element.showAmount(result.paymentIntent);
      }
      Stripe.sandboxStats.fetchUpdates += 1;
      return result.error ? {error: result.error} : {};
    });
  };

  Elements.prototype.submit = function () {
    var error = this.element ? this.element.validate() : {type: "validation_error",
      message: "No payment element is mounted."};
    return Promise.resolve(error ? {error: error} : {});
  };

  function redirectStatus(pi) {
    if (pi.status === "succeeded" || pi.status === "requires_capture") return "succeeded";
    return pi.status === "processing" ? "processing" : "failed";
  }

  function goToReturnUrl(returnUrl, pi) {
    var url = new URL(returnUrl, window.location.href);
    url.searchParams.set("payment_intent", pi.id);
    url.searchParams.set("payment_intent_client_secret", pi.client_secret);
    url.searchParams.set("redirect_status", redirectStatus(pi));
    window.location.assign(url.toString());
    return new Promise(function () {});  // the page is going away, as with Stripe.js
  }

  function styled(node, styles) {
    Object.keys(styles).forEach(function (k) { node.style[k] = styles[k]; });
    return node;
  }

  /* The 3-D Secure challenge as an accessible modal dialog: labelled, focus moves in and stays in
   * (Tab cycles), Escape fails the authentication as closing Stripe's challenge does, and focus
   * returns to where it was. */
  function challenge(pi) {
    return new Promise(function (resolve) {
      var before = document.activeElement;
      var overlay = styled(el("div", {"data-testid": "sandbox-3ds-modal"}), {
        position: "fixed", inset: "0", background: "rgba(0,0,0,.5)", display: "flex",
        alignItems: "center", justifyContent: "center", zIndex: "2147483647"});
      var box = styled(el("div", {role: "dialog", "aria-modal": "true",
                                  "aria-labelledby": "sandbox-3ds-title",
                                  "aria-describedby": "sandbox-3ds-text",
                                  "data-testid": "sandbox-3ds-dialog"}),
                       {background: "#fff", color: "#1d2433", padding: "1.5rem", borderRadius: "8px",
                        maxWidth: "22rem", margin: "1rem"});
      box.appendChild(styled(el("h2", {id: "sandbox-3ds-title"}, "Confirm this payment"),
                             {fontSize: "1.15rem", margin: "0 0 .5rem"}));
      box.appendChild(el("p", {id: "sandbox-3ds-text"},
        "3D Secure test: your bank asks you to confirm the payment of " + pi.amount + " " +
        String(pi.currency).toUpperCase() + " (minor units)."));
      var buttons = [];
      function close(outcome) {
        document.removeEventListener("keydown", onKey, true);
        overlay.parentNode.removeChild(overlay);
        if (before && typeof before.focus === "function") before.focus();
        resolve(outcome);
      }
      function onKey(event) {
        if (event.key === "Escape") {
          event.preventDefault();
          close("fail");
        } else if (event.key === "Tab") {
          var index = buttons.indexOf(document.activeElement);
          var next = event.shiftKey ? index - 1 : index + 1;
          event.preventDefault();
          buttons[(next + buttons.length) % buttons.length].focus();
        }
      }
      [["complete", "Complete authentication", "sandbox-3ds-complete"],
       ["fail", "Fail authentication", "sandbox-3ds-fail"]].forEach(function (b) {
        var button = styled(el("button", {type: "button", "data-testid": b[2]}, b[1]),
                            {margin: ".25rem .5rem 0 0", font: "inherit", padding: ".5rem .9rem"});
        button.addEventListener("click", function () { close(b[0]); });
        buttons.push(button);
        box.appendChild(button);
      });
      overlay.appendChild(box);
      document.body.appendChild(overlay);
      document.addEventListener("keydown", onKey, true);
      buttons[0].focus();
    });
  }

  function Stripe(publishableKey) {
    if (!(this instanceof Stripe)) return new Stripe(publishableKey);
    if (typeof publishableKey !== "string" || !publishableKey) {
      // Stripe.js throws an IntegrationError here too.
      throw new Error("Please call Stripe() with your publishable key. You used an empty string.");
    }
    this.key = publishableKey;
  }

  // What a test may check about how the page used the shim.
  Stripe.sandboxStats = {created: 0, destroyed: 0, fetchUpdates: 0, handleNextAction: 0};

  Stripe.prototype.elements = function (options) { return new Elements(this, options); };

  Stripe.prototype.retrievePaymentIntent = function (clientSecret) {
    return api(this.key, "GET", "/v1/payment_intents/" + piIdOf(clientSecret),
               {client_secret: clientSecret}).then(function (body) {
      return body.error ? {error: body.error} : {paymentIntent: body};
    });
  };

  Stripe.prototype.authenticate = function (pi) {
    var self = this;
    return challenge(pi).then(function (outcome) {
      return fetch(API + "/_sandbox/payment_intents/" + pi.id + "/authenticate", {
        method: "POST",
        headers: {"Authorization": "Bearer " + self.key, "Content-Type": "application/json"},
        body: JSON.stringify({outcome: outcome, client_secret: pi.client_secret})
      }).then(function (resp) { return resp.json(); });
    }).then(function (body) {
      if (body.error) return {error: body.error};
      if (body.last_payment_error && body.status === "requires_payment_method") {
        var error = Object.assign({}, body.last_payment_error, {payment_intent: body});
        return {error: error};
      }
      return {paymentIntent: body};
    });
  };

  /* Finish a PaymentIntent's next action (3D Secure) by its client secret, as after a reload. */
  Stripe.prototype.handleNextAction = function (options) {
    var self = this;
    Stripe.sandboxStats.handleNextAction += 1;
    return this.retrievePaymentIntent((options || {}).clientSecret).then(function (result) {
      if (result.error) return result;
      var pi = result.paymentIntent;
      if (pi.status !== "requires_action") {
        return {error: {type: "invalid_request_error", code: "payment_intent_unexpected_state",
                        message: "This PaymentIntent has no next action to handle (it is " + pi.status + ").",
                        payment_intent: pi}};
      }
      return self.authenticate(pi);
    });
  };

  Stripe.prototype.confirmPayment = function (options) {
    var self = this;
    var elements = options.elements;
    var params = options.confirmParams || {};
    var redirect = options.redirect || "always";
    var invalid = elements.element ? elements.element.validate() : null;
    if (invalid) return Promise.resolve({error: invalid});
    var secret = options.clientSecret || elements.clientSecret;
    var returnUrl = params.return_url || window.location.href;
    var body = {client_secret: secret, return_url: returnUrl,
                payment_method_data: elements.element.paymentMethodData()};
    return api(this.key, "POST", "/v1/payment_intents/" + piIdOf(secret) + "/confirm", body)
      .then(function (pi) {
        if (pi.error) return {error: pi.error};
        if (pi.status !== "requires_action") return {paymentIntent: pi};
        var action = pi.next_action || {};
        if (redirect === "always" && action.redirect_to_url) {
          window.location.assign(action.redirect_to_url.url);
          return new Promise(function () {});
        }
        return self.authenticate(pi);
      }).then(function (result) {
        if (result.error || redirect === "if_required") return result;
        return goToReturnUrl(returnUrl, result.paymentIntent);
      });
  };

  window.Stripe = Stripe;
})();
