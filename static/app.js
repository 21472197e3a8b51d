// Small progressive enhancements; every page works without them.
"use strict";

document.addEventListener("submit", (event) => {
  const form = event.target;
  const question = form.dataset.confirm;
  if (question && !window.confirm(question)) {
    event.preventDefault();
    return;
  }
  // A double click must not send a form twice: disable its buttons once it is on its way.
  window.setTimeout(() => {
    form.querySelectorAll("button[type=submit], input[type=submit]").forEach((button) => {
      button.disabled = true;
      button.setAttribute("aria-busy", "true");
    });
  }, 0);
});

document.addEventListener("click", (event) => {
  if (event.target.closest("[data-print]")) {
    window.print();
  }
});

// Fee-schedule search: typing in a [data-filter-select] box narrows the <select> it names.
document.addEventListener("input", (event) => {
  const box = event.target.closest("[data-filter-select]");
  if (!box) {
    return;
  }
  const select = document.getElementById(box.dataset.filterSelect);
  const words = box.value.toLowerCase().split(/\s+/).filter(Boolean);
  const matches = [];
  select.querySelectorAll("option").forEach((option) => {
    const text = `${option.textContent} ${option.dataset.code || ""}`.toLowerCase();
    const keep = option.value === "0" || words.every((word) => text.includes(word));
    option.hidden = !keep;
    if (keep && option.value !== "0") {
      matches.push(option);
    }
  });
  select.querySelectorAll("optgroup").forEach((group) => {
    group.hidden = !group.querySelector("option:not([hidden])");
  });
  select.value = matches.length === 1 ? matches[0].value : (matches.includes(select.selectedOptions[0]) ? select.value : "0");
});
