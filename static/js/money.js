/* Money as Stripe counts it: amounts are integers in the currency's minor unit, and the number of
 * decimals is Stripe's (docs.stripe.com/currencies), not Intl's. Intl says 0 for ISK and HUF, which
 * Stripe treats as two-decimal: trusting Intl would show those amounts 100 times too large.
 */
(function () {
  "use strict";

  // Stripe's zero-decimal currencies: an amount of 500 JPY is ¥500.
  const ZERO_DECIMAL = ["BIF", "CLP", "DJF", "GNF", "JPY", "KMF", "KRW", "MGA", "PYG", "RWF", "UGX", "VND",
    "VUV", "XAF", "XOF", "XPF"];
  // Stripe's three-decimal currencies: 12345 BHD is BHD 12.345.
  const THREE_DECIMAL = ["BHD", "JOD", "KWD", "OMR", "TND"];
  // Every other currency, ISK and HUF included, is two-decimal at Stripe.

  function exponent(currency) {
    const code = String(currency || "usd").toUpperCase();
    if (ZERO_DECIMAL.includes(code)) return 0;
    if (THREE_DECIMAL.includes(code)) return 3;
    return 2;
  }

  const formatters = {};

  function formatter(code, digits, locale) {
    const key = locale + ":" + code;
    if (!formatters[key]) {
      // Intl's own minimum (0 for ISK) is kept where it is lower; the maximum is Stripe's, so no minor unit is lost.
      const natural = new Intl.NumberFormat(locale, { style: "currency", currency: code }).resolvedOptions();
      formatters[key] = new Intl.NumberFormat(locale, {
        style: "currency", currency: code,
        minimumFractionDigits: Math.min(natural.minimumFractionDigits, digits),
        maximumFractionDigits: digits,
      });
    }
    return formatters[key];
  }

  /* "$123.45" for (12345, "usd"), "¥500" for (500, "jpy"), "BHD 12.345" for (12345, "bhd"). */
  function format(amount, currency, locale) {
    const code = String(currency || "usd").toUpperCase();
    const digits = exponent(code);
    const chosen = locale || (typeof navigator !== "undefined" && navigator.language) || "en-US";
    return formatter(code, digits, chosen).format(amount / Math.pow(10, digits));
  }

  window.Money = { format: format, exponent: exponent };
})();
