/*
 * The console's Live view: presence, the waiting chats (most severe first, then longest
 * waiting), and one chat to work: claim, reply, see the customer typing, hand back to
 * the bot, transfer, end. The queue is refreshed every 2 s; the open chat's events come
 * as server-sent events read with fetch (the staff token is a header, which EventSource
 * cannot send), resumed after the last seq seen, with polling when streaming fails.
 * Everything from the API is inserted as text (textContent).
 */
(function () {
  "use strict";

  var S = window.MakanaStaff;
  var el = S.el;
  var QUEUE_EVERY_MS = 2000;
  var KB_TIMEOUT_MS = 90 * 1000;  // the first search loads the encoder into the web service
  var HEARTBEAT_MS = 20000;
  var TYPING_SEND_EVERY_MS = 3000;
  var TYPING_SHOW_MS = 5000;

  var me = null;
  var presence = "away";
  var current = null;    // the open chat (JSON from /api/staff/live/{id})
  var lastSeq = 0;
  var streamAbort = null;
  var failures = 0;
  var pollTimer = null;
  var lastTypingSent = 0;
  var typingTimer = null;
  var heartbeat = null;

  function byId(id) { return document.getElementById(id); }

  function showError(id, error) {
    var node = byId(id);
    node.textContent = error ? error.message || String(error) : "";
    node.hidden = !error;
  }

  function duration(seconds) {
    seconds = Math.max(0, Math.round(seconds));
    return seconds >= 60 ? Math.floor(seconds / 60) + " min " + (seconds % 60) + " s" : seconds + " s";
  }

  // ------------------------------------------------------------ presence and queue

  function setPresence(status) {
    presence = status;
    byId("presence").value = status;
    clearInterval(heartbeat);
    heartbeat = null;
    var send = function () {
      return S.api("/api/staff/live/presence", { method: "POST", body: { status: presence } })
        .catch(function (e) { showError("live-error", e); });
    };
    if (status === "online") { heartbeat = setInterval(send, HEARTBEAT_MS); }
    return send().then(loadQueue);
  }

  function loadQueue() {
    return S.api("/api/staff/live").then(function (body) {
      showError("live-error", null);
      me = body.me;
      renderQueue(body);
    }, function (e) { showError("live-error", e); });
  }

  function renderQueue(body) {
    var list = byId("live-chats");
    S.clear(list);
    var waiting = body.chats.filter(function (c) { return c.status === "waiting"; }).length;
    byId("live-status").textContent = waiting + (waiting === 1 ? " chat waiting. " : " chats waiting. ") +
      (body.available ? "Customers are offered a live chat." : "Customers are not offered a live chat now (" +
        (body.reason === "closed" ? "outside business hours" : "nobody online") + ").");
    body.chats.forEach(function (c) {
      var item = el("li", { "data-testid": "live-queue-item", "data-chat": c.id, "data-status": c.status });
      if (current && current.id === c.id) { item.setAttribute("aria-current", "true"); }
      item.appendChild(el("span", { "class": "sev" }, c.severity || "unrated"));
      var who = c.fields && (c.fields.name || c.fields.email) ? (c.fields.name || c.fields.email) : "Visitor";
      item.appendChild(el("span", {}, who + (c.fields && c.fields.product ? " · " + c.fields.product : "")));
      var line = c.status === "waiting"
        ? "#" + c.position + " waiting " + duration(c.waited_s)
        : "with " + c.agent;
      item.appendChild(el("div", { "class": "muted small" }, line + " · " + c.channel));
      item.addEventListener("click", function () { openChat(c.id); });
      list.appendChild(item);
    });
    if (!body.chats.length) { list.appendChild(el("li", { "class": "muted" }, "No live chats.")); }
    var team = byId("live-team");
    S.clear(team);
    Object.keys(body.presence).forEach(function (name) {
      team.appendChild(el("li", { "class": body.presence[name] }, name + " (" + body.presence[name] + ")"));
    });
    var transfer = byId("transfer-to");
    var chosen = transfer.value;
    S.clear(transfer);
    body.agents.filter(function (a) { return a !== me; }).forEach(function (a) {
      transfer.appendChild(el("option", { value: a }, a));
    });
    if (chosen) { transfer.value = chosen; }
  }

  // ------------------------------------------------------------ one chat

  function openChat(id) {
    stopDelivery();
    return S.api("/api/staff/live/" + id).then(function (body) {
      current = body;
      lastSeq = 0;
      byId("live-chat").hidden = false;
      byId("chat-title").textContent = "Live chat " + body.id + (body.severity ? " · " + body.severity : "");
      renderFields(body);
      var log = byId("chat-log");
      S.clear(log);
      body.bot_transcript.forEach(function (t) { addLine(t.speaker === "customer" ? "customer" : "system", t.speaker === "customer" ? "Customer" : "Assistant", t.text); });
      if (body.bot_transcript.length) { addLine("system", "", "— the customer asked for a person —"); }
      body.events.forEach(handle);
      updateButtons();
      connect();
      loadQueue();
    }, function (e) { showError("chat-error", e); });
  }

  function renderFields(chat) {
    var dl = byId("chat-fields");
    S.clear(dl);
    Object.keys(chat.fields || {}).forEach(function (k) {
      dl.appendChild(el("dt", {}, k));
      dl.appendChild(el("dd", {}, chat.fields[k]));
    });
    byId("chat-meta").textContent = "Proposed severity: " + (chat.severity || "none yet") + " · " + chat.channel +
      " · asked " + new Date(chat.requested_at).toLocaleTimeString() + (chat.agent ? " · agent: " + chat.agent : "");
  }

  function updateButtons() {
    var mine = current && current.status === "claimed" && current.agent === me;
    byId("claim").hidden = !(current && current.status === "waiting");
    byId("handback").disabled = !mine;
    byId("end").disabled = !mine;
    byId("transfer").disabled = !mine;
    byId("reply").disabled = !mine;
    byId("reply-form").querySelector("button[type=submit]").disabled = !mine;
  }

  function addLine(kind, who, text) {
    var item = el("li", { "class": kind, "data-testid": "chat-line", "data-kind": kind });
    if (who) { item.appendChild(el("span", { "class": "who" }, who)); }
    item.appendChild(el("span", { "class": "text" }, text));
    var log = byId("chat-log");
    log.appendChild(item);
    log.scrollTop = log.scrollHeight;
    return item;
  }

  function handle(event) {
    if (!current || event.seq <= lastSeq) { return; }
    lastSeq = event.seq;
    if (event.kind === "message") {
      if (event.sender === "customer") {
        byId("customer-typing").hidden = true;
        addLine("customer", "Customer", event.text || "");
        markRead();
      } else {
        addLine("agent", event.author || "Agent", event.text || "");
      }
    } else if (event.kind === "typing" && event.sender === "customer") {
      byId("customer-typing").hidden = false;
      clearTimeout(typingTimer);
      typingTimer = setTimeout(function () { byId("customer-typing").hidden = true; }, TYPING_SHOW_MS);
    } else if (event.kind === "read" && event.sender === "customer") {
      byId("chat-meta").setAttribute("data-read", event.text);
    } else if (event.kind === "status") {
      var words = {
        waiting: "Waiting for an agent.", claimed: (event.author || "An agent") + " claimed the chat.",
        transferred: "Transferred to " + event.author + ".", handed_back: "Handed back to the bot.",
        ended: "Chat ended.", ticket: "The customer chose to leave a ticket.", cancelled: "The customer stopped waiting."
      };
      addLine("system", "", words[event.text] || event.text);
      if (event.text === "claimed" || event.text === "transferred") { current.status = "claimed"; current.agent = event.author; }
      if (["handed_back", "ended", "ticket", "cancelled"].indexOf(event.text) >= 0) { current.status = "ended"; }
      renderFields(current);
      updateButtons();
    }
  }

  // ------------------------------------------------------------ knowledge base

  // Search the knowledge base; "Insert" puts an answer into the reply box for the agent
  // to edit and send (shown as text everywhere, as every message).
  function searchKb(event) {
    event.preventDefault();
    var query = byId("kb-query").value.trim();
    var list = byId("kb-results");
    byId("kb-error").hidden = true;
    S.clear(list);
    if (!query) { list.appendChild(el("li", { "class": "muted" }, "Type a question to search the knowledge base.")); return; }
    list.appendChild(el("li", { "class": "muted" }, "Searching…"));
    // The web service loads the encoder on the first search: that one may take a while.
    S.api("/api/staff/kb?q=" + encodeURIComponent(query), { timeout: KB_TIMEOUT_MS }).then(function (body) {
      S.clear(list);
      if (!body.entries.length) { list.appendChild(el("li", { "class": "muted" }, "Nothing found.")); }
      body.entries.forEach(function (entry) {
        var item = el("li", { "data-testid": "kb-result", "data-entry": entry.id });
        item.appendChild(el("strong", {}, entry.title));
        item.appendChild(el("p", { "class": "small" }, entry.answer));
        var insert = el("button", { type: "button", "data-testid": "kb-insert" }, "Insert");
        insert.addEventListener("click", function () {
          var reply = byId("reply");
          reply.value = reply.value ? reply.value.replace(/\s*$/, "\n\n") + entry.answer : entry.answer;
          reply.focus();
        });
        item.appendChild(insert);
        list.appendChild(item);
      });
    }, function (e) { S.clear(list); showError("kb-error", e); });
  }

  function markRead() {
    if (!current || current.status !== "claimed" || current.agent !== me || document.visibilityState !== "visible") { return; }
    S.api("/api/staff/live/" + current.id + "/read", { method: "POST", body: { seq: lastSeq } }).catch(function () {});
  }

  function stopDelivery() {
    if (streamAbort) { streamAbort.abort(); streamAbort = null; }
    clearTimeout(pollTimer);
    pollTimer = null;
  }

  function connect() {
    if (!current || current.status === "ended") { return; }
    if (failures >= 3 || !window.ReadableStream) { poll(); return; }
    var controller = new AbortController();
    streamAbort = controller;
    var chatId = current.id;
    var token = "";
    try { token = window.sessionStorage.getItem("makana-staff-token") || ""; } catch (e) { token = ""; }
    fetch("/api/staff/live/" + chatId + "/stream?after=" + lastSeq, {
      headers: { "Authorization": "Bearer " + token }, cache: "no-store", credentials: "omit", signal: controller.signal
    }).then(function (response) {
      if (response.status !== 200 || !response.body) { throw new Error("stream " + response.status); }
      failures = 0;
      var reader = response.body.getReader();
      var decoder = new TextDecoder();
      var buffer = "";
      function pump() {
        return reader.read().then(function (chunk) {
          if (chunk.done) { return; }
          buffer += decoder.decode(chunk.value, { stream: true });
          var blocks = buffer.split("\n\n");
          buffer = blocks.pop();
          blocks.forEach(function (block) {
            var kind = "", data = "";
            block.split("\n").forEach(function (line) {
              if (line.indexOf("event:") === 0) { kind = line.slice(6).trim(); }
              else if (line.indexOf("data:") === 0) { data += line.slice(5).trim(); }
            });
            if (kind === "live" && data && current && current.id === chatId) {
              try { handle(JSON.parse(data)); } catch (e) { /* a malformed block is skipped */ }
            }
          });
          return pump();
        });
      }
      return pump();
    }).then(function () { again(controller); }, function () {
      if (controller.signal.aborted) { return; }
      failures += 1;
      again(controller);
    });
  }

  function again(controller) {
    if (streamAbort === controller) { streamAbort = null; }
    if (current && current.status !== "ended" && !controller.signal.aborted) {
      setTimeout(connect, failures ? 1000 * failures : 200);
    }
  }

  function poll() {
    if (!current || current.status === "ended") { return; }
    var chatId = current.id;
    S.api("/api/staff/live/" + chatId + "/events?after=" + lastSeq).then(function (body) {
      if (current && current.id === chatId) { body.events.forEach(handle); }
    }, function () {}).then(function () {
      if (current && current.id === chatId) { pollTimer = setTimeout(poll, 2000); }
    });
  }

  function act(path, body) {
    if (!current) { return Promise.resolve(); }
    showError("chat-error", null);
    return S.api("/api/staff/live/" + current.id + path, { method: "POST", body: body || {} })
      .then(function (answer) {
        if (answer && answer.chat) { current.status = answer.chat.status; current.agent = answer.chat.agent; updateButtons(); }
        if (answer && answer.chat && answer.chat.ticket_number) {
          addLine("system", "", "Recorded as ticket " + answer.chat.ticket_number + ".");
        }
        loadQueue();
        return answer;
      }, function (e) { showError("chat-error", e); });
  }

  // ------------------------------------------------------------ start

  S.start(function () {
    byId("presence").addEventListener("change", function () { setPresence(byId("presence").value); });
    byId("claim").addEventListener("click", function () {
      var claim = byId("claim");
      act("/claim").then(function () {
        // The reply box takes the focus only if the agent has not moved on while the claim
        // was on its way: a search they started typing keeps its keystrokes.
        var active = document.activeElement;
        var idle = !active || active === document.body || active === claim;
        if (current && current.status === "claimed" && idle) { byId("reply").focus(); }
      });
    });
    byId("handback").addEventListener("click", function () { act("/handback"); });
    byId("end").addEventListener("click", function () { act("/end"); });
    byId("transfer").addEventListener("click", function () {
      var to = byId("transfer-to").value;
      if (to) { act("/transfer", { to: to }); }
    });
    byId("reply").addEventListener("input", function () {
      if (!current || current.status !== "claimed" || Date.now() - lastTypingSent < TYPING_SEND_EVERY_MS) { return; }
      lastTypingSent = Date.now();
      S.api("/api/staff/live/" + current.id + "/typing", { method: "POST", body: {} }).catch(function () {});
    });
    byId("reply-form").addEventListener("submit", function (event) {
      event.preventDefault();
      var text = byId("reply").value.trim();
      if (!text || !current) { return; }
      var clientId = String(Date.now()) + Math.random().toString(16).slice(2, 10);
      S.api("/api/staff/live/" + current.id + "/messages", { method: "POST", body: { text: text, client_id: clientId } })
        .then(function () { byId("reply").value = ""; lastTypingSent = 0; }, function (e) { showError("chat-error", e); });
    });
    byId("kb-form").addEventListener("submit", searchKb);
    document.addEventListener("visibilitychange", markRead);
    setPresence("online");
    setInterval(loadQueue, QUEUE_EVERY_MS);
  });
})();
