// Export menu: fetch the export so the page can show progress (building on the server, then downloading)
// and a readable error, then hand the file to the browser. Plain links keep working without JavaScript.
(function () {
  function sizeText(bytes) {
    if (bytes < 1024) return bytes + " B";
    if (bytes < 1024 * 1024) return (bytes / 1024).toFixed(0) + " KB";
    return (bytes / 1024 / 1024).toFixed(1) + " MB";
  }

  function filenameFrom(header, fallback) {
    if (!header) return fallback;
    var star = /filename\*=UTF-8''([^;]+)/i.exec(header);
    if (star) { try { return decodeURIComponent(star[1]); } catch (e) {} }
    var plain = /filename="([^"]+)"/i.exec(header);
    return plain ? plain[1] : fallback;
  }

  async function errorText(response) {
    try {
      var body = await response.json();
      if (body && body.detail) return body.detail;
    } catch (e) {}
    return "the server answered " + response.status + " " + response.statusText;
  }

  async function download(link, status) {
    var label = link.dataset.export;
    var menu = link.closest("[data-export-menu]");
    var started = Date.now();
    var say = function (text, state) {
      status.hidden = false;
      status.textContent = text;
      status.dataset.state = state;
    };
    var tick = setInterval(function () {
      say("Preparing the " + label + "… " + Math.round((Date.now() - started) / 1000) + " s", "busy");
    }, 1000);
    menu.setAttribute("aria-busy", "true");
    say("Preparing the " + label + "…", "busy");
    try {
      var response = await fetch(link.href, { credentials: "same-origin" });
      clearInterval(tick);
      if (!response.ok) throw new Error(await errorText(response));
      var chunks = [], received = 0, reader = response.body.getReader();
      for (;;) {
        var part = await reader.read();
        if (part.done) break;
        chunks.push(part.value);
        received += part.value.length;
        say("Downloading the " + label + "… " + sizeText(received), "busy");
      }
      var blob = new Blob(chunks, { type: response.headers.get("Content-Type") || "application/octet-stream" });
      var name = filenameFrom(response.headers.get("Content-Disposition"), "export");
      var url = URL.createObjectURL(blob);
      var save = document.createElement("a");
      save.href = url;
      save.download = name;
      document.body.appendChild(save);
      save.click();
      save.remove();
      setTimeout(function () { URL.revokeObjectURL(url); }, 60000);
      say("Saved " + name + " (" + sizeText(received) + ")", "done");
    } catch (error) {
      clearInterval(tick);
      say("Export failed: " + error.message, "error");
    } finally {
      menu.removeAttribute("aria-busy");
    }
  }

  document.addEventListener("click", function (event) {
    var link = event.target.closest("[data-export-menu] a[data-export]");
    if (!link || !window.fetch || !window.ReadableStream) return;
    var menu = link.closest("[data-export-menu]");
    event.preventDefault();
    if (menu.getAttribute("aria-busy") === "true") return; // one export at a time per menu
    download(link, menu.querySelector(".export-status"));
  });
})();
