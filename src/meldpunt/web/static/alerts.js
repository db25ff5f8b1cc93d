// The alerts page counts down to each escalation between its (meta) refreshes. Optional: the
// page is right without it, and refreshes itself every half minute.
"use strict";
(function () {
  var timers = Array.prototype.slice.call(document.querySelectorAll(".countdown[data-seconds]"));
  if (!timers.length) return;
  var start = Date.now();
  function pad(n) { return (n < 10 ? "0" : "") + n; }
  function tick() {
    var gone = Math.floor((Date.now() - start) / 1000);
    timers.forEach(function (el) {
      var left = Math.max(0, parseInt(el.getAttribute("data-seconds"), 10) - gone);
      var h = Math.floor(left / 3600), m = Math.floor((left % 3600) / 60), s = left % 60;
      el.textContent = (h ? h + ":" + pad(m) : m) + ":" + pad(s);
    });
  }
  tick();
  window.setInterval(tick, 1000);
})();
