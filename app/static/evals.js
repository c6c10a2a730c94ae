// Eval pages: grader fieldsets added and removed, two runs ticked for compare/review (kept across live refreshes),
// keyboard votes in the blind review (1 left, 2 tie, 3 right). Confirmations are app.js's dialog.
(function () {
  "use strict";

  // "Add a grader": the next free index goes with the request (the server renders the fieldset's field names).
  document.addEventListener("htmx:configRequest", function (event) {
    if (!event.detail.elt.hasAttribute("data-next-grader")) return;
    var next = 0;
    document.querySelectorAll("fieldset.grader[data-grader-index]").forEach(function (fs) {
      next = Math.max(next, parseInt(fs.getAttribute("data-grader-index"), 10) + 1);
    });
    event.detail.parameters.index = String(next);
  });

  document.addEventListener("click", function (event) {
    var remove = event.target.closest("[data-remove-grader]");
    if (!remove) return;
    var fieldset = remove.closest("fieldset.grader");
    var graders = document.getElementById("graders");
    if (fieldset) fieldset.remove();
    if (graders && window.htmx) htmx.trigger(graders, "grader-removed");
  });

  // The live check names the fields it refuses: outline them in the form.
  document.addEventListener("htmx:afterSwap", function () {
    if (!document.getElementById("grader-check")) return;
    document.querySelectorAll("#graders .has-error").forEach(function (el) { el.classList.remove("has-error"); });
    document.querySelectorAll("#grader-check [data-field]").forEach(function (li) {
      var field = document.querySelector('#graders [name="' + li.getAttribute("data-field") + '"]');
      if (field) field.classList.add("has-error");
    });
  });

  // Two runs: ticking a third unticks the oldest tick; the buttons work only with exactly two.
  var ticked = [];
  function syncPicks() {
    var boxes = Array.prototype.slice.call(document.querySelectorAll("input[data-run-pick]"));
    ticked = ticked.filter(function (id) {
      return boxes.some(function (b) { return b.value === id && b.checked; });
    });
    boxes.forEach(function (b) { if (b.checked && ticked.indexOf(b.value) < 0) ticked.push(b.value); });
    document.querySelectorAll("[data-needs-two]").forEach(function (button) { button.disabled = ticked.length !== 2; });
    var hint = document.getElementById("pick-hint");
    if (hint) hint.textContent = ticked.length === 2 ? "Two runs ticked:" : "Tick two runs:";
  }
  document.addEventListener("change", function (event) {
    var box = event.target.closest("input[data-run-pick]");
    if (!box) return;
    if (box.checked) {
      ticked.push(box.value);
      if (ticked.length > 2) {
        var drop = ticked.shift();
        document.querySelectorAll("input[data-run-pick]").forEach(function (b) { if (b.value === drop) b.checked = false; });
      }
    }
    syncPicks();
  });
  document.addEventListener("htmx:afterSwap", function () {
    // The runs table refreshed itself: tick again what was ticked.
    document.querySelectorAll("input[data-run-pick]").forEach(function (b) { b.checked = ticked.indexOf(b.value) >= 0; });
    syncPicks();
  });
  document.addEventListener("DOMContentLoaded", syncPicks);

  // Blind review: 1, 2, 3 press Left, Tie, Right (not while typing somewhere).
  document.addEventListener("keydown", function (event) {
    if (event.ctrlKey || event.metaKey || event.altKey) return;
    if (event.target.closest("input, textarea, select, [contenteditable]")) return;
    var button = document.querySelector('[data-vote-key="' + event.key + '"]');
    if (button && !button.disabled) {
      event.preventDefault();
      button.click();
    }
  });
})();
