// Numbers in answers: clicking a verified number (or Enter/Space on it) scrolls to the step that computed it and
// highlights where: the table cell (loading a table not loaded yet, then fetching the table page that holds the row),
// the printed line, or final_result.
(function () {
  var HIGHLIGHT_MS = 4000;

  function flash(el) {
    el.classList.remove("claim-target");
    void el.offsetWidth; // restart the highlight when the same source is clicked twice
    el.classList.add("claim-target");
    el.scrollIntoView({ block: "center", behavior: "smooth" });
    setTimeout(function () { el.classList.remove("claim-target"); }, HIGHLIGHT_MS);
  }

  function stepFor(mark) {
    var run = mark.closest(".run");
    return run && run.querySelector('.step[data-ordinal="' + mark.dataset.claimStep + '"]');
  }

  function markLine(step, line) {
    // The claim counts lines over the printed output followed by the displayed value (analysis/selectors.py).
    var blocks = [step.querySelector("pre.stdout"), step.querySelector("pre.display")].filter(Boolean);
    for (var i = 0; i < blocks.length; i++) {
      var lines = blocks[i].textContent.split("\n");
      if (line <= lines.length) {
        blocks[i].textContent = "";
        lines.forEach(function (text, index) {
          var node = document.createTextNode(text);
          if (index === line - 1) {
            var mark = document.createElement("mark");
            mark.className = "claim-line";
            mark.appendChild(node);
            node = mark;
          }
          blocks[i].appendChild(node);
          if (index < lines.length - 1) blocks[i].appendChild(document.createTextNode("\n"));
        });
        return blocks[i].querySelector("mark.claim-line") || blocks[i];
      }
      line -= lines.length;
    }
    return blocks[0] || step;
  }

  function tableCell(table, row, column) {
    var headers = Array.prototype.map.call(table.querySelectorAll("thead th"), function (th) {
      return th.textContent.replace(/[▲▼]/g, "").trim();
    });
    var col = headers.indexOf(column);
    var tr = table.querySelectorAll("tbody tr")[row - (parseInt(table.dataset.start, 10) - 1)];
    return tr && col >= 0 ? tr.children[col] : null;
  }

  var LOAD_WAIT_MS = 15000;

  // A table still showing its placeholder: ask htmx to load it (load-table, one of its hx-triggers; dropped
  // when its own intersect request is already in flight) and resolve once its first page replaced it (or it
  // failed, or took too long: the caller then highlights the step).
  function tableLoaded(placeholder) {
    var id = placeholder.id;
    return new Promise(function (resolve) {
      var timer;
      function finish() {
        clearTimeout(timer);
        document.removeEventListener("htmx:afterSettle", settled);
        document.removeEventListener("htmx:responseError", failed);
        document.removeEventListener("htmx:sendError", failed);
        resolve();
      }
      function settled() {
        var el = document.getElementById(id);
        if (!el || !el.hasAttribute("data-lazy")) finish();
      }
      function failed(event) {
        if (event.detail && event.detail.elt === placeholder) finish();
      }
      timer = setTimeout(finish, LOAD_WAIT_MS);
      document.addEventListener("htmx:afterSettle", settled);
      document.addEventListener("htmx:responseError", failed);
      document.addEventListener("htmx:sendError", failed);
      htmx.trigger(placeholder, "load-table");
    });
  }

  function showCell(step, row, column, waited) {
    var table = step.querySelector("div.artifact-table[data-detail-url]");
    if (!table) return flash(step);
    if (table.hasAttribute("data-lazy")) {
      if (waited) return flash(step);
      return tableLoaded(table).then(function () { showCell(step, row, column, true); });
    }
    var cell = table.dataset.sort ? null : tableCell(table, row, column);
    if (cell) return flash(cell);
    // Another page (or a sorted view) is showing: fetch the unsorted page that holds the row, then highlight.
    var page = Math.floor(row / parseInt(table.dataset.pageSize, 10)) + 1;
    htmx.ajax("GET", table.dataset.detailUrl + "?page=" + page, { target: "#" + table.id, swap: "outerHTML" })
      .then(function () {
        var fresh = step.querySelector("div.artifact-table[data-detail-url]");
        flash((fresh && tableCell(fresh, row, column)) || step);
      });
  }

  function follow(mark) {
    var step = stepFor(mark);
    if (!step) return;
    var work = step.closest("details");
    if (work) work.open = true;
    step.querySelectorAll("details.step-fold").forEach(function (fold) { fold.open = true; });
    var source = mark.dataset.claimSource;
    if (source === "table") return showCell(step, parseInt(mark.dataset.claimRow, 10), mark.dataset.claimColumn);
    if (source === "stdout") return flash(markLine(step, parseInt(mark.dataset.claimLine, 10)));
    flash(step.querySelector(".final-result") || step);
  }

  document.addEventListener("click", function (event) {
    var mark = event.target.closest && event.target.closest(".claim-verified");
    if (mark) follow(mark);
  });
  document.addEventListener("keydown", function (event) {
    var mark = event.target.closest && event.target.closest(".claim-verified");
    if (mark && (event.key === "Enter" || event.key === " ")) {
      event.preventDefault();
      follow(mark);
    }
  });
})();
