/* The pay bar (debtor home): the total of the ticked invoices, kept as they are ticked. Served as
   a file (CSP: no inline script). Without it, "Recalculate" posts the ticks and the page comes back
   with the total; with it, that button is not needed and hides. */
(function () {
  "use strict";

  function init() {
    var form = document.getElementById("pay-form");
    var out = document.getElementById("pay-total");
    if (!form || !out) { return; }
    var lang = document.documentElement.lang || "fr";
    var recalc = form.querySelector("button.recalc");
    if (recalc) { recalc.hidden = true; }

    function format(minor, currency) {
      var digits = new Intl.NumberFormat(lang, {style: "currency", currency: currency}).resolvedOptions().maximumFractionDigits;
      return new Intl.NumberFormat(lang, {style: "currency", currency: currency}).format(minor / Math.pow(10, digits));
    }

    function update() {
      var sums = {}, order = [];
      form.querySelectorAll("input[name=invoice]:checked").forEach(function (box) {
        var cur = box.getAttribute("data-cur");
        if (!(cur in sums)) { sums[cur] = 0; order.push(cur); }
        sums[cur] += parseInt(box.getAttribute("data-due"), 10) || 0;
      });
      out.textContent = order.length
        ? order.map(function (cur) { return format(sums[cur], cur); }).join(" + ")
        : format(0, out.getAttribute("data-cur") || "EUR");
    }

    form.addEventListener("change", function (e) {
      if (e.target && e.target.name === "invoice") { update(); }
    });
    update();  // a back-navigation may have restored other ticks than the page was drawn with
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", init);
  } else {
    init();
  }
})();
