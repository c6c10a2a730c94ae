// "Prefer this answer" in the playground's compare view: a button under each column's latest answer opens the
// #pg-prefer dialog (playground/_prefer_dialog.html) with that column preferred; htmx posts the pair to
// /playground/prefer and the result (with its links) shows in #pg-prefer-result. playground.js says when a turn
// has ended ("tb:playground-turn") and lends its state (window.tbPlayground).
(function () {
  "use strict";

  function $(id) { return document.getElementById(id); }

  function columnName(column) {
    var title = document.querySelector('.pg-column-title[data-column="' + column + '"]');
    return title ? title.textContent.trim() : "model " + (column + 1);
  }

  function clearButtons() {
    Array.prototype.forEach.call(document.querySelectorAll(".pg-prefer-button"), function (b) { b.remove(); });
  }

  // Under each column's answer to the last user message (a column that has one).
  function offer() {
    clearButtons();
    var dialog = $("pg-prefer"), playground = window.tbPlayground;
    if (!dialog || !playground) return;
    var messages = playground.state().messages, lastUser = -1;
    messages.forEach(function (m, i) { if (m.role === "user") lastUser = i; });
    if (lastUser < 0) return;
    var answered = {};
    messages.slice(lastUser + 1).forEach(function (m) { if (m.role === "assistant") answered[m.column || 0] = true; });
    Array.prototype.forEach.call(document.querySelectorAll(".transcript"), function (list) {
      var column = parseInt(list.getAttribute("data-column"), 10);
      var replies = list.querySelectorAll(".msg-assistant");
      if (!answered[column] || !replies.length) return;
      var button = document.createElement("button");
      button.type = "button";
      button.className = "pg-prefer-button small";
      button.setAttribute("data-column", String(column));
      button.textContent = "Prefer this answer";
      replies[replies.length - 1].appendChild(button);
      // The transcript scrolled to the answer as it began; keep its end (the button) in view, not below the fold.
      list.scrollTop = list.scrollHeight;
    });
  }

  function showNewName() {
    var label = document.querySelector(".pg-prefer-new");
    if (label) label.hidden = $("pg-prefer-dataset").value !== "new";
  }

  function open(column) {
    var playground = window.tbPlayground;
    $("pg-prefer-messages").value = JSON.stringify(playground.state().messages);
    $("pg-prefer-system").value = $("pg-system").value;
    $("pg-prefer-tools").value = $("pg-tools").value;
    $("pg-prefer-column").value = String(column);
    $("pg-prefer-name").textContent = columnName(column) + "'s answer";
    var rejected = $("pg-prefer-rejected");
    if (rejected.tagName === "SELECT") {
      Array.prototype.forEach.call(rejected.options, function (o) {
        o.disabled = o.value === String(column);
        o.textContent = columnName(parseInt(o.value, 10));
      });
      if (rejected.value === String(column)) rejected.value = String(column === 0 ? 1 : 0);
    } else {
      rejected.value = String(column === 0 ? 1 : 0);
    }
    showNewName();
    $("pg-prefer").showModal();
  }

  // A new dataset made by a save becomes the choice for the next pair.
  function remember(result) {
    var saved = result.querySelector(".saved-pair");
    var select = $("pg-prefer-dataset");
    if (!saved || !select) return;
    var id = saved.getAttribute("data-dataset-id");
    if (!select.querySelector('option[value="' + id + '"]')) {
      var option = document.createElement("option");
      option.value = id;
      option.textContent = saved.getAttribute("data-dataset-name");
      select.insertBefore(option, select.querySelector('option[value="new"]'));
    }
    select.value = id;
  }

  // Say in the columns which answer the saved pair preferred (the result line sits below the composer).
  function markPreferred(result) {
    if (!result.querySelector(".saved-pair")) return;
    var preferred = $("pg-prefer-column").value;
    Array.prototype.forEach.call(document.querySelectorAll(".pg-prefer-button"), function (b) {
      var chosen = b.getAttribute("data-column") === preferred;
      b.textContent = chosen ? "✓ Preferred" : "Prefer this answer";
      b.classList.toggle("pg-preferred", chosen);
    });
  }

  document.addEventListener("tb:playground-turn", offer);
  document.addEventListener("tb:playground-send", clearButtons);

  document.addEventListener("click", function (event) {
    var button = event.target.closest(".pg-prefer-button");
    if (button) open(parseInt(button.getAttribute("data-column"), 10));
    if (event.target.closest("#pg-prefer-cancel")) $("pg-prefer").close();
  });

  document.addEventListener("change", function (event) {
    if (event.target.id === "pg-prefer-dataset") showNewName();
  });

  // Saved or refused, the dialog closes: the result (or the refusal in #flash) shows on the page.
  document.addEventListener("htmx:afterRequest", function (event) {
    if (event.detail.elt && event.detail.elt.id === "pg-prefer-form") $("pg-prefer").close();
  });
  document.addEventListener("htmx:afterSwap", function (event) {
    if (event.detail.target && event.detail.target.id === "pg-prefer-result") {
      remember(event.detail.target);
      markPreferred(event.detail.target);
    }
  });
})();
