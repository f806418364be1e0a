"""Inline CSS and JavaScript for matrix.html (no network: everything ships inside the one file)."""

CSS = """
:root { font-family: system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: #0f172a; }
body { margin: 0; padding: 16px 20px; background: #f8fafc; font-size: 14px; }
h1 { font-size: 20px; margin: 0 0 4px; }
code, pre { font-family: ui-monospace, "DejaVu Sans Mono", Menlo, monospace; font-size: 12.5px; }
.summary { margin: 0 0 10px; color: #334155; }
.exit { font-weight: 700; padding: 2px 8px; border-radius: 10px; border: 2px solid; }
.exit-0 { background: #dcfce7; border-color: #16a34a; color: #14532d; }
.exit-1 { background: #fee2e2; border-color: #dc2626; color: #7f1d1d; }
.exit-2 { background: #3f1d1d; border-color: #000; color: #fff; }
.legend { display: flex; flex-wrap: wrap; gap: 6px 14px; margin: 8px 0 10px; color: #334155; }
.legend .v { padding: 1px 7px; border-radius: 4px; margin-right: 4px; }
.controls { margin: 0 0 8px; color: #334155; }
.layout { display: flex; gap: 16px; align-items: flex-start; }
table.matrix { border-collapse: collapse; background: #fff; box-shadow: 0 1px 2px #0002; }
.matrix th, .matrix td { border: 1px solid #e2e8f0; padding: 3px 6px; text-align: left; vertical-align: middle; }
.matrix thead th { background: #f1f5f9; position: sticky; top: 0; z-index: 1; }
.matrix th.scn { font-weight: 600; white-space: nowrap; }
.cellhead small { display: block; font-weight: 400; color: #64748b; }
.matrix th.scn small { font-weight: 400; color: #64748b; margin-left: 8px; }
.cellhead { min-width: 140px; white-space: nowrap; }
.cellhead .run { display: block; font-weight: 400; font-size: 12px; }
.cellhead .bad { color: #b91c1c; font-weight: 700; }
td.pol { color: #475569; }
td.v { padding: 2px; }
td.v button { width: 100%; border: 1.5px solid transparent; border-radius: 4px; padding: 3px 6px; font: inherit;
  text-align: left; cursor: pointer; background: inherit; color: inherit; white-space: nowrap; }
td.v button:hover, td.v button:focus-visible { outline: 2px solid #2563eb; outline-offset: 1px; }
td.v button.selected { outline: 3px solid #1d4ed8; }
.v-pass { background: #dcfce7; color: #14532d; } .v-pass button { border-color: #86efac; }
.v-fail { background: #fee2e2; color: #7f1d1d; font-weight: 700; } .v-fail button { border-color: #dc2626; }
.v-unsupported { background: #f1f5f9; color: #334155; } .v-unsupported button { border-color: #cbd5e1; }
.v-known-failure { background: #fef3c7; color: #78350f; } .v-known-failure button { border-color: #f59e0b; }
.v-rejected { background: #ede9fe; color: #4c1d95; } .v-rejected button { border-color: #8b5cf6; }
.v-error { background: #3f1d1d; color: #fff; font-weight: 700; } .v-error button { border-color: #000; }
.v-none { background: #fff; color: #94a3b8; font-style: italic; }
.totals { margin: 0; padding: 0; list-style: none; font-size: 12px; }
.totals li { display: inline-block; margin: 1px 2px; padding: 0 5px; border-radius: 3px; }
aside#detail { position: sticky; top: 10px; flex: 0 0 420px; max-height: 94vh; overflow: auto; background: #fff;
  border: 1px solid #cbd5e1; border-radius: 6px; padding: 10px 14px; box-shadow: 0 2px 6px #0002; }
aside#detail h2 { font-size: 16px; margin: 0 0 2px; overflow-wrap: anywhere; }
aside#detail a { overflow-wrap: anywhere; }
aside#detail h3 { font-size: 13px; margin: 12px 0 4px; color: #334155; }
aside#detail .verdict { display: inline-block; padding: 2px 10px; border-radius: 4px; margin: 6px 0; }
aside#detail table.cmp { border-collapse: collapse; width: 100%; }
aside#detail .cmp th { text-align: left; vertical-align: top; white-space: nowrap; padding: 3px 8px 3px 0;
  color: #475569; font-weight: 600; }
aside#detail .cmp td { padding: 3px 0; word-break: break-word; }
aside#detail .cmp tr.expected td { font-weight: 700; }
aside#detail pre { background: #f8fafc; border: 1px solid #e2e8f0; padding: 6px; white-space: pre-wrap;
  word-break: break-word; margin: 0; }
aside#detail .close { float: right; font: inherit; cursor: pointer; }
aside#detail .hint { color: #64748b; }
"""

JS = r"""
(function () {
  "use strict";
  var data = JSON.parse(document.getElementById("sgp-data").textContent);
  var panel = document.getElementById("detail");
  var cells = {};
  data.cells.forEach(function (c) { cells[c.id] = c; });
  var symbols = JSON.parse(panel.getAttribute("data-symbols"));

  function el(tag, attrs, children) {
    var node = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (k) { node.setAttribute(k, attrs[k]); });
    (children || []).forEach(function (ch) {
      node.appendChild(typeof ch === "string" ? document.createTextNode(ch) : ch);
    });
    return node;
  }
  function findCase(scenario, policy) {
    for (var i = 0; i < data.cases.length; i++) {
      if (data.cases[i].scenario === scenario && data.cases[i].policy === policy) { return data.cases[i]; }
    }
    return null;
  }
  function row(label, text, cls) {
    return el("tr", cls ? {"class": cls} : {}, [el("th", {}, [label]), el("td", {}, [el("code", {}, [text])])]);
  }
  function show(cellId, scenario, policy) {
    var kase = findCase(scenario, policy);
    var cell = cells[cellId];
    var res = kase && kase.results[cellId];
    if (!kase || !cell || !res) { return false; }
    panel.textContent = "";
    var close = el("button", {"type": "button", "class": "close", "aria-label": "close"}, ["✕"]);
    close.addEventListener("click", hide);
    panel.appendChild(close);
    panel.appendChild(el("h2", {}, [scenario + "[" + policy + "]"]));
    panel.appendChild(el("div", {}, ["on ", el("code", {}, [cellId]), " · " + cell.label]));
    panel.appendChild(el("div", {"class": "verdict v-" + res.verdict, "id": "detail-verdict"},
                         [symbols[res.verdict] + " " + res.verdict + (res.choice ? " · " + res.choice : "")]));
    if (res.choice) {
      panel.appendChild(el("p", {"id": "detail-choice"}, ["runtime choice: this runtime took the allowed outcome \u201c"
        + res.choice + "\u201d; " + (res.expected.why || "")]));
    }
    panel.appendChild(el("h3", {}, ["Expected vs observed"]));
    var cmp = el("table", {"class": "cmp", "id": "detail-cmp"});
    cmp.appendChild(row("expected", res.expected_text, "expected"));
    res.observed_text.forEach(function (line) {
      var i = line.indexOf(": ");
      cmp.appendChild(row(line.slice(0, i), line.slice(i + 2), "observed"));
    });
    panel.appendChild(cmp);
    if (res.detail) {
      panel.appendChild(el("h3", {}, ["Detail"]));
      panel.appendChild(el("pre", {"id": "detail-text"}, [res.detail]));
    }
    panel.appendChild(el("h3", {}, ["Source"]));
    panel.appendChild(el("p", {"id": "detail-source"}, [kase.source || "(none)"]));
    if (kase.tags && kase.tags.length) { panel.appendChild(el("p", {}, ["tags: " + kase.tags.join(", ")])); }
    (res.links || []).forEach(function (link) {
      panel.appendChild(el("p", {}, [el("a", {"href": link}, [link])]));
    });
    panel.appendChild(el("p", {"class": "hint"}, ["duration " + Number(res.duration).toFixed(2) + "s"]));
    var raw = el("details", {}, [el("summary", {}, ["raw expected / observed JSON"]),
      el("pre", {}, [JSON.stringify({expected: res.expected, observed: res.observed}, null, 2)])]);
    panel.appendChild(raw);
    document.querySelectorAll("td.v button.selected").forEach(function (b) { b.classList.remove("selected"); });
    document.querySelectorAll("td.v button").forEach(function (b) {
      if (b.dataset.cell === cellId && b.dataset.scenario === scenario && b.dataset.policy === policy) {
        b.classList.add("selected");
      }
    });
    state.kase = [cellId, scenario, policy];
    writeHash();
    return true;
  }
  function hide() {
    panel.textContent = "";
    panel.appendChild(el("p", {"class": "hint"}, [panel.getAttribute("data-hint")]));
    state.kase = null;
    writeHash();
  }
  document.getElementById("matrix").addEventListener("click", function (ev) {
    var b = ev.target.closest("td.v button");
    if (b) { show(b.dataset.cell, b.dataset.scenario, b.dataset.policy); }
  });
  document.addEventListener("keydown", function (ev) { if (ev.key === "Escape") { hide(); } });
  var state = {kase: null, rows: "all"};
  function writeHash() {
    var parts = [];
    if (state.rows !== "all") { parts.push("rows=" + state.rows); }
    if (state.kase) { parts.push("case=" + state.kase.map(encodeURIComponent).join("/")); }
    var hash = parts.length ? "#" + parts.join("&") : "";
    if (location.hash !== hash && history.replaceState) {
      history.replaceState(null, "", hash || location.pathname + location.search);
    }
  }
  var select = document.getElementById("rows");
  function filterRows(mode) {
    if (!select.querySelector('option[value="' + mode + '"]')) { mode = "all"; }
    state.rows = mode;
    select.value = mode;
    document.querySelectorAll("#matrix tbody").forEach(function (body) {
      var head = body.querySelector("th.scn");
      var shown = [];
      body.querySelectorAll("tr").forEach(function (tr) {
        var keep = mode === "all" || tr.getAttribute("data-" + mode) === "1";
        tr.hidden = !keep;
        if (keep) { shown.push(tr); }
      });
      body.hidden = shown.length === 0;
      if (head && shown.length) {
        head.rowSpan = shown.length;
        shown[0].insertBefore(head, shown[0].firstChild);
      }
    });
    writeHash();
  }
  select.addEventListener("change", function () { filterRows(select.value); });
  function fromHash() {
    var params = {};
    location.hash.replace(/^#/, "").split("&").forEach(function (part) {
      var i = part.indexOf("=");
      if (i > 0) { params[part.slice(0, i)] = part.slice(i + 1); }
    });
    filterRows(params.rows || "all");
    var m = /^([^/]*)\/([^/]*)\/([^/]*)$/.exec(params["case"] || "");
    if (m) { show(decodeURIComponent(m[1]), decodeURIComponent(m[2]), decodeURIComponent(m[3])); }
  }
  window.addEventListener("hashchange", fromHash);
  fromHash();
  document.body.setAttribute("data-ready", "1");
})();
"""
