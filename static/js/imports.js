/*
 * The import job page (templates/messaging/imports/job.html): follows `parley:import.progress`
 * events (pushed by the worker after each batch) and, whenever the live feed (re)connects, reads
 * the job's current state from the API so nothing pushed while disconnected is missed.
 */
(function () {
  "use strict";

  var box = document.getElementById("import-job");
  if (!box) return;
  var jobId = Number(box.getAttribute("data-job-id"));
  var labels = JSON.parse(box.getAttribute("data-state-labels") || "{}");
  var slug = document.body.getAttribute("data-org-slug");

  function text(id, value) {
    var el = document.getElementById(id);
    if (el) el.textContent = String(value);
  }

  function show(id, visible) {
    var el = document.getElementById(id);
    if (el) el.hidden = !visible;
  }

  function apply(data) {
    if (!data || Number(data.id) !== jobId) return;
    var bar = document.getElementById("import-progress");
    var total = data.total_rows || 0;
    var done = data.processed_rows || 0;
    if (data.state === "done") done = total = Math.max(total, done, 1);
    bar.max = Math.max(total, 1);
    bar.value = done;
    bar.setAttribute("aria-valuenow", String(done));
    bar.setAttribute("aria-valuemax", String(total));
    text("import-processed", data.processed_rows || 0);
    text("import-total", data.total_rows == null ? "?" : data.total_rows);
    text("import-created", data.created_count || 0);
    text("import-updated", data.updated_count || 0);
    text("import-error-count", data.error_count || 0);
    var state = document.getElementById("import-state");
    state.setAttribute("data-state", data.state);
    state.textContent = labels[data.state] || data.state;
    text("import-failure", data.failure || "");
    show("import-failure", !!data.failure);
    show("import-errors-link", !!data.has_error_report);
    show("import-contacts-link", data.state === "done");
  }

  function refresh() {
    fetch("/api/v1/imports/" + jobId + "/", {
      headers: { Accept: "application/json", "X-Organization": slug || "" },
      credentials: "same-origin",
    })
      .then(function (response) {
        return response.ok ? response.json() : null;
      })
      .then(apply)
      .catch(function () {});
  }

  document.addEventListener("parley:import.progress", function (event) {
    apply(event.detail);
  });
  document.addEventListener("parley:connected", refresh);
})();
