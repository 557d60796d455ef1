/* The shop's words: every gateway outcome and error code a shopper can meet, as a sentence of ours.
 *
 * One table, so no Stripe status, error code or Stripe English reaches a page. The server's twin is
 * storefront/shopper_words.py (the reason stored on a failed order). Unknown codes get a general sentence.
 */
(function () {
  "use strict";

  const TRY_AGAIN = " Nothing was charged.";

  /* Stripe.js errors (confirmPayment, handleNextAction, submit), by decline code first, then by code. */
  const PAYMENT = {
    generic_decline: "Your card was declined.",
    card_declined: "Your card was declined.",
    insufficient_funds: "Your bank said there is not enough money on this account for this payment.",
    expired_card: "Your card has expired.",
    incorrect_cvc: "The security code (CVC) is not right.",
    invalid_cvc: "The security code (CVC) is not right.",
    incorrect_number: "The card number is not right.",
    invalid_number: "The card number is not right.",
    invalid_expiry_month: "The expiry date is not right.",
    invalid_expiry_year: "The expiry date is not right.",
    lost_card: "Your card was declined.",
    stolen_card: "Your card was declined.",
    processing_error: "Your bank could not process the payment just now.",
    payment_intent_authentication_failure: "Your bank could not confirm it was you.",
    payment_intent_unexpected_state: "This payment was already cancelled or finished, so it can't be confirmed now.",
    payment_intent_payment_attempt_failed: "Your bank refused the payment.",
    incomplete_number: "Your card number is incomplete.",
    incomplete_iban: "Your IBAN is incomplete.",
    incomplete_cvc: "The security code (CVC) is missing.",
    incomplete_expiry: "The expiry date is missing.",
  };

  /* Error codes of our own API (the server's message is ours too; these are the ones a page rewords). */
  const SERVER = {
    network: "We couldn't reach the shop. Check your connection, then try again.",
    offline: "You're offline. Check your internet connection; paying waits until you're back online.",
    rate_limited: "Too many tries at once. Wait a moment, then try again.",
    store_unavailable: "The shop could not save this just now. Please try again.",
    payment_unavailable: "The payment service is not answering just now. Nothing was charged; please try again.",
    internal_error: "Something went wrong on our side. Please try again.",
  };

  const NEXT_STEP = {
    card: "Try again, or use another card.",
    number: "Check the number and try again.",
    missing: "Fill in the payment details, then press Pay.",
  };

  function paymentCode(error) {
    if (!error) return "";
    if (error.decline_code && PAYMENT[error.decline_code]) return error.decline_code;
    return error.code || "";
  }

  /* What happens next after a refused payment: SEPA Debit where the PaymentIntent takes it (eur). */
  function nextStep(error, code) {
    if (code.indexOf("incomplete_") === 0) return NEXT_STEP.missing;
    if (/number$/.test(code)) return NEXT_STEP.number;
    const types = (error.payment_intent && error.payment_intent.payment_method_types) || [];
    return types.indexOf("sepa_debit") >= 0 ? "Try another card, or pay by SEPA Direct Debit." : "Try another card.";
  }

  /* A Stripe.js error as the shopper reads it: what happened, that nothing was charged, what to do. */
  function payment(error) {
    const code = paymentCode(error);
    const said = PAYMENT[code];
    if (error && error.type === "validation_error") {
      return (said || "Some payment details are missing or not right.") + " " + NEXT_STEP.missing;
    }
    if (code === "payment_intent_authentication_failure") return said + TRY_AGAIN + " " + NEXT_STEP.card;
    if (code === "payment_intent_unexpected_state") return said + TRY_AGAIN + " Reload the page to pay again.";
    return (said || "The payment did not go through.") + TRY_AGAIN + " " + nextStep(error || {}, code);
  }

  /* Which part of the form the shopper has to fix for this error: "card", "details" or "". */
  function fieldToFix(error) {
    if (!error) return "";
    if (error.type === "validation_error") return "details";
    return error.type === "card_error" || paymentCode(error) === "payment_intent_authentication_failure" ? "card" : "";
  }

  /* An answer of our API ({ok, status, data}) as a sentence: our own message, or the table's. */
  function server(result) {
    const error = (result && result.data && result.data.error) || {};
    if (error.code === "network" && navigator.onLine === false) return SERVER.offline;
    if (SERVER[error.code]) return SERVER[error.code];
    if (!error.code || /^http_/.test(error.code)) return "Something went wrong on our side. Please try again.";
    return error.message || "Something went wrong. Please try again.";
  }

  /* The line under Pay while a payment is under way: the bank's 3-D Secure step is the shopper's to finish. */
  const PAYING = {
    paying: "Payment in progress…",
    bank: "Waiting for your bank's confirmation",
  };

  /* An order's status as the cart and checkout name it ("Your last order: #12, paid — see it"). */
  const ORDER_STATUS = {
    awaiting_payment: "payment processing",
    paid: "paid",
    needs_review: "paid, being checked",
    refunded: "refunded",
    payment_failed: "payment failed",
  };

  function lastOrder(order) {
    return "Your last order: #" + order.id + ", " + (ORDER_STATUS[order.status] || "placed");
  }

  window.Words = {
    payment: payment, server: server, fieldToFix: fieldToFix, lastOrder: lastOrder,
    PAYMENT: PAYMENT, SERVER: SERVER, PAYING: PAYING, ORDER_STATUS: ORDER_STATUS,
  };
})();
