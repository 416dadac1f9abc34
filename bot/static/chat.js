// Plain chat page: sends each message to the web service's /api/chat and shows the
// replies. Everything is inserted with textContent, never as HTML.
(function () {
  "use strict";
  var log = document.getElementById("log");
  var form = document.getElementById("form");
  var input = document.getElementById("text");
  var key = "makana-chat-sender";
  var sender = sessionStorage.getItem(key);
  if (!sender) {
    sender = "web-" + Math.random().toString(36).slice(2) + Date.now().toString(36);
    sessionStorage.setItem(key, sender);
  }

  function add(kind, text) {
    var item = document.createElement("li");
    item.className = kind;
    item.textContent = text;
    log.appendChild(item);
    log.scrollTop = log.scrollHeight;
    return item;
  }

  function send(text, shown) {
    add("user", shown || text);
    return fetch("/api/chat", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ sender: sender, message: text })
    }).then(function (response) {
      return response.json().then(function (body) {
        if (!response.ok) { throw new Error(body.error ? body.error.message : "HTTP " + response.status); }
        body.messages.forEach(function (message) {
          var item = add("bot", message.text || "");
          (message.buttons || []).forEach(function (button) {
            var b = document.createElement("button");
            b.type = "button";
            b.textContent = button.title;
            b.addEventListener("click", function () { send(button.payload, button.title); });
            item.appendChild(document.createElement("br"));
            item.appendChild(b);
          });
        });
      });
    }).catch(function (error) { add("error", "Sorry, the assistant is not reachable: " + error.message); });
  }

  form.addEventListener("submit", function (event) {
    event.preventDefault();
    var text = input.value.trim();
    if (!text) { return; }
    input.value = "";
    send(text);
  });
})();
