/*
 * Makana support widget: the website's chat launcher and the in-app support pane.
 *
 * One tag embeds it:   <script src="https://support.makana.example/widget.js" defer></script>
 * Options, as data-* attributes on that tag:
 *   data-mode="launcher"  (default) a floating button that opens a chat panel
 *   data-mode="pane"      rendered inline into data-target="#selector"
 *   data-identity="TOKEN" pane only: the signed identity from the app's back end
 *   data-channel          "web_chat" or "in_app"; defaults to in_app for the pane
 *
 * It talks only to the server it was loaded from (the origin of its own src). Everything
 * the customer or the assistant says is inserted as text (textContent, text nodes, DOM
 * links), never parsed as HTML; the assistant's Markdown goes through rich-text.js, which
 * the web service bundles with this file into /widget.js (one scope, no global).
 *
 * The customer's time zone (the browser's, an IANA name) goes with every message and the
 * status request, so that every time the assistant writes is on their clock. The CSS comes from /static/widget.css into a shadow
 * root, so the page's styles and the widget's cannot leak into each other, and nothing
 * needs an inline style (the service's CSP forbids them).
 *
 * Once a ticket of this conversation (or of the signed-in user) is resolved, the widget
 * asks once how satisfied the customer is (1 to 5), inside the log, when it is opened and
 * after each reply; the server refuses a second rating, and the widget remembers which
 * tickets it asked about so it never asks twice.
 *
 * Hooks for tests are data-testid attributes; messages carry data-from
 * (customer | assistant | system) and customer messages data-state
 * (sending | queued | sent | failed); the rating question is data-testid="csat-prompt".
 */
(function () {
  "use strict";

  var script = document.currentScript;
  if (!script || !script.src) { return; }

  var BASE = new URL(script.src, document.baseURI).origin;
  var MODE = script.getAttribute("data-mode") === "pane" ? "pane" : "launcher";
  var CHANNEL = ({ web_chat: 1, in_app: 1 })[script.getAttribute("data-channel")]
    ? script.getAttribute("data-channel")
    : (MODE === "pane" ? "in_app" : "web_chat");
  var TARGET = script.getAttribute("data-target");
  var IDENTITY = MODE === "pane" ? cleanToken(script.getAttribute("data-identity")) : "";

  var STORE_PREFIX = "makana-support:";
  var STATUS_EVERY_MS = 3 * 60 * 1000;
  var CHAT_TIMEOUT_MS = 60 * 1000;   // the server gives up on the assistant before this
  var FETCH_TIMEOUT_MS = 10 * 1000;
  var RETRY_DELAYS_S = [2, 4, 8, 15, 30, 60];
  var MAX_CHARS = 2000;
  var TICKET_RE = /\bMK-[A-Z0-9]{6}\b/;
  var ANONYMOUS_NOTICE = "We couldn't confirm your sign-in; you're chatting anonymously.";
  // Shown when even /api/status cannot be reached (kept in step with data/support_policy.yml).
  var FALLBACK_CHANNELS = [
    { name: "Email", how: "support@makana.example (critical issues are paged around the clock)" },
    { name: "Phone", how: "+1 808 555 0142 (Monday to Saturday, 9:30 to 18:30 Hawaii time)" }
  ];

  // ---------------------------------------------------------------- small helpers

  function cleanToken(value) {
    value = (value || "").trim();
    // A page served without its template filled in still says {{identity}}.
    return value && value.indexOf("{{") === -1 ? value : "";
  }

  function el(tag, attrs, text) {
    var node = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (name) {
      var value = attrs[name];
      if (value === true) { node.setAttribute(name, ""); }
      else if (value !== false && value !== null && value !== undefined) { node.setAttribute(name, String(value)); }
    });
    if (text !== undefined && text !== null) { node.textContent = text; }
    return node;
  }

  var memory = {};  // when localStorage is unavailable (privacy settings), remember for this page only
  var storage = {
    get: function (key) {
      try { return window.localStorage.getItem(STORE_PREFIX + key); } catch (e) { return memory[key] || null; }
    },
    set: function (key, value) {
      try { window.localStorage.setItem(STORE_PREFIX + key, value); } catch (e) { memory[key] = value; }
    },
    remove: function (key) {
      try { window.localStorage.removeItem(STORE_PREFIX + key); } catch (e) { delete memory[key]; }
    }
  };

  function newConversationId() {
    var bytes = new Uint8Array(16);  // 128 bits: the id is the only key to the history
    window.crypto.getRandomValues(bytes);
    return "w-" + Array.prototype.map.call(bytes, function (b) { return (b < 16 ? "0" : "") + b.toString(16); }).join("");
  }

  // Whose conversation this is: the pane keeps one per signed-in user (the token's
  // unverified subject is only a storage key; the server does the verifying).
  function conversationKey() {
    var who = "anonymous";
    if (IDENTITY) {
      try {
        var payload = IDENTITY.split(".")[0].replace(/-/g, "+").replace(/_/g, "/");
        var sub = JSON.parse(atob(payload + "===".slice((payload.length + 3) % 4))).sub;
        if (typeof sub === "string" && sub) { who = "user:" + sub; }
      } catch (e) { /* a malformed token: the server will say so */ }
    }
    return "conversation:" + CHANNEL + ":" + who;
  }

  function timeZone() {
    try { return Intl.DateTimeFormat().resolvedOptions().timeZone || ""; } catch (e) { return ""; }
  }

  // fetch with a timeout; resolves to {status, body, headers} or rejects on a network error.
  function request(path, options, timeoutMs) {
    var controller = typeof AbortController === "function" ? new AbortController() : null;
    var timer = controller ? setTimeout(function () { controller.abort(); }, timeoutMs) : null;
    var init = Object.assign({ credentials: "omit", cache: "no-store" }, options || {});
    if (controller) { init.signal = controller.signal; }
    return fetch(BASE + path, init).then(function (response) {
      return response.text().then(function (raw) {
        var body = null;
        try { body = raw ? JSON.parse(raw) : null; } catch (e) { body = null; }
        return { status: response.status, body: body, headers: response.headers };
      });
    }).finally(function () { if (timer) { clearTimeout(timer); } });
  }

  function errorMessage(result, fallback) {
    var error = result.body && result.body.error;
    return error && typeof error.message === "string" ? error.message : fallback;
  }

  function retryAfterSeconds(headers) {
    var value = headers && headers.get("Retry-After");
    if (!value) { return 5; }
    var seconds = parseInt(value, 10);
    if (!isNaN(seconds)) { return Math.max(1, seconds); }
    var when = Date.parse(value);
    return isNaN(when) ? 5 : Math.max(1, Math.ceil((when - Date.now()) / 1000));
  }

  // Only links to the company's own hosts (the support service's and those the policy
  // publishes, from /api/status) are clickable: a link the customer typed, repeated by
  // the assistant ("“http://…” is not a valid email"), stays plain text.
  var linkHosts = {};
  linkHosts[new URL(BASE).host] = true;

  // **bold**, [label](https://…) and bare URLs as DOM nodes, by the renderer the staff
  // console shares (rich-text.js, bundled into /widget.js before this file).
  function appendRichText(parent, text) {
    return MakanaRichText.append(parent, text, function (host) { return linkHosts[host] === true; });
  }

  // ---------------------------------------------------------------- the DOM

  var host = el("div", { "data-makana-support": MODE });
  var root = host.attachShadow ? host.attachShadow({ mode: "open" }) : host;
  var stylesheet = el("link", { rel: "stylesheet", href: BASE + "/static/widget.css" });
  var frame = el("div", { "class": "mk mk-mode-" + MODE, hidden: true });
  // Shown once the stylesheet is in, so the page never flashes an unstyled widget.
  stylesheet.addEventListener("load", function () { frame.hidden = false; });
  stylesheet.addEventListener("error", function () { frame.hidden = false; });
  root.appendChild(stylesheet);
  root.appendChild(el("link", { rel: "stylesheet", href: BASE + "/static/live.css" }));  // live chat (live.js)
  root.appendChild(frame);

  var launcher = null;
  if (MODE === "launcher") {
    launcher = el("button", {
      type: "button", "class": "mk-launcher", "data-testid": "launcher",
      "aria-expanded": "false", "aria-controls": "mk-panel", "aria-label": "Chat with us"
    });
    launcher.appendChild(chatIcon());
    launcher.appendChild(el("span", { "class": "mk-launcher-label", "aria-hidden": "true" }, "Chat with us"));
    frame.appendChild(launcher);
  }

  var panel = el("section", {
    id: "mk-panel", "class": "mk-panel", role: MODE === "launcher" ? "dialog" : "region",
    "aria-label": "Makana support chat", "data-testid": "panel", hidden: MODE === "launcher"
  });
  frame.appendChild(panel);

  var header = el("header", { "class": "mk-header" });
  var titleRow = el("div", { "class": "mk-title-row" });
  titleRow.appendChild(el("h2", { "class": "mk-title" }, "Makana support"));
  var closeButton = null;
  if (MODE === "launcher") {
    closeButton = el("button", { type: "button", "class": "mk-close", "aria-label": "Close chat", "data-testid": "close" }, "×");
    titleRow.appendChild(closeButton);
  }
  header.appendChild(titleRow);
  var statusLine = el("p", { "class": "mk-status", "data-testid": "status" }, "Checking whether our team is in…");
  header.appendChild(statusLine);
  var noticeList = el("ul", { "class": "mk-notices", "data-testid": "notices", "aria-label": "Service notices", hidden: true });
  header.appendChild(noticeList);
  panel.appendChild(header);

  var tickets = null;
  if (MODE === "pane" && IDENTITY) {
    tickets = {
      section: el("section", { "class": "mk-tickets", "aria-labelledby": "mk-tickets-title", "data-testid": "tickets-section" }),
      user: el("p", { "class": "mk-user", "data-testid": "signed-in" }),
      list: el("ul", { "class": "mk-ticket-list", "data-testid": "tickets", "aria-busy": "true" }),
      note: el("p", { "class": "mk-tickets-note" }, "Loading your tickets…")
    };
    tickets.section.appendChild(el("h3", { id: "mk-tickets-title", "class": "mk-subtitle" }, "Your tickets"));
    tickets.section.appendChild(tickets.user);
    tickets.section.appendChild(tickets.note);
    tickets.section.appendChild(tickets.list);
    panel.appendChild(tickets.section);
  }

  // role="log" on a list would strip its list semantics and orphan its items (axe's
  // "listitem"), so the log and its messages are plain elements.
  var log = el("div", {
    "class": "mk-log", role: "log", "aria-live": "polite", "aria-label": "Conversation", "data-testid": "log", tabindex: "0"
  });
  panel.appendChild(log);
  var emptyHint = el("p", { "class": "mk-hint" },
    "Ask a question about Makana Books, Makana POS, your account or billing. Say \"talk to a human\" any time.");
  panel.appendChild(emptyHint);

  var typing = el("div", { "class": "mk-typing", role: "status", "data-testid": "typing", hidden: true });
  typing.appendChild(el("span", { "class": "mk-sr" }, "The assistant is typing…"));
  for (var d = 0; d < 3; d++) { typing.appendChild(el("span", { "class": "mk-dot", "aria-hidden": "true" })); }
  panel.appendChild(typing);

  var form = el("form", { "class": "mk-composer", novalidate: true });
  form.appendChild(el("label", { "for": "mk-input", "class": "mk-sr" }, "Your message"));
  var input = el("input", {
    id: "mk-input", type: "text", name: "message", autocomplete: "off", maxlength: String(MAX_CHARS),
    placeholder: "Ask a question…", "data-testid": "input", enterkeyhint: "send"
  });
  form.appendChild(input);
  var sendButton = el("button", { type: "submit", "class": "mk-send", "data-testid": "send" }, "Send");
  form.appendChild(sendButton);
  panel.appendChild(form);

  var footer = el("div", { "class": "mk-footer" });
  var newButton = el("button", { type: "button", "class": "mk-link-button", "data-testid": "new-conversation" },
    "Start a new conversation");
  footer.appendChild(newButton);
  panel.appendChild(footer);

  function chatIcon() {
    var ns = "http://www.w3.org/2000/svg";
    var svg = document.createElementNS(ns, "svg");
    svg.setAttribute("viewBox", "0 0 24 24");
    svg.setAttribute("aria-hidden", "true");
    svg.setAttribute("focusable", "false");
    svg.setAttribute("class", "mk-icon");
    var path = document.createElementNS(ns, "path");
    path.setAttribute("d", "M4 4h16a2 2 0 0 1 2 2v10a2 2 0 0 1-2 2H9l-5 4v-4a2 2 0 0 1-2-2V6a2 2 0 0 1 2-2z");
    svg.appendChild(path);
    return svg;
  }

  // ---------------------------------------------------------------- the log

  // The log follows the conversation unless the customer has scrolled up to read.
  var pinned = true;
  function scrollToEnd() { log.scrollTop = log.scrollHeight; pinned = true; }
  log.addEventListener("scroll", function () {
    pinned = log.scrollHeight - log.scrollTop - log.clientHeight < 40;
  });
  if (typeof ResizeObserver === "function") {
    // The header, notices or tickets list growing shrinks the log: keep its end in view.
    new ResizeObserver(function () { if (pinned) { log.scrollTop = log.scrollHeight; } }).observe(log);
  }

  function addItem(from, extraClass) {
    var item = el("div", { "class": "mk-msg mk-from-" + from + (extraClass ? " " + extraClass : ""), "data-testid": "message", "data-from": from });
    var speaker = { customer: "You", assistant: "Assistant", system: "Notice", agent: "Support team" }[from];
    item.appendChild(el("span", { "class": "mk-sr" }, speaker + ": "));
    log.appendChild(item);
    emptyHint.hidden = true;
    return item;
  }

  function addCustomer(text, state) {
    var item = addItem("customer");
    item.appendChild(el("div", { "class": "mk-bubble", "data-testid": "message-text" }, text));
    item.appendChild(el("div", { "class": "mk-delivery", "aria-live": "off" }));
    setDelivery(item, state || "sending");
    scrollToEnd();
    return item;
  }

  function setDelivery(item, state, detail) {
    item.setAttribute("data-state", state);
    var note = item.querySelector(".mk-delivery");
    note.textContent = detail || { sending: "", sent: "", queued: "Not sent yet; it will be sent when we reconnect.", failed: "Not sent." }[state];
  }

  function addAssistant(text, buttons) {
    var item = addItem("assistant");
    if (text) {
      var bubble = el("div", { "class": "mk-bubble", "data-testid": "message-text" });
      appendRichText(bubble, text);
      item.appendChild(bubble);
    }
    if (buttons && buttons.length) {
      var group = el("div", { "class": "mk-replies", role: "group", "aria-label": "Suggested replies" });
      buttons.forEach(function (button) {
        if (!button || typeof button.title !== "string" || typeof button.payload !== "string") { return; }
        var b = el("button", { type: "button", "class": "mk-reply", "data-testid": "quick-reply" }, button.title);
        b.addEventListener("click", function () {
          submit(button.payload, button.title);
          input.focus();  // the button is gone; keep the keyboard in the conversation
        });
        group.appendChild(b);
      });
      item.appendChild(group);
    }
    scrollToEnd();
    return item;
  }

  function addSystem(text, extraClass) {
    var item = addItem("system", extraClass);
    var bubble = el("div", { "class": "mk-bubble", "data-testid": "message-text" });
    appendRichText(bubble, text);
    item.appendChild(bubble);
    scrollToEnd();
    return item;
  }

  // Quick replies answer the latest question only; once the customer says anything, they go.
  function removeQuickReplies() {
    Array.prototype.forEach.call(log.querySelectorAll(".mk-replies"), function (group) {
      var item = group.parentNode;
      group.parentNode.removeChild(group);
      if (!item.querySelector(".mk-bubble")) { item.parentNode.removeChild(item); }
    });
  }

  function clearLog() {
    while (log.firstChild) { log.removeChild(log.firstChild); }
    emptyHint.hidden = false;
  }

  // ---------------------------------------------------------------- status header

  var lastStatus = null;

  function loadStatus() {
    var zone = state.zone;
    var path = "/api/status" + (zone ? "?tz=" + encodeURIComponent(zone) : "");
    return request(path, {}, FETCH_TIMEOUT_MS).then(function (result) {
      if (result.status === 422 && zone) { return request("/api/status", {}, FETCH_TIMEOUT_MS); }
      return result;
    }).then(function (result) {
      if (result.status !== 200 || !result.body) { throw new Error("status " + result.status); }
      lastStatus = result.body;
      (result.body.link_hosts || []).forEach(function (h) { if (typeof h === "string") { linkHosts[h] = true; } });
      renderStatus(result.body);
    }).catch(function () {
      if (!lastStatus) { statusLine.textContent = "We couldn't check our opening hours just now."; }
    });
  }

  function renderStatus(status) {
    statusLine.textContent = typeof status.text === "string" ? status.text : "";
    statusLine.setAttribute("data-open", status.open ? "true" : "false");
    while (noticeList.firstChild) { noticeList.removeChild(noticeList.firstChild); }
    (status.notices || []).forEach(function (notice) {
      // One line in the header (what and when, in the customer's time); the details on demand.
      var item = el("li", { "class": "mk-notice", "data-testid": "notice", "data-in-progress": notice.in_progress ? "true" : "false" });
      var details = el("details");
      var summary = el("summary");
      summary.appendChild(el("strong", {}, notice.in_progress ? "Maintenance now" : "Planned maintenance"));
      if (notice.when) { summary.appendChild(document.createTextNode(": " + notice.when)); }
      details.appendChild(summary);
      var body = el("p", { "class": "mk-notice-text" });
      appendRichText(body, String(notice.text || ""));
      details.appendChild(body);
      item.appendChild(details);
      noticeList.appendChild(item);
    });
    noticeList.hidden = !noticeList.firstChild;
  }

  // Ways to reach us when the assistant cannot: the chat channels are the ones that are down.
  function contactChannels() {
    var channels = lastStatus && Array.isArray(lastStatus.channels) ? lastStatus.channels : [];
    channels = channels.filter(function (c) {
      if (c.id) { return c.id !== "web_chat" && c.id !== "in_app"; }
      // Without ids: leave out the chat itself and what is booked through it.
      return !/chat|pane/i.test(String(c.name || "")) && !/this assistant/i.test(String(c.how || ""));
    });
    return channels.length ? channels : FALLBACK_CHANNELS;
  }

  // ---------------------------------------------------------------- tickets (pane, signed in)

  function loadTickets() {
    if (!tickets || !state.identity) { return Promise.resolve(); }
    var path = "/api/me/tickets" + (state.zone ? "?tz=" + encodeURIComponent(state.zone) : "");
    return request(path, { headers: { "X-Identity-Token": state.identity } }, FETCH_TIMEOUT_MS)
      .then(function (result) {
        if (result.status === 422 && state.zone) {
          return request("/api/me/tickets", { headers: { "X-Identity-Token": state.identity } }, FETCH_TIMEOUT_MS);
        }
        return result;
      })
      .then(function (result) {
        if (result.status === 401) { identityRejected(); return; }
        if (result.status !== 200 || !result.body) { throw new Error("tickets " + result.status); }
        renderTickets(result.body);
      })
      .catch(function () {
        if (tickets.list.getAttribute("aria-busy") === "true") {
          tickets.note.textContent = "We couldn't load your tickets just now.";
          tickets.note.hidden = false;
        }
      });
  }

  function renderTickets(body) {
    var user = body.user || {};
    tickets.user.textContent = user.name ? "Signed in as " + user.name + (user.email ? " (" + user.email + ")" : "") : "";
    while (tickets.list.firstChild) { tickets.list.removeChild(tickets.list.firstChild); }
    tickets.list.setAttribute("aria-busy", "false");
    var list = Array.isArray(body.tickets) ? body.tickets : [];
    list.forEach(function (t) {
      var item = el("li", { "class": "mk-ticket", "data-testid": "ticket", "data-number": t.number });
      var line = el("div", { "class": "mk-ticket-line" });
      line.appendChild(el("strong", { "class": "mk-ticket-number" }, t.number));
      line.appendChild(el("span", { "class": "mk-ticket-status", "data-status": t.status }, humanize(t.status)));
      line.appendChild(el("span", { "class": "mk-ticket-product" }, t.product));
      item.appendChild(line);
      if (t.summary) { item.appendChild(el("div", { "class": "mk-ticket-summary" }, t.summary)); }
      if (t.response_due && t.status === "open") {
        item.appendChild(el("div", { "class": "mk-ticket-due" }, "First response due " + t.response_due));
      }
      tickets.list.appendChild(item);
    });
    tickets.note.textContent = list.length ? "" : "You have no tickets yet.";
    tickets.note.hidden = !!list.length;
  }

  function humanize(value) {
    value = String(value || "").replace(/_/g, " ");
    return value.charAt(0).toUpperCase() + value.slice(1);
  }

  // A forged or expired token: carry on anonymously, and say so once.
  function identityRejected() {
    if (!state.identity) { return; }
    state.identity = "";
    addSystem(ANONYMOUS_NOTICE, "mk-identity-notice").setAttribute("data-notice", "anonymous");
    if (tickets) {
      tickets.user.textContent = "";
      while (tickets.list.firstChild) { tickets.list.removeChild(tickets.list.firstChild); }
      tickets.list.setAttribute("aria-busy", "false");
      tickets.note.textContent = "Sign in again in the app to see your tickets here.";
      tickets.note.hidden = false;
    }
  }

  // ---------------------------------------------------------------- sending, with a queue

  var state = {
    sender: storage.get(conversationKey()),
    identity: IDENTITY,
    zone: timeZone(),   // the browser's IANA zone, sent with each message
    queue: [],          // [{message, item}] oldest first; the head is removed only once delivered
    inFlight: false,
    epoch: 0,           // bumped by "new conversation" so a late answer to the old one is dropped
    wait: null,         // {timer, tick, kind: "unreachable" | "rate", until}
    failures: 0,
    outage: null,       // the system message saying the assistant is unreachable
    rateNotice: null
  };

  function submit(message, shown) {
    message = message.trim();
    if (!message) { return; }
    if (!state.sender) {
      state.sender = newConversationId();
      storage.set(conversationKey(), state.sender);
    }
    removeQuickReplies();
    var item = addCustomer(shown || message, state.wait ? "queued" : "sending");
    // The id lets a resent message reach a live agent once (live.js).
    state.queue.push({ message: message, item: item, id: newConversationId().slice(2, 34) });
    // Typing again while waiting out an outage is as good as "Retry now"; a rate limit is not.
    if (state.wait && state.wait.kind === "unreachable") { retryNow(); } else { pump(); }
  }

  function pump() {
    if (state.inFlight || state.wait || !state.queue.length) { return; }
    var entry = state.queue[0];
    var epoch = state.epoch;
    var body = { sender: state.sender, message: entry.message, channel: CHANNEL };
    if (state.identity) { body.identity = state.identity; }
    if (state.zone) { body.timezone = state.zone; }
    if (live && live.active()) {  // to a person: the id makes a resend reach them once
      body.client_id = entry.id;
      live.sending(entry.id, entry.item);
    }
    state.inFlight = true;
    setDelivery(entry.item, "sending");
    typing.hidden = false;
    scrollToEnd();
    request("/api/chat", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify(body)
    }, CHAT_TIMEOUT_MS).then(function (result) {
      return result;
    }, function () {
      return { status: 0, body: null, headers: null };  // network error or timeout
    }).then(function (result) {
      if (epoch !== state.epoch) { return; }
      state.inFlight = false;
      typing.hidden = true;
      handleReply(entry, result, !!body.identity, !!body.timezone);
    });
  }

  function handleReply(entry, result, sentIdentity, sentZone) {
    var code = result.body && result.body.error && result.body.error.code;
    if (result.status === 200 && result.body && Array.isArray(result.body.messages)) {
      state.queue.shift();
      setDelivery(entry.item, "sent");
      if (live && result.body.live) { live.delivered(entry.item, result.body.live.seq); }
      if (typeof result.body.stored_message === "string") {
        // What was stored, with the card number or password the customer typed hidden.
        entry.item.querySelector(".mk-bubble").textContent = result.body.stored_message;
      }
      reconnected();
      var ticketMentioned = false;
      result.body.messages.forEach(function (m) {
        var text = typeof m.text === "string" ? m.text : "";
        if (TICKET_RE.test(text)) { ticketMentioned = true; }
        if (text || (m.buttons && m.buttons.length)) { addAssistant(text, m.buttons || []); }
        if (m.custom && live) { live.custom(m.custom); }
      });
      if (ticketMentioned) { loadTickets(); }
      checkSatisfaction();
      pump();
    } else if (result.status === 422 && code === "invalid_timezone" && sentZone) {
      state.zone = "";  // a zone the server does not know: the company's clock, and resend
      pump();
    } else if (result.status === 401 && code === "invalid_identity" && sentIdentity) {
      identityRejected();  // (a no-op if the tickets list found out first)
      pump();  // the same message again, anonymously
    } else if (result.status === 429) {
      rateLimited(retryAfterSeconds(result.headers), errorMessage(result, ""));
    } else if (result.status === 0 || result.status >= 500) {
      unreachable();
    } else {
      // The server refused this message (too long, empty…): say why, keep the rest going.
      state.queue.shift();
      setDelivery(entry.item, "failed", "Not sent: " + errorMessage(result, "the server refused it (" + result.status + ")."));
      pump();
    }
  }

  function unreachable() {
    state.failures += 1;
    var delay = RETRY_DELAYS_S[Math.min(state.failures - 1, RETRY_DELAYS_S.length - 1)];
    state.queue.forEach(function (entry) { setDelivery(entry.item, "queued"); });
    if (!state.outage) { state.outage = outageNotice(); }
    waitFor("unreachable", delay);
  }

  function outageNotice() {
    var item = addSystem("Our assistant can't be reached right now. Your message is kept and will be sent " +
      "as soon as it's back. If it's urgent, you can also reach us here:", "mk-outage");
    item.setAttribute("data-notice", "unreachable");
    var list = el("ul", { "class": "mk-channels", "data-testid": "contact-channels" });
    contactChannels().forEach(function (c) {
      var li = el("li");
      li.appendChild(el("strong", {}, String(c.name || "") + ": "));
      appendRichText(li, String(c.how || ""));
      list.appendChild(li);
    });
    item.appendChild(list);
    var row = el("div", { "class": "mk-retry-row" });
    var countdown = el("span", { "class": "mk-countdown", "data-testid": "retry-countdown" });
    var retry = el("button", { type: "button", "class": "mk-reply", "data-testid": "retry" }, "Retry now");
    retry.addEventListener("click", retryNow);
    row.appendChild(countdown);
    row.appendChild(retry);
    item.appendChild(row);
    scrollToEnd();
    return { item: item, countdown: countdown, row: row };
  }

  function rateLimited(seconds, message) {
    var text = "You're sending messages faster than we can take them; your message will be sent in " + seconds + " s.";
    if (state.rateNotice && state.rateNotice.parentNode) { state.rateNotice.querySelector(".mk-bubble").textContent = text; }
    else { state.rateNotice = addSystem(text, "mk-rate"); }
    if (message) { state.rateNotice.setAttribute("title", message); }
    if (state.queue.length) { setDelivery(state.queue[0].item, "queued", "Waiting to send…"); }
    waitFor("rate", seconds);
  }

  function waitFor(kind, seconds) {
    clearWait();
    var until = Date.now() + seconds * 1000;
    state.wait = {
      kind: kind,
      timer: setTimeout(function () { clearWait(); pump(); }, seconds * 1000),
      tick: setInterval(showCountdown, 1000)
    };
    state.wait.until = until;
    showCountdown();
  }

  function showCountdown() {
    if (!state.wait || state.wait.kind !== "unreachable" || !state.outage) { return; }
    var left = Math.max(0, Math.ceil((state.wait.until - Date.now()) / 1000));
    state.outage.countdown.textContent = "Trying again in " + left + " s.";
  }

  function clearWait() {
    if (!state.wait) { return; }
    clearTimeout(state.wait.timer);
    clearInterval(state.wait.tick);
    state.wait = null;
  }

  function retryNow() {
    if (state.wait && state.wait.kind === "rate") { return; }
    clearWait();
    if (state.outage) { state.outage.countdown.textContent = state.inFlight ? "" : "Trying again…"; }
    pump();
  }

  function reconnected() {
    state.failures = 0;
    if (state.outage) {
      state.outage.row.parentNode.removeChild(state.outage.row);
      state.outage.item.setAttribute("data-resolved", "true");
      state.outage.item.appendChild(el("p", { "class": "mk-reconnected" }, "We're back: your message has been sent."));
      state.outage = null;
    }
    if (state.rateNotice) { state.rateNotice = null; }
  }

  // The input is disabled while the history loads; focus it as soon as it can take focus.
  var focusWhenReady = false;
  function focusInput() {
    if (input.disabled) { focusWhenReady = true; } else { input.focus(); }
  }

  function newConversation() {
    state.epoch += 1;
    clearWait();
    state.queue = [];
    state.inFlight = false;
    state.failures = 0;
    state.outage = null;
    state.rateNotice = null;
    typing.hidden = true;
    state.sender = null;  // a fresh id is made with the first message
    storage.remove(conversationKey());
    csat.prompt = null;
    if (live) { live.reset(); }
    clearLog();
    input.value = "";
    input.focus();
  }

  // ---------------------------------------------------------------- history

  function loadHistory() {
    if (!state.sender) { return Promise.resolve(); }
    log.setAttribute("aria-busy", "true");
    return request("/api/conversations/" + encodeURIComponent(state.sender) + "/history", {}, FETCH_TIMEOUT_MS)
      .then(function (result) {
        if (result.status !== 200 || !result.body || !Array.isArray(result.body.messages)) {
          throw new Error("history " + result.status);
        }
        renderHistory(result.body.messages);
      })
      .catch(function () {
        addSystem("We couldn't load your earlier messages just now. You can carry on; the assistant still has them.");
      })
      .finally(function () { log.setAttribute("aria-busy", "false"); });
  }

  function renderHistory(turns) {
    var lastCustomer = -1;
    turns.forEach(function (t, i) { if (t.speaker === "customer") { lastCustomer = i; } });
    turns.forEach(function (t, i) {
      var text = typeof t.text === "string" ? t.text : "";
      if (t.speaker === "customer") { addCustomer(text, "sent"); return; }
      if (t.speaker === "agent") {  // a live agent's turn (live.js shows an open chat's turns itself)
        var agentTurn = addItem("agent");
        agentTurn.appendChild(el("div", { "class": "mk-live-name" }, (t.agent || "Agent") + " · support team"));
        agentTurn.appendChild(el("div", { "class": "mk-bubble", "data-testid": "message-text" }, text));
        return;
      }
      var buttons = Array.isArray(t.buttons) ? t.buttons : [];
      // The history spells out a buttons-only message as its titles; the buttons say it better.
      if (buttons.length && text === buttons.map(function (b) { return b.title; }).join(" / ")) { text = ""; }
      if (i < lastCustomer && !text) { return; }
      if (buttons.length) { addAssistant(text, i > lastCustomer ? buttons : []); return; }
      // Live, the assistant's channel splits a text without buttons at blank lines; do the same.
      text.trim().split("\n\n").forEach(function (part) { addAssistant(part, []); });
    });
  }

  // ---------------------------------------------------------------- satisfaction (CSAT)

  var RATING_NAMES = ["very dissatisfied", "dissatisfied", "neither satisfied nor dissatisfied", "satisfied", "very satisfied"];
  var MAX_REMEMBERED = 100;
  var csat = {
    prompt: null,       // the question on screen; one at a time
    checking: false,
    again: false,       // a check was wanted while one was in flight
    anonymousId: null   // a signed-in user with no conversation yet still has tickets to rate
  };

  function askedAbout() {
    try {
      var list = JSON.parse(storage.get("csat-asked") || "[]");
      return Array.isArray(list) ? list : [];
    } catch (e) { return []; }
  }

  function rememberAsked(number) {
    var list = askedAbout().filter(function (n) { return n !== number; });
    list.push(number);
    storage.set("csat-asked", JSON.stringify(list.slice(-MAX_REMEMBERED)));
  }

  function csatSender() {
    if (state.sender) { return state.sender; }
    if (!state.identity) { return null; }
    if (!csat.anonymousId) { csat.anonymousId = newConversationId(); }
    return csat.anonymousId;
  }

  function csatHeaders(extra) {
    var headers = Object.assign({}, extra || {});
    if (state.identity) { headers["X-Identity-Token"] = state.identity; }
    return headers;
  }

  // Ask about the first resolved ticket not asked about yet (only while the chat is visible).
  function checkSatisfaction() {
    if (MODE === "launcher" && panel.hidden) { return; }
    var sender = csatSender();
    if (!sender || csat.prompt) { return; }
    if (csat.checking) { csat.again = true; return; }
    csat.checking = true;
    var epoch = state.epoch;
    request("/api/conversations/" + encodeURIComponent(sender) + "/csat", { headers: csatHeaders() }, FETCH_TIMEOUT_MS)
      .then(function (result) {
        // A 401 means a bad identity token: the chat finds that out and says so, not this.
        if (epoch !== state.epoch || csat.prompt || result.status !== 200 || !result.body) { return; }
        var asked = askedAbout();
        var next = (Array.isArray(result.body.pending) ? result.body.pending : []).filter(function (t) {
          return t && typeof t.number === "string" && asked.indexOf(t.number) === -1;
        })[0];
        if (next) { askSatisfaction(next, sender); }
      }, function () { /* offline: ask another time */ })
      .then(function () {
        csat.checking = false;
        if (csat.again) { csat.again = false; checkSatisfaction(); }
      });
  }

  function askSatisfaction(ticket, sender) {
    rememberAsked(ticket.number);
    var item = el("div", { "class": "mk-csat", "data-testid": "csat-prompt", "data-number": ticket.number });
    var questionId = "mk-csat-" + ticket.number;
    item.appendChild(el("p", { "class": "mk-csat-question", id: questionId },
      "How satisfied are you with how we handled " + ticket.number + "?"));
    if (ticket.summary) {
      item.appendChild(el("p", { "class": "mk-csat-summary" }, (ticket.product ? ticket.product + ": " : "") + ticket.summary));
    }
    var scale = el("div", { "class": "mk-csat-scale", role: "group", "aria-labelledby": questionId });
    RATING_NAMES.forEach(function (name, i) {
      var rating = i + 1;
      var button = el("button", {
        type: "button", "class": "mk-csat-rating", "data-testid": "csat-rating-" + rating, "aria-label": rating + ", " + name
      }, String(rating));
      button.addEventListener("click", function () { rate(ticket.number, rating, sender, item); });
      scale.appendChild(button);
    });
    item.appendChild(scale);
    var ends = el("p", { "class": "mk-csat-ends", "aria-hidden": "true" });
    ends.appendChild(el("span", {}, "1 = very dissatisfied"));
    ends.appendChild(el("span", {}, "5 = very satisfied"));
    item.appendChild(ends);
    item.appendChild(el("p", { "class": "mk-csat-note", "data-testid": "csat-note", "aria-live": "polite" }));
    log.appendChild(item);
    emptyHint.hidden = true;
    csat.prompt = item;
    scrollToEnd();
  }

  function rate(number, rating, sender, item) {
    var buttons = item.querySelectorAll("button");
    var note = item.querySelector(".mk-csat-note");
    Array.prototype.forEach.call(buttons, function (b) { b.disabled = true; });
    note.textContent = "Sending your rating…";
    request("/api/conversations/" + encodeURIComponent(sender) + "/csat", {
      method: "POST",
      headers: csatHeaders({ "Content-Type": "application/json" }),
      body: JSON.stringify({ number: number, rating: rating })
    }, FETCH_TIMEOUT_MS).then(function (result) { return result; }, function () {
      return { status: 0, body: null };
    }).then(function (result) {
      // 409: already rated (another tab, an earlier visit), which is as good as done.
      if (result.status === 200 || result.status === 409 || result.status === 404) {
        var hadFocus = item.contains(item.getRootNode().activeElement);
        item.removeChild(item.querySelector(".mk-csat-scale"));
        item.removeChild(item.querySelector(".mk-csat-ends"));
        item.setAttribute("data-state", "rated");
        note.textContent = result.status === 404 ? "This ticket can't be rated from here." : "Thanks for your rating.";
        if (csat.prompt === item) { csat.prompt = null; }
        if (hadFocus) { input.focus(); }
        checkSatisfaction();  // another resolved ticket may be waiting
        return;
      }
      Array.prototype.forEach.call(buttons, function (b) { b.disabled = false; });
      note.textContent = "We couldn't save your rating just now; please try again.";
    });
  }

  // ---------------------------------------------------------------- open, close, keys

  function setOpen(open, focus) {
    if (MODE !== "launcher") { return; }
    panel.hidden = !open;
    launcher.setAttribute("aria-expanded", open ? "true" : "false");
    frame.classList.toggle("mk-open", open);
    storage.set("open", open ? "1" : "0");
    if (open) {
      scrollToEnd();
      if (focus) { focusInput(); }
      if (frame.getAttribute("data-ready") === "true") { checkSatisfaction(); }
    } else if (focus) {
      launcher.focus();
    }
  }

  if (launcher) {
    launcher.addEventListener("click", function () { setOpen(panel.hidden, true); });
    closeButton.addEventListener("click", function () { setOpen(false, true); });
    frame.addEventListener("keydown", function (event) {
      if ((event.key === "Escape" || event.key === "Esc") && !panel.hidden) {
        event.preventDefault();
        setOpen(false, true);
      }
    });
  }

  form.addEventListener("submit", function (event) {
    event.preventDefault();
    var text = input.value;
    if (!text.trim()) { input.focus(); return; }
    input.value = "";
    submit(text);
  });
  newButton.addEventListener("click", newConversation);
  window.addEventListener("online", function () { if (state.wait && state.wait.kind === "unreachable") { retryNow(); } });
  document.addEventListener("visibilitychange", function () {
    if (document.visibilityState === "visible") { loadStatus(); }
  });

  // ---------------------------------------------------------------- live chat (live.js)

  var live = null;
  var liveHost = {
    base: BASE, channel: CHANNEL, el: el, panel: panel, composer: form, request: request,
    sender: function () { return state.sender; },
    addItem: addItem, addSystem: addSystem, addAssistant: addAssistant, addCustomer: addCustomer,
    setDelivery: setDelivery, scrollToEnd: scrollToEnd, focus: focusInput,
    checkSatisfaction: function () { checkSatisfaction(); },
    setLive: function (on) { input.placeholder = on ? "Message our team…" : "Ask a question…"; },
    setAgent: function (name) { frame.setAttribute("data-agent", name || ""); }
  };
  var liveLoaded = new Promise(function (resolve) {
    var liveScript = document.createElement("script");
    liveScript.src = BASE + "/static/live.js";
    liveScript.onload = function () {
      if (window.MakanaLive) { live = window.MakanaLive.attach(liveHost); }
      resolve();
    };
    liveScript.onerror = function () { resolve(); };  // the widget works without it
    document.head.appendChild(liveScript);
  });
  input.addEventListener("input", function () { if (live) { live.typed(); } });

  // ---------------------------------------------------------------- start

  function mount() {
    var parent = document.body;
    if (MODE === "pane") {
      parent = TARGET ? document.querySelector(TARGET) : null;
      if (!parent) {
        if (window.console) { console.error("Makana support: data-target " + JSON.stringify(TARGET) + " matches no element"); }
        return;
      }
    }
    parent.appendChild(host);
    if (MODE === "launcher") { setOpen(storage.get("open") === "1", false); }
    // Until the earlier turns are shown, a new message would land above them.
    input.disabled = true;
    sendButton.disabled = true;
    // The status first: it names the hosts whose links may be clickable in the history.
    var statusLoaded = loadStatus();
    statusLoaded.then(function () { return liveLoaded; }).then(loadHistory).then(function () {
      return live ? live.resume() : null;
    }).then(function () {
      input.disabled = false;
      sendButton.disabled = false;
      frame.setAttribute("data-ready", "true");
      scrollToEnd();
      if (focusWhenReady) { focusWhenReady = false; input.focus(); }
      checkSatisfaction();  // after the history, so the question comes below it
    });
    loadTickets();
    setInterval(function () { loadStatus(); loadTickets(); }, STATUS_EVERY_MS);
  }

  if (document.readyState === "loading") { document.addEventListener("DOMContentLoaded", mount); } else { mount(); }
})();
