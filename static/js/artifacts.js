// Draws plotly artifacts: on first load and on htmx:load / htmx:oobAfterSwap (websocket pushes),
// follows the light/dark theme (themechange from app.js) and resizes with the layout; marks lazy tables
// whose first page failed to load.
(function () {
  if (window.CodingAgentArtifacts) return; // loaded twice: keep one set of listeners

  // plotly.js adds <style> elements for its modebar as it draws; under the Content-Security-Policy only
  // elements carrying the page's nonce apply. Our own scripts are the only ones that can run here
  // (script-src is nonce/'self' only), so lending them the nonce for styles widens nothing.
  var nonce = (document.currentScript && document.currentScript.nonce) || "";
  if (nonce && !document.createElement.__withNonce) {
    var createElement = document.createElement;
    var withNonce = function (tag, options) {
      var el = createElement.call(document, tag, options);
      if (String(tag).toLowerCase() === "style") el.setAttribute("nonce", nonce);
      return el;
    };
    withNonce.__withNonce = true;
    document.createElement = withNonce;
  }
  var plotlyPromise = null;

  function loadPlotly(src) {
    if (window.Plotly) return Promise.resolve(window.Plotly);
    if (!plotlyPromise) {
      plotlyPromise = new Promise(function (resolve, reject) {
        var script = document.createElement("script");
        script.src = src;
        script.onload = function () { resolve(window.Plotly); };
        script.onerror = function () { plotlyPromise = null; reject(new Error("plotly.js failed to load")); };
        document.head.appendChild(script);
      });
    }
    return plotlyPromise;
  }

  function cssVar(name, fallback) {
    var value = getComputedStyle(document.documentElement).getPropertyValue(name).trim();
    return value || fallback;
  }

  // Colours that follow the page theme; applied to every axis the figure has.
  function themeLayout(layout) {
    var text = cssVar("--text", "#1d2430"), grid = cssVar("--border", "#dfe3e8");
    var patch = {
      paper_bgcolor: "rgba(0,0,0,0)",
      plot_bgcolor: "rgba(0,0,0,0)",
      "font.color": text,
      "legend.bgcolor": "rgba(0,0,0,0)",
      "title.font.color": text
    };
    Object.keys(layout || {}).concat(["xaxis", "yaxis"]).forEach(function (key) {
      if (/^[xy]axis\d*$/.test(key)) {
        patch[key + ".gridcolor"] = grid;
        patch[key + ".zerolinecolor"] = grid;
        patch[key + ".linecolor"] = grid;
        patch[key + ".color"] = text;
      }
    });
    return patch;
  }

  function applyPatch(layout, patch) {
    Object.keys(patch).forEach(function (path) {
      var parts = path.split("."), node = layout;
      for (var i = 0; i < parts.length - 1; i++) {
        if (typeof node[parts[i]] !== "object" || node[parts[i]] === null) node[parts[i]] = {};
        node = node[parts[i]];
      }
      node[parts[parts.length - 1]] = patch[path];
    });
    return layout;
  }

  function readFigure(el) {
    var script = document.getElementById(el.dataset.figureId);
    if (script) return Promise.resolve(JSON.parse(script.textContent));
    return fetch(el.dataset.figureSrc, { credentials: "same-origin" }).then(function (r) {
      if (!r.ok) throw new Error("figure request failed: " + r.status);
      return r.json();
    });
  }

  function draw(el) {
    if (el.dataset.drawn) return;
    el.dataset.drawn = "pending";
    Promise.all([loadPlotly(el.dataset.plotlySrc), readFigure(el)]).then(function (results) {
      var Plotly = results[0], figure = results[1];
      var layout = applyPatch(figure.layout || {}, themeLayout(figure.layout));
      layout.autosize = true;
      delete layout.width;
      return Plotly.newPlot(el, figure.data || [], layout, { responsive: true, displaylogo: false });
    }).then(function () {
      el.dataset.drawn = "yes";
    }).catch(function (error) {
      el.dataset.drawn = "failed";
      el.classList.add("is-failed");
      el.textContent = "The interactive chart could not be drawn (" + error.message + "). Use the PNG/SVG download.";
    });
  }

  function init(root) {
    if (!root || !root.querySelectorAll) return;
    if (root.matches && root.matches("[data-plotly-chart]")) draw(root);
    root.querySelectorAll("[data-plotly-chart]").forEach(draw);
  }

  document.addEventListener("DOMContentLoaded", function () { init(document.body); });
  document.addEventListener("htmx:load", function (event) { init(event.detail && event.detail.elt || event.target); });
  document.addEventListener("htmx:oobAfterSwap", function (event) { init(event.detail && event.detail.target || event.target); });
  document.addEventListener("themechange", function () {
    if (!window.Plotly) return;
    document.querySelectorAll('[data-plotly-chart][data-drawn="yes"]').forEach(function (el) {
      window.Plotly.relayout(el, themeLayout(el.layout));
    });
  });
  // A lazy table whose first page could not be fetched (htmx swaps no error response): say so, keep the link.
  function tableFailed(event) {
    var el = event.detail && event.detail.elt;
    if (!el || !el.matches || !el.matches(".artifact-table[data-lazy]")) return;
    el.classList.add("is-failed");
    el.removeAttribute("aria-busy");
    var note = el.querySelector(".table-footer .muted");
    if (note && !note.dataset.failed) {
      note.dataset.failed = "yes";
      note.insertBefore(document.createTextNode("The table could not be loaded. "), note.firstChild);
    }
  }
  document.addEventListener("htmx:responseError", tableFailed);
  document.addEventListener("htmx:sendError", tableFailed);
  if (document.readyState !== "loading") init(document.body);
  window.CodingAgentArtifacts = { init: init };
})();
