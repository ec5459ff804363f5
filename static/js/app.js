// Theme toggle and keyboard shortcuts. Everything else is htmx.
(function () {
  function setTheme(theme) {
    document.documentElement.dataset.theme = theme;
    try { localStorage.setItem("theme", theme); } catch (e) {}
    document.dispatchEvent(new CustomEvent("themechange", { detail: { theme: theme } }));
  }
  function toggleTheme() {
    setTheme(document.documentElement.dataset.theme === "dark" ? "light" : "dark");
  }
  document.addEventListener("click", function (event) {
    if (event.target.closest("[data-theme-toggle]")) toggleTheme();
  });
  document.addEventListener("keydown", function (event) {
    var tag = (event.target.tagName || "").toLowerCase();
    var typing = tag === "input" || tag === "textarea" || event.target.isContentEditable;
    // Ctrl/Cmd+Enter submits the question box from anywhere inside it.
    if ((event.ctrlKey || event.metaKey) && event.key === "Enter" && typing) {
      var form = event.target.closest("form");
      if (form) { event.preventDefault(); form.requestSubmit(); }
      return;
    }
    if (typing) return;
    if (event.key === "D" && event.shiftKey) toggleTheme();
    if (event.key === "/") {
      var box = document.querySelector("[data-focus-shortcut]");
      if (box) { event.preventDefault(); box.focus(); }
    }
  });
})();
