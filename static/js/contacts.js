/*
 * The contacts list: columns chosen by the user, and "select all on this page".
 *
 * Columns: each <input data-col-toggle="x"> in the Columns menu shows or hides every cell with
 * data-col="x". The choice is kept in localStorage under the table's data-columns-key (per
 * organization) as {"x": true|false}; a column never chosen keeps the menu's default (its initial
 * `checked`). Hidden columns are written as rules into one constructed style sheet (CSSOM, which
 * the Content-Security-Policy allows, unlike a <style> element), so rows swapped in by htmx (search
 * as you type) follow without being touched.
 */
(function () {
  "use strict";

  function readChoices(key) {
    try {
      var value = JSON.parse(localStorage.getItem(key) || "{}");
      return value && typeof value === "object" ? value : {};
    } catch (err) {
      return {};
    }
  }

  function writeChoices(key, choices) {
    try {
      localStorage.setItem(key, JSON.stringify(choices));
    } catch (err) {
      /* private mode or full: the choice lasts for this page only */
    }
  }

  function cssString(text) {
    return '"' + String(text).replace(/["\\]/g, "\\$&") + '"';
  }

  var columnSheet = null;

  function applyColumns(table, toggles) {
    if (!columnSheet) {
      columnSheet = new CSSStyleSheet();
      document.adoptedStyleSheets = document.adoptedStyleSheets.concat([columnSheet]);
    }
    var rules = [];
    toggles.forEach(function (toggle) {
      if (!toggle.checked) {
        rules.push("#" + table.id + " [data-col=" + cssString(toggle.getAttribute("data-col-toggle")) + "]{display:none}");
      }
    });
    columnSheet.replaceSync(rules.join("\n"));
    table.setAttribute("data-hidden-columns", String(rules.length));
  }

  function setUpColumns() {
    var table = document.getElementById("contacts-table");
    if (!table) return;
    var key = table.getAttribute("data-columns-key") || "parley.contacts.columns";
    var toggles = Array.prototype.slice.call(document.querySelectorAll("[data-col-toggle]"));
    var choices = readChoices(key);
    toggles.forEach(function (toggle) {
      var name = toggle.getAttribute("data-col-toggle");
      if (Object.prototype.hasOwnProperty.call(choices, name)) toggle.checked = !!choices[name];
      toggle.addEventListener("change", function () {
        var current = readChoices(key);
        current[name] = toggle.checked;
        writeChoices(key, current);
        applyColumns(table, toggles);
      });
    });
    applyColumns(table, toggles);
  }

  function rowBoxes() {
    return Array.prototype.slice.call(document.querySelectorAll('#contact-rows input[name="ids"]'));
  }

  function syncSelectAll() {
    var all = document.getElementById("select-all");
    if (!all) return;
    var boxes = rowBoxes();
    var checked = boxes.filter(function (box) { return box.checked; }).length;
    all.checked = boxes.length > 0 && checked === boxes.length;
    all.indeterminate = checked > 0 && checked < boxes.length;
  }

  function setUpSelection() {
    var all = document.getElementById("select-all");
    if (!all) return;
    all.addEventListener("change", function () {
      var wanted = all.checked; // each row's change event re-syncs the header box meanwhile
      rowBoxes().forEach(function (box) {
        if (box.checked !== wanted) {
          box.checked = wanted;
          box.dispatchEvent(new Event("change", { bubbles: true }));
        }
      });
      syncSelectAll();
    });
    document.addEventListener("change", function (event) {
      if (event.target && event.target.name === "ids" && event.target.closest("#contact-rows")) syncSelectAll();
    });
    // New rows (search as you type) arrive unselected.
    document.body.addEventListener("htmx:afterSwap", function (event) {
      if (event.target && event.target.id === "contact-rows") syncSelectAll();
    });
  }

  function start() {
    setUpColumns();
    setUpSelection();
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", start);
  } else {
    start();
  }
})();
