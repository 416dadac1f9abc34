/*
 * Live chat in the widget and the in-app pane (issue 18): loaded by widget.js, which
 * hands over a small host object (its log, its request helper, the conversation id).
 *
 * - An offer from the assistant ({"live_offer": …}) becomes two buttons: "Chat with an
 *   agent now" (POST …/live) and "Leave a ticket" (the assistant's ticket form goes on).
 * - While the chat is open, the chat's events arrive as server-sent events read with
 *   fetch (…/live/stream?after=<last seq>); when streaming fails three times in a row the
 *   widget polls …/live/events?after=<last seq> every 2 s. Every event has a seq, and
 *   only events after the last seq seen are asked for: nothing is lost or shown twice,
 *   also after a reload (the open chat is reloaded from …/live).
 * - The agent's name, "typing…", and sent/read marks on the customer's messages.
 * Everything is inserted as text (textContent), never as HTML.
 */
(function () {
  "use strict";

  var POLL_MS = 2000;
  var TYPING_SHOW_MS = 5000;
  var TYPING_SEND_EVERY_MS = 3000;

  function attach(host) {
    var el = host.el;
    var chat = null;         // the open chat (server's JSON), or null
    var lastSeq = 0;
    var sentByClientId = {}; // client_id → the customer's log item, for messages typed here
    var itemsBySeq = [];     // [{seq, item}] of the customer's messages, for read marks
    var readUpTo = 0;        // the agent has read the customer's messages up to this seq
    var queueItem = null;
    var streamAbort = null;
    var pollTimer = null;
    var failures = 0;
    var lastTypingSent = 0;
    var agentTyping = el("p", { "class": "mk-live-typing", role: "status", "data-testid": "agent-typing", hidden: true });
    var typingTimer = null;
    host.panel.insertBefore(agentTyping, host.composer);

    function base() { return "/api/conversations/" + encodeURIComponent(host.sender()) + "/live"; }

    function post(path, body) {
      return host.request(base() + path, {
        method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body || {})
      }, 15000);
    }

    // ------------------------------------------------------------ the offer

    function offer() {
      var item = host.addItem("system", "mk-live-offer");
      var group = el("div", { "class": "mk-replies", role: "group", "aria-label": "Chat with a person" });
      var start = el("button", { type: "button", "class": "mk-reply", "data-testid": "live-start" }, "Chat with an agent now");
      var ticket = el("button", { type: "button", "class": "mk-reply", "data-testid": "live-decline" }, "Leave a ticket");
      start.addEventListener("click", function () {
        group.remove();
        item.appendChild(el("div", { "class": "mk-bubble" }, "Connecting you with our team…"));
        begin();
      });
      ticket.addEventListener("click", function () {
        group.remove();
        item.appendChild(el("div", { "class": "mk-bubble" }, "OK: answer the questions below and we'll open a ticket."));
        host.focus();
      });
      group.appendChild(start);
      group.appendChild(ticket);
      item.appendChild(group);
      host.scrollToEnd();
    }

    function begin() {
      post("", { channel: host.channel }).then(function (result) {
        if (result.status === 201 && result.body) {
          open(result.body.chat, result.body.queue);
        } else {
          var message = result.body && result.body.error ? result.body.error.message : "Nobody can chat right now.";
          host.addSystem(message);
        }
      }, function () { host.addSystem("We couldn't reach our team just now; please try again."); });
    }

    // ------------------------------------------------------------ the chat

    // Seqs are per chat: a new chat starts from nothing.
    function fresh(newChat) {
      chat = newChat;
      lastSeq = 0;
      readUpTo = 0;
      itemsBySeq = [];
      sentByClientId = {};
      failures = 0;
    }

    function open(newChat, queue) {
      fresh(newChat);
      host.setLive(true);
      showQueue(queue);
      connect();
    }

    function close() {
      chat = null;
      host.setLive(false);
      if (streamAbort) { streamAbort.abort(); streamAbort = null; }
      if (pollTimer) { clearTimeout(pollTimer); pollTimer = null; }
      agentTyping.hidden = true;
      if (queueItem) { queueItem.remove(); queueItem = null; }
    }

    function minutes(seconds) {
      var m = Math.max(1, Math.round(seconds / 60));
      return "about " + m + (m === 1 ? " minute" : " minutes");
    }

    function showQueue(queue) {
      if (!chat || chat.status !== "waiting" || !queue) {
        if (queueItem && chat && chat.status !== "waiting") { queueItem.remove(); queueItem = null; }
        return;
      }
      if (!queueItem) {
        queueItem = host.addItem("system", "mk-live-queue");
        queueItem.setAttribute("data-testid", "live-queue");
        queueItem.appendChild(el("div", { "class": "mk-bubble" }));
      }
      var bubble = queueItem.querySelector(".mk-bubble");
      bubble.textContent = "You're number " + queue.position + " in the queue for our team. Estimated wait: " +
        minutes(queue.estimated_wait_s) + ". You can write your question meanwhile.";
      if (queue.offer_ticket && !queueItem.querySelector("[data-testid=live-leave-ticket]")) {
        var leave = el("button", { type: "button", "class": "mk-reply", "data-testid": "live-leave-ticket" },
          "Leave a ticket instead");
        bubble.appendChild(el("span", {}, " It's taking longer than we hoped: you can leave a ticket, with everything you wrote kept."));
        leave.addEventListener("click", function () { leaveForTicket(); });
        queueItem.appendChild(leave);
      }
      host.scrollToEnd();
    }

    function leaveForTicket() {
      post("/leave", { ticket: true }).then(function (result) {
        if (result.status !== 200 || !result.body) { host.addSystem("That didn't work; please try again."); return; }
        close();
        (result.body.messages || []).forEach(function (m) {
          if (typeof m.text === "string" || (m.buttons && m.buttons.length)) { host.addAssistant(m.text || "", m.buttons || []); }
        });
      });
    }

    function agentItem(text, author) {
      var item = host.addItem("agent");
      item.setAttribute("data-from", "agent");
      item.appendChild(el("div", { "class": "mk-live-name", "data-testid": "agent-name" }, (author || "Agent") + " · support team"));
      item.appendChild(el("div", { "class": "mk-bubble", "data-testid": "message-text" }, text));
      host.scrollToEnd();
      return item;
    }

    function handle(event) {
      if (event.seq <= lastSeq) { return; }  // already shown
      lastSeq = event.seq;
      if (event.kind === "message" && event.sender === "agent") {
        agentTyping.hidden = true;
        agentItem(event.text || "", event.author);
        markRead();
      } else if (event.kind === "message" && event.sender === "customer") {
        var mine = event.client_id && sentByClientId[event.client_id];
        var item = mine || host.addCustomer(event.text || "", "sent");
        itemsBySeq.push({ seq: event.seq, item: item });
      } else if (event.kind === "typing" && event.sender === "agent") {
        agentTyping.textContent = (event.author || "The agent") + " is typing…";
        agentTyping.hidden = false;
        clearTimeout(typingTimer);
        typingTimer = setTimeout(function () { agentTyping.hidden = true; }, TYPING_SHOW_MS);
      } else if (event.kind === "read" && event.sender === "agent") {
        readUpTo = Math.max(readUpTo, parseInt(event.text, 10) || 0);
        itemsBySeq.forEach(function (entry) {
          if (entry.seq <= readUpTo) { host.setDelivery(entry.item, "read", "Read"); }
        });
      } else if (event.kind === "status") {
        status(event);
      }
    }

    function status(event) {
      if (event.text === "claimed" || event.text === "transferred") {
        if (chat) { chat.status = "claimed"; chat.agent = event.author; }
        showQueue(null);
        host.setAgent(event.author);
        host.addSystem((event.author || "An agent") + (event.text === "claimed" ? " from our support team joined the chat." : " took over the chat."));
      } else if (event.text === "handed_back" || event.text === "ended") {
        host.addSystem(event.text === "ended"
          ? "The agent ended the chat. The assistant is back if you need anything else."
          : "You're back with the assistant. Ask anything, or say \"talk to a human\" again.");
        host.setAgent(null);
        close();
        host.checkSatisfaction();
      } else if (event.text === "ticket" || event.text === "cancelled") {
        host.setAgent(null);
        close();
      }
    }

    function markRead() {
      if (!chat || document.visibilityState !== "visible") { return; }
      post("/read", { seq: lastSeq });
    }

    // ------------------------------------------------------------ delivery

    function connect() {
      if (!chat) { return; }
      if (failures >= 3 || !window.ReadableStream || !window.TextDecoder) { poll(); return; }
      var controller = new AbortController();
      streamAbort = controller;
      fetch(host.base + base() + "/stream?after=" + lastSeq, { cache: "no-store", credentials: "omit", signal: controller.signal })
        .then(function (response) {
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
              blocks.forEach(parseBlock);
              return pump();
            });
          }
          return pump();
        })
        .then(function () { reconnectSoon(); }, function () {
          if (controller.signal.aborted) { return; }
          failures += 1;
          reconnectSoon();
        });
    }

    function parseBlock(block) {
      var kind = "message", data = "";
      block.split("\n").forEach(function (line) {
        if (line.indexOf("event:") === 0) { kind = line.slice(6).trim(); }
        else if (line.indexOf("data:") === 0) { data += line.slice(5).trim(); }
      });
      if (!data) { return; }
      var value;
      try { value = JSON.parse(data); } catch (e) { return; }
      if (kind === "live") { handle(value); } else if (kind === "queue") { showQueue(value); }
    }

    function reconnectSoon() {
      streamAbort = null;
      if (chat) { setTimeout(connect, failures ? 1000 * failures : 200); }
    }

    function poll() {
      if (!chat) { return; }
      host.request(base() + "/events?after=" + lastSeq, {}, 15000).then(function (result) {
        if (result.status === 200 && result.body) {
          (result.body.events || []).forEach(handle);
          if (chat && result.body.chat && result.body.chat.status === "waiting") { showQueue(result.body.queue); }
        }
      }, function () {}).then(function () {
        if (chat) { pollTimer = setTimeout(poll, POLL_MS); }
      });
    }

    // ------------------------------------------------------------ what the widget calls

    return {
      custom: function (payload) {
        if (payload && payload.live_offer && !chat) { offer(); }
      },
      // A customer message is on its way: its client id lets the stream recognise it.
      sending: function (clientId, item) { if (chat) { sentByClientId[clientId] = item; } },
      active: function () { return !!chat; },
      // The server answered the message with its seq: it may have been read already.
      delivered: function (item, seq) {
        if (!itemsBySeq.some(function (entry) { return entry.item === item; })) { itemsBySeq.push({ seq: seq, item: item }); }
        if (seq <= readUpTo) { host.setDelivery(item, "read", "Read"); }
      },
      typed: function () {
        if (!chat || Date.now() - lastTypingSent < TYPING_SEND_EVERY_MS) { return; }
        lastTypingSent = Date.now();
        post("/typing", {});
      },
      // After the history: an open chat (a reload) is shown again from its own log.
      resume: function () {
        if (!host.sender()) { return Promise.resolve(); }
        return host.request(base(), {}, 15000).then(function (result) {
          if (result.status !== 200 || !result.body || !result.body.chat) { return; }
          fresh(result.body.chat);
          host.setLive(true);
          (result.body.events || []).forEach(handle);
          if (chat && chat.status === "waiting") { showQueue(result.body.queue); }
          connect();
        }, function () {});
      },
      reset: close
    };
  }

  window.MakanaLive = { attach: attach };
})();
