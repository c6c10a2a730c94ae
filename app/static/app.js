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

  // Flash: the server says what a destructive action did in a short-lived cookie (app/web/rendering.py flash),
  // shown here after a redirect, a whole page or an htmx fragment, and cleared so it is said once.
  var FLASH_COOKIE = "tb_flash";

  function takeFlash() {
    var found = document.cookie.split("; ").filter(function (c) { return c.indexOf(FLASH_COOKIE + "=") === 0; })[0];
    if (!found) return null;
    document.cookie = FLASH_COOKIE + "=; Max-Age=0; Path=/; SameSite=Strict";
    try {
      return decodeURIComponent(found.slice(FLASH_COOKIE.length + 1));
    } catch (e) {
      return null;
    }
  }

  function showFlash(message) {
    var area = document.getElementById("flash");
    if (!area || !message) return;
    var box = document.createElement("div");
    box.className = "flash flash-info";
    box.setAttribute("role", "status");
    var text = document.createElement("span");
    text.textContent = message;
    var close = document.createElement("button");
    close.type = "button";
    close.className = "flash-close";
    close.setAttribute("aria-label", "Dismiss");
    close.setAttribute("data-dismiss", "flash");
    close.textContent = "×";
    box.append(text, close);
    area.replaceChildren(box);
  }

  document.addEventListener("DOMContentLoaded", function () { showFlash(takeFlash()); });
  document.addEventListener("htmx:afterRequest", function (event) {
    var xhr = event.detail.xhr;
    // An HX-Redirect response leaves its message to the page it leads to.
    if (xhr && xhr.getResponseHeader("HX-Redirect")) return;
    showFlash(takeFlash());
  });

  // The page's own confirmation, instead of the browser's confirm(): for htmx requests (hx-confirm) and plain
  // forms (data-confirm). The question's first sentence is the title, the rest says what will happen;
  // data-confirm-title and data-confirm-detail on the element override them.
  var dialog = null;

  function buildDialog() {
    dialog = document.createElement("dialog");
    dialog.className = "confirm-dialog";
    dialog.id = "confirm-dialog";
    dialog.setAttribute("aria-labelledby", "confirm-title");
    dialog.setAttribute("aria-describedby", "confirm-detail");
    var form = document.createElement("form");
    form.method = "dialog";
    var title = document.createElement("h2");
    title.id = "confirm-title";
    var detail = document.createElement("p");
    detail.id = "confirm-detail";
    var actions = document.createElement("div");
    actions.className = "row confirm-actions";
    var cancel = document.createElement("button");
    cancel.value = "cancel";
    cancel.className = "confirm-cancel";
    cancel.textContent = "Cancel";
    var ok = document.createElement("button");
    ok.value = "confirm";
    ok.className = "confirm-ok";
    actions.append(cancel, ok);
    form.append(title, detail, actions);
    dialog.append(form);
    document.body.append(dialog);
    return dialog;
  }

  function splitQuestion(question) {
    var at = question.search(/[?.!](\s|$)/);
    if (at < 0) return [question, ""];
    return [question.slice(0, at + 1).trim(), question.slice(at + 1).trim()];
  }

  function actionLabel(trigger) {
    var words = trigger ? (trigger.getAttribute("data-confirm-action") || trigger.textContent || "").trim() : "";
    return words.replace(/[…\.]+$/, "") || "Confirm";
  }

  // Ask `question` about what `trigger` (the clicked button or link) does; run `proceed` only on Confirm.
  function ask(question, trigger, source, proceed) {
    var box = dialog || buildDialog();
    var parts = splitQuestion(question);
    var holder = source || trigger;
    box.querySelector("#confirm-title").textContent =
      (holder && holder.getAttribute("data-confirm-title")) || parts[0];
    box.querySelector("#confirm-detail").textContent =
      (holder && holder.getAttribute("data-confirm-detail")) || parts[1];
    var ok = box.querySelector(".confirm-ok");
    ok.textContent = actionLabel(trigger);
    var danger = !trigger || trigger.classList.contains("danger") || trigger.classList.contains("danger-link");
    ok.className = "confirm-ok " + (danger ? "danger" : "primary");
    var opener = document.activeElement;
    box.returnValue = "";
    box.addEventListener("close", function done() {
      box.removeEventListener("close", done);
      var confirmed = box.returnValue === "confirm";
      if (opener && opener.focus && document.contains(opener)) opener.focus();
      if (confirmed) proceed();
    });
    box.showModal();
    box.querySelector(".confirm-cancel").focus();  // the safe choice has the focus: Enter keeps the thing
  }

  document.addEventListener("htmx:confirm", function (event) {
    var question = event.detail.question;
    if (!question) return;
    event.preventDefault();
    var elt = event.detail.elt;
    var trigger = event.detail.triggeringEvent && event.detail.triggeringEvent.submitter;
    if (!trigger) trigger = elt.matches("form") ? elt.querySelector("[type=submit], button:not([type])") : elt;
    ask(question, trigger, elt.closest("[hx-confirm]"), function () { event.detail.issueRequest(true); });
  });

  document.addEventListener("submit", function (event) {
    var form = event.target.closest("form[data-confirm]");
    if (!form) return;
    if (form.dataset.confirmed) {
      delete form.dataset.confirmed;
      return;
    }
    event.preventDefault();
    var trigger = event.submitter || form.querySelector("[type=submit], button:not([type])");
    ask(form.getAttribute("data-confirm"), trigger, form, function () {
      form.dataset.confirmed = "1";
      form.requestSubmit(trigger && trigger.form === form ? trigger : undefined);
    });
  }, true);

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
