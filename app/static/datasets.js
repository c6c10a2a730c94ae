// Dataset page: select-all for bulk actions, and imports by button or drag-and-drop with an upload
// progress bar (XMLHttpRequest reports upload progress; fetch does not). No inline scripts (CSP).
(function () {
  "use strict";

  function updateCount() {
    var boxes = document.querySelectorAll("#bulk-form input[name=ids]");
    var checked = document.querySelectorAll("#bulk-form input[name=ids]:checked").length;
    var label = document.querySelector("#bulk-form .bulk-count");
    if (label) label.textContent = checked ? checked + " selected" : "";
    var all = document.querySelector("#bulk-form .select-all");
    if (all) all.checked = boxes.length > 0 && checked === boxes.length;
  }

  document.addEventListener("change", function (event) {
    var target = event.target;
    if (target.matches(".select-all")) {
      document.querySelectorAll("#bulk-form input[name=ids]").forEach(function (box) { box.checked = target.checked; });
    }
    if (target.closest("#bulk-form")) updateCount();
  });

  function humanBytes(n) {
    if (n > 1e9) return (n / 1e9).toFixed(1) + " GB";
    if (n > 1e6) return (n / 1e6).toFixed(1) + " MB";
    return Math.max(1, Math.round(n / 1e3)) + " kB";
  }

  function upload(zone, file) {
    var form = zone.querySelector("form");
    var bar = zone.querySelector(".import-progress");
    var fill = bar.querySelector("span");
    var status = zone.querySelector(".import-status");
    var data = new FormData();
    data.append("file", file, file.name);
    data.append("format", form.querySelector("select[name=format]").value);
    var xhr = new XMLHttpRequest();
    xhr.open("POST", zone.dataset.importUrl);
    xhr.setRequestHeader("X-CSRF-Token", window.tbCsrfToken());
    xhr.setRequestHeader("HX-Request", "true");
    bar.hidden = false;
    fill.style.width = "0%";
    status.textContent = "Uploading " + file.name + " (" + humanBytes(file.size) + ")…";
    xhr.upload.addEventListener("progress", function (event) {
      if (!event.lengthComputable) return;
      var percent = Math.round((event.loaded / event.total) * 100);
      fill.style.width = percent + "%";
      status.textContent = "Uploading " + file.name + ": " + percent + "% of " + humanBytes(event.total) +
        (percent === 100 ? " — importing…" : "");
    });
    xhr.addEventListener("load", function () {
      bar.hidden = true;
      status.textContent = "";
      var result = document.getElementById("import-result");
      result.innerHTML = xhr.responseText;
      if (xhr.status < 400 && window.htmx) {
        htmx.ajax("GET", zone.dataset.bodyUrl, { target: "#dataset-body", swap: "outerHTML" });
      }
      form.reset();
    });
    xhr.addEventListener("error", function () {
      bar.hidden = true;
      status.textContent = "The upload failed (connection lost). Nothing was imported; try again.";
    });
    xhr.send(data);
  }

  document.addEventListener("submit", function (event) {
    var zone = event.target.closest("#import-zone");
    if (!zone || !window.XMLHttpRequest || !window.FormData) return;
    var input = zone.querySelector("input[type=file]");
    if (!input.files.length) return;
    event.preventDefault();
    upload(zone, input.files[0]);
  });

  ["dragenter", "dragover"].forEach(function (name) {
    document.addEventListener(name, function (event) {
      var zone = event.target.closest && event.target.closest("#import-zone");
      if (!zone) return;
      event.preventDefault();
      zone.classList.add("dragging");
    });
  });
  document.addEventListener("dragleave", function (event) {
    var zone = event.target.closest && event.target.closest("#import-zone");
    if (zone && !zone.contains(event.relatedTarget)) zone.classList.remove("dragging");
  });
  document.addEventListener("drop", function (event) {
    var zone = event.target.closest && event.target.closest("#import-zone");
    if (!zone) return;
    event.preventDefault();
    zone.classList.remove("dragging");
    if (event.dataTransfer && event.dataTransfer.files.length) upload(zone, event.dataTransfer.files[0]);
  });

  document.addEventListener("htmx:afterSettle", updateCount);
})();
