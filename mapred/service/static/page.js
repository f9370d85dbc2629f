// The status page's only script: keep a token, poll the JSON API once a second, redraw.
// Every value from the server goes into the page as text (textContent), never as HTML.
"use strict";

const POLL_MS = 1000;
const TOKEN_KEY = "mapred-token";

function takeTokenFromHash() {
  const m = /(?:^#|&)token=([^&]+)/.exec(location.hash);
  if (m) {
    sessionStorage.setItem(TOKEN_KEY, decodeURIComponent(m[1]));
    history.replaceState(null, "", location.pathname + location.search);   // keep it out of the address bar
  }
}

function token() { return sessionStorage.getItem(TOKEN_KEY) || ""; }

function askForToken(message) {
  const form = document.getElementById("login");
  form.hidden = false;
  setStatus(message);
}

function setStatus(text) { document.getElementById("status").textContent = text; }

async function api(path) {
  const res = await fetch(path, {headers: {"Authorization": "Bearer " + token()}});
  if (res.status === 401) { const e = new Error("the token was refused"); e.auth = true; throw e; }
  const body = await res.json();
  if (!res.ok) {
    const err = body.error || (body.RemoteException ? {message: body.RemoteException.message} : {message: res.statusText});
    throw new Error(err.message);
  }
  return body;
}

function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (k === "class") node.className = v; else if (k === "text") node.textContent = v; else node.setAttribute(k, v);
  }
  for (const c of children) node.append(c instanceof Node ? c : document.createTextNode(c == null ? "" : String(c)));
  return node;
}

function fill(tableId, rows) {
  const body = document.querySelector("#" + tableId + " tbody");
  body.replaceChildren(...rows);
}

function bytes(n) {
  if (n == null) return "";
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) { n /= 1024; i++; }
  return (i ? n.toFixed(1) : n) + " " + units[i];
}

function seconds(s) { return s == null ? "" : (s < 60 ? s.toFixed(1) + " s" : (s / 60).toFixed(1) + " min"); }

function bar(phase, fraction, state, total) {
  const pct = total === 0 ? 0 : Math.round(100 * (fraction || 0));   // a phase with no tasks (map-only) stays empty
  const b = el("div", {"class": "bar", "data-phase": phase, role: "progressbar", "aria-valuemin": "0",
                       "aria-valuemax": "100", "aria-valuenow": String(pct)}, el("span"));
  b.firstChild.style.width = pct + "%";
  if (total === 0) b.title = "no tasks in this phase";
  else if (state === "FAILED" || state === "KILLED") b.classList.add("failed"); else if (pct === 100) b.classList.add("done");
  return b;
}

function stateBadge(state) { return el("span", {"class": "state " + state, text: state}); }

// a node's state: ACTIVE, DECOMMISSIONING, DECOMMISSIONED or LOST
function nodeState(state) { return el("span", {"class": "node-state " + state, "data-state": state, text: state}); }

// the autoscaler's decisions, newest first, each with its reason
function drawScaling(scaling) {
  const decisions = (scaling.decisions || []).slice().reverse();
  const section = document.getElementById("scaling");
  section.hidden = decisions.length === 0 && !scaling.policy;
  const p = scaling.policy || {};
  document.getElementById("scaling-policy").textContent = p.max_workers === undefined ? "" :
    `between ${p.min_workers} and ${p.max_workers} workers; grow after ${p.up_delay} s of waiting tasks, ` +
    `retire after ${p.idle_timeout} s idle`;
  fill("decisions", decisions.map(d => el("tr", {"data-seq": String(d.seq)},
    el("td", {}, new Date(1000 * d.time).toLocaleTimeString()), el("td", {}, d.action),
    el("td", {}, d.action === "grow" ? `+${d.count}` : d.worker), el("td", {}, d.workers_before),
    el("td", {"class": "reason"}, d.reason))));
}

// -- index: the cluster and the jobs -----------------------------------------------------------
async function drawIndex() {
  const [cluster, jobs] = await Promise.all([api("/api/v1/cluster"), api("/api/v1/jobs?limit=1000")]);
  const f = cluster.fsck || {};
  document.getElementById("cluster-summary").textContent =
    `master ${cluster.master}, NameNode ${cluster.namenode}; ${cluster.workers.filter(w => w.alive).length} live workers, ` +
    `${cluster.datanodes.filter(d => d.state === "LIVE").length} live DataNodes`;
  fill("workers", cluster.workers.map(w => el("tr", {"data-worker": w.worker_id},
    el("td", {}, w.worker_id), el("td", {}, w.host), el("td", {}, nodeState(w.node_state || (w.alive ? "ACTIVE" : "LOST"))), el("td", {}, w.slots),
    el("td", {}, w.running), el("td", {}, bytes(w.memory)), el("td", {}, seconds(w.heartbeat_age_s)))));
  fill("datanodes", cluster.datanodes.map(d => el("tr", {"data-datanode": d.dnid},
    el("td", {}, d.dnid), el("td", {}, d.host), el("td", {"title": `${d.state}, ${d.admin_state || ""}`}, nodeState(d.node_state || d.state)),
    el("td", {}, bytes(d.capacity)),
    el("td", {}, bytes(d.used)), el("td", {}, bytes(d.remaining)), el("td", {}, d.blocks),
    el("td", {}, seconds(d.last_heartbeat_s)))));
  document.getElementById("fsck").textContent = f.files === undefined ? "" :
    `fsck /: ${f.healthy ? "healthy" : "NOT healthy"}; ${f.files} files, ${f.blocks} blocks, ` +
    `${f.under_replicated} under-replicated, ${f.corrupt} corrupt, ${f.missing} missing` + (f.safemode ? "; SAFE MODE" : "");
  drawScaling(cluster.scaling || {});
  fill("jobs", jobs.jobs.slice().reverse().map(j => el("tr", {"data-job": j.job_id},
    el("td", {}, el("a", {href: "/jobs/" + encodeURIComponent(j.job_id), text: j.job_id})), el("td", {}, j.name),
    el("td", {}, stateBadge(j.state)), el("td", {}, bar("map", j.phases.map.fraction, j.state, j.phases.map.total)),
    el("td", {}, bar("reduce", j.phases.reduce.fraction, j.state, j.phases.reduce.total)),
    el("td", {}, seconds(j.duration_s)), el("td", {}, j.submitter))));
  return true;
}

// -- one job ---------------------------------------------------------------------------------------
async function drawJob() {
  const id = document.getElementById("job").dataset.jobId;
  const [j, t, logs] = await Promise.all([api(`/api/v1/jobs/${id}`), api(`/api/v1/jobs/${id}/tasks`),
                                          api(`/api/v1/jobs/${id}/logs`)]);
  document.getElementById("job-name").textContent = j.name;
  const st = document.getElementById("job-state");
  st.textContent = j.state;
  st.className = "state " + j.state;
  document.getElementById("job-submitter").textContent = j.submitter || "(unknown)";
  document.getElementById("job-output").textContent = j.output;
  document.getElementById("job-timing").textContent = j.duration_s != null ? "took " + seconds(j.duration_s) :
    "running for " + seconds(Date.now() / 1000 - j.submitted);
  for (const phase of ["map", "reduce"]) {
    const p = j.phases[phase];
    const fresh = bar(phase, p.fraction, j.state, p.total);
    document.querySelector(`#job .bar[data-phase=${phase}]`).replaceWith(fresh);
    document.querySelector(`.phase-text[data-phase=${phase}]`).textContent = p.total ? `${p.done}/${p.total} tasks` : "no tasks";
  }
  const err = j.error || {};
  document.getElementById("job-error").hidden = !err.message;
  document.getElementById("error-message").textContent = err.message ?
    `${err.type || "Error"}: ${err.message}` + (err.task ? ` (task ${err.task})` : "") : "";
  document.getElementById("traceback").textContent = err.traceback || "";
  const counterRows = [];
  for (const [group, names] of Object.entries(j.counters || {}))
    for (const [name, value] of Object.entries(names)) counterRows.push(el("tr", {}, el("td", {}, group), el("td", {}, name), el("td", {}, value)));
  fill("counters", counterRows);
  const rows = [];
  for (const task of t.tasks) {
    rows.push(el("tr", {"class": "task", "data-task": task.task}, el("td", {}, task.task), el("td", {}, stateBadge(task.state)),
                 el("td", {}, task.hosts.join(", ")), el("td", {}), el("td", {})));
    for (const a of task.attempts) {
      const e = a.error || {};
      const time = a.state === "RUNNING" ? Math.round(100 * (a.progress || 0)) + "%" : seconds(a.seconds);
      const errCell = el("td", {}, e.message ? `${e.type || "Error"}: ${e.message}` + (e.offset != null ? ` at record offset ${e.offset}` : "") : "");
      if (e.traceback) errCell.append(el("details", {}, el("summary", {text: "traceback"}), el("pre", {"class": "attempt-traceback", text: e.traceback})));
      rows.push(el("tr", {"class": "attempt", "data-attempt": a.attempt}, el("td", {}, a.attempt + (a.speculative ? " (speculative)" : "")),
                   el("td", {}, stateBadge(a.state)), el("td", {}, `${a.worker} on ${a.host}`), el("td", {}, time), errCell));
    }
  }
  fill("tasks", rows);
  document.getElementById("logs").textContent = logs.lines.join("\n");
  return !["SUCCEEDED", "FAILED", "KILLED"].includes(j.state);
}

// -- the store --------------------------------------------------------------------------------------
async function drawStore() {
  const path = document.getElementById("store").dataset.path;
  const crumbs = document.getElementById("crumbs");
  const parts = path.split("/").filter(Boolean);
  const links = [el("a", {href: "/store/", text: "/"})];
  parts.forEach((p, i) => links.push(" ", el("a", {href: "/store/" + parts.slice(0, i + 1).map(encodeURIComponent).join("/"), text: p}), " /"));
  crumbs.replaceChildren(...links);
  const enc = parts.map(encodeURIComponent).join("/");
  const [listing, summary] = await Promise.all([api(`/webhdfs/v1/${enc}?op=LISTSTATUS`), api(`/webhdfs/v1/${enc}?op=GETCONTENTSUMMARY`)]);
  const s = summary.ContentSummary;
  document.getElementById("store-summary").textContent =
    `${s.fileCount} files in ${s.directoryCount} directories, ${bytes(s.length)} (${bytes(s.spaceConsumed)} with replicas)`;
  fill("listing", listing.FileStatuses.FileStatus.map(f => {
    const name = f.pathSuffix || parts[parts.length - 1] || "/";
    const target = "/store/" + (f.pathSuffix ? [...parts, f.pathSuffix] : parts).map(encodeURIComponent).join("/");
    const link = f.type === "DIRECTORY" ? el("a", {href: target, text: name + "/"}) : el("span", {text: name});
    return el("tr", {"data-name": name}, el("td", {}, link), el("td", {}, f.type.toLowerCase()),
              el("td", {}, f.type === "FILE" ? bytes(f.length) : ""), el("td", {}, f.replication || ""),
              el("td", {}, f.blockSize ? bytes(f.blockSize) : ""), el("td", {}, new Date(f.modificationTime).toISOString()));
  }));
  return true;
}

// -- models: the registry, what is served, metrics side by side across versions ---------------

function metricText(m) {
  return Object.entries(m || {}).filter(([, v]) => typeof v === "number")
    .map(([k, v]) => k + " " + (Math.abs(v) < 1e4 ? v.toPrecision(4) : v.toExponential(2))).join(", ");
}

async function drawModels() {
  const list = await api("/api/v1/models");
  const details = await Promise.all(list.map(m => api(`/api/v1/models/${encodeURIComponent(m.name)}`)));
  fill("model-list", details.map(d => {
    const aliases = Object.entries(d.aliases).map(([a, v]) => a + " → " + v).join(", ");
    const served = Object.entries(d.serving.aliases).map(([a, v]) => a + " → " + v).join(", ");
    const errors = Object.entries({...d.serving.alias_errors, ...d.serving.unloadable}).map(([k, e]) => k + ": " + e).join("; ");
    return el("tr", {"data-model": d.name}, el("td", {}, d.name), el("td", {}, d.versions), el("td", {}, d.latest),
              el("td", {}, aliases), el("td", {}, served), el("td", {"class": errors ? "error" : ""}, errors));
  }));
  fill("version-list", details.flatMap(d => d.model_versions.map(v => {
    const evals = (v.evaluations || []).map(e => metricText(e.metrics) + " (" + e.dataset + ")").join("; ");
    return el("tr", {"data-model": d.name, "data-version": String(v.version)}, el("td", {}, d.name),
              el("td", {}, v.version), el("td", {}, (v.aliases || []).join(", ")),
              el("td", {}, new Date(v.registered_at * 1000).toISOString() + " by " + v.registered_by),
              el("td", {}, metricText((v.metrics || {}).test)), el("td", {}, evals));
  })));
  return true;
}

const DRAW = {index: drawIndex, job: drawJob, store: drawStore, models: drawModels};

async function loop() {
  const draw = DRAW[document.body.dataset.page];
  if (!token()) { askForToken("a token is needed to see the cluster"); return; }
  let again = true;
  try {
    again = await draw();
    setStatus("updated " + new Date().toLocaleTimeString());
  } catch (e) {
    if (e.auth) { sessionStorage.removeItem(TOKEN_KEY); askForToken("the token was refused: paste another"); return; }
    setStatus("could not refresh: " + e.message);
  }
  // a finished job's page stops changing: slow down instead of polling every second
  setTimeout(loop, again ? POLL_MS : 5 * POLL_MS);
}

document.getElementById("login").addEventListener("submit", ev => {
  ev.preventDefault();
  sessionStorage.setItem(TOKEN_KEY, document.getElementById("token-input").value.trim());
  document.getElementById("login").hidden = true;
  loop();
});

takeTokenFromHash();
loop();
