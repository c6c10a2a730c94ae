// Job pages: confirmation for destructive plain forms, and keeping the live event log scrolled to the newest line.
(function () {
  "use strict";

  document.addEventListener("submit", function (event) {
    var form = event.target.closest("form[data-confirm]");
    if (form && !window.confirm(form.getAttribute("data-confirm"))) {
      event.preventDefault();
    }
  }, true);

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
  function scrollLogToEnd() {
    var log = document.getElementById("event-log");
    if (log && !log.dataset.scrolled) { log.dataset.scrolled = "1"; log.scrollTop = log.scrollHeight; }
  }
  document.addEventListener("DOMContentLoaded", scrollLogToEnd);
  document.addEventListener("htmx:load", scrollLogToEnd);  // a job swapped into the jobs page's detail pane
})();
