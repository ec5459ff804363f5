// Session page: keeps the websocket cursor (last step pk on the page) and makes pushes idempotent.
(function () {
  function stream() { return document.getElementById("session-stream"); }

  // Every (re)connect asks for the steps after the client's cursor, so the ws extension's auto-reconnect
  // repairs whatever was missed while the socket was down.
  function wrapCreateWebSocket() {
    if (!window.htmx || !htmx.createWebSocket || htmx.createWebSocket.__withCursor) return;
    var original = htmx.createWebSocket;
    var wrapped = function (url) {
      var el = stream();
      var after = el ? el.dataset.after || "0" : "0";
      var clean = url.replace(/([?&])after=\d*&?/, "$1").replace(/[?&]$/, "");
      return original(clean + (clean.indexOf("?") >= 0 ? "&" : "?") + "after=" + after);
    };
    wrapped.__withCursor = true;
    htmx.createWebSocket = wrapped;
  }
  wrapCreateWebSocket();
  document.addEventListener("DOMContentLoaded", wrapCreateWebSocket);

  // Insertions (beforeend) of an element whose id is already on the page are skipped: a step or run may
  // arrive both from the snapshot and from a push, or from the form response and the socket.
  document.addEventListener("htmx:oobBeforeSwap", function (event) {
    var fragment = event.detail.fragment;
    var first = fragment && (fragment.firstElementChild || null);
    if (!first || !first.id) return;
    if (event.detail.target && event.detail.target.id === first.id) return; // an outerHTML replacement
    if (document.getElementById(first.id)) event.detail.shouldSwap = false;
  });

  // Advance the cursor to the newest step pk this message carried.
  document.addEventListener("htmx:wsBeforeMessage", function (event) {
    var el = stream();
    if (!el) return;
    var re = /data-step-pk="(\d+)"/g, match, max = parseInt(el.dataset.after || "0", 10);
    while ((match = re.exec(event.detail.message)) !== null) max = Math.max(max, parseInt(match[1], 10));
    el.dataset.after = String(max);
  });

  // Keep the newest content in view while a run streams, unless the user scrolled up to read.
  document.addEventListener("htmx:wsAfterMessage", function () {
    var nearBottom = window.innerHeight + window.scrollY >= document.body.scrollHeight - 200;
    if (nearBottom) window.scrollTo(0, document.body.scrollHeight);
  });

  // After asking, clear the draft and focus stays in the box for the next question.
  document.addEventListener("htmx:afterSwap", function (event) {
    if (event.detail.target && event.detail.target.id === "composer") {
      var box = document.getElementById("question-input");
      if (box && !box.disabled) box.focus();
    }
  });
})();
