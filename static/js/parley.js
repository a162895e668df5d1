/*
 * Parley dashboard glue. Vanilla JS, no build step.
 *
 * - Live feed: on organization pages (<body data-org-slug>), one websocket to
 *   /ws/o/<slug>/events/. Each message {"event": name, "data": {...}} is re-dispatched on
 *   `document` as a `parley:<name>` CustomEvent (detail = data), so any page script can listen.
 *   "ping" events show data.text as a toast. The socket reconnects with capped exponential backoff.
 *   `window.parleyLive = {connected, received}` exposes the state for tests. Page scripts open
 *   sockets of their own with `Parley.reconnecting(path, handlers)` and show `Parley.toast(text)`.
 * - Copy buttons: <button data-copy-target="#id"> copies that element's text.
 * - File inputs with data-max-bytes refuse a larger file before it is sent, with the message in
 *   data-too-large (the server refuses it anyway: this spares the wait).
 * - Colours people chose (a tag's, a session's): data-colour="#rrggbb" becomes the element's --colour
 *   custom property, for its CSS to use. Set through the CSSOM, which the Content-Security-Policy
 *   allows, where a style="" attribute would be refused; again on whatever is inserted later.
 */
(function () {
  "use strict";

  var live = { connected: false, received: [] };
  window.parleyLive = live;

  function toast(text) {
    var box = document.getElementById("toasts");
    if (!box || !text) return;
    var item = document.createElement("div");
    item.className = "toast";
    item.setAttribute("role", "status");
    item.setAttribute("data-testid", "toast");
    item.textContent = String(text);
    box.appendChild(item);
    setTimeout(function () {
      item.remove();
    }, 6000);
  }

  var STOP = { 4401: true, 4403: true, 4404: true }; // not allowed: retrying won't help

  /**
   * A websocket to `path` (e.g. "/ws/o/acme/inbox/") that reconnects with capped exponential
   * backoff and jitter. handlers.frame(event, data, payload) gets each {"event", "data"} message;
   * handlers.open(socket) and handlers.close() are told of each connection's start and end.
   */
  function reconnecting(path, handlers) {
    var attempt = 0;
    var stopped = false;

    function open() {
      var scheme = location.protocol === "https:" ? "wss" : "ws";
      var socket;
      try {
        socket = new WebSocket(scheme + "://" + location.host + path);
      } catch (err) {
        schedule();
        return;
      }
      socket.addEventListener("open", function () {
        attempt = 0;
        if (handlers.open) handlers.open(socket);
      });
      socket.addEventListener("message", function (message) {
        var payload;
        try {
          payload = JSON.parse(message.data);
        } catch (err) {
          return;
        }
        if (!payload || typeof payload.event !== "string") return;
        handlers.frame(payload.event, payload.data || {}, payload);
      });
      socket.addEventListener("close", function (event) {
        if (handlers.close) handlers.close();
        if (STOP[event.code]) stopped = true;
        schedule();
      });
    }

    function schedule() {
      if (stopped) return;
      var delay = Math.min(30000, 1000 * Math.pow(2, attempt)) * (0.75 + Math.random() * 0.5);
      attempt += 1;
      setTimeout(open, delay);
    }

    open();
  }

  function connect(slug) {
    reconnecting("/ws/o/" + encodeURIComponent(slug) + "/events/", {
      open: function () {
        live.connected = true;
        document.dispatchEvent(new CustomEvent("parley:connected"));
      },
      frame: function (event, data, payload) {
        live.received.push(payload);
        if (live.received.length > 200) live.received.shift();
        if (event === "ping") toast(data.text);
        document.dispatchEvent(new CustomEvent("parley:" + event, { detail: data }));
      },
      close: function () {
        var wasConnected = live.connected;
        live.connected = false;
        if (wasConnected) document.dispatchEvent(new CustomEvent("parley:disconnected"));
      },
    });
  }

  window.Parley = { toast: toast, reconnecting: reconnecting }; // for page scripts (inbox.js)

  function copyText(text) {
    if (navigator.clipboard && window.isSecureContext) {
      return navigator.clipboard.writeText(text);
    }
    // Plain-http installations: fall back to a selection copy.
    var area = document.createElement("textarea");
    area.value = text;
    area.setAttribute("readonly", "");
    area.style.position = "fixed";
    area.style.opacity = "0";
    document.body.appendChild(area);
    area.select();
    try {
      document.execCommand("copy");
    } finally {
      area.remove();
    }
    return Promise.resolve();
  }

  document.addEventListener("click", function (event) {
    var button = event.target.closest ? event.target.closest("[data-copy-target]") : null;
    if (!button) return;
    var source = document.querySelector(button.getAttribute("data-copy-target"));
    if (!source) return;
    var label = button.textContent;
    copyText(source.textContent.trim()).then(function () {
      button.textContent = button.getAttribute("data-copied-label") || "Copied";
      setTimeout(function () {
        button.textContent = label;
      }, 2000);
    });
  });

  document.addEventListener("change", function (event) {
    var input = event.target;
    if (!input.matches || !input.matches("input[type=file][data-max-bytes]")) return;
    var limit = Number(input.getAttribute("data-max-bytes"));
    var tooLarge = Array.prototype.some.call(input.files || [], function (file) {
      return file.size > limit;
    });
    input.setCustomValidity(tooLarge ? input.getAttribute("data-too-large") || "Too large" : "");
    if (tooLarge) input.reportValidity();
  });

  // Close an open <details> menu when clicking elsewhere.
  document.addEventListener("click", function (event) {
    document.querySelectorAll("details.menu[open]").forEach(function (menu) {
      if (!menu.contains(event.target)) menu.removeAttribute("open");
    });
  });

  var COLOUR = /^#[0-9a-fA-F]{3,8}$/;

  function paintColours(root) {
    if (!root || !root.querySelectorAll) return;
    var nodes = Array.prototype.slice.call(root.querySelectorAll("[data-colour]"));
    if (root.hasAttribute && root.hasAttribute("data-colour")) nodes.push(root);
    nodes.forEach(function (node) {
      var colour = node.getAttribute("data-colour");
      if (COLOUR.test(colour)) node.style.setProperty("--colour", colour);
    });
  }

  // Whatever is inserted later (htmx swaps, rows a script adds) is painted in the same task,
  // before it is ever drawn: htmx's own htmx:load comes a settle delay later, and a chip showed
  // the default colour until then.
  var painter = new MutationObserver(function (records) {
    records.forEach(function (record) {
      record.addedNodes.forEach(paintColours);
    });
  });

  function start() {
    paintColours(document);
    painter.observe(document.body, { childList: true, subtree: true });
    var slug = document.body && document.body.getAttribute("data-org-slug");
    if (slug && "WebSocket" in window) connect(slug);
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", start);
  } else {
    start();
  }
})();
