// Salur console: refreshes the progress while records move. Everything works without it
// (reload the page to see the progress).
"use strict";
(function () {
  function refresh() {
    var el = document.getElementById("progress");
    if (!el || el.getAttribute("data-done") === "1") return;
    fetch(window.location.href, { credentials: "same-origin", headers: { "X-Refresh": "1" } })
      .then(function (r) { return r.ok ? r.text() : null; })
      .then(function (html) {
        if (!html) return;
        var doc = new DOMParser().parseFromString(html, "text/html");
        var fresh = doc.getElementById("progress");
        var now = document.getElementById("progress");
        if (fresh && now) {
          now.replaceWith(fresh);
        }
      })
      .catch(function () {})
      .then(function () { window.setTimeout(refresh, 2000); });
  }
  window.addEventListener("DOMContentLoaded", function () { window.setTimeout(refresh, 2000); });
})();
