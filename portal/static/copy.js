/* Copy buttons (pay by transfer: IBAN, BIC, reference). Served as a file: the CSP allows no inline
   script. The buttons are hidden in the HTML and shown here, so a page without script shows none. */
(function () {
  "use strict";

  function copyText(text) {
    if (navigator.clipboard && window.isSecureContext) {
      return navigator.clipboard.writeText(text);
    }
    return new Promise(function (resolve, reject) {  // plain HTTP: the older way
      var area = document.createElement("textarea");
      area.value = text;
      area.setAttribute("readonly", "");
      area.className = "sr-only";
      document.body.appendChild(area);
      area.select();
      var ok = false;
      try { ok = document.execCommand("copy"); } catch (e) { ok = false; }
      document.body.removeChild(area);
      if (ok) { resolve(); } else { reject(new Error("copy refused")); }
    });
  }

  function init() {
    document.querySelectorAll("button[data-copy]:not([data-bound])").forEach(function (button) {
      var list = button.closest("[data-copied]");
      var block = button.closest(".transfer");
      var status = block ? block.querySelector(".copy-status") : null;
      var label = button.textContent;
      button.setAttribute("data-bound", "");  // the script may be loaded once per block
      button.hidden = false;
      button.addEventListener("click", function () {
        copyText(button.getAttribute("data-copy")).then(function () {
          button.textContent = list ? list.getAttribute("data-copied") : label;
          if (status) { status.textContent = button.getAttribute("data-done"); }
          window.setTimeout(function () { button.textContent = label; }, 2000);
        }, function () {
          if (status && list) { status.textContent = list.getAttribute("data-failed"); }
        });
      });
    });
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", init);
  } else {
    init();
  }
})();
