/* kleio dashboard: plain JavaScript, no build step, no network but this server.
 *
 * Everything the journal holds (commands, options, tags, output lines, file names) is
 * hostile input: it reaches the page only as text nodes (el() below), never as HTML, and
 * links are built from ids this page encodes itself.
 */
"use strict";
(function () {
  const app = document.getElementById("app");
  const COLORS = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b",
                  "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"];
  let cleanups = [];

  // -- helpers ------------------------------------------------------------------------------

  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [key, value] of Object.entries(attrs || {})) {
      if (value === null || value === undefined || value === false) continue;
      if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
      else if (key === "class") node.className = value;
      else node.setAttribute(key, value === true ? "" : String(value));
    }
    for (const child of children.flat(Infinity)) {
      if (child === null || child === undefined || child === false) continue;
      node.append(child instanceof Node ? child : document.createTextNode(String(child)));
    }
    return node;
  }

  async function api(path) {
    const response = await fetch(path, {headers: {Accept: "application/json"},
                                        credentials: "same-origin"});
    let body = null;
    try { body = await response.json(); } catch (e) { body = null; }
    if (!response.ok) {
      throw new Error((body && body.error) || (response.status + " " + response.statusText));
    }
    return body;
  }

  function query(params) {
    const parts = [];
    for (const [key, value] of Object.entries(params)) {
      const values = Array.isArray(value) ? value : [value];
      for (const v of values) {
        if (v === null || v === undefined || v === "") continue;
        parts.push(encodeURIComponent(key) + "=" + encodeURIComponent(v));
      }
    }
    return parts.length ? "?" + parts.join("&") : "";
  }

  function trialLink(id, text) {
    return el("a", {href: "#/trial/" + encodeURIComponent(id)}, text || id.slice(0, 7));
  }

  function fmtNumber(value) {
    if (value === null || value === undefined) return "";
    if (typeof value !== "number") return String(value);
    if (Number.isInteger(value)) return String(value);
    const abs = Math.abs(value);
    if (abs !== 0 && (abs < 1e-3 || abs >= 1e6)) return value.toExponential(3);
    return String(Number(value.toPrecision(5)));
  }

  function fmtValue(value) {
    if (value === null || value === undefined) return "";
    if (typeof value === "number") return fmtNumber(value);
    if (typeof value === "string") return value;
    return JSON.stringify(value);
  }

  function fmtTime(seconds) {
    if (!seconds) return "-";
    const d = new Date(seconds * 1000);
    const pad = (n) => String(n).padStart(2, "0");
    return d.getFullYear() + "-" + pad(d.getMonth() + 1) + "-" + pad(d.getDate()) + " " +
      pad(d.getHours()) + ":" + pad(d.getMinutes()) + ":" + pad(d.getSeconds());
  }

  function fmtDuration(seconds) {
    if (seconds === null || seconds === undefined || seconds < 0) return "-";
    const s = Math.floor(seconds);
    if (s < 60) return s + "s";
    if (s < 3600) return Math.floor(s / 60) + "m" + String(s % 60).padStart(2, "0") + "s";
    return Math.floor(s / 3600) + "h" + String(Math.floor((s % 3600) / 60)).padStart(2, "0") + "m";
  }

  function fmtBytes(n) {
    if (n === null || n === undefined) return "";
    const units = ["B", "KiB", "MiB", "GiB", "TiB"];
    let i = 0;
    while (n >= 1024 && i < units.length - 1) { n /= 1024; i++; }
    return (i ? n.toFixed(1) : n) + " " + units[i];
  }

  function shellJoin(argv) {
    return (argv || []).map((a) => /^[\w@%+=:,./-]+$/.test(a) ? a : "'" + a.replace(/'/g, "'\\''") + "'").join(" ");
  }

  function statusBadge(status) {
    return el("span", {class: "status status-" + String(status).replace(/[^a-z]/g, "")}, status);
  }

  function showError(error) {
    app.replaceChildren(el("p", {class: "error"}, "error: " + error.message));
  }

  function onCleanup(fn) { cleanups.push(fn); }

  // -- charts (uPlot) -----------------------------------------------------------------------

  /* A chart of curves sharing one x axis. Each curve: {label, x, y, lower?, upper?}.
   * The container's data-points attribute tells how many points are drawn (tests read it). */
  function chart(container, title, xLabel, curves) {
    const box = el("div", {class: "chart", "data-title": title});
    const head = el("div", {class: "title"}, title);
    const plot = el("div", {class: "plot"});
    const legend = el("div", {class: "legend"}, curves.length > 1 ? curves.map((c, i) =>
      el("span", {class: "key"}, el("span", {class: "swatch", "data-color": COLORS[i % COLORS.length]}), c.label)) : null);
    for (const swatch of legend.querySelectorAll(".swatch")) swatch.style.background = swatch.dataset.color;
    box.append(head, plot, legend);
    container.append(box);
    const state = {curves: curves.map((c) => ({...c, x: Array.from(c.x), y: Array.from(c.y),
                                               lower: c.lower ? Array.from(c.lower) : null,
                                               upper: c.upper ? Array.from(c.upper) : null})),
                   u: null};

    function build() {
      const width = Math.max(280, plot.clientWidth || box.clientWidth - 12 || 480);
      const series = [{label: xLabel || "#"}];
      const bands = [];
      const columns = [];
      state.curves.forEach((c, i) => {
        const color = COLORS[i % COLORS.length];
        series.push({label: c.label, stroke: color, width: 1.5, spanGaps: true,
                     points: {show: c.x.length < 40}});
        columns.push([c.x, c.y]);
        if (c.lower && c.upper) {
          const upperIndex = series.length;
          series.push({label: c.label + " +std", stroke: color + "00", width: 0, spanGaps: true,
                       points: {show: false}});
          series.push({label: c.label + " -std", stroke: color + "00", width: 0, spanGaps: true,
                       points: {show: false}});
          columns.push([c.x, c.upper]);
          columns.push([c.x, c.lower]);
          bands.push({series: [upperIndex, upperIndex + 1], fill: color + "33"});
        }
      });
      const data = columns.length ? uPlot.join(columns) : [[]];
      const options = {width, height: 230, series, bands,
                       scales: {x: {time: false}},
                       axes: [{label: xLabel || "statistic #"}, {}],
                       legend: {show: false},
                       cursor: {drag: {x: true, y: false}}};
      if (state.u) state.u.destroy();
      state.u = new uPlot(options, data, plot);
      box.dataset.points = String(state.curves.reduce((n, c) => n + c.x.length, 0));
    }

    build();
    const onResize = () => {
      if (!state.u) return;
      const width = Math.max(280, plot.clientWidth || 480);
      state.u.setSize({width, height: 230});
    };
    window.addEventListener("resize", onResize);
    onCleanup(() => { window.removeEventListener("resize", onResize); if (state.u) state.u.destroy(); });

    let pending = false;
    return {
      box,
      append(index, x, y) {
        const c = state.curves[index];
        if (!c) return;
        c.x.push(x); c.y.push(y);
        if (!pending) {
          pending = true;
          requestAnimationFrame(() => { pending = false; build(); });
        }
      },
    };
  }

  // -- the trials table ---------------------------------------------------------------------

  async function trialsView(params) {
    const state = {
      sort: params.get("sort") || "-created",
      q: params.get("q") || "",
      status: params.get("status") || "",
      tag: params.get("tag") || "",
      where: params.get("where") || "",
      offset: Number(params.get("offset") || 0),
      limit: Number(params.get("limit") || 50),
    };
    const selected = new Set();
    const search = el("input", {type: "search", id: "search", placeholder: "search id, command, tag, option",
                                value: state.q});
    const where = el("input", {type: "text", id: "where", placeholder: "filter, e.g. lr<0.1",
                               value: state.where});
    const status = el("select", {id: "status"},
      ["", "new", "reserved", "running", "completed", "broken", "interrupted", "suspended",
       "failover", "lost"].map((s) => el("option", {value: s, selected: s === state.status},
                                          s || "any status")));
    const compareButton = el("button", {id: "compare", disabled: true, onclick: () => {
      location.hash = "#/compare" + query({ids: Array.from(selected).join(",")});
    }}, "compare selected");
    const groupButton = el("button", {id: "compare-groups", disabled: true, onclick: () => {
      location.hash = "#/compare" + query({ids: Array.from(selected).join(","), group: "seed"});
    }}, "compare as groups (except seed)");
    const info = el("span", {class: "muted", id: "table-info"});
    const tableBox = el("div", {class: "wrap"});
    const pager = el("div", {class: "pager"});
    app.replaceChildren(
      el("h1", {}, "Trials"),
      el("div", {class: "toolbar"}, search, where, status, compareButton, groupButton, info),
      tableBox, pager);

    function go(changes) {
      Object.assign(state, changes);
      const q = query({sort: state.sort !== "-created" ? state.sort : "", q: state.q,
                       status: state.status, tag: state.tag, where: state.where,
                       offset: state.offset || "", limit: state.limit !== 50 ? state.limit : ""});
      history.replaceState(null, "", "#/" + q);
      load();
    }

    let timer = null;
    search.addEventListener("input", () => {
      clearTimeout(timer);
      timer = setTimeout(() => go({q: search.value, offset: 0}), 250);
    });
    where.addEventListener("change", () => go({where: where.value, offset: 0}));
    status.addEventListener("change", () => go({status: status.value, offset: 0}));

    let generation = 0;
    async function load() {
      const mine = ++generation;
      info.textContent = "loading…";
      let page;
      try {
        page = await api("/api/trials" + query({sort: state.sort, q: state.q, status: state.status,
                                                tag: state.tag, where: state.where,
                                                offset: state.offset, limit: state.limit}));
      } catch (error) {
        if (mine !== generation) return;
        info.textContent = "";
        tableBox.replaceChildren(el("p", {class: "error"}, "error: " + error.message));
        pager.replaceChildren();
        return;
      }
      if (mine !== generation) return;
      render(page);
    }

    function header(name, key, mode) {
      const sortedAsc = state.sort === key, sortedDesc = state.sort === "-" + key;
      const th = el("th", {class: "sortable" + (sortedAsc ? " sorted-asc" : "") + (sortedDesc ? " sorted-desc" : ""),
                           "data-sort": key, title: "sort by " + key},
                    name);
      th.addEventListener("click", () => {
        // A metric sorts best first on the first click (by its mode), anything else ascending.
        const first = mode === "max" ? "-" + key : key;
        const next = sortedDesc ? key : sortedAsc ? "-" + key : first;
        go({sort: next, offset: 0});
      });
      return th;
    }

    function render(page) {
      const rows = page.rows;
      const options = page.options.slice(0, 12);
      const metrics = page.metrics.slice(0, 12);
      const head = el("tr", {},
        el("th", {}, ""),
        header("id", "id"), header("status", "status"), header("started", "started"),
        header("duration", "duration"),
        el("th", {}, "tags"),
        options.map((o) => header(o, o)),
        metrics.map((m) => {
          const th = header(m === page.primary ? m + " \u2605" : m, m,
                            (rows.find((r) => r.metrics[m]) || {metrics: {[m]: {}}}).metrics[m].mode);
          if (m === page.primary) { th.classList.add("primary"); th.title = "primary metric; sort by " + m; }
          return th;
        }),
        el("th", {}, "command"));
      const body = rows.map((r) => {
        const box = el("input", {type: "checkbox", "data-id": r.id, checked: selected.has(r.id)});
        box.addEventListener("change", () => {
          if (box.checked) selected.add(r.id); else selected.delete(r.id);
          compareButton.disabled = selected.size < 1;
          groupButton.disabled = selected.size < 2;
        });
        return el("tr", {"data-id": r.id},
          el("td", {}, box),
          el("td", {class: "mono"}, trialLink(r.id), r.parent ? " ^" : ""),
          el("td", {}, statusBadge(r.status)),
          el("td", {}, fmtTime(r.started_at)),
          el("td", {class: "num"}, fmtDuration(r.duration)),
          el("td", {}, (r.tags || []).map((t) => el("span", {class: "tag"}, t))),
          options.map((o) => el("td", {class: "num", "data-column": o}, fmtValue(r.options[o]))),
          metrics.map((m) => el("td", {class: "num", "data-column": m},
                                 r.metrics[m] ? fmtNumber(r.metrics[m].best) : "")),
          el("td", {class: "command mono", title: shellJoin(r.command)},
             el("div", {class: "clip"}, shellJoin(r.command))));
      });
      const table = el("table", {class: "grid", id: "trials"}, el("thead", {}, head), el("tbody", {}, body));
      tableBox.replaceChildren(rows.length ? table : el("p", {class: "muted"}, "no trial matches"));
      const first = rows.length ? page.offset + 1 : 0;
      info.textContent = rows.length ? `trials ${first}–${page.offset + rows.length}` + (page.more ? " (more follow)" : "") : "";
      pager.replaceChildren(
        el("button", {id: "previous", disabled: page.offset === 0,
                      onclick: () => go({offset: Math.max(0, page.offset - page.limit)})}, "← previous"),
        el("button", {id: "next", disabled: !page.more,
                      onclick: () => go({offset: page.offset + page.limit})}, "next →"));
    }

    await load();
    // Running trials change: look again every few seconds while the page is shown.
    const refresh = setInterval(() => { if (!document.hidden) load(); }, 5000);
    onCleanup(() => clearInterval(refresh));
  }

  // -- one trial ----------------------------------------------------------------------------

  async function trialView(id) {
    const trial = await api("/api/trials/" + encodeURIComponent(id));
    const upto = trial.seq;
    const [series, stdout, stderr, artifacts] = await Promise.all([
      api(`/api/trials/${encodeURIComponent(trial.id)}/series`),
      api(`/api/trials/${encodeURIComponent(trial.id)}/output` + query({stream: "stdout", upto})),
      api(`/api/trials/${encodeURIComponent(trial.id)}/output` + query({stream: "stderr", upto})),
      api(`/api/trials/${encodeURIComponent(trial.id)}/artifacts`),
    ]);
    let statusNode = statusBadge(trial.status);
    const liveDot = el("span", {class: "live-dot", id: "live", title: "live updates"});

    const dl = (pairs) => el("dl", {class: "kv"}, pairs.filter((p) => p[1] !== undefined && p[1] !== null && p[1] !== "")
      .map(([k, v]) => [el("dt", {}, k), el("dd", {}, v)]));

    const code = trial.code || {};
    const env = trial.env || {};
    const lineage = el("div", {},
      trial.ancestors.length ? el("p", {}, "continues ",
        trial.ancestors.map((a, i) => [i ? " → " : "", trialLink(a.id),
                                        a.cut !== null ? " (up to event " + a.cut + ")" : ""]),
        " → ", el("b", {}, trial.short_id)) : el("p", {class: "muted"}, "not a branch"),
      trial.children.length ? el("p", {}, "branches: ", trial.children.map((c, i) => [i ? ", " : "", trialLink(c)])) : null,
      trial.branch_reason ? el("p", {class: "muted"}, "branched: " + trial.branch_reason) : null);

    const metricsCard = el("div", {class: "card"});
    function showMetrics(metrics, complete) {
      metricsCard.replaceChildren(el("h2", {}, "Metrics"),
        !complete ? el("p", {class: "muted"}, "reading all statistics…") :
        Object.keys(metrics).length ? el("table", {class: "grid", id: "metrics"},
          el("tr", {}, el("th", {}, "metric"), el("th", {}, "mode"), el("th", {}, "best"), el("th", {}, "at"), el("th", {}, "last")),
          Object.entries(metrics).map(([k, m]) => el("tr", {}, el("td", {}, k), el("td", {}, m.mode),
            el("td", {class: "num"}, fmtNumber(m.best)), el("td", {class: "num"}, m.step_key ? m.step_key + " " + fmtValue(m.best_step) : ""),
            el("td", {class: "num"}, fmtNumber(m.last))))) : el("p", {class: "muted"}, "none"));
    }
    showMetrics(trial.metrics, trial.metrics_complete);
    const chartsBox = el("div", {class: "charts", id: "charts"});
    const countNote = el("span", {class: "muted", id: "statistics-note"});
    const outputBox = el("pre", {class: "output", id: "output"});
    const follow = el("input", {type: "checkbox", id: "follow", checked: true});
    let stream = "stdout";
    const lines = {stdout: stdout.lines.map((l) => l.line), stderr: stderr.lines.map((l) => l.line)};
    // Whether a stream's last line is a partial one (a progress bar), replaced by the next.
    const partial = {stdout: Boolean(stdout.lines.at(-1)?.partial),
                     stderr: Boolean(stderr.lines.at(-1)?.partial)};
    function showOutput() {
      outputBox.textContent = lines[stream].join("\n");
      if (follow.checked) outputBox.scrollTop = outputBox.scrollHeight;
    }
    const tabs = el("span", {class: "tabs"},
      ["stdout", "stderr"].map((name) => el("button", {class: name === stream ? "active" : "", "data-stream": name,
        onclick: (event) => { stream = name; for (const b of tabs.children) b.classList.toggle("active", b === event.target); showOutput(); }},
        name)));

    const artifactRows = artifacts.map((a) => el("tr", {},
      el("td", {}, el("a", {href: `/api/trials/${encodeURIComponent(trial.id)}/artifacts/${encodeURIComponent(a.sha256 || "")}`,
                           download: a.filename.split("/").pop() || "artifact", class: "artifact"}, a.filename)),
      el("td", {class: "num"}, fmtBytes(a.size)),
      el("td", {class: "mono"}, Object.entries(a.metadata || {}).map(([k, v]) => k + "=" + fmtValue(v)).join(" ")),
      el("td", {}, fmtTime(a.time)),
      el("td", {class: "mono"}, a.trial !== trial.id ? trialLink(a.trial) : "")));

    app.replaceChildren(
      el("h1", {}, "Trial ", el("span", {class: "mono", id: "trial-id"}, trial.id), " ", statusNode, " ", liveDot),
      el("p", {class: "mono", id: "command"}, shellJoin(trial.command)),
      el("div", {class: "cards"},
        el("div", {class: "card"}, el("h2", {}, "Run"), dl([
          ["project", trial.project], ["cwd", trial.cwd], ["tags", (trial.tags || []).join(", ")],
          ["created", fmtTime(trial.created_at)], ["started", fmtTime(trial.started_at)],
          ["ended", fmtTime(trial.ended_at)], ["duration", fmtDuration(trial.duration)],
          ["exit code", trial.exit_code], ["runner", trial.runner && trial.runner.host ? trial.runner.host + " pid " + trial.runner.pid : null]])),
        el("div", {class: "card", id: "options"}, el("h2", {}, "Options"),
          Object.keys(trial.options).length ? dl(Object.entries(trial.options).map(([k, v]) => [k, fmtValue(v)])) : el("p", {class: "muted"}, "none")),
        metricsCard,
        el("div", {class: "card"}, el("h2", {}, "Code"), dl([
          ["repository", code.repository], ["branch", code.branch], ["commit", code.commit],
          ["dirty", code.dirty === undefined ? null : (code.dirty ? "yes" : "no")],
          ["changed", (code.changed_files || []).map((f) => `${f.path} (+${f.added} -${f.removed})`).join(", ")],
          ["untracked", (code.untracked || []).join(", ")], ["script", code.script]])),
        el("div", {class: "card"}, el("h2", {}, "Environment"), dl([
          ["python", env.python], ["executable", env.executable], ["platform", env.platform],
          ["packages", env.packages], ["host", env.hostname], ["user", env.user], ["cpus", env.cpus],
          ["gpus", (env.gpus || []).join(", ")],
          ...Object.entries(env.variables || {}).map(([k, v]) => [k, v])])),
        el("div", {class: "card"}, el("h2", {}, "Lineage"), lineage)),
      el("h2", {}, "Statistics ", countNote),
      chartsBox,
      el("h2", {}, "Output ", tabs, " ", el("label", {}, follow, " follow")),
      outputBox,
      el("h2", {}, "Artifacts"),
      artifacts.length ? el("table", {class: "grid", id: "artifacts"},
        el("tr", {}, el("th", {}, "file"), el("th", {}, "size"), el("th", {}, "metadata"), el("th", {}, "time"), el("th", {}, "from")),
        artifactRows) : el("p", {class: "muted"}, "none"));

    let charts = {};
    let index = series.count;
    let seriesSeq = series.seq;
    function drawCharts(data) {
      chartsBox.replaceChildren();
      charts = {};
      for (const [key, s] of Object.entries(data.series)) {
        charts[key] = chart(chartsBox, key, data.x, [{label: key, x: s.x, y: s.y}]);
      }
      if (!Object.keys(charts).length) chartsBox.append(el("p", {class: "muted"}, "no numeric statistics yet"));
      chartsBox.dataset.complete = String(data.complete);
      countNote.textContent = data.count + " logged" + (data.x ? ", against " + data.x : "") +
        (data.complete ? "" : " (a preview: reading them all…)");
      index = data.count;
      seriesSeq = data.seq;
    }
    drawCharts(series);
    // The full read may have ended between the trial's answer and this one: its metrics.
    if (series.complete && !trial.metrics_complete && series.metrics) {
      showMetrics(series.metrics, true);
    }
    // A long trial is first drawn from a preview: ask again until its full read is done.

    if (!series.complete) {
      const poll = setInterval(async () => {
        let full;
        try { full = await api(`/api/trials/${encodeURIComponent(trial.id)}/series`); } catch (e) { return; }
        if (!full.complete) return;
        clearInterval(poll);
        drawCharts(full);
        showMetrics(full.metrics, true);
      }, 1000);
      onCleanup(() => clearInterval(poll));
    }
    showOutput();
    follow.addEventListener("change", showOutput);

    // Live: the events journalled after the ones shown, pushed by the server.
    const source = new EventSource(`/api/trials/${encodeURIComponent(trial.id)}/live` + query({after: upto}));
    source.onopen = () => liveDot.classList.add("on");
    source.onerror = () => liveDot.classList.remove("on");
    source.addEventListener("events", (message) => {
      let outputChanged = false;
      for (const event of JSON.parse(message.data)) {
        if (event.kind === "statistic") {
          if (seriesSeq !== null && seriesSeq !== undefined && event.seq <= seriesSeq) continue;
          index += 1;
          const data = event.data;
          const x = series.x ? data[series.x] : index;
          if (typeof x !== "number") continue;
          for (const [key, value] of Object.entries(data)) {
            if (typeof value !== "number" || key === series.x) continue;
            if (!charts[key]) {
              chartsBox.querySelector("p.muted")?.remove();
              charts[key] = chart(chartsBox, key, series.x, [{label: key, x: [], y: []}]);
            }
            charts[key].append(0, x, value);
          }
        } else if (event.kind === "stdout" || event.kind === "stderr") {
          if (partial[event.kind]) lines[event.kind].pop();
          lines[event.kind].push(event.line);
          partial[event.kind] = Boolean(event.partial);
          outputChanged = outputChanged || event.kind === stream;
        } else if (event.kind === "status" && event.status) {
          statusNode.replaceWith(statusNode = statusBadge(event.status));
        }
      }
      if (outputChanged) showOutput();
    });
    onCleanup(() => source.close());
  }

  // -- comparison ---------------------------------------------------------------------------

  async function compareView(params) {
    const ids = (params.get("ids") || "").split(",").filter(Boolean);
    const group = params.get("group") || "";
    const data = await api("/api/compare" + query({id: ids, group_except: group ? group.split(",") : [],
                                                   y: params.get("y") ? params.get("y").split(",") : []}));
    const chartsBox = el("div", {class: "charts", id: "charts"});
    const optionNames = data.differing.length ? data.differing : data.options;
    const metricNames = data.ys;
    let table;
    if (data.groups.length) {
      table = el("table", {class: "grid", id: "compare-table"},
        el("tr", {}, el("th", {}, "group"), el("th", {}, "n"),
           metricNames.map((m) => el("th", {}, m + " best (mean ± std)"))),
        data.groups.map((g) => el("tr", {}, el("td", {}, g.label),
          el("td", {class: "num"}, g.n),
          metricNames.map((m) => el("td", {class: "num"}, g.metrics[m]
            ? fmtNumber(g.metrics[m].best_mean) + " ± " + fmtNumber(g.metrics[m].best_std) : "")))));
    } else {
      table = el("table", {class: "grid", id: "compare-table"},
        el("tr", {}, el("th", {}, "trial"), el("th", {}, "status"),
           optionNames.map((o) => el("th", {}, o)), metricNames.map((m) => el("th", {}, m + " best"))),
        data.trials.map((t) => el("tr", {}, el("td", {class: "mono"}, trialLink(t.id)),
          el("td", {}, statusBadge(t.status)),
          optionNames.map((o) => el("td", {class: "num"}, fmtValue(t.options[o]))),
          metricNames.map((m) => el("td", {class: "num"}, t.metrics[m] ? fmtNumber(t.metrics[m].best) : "")))));
    }
    const toggle = el("a", {href: "#/compare" + query({ids: ids.join(","), group: group ? "" : "seed"})},
                      group ? "show trials one by one" : "average seeds (mean ± std)");
    app.replaceChildren(el("h1", {}, "Compare ", String(ids.length), " trials"),
                        el("p", {}, toggle), el("div", {class: "wrap"}, table), chartsBox);
    for (const y of data.ys) chart(chartsBox, y, data.x, data.charts[y]);
    if (!data.ys.length) chartsBox.append(el("p", {class: "muted"}, "these trials have no metric"));
  }

  // -- routing ------------------------------------------------------------------------------

  async function route() {
    for (const fn of cleanups.splice(0)) { try { fn(); } catch (e) { /* a view ending */ } }
    const hash = location.hash || "#/";
    const [path, search] = hash.slice(1).split("?");
    const params = new URLSearchParams(search || "");
    app.replaceChildren(el("p", {class: "muted"}, "loading…"));
    try {
      if (path.startsWith("/trial/")) await trialView(decodeURIComponent(path.slice(7)));
      else if (path === "/compare") await compareView(params);
      else await trialsView(params);
    } catch (error) {
      showError(error);
    }
  }

  window.addEventListener("hashchange", route);
  api("/api/journal").then((info) => {
    document.getElementById("journal").textContent = info.label + " · kleio " + info.version;
  }).catch(() => {});
  route();
})();
