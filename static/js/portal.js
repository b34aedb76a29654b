// Progressive enhancement only: every page works without this script.
(function () {
  "use strict";

  // Quote page: recalculate the selected items' total (with tax) as items are ticked.
  function money(value, currency) {
    return currency + " " + value.toFixed(2);
  }
  function setupQuoteTotals() {
    var form = document.getElementById("approve-form");
    var output = document.getElementById("selected-total");
    if (!form || !output) return;
    var rate = parseFloat(form.dataset.taxRate || "0") || 0;
    var inclusive = form.dataset.pricesIncludeTax === "1";
    var currency = form.dataset.currency || "";
    var boxes = form.querySelectorAll('input[name="line_items"]');
    var selectedButton = form.querySelector('button[value="approve_selected"]');
    function update() {
      var subtotal = 0, count = 0;
      boxes.forEach(function (box) {
        if (box.checked) { subtotal += parseFloat(box.dataset.total || "0"); count += 1; }
      });
      var tax = inclusive ? 0 : Math.round(subtotal * rate * 100) / 100;
      output.textContent = money(subtotal + tax, currency) + " (" + count + " of " + boxes.length + " items)";
      if (selectedButton) selectedButton.disabled = count === 0;
    }
    boxes.forEach(function (box) { box.addEventListener("change", update); });
    update();
  }

  // Loading state: a submitted form's buttons are disabled so a double click sends once.
  function setupBusyForms() {
    document.querySelectorAll("form[method=post]").forEach(function (form) {
      form.addEventListener("submit", function (event) {
        var button = event.submitter;
        if (button && button.name) {
          var hidden = document.createElement("input");
          hidden.type = "hidden"; hidden.name = button.name; hidden.value = button.value;
          form.appendChild(hidden);
        }
        form.querySelectorAll("button").forEach(function (b) { b.disabled = true; });
        if (button && button.dataset.busyLabel) button.textContent = button.dataset.busyLabel;
        form.setAttribute("aria-busy", "true");
      });
    });
  }

  // Back to a page from the browser's cache: the buttons a submit disabled work again.
  window.addEventListener("pageshow", function (event) {
    if (!event.persisted) return;
    document.querySelectorAll("form[aria-busy=true]").forEach(function (form) {
      form.removeAttribute("aria-busy");
      form.querySelectorAll("button").forEach(function (b) { b.disabled = false; });
    });
  });

  document.addEventListener("DOMContentLoaded", function () {
    setupQuoteTotals();
    setupBusyForms();
  });
})();
