/*
 * The support team's console: the ticket queue (ordered by first-response deadline,
 * refreshed every 30 s) and one ticket's view (transcript, booking, notes, assignment
 * and status changes). Talks to /api/staff/* through MakanaStaff.api (session.js).
 *
 * The ticket view follows the URL's hash (#MK-XXXXXX), so the back button and links work;
 * it takes a column only while a ticket is open (the queue has the width otherwise).
 * Customer text is inserted with textContent only; the transcript's Markdown goes through
 * the widget's own renderer (rich-text.js), so it reads as the customer saw it: text
 * nodes, <strong> and links to the company's hosts, never HTML.
 */
(function () {
  "use strict";

  var staff = window.MakanaStaff;
  var el = staff.el;
  var REFRESH_MS = 30 * 1000;
  var DUE_SOON_MINUTES = 120;
  // Mirrors TRANSITIONS in bot/store.py; the server refuses anything else with a 409.
  var TRANSITIONS = { open: ["pending", "resolved"], pending: ["open", "resolved"], resolved: ["open", "closed"], closed: [] };
  var STATUS_ACTIONS = { open: "Reopen", pending: "Mark pending", resolved: "Resolve", closed: "Close" };
  var NUMBER_RE = /^MK-[A-Z0-9]{6}$/;

  var rows = document.getElementById("queue-rows");
  var queueStatus = document.getElementById("queue-status");
  var queueError = document.getElementById("queue-error");
  var filters = document.getElementById("filters");
  var ticketSection = document.getElementById("ticket");
  var ticketTitle = document.getElementById("ticket-title");
  var ticketBody = document.getElementById("ticket-body");
  var ticketError = document.getElementById("ticket-error");
  var placeholder = document.getElementById("no-ticket");
  var app = document.getElementById("app");

  // The hosts whose links the widget makes clickable (the service's and the policy's,
  // from /api/status): the transcript links exactly those, like the widget did.
  var linkHosts = {};
  linkHosts[location.host] = true;
  function loadLinkHosts() {
    return fetch("/api/status", { credentials: "omit", cache: "no-store" }).then(function (response) {
      return response.ok ? response.json() : null;
    }).then(function (body) {
      ((body && body.link_hosts) || []).forEach(function (h) { if (typeof h === "string") { linkHosts[h] = true; } });
    }, function () { /* links stay text until the status answers */ });
  }

  function showTicketColumn(open) {
    ticketSection.hidden = !open;
    placeholder.hidden = open;
    app.classList.toggle("has-ticket", open);
  }

  var timer = null;
  var current = null;      // the ticket shown, as the API last returned it
  var loadingQueue = null; // the queue request in flight, so refreshes do not pile up

  // ---------------------------------------------------------------- wording

  function humanize(value) {
    value = String(value || "").replace(/_/g, " ");
    return value.charAt(0).toUpperCase() + value.slice(1);
  }

  function plural(n, one, many) { return n + " " + (n === 1 ? one : many); }

  function duration(minutes) {
    if (minutes < 60) { return plural(minutes, "business minute", "business minutes"); }
    var hours = Math.floor(minutes / 60);
    var rest = minutes % 60;
    return plural(hours, "business hour", "business hours") + (rest ? " " + plural(rest, "minute", "minutes") : "");
  }

  function wallDuration(minutes) {
    if (minutes < 60) { return plural(minutes, "minute", "minutes"); }
    var hours = Math.floor(minutes / 60);
    var rest = minutes % 60;
    return plural(hours, "hour", "hours") + (rest ? " " + plural(rest, "minute", "minutes") : "");
  }

  // The first-response clock in words, and how urgent it is (overdue | due-soon | ok | stopped).
  // It counts business time; a severity answered around the clock can fall due while the
  // office is closed (no business time left, or none past): then it counts real minutes.
  function clock(ticket) {
    if (ticket.status !== "open") { return { text: "Clock stopped (" + ticket.status + ")", urgency: "stopped" }; }
    var left = Number(ticket.business_time_left_minutes) || 0;
    var wall = Math.round((Date.parse(ticket.response_due_at) - Date.now()) / 60000);
    if (ticket.overdue || left < 0) {
      if (left < 0) { return { text: "Overdue by " + duration(-left), urgency: "overdue" }; }
      return { text: "Overdue by " + wallDuration(Math.max(1, -wall)) + " (outside business hours)", urgency: "overdue" };
    }
    if (left === 0) {
      return { text: wall > 0 ? "Due in " + wallDuration(wall) + " (outside business hours)" : "Due now", urgency: "due-soon" };
    }
    return { text: "Due in " + duration(left), urgency: left < DUE_SOON_MINUTES ? "due-soon" : "ok" };
  }

  function localTime(iso) {
    var when = new Date(iso);
    if (isNaN(when.getTime())) { return String(iso || ""); }
    return when.toLocaleString(undefined, { dateStyle: "medium", timeStyle: "short" });
  }

  function showError(node, message) {
    node.textContent = message || "";
    node.hidden = !message;
  }

  function failed(node) {
    return function (error) {
      if (error instanceof staff.AuthError) { return; }  // the sign-in form says it
      showError(node, error.message || String(error));
    };
  }

  // ---------------------------------------------------------------- the queue

  function queryString() {
    var params = new URLSearchParams();
    var status = document.getElementById("filter-status").value;
    var severity = document.getElementById("filter-severity").value;
    if (status) { params.set("status", status); }
    if (severity) { params.set("severity", severity); }
    if (document.getElementById("filter-overdue").checked) { params.set("overdue", "true"); }
    params.set("limit", "500");
    return params.toString();
  }

  // Team notifications that gave up (dead letters): the team is not hearing of some
  // tickets by email or webhook. Shown until someone retries them.
  var outboxAlert = document.getElementById("outbox-alert");
  var outboxText = document.getElementById("outbox-text");
  document.getElementById("outbox-retry").addEventListener("click", function () {
    staff.api("/api/staff/outbox/retry", { method: "POST", body: {} }).then(loadOutbox, failed(queueError));
  });

  function loadOutbox() {
    return staff.api("/api/staff/outbox").then(function (body) {
      var dead = body && typeof body.dead === "number" ? body.dead : 0;
      outboxText.textContent = plural(dead, "notification to the team", "notifications to the team") +
        " could not be delivered (email or webhook).";
      outboxAlert.hidden = dead === 0;
    }, function () { /* the queue shows connection problems */ });
  }

  function loadQueue() {
    loadOutbox();
    if (loadingQueue) { return loadingQueue; }
    rows.parentNode.parentNode.setAttribute("aria-busy", "true");
    loadingQueue = staff.api("/api/staff/tickets?" + queryString()).then(function (body) {
      showError(queueError, "");
      renderQueue(body.tickets || []);
      queueStatus.textContent = plural((body.tickets || []).length, "ticket", "tickets") +
        " · updated " + new Date().toLocaleTimeString(undefined, { timeStyle: "short" });
    }, failed(queueError)).finally(function () {
      loadingQueue = null;
      rows.parentNode.parentNode.setAttribute("aria-busy", "false");
    });
    return loadingQueue;
  }

  function renderQueue(tickets) {
    // Keep the keyboard where it was across a refresh.
    var focused = document.activeElement && rows.contains(document.activeElement)
      ? document.activeElement.getAttribute("data-number") : null;
    staff.clear(rows);
    if (!tickets.length) {
      var empty = el("tr");
      empty.appendChild(el("td", { colspan: "7", "class": "muted" }, "No tickets match these filters."));
      rows.appendChild(empty);
      return;
    }
    tickets.forEach(function (t) {
      var due = clock(t);
      var tr = el("tr", { "class": "row-" + due.urgency, "data-testid": "queue-row", "data-number": t.number });
      var numberCell = el("td");
      var link = el("a", { href: "#" + t.number, "class": "number", "data-number": t.number }, t.number);
      if (current && current.number === t.number) { link.setAttribute("aria-current", "true"); }
      numberCell.appendChild(link);
      tr.appendChild(numberCell);
      var severity = el("td");
      severity.appendChild(el("span", { "class": "badge severity-" + t.severity }, humanize(t.severity)));
      tr.appendChild(severity);
      var status = el("td");
      status.appendChild(el("span", { "class": "badge status-" + t.status }, humanize(t.status)));
      tr.appendChild(status);
      // One line per row: what does not fit ends in "…", and the whole text is the tooltip.
      var product = [t.product, t.version].filter(Boolean).join(" ");
      tr.appendChild(el("td", { "class": "cut", title: product }, product));
      var customer = el("td", { "class": "cut", title: t.name + " <" + t.email + ">" });
      customer.appendChild(el("span", {}, t.name));
      customer.appendChild(el("span", { "class": "muted email" }, " " + t.email));
      tr.appendChild(customer);
      tr.appendChild(el("td", { "class": "cut" + (t.assignee ? "" : " muted"), title: t.assignee || "" }, t.assignee || "Unassigned"));
      var clockCell = el("td", { "class": "clock", "data-testid": "queue-clock", title: due.text + " (first response due " + t.response_due + ")" });
      // At most two lines, whatever the flag and the words: the row stays compact.
      var clockBox = el("div", { "class": "clock-box" });
      if (due.urgency === "overdue" || due.urgency === "due-soon") {
        clockBox.appendChild(el("span", { "class": "flag flag-" + due.urgency }, due.urgency === "overdue" ? "Overdue" : "Due soon"));
      }
      clockBox.appendChild(el("span", { "class": "clock-words" }, due.text));
      clockCell.appendChild(clockBox);
      tr.appendChild(clockCell);
      // The whole row opens the ticket for a mouse; the keyboard uses the number's link.
      tr.addEventListener("click", function (event) {
        if (event.target.closest("a")) { return; }
        location.hash = t.number;
      });
      rows.appendChild(tr);
    });
    if (focused) {
      var again = rows.querySelector('a[data-number="' + focused + '"]');
      if (again) { again.focus(); }
    }
  }

  function startRefreshing() {
    stopRefreshing();
    timer = setInterval(function () { if (!document.hidden) { loadQueue(); } }, REFRESH_MS);
  }

  function stopRefreshing() {
    if (timer) { clearInterval(timer); timer = null; }
  }

  // ---------------------------------------------------------------- one ticket

  function selectedNumber() {
    var hash = decodeURIComponent(location.hash.replace(/^#/, ""));
    return NUMBER_RE.test(hash) ? hash : null;
  }

  function openFromHash(focus) {
    if (!staff.signedIn()) { return Promise.resolve(); }
    var number = selectedNumber();
    Array.prototype.forEach.call(rows.querySelectorAll("a[data-number]"), function (a) {
      if (a.getAttribute("data-number") === number) { a.setAttribute("aria-current", "true"); }
      else { a.removeAttribute("aria-current"); }
    });
    if (!number) {
      current = null;
      showTicketColumn(false);
      return Promise.resolve();
    }
    return loadTicket(number, focus);
  }

  // Show ticket `number`; `notice` is an error to show above it once it is loaded.
  function loadTicket(number, focus, notice) {
    showTicketColumn(true);
    ticketSection.setAttribute("aria-busy", "true");
    ticketTitle.textContent = number;
    return staff.api("/api/staff/tickets/" + encodeURIComponent(number)).then(function (ticket) {
      current = ticket;
      showError(ticketError, notice || "");
      renderTicket(ticket);
      if (focus) { ticketTitle.focus(); }
    }, function (error) {
      if (error instanceof staff.AuthError) { return; }
      current = null;
      staff.clear(ticketBody);
      showError(ticketError, error.status === 404 ? "There is no ticket " + number + "." : error.message);
    }).finally(function () { ticketSection.setAttribute("aria-busy", "false"); });
  }

  function section(title, testid) {
    var node = el("section", { "class": "block", "data-testid": testid });
    node.appendChild(el("h3", {}, title));
    return node;
  }

  function fact(list, term, value, testid) {
    list.appendChild(el("dt", {}, term));
    list.appendChild(el("dd", testid ? { "data-testid": testid } : {}, value === null || value === undefined || value === "" ? "—" : value));
  }

  function longText(parent, title, text, testid) {
    var block = section(title, testid);
    block.appendChild(el("p", { "class": "long-text", "data-testid": testid + "-text" }, text || "—"));
    parent.appendChild(block);
  }

  function renderTicket(t) {
    ticketTitle.textContent = t.number + ": " + [t.product, t.version].filter(Boolean).join(" ");
    staff.clear(ticketBody);
    var due = clock(t);

    var badges = el("p", { "class": "badges" });
    badges.appendChild(el("span", { "class": "badge severity-" + t.severity, "data-testid": "ticket-severity" }, humanize(t.severity)));
    badges.appendChild(el("span", { "class": "badge status-" + t.status, "data-testid": "ticket-status" }, humanize(t.status)));
    badges.appendChild(el("span", { "class": "clock-text clock-" + due.urgency }, due.text));
    ticketBody.appendChild(badges);

    var facts = el("dl", { "class": "facts" });
    fact(facts, "Customer", t.name, "ticket-name");
    fact(facts, "Email", t.email, "ticket-email");
    fact(facts, "Category", humanize(t.category));
    fact(facts, "Channel", humanize(t.channel));
    fact(facts, "Opened", localTime(t.created_at));
    fact(facts, "First response due", t.response_due);
    fact(facts, "Assignee", t.assignee || "Unassigned", "ticket-assignee");
    ticketBody.appendChild(facts);

    ticketBody.appendChild(actions(t));
    longText(ticketBody, "Problem", t.description, "ticket-description");
    longText(ticketBody, "Already tried", t.tried, "ticket-tried");
    longText(ticketBody, "Impact", t.impact, "ticket-impact");
    ticketBody.appendChild(booking(t.booking));
    ticketBody.appendChild(transcript(t.transcript || []));
    ticketBody.appendChild(notes(t));
  }

  function actions(t) {
    var block = section("Actions", "ticket-actions");
    var error = el("p", { "class": "error", role: "alert", "data-testid": "action-error", hidden: true });

    var statusGroup = el("div", { role: "group", "aria-label": "Change the status", "class": "status-buttons" });
    var allowed = TRANSITIONS[t.status] || [];
    if (!allowed.length) { statusGroup.appendChild(el("p", { "class": "muted" }, "A closed ticket cannot change status.")); }
    allowed.forEach(function (target) {
      var label = target === "open" && t.status === "pending" ? "Back to open" : STATUS_ACTIONS[target];
      var button = el("button", { type: "button", "data-testid": "status-" + target, "class": target === "resolved" ? "primary" : "" }, label);
      button.addEventListener("click", function () {
        disableWhile(block, staff.api("/api/staff/tickets/" + encodeURIComponent(t.number) + "/status",
          { method: "POST", body: { status: target } })
          .then(function () { return afterChange(t.number, "Status changed to " + target + "."); }, function (problem) {
            // Someone else changed it first: show the ticket as it is now, and why this failed.
            if (problem.status === 409) { return loadTicket(t.number, false, problem.message).then(loadQueue); }
            failed(error)(problem);
          }));
      });
      statusGroup.appendChild(button);
    });
    block.appendChild(statusGroup);

    var assignForm = el("form", { "class": "inline-form", "data-testid": "assign-form" });
    var assignId = "assignee-" + t.number;
    assignForm.appendChild(el("label", { "for": assignId }, "Assignee"));
    var input = el("input", { id: assignId, type: "text", maxlength: "128", autocomplete: "off", "data-testid": "assignee" });
    input.value = t.assignee || "";
    assignForm.appendChild(input);
    assignForm.appendChild(el("button", { type: "submit", "data-testid": "assign" }, "Assign"));
    if (t.assignee) {
      var unassign = el("button", { type: "button", "class": "quiet", "data-testid": "unassign" }, "Unassign");
      unassign.addEventListener("click", function () { assign(null); });
      assignForm.appendChild(unassign);
    }
    assignForm.addEventListener("submit", function (event) {
      event.preventDefault();
      var name = input.value.trim();
      if (!name) { showError(error, "Type a name to assign the ticket to, or use Unassign."); input.focus(); return; }
      assign(name);
    });
    function assign(name) {
      disableWhile(block, staff.api("/api/staff/tickets/" + encodeURIComponent(t.number) + "/assign",
        { method: "POST", body: { assignee: name } })
        .then(function () { return afterChange(t.number, name ? "Assigned to " + name + "." : "Unassigned."); }, failed(error)));
    }
    block.appendChild(assignForm);
    block.appendChild(error);
    return block;
  }

  // Buttons stay disabled while a change is in flight, so a double click sends one change.
  function disableWhile(block, promise) {
    var controls = block.querySelectorAll("button, input");
    Array.prototype.forEach.call(controls, function (c) { c.disabled = true; });
    return promise.finally(function () {
      Array.prototype.forEach.call(controls, function (c) { c.disabled = false; });
    });
  }

  function afterChange(number, message) {
    return Promise.all([loadTicket(number, false), loadQueue()]).then(function () {
      queueStatus.textContent = message + " " + queueStatus.textContent;
      var heading = ticketBody.querySelector('[data-testid="ticket-actions"] h3');
      if (heading) { heading.setAttribute("tabindex", "-1"); heading.focus(); }
    });
  }

  function booking(b) {
    var block = section("Call", "ticket-booking");
    if (!b) {
      block.appendChild(el("p", { "class": "muted" }, "No call booked."));
      return block;
    }
    var p = el("p");
    p.appendChild(document.createTextNode(b.label + " · " + humanize(b.status)));
    if (b.meet_url && /^https:\/\//.test(b.meet_url)) {
      p.appendChild(document.createTextNode(" · "));
      p.appendChild(el("a", { href: b.meet_url, rel: "noopener noreferrer", target: "_blank" }, "Join the call"));
    }
    block.appendChild(p);
    return block;
  }

  function transcript(turns) {
    var block = section("Transcript", "ticket-transcript");
    if (!turns.length) {
      block.appendChild(el("p", { "class": "muted" }, "No transcript."));
      return block;
    }
    var list = el("ol", { "class": "transcript" });
    turns.forEach(function (turn) {
      var speaker = turn.speaker === "customer" ? "customer" : "assistant";
      var item = el("li", { "class": "turn turn-" + speaker, "data-testid": "transcript-turn", "data-speaker": speaker });
      var meta = el("p", { "class": "turn-meta" });
      meta.appendChild(el("strong", {}, speaker === "customer" ? "Customer" : "Assistant"));
      if (turn.at) { meta.appendChild(el("time", { datetime: turn.at }, " · " + localTime(turn.at))); }
      item.appendChild(meta);
      var text = el("p", { "class": "turn-text", "data-testid": "transcript-text" });
      if (speaker === "assistant") {
        MakanaRichText.append(text, turn.text, function (host) { return linkHosts[host] === true; });
      } else {
        text.textContent = turn.text || "";  // what the customer typed: as typed
      }
      item.appendChild(text);
      list.appendChild(item);
    });
    block.appendChild(list);
    return block;
  }

  function notes(t) {
    var block = section("Internal notes", "ticket-notes");
    var list = el("ul", { "class": "notes", "data-testid": "notes" });
    (t.notes || []).forEach(function (n) {
      var item = el("li", { "data-testid": "note" });
      item.appendChild(el("p", { "class": "turn-meta" }, n.author + " · " + localTime(n.created_at)));
      item.appendChild(el("p", { "class": "long-text" }, n.text));
      list.appendChild(item);
    });
    if (!(t.notes || []).length) { list.appendChild(el("li", { "class": "muted" }, "No notes yet.")); }
    block.appendChild(list);

    var form = el("form", { "class": "note-form" });
    var id = "note-" + t.number;
    form.appendChild(el("label", { "for": id }, "Add a note (only the team sees it)"));
    var text = el("textarea", { id: id, rows: "3", maxlength: "5000", "data-testid": "note-text" });
    form.appendChild(text);
    var error = el("p", { "class": "error", role: "alert", hidden: true });
    form.appendChild(error);
    form.appendChild(el("button", { type: "submit", "data-testid": "add-note" }, "Add note"));
    form.addEventListener("submit", function (event) {
      event.preventDefault();
      if (!text.value.trim()) { showError(error, "Write the note first."); text.focus(); return; }
      disableWhile(form, staff.api("/api/staff/tickets/" + encodeURIComponent(t.number) + "/notes",
        { method: "POST", body: { text: text.value } })
        .then(function () { return afterChange(t.number, "Note added."); }, failed(error)));
    });
    block.appendChild(form);
    return block;
  }

  // ---------------------------------------------------------------- wiring

  filters.addEventListener("change", function () { loadQueue(); });
  filters.addEventListener("submit", function (event) { event.preventDefault(); loadQueue(); });
  document.getElementById("refresh").addEventListener("click", function () { loadQueue(); });
  document.getElementById("export").addEventListener("click", function () {
    staff.download("/api/staff/tickets.csv?" + queryString(), "tickets.csv").catch(failed(queueError));
  });
  document.getElementById("close-ticket").addEventListener("click", function (event) {
    event.preventDefault();
    var number = current && current.number;
    history.pushState(null, "", location.pathname + location.search);
    openFromHash(false);
    var link = number && rows.querySelector('a[data-number="' + number + '"]');
    if (link) { link.focus(); }
  });
  window.addEventListener("hashchange", function () { openFromHash(true); });
  document.addEventListener("visibilitychange", function () { if (!document.hidden && staff.signedIn()) { loadQueue(); } });
  document.addEventListener("makana-staff-signed-out", function () {
    stopRefreshing();
    current = null;
    staff.clear(rows);
    staff.clear(ticketBody);
    queueStatus.textContent = "";
  });

  function start() {
    loadLinkHosts();
    staff.start(function () {
      loadQueue().then(function () { return openFromHash(false); });
      startRefreshing();
    });
  }

  if (document.readyState === "loading") { document.addEventListener("DOMContentLoaded", start); } else { start(); }
})();
