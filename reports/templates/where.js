/* Where the time went: the flame graph, merged here from the JSON block's rows (thread, state,
   stack, seconds) for the chosen state and thread; the top-function table follows the state;
   the section's tables sort by a click on a heading. Text reaches the page through textContent
   and title only, never as markup. */
(function () {
  "use strict";
  var ROW_PX = 18;  /* one frame's row: 17 px and a 1 px gap */
  var MIN_PX = 1;   /* a frame narrower than this is not drawn; its time stays in its caller */

  function fill(template, values) {
    return template.replace(/\{(\w+)\}/g, function (whole, key) {
      return Object.prototype.hasOwnProperty.call(values, key) ? String(values[key]) : whole;
    });
  }

  function fmtSeconds(d) {
    if (d >= 1) { return d.toFixed(3) + " s"; }
    if (d >= 1e-3) { return (d * 1e3).toFixed(1) + " ms"; }
    return (d * 1e6).toFixed(0) + " µs";
  }

  function fmtShare(x) { return (x * 100).toFixed(1) + "%"; }

  /* A lighter or darker shade of the state's colour per function, so neighbours differ. */
  function shade(hex, name) {
    var hash = 0;
    for (var i = 0; i < name.length; i++) { hash = (hash * 31 + name.charCodeAt(i)) | 0; }
    var t = (Math.abs(hash) % 7) / 12;
    var rgb = [1, 3, 5].map(function (at) { return parseInt(hex.substr(at, 2), 16); });
    return "rgb(" + rgb.map(function (c) { return Math.round(c + (255 - c) * t); }).join(",") + ")";
  }

  function sortableTables() {
    Array.prototype.forEach.call(document.querySelectorAll("#where table.sortable"), function (table) {
      var heads = table.querySelectorAll("th[data-sort]");
      Array.prototype.forEach.call(heads, function (th, column) {
        th.addEventListener("click", function () {
          var numeric = th.getAttribute("data-sort") === "num";
          var was = th.getAttribute("aria-sort");  /* first click: numbers largest first */
          var descending = was ? was === "ascending" : numeric;
          Array.prototype.forEach.call(heads, function (other) { other.removeAttribute("aria-sort"); });
          th.setAttribute("aria-sort", descending ? "descending" : "ascending");
          var body = table.tBodies[0];
          var rows = Array.prototype.slice.call(body.rows);
          rows.sort(function (a, b) {
            var x = a.cells[column], y = b.cells[column];
            var order = numeric
              ? Number(x.getAttribute("data-value")) - Number(y.getAttribute("data-value"))
              : x.textContent.localeCompare(y.textContent);
            return descending ? -order : order;
          });
          rows.forEach(function (row) { body.appendChild(row); });
        });
      });
    });
  }

  sortableTables();
  var block = document.getElementById("threadscope-where");
  var flame = document.getElementById("where-flame");
  if (!block || !flame) { return; }
  var data = JSON.parse(block.textContent);
  if (!data) { return; }
  var stateSelect = document.getElementById("where-state");
  var threadSelect = document.getElementById("where-thread");
  var caption = document.getElementById("where-caption");
  var note = document.getElementById("where-flame-note");
  var words = data.words;
  var zoomPath = [];  /* frame ids from the selection's root down to the zoomed frame */

  function tree(state, tid) {
    var root = {frame: -1, seconds: 0, children: new Map(), parent: null};
    data.rows.forEach(function (row) {
      if (state !== "all" && data.states[row[1]] !== state) { return; }
      if (tid !== "all" && String(row[0]) !== tid) { return; }
      var node = root;
      node.seconds += row[3];
      data.stacks[row[2]].forEach(function (id) {
        var child = node.children.get(id);
        if (!child) {
          child = {frame: id, seconds: 0, children: new Map(), parent: node};
          node.children.set(id, child);
        }
        child.seconds += row[3];
        node = child;
      });
    });
    return root;
  }

  function frameValues(id) {
    var frame = data.frames[id];
    return {"function": frame[0], file: frame[1], line: frame[2]};
  }

  function pathOf(node) {
    var path = [];
    for (; node && node.frame >= 0; node = node.parent) { path.unshift(node.frame); }
    return path;
  }

  function filterTable(state) {
    var table = document.getElementById("where-functions");
    if (!table) { return; }
    Array.prototype.forEach.call(table.tBodies[0].rows, function (row) {
      row.hidden = row.getAttribute("data-state") !== state;
    });
  }

  function render() {
    var state = stateSelect.value;
    var tid = threadSelect.value;
    var selection = (data.names[state] || state) + ", " + (data.threads[tid] || tid);
    var root = tree(state, tid);
    var top = root;
    zoomPath.forEach(function (id) { if (top) { top = top.children.get(id); } });
    if (!top) { zoomPath = []; top = root; }
    while (flame.firstChild) { flame.removeChild(flame.firstChild); }
    flame.setAttribute("data-state", state);
    flame.setAttribute("data-thread", tid);
    filterTable(state);
    if (root.seconds <= 0) {
      caption.textContent = "";
      note.textContent = words.empty;
      flame.style.height = ROW_PX + "px";
      flame.setAttribute("data-frames", "0");
      flame.setAttribute("data-ready", "yes");
      return;
    }
    var width = flame.clientWidth || 1000;
    var colour = data.colours[state] || data.colours.all;
    var hidden = {count: 0, seconds: 0};
    var drawn = 0;
    var depthMax = 0;

    function box(node, depth, left, share, label, title) {
      var div = document.createElement("div");
      div.className = "flame-frame";
      div.style.left = (left * 100) + "%";
      div.style.width = (share * 100) + "%";
      div.style.top = (depth * ROW_PX) + "px";
      div.style.background = shade(colour, label);
      div.textContent = label;
      div.title = title;
      flame.appendChild(div);
      drawn += 1;
      depthMax = Math.max(depthMax, depth);
      return div;
    }

    function walk(node, depth, left) {
      var x = left;
      var children = Array.from(node.children.values());
      children.sort(function (a, b) { return b.seconds - a.seconds; });
      children.forEach(function (child) {
        var share = child.seconds / top.seconds;
        if (share * width < MIN_PX) {
          hidden.count += 1;
          hidden.seconds += child.seconds;
        } else {
          var values = frameValues(child.frame);
          values.seconds = fmtSeconds(child.seconds);
          values.share = fmtShare(child.seconds / root.seconds);
          values.selection = selection;
          var div = box(child, depth, x, share, values["function"], fill(words.title, values));
          div.setAttribute("data-frame", String(child.frame));
          div.addEventListener("click", function () { zoomPath = pathOf(child); render(); });
          walk(child, depth + 1, x);
        }
        x += share;
      });
    }

    var rootLabel, rootTitle;
    if (top === root) {
      rootLabel = fill(words.root, {selection: selection, seconds: fmtSeconds(root.seconds)});
      rootTitle = rootLabel;
      caption.textContent = rootLabel;
    } else {
      var values = frameValues(top.frame);
      values.seconds = fmtSeconds(top.seconds);
      values.share = fmtShare(top.seconds / root.seconds);
      values.selection = selection;
      rootLabel = values["function"];
      rootTitle = fill(words.title, values);
      caption.textContent = fill(words.zoomed, {
        frame: values["function"] + " (" + values.file + ":" + values.line + ")",
        seconds: values.seconds, share: values.share, selection: selection});
    }
    var rootDiv = box(top, 0, 0, 1, rootLabel, rootTitle);
    rootDiv.classList.add("flame-root");
    rootDiv.addEventListener("click", function () {
      zoomPath = zoomPath.slice(0, -1);  /* one level out */
      render();
    });
    walk(top, 1, 0);
    flame.style.height = ((depthMax + 1) * ROW_PX + 2) + "px";
    note.textContent = hidden.count
      ? fill(words.hidden, {count: hidden.count, seconds: fmtSeconds(hidden.seconds)}) : "";
    flame.setAttribute("data-frames", String(drawn));
    flame.setAttribute("data-zoomed", zoomPath.length ? "yes" : "no");
    flame.setAttribute("data-ready", "yes");
  }

  stateSelect.addEventListener("change", function () { zoomPath = []; render(); });
  threadSelect.addEventListener("change", function () { zoomPath = []; render(); });
  document.getElementById("where-reset").addEventListener("click", function () {
    zoomPath = [];
    render();
  });
  var resizing = null;
  window.addEventListener("resize", function () {
    clearTimeout(resizing);
    resizing = setTimeout(render, 150);
  });
  try {
    render();
  } catch (error) {
    flame.setAttribute("data-ready", "failed");
    console.error("threadscope: the flame graph failed to draw", error);
  }
}());
