/*
 * Bulk actions on contacts.
 *
 * - The form (#bulk-form, on the contacts list): only the fields the chosen action takes are shown
 *   (and sent), and "Delete" asks first (the button's data-confirm-delete).
 * - The job page (#bulk-job): follows the job's progress as the live feed pushes it
 *   (parley:bulk.progress), reads the job again whenever the feed (re)connects, and reloads once
 *   when it finishes, so the page offers Undo (or shows the error) from the server's view. The
 *   state names come from the section's data-label-<state> attributes.
 */
(function () {
  "use strict";

  function setUpForm() {
    var form = document.getElementById("bulk-form");
    var select = document.getElementById("bulk-action");
    if (!form || !select) return;
    function show() {
      form.querySelectorAll(".bulk-field").forEach(function (field) {
        var on = field.getAttribute("data-for").split(" ").indexOf(select.value) !== -1;
        field.hidden = !on;
        field.querySelectorAll("input, select").forEach(function (input) {
          input.disabled = !on;
        });
      });
    }
    select.addEventListener("change", show);
    show();
    form.addEventListener("submit", function (event) {
      var button = document.getElementById("bulk-submit");
      if (select.value === "delete" && !window.confirm(button.getAttribute("data-confirm-delete"))) {
        event.preventDefault();
      }
    });
  }

  function setUpJob() {
    var box = document.getElementById("bulk-job");
    if (!box) return;
    var jobId = Number(box.getAttribute("data-job-id"));

    function apply(data) {
      if (!data || data.job !== jobId) return;
      var bar = document.getElementById("bulk-progress");
      bar.max = Math.max(data.total || 0, 1);
      bar.value = data.total ? data.processed : data.state === "done" ? 1 : 0;
      document.getElementById("bulk-processed").textContent = data.processed;
      document.getElementById("bulk-total").textContent = data.total;
      document.getElementById("bulk-affected").textContent = data.affected;
      document.getElementById("bulk-state").textContent =
        box.getAttribute("data-label-" + data.state) || data.state;
      var was = box.getAttribute("data-state");
      box.setAttribute("data-state", data.state);
      if ((data.state === "done" || data.state === "failed") && (was === "queued" || was === "running")) {
        window.location.reload();
      }
    }

    document.addEventListener("parley:bulk.progress", function (event) {
      apply(event.detail);
    });
    // Progress pushed before the socket was open (a small job can finish while this page loads)
    // would otherwise never arrive.
    document.addEventListener("parley:connected", function () {
      fetch("/api/v1/bulk-jobs/" + jobId + "/", {
        headers: {
          Accept: "application/json",
          "X-Organization": document.body.getAttribute("data-org-slug") || "",
        },
        credentials: "same-origin",
      })
        .then(function (response) {
          return response.ok ? response.json() : null;
        })
        .then(function (job) {
          if (job) apply(Object.assign({}, job, { job: job.id }));
        })
        .catch(function () {});
    });
  }

  function start() {
    setUpForm();
    setUpJob();
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", start);
  } else {
    start();
  }
})();
