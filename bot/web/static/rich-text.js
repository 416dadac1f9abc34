/*
 * Makana rich text: the little Markdown the assistant writes, made into DOM nodes.
 *
 * **bold** becomes <strong>, [label](https://…) and bare http(s) addresses become links,
 * and everything else stays text (text nodes: nothing is ever parsed as HTML). Line
 * breaks are kept as they are; the page shows them with `white-space: pre-wrap`.
 *
 * One module for the customer's widget and the staff console, so that a transcript reads
 * exactly as the customer saw it: the web service bundles it into /widget.js (inside
 * the widget's own scope), and the staff pages load it as /static/rich-text.js.
 *
 *   MakanaRichText.append(parent, text, isLinkable)
 *
 * isLinkable(host) says which hosts may be clickable (the service's own and those the
 * policy publishes): a link the customer typed, repeated by the assistant, stays text.
 */
var MakanaRichText = (function () {
  "use strict";

  var RICH_RE = /\[([^\]\n]+)\]\((https?:\/\/[^\s)]+)\)|\*\*([^*\n]+)\*\*|(https?:\/\/[^\s<>"]+)/g;

  function link(href, label, isLinkable) {
    var host = "";
    try { host = new URL(href).host; } catch (e) { host = ""; }
    if (!host || !isLinkable(host)) {
      return document.createTextNode(label === href ? href : label + " (" + href + ")");
    }
    var a = document.createElement("a");
    a.setAttribute("href", href);
    a.setAttribute("rel", "noopener noreferrer");
    a.setAttribute("target", "_blank");
    a.textContent = label;
    return a;
  }

  function append(parent, text, isLinkable) {
    text = String(text === null || text === undefined ? "" : text);
    isLinkable = isLinkable || function () { return false; };
    var re = new RegExp(RICH_RE.source, "g");
    var last = 0;
    var match;
    while ((match = re.exec(text)) !== null) {
      var start = match.index;
      var token = match[0];
      if (match[4]) {
        // A bare URL does not take the sentence's closing punctuation with it.
        var trimmed = token.replace(/[.,;:!?'")\]]+$/, "");
        re.lastIndex = start + trimmed.length;
        token = trimmed;
      }
      if (start > last) { parent.appendChild(document.createTextNode(text.slice(last, start))); }
      if (match[1]) {
        parent.appendChild(link(match[2], match[1], isLinkable));
      } else if (match[3]) {
        var strong = document.createElement("strong");
        strong.textContent = match[3];
        parent.appendChild(strong);
      } else {
        parent.appendChild(link(token, token, isLinkable));
      }
      last = start + token.length;
    }
    if (last < text.length) { parent.appendChild(document.createTextNode(text.slice(last))); }
    return parent;
  }

  return { append: append };
})();
