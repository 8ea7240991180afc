// keyfob: the only script, loaded from /static (the CSP forbids inline scripts).
// It counts down enrolment expiry and copies keys; every page works without it.
"use strict";

function pad(n) {
  return String(n).padStart(2, "0");
}

function startCountdowns() {
  // Seconds left come from the server: the computer's own clock may be wrong.
  document.querySelectorAll("[data-expires-in]").forEach(function (el) {
    var end = Date.now() + 1000 * Number(el.getAttribute("data-expires-in"));
    function tick() {
      var left = Math.max(0, Math.round((end - Date.now()) / 1000));
      el.textContent = Math.floor(left / 60) + ":" + pad(left % 60);
      if (left === 0) {
        el.textContent = "0:00 — it has expired: add the method again";
        return;
      }
      window.setTimeout(tick, 1000);
    }
    if (!isNaN(end)) tick();
  });
}

function startCopyButtons() {
  document.querySelectorAll("[data-copy]").forEach(function (button) {
    button.addEventListener("click", function () {
      var target = document.getElementById(button.getAttribute("data-copy"));
      if (!target || !navigator.clipboard) return;
      // A key is copied without the spaces that group it; a command line as it is shown.
      var text = target.hasAttribute("data-keep-spaces")
        ? target.textContent.trim()
        : target.textContent.replace(/\s+/g, "");
      navigator.clipboard.writeText(text).then(function () {
        button.textContent = "Copied";
        window.setTimeout(function () { button.textContent = "Copy"; }, 2000);
      });
    });
  });
}

document.addEventListener("DOMContentLoaded", function () {
  startCountdowns();
  startCopyButtons();
});
