// Job pages: keeping the live event log scrolled to the newest line, and showing the job form's refusals
// (confirmations are app.js's dialog).
(function () {
  "use strict";

  // Follow the log while the reader is at its bottom; leave it alone once they scroll up to read.
  document.addEventListener("htmx:sseBeforeMessage", function (event) {
    var log = event.target;
    if (log.id !== "event-log") return;
    log.dataset.stick = (log.scrollHeight - log.scrollTop - log.clientHeight < 40) ? "1" : "";
  });
  document.addEventListener("htmx:sseMessage", function (event) {
    var log = event.target;
    if (log.id === "event-log" && log.dataset.stick) log.scrollTop = log.scrollHeight;
  });
  // The job form: a refused launch's message lands in the flash area above the form; bring it into view, since
  // the person pressed Launch at the bottom of a long form.
  document.addEventListener("htmx:afterSwap", function (event) {
    var target = event.detail && event.detail.target;
    if (target && target.id === "flash" && document.getElementById("new-job") && target.firstElementChild) {
      target.scrollIntoView({ block: "start" });
    }
  });

  // The job form's base model is refreshed out of band with every estimate (a provider change brings that provider's
  // model), but never while the person is in the field: a refresh sent before their keystrokes would replace them
  // (or a half-typed name would be doubled).
  document.addEventListener("htmx:oobBeforeSwap", function (event) {
    var target = event.detail && event.detail.target;
    if (target && target.id === "job-model" && target.contains(document.activeElement)) event.detail.shouldSwap = false;
  });

  function scrollLogToEnd() {
    var log = document.getElementById("event-log");
    if (log && !log.dataset.scrolled) { log.dataset.scrolled = "1"; log.scrollTop = log.scrollHeight; }
  }
  document.addEventListener("DOMContentLoaded", scrollLogToEnd);
  document.addEventListener("htmx:load", scrollLogToEnd);  // a job swapped into the jobs page's detail pane
})();
