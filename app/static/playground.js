// The playground: streams replies with fetch + ReadableStream from /playground/chat (text/event-stream),
// one column per model (compare mode runs them in parallel), keeps the conversation in the database (?c=<id>).
// User text goes in through textContent; replies through markdown.js, which escapes all HTML first.
// Tool calls show as cards (function name, arguments); the person types each result (or marks it an error) and
// continues: the results go back to that column's model as `tool` messages.
(function () {
  "use strict";

  var root, state, controllers = [];

  function $(id) { return document.getElementById(id); }

  function params() {
    return {
      system: $("pg-system").value,
      temperature: $("pg-temperature").value,
      top_p: $("pg-top-p").value,
      max_tokens: $("pg-max-tokens").value,
      tools: $("pg-tools").value,
      tool_choice: $("pg-tool-choice").value
    };
  }

  function models() {
    return Array.prototype.map.call(root.querySelectorAll(".pg-model"), function (s) { return s.value; });
  }

  // "Compare side by side" and "Add a third model" open the compare view with the models chosen here: they follow
  // the selects, or a model picked after the page loaded would be lost on the way.
  function carryModels() {
    Array.prototype.forEach.call(document.querySelectorAll("a[data-carry-models]"), function (link) {
      var adding = link.hasAttribute("data-add-model"), query = [];
      models().forEach(function (m) { if (m || adding) query.push("model=" + encodeURIComponent(m)); });
      if (adding) query.push("model=");
      link.setAttribute("href", link.getAttribute("data-carry-models") + (query.length ? "?" + query.join("&") : ""));
    });
  }

  function status(text) { $("pg-status").textContent = text; }

  function addMessage(column, role, text, label_text) {
    var list = root.querySelector('.transcript[data-column="' + column + '"]');
    var li = document.createElement("li");
    li.className = "msg msg-" + role;
    var label = document.createElement("span");
    label.className = "msg-role";
    label.textContent = label_text || role;
    var body = document.createElement("div");
    body.className = "msg-text";
    body.textContent = text;
    li.appendChild(label);
    li.appendChild(body);
    list.appendChild(li);
    li.scrollIntoView({ block: "end" });
    return body;
  }

  // Replies are Markdown; markdown.js escapes all HTML before reading it, so its output is safe to insert.
  function showReply(target, text) {
    if (window.tbMarkdown) {
      target.innerHTML = window.tbMarkdown.render(text);
      target.classList.add("md");
    } else {
      target.textContent = text;
    }
  }

  // Said under a reply that stopped because it reached max tokens, not because the model was done.
  function cutNote() {
    var note = document.createElement("p");
    note.className = "msg-note";
    note.textContent = "cut at max tokens";
    return note;
  }

  function prettyArguments(text) {
    try { return JSON.stringify(JSON.parse(text), null, 2); } catch (e) { return text; }
  }

  function element(tag, className, text) {
    var node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined) node.textContent = text;
    return node;
  }

  // The cards of a reply's tool calls (the same markup as playground/_tool_calls.html), replaced as they grow.
  function showCalls(li, calls) {
    var old = li.querySelector(".tool-calls");
    var box = element("div", "tool-calls");
    calls.forEach(function (call) {
      var card = element("div", "tool-call");
      card.setAttribute("data-call-id", call.id || "");
      card.setAttribute("data-name", call.function.name);
      var head = element("div", "tool-call-head");
      head.appendChild(element("span", "badge", "tool call"));
      head.appendChild(document.createTextNode(" "));
      head.appendChild(element("code", "tool-call-name", call.function.name));
      card.appendChild(head);
      card.appendChild(element("pre", "tool-call-args", prettyArguments(call.function.arguments)));
      box.appendChild(card);
    });
    if (old) li.replaceChild(box, old); else li.insertBefore(box, li.querySelector(".msg-note"));
  }

  // Streamed deltas put together: the first of an index brings id and name, the later ones pieces of arguments.
  function addDeltas(calls, deltas) {
    deltas.forEach(function (delta) {
      var call = calls[delta.index];
      if (!call) {
        call = calls[delta.index] = { id: delta.id, type: "function", function: { name: "", arguments: "" } };
      }
      var fn = delta["function"] || {};
      if (fn.name && !call["function"].name) call["function"].name = fn.name;
      call["function"].arguments += fn.arguments || "";
    });
  }

  // Under a reply that made calls: a field per call for its result, an "error" box, and Continue.
  function askResults(column, li, calls) {
    var form = element("form", "tool-results");
    calls.forEach(function (call) {
      var row = element("div", "tool-result");
      row.setAttribute("data-call-id", call.id);
      var label = element("label", "", "Result of " + call["function"].name + " ");
      var text = element("textarea");
      text.rows = 2;
      text.placeholder = "What the tool returned (JSON or text)";
      label.appendChild(text);
      var flag = element("label", "inline");
      var box = element("input");
      box.type = "checkbox";
      flag.appendChild(box);
      flag.appendChild(document.createTextNode(" the tool failed (send this as an error)"));
      row.appendChild(label);
      row.appendChild(flag);
      form.appendChild(row);
    });
    var go = element("button", "primary", "Continue");
    go.type = "submit";
    form.appendChild(go);
    form.addEventListener("submit", function (event) {
      event.preventDefault();
      var model = models()[column];
      if (!model) { status("Pick a model for this column first."); return; }
      Array.prototype.forEach.call(form.querySelectorAll(".tool-result"), function (row) {
        var result = {
          role: "tool",
          tool_call_id: row.getAttribute("data-call-id"),
          content: row.querySelector("textarea").value,
          column: column
        };
        if (row.querySelector("input").checked) result.error = true;
        state.messages.push(result);
        showResult(column, result);
      });
      form.parentNode.removeChild(form);
      busy(true);
      streamColumn(column, model).then(function () { busy(false); turnDone(); return save(); });
    });
    li.appendChild(form);
  }

  function showResult(column, result) {
    var body = addMessage(column, "tool", result.content, result.error ? "tool result (error)" : "tool result");
    var li = body.parentNode;
    li.setAttribute("data-tool-call-id", result.tool_call_id);
    if (result.error) li.classList.add("msg-tool-error");
  }

  // Calls of a column still waiting for their results: those of its last message, when that one made calls.
  function pendingCalls(column) {
    var last = null;
    state.messages.forEach(function (m) { if (m.role !== "user" && (m.column || 0) === column) last = m; });
    return last && last.role === "assistant" && last.tool_calls && last.tool_calls.length ? last.tool_calls : null;
  }

  function busy(on) {
    $("pg-send").disabled = on;
    $("pg-stop").disabled = !on;
    status(on ? "Generating…" : "");
  }

  // Each column is titled with the model it runs; the "Reply from" choice names it too.
  function nameColumn(select) {
    var column = select.getAttribute("data-column");
    // The option's text is the model's friendly name (suffix · base · dataset · date); its value is the id.
    var label = select.value && select.selectedIndex >= 0 ? select.options[select.selectedIndex].textContent : "";
    var title = root.querySelector('.pg-column-title[data-column="' + column + '"]');
    if (title) title.textContent = label || "No model chosen";
    var option = $("pg-save-column") && $("pg-save-column").querySelector('option[value="' + column + '"]');
    if (option) option.textContent = label || "model " + (parseInt(column, 10) + 1);
  }

  // The server answers errors for non-htmx requests as a page; ask for the short flash fragment and read its text.
  function errorText(response) {
    return response.text().then(function (html) {
      var doc = new DOMParser().parseFromString(html, "text/html");
      var span = doc.querySelector(".flash span") || doc.querySelector("main") || doc.body;
      return (span ? span.textContent : "").trim() || ("Request failed (" + response.status + ")");
    });
  }

  function save() {
    var body = JSON.stringify({ models: models().map(function (m) { return m || "?"; }), params: params(), messages: state.messages });
    var url = state.id ? "/playground/conversations/" + encodeURIComponent(state.id) : "/playground/conversations";
    return window.tbFetch(url, {
      method: state.id ? "PUT" : "POST",
      headers: { "Content-Type": "application/json", "HX-Request": "true" },
      body: body
    }).then(function (r) {
      if (!r.ok) return errorText(r).then(function (t) { status("Not saved: " + t); });
      return r.json().then(function (data) {
        if (!state.id) {
          state.id = data.id;
          var url = new URL(window.location.href);
          url.searchParams.set("c", data.id);
          url.searchParams.delete("model");
          window.history.replaceState(null, "", url.toString());
        }
      });
    });
  }

  // A local model's first chat loads it (seconds for a real one): say what the load is doing until the reply
  // starts, instead of silence. Returns the function that ends the watch.
  function watchLoad(model, target) {
    var ended = false, timer = null;
    function poll() {
      window.tbFetch("/playground/model-status?model=" + encodeURIComponent(model)).then(function (r) {
        return r.ok ? r.json() : null;
      }).then(function (s) {
        if (ended || !s || s.loaded) return;
        if (s.loading) {
          target.textContent = s.text + "…";
          target.classList.add("loading");
          target.setAttribute("data-load-step", s.step + "/" + s.total);
        }
        timer = window.setTimeout(poll, 300);
      }, function () { /* the reply's own request reports what went wrong */ });
    }
    poll();
    return function () {
      ended = true;
      window.clearTimeout(timer);
      if (target.classList.contains("loading")) {
        target.classList.remove("loading");
        target.removeAttribute("data-load-step");
        target.textContent = "";
      }
    };
  }

  function streamColumn(column, model) {
    var controller = new AbortController();
    controllers.push(controller);
    var target = addMessage(column, "assistant", "");
    target.classList.add("streaming");
    var endWatch = watchLoad(model, target);
    var reply = { role: "assistant", content: "", column: column }, calls = [];
    var payload = JSON.stringify({ model: model, column: column, params: params(), messages: state.messages });
    return window.tbFetch("/playground/chat", {
      method: "POST", headers: { "Content-Type": "application/json" }, body: payload, signal: controller.signal
    }).then(function (response) {
      if (!response.ok || !response.body) return errorText(response).then(function (t) { throw new Error(t); });
      var reader = response.body.getReader(), decoder = new TextDecoder(), buffer = "";
      function pump() {
        return reader.read().then(function (chunk) {
          if (chunk.done) return;
          endWatch();  // the reply (or its error) has started: the model is loaded
          buffer += decoder.decode(chunk.value, { stream: true });
          var parts = buffer.split("\n\n");
          buffer = parts.pop();
          parts.forEach(function (part) {
            var event = "message", data = "";
            part.split("\n").forEach(function (line) {
              if (line.indexOf("event: ") === 0) event = line.slice(7);
              else if (line.indexOf("data: ") === 0) data += line.slice(6);
            });
            if (!data) return;
            var obj = JSON.parse(data);
            if (event === "error") throw new Error(obj.message);
            if (event === "done" && obj.finish_reason === "length") {
              reply.cut = true;
              target.parentNode.appendChild(cutNote());
            }
            if (event === "message" && obj.text) {
              reply.content += obj.text;
              showReply(target, reply.content);
            }
            if (event === "message" && obj.tool_calls) {
              addDeltas(calls, obj.tool_calls);
              showCalls(target.parentNode, calls);
            }
            if (event === "done" && obj.tool_calls) {
              calls = obj.tool_calls;
              showCalls(target.parentNode, calls);
            }
          });
          return pump();
        });
      }
      return pump();
    }).catch(function (err) {
      if (err.name === "AbortError") { target.classList.add("stopped"); return; }
      var note = document.createElement("p");
      note.className = "flash flash-error";
      note.textContent = err.message;
      target.parentNode.appendChild(note);
    }).then(function () {
      endWatch();
      target.classList.remove("streaming");
      if (calls.length) reply.tool_calls = calls;
      if (reply.content || calls.length) state.messages.push(reply);
      if (calls.length && !target.classList.contains("stopped")) askResults(column, target.parentNode, calls);
    });
  }

  function send(event) {
    event.preventDefault();
    var text = $("pg-input").value;
    var chosen = models();
    if (!text.trim()) return;
    if (chosen.some(function (m) { return !m; })) { status("Pick a model for every column first."); return; }
    if (chosen.some(function (_, column) { return pendingCalls(column); })) {
      status("Give the results of the tool calls first (then Continue).");
      return;
    }
    $("pg-input").value = "";
    document.dispatchEvent(new CustomEvent("tb:playground-send"));
    var user = { role: "user", content: text };
    state.messages.push(user);
    chosen.forEach(function (_, column) { addMessage(column, "user", text); });
    $("pg-send").disabled = true;
    $("pg-stop").disabled = false;
    status("Generating…");
    controllers = [];
    // Each column sees the same history so far; their replies stream in parallel.
    var snapshot = state.messages.slice();
    Promise.all(chosen.map(function (model, column) {
      state.messages = snapshot;
      return streamColumn(column, model);
    })).then(function () {
      $("pg-send").disabled = false;
      $("pg-stop").disabled = true;
      status("");
      turnDone();
      return save();
    });
  }

  // Every column has answered: other scripts (playground_prefer.js) offer what can be done with the answers.
  function turnDone() { document.dispatchEvent(new CustomEvent("tb:playground-turn")); }

  function stop() {
    controllers.forEach(function (c) { c.abort(); });
    status("Stopped.");
  }

  function prepareSave() {
    var column = $("pg-save-column") ? parseInt($("pg-save-column").value, 10) : 0;
    var last = null;
    state.messages.forEach(function (m) { if (m.role === "assistant" && (m.column || 0) === column) last = m; });
    $("pg-save-messages").value = JSON.stringify(state.messages);
    $("pg-save-system").value = $("pg-system").value;
    $("pg-save-tools").value = $("pg-tools").value;
    if (last && !$("pg-save-reply").dataset.edited) $("pg-save-reply").value = last.content;
  }

  document.addEventListener("DOMContentLoaded", function () {
    root = $("playground");
    if (!root) return;
    var saved = null;
    try { saved = JSON.parse(root.getAttribute("data-conversation") || "null"); } catch (e) { saved = null; }
    state = { id: saved ? saved.id : null, messages: saved ? saved.messages : [] };
    Array.prototype.forEach.call(root.querySelectorAll(".msg-assistant .msg-text"), function (body) {
      showReply(body, body.textContent);
    });
    // A reloaded conversation may stop at calls that wait for their results: ask for them again.
    Array.prototype.forEach.call(root.querySelectorAll(".transcript"), function (list) {
      var column = parseInt(list.getAttribute("data-column"), 10), calls = pendingCalls(column);
      var replies = list.querySelectorAll(".msg-assistant");
      if (calls && replies.length) askResults(column, replies[replies.length - 1], calls);
    });
    Array.prototype.forEach.call(root.querySelectorAll(".pg-model"), function (select) {
      select.addEventListener("change", function () { nameColumn(select); carryModels(); });
    });
    carryModels(); // a choice made before this script ran (or restored by the browser) counts too
    window.tbPlayground = { state: function () { return state; } };
    turnDone();
    $("pg-composer").addEventListener("submit", send);
    $("pg-stop").addEventListener("click", stop);
    $("pg-input").addEventListener("keydown", function (e) {
      if (e.key === "Enter" && (e.ctrlKey || e.metaKey)) send(e);
    });
    $("pg-save").addEventListener("toggle", prepareSave);
    $("pg-save-reply").addEventListener("input", function () { this.dataset.edited = "1"; });
    if ($("pg-save-column")) $("pg-save-column").addEventListener("change", function () {
      delete $("pg-save-reply").dataset.edited; prepareSave();
    });
    // htmx submits the save form; refresh its hidden fields first so it carries the latest conversation.
    $("pg-save-form").addEventListener("htmx:configRequest", function (e) {
      var edited = $("pg-save-reply").value;
      prepareSave();
      e.detail.parameters.set ? e.detail.parameters.set("messages", $("pg-save-messages").value)
        : (e.detail.parameters.messages = $("pg-save-messages").value);
      if (e.detail.parameters.set) {
        e.detail.parameters.set("system", $("pg-system").value);
        e.detail.parameters.set("reply", edited);
        e.detail.parameters.set("tools", $("pg-tools").value);
      } else {
        e.detail.parameters.system = $("pg-system").value;
        e.detail.parameters.reply = edited;
        e.detail.parameters.tools = $("pg-tools").value;
      }
    });
  });
})();
