// Downbeat's page: the graph by layers, live through server-sent events, and the panels of a
// task, the run and the context. Plain JavaScript, no build step; every figure comes from the
// JSON API (docs/web.md).
"use strict";

const W = 190, H = 38, GAP_X = 70, GAP_Y = 10, PAD = 30;
const COLLAPSE_ABOVE = 500;
// Above this many shown nodes only those in and around the window are drawn (again as the
// view moves), so a graph of any size opens as fast as a small one.
const CULL_ABOVE = 1500;

const S = {
  graph: null, byId: new Map(), children: new Map(), collapsed: new Set(),
  flagged: new Set(), pos: new Map(), selected: null, lastSeq: 0,
  es: null, view: { x: 0, y: 0, k: 1 }, output: null, tab: "task",
};

const $ = (id) => document.getElementById(id);
const esc = (s) => String(s ?? "").replace(/[&<>"']/g, (c) =>
  ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" }[c]));
const cut = (s, n) => (s.length > n ? s.slice(0, n - 1) + "…" : s);

async function api(path, opts) {
  const r = await fetch(path, Object.assign({ credentials: "same-origin" }, opts || {}));
  const body = await r.json().catch(() => ({}));
  if (!r.ok) {
    const e = body.error || {};
    const err = new Error(e.message || r.statusText);
    err.status = r.status; err.hint = e.hint;
    throw err;
  }
  return body;
}

function toast(msg, error) {
  const t = $("toast");
  t.textContent = msg; t.className = "toast" + (error ? " error" : ""); t.hidden = false;
  clearTimeout(toast.timer);
  toast.timer = setTimeout(() => { t.hidden = true; }, error ? 6000 : 2500);
}

function notice(msg) { const n = $("notice"); n.textContent = msg || ""; n.hidden = !msg; }

async function steer(path, body) {
  try {
    const r = await api(path, {
      method: "POST", headers: { "Content-Type": "application/json" },
      body: JSON.stringify(body || {}),
    });
    toast(r.message);
    refreshSoon(100);
    return r;
  } catch (e) {
    toast(e.message + (e.hint ? " — " + e.hint : ""), true);
    if (e.status === 401) notice("Steering needs the token: open the address `downbeat serve` printed.");
    return null;
  }
}

// ---- the graph --------------------------------------------------------------------------

async function loadGraph() {
  let g;
  try { g = await api("/api/graph"); } catch (e) {
    if (e.status === 401) notice("This server needs its token: open the address `downbeat serve` printed.");
    else toast("cannot load the graph: " + e.message, true);
    return false;
  }
  const first = !S.graph;
  S.graph = g;
  S.byId = new Map(g.nodes.map((n) => [n.id, n]));
  S.children = new Map();
  for (const n of g.nodes) {
    if (n.parent && S.byId.has(n.parent)) {
      if (!S.children.has(n.parent)) S.children.set(n.parent, []);
      S.children.get(n.parent).push(n.id);
    }
  }
  if (first) {
    if (g.nodes.length > COLLAPSE_ABOVE) for (const n of g.nodes) if (n.container) S.collapsed.add(n.id);
    S.lastSeq = Math.max(S.lastSeq, g.seq);
  }
  $("project").textContent = g.project;
  document.title = "Downbeat · " + g.project;
  header();
  draw();
  if (first) fit();
  if (first) document.body.dataset.readyMs = String(Math.round(performance.now()));
  document.body.dataset.ready = "1";
  return true;
}

function header() {
  const g = S.graph; if (!g) return;
  const pct = g.total ? Math.round((100 * g.done) / g.total) : 0;
  $("progress-bar").style.width = pct + "%";
  $("progress-text").textContent = `${g.done}/${g.total} done (${pct}%)`;
  $("counts").innerHTML = Object.entries(g.counts)
    .map(([k, v]) => `<span><i class="pill st-${esc(k)}">${esc(k)}</i> ${v}</span>`).join("");
  const held = g.holds.length;
  $("holds").hidden = !held;
  $("holds").textContent = held ? `paused (${held} hold${held > 1 ? "s" : ""})` : "";
  $("unpause").hidden = !held;
}

// The task shown for `id`: itself, or its nearest collapsed ancestor.
function shown(id) {
  let top = id, cur = S.byId.get(id), guard = 0;
  while (cur && cur.parent && guard++ < 10000) {
    if (S.collapsed.has(cur.parent)) top = cur.parent;
    cur = S.byId.get(cur.parent);
  }
  return top;
}

function draw() {
  const g = S.graph; if (!g) return;
  const visible = g.nodes.filter((n) => shown(n.id) === n.id);
  const rows = [];
  S.pos = new Map();
  for (const n of visible) {
    const r = rows[n.layer] || 0; rows[n.layer] = r + 1;
    S.pos.set(n.id, { x: PAD + n.layer * (W + GAP_X), y: PAD + 18 + r * (H + GAP_Y) });
  }
  const maxRows = Math.max(1, ...rows.filter((x) => x !== undefined));
  let bands = "";
  for (let l = 0; l < g.layers; l++) {
    const x = PAD + l * (W + GAP_X) - 8;
    bands += `<rect class="layer-band" x="${x}" y="${PAD - 4}" width="${W + 16}" height="${maxRows * (H + GAP_Y) + 26}" rx="6"/>` +
      `<text class="layer-label" x="${x + 8}" y="${PAD + 10}">wave ${l + 1}</text>`;
  }
  $("layers").innerHTML = bands;
  S.visible = visible;
  S.drawn = null;
  drawNodes();
}

// The part of the graph (in its own coordinates) the window shows, with one window's margin
// around it; null when everything is drawn.
function windowBox() {
  if (S.visible.length <= CULL_ABOVE) return null;
  const svg = $("graph"), v = S.view;
  const w = svg.clientWidth / v.k, h = svg.clientHeight / v.k;
  const x = -v.x / v.k, y = -v.y / v.k;
  return { x0: x - w, x1: x + 2 * w, y0: y - h, y1: y + 2 * h };
}

function drawNodes() {
  const g = S.graph, box = windowBox();
  const inBox = (p) => !box || (p.x + W >= box.x0 && p.x <= box.x1 && p.y + H >= box.y0 && p.y <= box.y1);
  const key = box ? [box.x0, box.y0, box.x1, box.y1].map((z) => Math.round(z / 200)).join() : "all";
  if (S.drawn === key) return;
  S.drawn = key;
  let html = "";
  for (const n of S.visible) {
    const p = S.pos.get(n.id);
    if (!inBox(p)) continue;
    const cls = ["node", "st-" + n.status];
    if (n.critical) cls.push("critical");
    if (n.container) cls.push("container");
    if (S.flagged.has(n.id)) cls.push("flagged");
    if (g.holds.some((h) => h.task === n.id)) cls.push("held");
    if (S.selected === n.id) cls.push("selected");
    const meta = n.container
      ? `${S.collapsed.has(n.id) ? "▸" : "▾"} ${n.done}/${n.total} · ${n.id}`
      : `${n.id}${n.role ? " · " + n.role : ""} · ${n.status}`;
    html += `<g class="${cls.join(" ")}" data-id="${n.id}" data-layer="${n.layer}" data-status="${esc(n.status)}" transform="translate(${p.x},${p.y})">` +
      `<title>${esc(n.title)}</title><rect class="box" width="${W}" height="${H}"/>` +
      `<rect class="bar" width="5" height="${H}"/>` +
      `<text x="12" y="15">${esc(cut(n.title, 28))}</text><text class="meta" x="12" y="30">${esc(meta)}</text></g>`;
  }
  $("nodes").innerHTML = html;
  drawEdges(inBox);
}

function drawEdges(inBox) {
  let d = "", c = "";
  const seen = new Set();
  for (const e of S.graph.edges) {
    if (e.kind !== "blocks") continue;
    const a = shown(e.from), b = shown(e.to);
    if (a === b || seen.has(a + ">" + b)) continue;
    seen.add(a + ">" + b);
    const p = S.pos.get(a), q = S.pos.get(b);
    if (!p || !q || !(inBox(p) || inBox(q))) continue;
    const x1 = p.x + W, y1 = p.y + H / 2, x2 = q.x, y2 = q.y + H / 2, mx = (x1 + x2) / 2;
    const seg = `M${x1},${y1}C${mx},${y1} ${mx},${y2} ${x2},${y2}`;
    const na = S.byId.get(a), nb = S.byId.get(b);
    if (na && nb && na.critical && nb.critical) c += seg; else d += seg;
  }
  $("edges").setAttribute("d", d);
  $("critical-edges").setAttribute("d", c);
}

function applyView() {
  const v = S.view;
  $("viewport").setAttribute("transform", `translate(${v.x},${v.y}) scale(${v.k})`);
  if (S.visible && S.visible.length > CULL_ABOVE && !applyView.queued) {
    applyView.queued = true;
    requestAnimationFrame(() => { applyView.queued = false; drawNodes(); });
  }
}

function fit() {
  const svg = $("graph"), box = svg.getBoundingClientRect();
  const g = S.graph; if (!g || !box.width) return;
  let w = 0, h = 0;
  for (const p of S.pos.values()) { w = Math.max(w, p.x + W); h = Math.max(h, p.y + H); }
  // Whole graph when it fits at a readable size; else readable from the first wave on (pan
  // and zoom for the rest).
  const whole = Math.min(box.width / (w + PAD), box.height / (h + PAD));
  const k = Math.min(1.2, Math.max(fit.whole ? 0.02 : 0.55, whole));
  fit.whole = false;
  S.view = { x: 0, y: 0, k }; applyView();
  if (S.visible && S.visible.length > CULL_ABOVE) drawNodes();
}

function zoom(f, cx, cy) {
  const v = S.view, k = Math.min(4, Math.max(0.03, v.k * f));
  v.x = cx - ((cx - v.x) * k) / v.k; v.y = cy - ((cy - v.y) * k) / v.k; v.k = k; applyView();
}

function wireGraph() {
  const svg = $("graph");
  let drag = null, moved = false;
  svg.addEventListener("wheel", (e) => {
    e.preventDefault();
    const r = svg.getBoundingClientRect();
    zoom(e.deltaY < 0 ? 1.15 : 1 / 1.15, e.clientX - r.left, e.clientY - r.top);
  }, { passive: false });
  svg.addEventListener("mousedown", (e) => { drag = { x: e.clientX, y: e.clientY, vx: S.view.x, vy: S.view.y }; moved = false; });
  window.addEventListener("mousemove", (e) => {
    if (!drag) return;
    const dx = e.clientX - drag.x, dy = e.clientY - drag.y;
    if (Math.abs(dx) + Math.abs(dy) > 3) { moved = true; svg.classList.add("dragging"); }
    S.view.x = drag.vx + dx; S.view.y = drag.vy + dy; applyView();
  });
  window.addEventListener("mouseup", () => { drag = null; svg.classList.remove("dragging"); });
  svg.addEventListener("click", (e) => {
    if (moved) return;
    const g = e.target.closest(".node"); if (!g) return;
    select(g.dataset.id);
  });
  svg.addEventListener("dblclick", (e) => {
    const g = e.target.closest(".node"); if (!g) return;
    const id = g.dataset.id;
    if (!S.children.has(id)) return;
    if (S.collapsed.has(id)) S.collapsed.delete(id); else S.collapsed.add(id);
    draw();
  });
  $("fit").onclick = () => { fit.whole = true; fit(); };
  $("zoom-in").onclick = () => zoom(1.25, svg.clientWidth / 2, svg.clientHeight / 2);
  $("zoom-out").onclick = () => zoom(0.8, svg.clientWidth / 2, svg.clientHeight / 2);
  $("expand").onclick = () => { S.collapsed.clear(); draw(); };
  $("collapse").onclick = () => { for (const id of S.children.keys()) S.collapsed.add(id); draw(); };
}

// ---- live changes -----------------------------------------------------------------------

let refreshTimer = null;
function refreshSoon(ms) {
  clearTimeout(refreshTimer);
  refreshTimer = setTimeout(async () => {
    await loadGraph();
    if (S.tab === "run") loadRun();
    if (S.tab === "context") loadContext();
    if (S.selected) loadTask(S.selected, true);
  }, ms);
}

function setConn(state) { const c = $("conn"); c.dataset.state = state; c.textContent = state; }

function connect() {
  if (S.es) S.es.close();
  const es = new EventSource("/api/events?after=" + S.lastSeq);
  S.es = es;
  es.addEventListener("hello", () => setConn("live"));
  es.onmessage = (m) => { try { onChange(JSON.parse(m.data)); } catch (_) { /* not ours */ } };
  es.onerror = () => {
    setConn("reconnecting");
    // The browser retries by itself (sending the last id); a refused stream is closed for
    // good, so start a new one from the last change seen.
    if (es.readyState === EventSource.CLOSED) setTimeout(() => { if (S.es === es) connect(); }, 1000);
  };
}

function onChange(c) {
  if (c.seq <= S.lastSeq) return;
  S.lastSeq = c.seq;
  activity(c);
  const n = S.byId.get(c.entity);
  if (c.action === "task.status" && n && !n.container && c.status && c.status !== "pending") {
    n.status = c.status;
    const el = document.querySelector(`.node[data-id="${c.entity}"]`);
    if (el) {
      el.setAttribute("class", el.getAttribute("class").replace(/\bst-[a-z_]+/, "st-" + c.status));
      el.dataset.status = c.status;
      const meta = el.querySelector("text.meta");
      if (meta) meta.textContent = `${n.id}${n.role ? " · " + n.role : ""} · ${n.status}`;
    }
  }
  if (c.action === "flag.raised") S.flagged.add(c.entity);
  if (S.selected === c.entity) loadTask(c.entity, true);
  refreshSoon(c.action === "task.status" ? 1200 : 300);
}

function activity(c) {
  const li = document.createElement("li");
  li.dataset.seq = c.seq;
  li.innerHTML = `<span class="act">${esc(c.at.slice(11, 19))} ${esc(c.action)}</span> ${esc(c.entity)}` +
    (c.status ? ` → <b>${esc(c.status)}</b>` : "") + (c.text ? ` <span class="muted">${esc(cut(c.text, 80))}</span>` : "") +
    ` <span class="muted">by ${esc(c.actor)}</span>`;
  const list = $("activity");
  list.insertBefore(li, list.firstChild);
  while (list.children.length > 1000) list.removeChild(list.lastChild);
}

// ---- panels -----------------------------------------------------------------------------

function tab(name) {
  S.tab = name;
  for (const b of document.querySelectorAll(".tabs button")) b.classList.toggle("on", b.dataset.tab === name);
  for (const t of document.querySelectorAll(".tab")) t.classList.toggle("on", t.id === "tab-" + name);
  if (name === "run") loadRun();
  if (name === "context") loadContext();
}

function select(id) {
  S.selected = id;
  for (const el of document.querySelectorAll(".node.selected")) el.classList.remove("selected");
  const el = document.querySelector(`.node[data-id="${id}"]`);
  if (el) el.classList.add("selected");
  tab("task");
  loadTask(id, false);
}

async function loadTask(id, quiet) {
  let t;
  try { t = await api("/api/tasks/" + encodeURIComponent(id)); } catch (e) {
    if (!quiet) $("tab-task").innerHTML = `<p class="muted">${esc(e.message)}</p>`;
    return;
  }
  if (S.selected !== id) return;
  const open = $("tab-task").querySelector("details.prompt")?.open;
  const node = S.byId.get(id);
  const status = node ? node.status : t.status;
  let h = `<h2>${esc(t.title)}</h2><p><span class="pill st-${esc(status)}">${esc(status)}</span> ` +
    `<code>${esc(t.id)}</code>${t.key ? " · " + esc(t.key) : ""}${t.role ? " · " + esc(t.role) : ""} · ${esc(t.priority)} · effort ${t.effort}</p>`;
  h += `<div class="actions">`;
  if (status === "ready" && S.graph && S.graph.can_run) h += `<button data-act="run">Run now</button>`;
  if (["failed", "blocked", "cancelled", "completed", "skipped"].includes(t.status)) h += `<button data-act="retry">Retry</button>`;
  if (!["completed", "cancelled", "skipped"].includes(t.status)) h += `<button data-act="cancel" class="danger">Cancel</button>`;
  h += `</div>`;
  if (t.description) h += `<p>${esc(t.description)}</p>`;
  if (t.result) h += `<h3>Result</h3><pre class="light">${esc(t.result)}</pre>`;
  if (t.depends_on.length || t.dependents.length)
    h += `<h3>Dependencies</h3><p>waits on: ${t.depends_on.map(link).join(", ") || "—"}<br>needed by: ${t.dependents.map(link).join(", ") || "—"}</p>`;
  if (t.attempts.length) {
    h += `<h3>Attempts</h3><table><tr><th>#</th><th>outcome</th><th>time</th><th>tokens</th><th>cost</th></tr>`;
    for (const a of t.attempts) {
      const tok = (a.tokens_prompt ?? "") === "" ? "" : `${a.tokens_prompt}+${a.tokens_completion ?? 0}`;
      h += `<tr><td>${a.number}</td><td>${esc(a.outcome || "running")}${a.error ? `<br><span class="muted">${esc(cut(a.error, 160))}</span>` : ""}</td>` +
        `<td>${a.duration_ms != null ? (a.duration_ms / 1000).toFixed(1) + " s" : "…"}</td><td>${tok}</td>` +
        `<td>${a.cost_usd != null ? "$" + a.cost_usd.toFixed(4) : ""}</td></tr>`;
    }
    h += `</table><h3>Output</h3><pre id="output"></pre>`;
  }
  if (t.git) h += `<h3>Git</h3><p><code>${esc(t.git.branch)}</code> · ${esc(t.git.state)} · ${t.git.files} file(s) +${t.git.insertions} −${t.git.deletions}</p>` +
    (t.git.head ? `<details class="diff"><summary>Diff</summary><pre class="light" id="diff">loading…</pre></details>` : "");
  if (t.artifacts.length) h += `<h3>Artifacts</h3><ul class="plain">${t.artifacts.map((a) => `<li><code>${esc(a.path)}</code> <span class="muted">${a.size ?? ""} B</span></li>`).join("")}</ul>`;
  if (t.prompt) h += `<details class="prompt"${open ? " open" : ""}><summary>Prompt</summary><pre class="light">${esc(t.prompt)}</pre></details>`;
  if (t.events.length) h += `<h3>History</h3><ul class="plain">${t.events.map((c) => `<li><span class="muted">${esc(c.at)}</span> ${esc(c.action)}${c.status ? " → " + esc(c.status) : ""} <span class="muted">by ${esc(c.actor)}</span></li>`).join("")}</ul>`;
  const keep = S.output && S.output.id === id ? S.output : null;
  $("tab-task").innerHTML = h;
  for (const b of $("tab-task").querySelectorAll("button[data-act]"))
    b.onclick = () => steer(`/api/tasks/${encodeURIComponent(id)}/${b.dataset.act}`);
  for (const a of $("tab-task").querySelectorAll("a[data-id]"))
    a.onclick = (e) => { e.preventDefault(); select(a.dataset.id); };
  if (t.attempts.length) followOutput(id, t.attempts[t.attempts.length - 1].number, keep);
  const diff = $("tab-task").querySelector("details.diff");
  if (diff) diff.addEventListener("toggle", async () => {
    if (!diff.open) return;
    try { $("diff").textContent = (await api(`/api/tasks/${encodeURIComponent(id)}/diff`)).diff || "(no change)"; }
    catch (e) { $("diff").textContent = e.message; }
  }, { once: true });
}

const link = (id) => `<a href="#" data-id="${esc(id)}">${esc(id)}</a>`;

// Follows the latest attempt's output while the task panel shows it.
function followOutput(id, attempt, keep) {
  const pre = $("output");
  if (keep && keep.attempt === attempt) { pre.textContent = keep.text; }
  else { if (S.output) clearTimeout(S.output.timer); S.output = { id, attempt, next: 0, text: "", ended: false, timer: null }; }
  const o = S.output;
  pre.scrollTop = pre.scrollHeight;
  if (o.timer || o.ended) return;
  const step = async () => {
    o.timer = null;
    if (S.output !== o || S.selected !== id) return;
    try {
      const r = await api(`/api/tasks/${encodeURIComponent(id)}/output?attempt=${attempt}&from=${o.next}`);
      o.next = r.next; o.ended = r.ended;
      if (r.lines.length) {
        o.text += r.lines.join("\n") + "\n";
        const p = $("output");
        if (p) { p.textContent = o.text; p.scrollTop = p.scrollHeight; }
      }
    } catch (_) { /* not yet started, or gone: try again */ }
    if (!o.ended) o.timer = setTimeout(step, 400);
  };
  step();
}

async function loadRun() {
  let r;
  try { r = await api("/api/run"); } catch (e) { $("tab-run").innerHTML = `<p class="muted">${esc(e.message)}</p>`; return; }
  let h = `<h2>Progress</h2><p>${r.done}/${r.total} done · ${Object.entries(r.counts).map(([k, v]) => `${esc(k)} ${v}`).join(" · ")}</p>`;
  h += `<h3>Throughput and parallelism (per minute)</h3>` + chart(r.series);
  h += `<h3>Failures</h3>`;
  h += r.failures.length ? `<ul class="plain">${r.failures.map((f) => `<li>${link(f.id)} ${esc(f.title)} <span class="muted">(${f.attempts} attempt(s))</span><pre>${esc(f.error)}</pre></li>`).join("")}</ul>` : `<p class="muted">none</p>`;
  h += `<h3>Workers</h3>`;
  h += r.workers.length ? `<table><tr><th>name</th><th>host</th><th>slots</th><th>heartbeat</th><th>running</th></tr>${r.workers.map((w) => `<tr><td>${esc(w.name)} ${w.alive ? "" : "<span class='muted'>(gone)</span>"}</td><td>${esc(w.host)}</td><td>${w.slots}</td><td>${esc(w.heartbeat.slice(11))}</td><td>${w.running.map(link).join(" ")}</td></tr>`).join("")}</table>` : `<p class="muted">no registered workers</p>`;
  $("tab-run").innerHTML = h;
  for (const a of $("tab-run").querySelectorAll("a[data-id]")) a.onclick = (e) => { e.preventDefault(); select(a.dataset.id); };
}

function chart(series) {
  if (!series.length) return `<p class="muted">nothing has happened yet</p>`;
  const w = 380, h = 110, n = series.length, bw = w / n;
  const top = Math.max(1, ...series.map((p) => Math.max(p.completed, p.running)));
  let bars = "", line = "";
  series.forEach((p, i) => {
    const bh = (p.completed / top) * (h - 10);
    bars += `<rect class="done" x="${(i * bw).toFixed(1)}" y="${(h - bh).toFixed(1)}" width="${Math.max(1, bw - 1).toFixed(1)}" height="${bh.toFixed(1)}"><title>${esc(p.at)}: ${p.completed} completed, ${p.running} running</title></rect>`;
    line += `${i ? "L" : "M"}${(i * bw + bw / 2).toFixed(1)},${(h - (p.running / top) * (h - 10)).toFixed(1)}`;
  });
  return `<svg class="chart" viewBox="0 0 ${w} ${h}" preserveAspectRatio="none">${bars}<path class="par" d="${line}"/></svg>` +
    `<p class="muted">bars: tasks completed · line: most running at once · max ${top}</p>`;
}

async function loadContext() {
  let c;
  try { c = await api("/api/context"); } catch (e) { $("tab-context").innerHTML = `<p class="muted">${esc(e.message)}</p>`; return; }
  const flagged = new Set(c.flags.filter((f) => f.state !== "handled").map((f) => f.task));
  const changed = flagged.size !== S.flagged.size || [...flagged].some((t) => !S.flagged.has(t));
  S.flagged = flagged;
  if (changed) draw();
  let h = `<h3>Objectives</h3>` + (c.objectives.length ? `<ul class="plain">${c.objectives.map((o) => `<li><b>${esc(o.id)}</b> ${esc(o.title)} <span class="muted">${o.done}/${o.total}</span></li>`).join("")}</ul>` : `<p class="muted">none</p>`);
  h += `<h3>Holds</h3>` + (c.holds.length ? `<ul class="plain">${c.holds.map((x) => `<li>hold ${x.id}: ${esc(x.reason)} <span class="muted">by ${esc(x.by)}</span> <button data-hold="${x.id}">Release</button></li>`).join("")}</ul>` : `<p class="muted">none</p>`);
  h += `<h3>Flags</h3>` + (c.flags.length ? `<ul class="plain">${c.flags.map((f) => `<li><b>${esc(f.flag)}</b> by ${link(f.task)} <span class="pill st-${f.state === "handled" ? "completed" : f.state === "raised" ? "failed" : "waiting"}">${esc(f.state)}</span>` +
    `${f.detail ? " — " + esc(f.detail) : ""}${f.follow_up ? ` · follow-up ${link(f.follow_up)}` : ""}<br><span class="muted">${esc(f.note)}</span></li>`).join("")}</ul>` : `<p class="muted">none</p>`);
  h += `<h3>Decisions in force</h3>` + notes(c.decisions);
  h += `<h3>Recent insights</h3>` + notes(c.insights);
  $("tab-context").innerHTML = h;
  for (const b of $("tab-context").querySelectorAll("button[data-hold]")) b.onclick = () => steer("/api/unpause", { id: Number(b.dataset.hold) });
  for (const a of $("tab-context").querySelectorAll("a[data-id]")) a.onclick = (e) => { e.preventDefault(); select(a.dataset.id); };
}

const notes = (list) => list.length
  ? `<ul class="plain">${list.map((n) => `<li><b>${esc(n.id)}</b> ${esc(n.text)}${n.task ? " · " + link(n.task) : ""}</li>`).join("")}</ul>`
  : `<p class="muted">none</p>`;

// ---- start ------------------------------------------------------------------------------

function start() {
  wireGraph();
  for (const b of document.querySelectorAll(".tabs button")) b.onclick = () => tab(b.dataset.tab);
  $("pause").onclick = () => steer("/api/pause", {});
  $("unpause").onclick = () => steer("/api/unpause", {});
  window.addEventListener("resize", () => applyView());
  loadGraph().then((ok) => { if (ok) { connect(); loadContext(); } });
  setInterval(() => { if (S.tab === "run") loadRun(); }, 5000);
}

start();
