// Applies the colour theme and the side panels' state before the page paints (no flash, no jump).
// Theme: a choice made here that the account has not confirmed yet (app.js), then the user's saved choice
// (data-theme-pref, stored on the account), then this browser's last choice, then the system setting.
(function () {
  var root = document.documentElement;
  var pref = root.dataset.themePref || "";
  var saved = null, pending = null;
  try { saved = localStorage.getItem("theme"); pending = localStorage.getItem("theme-pending"); } catch (e) {}
  var choice = pending || (pref && pref !== "system" ? pref : pref === "system" ? null : saved);
  var dark = choice ? choice === "dark" : window.matchMedia("(prefers-color-scheme: dark)").matches;
  root.dataset.theme = dark ? "dark" : "light";
  ["sidebar", "aside"].forEach(function (panel) {
    var collapsed = null;
    try { collapsed = localStorage.getItem("panel-" + panel); } catch (e) {}
    if (collapsed === "collapsed") root.classList.add(panel + "-collapsed");
  });
})();
