// The card step (templates/payments/_card_step.html): Stripe's Payment Element takes the card, then
// this page asks our own status endpoint every second until Stripe's signed webhook has settled the
// payment. The browser never marks anything paid; it only shows what the server says.
"use strict";

(() => {
  const root = document.getElementById("card-payment");
  if (!root) {
    return;
  }
  const POLL_MS = 1000;
  const SLOW_AFTER_MS = 30000;
  const part = (name) => root.querySelector(`[data-card-${name}]`);
  const show = (name, visible = true) => {
    const element = part(name);
    if (element) {
      element.hidden = !visible;
    }
  };

  function showFailure(message) {
    show("form", false);
    show("waiting", false);
    show("cancel", false); // the payment is over; "Try another card" starts a new one
    part("failed-message").textContent = message;
    show("failed");
    part("failed").querySelector("[type=submit]").focus();
  }

  async function askStatus() {
    try {
      const response = await fetch(root.dataset.statusUrl, {
        headers: { Accept: "application/json" }, credentials: "same-origin", cache: "no-store",
      });
      return response.ok ? await response.json() : null;
    } catch (error) {
      return null; // our server did not answer this time: ask again
    }
  }

  function waitForStripe() {
    const started = Date.now();
    show("form", false);
    show("cancel", false); // Stripe has the card now: the webhook decides
    show("waiting");
    const check = async () => {
      const body = await askStatus();
      if (body && body.status === "succeeded" && body.receipt_url) {
        window.location.assign(body.receipt_url);
        return;
      }
      if (body && body.status === "failed") {
        showFailure(body.message);
        return;
      }
      if (Date.now() - started > SLOW_AFTER_MS) {
        show("slow");
      }
      window.setTimeout(check, POLL_MS);
    };
    check();
  }

  if (root.dataset.state === "waiting") {
    waitForStripe();
    return;
  }
  if (root.dataset.state !== "ready") {
    return;
  }

  const form = part("form");
  const errorBox = part("error");
  const button = part("pay");
  const showError = (message) => {
    errorBox.textContent = message;
    errorBox.hidden = false;
  };
  const enable = () => {
    button.disabled = false;
    button.removeAttribute("aria-busy");
  };

  if (typeof window.Stripe !== "function") {
    show("loading", false);
    showError("Stripe's card form could not load. Check the internet connection and reload this page. "
      + "Nothing was charged.");
    return;
  }
  const stripe = window.Stripe(root.dataset.publishableKey);
  const elements = stripe.elements({ clientSecret: root.dataset.clientSecret });
  const paymentElement = elements.create("payment");
  paymentElement.on("ready", () => {
    show("loading", false);
    enable();
  });
  paymentElement.mount(part("element"));

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    event.stopPropagation(); // this handler disables and re-enables the button itself (not app.js)
    button.disabled = true;
    button.setAttribute("aria-busy", "true");
    errorBox.hidden = true;
    let result;
    try {
      result = await stripe.confirmPayment({
        elements, redirect: "if_required", confirmParams: { return_url: root.dataset.returnUrl },
      });
    } catch (error) {
      result = { error: { type: "api_connection_error" } };
    }
    if (!result.error) {
      waitForStripe();
      return;
    }
    if (result.error.type === "card_error") {
      // Declined: this PaymentIntent is done; "Try another card" starts a new one.
      showFailure(result.error.message || "The card was declined. Nothing was charged.");
      return;
    }
    if (result.error.type === "api_connection_error" || !result.error.message) {
      showError("Stripe did not answer. Check the internet connection and press Pay again: "
        + "a payment is never charged twice.");
    } else {
      showError(result.error.message); // e.g. an incomplete card number
    }
    enable();
  });
})();
