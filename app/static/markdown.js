// A small, safe Markdown renderer for model replies in the playground. Safety comes first: the whole text is
// HTML-escaped before any Markdown is read, and the only tags ever produced are the fixed ones below (no links,
// no images, no attributes), so a reply can never inject markup or script.
(function () {
  "use strict";

  function escapeHtml(text) {
    return text.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;")
      .replace(/"/g, "&quot;").replace(/'/g, "&#39;");
  }

  // Inline marks on already-escaped text: `code`, **bold**, *italic* / _italic_.
  function inline(text) {
    var parts = text.split(/(`[^`\n]+`)/);
    return parts.map(function (part, i) {
      if (i % 2 === 1) return "<code>" + part.slice(1, -1) + "</code>";
      return part
        .replace(/\*\*([^*\n]+)\*\*/g, "<strong>$1</strong>")
        .replace(/(^|[^*\w])\*([^*\n]+)\*(?!\w)/g, "$1<em>$2</em>")
        .replace(/(^|[^\w])_([^_\n]+)_(?!\w)/g, "$1<em>$2</em>");
    }).join("");
  }

  function render(source) {
    var lines = escapeHtml(source || "").split("\n");
    var out = [], paragraph = [], list = null, i = 0;
    function flushParagraph() {
      if (paragraph.length) out.push("<p>" + paragraph.map(inline).join("<br>") + "</p>");
      paragraph = [];
    }
    function flushList() {
      if (list) out.push("<" + list.tag + ">" + list.items.map(function (t) { return "<li>" + inline(t) + "</li>"; }).join("") + "</" + list.tag + ">");
      list = null;
    }
    while (i < lines.length) {
      var line = lines[i];
      var fence = /^\s*```/.test(line);
      if (fence) {
        flushParagraph(); flushList();
        var code = [];
        i++;
        while (i < lines.length && !/^\s*```/.test(lines[i])) { code.push(lines[i]); i++; }
        out.push("<pre><code>" + code.join("\n") + "</code></pre>");
        i++;  // the closing fence (or the end of a reply still streaming)
        continue;
      }
      var heading = /^(#{1,6})\s+(.*)$/.exec(line);
      var bullet = /^\s*[-*+]\s+(.*)$/.exec(line);
      var numbered = /^\s*\d+[.)]\s+(.*)$/.exec(line);
      if (heading) {
        flushParagraph(); flushList();
        var level = Math.min(6, heading[1].length + 2);  // h3 and below: a reply sits inside a page with its own h1/h2
        out.push("<h" + level + ">" + inline(heading[2]) + "</h" + level + ">");
      } else if (bullet || numbered) {
        flushParagraph();
        var tag = bullet ? "ul" : "ol";
        if (list && list.tag !== tag) flushList();
        if (!list) list = { tag: tag, items: [] };
        list.items.push((bullet || numbered)[1]);
      } else if (!line.trim()) {
        flushParagraph(); flushList();
      } else {
        flushList();
        paragraph.push(line);
      }
      i++;
    }
    flushParagraph(); flushList();
    return out.join("");
  }

  window.tbMarkdown = { render: render, escapeHtml: escapeHtml };
})();
