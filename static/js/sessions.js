/*
 * Live session pages (templates/sessions_app/*.html): a websocket per page; status badges,
 * QR codes and pairing codes change in place, with no reload and no polling. When the socket
 * (re)connects, the page reads the current state from the API, so nothing pushed while it was
 * away is missed.
 */
(function () {
  "use strict";

  var slug = document.body.getAttribute("data-org-slug");
  if (!slug) return;
  var live = document.getElementById("session-live");
  var list = document.getElementById("session-list");
  if (!live && !list) return;
  var sessionId = live ? live.getAttribute("data-session") : null;
  var canPair = live && live.getAttribute("data-can-pair") === "1";
  window.parleySessionFrames = 0; // how many frames arrived (tests read it)

  function setBadge(badge, status, label) {
    if (!badge) return;
    badge.className = "badge status-" + status;
    badge.setAttribute("data-status", status);
    badge.textContent = label || status;
  }

  function applyStatus(data) {
    if (list) {
      var card = list.querySelector('[data-session="' + data.session + '"]');
      if (card) setBadge(card.querySelector('[data-role="status"]'), data.status, data.status_label);
    }
    if (!live || data.session !== sessionId) return;
    setBadge(document.getElementById("session-status"), data.status, data.status_label);
    var reason = document.getElementById("session-reason");
    if (reason) reason.textContent = data.reason || "";
    var connected = document.getElementById("session-connected-as");
    if (connected) connected.hidden = data.status !== "ready";
    var phone = document.getElementById("session-phone");
    if (phone) phone.textContent = data.phone_number ? "+" + data.phone_number.replace(/^\+/, "") : "";
    var name = document.getElementById("session-display-name");
    if (name) name.textContent = data.display_name || "";
    var pairing = document.getElementById("pairing");
    if (pairing) pairing.hidden = data.status !== "qr";
    // Actions that make sense in this state only (data-when lists the states).
    live.querySelectorAll("[data-when]").forEach(function (el) {
      el.hidden = el.getAttribute("data-when").split(" ").indexOf(data.status) === -1;
    });
  }

  function applyQr(data) {
    if (!live || data.session !== sessionId) return;
    var img = document.getElementById("session-qr");
    if (img && data.image) {
      img.src = data.image;
      img.hidden = false;
      img.setAttribute("data-expires", data.expires_at || "");
    }
    var code = document.getElementById("session-pairing-code");
    if (code) {
      code.textContent = data.pairing_code || "";
      code.hidden = !data.pairing_code;
    }
    var pairing = document.getElementById("pairing");
    if (pairing) pairing.hidden = false;
  }

  function refresh() {
    if (!sessionId) return;
    var headers = { Accept: "application/json", "X-Organization": slug };
    fetch("/api/v1/sessions/" + sessionId + "/", { headers: headers, credentials: "same-origin" })
      .then(function (r) { return r.ok ? r.json() : null; })
      .then(function (s) {
        if (!s) return;
        applyStatus({
          session: s.id, status: s.status, status_label: s.status_label, reason: s.status_reason,
          phone_number: s.phone_number, display_name: s.display_name,
        });
        if (s.status === "qr" && canPair) {
          return fetch("/api/v1/sessions/" + sessionId + "/qr/", { headers: headers, credentials: "same-origin" })
            .then(function (r) { return r.ok ? r.json() : null; })
            .then(function (q) { if (q && q.image) applyQr(q); });
        }
      })
      .catch(function () {})
      .then(function () { window.parleySessionSynced = (window.parleySessionSynced || 0) + 1; });
  }

  var delay = 1000;
  function open() {
    var scheme = location.protocol === "https:" ? "wss://" : "ws://";
    var path = sessionId ? "/ws/o/" + slug + "/sessions/" + sessionId + "/" : "/ws/o/" + slug + "/sessions/";
    var socket = new WebSocket(scheme + location.host + path);
    socket.onopen = function () { delay = 1000; refresh(); };
    socket.onmessage = function (message) {
      var frame;
      try { frame = JSON.parse(message.data); } catch (e) { return; }
      window.parleySessionFrames += 1;
      if (frame.event === "status") applyStatus(frame.data);
      if (frame.event === "qr") applyQr(frame.data);
    };
    socket.onclose = function (event) {
      if (event.code >= 4400 && event.code < 4500) return; // refused: do not hammer
      setTimeout(open, delay);
      delay = Math.min(delay * 2, 30000);
    };
  }
  open();
})();
