// The example editor: message rows (insert, delete, move), auto-growing boxes, Ctrl+Enter to save,
// and problems from the live check highlighted on their message row. No inline scripts (CSP).
(function () {
  "use strict";

  function form() { return document.getElementById("editor-form"); }

  function grow(textarea) {
    textarea.style.height = "auto";
    textarea.style.height = textarea.scrollHeight + 2 + "px";
  }

  function renumber() {
    var f = form();
    if (!f) return;
    f.querySelectorAll(".message-row").forEach(function (row, i) {
      row.id = "msg-" + i;
      var label = row.querySelector(".msg-index");
      if (label) label.textContent = "#" + (i + 1);
      var role = row.querySelector("select[name=msg_role]");
      if (role) row.dataset.role = role.value;
    });
  }

  function init() {
    var f = form();
    if (!f) return;
    f.querySelectorAll("textarea.autogrow").forEach(grow);
    renumber();
  }

  // Row operations change the form without an input event; announce one so the live check reruns.
  function changed() {
    renumber();
    var f = form();
    if (f) f.dispatchEvent(new Event("input", { bubbles: true }));
  }

  function newRow(role) {
    var template = document.getElementById("message-row-template");
    var row = template.content.firstElementChild.cloneNode(true);
    if (role) row.querySelector("select[name=msg_role]").value = role;
    return row;
  }

  function nextRole(row) {
    var role = row && row.querySelector("select[name=msg_role]").value;
    return role === "user" ? "assistant" : "user";
  }

  document.addEventListener("click", function (event) {
    var button = event.target.closest("#editor [data-action]");
    if (!button) return;
    var action = button.dataset.action;
    var row = button.closest(".message-row");
    var list = form().querySelector(".messages");
    if (action === "append") {
      var rows = list.querySelectorAll(".message-row");
      var fresh = newRow(nextRole(rows[rows.length - 1]));
      list.appendChild(fresh);
      fresh.querySelector("textarea").focus();
    } else if (action === "insert") {
      var inserted = newRow(nextRole(row));
      row.after(inserted);
      inserted.querySelector("textarea").focus();
    } else if (action === "delete") {
      row.remove();
    } else if (action === "up" && row.previousElementSibling) {
      row.previousElementSibling.before(row);
    } else if (action === "down" && row.nextElementSibling) {
      row.nextElementSibling.after(row);
    } else {
      return;
    }
    event.preventDefault();
    changed();
  });

  document.addEventListener("input", function (event) {
    if (event.target.matches && event.target.matches("#editor textarea.autogrow")) grow(event.target);
  });

  document.addEventListener("change", function (event) {
    if (event.target.matches && event.target.matches("#editor select[name=msg_role]")) renumber();
  });

  document.addEventListener("keydown", function (event) {
    if (event.key === "Enter" && (event.ctrlKey || event.metaKey) && event.target.closest("#editor-form")) {
      event.preventDefault();
      form().requestSubmit();
    }
  });

  function highlight() {
    var f = form();
    if (!f) return;
    var rows = f.querySelectorAll(".message-row");
    rows.forEach(function (row) { row.classList.remove("has-error", "has-warning"); });
    document.querySelectorAll("#problems [data-message-index]").forEach(function (item) {
      var index = item.dataset.messageIndex;
      if (index === "" || !rows[index]) return;
      rows[index].classList.add(item.classList.contains("error") ? "has-error" : "has-warning");
    });
  }

  // Clicking a problem brings its message row into view.
  document.addEventListener("click", function (event) {
    var item = event.target.closest("#problems [data-message-index]");
    if (!item || item.dataset.messageIndex === "") return;
    var row = document.getElementById("msg-" + item.dataset.messageIndex);
    if (row) {
      row.scrollIntoView({ block: "center" });
      var box = row.querySelector("textarea");
      if (box) box.focus();
    }
  });

  document.addEventListener("htmx:afterSwap", function (event) {
    if (event.target.id === "problems") highlight();
    else if (event.target.id === "editor" || event.target.closest && event.target.closest("#editor")) init();
  });
  document.addEventListener("htmx:afterSettle", function () { init(); highlight(); });
  document.addEventListener("DOMContentLoaded", init);
})();
