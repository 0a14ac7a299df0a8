// The console's one script (every page loads it; everything works without it).
// The promotions page's live countdown: each <time data-countdown datetime="…">
// counts down to its instant. Without JavaScript the server's text ("in 3 h 12 min")
// and the timestamp beside it stay, correct as of the page load.
(function () {
  "use strict";
  function left(ms) {
    if (ms <= 0) return "now: reload to approve";
    var s = Math.floor(ms / 1000), d = Math.floor(s / 86400), h = Math.floor(s / 3600) % 24,
        m = Math.floor(s / 60) % 60, r = s % 60;
    if (d > 0) return "in " + d + " d " + h + " h";
    if (h > 0) return "in " + h + " h " + m + " min " + r + " s";
    return "in " + m + " min " + r + " s";
  }
  function tick() {
    var now = Date.now();
    document.querySelectorAll("time[data-countdown]").forEach(function (el) {
      el.textContent = left(Date.parse(el.getAttribute("datetime")) - now);
    });
  }
  tick();
  setInterval(tick, 1000);
})();

// After a flip swapped its row in (htmx), or on the page a flip came back to, the
// row marked data-focus gets the keyboard focus on its new flip button: focus does
// not fall to <body>, and the live region beside the table says what the flip did.
document.addEventListener("htmx:load", function (event) {
  "use strict";
  var el = event.detail && event.detail.elt;
  if (!el || !el.querySelector) return;
  var row = el.matches && el.matches("[data-focus]") ? el : el.querySelector("[data-focus]");
  if (!row) return;
  var button = row.querySelector("form.flip button") || row.querySelector("a.key");
  if (button) button.focus({ preventScroll: false });
});
