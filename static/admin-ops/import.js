// Polls an import's progress once a second and redraws its rows (sync.admin_views).
(function () {
  "use strict";
  var root = document.querySelector("[data-import-progress]");
  if (!root) return;
  var url = root.getAttribute("data-import-progress");

  function text(row, name, value) {
    var cell = row.querySelector('[data-field="' + name + '"]');
    if (!cell) return null;
    // Keep nested help text (ETA note) by writing into the first text node only.
    var node = cell.firstChild;
    if (node && node.nodeType === Node.TEXT_NODE) node.nodeValue = value;
    else cell.insertBefore(document.createTextNode(value), cell.firstChild);
    return cell;
  }

  function draw(data) {
    var state = document.getElementById("import-state");
    state.textContent = data.state;
    state.setAttribute("data-state", data.state);
    var error = document.getElementById("import-error");
    if (error) {
      error.textContent = data.error || "";
      error.hidden = !data.error;
    }
    data.entities.forEach(function (e) {
      var row = root.querySelector('tr[data-entity="' + e.entity + '"]');
      if (!row) return;
      var status = row.querySelector('[data-field="status"]');
      status.textContent = e.status;
      status.className = "ops-status ops-status-" + e.status;
      var bar = row.querySelector('[data-field="bar"]');
      var known = e.percent !== null;
      bar.classList.toggle("ops-bar-indeterminate", !known && !e.done);
      if (known) bar.setAttribute("aria-valuenow", Math.round(e.percent));
      else bar.removeAttribute("aria-valuenow");
      bar.firstElementChild.style.width = (known ? e.percent : 0) + "%";
      row.querySelector('[data-field="percent"]').textContent = known ? Math.round(e.percent) + "%" : "—";
      row.querySelector('[data-field="message"]').textContent = e.message || "";
      var fetched = text(row, "fetched", e.fetched + (e.total !== null ? " / " + e.total : ""));
      if (fetched && e.total_source) fetched.title = "Total: " + e.total_source;
      text(row, "written", String(e.written));
      text(row, "failed", String(e.failed));
      text(row, "rate", e.rate ? e.rate + "/s" : "—");
      text(row, "eta", e.eta_seconds !== null ? Math.round(e.eta_seconds) + " s" : "—");
      row.querySelector('[data-field="eta_note"]').textContent = e.eta_note || "";
    });
    document.getElementById("cancel-form").hidden = data.finished;
    document.getElementById("import-done").hidden = !data.finished;
    return data.finished;
  }

  function poll() {
    fetch(url, { headers: { Accept: "application/json" }, credentials: "same-origin" })
      .then(function (r) { if (!r.ok) throw new Error(r.status); return r.json(); })
      .then(function (data) { if (!draw(data)) setTimeout(poll, 1000); })
      .catch(function () { setTimeout(poll, 3000); });
  }
  var initial = document.getElementById("import-state").getAttribute("data-state");
  if (initial !== "finished" && initial !== "cancelled" && initial !== "failed") {
    setTimeout(poll, 1000);
  }
})();
