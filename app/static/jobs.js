// Job pages: keeping the live event log scrolled to the newest line (confirmations are app.js's dialog).
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
  document.addEventListener("DOMContentLoaded", function () {
    var log = document.getElementById("event-log");
    if (log) log.scrollTop = log.scrollHeight;
  });
})();
