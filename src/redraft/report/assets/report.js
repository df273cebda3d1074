"use strict";
// redraft report: everything is built from the embedded JSON; all text goes in through textContent.
const DATA = JSON.parse(document.getElementById("data").textContent);
const RUNS = DATA.runs;
const SVGNS = "http://www.w3.org/2000/svg";
const PALETTE = ["#3558d4", "#12805c", "#c4320a", "#7a5af8", "#0e9384", "#dd2590", "#b54708", "#475467",
                 "#2e90fa", "#66c61c", "#e04f16", "#9e77ed"];

function h(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (key === "class") node.className = value;
    else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else node.setAttribute(key, value === true ? "" : value);
  }
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}
function s(tag, attrs, ...children) {
  const node = document.createElementNS(SVGNS, tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === null || value === undefined) continue;
    if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else node.setAttribute(key, value);
  }
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}
const pct = (v, d = 1) => (v === null || v === undefined ? "–" : (100 * v).toFixed(d) + "%");
const pts = (v) => (v === null || v === undefined ? "–" : (v >= 0 ? "+" : "") + (100 * v).toFixed(1));
const num = (v, d = 0) => (v === null || v === undefined ? "–" :
  Number(v).toLocaleString("en-US", {minimumFractionDigits: d, maximumFractionDigits: d}));
const oracleFlag = (run) => (run.oracle ? h("span", {class: "oracle-flag", title: "used the answer key (oracle verifier)"}, "ORACLE") : null);
const badge = (ok) => (ok === null || ok === undefined ? h("span", {class: "badge na"}, "?")
  : h("span", {class: "badge " + (ok ? "ok" : "no")}, ok ? "✓ right" : "✗ wrong"));

// one colour per strategy, stable across charts
const strategies = [...new Set(Object.values(RUNS).map((r) => r.strategy))];
const colour = (run) => PALETTE[strategies.indexOf(run.strategy) % PALETTE.length];

// -- header and notes ------------------------------------------------------------------------------------
function renderMeta() {
  const parts = [`database ${DATA.db}`, `generated ${DATA.generated}`, `${Object.keys(RUNS).length} runs`,
                 `paired differences against ${DATA.baseline}`];
  document.getElementById("meta").textContent = parts.join(" · ");
  const notes = h("div", {class: "card notes"},
    h("p", {}, "Accuracy intervals are 95% bootstrap intervals over problems; differences are paired on the problems both runs finished. " +
      "Tokens are completion tokens per problem, all roles together (solver, reviewer, refiner, judge). " +
      "pass@k counts a problem solved if any sample the run drew was right (graded after the fact); " +
      "selection efficiency = (accuracy − first-sample accuracy) / (pass@k − first-sample accuracy)."),
    DATA.any_oracle ? h("p", {}, h("span", {class: "oracle-flag"}, "ORACLE"),
      " runs used the answer key through the oracle verifier: they are ceilings, drawn as hollow diamonds and left out of the Pareto front.") : null,
    ...DATA.notes.map((n) => h("p", {}, n)));
  document.getElementById("notes").append(notes);
}

// -- charts -----------------------------------------------------------------------------------------------
const W = 560, H = 330, M = {left: 52, right: 18, top: 14, bottom: 42};

function scaleLinear(d0, d1, r0, r1) {
  const span = d1 - d0 || 1;
  return (v) => r0 + ((v - d0) / span) * (r1 - r0);
}

function niceTicks(lo, hi, count) {
  const span = hi - lo || 1;
  const step0 = span / count;
  const mag = Math.pow(10, Math.floor(Math.log10(step0)));
  const step = [1, 2, 2.5, 5, 10].map((m) => m * mag).find((st) => span / st <= count) || 10 * mag;
  const ticks = [];
  for (let v = Math.ceil(lo / step) * step; v <= hi + 1e-9; v += step) ticks.push(v);
  return ticks;
}

function accuracyVsTokens(group) {
  const runs = group.runs.map((id) => RUNS[id]).filter((r) => r.problems.length);
  if (!runs.length) return null;
  const tokens = runs.map((r) => Math.max(1, r.completion_tokens || 1));
  let lo = Math.min(...tokens), hi = Math.max(...tokens);
  const useLog = hi / lo > 4;
  let x;
  let ticks;
  if (useLog) {
    lo = Math.pow(10, Math.floor(Math.log10(lo) * 2) / 2);
    hi = Math.pow(10, Math.ceil(Math.log10(hi) * 2) / 2);
    const f = scaleLinear(Math.log10(lo), Math.log10(hi), M.left, W - M.right);
    x = (v) => f(Math.log10(Math.max(v, 1)));
    ticks = [];
    for (let e = Math.floor(Math.log10(lo)); e <= Math.ceil(Math.log10(hi)); e++) {
      for (const m of [1, 2, 5]) { const v = m * Math.pow(10, e); if (v >= lo && v <= hi) ticks.push(v); }
    }
  } else {
    const pad = (hi - lo) * 0.15 || hi * 0.2 || 10;
    lo = Math.max(0, lo - pad); hi = hi + pad;
    x = scaleLinear(lo, hi, M.left, W - M.right);
    ticks = niceTicks(lo, hi, 6);
  }
  const yMax = Math.min(1, Math.max(0.2, Math.ceil((Math.max(...runs.map((r) => r.ci_high)) + 0.05) * 10) / 10));
  const y = scaleLinear(0, yMax, H - M.bottom, M.top);
  const svg = s("svg", {viewBox: `0 0 ${W} ${H}`, class: "acc-tokens", role: "img",
                        "aria-label": "accuracy against completion tokens per problem"});
  const grid = s("g", {class: "grid"});
  const axis = s("g", {class: "axis"});
  for (const t of niceTicks(0, yMax, 5)) {
    grid.append(s("line", {x1: M.left, x2: W - M.right, y1: y(t), y2: y(t)}));
    axis.append(s("text", {x: M.left - 6, y: y(t) + 4, "text-anchor": "end"}, Math.round(100 * t) + "%"));
  }
  for (const t of ticks) {
    grid.append(s("line", {x1: x(t), x2: x(t), y1: M.top, y2: H - M.bottom}));
    axis.append(s("text", {x: x(t), y: H - M.bottom + 15, "text-anchor": "middle"}, num(t)));
  }
  axis.append(s("line", {x1: M.left, x2: W - M.right, y1: H - M.bottom, y2: H - M.bottom}));
  axis.append(s("line", {x1: M.left, x2: M.left, y1: M.top, y2: H - M.bottom}));
  axis.append(s("text", {x: (M.left + W - M.right) / 2, y: H - 6, "text-anchor": "middle"},
                "completion tokens per problem" + (useLog ? " (log scale)" : "")));
  axis.append(s("text", {x: 12, y: (M.top + H - M.bottom) / 2, "text-anchor": "middle",
                         transform: `rotate(-90 12 ${(M.top + H - M.bottom) / 2})`}, "accuracy"));
  svg.append(grid, axis);

  const front = runs.filter((r) => group.pareto.includes(r.run)).sort((a, b) => a.completion_tokens - b.completion_tokens);
  if (front.length) {
    let d = "";
    front.forEach((r, i) => {
      const px = x(r.completion_tokens), py = y(r.accuracy);
      if (i === 0) d += `M${px},${py}`;
      else d += `H${px}V${py}`;
    });
    d += `H${W - M.right}`;
    svg.append(s("path", {class: "front", d}));
  }
  const layer = s("g", {});
  const placed = [];
  for (const r of runs) {
    const px = x(r.completion_tokens), py = y(r.accuracy), c = colour(r);
    layer.append(s("line", {x1: px, x2: px, y1: y(r.ci_low), y2: y(r.ci_high), stroke: c, "stroke-width": 1.2, opacity: 0.55}));
    const title = s("title", {}, `${r.label}${r.oracle ? " [ORACLE]" : ""}\n${r.model}\naccuracy ${pct(r.accuracy)} ` +
      `(${pct(r.ci_low)}–${pct(r.ci_high)})\n${num(r.completion_tokens)} completion tokens/problem` +
      (group.pareto.includes(r.run) ? "\non the Pareto front" : ""));
    const open = () => selectRun(r.run, true);
    let mark;
    if (r.oracle) {
      const k = 7;
      mark = s("path", {class: "point", d: `M${px},${py - k}L${px + k},${py}L${px},${py + k}L${px - k},${py}Z`,
                        fill: "#fff", stroke: "var(--oracle)", "stroke-width": 2, "data-run": r.run, onclick: open}, title);
    } else {
      mark = s("circle", {class: "point", cx: px, cy: py, r: group.pareto.includes(r.run) ? 6.5 : 5, fill: c,
                          stroke: group.pareto.includes(r.run) ? "var(--front)" : "#fff", "stroke-width": 2,
                          "data-run": r.run, onclick: open}, title);
    }
    layer.append(mark);
    // a short label beside the point: right of it, else left, else below; skipped if all would overlap
    const text = (r.label.length > 26 ? r.label.slice(0, 25) + "…" : r.label) + (r.oracle ? " (oracle)" : "");
    const width = text.length * 5.8;
    const spots = [[px + 9, py - 7], [px - 9 - width, py - 7], [px - width / 2, py + 17], [px - width / 2, py - 12], [px - width / 2, py - 24]];
    const free = spots.find(([lx, ly]) => lx >= M.left && lx + width <= W - 2 && ly >= 10 && ly <= H - M.bottom - 2 &&
      !placed.some(([qx, qy, qw]) => lx < qx + qw + 4 && qx < lx + width + 4 && Math.abs(qy - ly) < 12));
    if (free) {
      placed.push([free[0], free[1], width]);
      layer.append(s("text", {class: "label", x: free[0], y: free[1]}, text));
    }
  }
  svg.append(layer);
  const legend = h("div", {class: "legend"},
    [...new Set(runs.map((r) => r.strategy))].map((name) =>
      h("span", {}, h("i", {class: "swatch", style: `background:${PALETTE[strategies.indexOf(name) % PALETTE.length]}`}), name)),
    front.length ? h("span", {}, h("i", {class: "swatch", style: "background:var(--front);border-radius:0;height:3px"}), "Pareto front") : null);
  return h("div", {class: "chart card"}, h("div", {class: "title"}, "Accuracy vs completion tokens per problem"), svg, legend);
}

function accuracyPerRound(group) {
  const runs = group.runs.map((id) => RUNS[id]).filter((r) => r.rounds && r.rounds.length > 1);
  if (!runs.length) return null;
  const depth = Math.max(...runs.map((r) => r.rounds.length));
  const x = scaleLinear(0, Math.max(1, depth - 1), M.left + 10, W - M.right - 10);
  const values = runs.flatMap((r) => r.rounds);
  const yMax = Math.min(1, Math.max(0.2, Math.ceil((Math.max(...values) + 0.05) * 10) / 10));
  const y = scaleLinear(0, yMax, H - M.bottom, M.top);
  const svg = s("svg", {viewBox: `0 0 ${W} ${H}`, class: "acc-rounds", role: "img", "aria-label": "accuracy after each round"});
  const grid = s("g", {class: "grid"}), axis = s("g", {class: "axis"});
  for (const t of niceTicks(0, yMax, 5)) {
    grid.append(s("line", {x1: M.left, x2: W - M.right, y1: y(t), y2: y(t)}));
    axis.append(s("text", {x: M.left - 6, y: y(t) + 4, "text-anchor": "end"}, Math.round(100 * t) + "%"));
  }
  for (let r = 0; r < depth; r++) axis.append(s("text", {x: x(r), y: H - M.bottom + 15, "text-anchor": "middle"}, r === 0 ? "draft" : "round " + r));
  axis.append(s("line", {x1: M.left, x2: W - M.right, y1: H - M.bottom, y2: H - M.bottom}));
  axis.append(s("text", {x: 12, y: (M.top + H - M.bottom) / 2, "text-anchor": "middle",
                         transform: `rotate(-90 12 ${(M.top + H - M.bottom) / 2})`}, "accuracy"));
  svg.append(grid, axis);
  runs.forEach((r, i) => {
    const c = PALETTE[i % PALETTE.length];
    const d = r.rounds.map((a, k) => `${k ? "L" : "M"}${x(k)},${y(a)}`).join("");
    svg.append(s("path", {d, fill: "none", stroke: c, "stroke-width": 2, "stroke-dasharray": r.oracle ? "4 3" : null}));
    r.rounds.forEach((a, k) => svg.append(s("circle", {class: "point", cx: x(k), cy: y(a), r: 4, fill: c, onclick: () => selectRun(r.run, true)},
      s("title", {}, `${r.label}${r.oracle ? " [ORACLE]" : ""}: ${pct(a)} after ${k === 0 ? "the draft" : "round " + k}`))));
  });
  const legend = h("div", {class: "legend"}, runs.map((r, i) =>
    h("span", {onclick: () => selectRun(r.run, true)}, h("i", {class: "swatch", style: `background:${PALETTE[i % PALETTE.length]}`}),
      r.label + (r.oracle ? " (oracle)" : ""))));
  return h("div", {class: "chart card"}, h("div", {class: "title"}, "Accuracy after each refinement round"), svg, legend);
}

function renderCharts() {
  const root = document.getElementById("charts");
  for (const group of DATA.groups) {
    const charts = [accuracyVsTokens(group), accuracyPerRound(group)].filter(Boolean);
    if (!charts.length) continue;
    root.append(h("div", {class: "group"}, h("h2", {}, group.name), h("div", {class: "charts"}, charts)));
  }
}

// a run's part in the experiment, when it is more than a grid cell
function partNote(r) {
  if (r.kind === "pilot") return "pilot: measures one draft's and one scored draft's tokens";
  // one baseline can be matched to several refinement runs: name each, with the n chosen for it
  const matches = (r.matches || []).map((m) => (RUNS[m.to] ? RUNS[m.to].label : m.to) +
    (m.n ? ` (n=${m.n} for ${num(m.target_tokens)} tok)` : ""));
  if (matches.length) return "matched baseline of " + matches.join("; of ");
  return null;
}

// -- the sortable table ----------------------------------------------------------------------------------
const COLUMNS = [
  {key: "label", title: "run", text: true, render: (r) => [r.label, oracleFlag(r), partNote(r) ? h("div", {class: "kind"}, partNote(r)) : null]},
  {key: "task", title: "task", text: true},
  {key: "model", title: "model", text: true},
  {key: "problems", title: "problems", render: (r) => r.problems_count < r.planned ? `${r.problems_count}/${r.planned}` : String(r.problems_count), value: (r) => r.problems_count},
  {key: "accuracy", title: "accuracy", render: (r) => [h("b", {}, pct(r.accuracy)), h("span", {class: "dim"}, ` (${pct(r.ci_low, 0)}–${pct(r.ci_high, 0)})`)]},
  {key: "vs_baseline", title: `vs ${DATA.baseline} (pts)`, render: (r) => r.vs_baseline === null ? "–" : h("span", {class: r.vs_baseline_low > 0 ? "pos" : r.vs_baseline_high < 0 ? "neg" : "", title: `paired on ${r.vs_baseline_shared} problems against ${r.paired_label}`}, `${pts(r.vs_baseline)} (${pts(r.vs_baseline_low)}, ${pts(r.vs_baseline_high)})`)},
  {key: "vs_matched", title: "vs matched SC / BoN", render: (r) => r.matched.length ? r.matched.map((m, i) => [i ? " / " : "", h("span", {class: m.lo > 0 ? "pos" : m.hi < 0 ? "neg" : "", title: `${m.label}: ${pts(m.diff)} (${pts(m.lo)}, ${pts(m.hi)}) on ${m.shared}`}, pts(m.diff))]) : "–", value: (r) => r.matched.length ? r.matched[0].diff : null},
  {key: "completion_tokens", title: "out tok/p", render: (r) => num(r.completion_tokens)},
  {key: "prompt_tokens", title: "in tok/p", render: (r) => num(r.prompt_tokens)},
  {key: "calls", title: "calls/p", render: (r) => num(r.calls, 1)},
  {key: "model_seconds", title: "model s/p", render: (r) => num(r.model_seconds, 1)},
  {key: "pass_at_k", title: "pass@k", render: (r) => r.pass_at_k === null ? "–" : [pct(r.pass_at_k), h("span", {class: "dim"}, ` k≈${num(r.mean_k, 1)}`)]},
  {key: "first_sample_accuracy", title: "first sample", render: (r) => pct(r.first_sample_accuracy)},
  {key: "selection_efficiency", title: "sel. eff.", render: (r) => num(r.selection_efficiency, 2)},
  {key: "flips", title: "R→W / W→R", render: (r) => `${r.right_to_wrong} / ${r.wrong_to_right}`, value: (r) => r.wrong_to_right - r.right_to_wrong},
  {key: "verifier_auroc", title: "verifier AUROC", render: (r) => r.verifier_auroc === null ? "–" : `${num(r.verifier_auroc, 2)} (${r.verifier})`},
];
// one task: its name heads the charts already, so the column would only repeat it
if (DATA.groups.length <= 1) COLUMNS.splice(COLUMNS.findIndex((c) => c.key === "task"), 1);
let sortState = {key: null, dir: 1};
let selectedRun = null;

function renderTable() {
  const table = document.getElementById("runs");
  table.textContent = "";
  const head = h("tr", {}, COLUMNS.map((c) => h("th", {class: (c.text ? "text " : "") + (sortState.key === c.key ? (sortState.dir > 0 ? "sorted-asc" : "sorted-desc") : ""),
    "data-key": c.key, onclick: () => { sortState = {key: c.key, dir: sortState.key === c.key ? -sortState.dir : (c.text ? 1 : -1)}; renderTable(); }}, c.title)));
  let rows = Object.values(RUNS).map((r) => ({...r, problems_count: r.problems.length}));
  if (sortState.key) {
    const col = COLUMNS.find((c) => c.key === sortState.key);
    const get = col.value || ((r) => r[col.key]);
    rows.sort((a, b) => {
      const va = get(a), vb = get(b);
      if (va === null || va === undefined) return 1;
      if (vb === null || vb === undefined) return -1;
      return (typeof va === "string" ? va.localeCompare(vb) : va - vb) * sortState.dir;
    });
  }
  const body = h("tbody", {}, rows.map((r) => h("tr", {"data-run": r.run, class: (r.oracle ? "oracle " : "") + (r.run === selectedRun ? "selected" : ""),
    onclick: () => selectRun(r.run, true)}, COLUMNS.map((c) => h("td", {class: c.text ? "text" : ""}, c.render ? c.render(r) : (r[c.key] ?? "–"))))));
  table.append(h("thead", {}, head), body);
}

// -- run detail: its numbers and its problems -------------------------------------------------------------
function kv(pairs) {
  return h("div", {class: "kv"}, pairs.map(([k, v]) => h("div", {}, h("b", {}, v), k)));
}

function calibrationChart(v) {
  const w = 260, hgt = 190, m = {l: 34, r: 8, t: 8, b: 30};
  const x = scaleLinear(0, 1, m.l, w - m.r), y = scaleLinear(0, 1, hgt - m.b, m.t);
  const svg = s("svg", {viewBox: `0 0 ${w} ${hgt}`, width: w, height: hgt, class: "calibration"});
  svg.append(s("line", {x1: x(0), y1: y(0), x2: x(1), y2: y(1), stroke: "#c9ced6", "stroke-dasharray": "3 3"}));
  for (const t of [0, 0.5, 1]) {
    svg.append(s("text", {x: m.l - 4, y: y(t) + 4, "text-anchor": "end"}, Math.round(t * 100) + "%"));
    svg.append(s("text", {x: x(t), y: hgt - m.b + 13, "text-anchor": "middle"}, t.toFixed(1)));
  }
  svg.append(s("text", {x: (m.l + w - m.r) / 2, y: hgt - 4, "text-anchor": "middle"}, "verifier score (bars: share right)"));
  for (const b of v.bins) {
    if (!b.count) continue;
    // bar: share right among the candidates scored in this bin (at least a sliver, so an all-wrong bin shows)
    const top = Math.min(y(b.accuracy), y(0) - 2);
    svg.append(s("rect", {x: x(b.low) + 2, width: x(b.high) - x(b.low) - 4, y: top, height: y(0) - top,
                          fill: "var(--accent)", opacity: 0.75}, s("title", {}, `scores ${b.low.toFixed(1)}–${b.high.toFixed(1)}: ${b.count} candidates, ${pct(b.accuracy)} right (mean score ${b.score.toFixed(2)})`)));
    svg.append(s("text", {x: (x(b.low) + x(b.high)) / 2, y: top - 4, "text-anchor": "middle"}, `n=${b.count}`));
  }
  return svg;
}

function selectRun(runId, scroll) {
  selectedRun = runId;
  const r = RUNS[runId];
  for (const tr of document.querySelectorAll("#runs tbody tr")) tr.classList.toggle("selected", tr.dataset.run === runId);
  const root = document.getElementById("detail");
  root.textContent = "";
  const options = Object.entries(r.options).map(([k, v]) => `${k}=${v}`).join(", ");
  const card = h("div", {class: "card"},
    h("h2", {}, r.label, oracleFlag(r), h("span", {class: "hint"}, `run ${r.run}`)),
    h("div", {class: "dim"}, `${r.task} · ${r.model} (${r.model_identity}) · ${r.strategy}(${options})` +
      (r.budget !== null && r.budget !== undefined ? ` · budget ${r.budget} tokens/problem` : "") + ` · seed ${r.settings.seed ?? 0}`),
    partNote(r) ? h("div", {class: "dim"}, partNote(r) +
      ((r.matches || []).length === 1 && r.detail && r.detail.n ? `: n = round(${num(r.detail.target_tokens, 1)} target tokens / ${num(r.detail.unit_tokens, 1)} per sample, the ${r.detail.unit})` : "")) : null,
    kv([["accuracy (95% CI)", `${pct(r.accuracy)} (${pct(r.ci_low)}–${pct(r.ci_high)})`],
        [`vs ${DATA.baseline}, paired`, r.vs_baseline === null ? "–" : `${pts(r.vs_baseline)} pts (${pts(r.vs_baseline_low)}, ${pts(r.vs_baseline_high)})`],
        ["pass@k (mean k)", r.pass_at_k === null ? "–" : `${pct(r.pass_at_k)} (${num(r.mean_k, 1)})`],
        ["first-sample accuracy", pct(r.first_sample_accuracy)],
        ["selection efficiency", num(r.selection_efficiency, 2)],
        ["draft accuracy", pct(r.draft_accuracy)],
        ["flips right→wrong / wrong→right", `${r.right_to_wrong} / ${r.wrong_to_right}`],
        ["P(stays right | was right)", pct(r.p_stay_right)],
        ["P(becomes right | was wrong)", pct(r.p_become_right)],
        ["completion / prompt tok per problem", `${num(r.completion_tokens)} / ${num(r.prompt_tokens)}`],
        ["calls, model s, wall s per problem", `${num(r.calls, 1)}, ${num(r.model_seconds, 1)}, ${num(r.wall_seconds, 1)}`],
        ["errors (stopped early)", String(r.errors)]]));
  const roles = Object.entries(r.by_role);
  if (roles.length) {
    card.append(h("h3", {}, "Cost per problem, by role"), h("div", {class: "table-wrap"}, h("table", {class: "roles"},
      h("thead", {}, h("tr", {}, ["role", "calls", "samples", "prompt tok", "completion tok", "model s", "cached calls"].map((t, i) => h("th", {class: i ? "" : "text"}, t)))),
      h("tbody", {}, roles.map(([role, c]) => h("tr", {}, h("td", {class: "text"}, role), h("td", {}, num(c.calls, 2)), h("td", {}, num(c.samples, 2)),
        h("td", {}, num(c.prompt_tokens)), h("td", {}, num(c.completion_tokens)), h("td", {}, num(c.seconds, 2)), h("td", {}, num(c.cached_calls, 2))))))));
  }
  if (r.matched.length) {
    card.append(h("h3", {}, "Against its matched-compute baselines"), h("ul", {}, r.matched.map((m) =>
      h("li", {}, `${pts(m.diff)} pts (${pts(m.lo)}, ${pts(m.hi)}) vs ${m.label} on ${m.shared} problems (${num(RUNS[m.id] ? RUNS[m.id].completion_tokens : null)} tok/p) — `,
        m.hi < 0 ? h("b", {class: "neg"}, "the refinement loses") : m.lo > 0 ? h("b", {class: "pos"}, "the refinement wins") : "no clear difference"))));
  }
  for (const v of r.verifiers) {
    card.append(h("h3", {}, `Verifier ${v.name}: AUROC ${num(v.auroc, 3)}, ECE ${num(v.ece, 3)}, Brier ${num(v.brier, 3)} on ${v.pairs} scored candidates (${v.positives} right)`),
      calibrationChart(v));
  }
  card.append(h("h3", {}, `Problems (${r.problems.length}) `, h("span", {class: "hint"}, "click one for its full trace")));
  const cols = ["#", "problem", "answer", "key", "grade", "draft", "any sample", "samples", "out tok", "calls", "model s", "note"];
  card.append(h("div", {class: "table-wrap"}, h("table", {class: "problems"},
    h("thead", {}, h("tr", {}, cols.map((t, i) => h("th", {class: i < 4 || i === 11 ? "text" : ""}, t)))),
    h("tbody", {}, r.problems.map((p) => h("tr", {"data-problem": p.id, onclick: () => openTrace(runId, p.id)},
      h("td", {class: "text"}, String(p.pos)), h("td", {class: "text"}, p.id), h("td", {class: "text"}, p.answer ?? "—"),
      h("td", {class: "text"}, p.key ?? "?"), h("td", {}, h("span", {class: p.correct ? "ok" : "no"}, p.correct ? "✓" : "✗")),
      h("td", {}, p.draft === null ? "–" : p.draft ? "✓" : "✗"), h("td", {}, p.any === null ? "–" : p.any ? "✓" : "✗"),
      h("td", {}, String(p.samples)), h("td", {}, num(p.tok)), h("td", {}, String(p.calls)), h("td", {}, num(p.secs, 1)),
      h("td", {class: "text dim"}, (p.error || p.detail || "").slice(0, 70))))))));
  root.append(card);
  if (scroll) root.scrollIntoView({behavior: "smooth", block: "start"});
}

// -- a problem's full trace -------------------------------------------------------------------------------
const traceCache = {};
async function loadTraces(runId) {
  if (traceCache[runId]) return traceCache[runId];
  const node = [...document.querySelectorAll("script.trace")].find((el) => el.dataset.run === runId);
  if (!node) throw new Error("no trace data for run " + runId);
  const bytes = Uint8Array.from(atob(node.textContent.trim()), (ch) => ch.charCodeAt(0));
  const stream = new Blob([bytes]).stream().pipeThrough(new DecompressionStream("gzip"));
  traceCache[runId] = JSON.parse(await new Response(stream).text());
  return traceCache[runId];
}

function preBlock(text) { return h("pre", {}, text ?? ""); }
function lastPrompt(messages) {
  return (messages || []).map((m) => `[${m.role}]\n${m.content}`).join("\n\n");
}

function renderEvent(ev, index) {
  const type = ev.type;
  if (type === "call") {
    const head = h("div", {class: "head"}, `#${index} ${ev.role}`, h("span", {class: "dim"},
      ` · ${ev.label || "call"} · n=${ev.n} · T=${ev.temperature} · ${ev.prompt_tokens}+${ev.completion_tokens} tok · ${num(ev.seconds, 2)} s` + (ev.cached ? " · cached" : "")));
    const outputs = (ev.outputs || []).map((text, i) => h("div", {class: "sample"},
      h("div", {class: "tag"}, (ev.outputs.length > 1 ? `sample ${i} ` : "") ,
        ev._grades ? [h("span", {class: "dim"}, "answer "), h("b", {}, ev._answers ? (ev._answers[i] ?? "none") : "?"), " ", badge(ev._grades[i])] : null,
        ev.finish && ev.finish[i] === "length" ? h("span", {class: "dim"}, " (cut at max_tokens)") : null),
      preBlock(text)));
    return h("div", {class: "event call"}, head, h("details", {}, h("summary", {}, "prompt"), preBlock(lastPrompt(ev.messages))), outputs);
  }
  if (type === "round") {
    const cands = ev.candidates || [];
    const table = h("table", {class: "cands"}, h("thead", {}, h("tr", {}, ["#", "origin", "answer", "grade", "score", "critique", "solution"].map((t) => h("th", {}, t)))),
      h("tbody", {}, cands.map((c, i) => h("tr", {},
        h("td", {}, String(i)), h("td", {}, `${c.origin ?? ""} r${c.round ?? ""}`), h("td", {}, h("b", {}, c.answer ?? "none")),
        h("td", {}, ev._grades ? badge(ev._grades[i]) : "–"),
        h("td", {}, ev.scores && ev.scores[i] !== null && ev.scores[i] !== undefined ? Number(ev.scores[i]).toFixed(2) : "–"),
        h("td", {}, ev.critiques && ev.critiques[i] ? h("details", {}, h("summary", {}, "critique"), preBlock(ev.critiques[i])) : "–"),
        h("td", {}, h("details", {}, h("summary", {}, "text"), preBlock(c.text)))))));
    const extra = Object.fromEntries(Object.entries(ev).filter(([k]) => !["type", "round", "candidates", "scores", "critiques", "decision", "answer"].includes(k) && !k.startsWith("_")));
    return h("div", {class: "event round"}, h("div", {class: "head"}, `Round ${ev.round}`, h("span", {class: "dim"}, ev.decision ? ` · ${ev.decision}` : ""),
      "answer" in ev || "_answer_grade" in ev ? [h("span", {class: "dim"}, " · answer after this round: "), h("b", {}, ev.answer ?? ev._answer ?? "none"), "answer" in ev ? null : h("span", {class: "dim"}, " (majority)"), " ", badge(ev._answer_grade)] : null),
      table, Object.keys(extra).length ? h("details", {}, h("summary", {}, "more"), preBlock(JSON.stringify(extra, null, 1))) : null);
  }
  if (type === "final") {
    return h("div", {class: "event final"}, h("div", {class: "head"}, `Final answer: `, h("b", {}, ev.answer ?? "none"),
      ev.round !== undefined ? h("span", {class: "dim"}, ` (from round ${ev.round})`) : null));
  }
  const data = Object.fromEntries(Object.entries(ev).filter(([k]) => k !== "type" && !k.startsWith("_")));
  return h("div", {class: "event other"}, h("div", {class: "head"}, `#${index} ${type}`),
    ev._grades ? h("div", {class: "tag"}, "candidates: ", ev._grades.map((g) => badge(g))) : null,
    preBlock(Object.entries(data).map(([k, v]) => `${k}: ${typeof v === "string" ? v : JSON.stringify(v)}`).join("\n")));
}

async function openTrace(runId, problemId) {
  const overlay = document.getElementById("overlay");
  const box = document.getElementById("trace");
  const r = RUNS[runId];
  box.textContent = "loading…";
  overlay.hidden = false;
  let t;
  try {
    t = (await loadTraces(runId))[problemId];
  } catch (err) {
    box.textContent = "could not open the trace: " + err;
    return;
  }
  box.textContent = "";
  if (!r || !t) {  // a link (or an edited address) to a run or problem this page does not have
    box.append(h("button", {class: "close", onclick: closeTrace, title: "close (Esc)"}, "close ✕"),
      h("p", {}, `no problem ${problemId} in run ${runId}` + (r ? ` (${r.label}); pick one from its table` : "")));
    return;
  }
  const roles = Object.entries(t.cost || {}).map(([role, c]) => `${role} ${c.calls} calls ${c.completion_tokens} tok`).join(" · ");
  box.append(h("div", {},
    h("button", {class: "close", onclick: closeTrace, title: "close (Esc)"}, "close ✕"),
    h("h2", {}, `Problem ${problemId}`, h("span", {class: "hint"}, `${r.label} · run ${runId}`), oracleFlag(r)),
    h("div", {class: "question"}, t.question ?? "(question not available: the task could not be loaded)"),
    h("div", {class: "verdict"},
      h("div", {}, "final answer ", h("b", {}, t.answer ?? "none")),
      h("div", {}, "key ", h("b", {}, t.key ?? "?")),
      h("div", {}, "grade ", badge(t.correct), h("span", {class: "dim"}, t.detail ? ` ${t.detail}` : "")),
      h("div", {class: "dim"}, roles + ` · wall ${num(t.wall, 1)} s`)),
    t.error ? h("div", {class: "no"}, t.error) : null,
    h("h3", {}, `Trace (${t.events.length} events)`),
    t.events.map((ev, i) => renderEvent(ev, i)),
    h("details", {}, h("summary", {}, "final text returned"), preBlock(t.text))));
  history.replaceState(null, "", `#run=${encodeURIComponent(runId)}&problem=${encodeURIComponent(problemId)}`);
}

function closeTrace() {
  document.getElementById("overlay").hidden = true;
  if (selectedRun) history.replaceState(null, "", `#run=${encodeURIComponent(selectedRun)}`);
}

document.getElementById("overlay").addEventListener("click", (e) => { if (e.target.id === "overlay") closeTrace(); });
document.addEventListener("keydown", (e) => { if (e.key === "Escape") closeTrace(); });

renderMeta();
renderCharts();
renderTable();
(function restore() {
  const params = new URLSearchParams(location.hash.slice(1));
  const run = params.get("run");
  if (run && RUNS[run]) {
    selectRun(run, false);
    if (params.get("problem")) openTrace(run, params.get("problem"));
  }
})();
