// The page's keyboard shortcuts (exactly the ones the "?" overlay lists), the theme, the collapsible side
// panels and toasts. Everything else is htmx.
(function () {
  var root = document.documentElement;
  var mac = /Mac|iPhone|iPad/.test(navigator.platform || "");

  function csrf() { return document.body.dataset.csrf || ""; }

  // --- toasts: short messages that do not move the page ------------------------------------------------
  function toast(text, kind) {
    var box = document.getElementById("toasts");
    if (!box) return;
    var item = document.createElement("div");
    item.className = "toast" + (kind ? " toast-" + kind : "");
    item.setAttribute("role", kind === "error" ? "alert" : "status");
    item.textContent = text;
    box.appendChild(item);
    setTimeout(function () { item.classList.add("toast-leaving"); }, 5000);
    setTimeout(function () { item.remove(); }, 5600);
  }
  window.CodingAgentToast = toast;
  document.addEventListener("htmx:responseError", function (event) {
    var xhr = event.detail.xhr;
    toast("The server answered " + xhr.status + (xhr.status === 403 ? ": you may not do that here." : ". Try again."), "error");
  });
  document.addEventListener("htmx:sendError", function () {
    toast("Could not reach the server. Check the connection and try again.", "error");
  });

  // --- theme: remembered on the account (all browsers) and in this browser -----------------------------
  // A choice the account has not confirmed yet stays "pending" in this browser and wins over the account's
  // older one (theme.js), so a reload right after a toggle, or a save that failed, never flips it back;
  // the next page sends it again.
  function saveTheme(theme) {
    var url = document.body.dataset.themeUrl;
    if (!url || !window.fetch) return;
    fetch(url, { method: "POST", credentials: "same-origin", keepalive: true, headers: { "X-CSRFToken": csrf() },
                 body: new URLSearchParams({ theme: theme }) })
      .then(function (response) {
        try { if (response.ok && localStorage.getItem("theme-pending") === theme) localStorage.removeItem("theme-pending"); } catch (e) {}
      })
      .catch(function () {});
  }
  function setTheme(theme) {
    root.dataset.theme = theme;
    root.dataset.themePref = theme;
    try { localStorage.setItem("theme", theme); localStorage.setItem("theme-pending", theme); } catch (e) {}
    document.dispatchEvent(new CustomEvent("themechange", { detail: { theme: theme } }));
    saveTheme(theme);
  }
  try { if (localStorage.getItem("theme-pending")) saveTheme(localStorage.getItem("theme-pending")); } catch (e) {}
  function toggleTheme() { setTheme(root.dataset.theme === "dark" ? "light" : "dark"); }

  // --- side panels: collapsible on wide screens (state remembered), drawers on narrow ones -------------
  var narrow = window.matchMedia("(max-width: 900px)");
  function panelEl(name) { return document.querySelector(".layout > ." + name); }
  function syncToggles() {
    ["sidebar", "aside"].forEach(function (name) {
      var el = panelEl(name);
      var open = el && (narrow.matches ? root.classList.contains(name + "-open") : !root.classList.contains(name + "-collapsed"));
      document.querySelectorAll('[data-toggle-panel="' + name + '"]').forEach(function (button) {
        button.hidden = !el;
        button.setAttribute("aria-expanded", open ? "true" : "false");
      });
    });
    var backdrop = document.querySelector("[data-drawer-backdrop]");
    if (backdrop) backdrop.hidden = !(narrow.matches && (root.classList.contains("sidebar-open") || root.classList.contains("aside-open")));
  }
  function togglePanel(name) {
    if (!panelEl(name)) return;
    if (narrow.matches) {
      var other = name === "sidebar" ? "aside" : "sidebar";
      root.classList.remove(other + "-open");
      root.classList.toggle(name + "-open");
    } else {
      var collapsed = root.classList.toggle(name + "-collapsed");
      try { localStorage.setItem("panel-" + name, collapsed ? "collapsed" : "open"); } catch (e) {}
      window.dispatchEvent(new Event("resize")); // charts re-fit the new width
    }
    syncToggles();
  }
  function closeDrawers() {
    root.classList.remove("sidebar-open", "aside-open");
    syncToggles();
  }
  if (narrow.addEventListener) narrow.addEventListener("change", closeDrawers);

  // --- Ctrl/Cmd+J: a new session in the current project, opened at once ---------------------------------
  function newSession() {
    var url = document.body.dataset.newSessionUrl;
    if (!url) { toast("Open a project first: new sessions start inside a project.", "info"); return; }
    var form = document.createElement("form");
    form.method = "post";
    form.action = url;
    form.hidden = true;
    var token = document.createElement("input");
    token.type = "hidden";
    token.name = "csrfmiddlewaretoken";
    token.value = csrf();
    form.appendChild(token);
    document.body.appendChild(form);
    form.submit();
  }

  function stopRun() {
    var stop = document.querySelector("[data-stop-run]");
    if (stop && window.confirm("Stop the running question?")) stop.click();
  }

  function openShortcuts() {
    var dialog = document.getElementById("shortcuts-dialog");
    if (dialog && !dialog.open) dialog.showModal();
  }

  document.addEventListener("click", function (event) {
    if (event.target.closest("[data-theme-toggle]")) toggleTheme();
    if (event.target.closest("[data-shortcuts-open]")) openShortcuts();
    var toggle = event.target.closest("[data-toggle-panel]");
    if (toggle) togglePanel(toggle.dataset.togglePanel);
    if (event.target.closest("[data-drawer-backdrop]")) closeDrawers();
  });

  document.addEventListener("keydown", function (event) {
    var target = event.target;
    var tag = (target.tagName || "").toLowerCase();
    var typing = tag === "input" || tag === "textarea" || tag === "select" || target.isContentEditable;
    var mod = mac ? event.metaKey : event.ctrlKey;
    var key = (event.key || "").toLowerCase();
    if (mod && !event.altKey) {
      if (key === "b") { event.preventDefault(); togglePanel(event.shiftKey ? "aside" : "sidebar"); return; }
      if (key === "j" && !event.shiftKey) { event.preventDefault(); newSession(); return; }
      if (key === "l" && event.shiftKey) { event.preventDefault(); toggleTheme(); return; }
    }
    // In the question box: Enter sends, Shift+Enter is a new line (the browser's own behaviour).
    if (target.id === "question-input" && event.key === "Enter" && !event.shiftKey && !mod && !event.isComposing) {
      var form = target.closest("form");
      if (form) { event.preventDefault(); if (target.value.trim()) form.requestSubmit(); }
      return;
    }
    if (event.key === "Escape") {
      if (root.classList.contains("sidebar-open") || root.classList.contains("aside-open")) { closeDrawers(); return; }
      if (!document.querySelector("dialog[open]")) stopRun();
      return;
    }
    if (typing || event.ctrlKey || event.metaKey || event.altKey) return;
    if (event.key === "/") {
      var box = document.querySelector("[data-focus-shortcut]");
      if (box && !box.disabled) { event.preventDefault(); box.focus(); }
    } else if (event.key === "?") {
      event.preventDefault();
      openShortcuts();
    }
  });

  // Tooltips name the platform's modifier key.
  function labelShortcuts() {
    if (!mac) return;
    document.querySelectorAll("[title*='Ctrl/⌘']").forEach(function (el) { el.title = el.title.replace("Ctrl/⌘", "⌘"); });
  }
  document.addEventListener("DOMContentLoaded", function () { syncToggles(); labelShortcuts(); });
  if (document.readyState !== "loading") { syncToggles(); labelShortcuts(); }
})();

// Copy buttons on code and answers, and the running question's elapsed time.
(function () {
  function copyText(text) {
    if (navigator.clipboard && window.isSecureContext) return navigator.clipboard.writeText(text);
    var area = document.createElement("textarea");
    area.value = text;
    document.body.appendChild(area);
    area.select();
    try { document.execCommand("copy"); } finally { area.remove(); }
    return Promise.resolve();
  }
  function addCopyButtons(scope) {
    if (!scope || !scope.querySelectorAll) return;
    scope.querySelectorAll(".step-code .step-body, .answer-body").forEach(function (body) {
      if (body.dataset.copyReady) return;
      body.dataset.copyReady = "1";
      var button = document.createElement("button");
      button.type = "button";
      button.className = "copy-button";
      button.textContent = "Copy";
      button.title = body.classList.contains("answer-body") ? "Copy the answer" : "Copy the code";
      button.addEventListener("click", function () {
        copyText(body.innerText).then(function () {
          button.textContent = "Copied";
          setTimeout(function () { button.textContent = "Copy"; }, 1500);
        });
      });
      body.parentNode.insertBefore(button, body);
    });
  }
  function tick() {
    document.querySelectorAll("[data-elapsed-since]").forEach(function (el) {
      var since = Date.parse(el.dataset.elapsedSince);
      if (isNaN(since)) return;
      var seconds = Math.max(0, Math.round((Date.now() - since) / 1000));
      el.textContent = seconds < 60 ? seconds + " s" : Math.floor(seconds / 60) + " min " + (seconds % 60) + " s";
    });
  }
  setInterval(tick, 1000);
  document.addEventListener("DOMContentLoaded", function () { addCopyButtons(document.body); tick(); });
  document.addEventListener("htmx:load", function (event) { addCopyButtons(event.detail.elt); tick(); });
  document.addEventListener("htmx:oobAfterSwap", function (event) { addCopyButtons(event.detail.target); tick(); });
  if (document.readyState !== "loading") addCopyButtons(document.body);
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

// Empty states' actions. <a data-focus-target="#selector">: focus that field (a file input opens its chooser),
// opening the side drawer it sits in at phone width. <button data-example-question="…">: put the text in the
// question box, ready to send or edit.
(function () {
  var root = document.documentElement;
  function reveal(el) {
    var panel = el.closest(".layout > .sidebar, .layout > .aside");
    if (panel && window.matchMedia("(max-width: 900px)").matches) {
      var name = panel.classList.contains("sidebar") ? "sidebar" : "aside";
      if (!root.classList.contains(name + "-open")) {
        var toggle = document.querySelector('[data-toggle-panel="' + name + '"]');
        if (toggle) toggle.click();
      }
    }
  }
  document.addEventListener("click", function (event) {
    var link = event.target.closest("[data-focus-target]");
    if (link) {
      var field = document.querySelector(link.dataset.focusTarget);
      if (!field) return; // the link's own href still leads there
      event.preventDefault();
      reveal(field);
      field.focus();
      if (field.type === "file") field.click();
      return;
    }
    var example = event.target.closest("[data-example-question]");
    if (example) {
      var box = document.getElementById("question-input");
      if (!box || box.disabled) return;
      box.value = example.dataset.exampleQuestion;
      reveal(box);
      box.focus();
      box.setSelectionRange(box.value.length, box.value.length);
    }
  });
})();
