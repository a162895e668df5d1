/*
 * The shared inbox (templates/messaging/inbox/inbox.html). Vanilla JS, no build step.
 *
 * Draws from the REST API (/api/v1/chats/, messages, notes, search, canned replies) and stays live
 * on one websocket, /ws/o/<org>/inbox/, whose frames carry what is drawn (messaging/live.py): no
 * polling, no reload. History loads backwards a page at a time as you scroll up; a search hit opens
 * its conversation around the message (?around=), paging both ways from there.
 *
 * For tests: window.parleyInbox = {live, frames, notified, loaded}; #inbox[data-live] is "on"
 * while the socket is open.
 */
(function () {
  "use strict";

  var config = JSON.parse(document.getElementById("inbox-config").textContent);
  var API = "/api/v1/";
  var PAGE = 50;
  var DAY = 24 * 3600 * 1000;
  var headers = JSON.parse(document.body.getAttribute("hx-headers") || "{}");
  var csrf = headers["X-CSRFToken"] || "";
  var baseTitle = document.title;
  var $ = function (id) {
    return document.getElementById(id);
  };
  var members = new Map(config.members.map(function (m) { return [m.id, m]; }));
  var sessions = new Map(config.sessions.map(function (s) { return [s.id, s]; }));

  var marker = { live: false, frames: 0, notified: 0, loaded: false };
  window.parleyInbox = marker;

  var state = {
    chats: new Map(), // uuid -> chat row (as the API serializes it)
    listNext: null,
    listLoading: false,
    listAsked: 0, // loadChats calls so far
    open: null, // the open chat's row
    messages: new Map(), // uuid -> message, of the open chat
    notes: [],
    older: null, // the link to the page before the loaded messages
    newer: null, // the link to the page after them (null: the live end is loaded)
    paging: false,
    target: null, // a message to scroll to (a search hit)
    viewers: [],
    replyTo: null,
    file: null,
    mode: "reply",
    unread: 0,
    unreadKnown: new Map(), // chat uuid -> unread messages counted in the total
    socket: null,
    searching: false,
  };

  // --- Formatting ----------------------------------------------------------------------------

  var timeFormat = new Intl.DateTimeFormat(undefined, { timeZone: config.timezone, hour: "2-digit", minute: "2-digit" });
  var dayFormat = new Intl.DateTimeFormat(undefined, { timeZone: config.timezone, weekday: "long", day: "numeric", month: "long", year: "numeric" });
  var shortDayFormat = new Intl.DateTimeFormat(undefined, { timeZone: config.timezone, day: "numeric", month: "short" });
  var dayKeyFormat = new Intl.DateTimeFormat("en-CA", { timeZone: config.timezone, year: "numeric", month: "2-digit", day: "2-digit" });

  function dayKey(date) {
    return dayKeyFormat.format(date);
  }

  function dayLabel(date) {
    var key = dayKey(date);
    if (key === dayKey(new Date())) return "Today";
    if (key === dayKey(new Date(Date.now() - DAY))) return "Yesterday";
    return dayFormat.format(date);
  }

  function when(value) {
    if (!value) return "";
    var date = new Date(value);
    return dayKey(date) === dayKey(new Date()) ? timeFormat.format(date) : shortDayFormat.format(date);
  }

  function el(tag, attrs, children) {
    var node = document.createElement(tag);
    if (attrs) {
      Object.keys(attrs).forEach(function (name) {
        var value = attrs[name];
        if (value === null || value === undefined || value === false) return;
        if (name === "text") node.textContent = value;
        else if (name === "className") node.className = value;
        else if (name === "style") node.style.cssText = value; // CSSOM: the CSP refuses style=""
        else node.setAttribute(name, value === true ? "" : value);
      });
    }
    (children || []).forEach(function (child) {
      if (child) node.appendChild(typeof child === "string" ? document.createTextNode(child) : child);
    });
    return node;
  }

  // --- Requests --------------------------------------------------------------------------------

  function call(method, url, body) {
    var options = { method: method, credentials: "same-origin", headers: { Accept: "application/json", "X-CSRFToken": csrf } };
    if (body instanceof FormData) {
      options.body = body;
    } else if (body !== undefined) {
      options.headers["Content-Type"] = "application/json";
      options.body = JSON.stringify(body);
    }
    if (method === "POST" && url === API + "messages/") { // the send API: a retried request sends once
      options.headers["Idempotency-Key"] = randomKey();
    }
    return fetch(url, options).then(function (response) {
      if (response.status === 204) return null;
      return response.json().catch(function () { return null; }).then(function (data) {
        if (!response.ok) {
          var error = new Error((data && data.error && data.error.message) || "The request failed (" + response.status + ").");
          error.status = response.status;
          error.data = data;
          throw error;
        }
        return data;
      });
    });
  }

  function randomKey() {
    if (window.crypto && crypto.randomUUID) return crypto.randomUUID();
    return String(Date.now()) + Math.random().toString(16).slice(2);
  }

  var toast = window.Parley.toast; // static/js/parley.js

  function fail(error) {
    toast(error && error.message ? error.message : "Something went wrong.");
  }

  // --- Chat list ---------------------------------------------------------------------------------

  function filters() {
    return {
      assignee: $("filter-view").value,
      status: $("filter-status").value,
      session: $("filter-session").value,
      tag: $("filter-tag").value,
      unread: $("filter-unread").checked,
      needs_human: $("filter-human").checked,
      groups: $("filter-groups").checked,
      archived: $("filter-archived").checked,
    };
  }

  function listUrl() {
    var f = filters();
    var query = new URLSearchParams({ page_size: String(PAGE) });
    if (f.assignee) query.set("assignee", f.assignee);
    if (f.status) query.set("status", f.status);
    if (f.session) query.set("session", f.session);
    if (f.tag) query.set("tag", f.tag);
    if (f.unread) query.set("unread", "true");
    if (f.needs_human) query.set("needs_human", "true");
    if (f.groups) query.set("kind", "group");
    query.set("archived", f.archived ? "true" : "false");
    return API + "chats/?" + query.toString();
  }

  function matches(chat) {
    var f = filters();
    if (!chat.last_message_at) return false;
    if (f.status && chat.status !== f.status) return false;
    if (f.assignee === "me" && chat.assignee !== config.me) return false;
    if (f.assignee === "none" && chat.assignee !== null) return false;
    if (f.session && chat.session !== f.session) return false;
    if (f.unread && !(chat.unread_count > 0)) return false;
    if (f.needs_human && !chat.needs_human) return false;
    if (f.groups && chat.kind !== "group") return false;
    if (Boolean(chat.archived) !== f.archived) return false;
    if (f.tag && !state.chats.has(chat.id)) return false; // tags are not in the row: keep what the server listed
    return true;
  }

  /** The first page for the filters (a newer filter's answer wins, whichever comes back last). */
  function loadChats() {
    return loadList(listUrl(), ++state.listAsked, true);
  }

  /** The next page of the same list, as the list is scrolled to its end. */
  function loadMoreChats() {
    if (state.listNext && !state.listLoading) loadList(state.listNext, state.listAsked, false);
  }

  function loadList(url, asked, fresh) {
    state.listLoading = true;
    return call("GET", url).then(function (page) {
      if (asked !== state.listAsked) return;
      if (fresh) state.chats = new Map();
      page.results.forEach(remember);
      state.listNext = page.next;
      state.listLoading = false;
      renderList();
    }).catch(function (error) {
      state.listLoading = false;
      fail(error);
    });
  }

  function remember(chat) {
    state.chats.set(chat.id, chat);
    countUnread(chat, null);
  }

  /** Keep a chat row a frame brought: in the list if it matches the filters, else out of it. */
  function update(chat, incoming) {
    countUnread(chat, incoming);
    if (matches(chat)) state.chats.set(chat.id, chat);
    else state.chats.delete(chat.id);
    if (state.open && state.open.id === chat.id) {
      state.open = chat;
      renderHeader();
    }
  }

  function renderList() {
    var list = $("chat-list");
    var rows = Array.from(state.chats.values()).sort(function (a, b) {
      return (b.last_message_at || "").localeCompare(a.last_message_at || "");
    });
    var fragment = document.createDocumentFragment();
    rows.forEach(function (chat) { fragment.appendChild(chatRow(chat)); });
    list.replaceChildren(fragment);
    $("chat-list-note").textContent = rows.length ? "" : "No conversations here.";
  }

  function chatRow(chat) {
    var last = chat.last_message;
    var preview = last ? (last.revoked ? "This message was deleted" : last.preview || "[" + last.type + "]") : "";
    if (last && last.direction === "out") preview = "You: " + preview;
    var assignee = chat.assignee ? members.get(chat.assignee) : null;
    var row = el("li", {
      className: "chat-row" + (state.open && state.open.id === chat.id ? " active" : "") + (chat.unread_count ? " unread" : ""),
      "data-chat": chat.id,
      "data-status": chat.status,
      tabindex: "0",
    }, [
      el("span", { className: "avatar", style: "background:" + (chat.session_colour || "#0f766e"), text: chat.initials, "aria-hidden": "true" }),
      el("span", { className: "chat-main" }, [
        el("span", { className: "chat-top" }, [
          el("span", { className: "chat-title", text: chat.title }),
          el("time", { className: "chat-time", text: when(chat.last_message_at) }),
        ]),
        el("span", { className: "chat-bottom" }, [
          el("span", { className: "chat-preview", text: preview }),
          chat.unread_count ? el("span", { className: "badge unread-badge", text: String(chat.unread_count), "data-testid": "unread" }) : null,
        ]),
        el("span", { className: "chat-tags" }, [
          chat.status !== "open" ? el("span", { className: "tag status-" + chat.status, text: chat.status }) : null,
          chat.needs_human ? el("span", { className: "tag needs-human", text: "needs a human" }) : null,
          assignee ? el("span", { className: "tag assignee", text: "→ " + assignee.name, "data-testid": "row-assignee" }) : null,
        ]),
      ]),
    ]);
    return row;
  }

  // --- Unread total, in the title -----------------------------------------------------------------

  function countUnread(chat, incoming) {
    var now = chat.archived ? 0 : chat.unread_count || 0;
    var before = state.unreadKnown.get(chat.id);
    if (before === undefined) {
      if (incoming === null) {
        state.unreadKnown.set(chat.id, now); // listed: already in the loaded total
        return;
      }
      if (incoming === undefined) {
        refreshUnread(); // a change to a chat not seen yet: ask once
        state.unreadKnown.set(chat.id, now);
        return;
      }
      before = Math.max(0, now - incoming);
    }
    state.unreadKnown.set(chat.id, now);
    state.unread = Math.max(0, state.unread + now - before);
    renderTitle();
  }

  var unreadTimer = null;

  function loadUnread() {
    return call("GET", API + "chats/unread/").then(function (totals) {
      state.unread = totals.messages;
      renderTitle();
    });
  }

  function refreshUnread() {
    clearTimeout(unreadTimer);
    unreadTimer = setTimeout(function () { loadUnread().catch(function () {}); }, 300);
  }

  function renderTitle() {
    document.title = (state.unread > 0 ? "(" + state.unread + ") " : "") + baseTitle;
  }

  // --- Conversation --------------------------------------------------------------------------------

  function openChat(id, messageId) {
    var known = state.chats.get(id);
    var ready = known ? Promise.resolve(known) : call("GET", API + "chats/" + encodeURIComponent(id) + "/");
    return ready.then(function (chat) {
      state.open = chat;
      state.messages = new Map();
      state.notes = [];
      state.older = state.newer = null;
      state.target = messageId || null;
      state.viewers = [];
      state.replyTo = null;
      setFile(null);
      $("conversation").hidden = false;
      $("conversation-empty").hidden = true;
      renderHeader();
      renderList();
      var url = new URL(location.href);
      url.searchParams.set("chat", id);
      if (messageId) url.searchParams.set("message", messageId);
      else url.searchParams.delete("message");
      history.replaceState(null, "", url.toString());
      say({ type: "viewing", chat: id });
      var base = API + "chats/" + encodeURIComponent(id) + "/";
      var messages = call("GET", base + "messages/?page_size=" + PAGE + (messageId ? "&around=" + encodeURIComponent(messageId) : ""));
      var notes = call("GET", base + "notes/?page_size=200");
      var viewers = call("GET", base + "presence/");
      return Promise.all([messages, notes, viewers]).then(function (answers) {
        if (!state.open || state.open.id !== id) return;
        answers[0].results.forEach(function (m) { state.messages.set(m.id, m); });
        state.older = answers[0].next;
        state.newer = messageId ? answers[0].previous : null;
        state.notes = answers[1].results;
        showViewers(answers[2]);
        renderMessages(messageId ? "target" : "bottom");
        if (chat.unread_count > 0 && config.canSend && !state.newer) markRead();
      });
    }).catch(fail);
  }

  function markRead() {
    var chat = state.open;
    call("POST", API + "chats/" + chat.id + "/read/").then(function (row) { update(row); renderList(); }).catch(function () {});
  }

  function renderHeader() {
    var chat = state.open;
    if (!chat) return;
    var session = sessions.get(chat.session);
    $("conv-avatar").textContent = chat.initials;
    $("conv-avatar").style.background = chat.session_colour || "";
    $("conv-title").textContent = chat.title;
    $("conv-sub").textContent = [chat.contact && chat.contact.phone, session && session.name, chat.kind !== "direct" ? chat.kind : "", chat.status === "snoozed" && chat.snoozed_until ? "snoozed until " + when(chat.snoozed_until) + " " + timeFormat.format(new Date(chat.snoozed_until)) : ""].filter(Boolean).join(" · ");
    $("conv-assignee").value = chat.assignee ? String(chat.assignee) : "";
    $("conversation").setAttribute("data-status", chat.status);
    $("conv-resolve").hidden = chat.status === "resolved";
    $("conv-reopen").hidden = chat.status === "open";
    $("conv-archive").textContent = chat.archived ? "Unarchive" : "Archive";
    var closed = windowClosed(chat);
    $("window-banner").hidden = !closed;
    var replyTab = $("mode-reply");
    if (replyTab) {
      replyTab.disabled = closed;
      if (closed && state.mode === "reply") setMode("note");
    }
    Array.prototype.forEach.call($("conv-actions").querySelectorAll("button, select, summary"), function (control) {
      if (!config.canSend) control.setAttribute("disabled", "");
    });
  }

  /** Cloud API: a reply is free-form only within 24 h of the contact's last message. */
  function windowClosed(chat) {
    var session = sessions.get(chat.session);
    if (!session || !session.cloud) return false;
    if (!chat.last_incoming_at) return true;
    return Date.now() - new Date(chat.last_incoming_at).getTime() > DAY;
  }

  function sortedMessages() {
    return Array.from(state.messages.values()).sort(function (a, b) {
      return a.timestamp === b.timestamp ? 0 : a.timestamp < b.timestamp ? -1 : 1;
    });
  }

  /** The loaded messages and the notes among them, with a line for each day. */
  function renderMessages(keep) {
    var box = $("messages");
    var before = box.scrollHeight - box.scrollTop;
    var nearBottom = box.scrollHeight - box.scrollTop - box.clientHeight < 80;
    var messages = sortedMessages();
    var oldest = messages.length ? messages[0].timestamp : null;
    var newest = messages.length ? messages[messages.length - 1].timestamp : null;
    var items = messages.map(function (m) { return { at: m.timestamp, message: m }; });
    state.notes.forEach(function (note) {
      var inRange = (!state.older || !oldest || note.created_at >= oldest) && (!state.newer || !newest || note.created_at <= newest);
      if (inRange) items.push({ at: note.created_at, note: note });
    });
    items.sort(function (a, b) { return a.at < b.at ? -1 : a.at > b.at ? 1 : 0; });
    var fragment = document.createDocumentFragment();
    var lastDay = null;
    items.forEach(function (item) {
      var date = new Date(item.at);
      var key = dayKey(date);
      if (key !== lastDay) {
        fragment.appendChild(el("li", { className: "day", "data-day": key }, [el("span", { text: dayLabel(date) })]));
        lastDay = key;
      }
      fragment.appendChild(item.note ? noteItem(item.note) : messageItem(item.message));
    });
    $("message-list").replaceChildren(fragment);
    $("history-edge").textContent = state.older ? "" : messages.length ? "The start of the conversation." : "No messages yet.";
    $("load-newer").hidden = !state.newer;
    if (keep === "bottom" || (keep === "live" && nearBottom)) {
      box.scrollTop = box.scrollHeight;
    } else if (keep === "older") {
      box.scrollTop = box.scrollHeight - before;
    } else if (keep === "target" && state.target) {
      var node = $("message-list").querySelector('[data-id="' + state.target + '"]');
      if (node) {
        node.classList.add("target");
        node.scrollIntoView({ block: "center" });
      }
    }
  }

  var TICKS = { pending: "🕓", queued: "🕓", sending: "🕓", sent: "✓", delivered: "✓✓", read: "✓✓", played: "✓✓", failed: "!" };

  function messageItem(m) {
    if (m.type === "system") {
      return el("li", { className: "msg system", "data-id": m.id }, [el("span", { text: m.body || "A security or call notice" })]);
    }
    var chat = state.open;
    var out = m.direction === "out";
    var children = [];
    if (!out && chat && chat.kind !== "direct") {
      children.push(el("span", { className: "sender", text: (m.sender && m.sender.display_name) || m.push_name || m.sender_jid }));
    }
    if (m.quoted || m.quoted_provider_id) {
      var quoted = m.quoted ? state.messages.get(m.quoted) : null;
      children.push(el("blockquote", { className: "quote", "data-quoted": m.quoted || "" }, [quoted ? (quoted.body || quoted.caption || "[" + quoted.type + "]") : "A message"]));
    }
    if (m.revoked_at) {
      children.push(el("p", { className: "body deleted", text: "This message was deleted" }));
    } else {
      var media = mediaPreview(m);
      if (media) children.push(media);
      var text = m.body || m.caption;
      if (text) children.push(el("p", { className: "body", text: text }));
    }
    var meta = [el("time", { datetime: m.timestamp, text: timeFormat.format(new Date(m.timestamp)) })];
    if (m.edits && m.edits.length && !m.revoked_at) meta.unshift(el("span", { className: "edited", text: "edited" }));
    if (out) {
      meta.push(el("span", { className: "ticks " + m.status, "data-status": m.status, title: m.status, text: TICKS[m.status] || "" }));
    }
    children.push(el("span", { className: "meta" }, meta));
    if (m.status === "failed" && m.error) {
      children.push(el("p", { className: "form-error", text: m.error.message || m.error.code }));
    }
    if (m.reactions && m.reactions.length) {
      children.push(el("span", { className: "reactions" }, m.reactions.map(function (r) { return el("span", { className: "reaction", title: r.actor, text: r.emoji }); })));
    }
    if (config.canSend && !m.revoked_at) {
      children.push(el("span", { className: "msg-actions" }, [
        el("button", { type: "button", className: "link-button", "data-action": "reply", text: "Reply" }),
        m.provider_message_id ? el("button", { type: "button", className: "link-button", "data-action": "react", text: "React" }) : null,
        m.status === "failed" ? el("button", { type: "button", className: "link-button", "data-action": "retry", text: "Retry" }) : null,
      ]));
    }
    return el("li", { className: "msg " + (out ? "out" : "in"), "data-id": m.id, "data-status": m.status }, children);
  }

  function mediaPreview(m) {
    var data = m.data || {};
    if (m.type === "location" && data.location) {
      var loc = data.location;
      var href = "https://www.openstreetmap.org/?mlat=" + encodeURIComponent(loc.latitude) + "&mlon=" + encodeURIComponent(loc.longitude) + "#map=16/" + loc.latitude + "/" + loc.longitude;
      return el("a", { className: "location", href: href, target: "_blank", rel: "noopener" }, ["📍 " + (loc.name || loc.address || loc.latitude + ", " + loc.longitude)]);
    }
    if (m.type === "contact" && data.contacts) {
      return el("div", { className: "contact-cards" }, data.contacts.map(function (card) {
        var name = (card.name && (card.name.formatted_name || card.name)) || card.displayName || "Contact";
        var phone = card.phones && card.phones[0] ? card.phones[0].phone || card.phones[0].wa_id : "";
        if (!phone && card.vcard) {
          var match = /TEL[^:]*:([+\d ()-]+)/.exec(card.vcard);
          phone = match ? match[1].trim() : "";
        }
        return el("div", { className: "contact-card" }, [el("strong", { text: "👤 " + (typeof name === "string" ? name : "Contact") }), phone ? el("span", { text: " " + phone }) : null]);
      }));
    }
    var media = m.media;
    if (!media) return null;
    if (media.state !== "stored" || !media.url) {
      return el("p", { className: "media-note muted", text: media.state === "failed" ? "The " + m.type + " could not be downloaded." : "Downloading the " + m.type + "…" });
    }
    if (m.type === "image" || m.type === "sticker") {
      return el("a", { href: media.url, target: "_blank", rel: "noopener" }, [el("img", { className: m.type, src: media.url, alt: m.caption || m.type, loading: "lazy" })]);
    }
    if (m.type === "video") return el("video", { className: "video", src: media.url, controls: true, preload: "metadata" });
    if (m.type === "audio" || m.type === "voice") return el("audio", { src: media.url, controls: true, preload: "none" });
    return el("a", { className: "document", href: media.url, target: "_blank", rel: "noopener" }, ["📄 " + (media.filename || "Document")]);
  }

  function noteItem(note) {
    return el("li", { className: "note", "data-note": String(note.id) }, [
      el("span", { className: "note-head", text: "Private note · " + (note.author_name || note.author || "someone") }),
      el("p", { className: "body", text: note.text }),
      el("span", { className: "meta" }, [el("time", { text: timeFormat.format(new Date(note.created_at)) })]),
    ]);
  }

  /** The page before the loaded messages ("older") or after them ("newer"). */
  function loadPage(which) {
    var link = which === "older" ? state.older : state.newer;
    if (!link || state.paging) return;
    state.paging = true;
    var id = state.open.id;
    call("GET", link).then(function (page) {
      state.paging = false;
      if (!state.open || state.open.id !== id) return;
      page.results.forEach(function (m) { state.messages.set(m.id, m); });
      if (which === "older") {
        state.older = page.next;
      } else {
        state.newer = page.previous;
        if (!state.newer && state.open.unread_count > 0 && config.canSend) markRead();
      }
      renderMessages(which === "older" ? "older" : "keep");
    }).catch(function (error) {
      state.paging = false;
      fail(error);
    });
  }

  function showViewers(viewers) {
    state.viewers = viewers.filter(function (v) { return v.id !== config.me; });
    var names = state.viewers.map(function (v) { return v.name; });
    var box = $("conv-presence");
    box.hidden = !names.length;
    box.textContent = names.length ? names.join(", ") + (names.length > 1 ? " are viewing" : " is viewing") : "";
  }

  // --- Team actions ----------------------------------------------------------------------------------

  function patchChat(values) {
    var id = state.open.id;
    return call("PATCH", API + "chats/" + id + "/", values).then(function (row) {
      update(row);
      renderList();
    }).catch(fail);
  }

  function snoozeUntil(choice) {
    var date = new Date();
    if (choice === "1h") return new Date(Date.now() + 3600 * 1000);
    if (choice === "tomorrow") {
      date.setDate(date.getDate() + 1);
      date.setHours(9, 0, 0, 0);
      return date;
    }
    if (choice === "week") {
      date.setDate(date.getDate() + ((8 - date.getDay()) % 7 || 7));
      date.setHours(9, 0, 0, 0);
      return date;
    }
    var value = $("snooze-until").value;
    return value ? new Date(value) : null;
  }

  // --- Composer ----------------------------------------------------------------------------------------

  function setMode(mode) {
    state.mode = mode;
    var composer = $("composer");
    if (!composer) return;
    composer.setAttribute("data-mode", mode);
    $("mode-reply").setAttribute("aria-selected", String(mode === "reply"));
    $("mode-note").setAttribute("aria-selected", String(mode === "note"));
    $("send").textContent = mode === "note" ? "Add note" : "Send";
  }

  function setFile(file) {
    state.file = file;
    if (!$("attachment")) return;
    $("attachment").hidden = !file;
    $("attachment-name").textContent = file ? file.name + " (" + Math.ceil(file.size / 1024) + " KB)" : "";
    if (!file) $("attach").value = "";
  }

  function setReplyTo(id) {
    state.replyTo = id;
    var m = id ? state.messages.get(id) : null;
    $("reply-to").hidden = !m;
    $("reply-to-text").textContent = m ? "Replying to: " + (m.body || m.caption || "[" + m.type + "]").slice(0, 120) : "";
  }

  function showError(text) {
    var box = $("composer-error");
    box.hidden = !text;
    box.textContent = text || "";
  }

  function submit(event) {
    event.preventDefault();
    var chat = state.open;
    var text = $("composer-text").value;
    if (!chat || (!text.trim() && !state.file)) return;
    showError("");
    $("send").disabled = true;
    var sent;
    if (state.mode === "note") {
      sent = call("POST", API + "chats/" + chat.id + "/notes/", { text: text }).then(addNote);
    } else if (state.file) {
      var form = new FormData();
      form.append("chat", chat.id);
      form.append("file", state.file);
      if (text) form.append("text", text);
      if (state.replyTo) form.append("reply_to", state.replyTo);
      sent = call("POST", API + "messages/upload/", form).then(addMessage);
    } else {
      var body = { chat: chat.id, text: text };
      if (state.replyTo) body.reply_to = state.replyTo;
      sent = call("POST", API + "messages/", body).then(addMessage);
    }
    sent.then(function () {
      $("composer-text").value = "";
      setReplyTo(null);
      setFile(null);
    }).catch(function (error) {
      var fields = error.data && error.data.error && error.data.error.fields;
      var detail = fields ? Object.keys(fields).map(function (k) { return [].concat(fields[k]).join(" "); }).join(" ") : "";
      showError(error.message + (detail ? " " + detail : ""));
    }).then(function () {
      $("send").disabled = false;
      $("composer-text").focus();
    });
  }

  function addMessage(message) {
    if (!state.open || message.chat !== state.open.id || state.newer) return;
    state.messages.set(message.id, message);
    renderMessages("bottom");
  }

  function addNote(note) {
    if (!state.open || note.chat !== state.open.id) return;
    if (state.notes.some(function (n) { return n.id === note.id; })) return;
    state.notes.push(note);
    renderMessages("live");
  }

  // Canned replies: "/" then a shortcut.
  var canned = { items: [], index: 0 };

  function cannedMatches() {
    var match = /^\/([\w-]*)$/.exec($("composer-text").value);
    if (!match || state.mode !== "reply") return [];
    return config.replies.filter(function (r) { return r.shortcut.indexOf(match[1].toLowerCase()) === 0; }).slice(0, 8);
  }

  function renderCanned() {
    var list = $("canned");
    canned.items = cannedMatches();
    if (canned.index >= canned.items.length) canned.index = 0;
    list.hidden = !canned.items.length;
    list.replaceChildren.apply(list, canned.items.map(function (r, i) {
      return el("li", { role: "option", "aria-selected": String(i === canned.index), "data-reply": String(r.id) }, [
        el("strong", { text: "/" + r.shortcut }), " ", el("span", { className: "muted", text: r.text.slice(0, 80) }),
      ]);
    }));
  }

  function useCanned(id) {
    $("canned").hidden = true;
    call("GET", API + "canned-replies/" + id + "/render/?chat=" + encodeURIComponent(state.open.id)).then(function (answer) {
      $("composer-text").value = answer.text;
      $("composer-text").focus();
    }).catch(fail);
  }

  var EMOJI = "😀 😂 😊 😍 🙏 👍 👎 👏 🙌 🎉 ❤️ 🔥 ✅ ❌ ⭐ 💯 🤝 😢 😮 🤔 😅 😉 😎 📦 🚚 💰 📞 ⏰ 📍 👋".split(" ");

  function insertText(text) {
    var area = $("composer-text");
    var start = area.selectionStart, end = area.selectionEnd;
    area.value = area.value.slice(0, start) + text + area.value.slice(end);
    area.selectionStart = area.selectionEnd = start + text.length;
    area.focus();
  }

  // --- Search ------------------------------------------------------------------------------------------

  function search(event) {
    if (event) event.preventDefault();
    var form = $("search-form");
    var q = $("search-q").value.trim();
    if (!q) {
      endSearch();
      return;
    }
    var query = new URLSearchParams({ q: q, page_size: "50" });
    ["session", "type"].forEach(function (name) {
      if (form.elements[name].value) query.set(name, form.elements[name].value);
    });
    if ($("search-after").value) query.set("after", new Date($("search-after").value + "T00:00").toISOString());
    if ($("search-before").value) query.set("before", new Date(new Date($("search-before").value + "T00:00").getTime() + DAY).toISOString());
    if ($("search-media").checked) query.set("has_media", "true");
    call("GET", API + "messages/search/?" + query.toString()).then(function (page) {
      state.searching = true;
      $("chat-list").hidden = true;
      $("chat-filters").hidden = true;
      var results = $("search-results");
      results.hidden = false;
      var items = page.results.map(function (hit) {
        var chat = state.chats.get(hit.chat);
        var who = hit.direction === "out" ? "You" : (hit.sender && hit.sender.display_name) || hit.push_name || "";
        var excerpt = el("p", { className: "hit-text" });
        excerpt.innerHTML = hit.highlight; // escaped by the server; only <mark> is markup
        return el("li", { className: "hit", "data-chat": hit.chat, "data-message": hit.id, tabindex: "0" }, [
          el("span", { className: "chat-top" }, [
            el("span", { className: "chat-title", text: chat ? chat.title : who || "Conversation" }),
            el("time", { className: "chat-time", text: when(hit.timestamp) }),
          ]),
          who && chat ? el("span", { className: "muted", text: who }) : null,
          excerpt,
        ]);
      });
      results.replaceChildren.apply(results, items);
      $("chat-list-note").textContent = items.length ? (page.next ? "Showing the newest 50 matches." : items.length + (items.length === 1 ? " match." : " matches.")) : "No messages match.";
    }).catch(fail);
  }

  function endSearch() {
    state.searching = false;
    $("search-results").hidden = true;
    $("chat-list").hidden = false;
    $("chat-filters").hidden = false;
    renderList();
  }

  // --- Live ---------------------------------------------------------------------------------------------

  function say(message) {
    if (state.socket && state.socket.readyState === 1) state.socket.send(JSON.stringify(message));
  }

  function connect() {
    var first = true;
    window.Parley.reconnecting("/ws/o/" + encodeURIComponent(config.org) + "/inbox/", {
      open: function (socket) {
        state.socket = socket;
        marker.live = true;
        $("inbox").setAttribute("data-live", "on");
        if (state.open) say({ type: "viewing", chat: state.open.id });
        if (!first) resync(); // what happened while we were away
        first = false;
      },
      frame: function (event, data) {
        marker.frames += 1;
        handle(event, data);
      },
      close: function () {
        marker.live = false;
        $("inbox").setAttribute("data-live", "off");
      },
    });
  }

  function resync() {
    loadChats();
    refreshUnread();
    if (state.open) openChat(state.open.id);
  }

  function handle(event, data) {
    if (event === "inbox.update") {
      // What ingest applied or the outbox sent, one frame per batch: messages (ids only when
      // "partial"), the ids of the new incoming ones, delivery statuses, the chats' rows.
      var received = new Set(data.received || []);
      var incoming = {};
      (data.messages || []).forEach(function (m) {
        if (received.has(m.id)) incoming[m.chat] = (incoming[m.chat] || 0) + 1;
      });
      (data.chats || []).forEach(function (chat) { update(chat, incoming[chat.id]); });
      if ((data.chats || []).length && !state.searching) renderList();
      if (data.partial) { // too many to carry: the list and the unread count, reloaded
        if (!state.searching) loadChats();
        refreshUnread();
      }
      var open = state.open;
      var mine = open ? (data.messages || []).filter(function (m) { return m.chat === open.id; }) : [];
      if (mine.length && !state.newer) {
        if (data.partial) {
          openChat(open.id);
        } else {
          mine.forEach(function (m) { state.messages.set(m.id, m); });
          renderMessages("live");
          var fresh = mine.some(function (m) { return received.has(m.id); });
          if (fresh && config.canSend && !document.hidden) markRead();
        }
      }
      if (received.size) notify(data, received);
      (data.statuses || []).forEach(function (row) {
        var m = state.messages.get(row.id);
        if (!m) return;
        m.status = row.status;
        m.error = row.error;
        var node = $("message-list").querySelector('[data-id="' + row.id + '"]');
        if (node) node.replaceWith(messageItem(m));
      });
    } else if (event === "chat.changed") {
      (data.chats || []).forEach(function (chat) { update(chat); });
      if (!state.searching) renderList();
    } else if (event === "chat.note") {
      addNote(data);
    } else if (event === "presence") {
      if (state.open && data.chat === state.open.id) showViewers(data.viewers || []);
    } else if (event === "history.progress") {
      var box = $("sync-progress");
      var session = sessions.get(data.session);
      box.hidden = data.done >= data.total;
      box.textContent = "Syncing history" + (session ? " of " + session.name : "") + ": " + data.done.toLocaleString() + " of " + data.total.toLocaleString() + " messages";
      if (data.done >= data.total) loadChats();
    }
  }

  // Notifications: a new message in a chat assigned to you, when you are not looking at it.
  function notify(data, received) {
    (data.messages || []).forEach(function (m) {
      if (!received.has(m.id)) return;
      var chat = (data.chats || []).filter(function (c) { return c.id === m.chat; })[0];
      if (!chat || chat.assignee !== config.me || m.direction !== "in") return;
      if (!document.hidden && state.open && state.open.id === chat.id) return;
      marker.notified += 1;
      beep();
      if ("Notification" in window && Notification.permission === "granted") {
        try {
          var shown = new Notification(chat.title, { body: (m.body || m.caption || "[" + m.type + "]").slice(0, 140), tag: chat.id });
          shown.onclick = function () {
            window.focus();
            openChat(chat.id);
          };
        } catch (err) { /* some browsers allow notifications from a service worker only */ }
      }
    });
  }

  var audio = null;

  function beep() {
    try {
      audio = audio || new (window.AudioContext || window.webkitAudioContext)();
      var tone = audio.createOscillator();
      var gain = audio.createGain();
      tone.frequency.value = 880;
      gain.gain.setValueAtTime(0.15, audio.currentTime);
      gain.gain.exponentialRampToValueAtTime(0.001, audio.currentTime + 0.25);
      tone.connect(gain).connect(audio.destination);
      tone.start();
      tone.stop(audio.currentTime + 0.25);
    } catch (err) { /* no sound: the notification and the badge still tell */ }
  }

  // --- Wiring --------------------------------------------------------------------------------------------

  function fill(select, options) {
    options.forEach(function (o) { select.appendChild(el("option", { value: String(o.value), text: o.label })); });
  }

  function start() {
    var sessionOptions = config.sessions.map(function (s) { return { value: s.id, label: s.name }; });
    fill($("filter-session"), sessionOptions);
    fill($("search-session"), sessionOptions);
    fill($("filter-tag"), config.tags.map(function (t) { return { value: t.id, label: t.name }; }));
    fill($("conv-assignee"), config.members.map(function (m) { return { value: m.id, label: m.id === config.me ? m.name + " (you)" : m.name }; }));

    $("chat-filters").addEventListener("change", loadChats);
    $("chat-list").addEventListener("click", function (event) {
      var row = event.target.closest(".chat-row");
      if (row) openChat(row.getAttribute("data-chat"));
    });
    $("chat-list").addEventListener("keydown", function (event) {
      var row = event.target.closest(".chat-row");
      if (row && event.key === "Enter") openChat(row.getAttribute("data-chat"));
    });
    document.querySelector(".inbox-list").addEventListener("scroll", function (event) {
      var box = event.currentTarget;
      if (!state.searching && box.scrollHeight - box.scrollTop - box.clientHeight < 200) loadMoreChats();
    });
    $("search-form").addEventListener("submit", search);
    $("search-q").addEventListener("search", search);
    $("search-results").addEventListener("click", function (event) {
      var hit = event.target.closest(".hit");
      if (hit) openChat(hit.getAttribute("data-chat"), hit.getAttribute("data-message"));
    });

    $("messages").addEventListener("scroll", function () {
      var box = $("messages");
      if (box.scrollTop < 150) loadPage("older");
      if (state.newer && box.scrollHeight - box.scrollTop - box.clientHeight < 150) loadPage("newer");
    });
    $("load-newer").addEventListener("click", function () { loadPage("newer"); });
    $("message-list").addEventListener("click", function (event) {
      var button = event.target.closest("[data-action]");
      if (!button) return;
      var id = button.closest(".msg").getAttribute("data-id");
      var action = button.getAttribute("data-action");
      if (action === "reply") {
        setMode("reply");
        setReplyTo(id);
        $("composer-text").focus();
      } else if (action === "retry") {
        call("POST", API + "messages/" + id + "/retry/").then(function (m) { state.messages.set(m.id, m); renderMessages("keep"); }).catch(fail);
      } else if (action === "react") {
        var picker = el("span", { className: "react-picker" }, ["👍", "❤️", "😂", "😮", "🙏", "✅"].map(function (emoji) {
          return el("button", { type: "button", className: "link-button", "data-emoji": emoji, text: emoji });
        }));
        picker.addEventListener("click", function (e) {
          var choice = e.target.closest("[data-emoji]");
          if (!choice) return;
          e.stopPropagation();
          call("POST", API + "messages/" + id + "/react/", { emoji: choice.getAttribute("data-emoji") }).then(function (m) {
            state.messages.set(m.id, m);
            renderMessages("keep");
          }).catch(fail);
        });
        button.replaceWith(picker);
      }
    });

    $("conv-assignee").addEventListener("change", function (event) {
      patchChat({ assignee: event.target.value ? Number(event.target.value) : null });
    });
    $("conv-resolve").addEventListener("click", function () { patchChat({ status: "resolved" }); });
    $("conv-reopen").addEventListener("click", function () { patchChat({ status: "open" }); });
    $("conv-archive").addEventListener("click", function () { patchChat({ archived: !state.open.archived }); });
    $("conv-unread").addEventListener("click", function () {
      call("POST", API + "chats/" + state.open.id + "/unread/").then(function (row) { update(row); renderList(); }).catch(fail);
    });
    $("conv-snooze").addEventListener("click", function (event) {
      var choice = event.target.closest("[data-snooze]");
      if (!choice) return;
      var until = snoozeUntil(choice.getAttribute("data-snooze"));
      if (!until || isNaN(until.getTime())) {
        toast("Choose when the conversation comes back.");
        return;
      }
      $("conv-snooze").removeAttribute("open");
      patchChat({ status: "snoozed", snoozed_until: until.toISOString() });
    });

    var composer = $("composer");
    if (composer) {
      setMode("reply");
      composer.addEventListener("submit", submit);
      composer.querySelector(".composer-mode").addEventListener("click", function (event) {
        var tab = event.target.closest("[data-mode]");
        if (tab && !tab.disabled) setMode(tab.getAttribute("data-mode"));
      });
      $("composer-text").addEventListener("input", renderCanned);
      $("composer-text").addEventListener("keydown", function (event) {
        if (!$("canned").hidden && canned.items.length) {
          if (event.key === "ArrowDown" || event.key === "ArrowUp") {
            event.preventDefault();
            canned.index = (canned.index + (event.key === "ArrowDown" ? 1 : canned.items.length - 1)) % canned.items.length;
            renderCanned();
            return;
          }
          if (event.key === "Enter" || event.key === "Tab") {
            event.preventDefault();
            useCanned(canned.items[canned.index].id);
            return;
          }
          if (event.key === "Escape") {
            $("canned").hidden = true;
            return;
          }
        }
        if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
          event.preventDefault();
          composer.requestSubmit();
        }
      });
      $("canned").addEventListener("mousedown", function (event) {
        var item = event.target.closest("[data-reply]");
        if (!item) return;
        event.preventDefault();
        useCanned(item.getAttribute("data-reply"));
      });
      $("reply-cancel").addEventListener("click", function () { setReplyTo(null); });
      $("attach").addEventListener("change", function (event) { setFile(event.target.files[0] || null); });
      $("attachment-cancel").addEventListener("click", function () { setFile(null); });
      var picker = $("emoji-picker");
      EMOJI.forEach(function (emoji) { picker.appendChild(el("button", { type: "button", className: "link-button", text: emoji })); });
      $("emoji-button").addEventListener("click", function () { picker.hidden = !picker.hidden; });
      picker.addEventListener("click", function (event) {
        if (event.target.tagName === "BUTTON") insertText(event.target.textContent);
      });
    }

    if ("Notification" in window && Notification.permission === "default") {
      $("notify-enable").hidden = false;
      $("notify-enable").addEventListener("click", function () {
        Notification.requestPermission().then(function () { $("notify-enable").hidden = true; });
      });
    }
    document.addEventListener("visibilitychange", function () {
      if (!document.hidden && state.open && state.open.unread_count > 0 && config.canSend && !state.newer) markRead();
    });
    setInterval(function () {
      if (state.open && !document.hidden) say({ type: "viewing", chat: state.open.id });
    }, config.presenceRefresh * 1000);

    connect();
    Promise.all([loadChats(), loadUnread()]).then(function () {
      if (config.chat) return openChat(config.chat, config.message || null);
    }).then(function () {
      marker.loaded = true;
    }, function (error) {
      marker.loaded = true;
      fail(error);
    });
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
