/*
 * The report page: what the assistant handled, drawn from GET /api/staff/report?days=N.
 *
 * Charts are SVG built with the DOM (createElementNS): no chart library, nothing from
 * another origin, no inline styles (colours come from classes in staff.css). Each chart
 * has a sentence saying what it shows, which is also the SVG's accessible description.
 */
(function () {
  "use strict";

  var staff = window.MakanaStaff;
  var el = staff.el;
  var NS = "http://www.w3.org/2000/svg";
  var SEVERITY_NAMES = { critical: "Critical", high: "High", medium: "Medium", low: "Low" };
  var RATING_NAMES = { 1: "very dissatisfied", 2: "dissatisfied", 3: "neutral", 4: "satisfied", 5: "very satisfied" };

  var period = document.getElementById("period");
  var statusLine = document.getElementById("report-status");
  var errorLine = document.getElementById("report-error");

  // ---------------------------------------------------------------- SVG helpers

  function svgEl(tag, attrs, text) {
    var node = document.createElementNS(NS, tag);
    Object.keys(attrs || {}).forEach(function (name) { node.setAttribute(name, String(attrs[name])); });
    if (text !== undefined && text !== null) { node.textContent = String(text); }
    return node;
  }

  // An SVG that reads as one image named by the chart's title and described by its summary.
  function chartSvg(name, width, height) {
    return svgEl("svg", {
      viewBox: "0 0 " + width + " " + height, role: "img", focusable: "false",
      "aria-labelledby": "chart-" + name + "-title", "aria-describedby": "chart-" + name + "-summary",
      "data-testid": "svg-" + name, preserveAspectRatio: "xMidYMid meet"
    });
  }

  function place(name, svg, summary) {
    var figure = document.querySelector('[data-testid="chart-' + name + '"]');
    var area = figure.querySelector(".chart-area");
    staff.clear(area);
    area.appendChild(svg);
    document.getElementById("chart-" + name + "-summary").textContent = summary;
  }

  function rect(x, y, width, height, cls, tip) {
    var r = svgEl("rect", { x: x, y: y, width: Math.max(0, width), height: Math.max(0, height), "class": cls });
    if (tip) { r.appendChild(svgEl("title", {}, tip)); }
    return r;
  }

  // A round upper bound for an axis: 1, 2, 5, 10, 20, 50…
  function niceMax(value) {
    if (value <= 1) { return 1; }
    var power = Math.pow(10, Math.floor(Math.log10(value)));
    var steps = [1, 2, 5, 10];
    for (var i = 0; i < steps.length; i++) { if (steps[i] * power >= value) { return steps[i] * power; } }
    return 10 * power;
  }

  function plural(n, one, many) { return n + " " + (n === 1 ? one : many); }

  function percent(rate) { return rate === null || rate === undefined ? "–" : Math.round(rate * 100) + "%"; }

  function shortDate(iso) {
    var parts = String(iso).split("-").map(Number);
    var when = new Date(Date.UTC(parts[0], parts[1] - 1, parts[2]));
    return when.toLocaleDateString(undefined, { day: "numeric", month: "short", timeZone: "UTC" });
  }

  // ---------------------------------------------------------------- the charts

  function conversationsChart(days) {
    var W = 1000, H = 210, left = 40, right = 10, top = 12, bottom = 30;
    var plotW = W - left - right, plotH = H - top - bottom;
    var max = niceMax(Math.max.apply(null, days.map(function (d) { return d.conversations; }).concat([1])));
    var svg = chartSvg("conversations", W, H);
    [0, max / 2, max].forEach(function (tick) {
      var y = top + plotH - (tick / max) * plotH;
      svg.appendChild(svgEl("line", { x1: left, x2: W - right, y1: y, y2: y, "class": tick ? "grid" : "axis" }));
      if (tick === Math.round(tick)) {
        svg.appendChild(svgEl("text", { x: left - 6, y: y + 4, "text-anchor": "end", "class": "label" }, tick));
      }
    });
    var slot = plotW / Math.max(days.length, 1);
    var barW = Math.max(2, slot * 0.7);
    var every = Math.ceil(days.length / 12);
    days.forEach(function (d, i) {
      var x = left + i * slot + (slot - barW) / 2;
      var self = Math.max(0, d.conversations - d.escalated);
      var selfH = (self / max) * plotH;
      var escH = (d.escalated / max) * plotH;
      var group = svgEl("g", { "data-date": d.date });
      group.appendChild(svgEl("title", {}, shortDate(d.date) + ": " + plural(d.conversations, "conversation", "conversations") +
        ", " + d.escalated + " escalated"));
      group.appendChild(rect(x, top + plotH - selfH, barW, selfH, "bar-self-service"));
      group.appendChild(rect(x, top + plotH - selfH - escH, barW, escH, "bar-escalated"));
      svg.appendChild(group);
      if (i % every === 0 || i === days.length - 1) {
        svg.appendChild(svgEl("text", { x: left + i * slot + slot / 2, y: H - 10, "text-anchor": "middle", "class": "label" },
          shortDate(d.date)));
      }
    });
    var total = days.reduce(function (n, d) { return n + d.conversations; }, 0);
    var escalated = days.reduce(function (n, d) { return n + d.escalated; }, 0);
    var busiest = days.reduce(function (best, d) { return !best || d.conversations > best.conversations ? d : best; }, null);
    var summary = plural(total, "conversation", "conversations") + " in the last " + plural(days.length, "day", "days") +
      ", " + escalated + " of them escalated to a ticket.";
    if (busiest && busiest.conversations) {
      summary += " Busiest day: " + shortDate(busiest.date) + " with " + busiest.conversations + ".";
    }
    place("conversations", svg, summary);
  }

  function deflectionChart(totals) {
    var W = 480, H = 110, left = 10, right = 10, barY = 46, barH = 34;
    var plotW = W - left - right;
    var svg = chartSvg("deflection", W, H);
    var total = totals.self_service + totals.escalated;
    svg.appendChild(svgEl("text", { x: left, y: 30, "class": "label-strong" },
      total ? percent(totals.deflection_rate) + " solved without a person" : "No conversations in this period"));
    if (!total) {
      svg.appendChild(rect(left, barY, plotW, barH, "bar-empty"));
      place("deflection", svg, "There were no conversations in this period.");
      return;
    }
    var selfW = (totals.self_service / total) * plotW;
    svg.appendChild(rect(left, barY, selfW, barH, "bar-self-service", totals.self_service + " self-service"));
    svg.appendChild(rect(left + selfW, barY, plotW - selfW, barH, "bar-escalated", totals.escalated + " escalated"));
    if (selfW > 40) {
      svg.appendChild(svgEl("text", { x: left + 8, y: barY + 22, "class": "value-inside" }, totals.self_service));
    }
    if (plotW - selfW > 40) {
      svg.appendChild(svgEl("text", { x: W - right - 8, y: barY + 22, "text-anchor": "end", "class": "value-inside" }, totals.escalated));
    }
    place("deflection", svg, percent(totals.deflection_rate) + " of conversations (" + totals.self_service + " of " + total +
      ") were solved without a person; " + totals.escalated + (totals.escalated === 1 ? " was" : " were") +
      " escalated to a ticket.");
  }

  // Horizontal bars: rows of [label, [[value, class, name], …]] stacked, scaled to the largest row.
  function horizontalBars(name, rows, labelW) {
    var W = 480, rowH = 34, top = 6, right = 90;
    var H = top * 2 + rows.length * rowH;
    var plotW = W - labelW - right;
    var max = Math.max.apply(null, rows.map(function (r) {
      return r[1].reduce(function (n, part) { return n + part[0]; }, 0);
    }).concat([1]));
    var svg = chartSvg(name, W, H);
    rows.forEach(function (row, i) {
      var y = top + i * rowH;
      svg.appendChild(svgEl("text", { x: labelW - 8, y: y + 21, "text-anchor": "end", "class": "label-strong" }, row[0]));
      svg.appendChild(rect(labelW, y + 6, plotW, rowH - 12, "bar-empty"));
      var x = labelW;
      row[1].forEach(function (part) {
        var w = (part[0] / max) * plotW;
        svg.appendChild(rect(x, y + 6, w, rowH - 12, part[1], row[0] + ": " + part[0] + " " + part[2]));
        x += w;
      });
      svg.appendChild(svgEl("text", { x: labelW + plotW + 8, y: y + 21, "class": "value" },
        row[1].map(function (part) { return part[0]; }).join(" / ")));
    });
    return svg;
  }

  function faqChart(totals) {
    var svg = horizontalBars("faq", [
      ["Answered", [[totals.faq_answered, "bar-answered", "answered"]]],
      ["Suggested", [[totals.faq_suggested, "bar-suggested", "suggested"]]],
      ["Missed", [[totals.faq_missed, "bar-missed", "missed"]]]
    ], 90);
    place("faq", svg, "The FAQ answered " + plural(totals.faq_answered, "question", "questions") + ", offered suggestions for " +
      totals.faq_suggested + " and had no answer for " + totals.faq_missed + ".");
  }

  function slaChart(sla) {
    var svg = horizontalBars("sla", sla.map(function (s) {
      return [SEVERITY_NAMES[s.severity] || s.severity, [
        [s.met, "bar-met", "met"], [s.missed, "bar-missed", "missed"], [s.pending, "bar-pending", "still running"]
      ]];
    }), 80);
    var parts = sla.map(function (s) {
      return (SEVERITY_NAMES[s.severity] || s.severity) + ": " + s.met + " met, " + s.missed + " missed, " + s.pending + " still running";
    });
    place("sla", svg, "First responses against the deadline (met / missed / still running). " + parts.join("; ") + ".");
  }

  function triageChart(rows) {
    var svg = horizontalBars("triage", rows.map(function (s) {
      return [SEVERITY_NAMES[s.severity] || s.severity, [
        [s.kept, "bar-met", "kept"], [s.changed_by_customer, "bar-pending", "changed by the customer"],
        [s.changed_by_staff, "bar-missed", "changed by staff"]
      ]];
    }), 80);
    var parts = rows.map(function (s) {
      return "proposed " + (SEVERITY_NAMES[s.severity] || s.severity) + " " + plural(s.proposed, "time", "times") + ": " +
        s.kept + " kept, " + s.changed_by_customer + " changed by the customer, " + s.changed_by_staff + " changed by staff";
    });
    place("triage", svg, "How the assistant's proposed severity fared (kept / changed by the customer / changed by staff). " +
      parts.join("; ") + ".");
  }

  function csatChart(csat) {
    var W = 480, H = 200, left = 20, right = 20, top = 22, bottom = 40;
    var plotW = W - left - right, plotH = H - top - bottom;
    var counts = [1, 2, 3, 4, 5].map(function (r) { return Number(csat.ratings[String(r)] || 0); });
    var max = Math.max.apply(null, counts.concat([1]));
    var svg = chartSvg("csat", W, H);
    svg.appendChild(svgEl("line", { x1: left, x2: W - right, y1: top + plotH, y2: top + plotH, "class": "axis" }));
    var slot = plotW / 5;
    counts.forEach(function (n, i) {
      var h = (n / max) * plotH;
      var x = left + i * slot + slot * 0.2;
      svg.appendChild(rect(x, top + plotH - h, slot * 0.6, h, "bar-rating", (i + 1) + " (" + RATING_NAMES[i + 1] + "): " + n));
      svg.appendChild(svgEl("text", { x: x + slot * 0.3, y: top + plotH - h - 6, "text-anchor": "middle", "class": "value" }, n));
      svg.appendChild(svgEl("text", { x: x + slot * 0.3, y: H - 22, "text-anchor": "middle", "class": "label-strong" }, i + 1));
      svg.appendChild(svgEl("text", { x: x + slot * 0.3, y: H - 6, "text-anchor": "middle", "class": "label" }, RATING_NAMES[i + 1]));
    });
    var summary = csat.count
      ? "Average " + csat.average + " out of 5 from " + plural(csat.count, "rating", "ratings") + ". " +
        counts.map(function (n, i) { return (i + 1) + ": " + n; }).join(", ") + "."
      : "No ratings yet in this period.";
    place("csat", svg, summary);
  }

  function duration(seconds) {
    if (seconds === null || seconds === undefined) { return "–"; }
    if (seconds < 90) { return Math.round(seconds) + " s"; }
    if (seconds < 5400) { return Math.round(seconds / 60) + " min"; }
    return (seconds / 3600).toFixed(1) + " h";
  }

  // Live chats: per day, the wait for an agent, the agent's first reply, and that reply
  // against the policy's first-response time (bot/live.py live_report).
  function liveSection(live) {
    var summary = document.querySelector('[data-testid="summary-live"]');
    var table = document.querySelector('[data-testid="live-days"]');
    var body = table.querySelector("tbody");
    staff.clear(body);
    if (!live || !live.requested) {
      summary.textContent = "No live chats in this period.";
      table.hidden = true;
      return;
    }
    var policy = live.first_reply_within_policy;
    summary.textContent = plural(live.requested, "live chat", "live chats") + " requested, " +
      live.claimed + " taken by an agent" + (live.unclaimed ? ", " + live.unclaimed + " never taken (offered a ticket)" : "") + ". " +
      "Wait for an agent: median " + duration(live.wait.median_s) + ", 90th percentile " + duration(live.wait.p90_s) + ". " +
      "Agent's first reply after taking the chat: median " + duration(live.first_reply.median_s) + ", 90th percentile " +
      duration(live.first_reply.p90_s) + ". Within the policy's first-response time: " + policy.met + " of " +
      (policy.met + policy.missed) + ". " +
      "Length of a chat with an agent: median " + duration(live.duration.median_s) + ", 90th percentile " +
      duration(live.duration.p90_s) + ".";
    live.days.filter(function (d) { return d.requested; }).forEach(function (d) {
      var row = el("tr", {});
      row.appendChild(el("th", { scope: "row" }, shortDate(d.date)));
      row.appendChild(el("td", {}, String(d.requested)));
      row.appendChild(el("td", {}, String(d.claimed)));
      body.appendChild(row);
    });
    table.hidden = false;
  }

  function unansweredList(groups) {
    var list = document.getElementById("unanswered-list");
    staff.clear(list);
    list.hidden = !groups.length;
    document.getElementById("unanswered-none").hidden = !!groups.length;
    groups.forEach(function (g) {
      var item = el("li", { "data-testid": "unanswered-group" });
      item.appendChild(el("strong", {}, "Asked " + plural(g.count, "time", "times")));
      var examples = el("ul", { "aria-label": "Examples" });
      (g.examples || []).forEach(function (text) { examples.appendChild(el("li", {}, text)); });
      item.appendChild(examples);
      list.appendChild(item);
    });
  }

  // ---------------------------------------------------------------- loading

  function setText(testid, value) {
    document.querySelector('[data-testid="' + testid + '"]').textContent = value;
  }

  function render(report) {
    var t = report.totals;
    setText("total-conversations", t.conversations);
    setText("total-self-service", t.self_service);
    setText("total-escalated", t.escalated);
    setText("deflection-rate", percent(t.deflection_rate));
    setText("csat-average", report.csat.average === null ? "–" : report.csat.average);
    conversationsChart(report.days || []);
    deflectionChart(t);
    faqChart(t);
    slaChart(report.sla || []);
    triageChart(report.triage || []);
    csatChart(report.csat);
    liveSection(report.live);
    unansweredList(report.unanswered || []);
  }

  function load() {
    var days = period.value;
    statusLine.textContent = "Loading…";
    document.getElementById("app").setAttribute("aria-busy", "true");
    return staff.api("/api/staff/report?days=" + encodeURIComponent(days)).then(function (report) {
      errorLine.hidden = true;
      render(report);
      var range = report.from && report.to ? " (" + shortDate(report.from) + " to " + shortDate(report.to) + ")" : "";
      statusLine.textContent = "Last " + days + " days" + range + ", as of " +
        new Date().toLocaleTimeString(undefined, { timeStyle: "short" }) + ".";
    }, function (error) {
      if (error instanceof staff.AuthError) { return; }
      statusLine.textContent = "";
      errorLine.textContent = "The report could not be loaded: " + error.message;
      errorLine.hidden = false;
    }).finally(function () { document.getElementById("app").setAttribute("aria-busy", "false"); });
  }

  period.addEventListener("change", load);
  document.getElementById("period-form").addEventListener("submit", function (event) { event.preventDefault(); load(); });

  function start() { staff.start(load); }
  if (document.readyState === "loading") { document.addEventListener("DOMContentLoaded", start); } else { start(); }
})();
