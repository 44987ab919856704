// Approvals page, optional comfort: "select all", and each "Preview" link follows the delivery
// chosen in its card. Without JavaScript the page works the same (the preview shows the default).
document.addEventListener("DOMContentLoaded", function () {
  var all = document.getElementById("select-all");
  var picks = Array.prototype.slice.call(document.querySelectorAll("input[data-pick]"));
  if (all && picks.length) {
    all.closest("[data-select-all]").hidden = false;
    all.addEventListener("change", function () {
      picks.forEach(function (box) { box.checked = all.checked; });
    });
    picks.forEach(function (box) {
      box.addEventListener("change", function () {
        all.checked = picks.every(function (b) { return b.checked; });
      });
    });
  }
  document.querySelectorAll("input[data-preview-for]").forEach(function (radio) {
    radio.addEventListener("change", function () {
      var link = document.getElementById("preview-" + radio.dataset.previewFor);
      if (link && radio.checked) {
        var url = new URL(link.href);
        url.searchParams.set("delivery", radio.value);
        link.href = url.toString();
      }
    });
  });
});
