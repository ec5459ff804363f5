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

// Behaviour that used to be inline handlers (forbidden by the Content-Security-Policy): declared with
// data attributes in the templates, wired here once for the whole page.
(function () {
  // <form data-confirm="Delete …?">: ask before a plain (non-htmx) destructive submit.
  document.addEventListener("submit", function (event) {
    var form = event.target.closest("form[data-confirm]");
    if (form && !window.confirm(form.dataset.confirm)) event.preventDefault();
  }, true);

  // <select data-autosubmit>: saving the choice needs no button.
  document.addEventListener("change", function (event) {
    var select = event.target.closest("select[data-autosubmit]");
    if (select && select.form) select.form.requestSubmit();
  });

  // <form data-upload-progress> with a <progress>: htmx reports the upload's bytes.
  function bar(event) {
    var form = event.target.closest && event.target.closest("form[data-upload-progress]");
    return form ? form.querySelector("progress") : null;
  }
  document.addEventListener("htmx:beforeRequest", function (event) {
    var progress = bar(event);
    if (progress) { progress.hidden = false; progress.value = 0; }
  });
  document.addEventListener("htmx:xhr:progress", function (event) {
    var progress = bar(event);
    if (progress && event.detail.total) progress.value = event.detail.loaded / event.detail.total * 100;
  });
})();
