/* The coverage block of a round's page: fills the figures from the coverage summary API (the page itself stays fast). */
(function () {
  "use strict";
  var fmt = new Intl.NumberFormat(document.documentElement.lang || undefined);
  document.querySelectorAll("[data-cov-summary]").forEach(function (box) {
    fetch(box.getAttribute("data-cov-summary"), { credentials: "same-origin", headers: { Accept: "application/json" } })
      .then(function (r) { if (!r.ok) throw new Error(String(r.status)); return r.json(); })
      .then(function (body) {
        box.querySelectorAll("[data-field]").forEach(function (node) {
          var value = body.totals[node.getAttribute("data-field")];
          if (node.getAttribute("data-field") === "coverage_pct") {
            node.textContent = value == null ? "—" : value + " %";
          } else {
            node.textContent = value == null ? "—" : fmt.format(value);
          }
        });
      })
      .catch(function () {
        box.querySelectorAll("[data-field]").forEach(function (node) { node.textContent = "—"; });
      });
  });
})();
