// A test-only stand-in for Stripe.js (https://js.stripe.com/v3/), served on loopback by
// tests/e2e/test_card_journey.py because the real Stripe.js cannot load here. It implements just
// what static/js/card_payment.js uses, and confirms the PaymentIntent against localstripe the way
// Stripe.js confirms it against Stripe: Stripe(key).elements({clientSecret}).create("payment")
// .mount(el) draws a plain card-number box; confirmPayment() sends the card's test PaymentMethod.
// Production pages always load Stripe's own Stripe.js.
"use strict";

(() => {
  // The Stripe API as the browser sees it: the server this file came from (it passes calls on to localstripe).
  const API = new URL(document.currentScript.src).origin;
  const SECRET_KEY = "sk_test_not_a_real_key"; // localstripe confirms only with a secret key
  const TEST_CARDS = {
    "4242424242424242": "pm_card_visa",
    "4000000000000341": "pm_card_chargeCustomerFail", // attaches, then declines when charged
  };

  async function post(path, fields) {
    const response = await fetch(`${API}${path}`, {
      method: "POST",
      headers: { Authorization: `Bearer ${SECRET_KEY}`, "Content-Type": "application/x-www-form-urlencoded" },
      body: new URLSearchParams(fields),
    });
    return response.json();
  }

  function paymentElement() {
    const handlers = {};
    let input = null;
    return {
      mount(target) {
        const element = typeof target === "string" ? document.querySelector(target) : target;
        const label = document.createElement("label");
        label.textContent = "Card number";
        input = document.createElement("input");
        input.name = "cardnumber";
        input.autocomplete = "cc-number";
        input.inputMode = "numeric";
        input.placeholder = "1234 1234 1234 1234";
        label.appendChild(input);
        element.replaceChildren(label);
        window.setTimeout(() => (handlers.ready || []).forEach((handler) => handler({ elementType: "payment" })), 0);
      },
      on(name, handler) {
        (handlers[name] = handlers[name] || []).push(handler);
      },
      cardNumber() {
        return input ? input.value.replace(/\s+/g, "") : "";
      },
    };
  }

  window.Stripe = function Stripe(publishableKey) {
    if (!/^pk_/.test(publishableKey || "")) {
      throw new Error("Stripe stand-in: a publishable key (pk_...) is required");
    }
    return {
      elements({ clientSecret }) {
        const element = paymentElement();
        return {
          clientSecret,
          create(type) {
            if (type !== "payment") {
              throw new Error(`Stripe stand-in: only the payment element, not ${type}`);
            }
            this.element = element;
            return element;
          },
        };
      },
      async confirmPayment({ elements, redirect, confirmParams }) {
        if (redirect !== "if_required" || !confirmParams || !confirmParams.return_url) {
          throw new Error("Stripe stand-in: confirmPayment needs redirect 'if_required' and a return_url");
        }
        const number = elements.element.cardNumber();
        const paymentMethod = TEST_CARDS[number];
        if (!paymentMethod) {
          return { error: { type: "validation_error", message: "Your card number is incomplete." } };
        }
        const intentId = elements.clientSecret.split("_secret_")[0];
        let body = await post(`/v1/payment_intents/${intentId}`, { payment_method: paymentMethod });
        if (!body.error) {
          body = await post(`/v1/payment_intents/${intentId}/confirm`, {});
        }
        if (body.error) {
          // localstripe calls a decline an invalid_request_error with code card_declined; Stripe.js says card_error.
          const declined = body.error.code === "card_declined" || body.error.type === "card_error";
          return { error: { type: declined ? "card_error" : "api_error", message: body.error.message } };
        }
        return { paymentIntent: body };
      },
    };
  };
})();
