/*
 * The staff pages' sign-in and API access, shared by the console and the report.
 *
 * The staff token is kept in sessionStorage (this tab only, gone when it closes) and
 * sent as a bearer token. Any 401 signs the tab out and shows the sign-in form with the
 * server's message. Everything the API returns is inserted as text (textContent), never
 * parsed as HTML.
 *
 * A page calls MakanaStaff.start(onSignedIn); onSignedIn runs once a token is known
 * (at load, or after the sign-in form is submitted).
 */
(function () {
  "use strict";

  var KEY = "makana-staff-token";
  var TIMEOUT_MS = 20 * 1000;
  var memory = "";  // when sessionStorage is unavailable, remember for this page only
  var signedIn = null;

  function token() {
    try { return window.sessionStorage.getItem(KEY) || ""; } catch (e) { return memory; }
  }

  function setToken(value) {
    try {
      if (value) { window.sessionStorage.setItem(KEY, value); } else { window.sessionStorage.removeItem(KEY); }
    } catch (e) { memory = value; }
  }

  function el(tag, attrs, text) {
    var node = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (name) {
      var value = attrs[name];
      if (value === true) { node.setAttribute(name, ""); }
      else if (value !== false && value !== null && value !== undefined) { node.setAttribute(name, String(value)); }
    });
    if (text !== undefined && text !== null) { node.textContent = String(text); }
    return node;
  }

  function clear(node) {
    while (node.firstChild) { node.removeChild(node.firstChild); }
  }

  function byId(id) { return document.getElementById(id); }

  // A 401 anywhere: back to the sign-in form, saying why.
  function signOut(message) {
    setToken("");
    byId("app").hidden = true;
    byId("sign-out").hidden = true;
    byId("sign-in").hidden = false;
    var error = byId("sign-in-error");
    error.textContent = message || "";
    error.hidden = !message;
    var field = byId("token");
    field.value = "";
    field.focus();
    document.dispatchEvent(new CustomEvent("makana-staff-signed-out"));
  }

  function showApp() {
    byId("sign-in").hidden = true;
    byId("app").hidden = false;
    byId("sign-out").hidden = false;
    if (signedIn) { signedIn(); }
  }

  function AuthError(message) { this.name = "AuthError"; this.message = message; }
  AuthError.prototype = Object.create(Error.prototype);

  function ApiFailure(status, code, message) {
    this.name = "ApiFailure";
    this.status = status;
    this.code = code;
    this.message = message;
  }
  ApiFailure.prototype = Object.create(Error.prototype);

  // fetch with the bearer token and a timeout (options.timeout ms, default TIMEOUT_MS). Resolves to the parsed JSON (or the Response
  // itself with raw: true); rejects with ApiFailure (an error answer, or none) or AuthError.
  function api(path, options) {
    options = options || {};
    var controller = new AbortController();
    var timer = setTimeout(function () { controller.abort(); }, options.timeout || TIMEOUT_MS);
    var headers = { "Authorization": "Bearer " + token() };
    var init = { method: options.method || "GET", headers: headers, cache: "no-store", credentials: "omit", signal: controller.signal };
    if (options.body !== undefined) {
      headers["Content-Type"] = "application/json";
      init.body = JSON.stringify(options.body);
    }
    return fetch(path, init).then(function (response) {
      if (response.ok && options.raw) { return response; }
      return response.text().then(function (raw) {
        var body = null;
        try { body = raw ? JSON.parse(raw) : null; } catch (e) { body = null; }
        var error = body && body.error;
        if (response.status === 401) {
          var message = (error && error.message) || "Your staff token was not accepted.";
          signOut("Signed out: " + message);
          throw new AuthError(message);
        }
        if (!response.ok) {
          throw new ApiFailure(response.status, error && error.code,
            (error && error.message) || "The server answered " + response.status + ".");
        }
        return body;
      });
    }, function () {
      throw new ApiFailure(0, "unreachable", "The support service could not be reached; try again in a moment.");
    }).finally(function () { clearTimeout(timer); });
  }

  // Offer a response (fetched with the bearer header) as a file download.
  function download(path, filename) {
    return api(path, { raw: true }).then(function (response) { return response.blob(); }).then(function (blob) {
      var url = URL.createObjectURL(blob);
      var link = el("a", { href: url, download: filename, hidden: true });
      document.body.appendChild(link);
      link.click();
      document.body.removeChild(link);
      setTimeout(function () { URL.revokeObjectURL(url); }, 10 * 1000);
    });
  }

  function start(onSignedIn) {
    signedIn = onSignedIn;
    byId("sign-in-form").addEventListener("submit", function (event) {
      event.preventDefault();
      var value = byId("token").value.trim();
      if (!value) {
        byId("sign-in-error").textContent = "Enter your staff token.";
        byId("sign-in-error").hidden = false;
        byId("token").focus();
        return;
      }
      setToken(value);
      byId("token").value = "";
      byId("sign-in-error").hidden = true;
      showApp();
    });
    byId("sign-out").addEventListener("click", function () { signOut(""); });
    if (token()) { showApp(); } else { signOut(""); }
  }

  window.MakanaStaff = {
    start: start,
    api: api,
    download: download,
    el: el,
    clear: clear,
    signedIn: function () { return !!token(); },
    AuthError: AuthError
  };
})();
