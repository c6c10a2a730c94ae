// Tuneboard's own script. No inline scripts anywhere (the Content-Security-Policy forbids them):
// behaviour hangs off data- attributes and htmx events here.
(function () {
  "use strict";

  function csrfToken() {
    var meta = document.querySelector('meta[name="csrf-token"]');
    return meta ? meta.content : "";
  }
  window.tbCsrfToken = csrfToken;

  // fetch() with the CSRF header, for the few places that stream without htmx (playground).
  window.tbFetch = function (url, options) {
    options = options || {};
    options.headers = Object.assign({ "X-CSRF-Token": csrfToken() }, options.headers || {});
    options.credentials = "same-origin";
    return fetch(url, options);
  };

  document.addEventListener("htmx:configRequest", function (event) {
    event.detail.headers["X-CSRF-Token"] = csrfToken();
  });

  document.addEventListener("DOMContentLoaded", function () {
    if (window.htmx) {
      // Swap 4xx fragments too: the server sends friendly messages (retargeted to #flash) for refusals.
      htmx.config.responseHandling = [
        { code: "204", swap: false },
        { code: "[23]..", swap: true },
        { code: "[4]..", swap: true, error: false },
        { code: "...", swap: true, error: true },
      ];
    }
  });

  document.addEventListener("click", function (event) {
    var target = event.target.closest("[data-dismiss='flash']");
    if (target) {
      var flash = target.closest(".flash");
      if (flash) flash.remove();
    }
  });

  // Copy buttons: data-copy names the element whose text goes to the clipboard (the new API key).
  function copyText(text) {
    if (navigator.clipboard && window.isSecureContext) return navigator.clipboard.writeText(text);
    // Plain-http installs have no async clipboard: copy through a hidden textarea instead.
    var area = document.createElement("textarea");
    area.value = text;
    area.setAttribute("readonly", "");
    area.style.position = "fixed";
    area.style.opacity = "0";
    document.body.appendChild(area);
    area.select();
    var ok = document.execCommand("copy");
    area.remove();
    return ok ? Promise.resolve() : Promise.reject(new Error("copy refused"));
  }

  document.addEventListener("click", function (event) {
    var button = event.target.closest("[data-copy]");
    if (!button) return;
    var source = document.querySelector(button.getAttribute("data-copy"));
    if (!source) return;
    copyText(source.textContent.trim()).then(
      function () { button.textContent = "Copied"; },
      function () { button.textContent = "Select and copy by hand"; }
    );
  });
})();
