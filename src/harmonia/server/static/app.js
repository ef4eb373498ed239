// Harmonia's dashboard: one page, hash routes, plain DOM and Plotly (served by the server from
// the plotly wheel). No build step: this file is what the browser runs.

const API = "/api/v1";
const TOKEN_KEY = "harmonia.token";
const NEXT_KEY = "harmonia.next";
// Okabe–Ito: distinguishable with every common colour-vision deficiency.
const OI = {
  blue: "#0072B2", orange: "#E69F00", green: "#009E73", vermillion: "#D55E00",
  purple: "#CC79A7", sky: "#56B4E9", yellow: "#F0E442", black: "#000000",
};
const SERIES = [OI.blue, OI.orange, OI.green, OI.vermillion, OI.purple, OI.sky, OI.black];
// Kinds of adaptation differ in symbol as well as colour.
const KIND_STYLE = {
  switch_model: { color: OI.vermillion, symbol: "triangle-down", label: "switch" },
  retrain: { color: OI.purple, symbol: "square", label: "retrain" },
  reuse_version: { color: OI.green, symbol: "diamond", label: "reuse" },
  // a contract's remedies
  alert: { color: OI.yellow, symbol: "star", label: "alert" },
  degrade: { color: OI.orange, symbol: "triangle-up", label: "degrade" },
  reroute: { color: OI.sky, symbol: "cross", label: "reroute" },
  reject: { color: OI.black, symbol: "x", label: "reject" },
  // infrastructure tactics
  scale: { color: OI.blue, symbol: "hexagon", label: "scale" },
  migrate: { color: OI.green, symbol: "arrow-right", label: "migrate" },
};
/** A decision that changed nothing ("none": held by cooldown, already best) is recorded too. */
const changes = (action) => action.kind !== "none";
/** Where an action belongs on a time axis: the end of the window it was decided on (its own
 * ts is the server's clock at ingestion, a batch later than the samples' clock). */
const at = (action) => action.context?.window_end ?? action.ts;
const RANGES = [
  ["300", "Last 5 minutes"], ["900", "Last 15 minutes"], ["3600", "Last hour"],
  ["21600", "Last 6 hours"], ["86400", "Last 24 hours"], ["all", "All time"], ["custom", "Custom…"],
];
const PLOT_CONFIG = { responsive: true, displaylogo: false, modeBarButtonsToRemove: ["lasso2d", "select2d"] };

const shell = document.getElementById("main");
// Each page renders into its own container: a page still loading when the user moves on
// writes into a detached element, never into the next page.
let main = shell;
const state = { token: sessionStorage.getItem(TOKEN_KEY), leave: [] };

// -- small helpers --------------------------------------------------------------------------

/** An element: h("button", {class: "primary", onclick: f}, "Save"). */
function h(tag, props = {}, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(props || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (key.startsWith("on")) el.addEventListener(key.slice(2), value);
    else if (key === "class") el.className = value;
    else if (key === "text") el.textContent = value;
    else if (key === "value") el.value = value;
    else el.setAttribute(key, value === true ? "" : value);
  }
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : String(child));
  }
  return el;
}

class ApiError extends Error {
  constructor(status, detail) {
    super(describe(detail));
    this.status = status;
    this.detail = detail;
  }
}

/** A 4xx body's detail as text: a string, or the API's list of {field, reason}. */
function describe(detail) {
  if (Array.isArray(detail)) return detail.map((i) => (i.field ? `${i.field}: ${i.reason}` : i.reason)).join("; ");
  return typeof detail === "string" ? detail : JSON.stringify(detail);
}

async function api(path, { method = "GET", json, text, blob = false } = {}) {
  const headers = {};
  if (state.token) headers.Authorization = `Bearer ${state.token}`;
  let body;
  if (json !== undefined) {
    body = JSON.stringify(json);
    headers["Content-Type"] = "application/json";
  } else if (text !== undefined) {
    body = text;
    headers["Content-Type"] = "text/plain; charset=utf-8";
  }
  const reply = await fetch(API + path, { method, headers, body });
  if (!reply.ok) {
    let detail = reply.statusText;
    try {
      detail = (await reply.json()).detail;
    } catch {
      /* not JSON: keep the status text */
    }
    throw new ApiError(reply.status, detail);
  }
  return blob ? reply.blob() : reply.json();
}

function query(params) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== null && v !== undefined && v !== "") q.set(k, v);
  const s = q.toString();
  return s ? `?${s}` : "";
}

let toastTimer;
/** Say something in the live region (screen readers hear it) and show it briefly. */
function announce(message, error = false) {
  const box = document.getElementById("status");
  box.textContent = message;
  box.className = `toast shown${error ? " error" : ""}`;
  clearTimeout(toastTimer);
  toastTimer = setTimeout(() => (box.className = "toast"), error ? 8000 : 4000);
}

function fail(error) {
  if (error instanceof ApiError && error.status === 401) {
    announce("That needs the admin token: log in first.", true);
  } else {
    announce(`Error: ${error.message}`, true);
  }
  console.error(error);
}

/** Writes need the admin token: send the user to log in, and back here after. */
function needLogin(what) {
  if (state.token) return false;
  sessionStorage.setItem(NEXT_KEY, location.hash || "#/");
  announce(`Log in with the admin token to ${what}.`, true);
  location.hash = "#/login";
  return true;
}

function num(value, digits = 3) {
  if (value === null || value === undefined || Number.isNaN(value)) return "—";
  if (typeof value !== "number") return String(value);
  if (value !== 0 && Math.abs(value) < 10 ** -digits) return value.toExponential(2);
  return value.toFixed(digits).replace(/\.?0+$/, "") || "0";
}
/* Energy, by one rule (harmonia.core.units in Python; docs/dashboard.md): the API sends
 * joules (energy_j, energy_j_per_inference, training_joules); per inference or per request
 * it is shown in mJ, a total (total_energy_j, a training run) in J / kJ (``joules``). */
const mJ = (joules) => (joules === null || joules === undefined ? "—" : `${num(joules * 1000, 3)} mJ`);
/** Whether a signal, value or metadata name holds joules (energy_j, mean(energy_j), …). */
const isEnergy = (key) => /energy_j|_joules$/.test(key);
/** An energy value by its name: a total in J / kJ, anything else per inference in mJ. */
const energyText = (key, value) => (/total_energy_j|_joules$/.test(key) ? joules(value) : mJ(value));
/** Live systems stamp unix seconds; a replay may stamp sample indices. */
const isEpoch = (ts) => ts > 1e9;
const toX = (ts) => (isEpoch(ts) ? new Date(ts * 1000) : ts);
function when(ts) {
  if (ts === null || ts === undefined) return "—";
  return isEpoch(ts) ? new Date(ts * 1000).toLocaleString() : `t=${num(ts, 1)}`;
}
function clock(ts) {
  return isEpoch(ts) ? new Date(ts * 1000).toLocaleTimeString() : `t=${num(ts, 1)}`;
}
function ago(ts) {
  const s = Date.now() / 1000 - ts;
  if (s < 60) return `${Math.max(0, Math.round(s))} s ago`;
  if (s < 3600) return `${Math.round(s / 60)} min ago`;
  return `${Math.round(s / 3600)} h ago`;
}
/** "09:25" today, "3 Jun, 09:25" on another day: when something last happened. */
function since(ts) {
  if (!isEpoch(ts)) return `t=${num(ts, 1)}`;
  const d = new Date(ts * 1000);
  const hm = d.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
  return d.toDateString() === new Date().toDateString() ? hm : `${d.toLocaleDateString([], { day: "numeric", month: "short" })}, ${hm}`;
}
/** "1 window", "3 windows". */
const plural = (n, word) => `${n} ${word}${n === 1 ? "" : "s"}`;
/** Whether telemetry that last closed a window at ``end`` has gone quiet: nothing for five
 * windows' time (``span``: seconds a window usually takes), and at least a minute. */
function silent(end, span = 0, floor = 60) {
  if (end === null || end === undefined || !isEpoch(end)) return false;
  return Date.now() / 1000 - end > Math.max(floor, 5 * (span || 0));
}
/** A signal's name as a row header: "energy / inference", "p95 latency (ms)". */
function signalLabel(key) {
  if (key === "energy_j") return "energy / inference";
  const m = key.match(/^(p\d+|avg|mean|max|min)\((\w+?)_ms\)$/);
  return m ? `${m[1]} ${m[2]}` : key;
}
/** A signal's value with its unit: energy by its rule (mJ), anything in milliseconds with "ms". */
function signalText(key, value) {
  if (isEnergy(key)) return energyText(key, value);
  if (/_ms\b/.test(key)) return value === null || value === undefined ? "—" : `${num(value, 2)} ms`;
  return num(value, 4);
}
/** Under an application's name: whether its telemetry still arrives, in words. */
function freshnessHint(end) {
  if (typeof end !== "number" || !isEpoch(end)) return null;
  const quiet = silent(end, 0, 120);
  return h("div", { class: `hint freshness${quiet ? " stale" : ""}`, "data-state": quiet ? "silent" : "live" },
    quiet ? `no telemetry since ${since(end)}` : `last window ${ago(end)}`);
}
/** A decision that changed nothing says so, not "applied". */
function outcomeBadge(action) {
  return changes(action) ? badge(action.status, STATUS_TONE[action.status] || "neutral") : badge("no change", "neutral");
}
/** Where an application's pages live; a service, where named, picks one of its services. */
function appLink(name, service = null, page = "") {
  const base = `#/app/${encodeURIComponent(name)}`;
  return `${base}${service ? `/services/${encodeURIComponent(service)}` : ""}${page ? `/${page}` : ""}`;
}
function policyLink(name, service = null) {
  return `#/policies/${encodeURIComponent(name)}${service ? `/${encodeURIComponent(service)}` : ""}`;
}
/** The names of an application's services (from GET /apps/{name}), in stage order. */
const serviceNames = (detail) => detail.stages.flatMap((stage) => stage.services.map((s) => s.name));
const stageOf = (detail, service) => detail.stages.find((stage) => stage.services.some((s) => s.name === service))?.name;

function badge(text, tone) {
  return h("span", { class: `badge ${tone}` }, text);
}
const STATUS_TONE = { applied: "ok", finished: "ok", running: "info", delivered: "info", pending: "warn", failed: "bad", stopped: "neutral" };

function saveBlob(blob, filename) {
  const url = URL.createObjectURL(blob);
  const link = h("a", { href: url, download: filename });
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10_000);
}

/** Run ``fn`` at most once per ``ms``, trailing call kept (SSE can arrive in bursts). */
/** Run ``fn`` now, then at most once per ``ms`` while calls keep coming. It belongs to the
 * page that made it: leaving the page cancels what is still due, so a page left behind never
 * draws into the next one (its elements share ids). */
function throttle(fn, ms) {
  let timer = null;
  let pending = false;
  let left = false;
  onLeave(() => {
    left = true;
    clearTimeout(timer);
  });
  return () => {
    if (left) return;
    if (timer) {
      pending = true;
      return;
    }
    fn();
    timer = setTimeout(function tick() {
      timer = null;
      if (pending && !left) {
        pending = false;
        fn();
        timer = setTimeout(tick, ms);
      }
    }, ms);
  };
}

/** Whether the page being built is still the one shown: call it when the page starts and ask
 * the answer after each wait (``main`` itself is already the next page's by then). */
function stillShown() {
  const root = main;
  return () => root.isConnected;
}

/** Append to the page, skipping the nulls of optional parts. */
function mount(...nodes) {
  main.append(...nodes.flat().filter((n) => n !== null && n !== undefined && n !== false));
}

function onLeave(fn) {
  state.leave.push(fn);
}
function every(ms, fn) {
  const id = setInterval(fn, ms);
  onLeave(() => clearInterval(id));
}

function layout(title, yTitle, extra = {}) {
  return {
    title: { text: title, font: { size: 14 }, x: 0.01, xanchor: "left" },
    margin: { l: 60, r: 20, t: 34, b: 36 },
    height: 270,
    font: { family: "system-ui, sans-serif", size: 12, color: "#1b1f24" },
    paper_bgcolor: "#fff",
    plot_bgcolor: "#fff",
    xaxis: { gridcolor: "#e5e8ec", automargin: true },
    yaxis: { title: { text: yTitle }, gridcolor: "#e5e8ec", zeroline: false, automargin: true },
    legend: { orientation: "h", y: 1.02, yanchor: "bottom", x: 1, xanchor: "right" },
    hovermode: "closest",
    hoverlabel: { align: "left" },
    ...extra,
  };
}

function chartBox(id, caption, wide = false) {
  return h("figure", { class: wide ? "wide" : "" },
    h("div", { class: "chart", id, role: "img", "aria-label": caption }),
    h("figcaption", {}, caption));
}

function plot(id, data, lay) {
  const el = document.getElementById(id);
  if (!el || !window.Plotly) return;
  Plotly.react(el, data, lay, PLOT_CONFIG);
}

// -- policy reading: what the charts draw as thresholds --------------------------------------

const CONDITION = /([a-z_][\w.]*(?:\([\w.]+\))?)\s*(<=|>=|<|>)\s*(-?\d+(?:\.\d+)?(?:e-?\d+)?)/gi;

/** Every "key op number" comparison in the policy's boundaries. */
function comparisons(policy) {
  const out = [];
  for (const boundary of policy?.boundaries || []) {
    for (const m of String(boundary.when).matchAll(CONDITION)) {
      out.push({ key: m[1], op: m[2], value: Number(m[3]), when: boundary.when, then: boundary.then });
    }
  }
  return out;
}

/** The metric the policy adapts on (its first switching boundary's, else the score), with the
 * thresholds to draw on it. */
function mainMetric(policy) {
  const found = comparisons(policy);
  const switching = found.find((c) => c.then === "switch_model" && !c.key.startsWith("drift."));
  const key = switching ? switching.key : "score";
  const lines = found.filter((c) => c.key === key).map((c) => ({ value: c.value, label: `${c.when} → ${c.then}` }));
  const minScore = policy?.options?.min_score;
  if (key === "score" && typeof minScore === "number") {
    lines.push({ value: minScore, label: `${policy.strategy}: min_score ${minScore}` });
  }
  return { key, lines };
}

function driftLines(policy) {
  const lines = comparisons(policy)
    .filter((c) => c.key.startsWith("drift."))
    .map((c) => ({ value: c.value, label: `${c.when} → ${c.then}` }));
  const threshold = policy?.options?.drift_threshold;
  if (typeof threshold === "number") lines.push({ value: threshold, label: `${policy.strategy}: drift_threshold ${threshold}` });
  return lines;
}

/** Thresholds at one level drawn once, their labels joined (two boundaries on quality < 2
 * would otherwise write over each other). */
function merged(lines) {
  const out = [];
  for (const line of lines) {
    const same = out.find((o) => o.value === line.value);
    if (same) same.label = `${same.label}; ${line.label}`;
    else out.push({ ...line });
  }
  return out;
}
function thresholdShapes(lines) {
  return merged(lines).map((line, i) => ({
    type: "line", xref: "paper", x0: 0, x1: 1, y0: line.value, y1: line.value,
    line: { color: i ? OI.purple : OI.vermillion, width: 2, dash: i ? "dot" : "dash" },
  }));
}
function thresholdNotes(lines) {
  return merged(lines).map((line, i) => ({
    xref: "paper", x: 1, y: line.value, xanchor: "right", yanchor: "bottom", showarrow: false,
    text: line.label, font: { size: 11, color: i ? "#7a3d63" : "#9b3a00" }, bgcolor: "#ffffffcc",
  }));
}

// -- session ---------------------------------------------------------------------------------

function renderSession() {
  const box = document.getElementById("session");
  if (state.token) {
    box.replaceChildren(
      badge("admin", "ok"),
      h("button", { type: "button", id: "logout", onclick: () => {
        sessionStorage.removeItem(TOKEN_KEY);
        state.token = null;
        renderSession();
        announce("Logged out.");
        route();
      } }, "Log out"));
  } else {
    box.replaceChildren(h("a", { href: "#/login", id: "login-link" }, "Log in"));
  }
}

async function loginPage() {
  const input = h("input", { id: "token", type: "password", name: "token", autocomplete: "current-password", required: true, "aria-describedby": "token-hint token-error" });
  const error = h("p", { id: "token-error", class: "error-text", role: "alert" });
  const form = h("form", { class: "card", style: "max-width: 28rem", onsubmit: async (event) => {
    event.preventDefault();
    error.textContent = "";
    const token = input.value.trim();
    const reply = await fetch(`${API}/auth`, { headers: { Authorization: `Bearer ${token}` } });
    if (!reply.ok) {
      input.setAttribute("aria-invalid", "true");
      error.textContent = "That is not the admin token.";
      input.focus();
      return;
    }
    sessionStorage.setItem(TOKEN_KEY, token);
    state.token = token;
    renderSession();
    announce("Logged in: you can now change policies and start systems.");
    const next = sessionStorage.getItem(NEXT_KEY);
    sessionStorage.removeItem(NEXT_KEY);
    location.hash = next && next !== "#/login" ? next : "#/";
  } },
  h("div", { class: "field" },
    h("label", { for: "token" }, "Admin token"),
    input,
    h("p", { id: "token-hint", class: "hint" }, "The server prints it at start, or reads HARMONIA_ADMIN_TOKEN. It is kept in this tab only.")),
  error,
  h("button", { class: "primary", type: "submit" }, "Log in"));
  mount(h("h1", {}, "Log in"), h("p", {}, "Anyone may watch; changing a policy or starting a system needs the admin token."), form);
  input.focus();
}

// -- systems overview -------------------------------------------------------------------------

async function overviewPage() {
  mount(h("h1", {}, "Systems"),
    h("p", { class: "muted" }, "Every registered application: what serves now, how well, at what energy cost, and what the policy says about it. An application of several services shows its first service that has a policy; open its pipeline for all of them."));
  const holder = h("div", { class: "table-wrap" });
  const empty = h("p", { hidden: true }, "No application is registered yet. ", h("a", { href: "#/run" }, "Start a reference system"), " or register one with the API.");
  mount(empty, holder);

  async function refresh() {
    const apps = await api("/overview");
    // the latest adaptation of each: what changed and why, at a glance
    const latest = await Promise.all(apps.map((app) =>
      api(`/apps/${encodeURIComponent(app.name)}/actions?limit=20`).then((a) => a.find(changes)).catch(() => null)));
    empty.hidden = apps.length > 0;
    holder.hidden = apps.length === 0;
    const rows = apps.map((app, index) => {
      const last = latest[index];
      const s = app.window?.signals || {};
      const drift = Object.entries(app.drift || {}).map(([name, d]) =>
        h("div", {}, `${name} ${num(d.value, 3)} `, d.drifted ? badge("drifted", "warn") : badge("ok", "ok")));
      const violations = app.violations.length
        ? [...new Set(app.violations)].map((v) => h("div", {}, badge("violated", "bad"), " ", h("code", {}, v)))
        : [badge("none", "ok")];
      const multi = app.services.length > 1;
      const link = appLink(app.name, multi ? app.service : null);
      return h("tr", { "data-app": app.name, "data-services": app.services.length },
        h("th", { scope: "row" }, h("a", { href: link }, app.name), app.running.length ? [" ", badge("running", "info")] : null,
          freshnessHint(app.window?.end),
          h("div", { class: "hint app-services" }, h("a", { href: appLink(app.name, null, "pipeline"), "aria-label": `${app.name} pipeline`, class: "pipeline-link" },
            `${app.services.length} service${app.services.length === 1 ? "" : "s"}: pipeline`)),
          h("div", { class: "hint" }, h("a", { href: appLink(app.name, multi ? app.service : null, "history"), "aria-label": `${app.name} history` }, "history"), " · ",
            h("a", { href: policyLink(app.name, multi ? app.service : null), "aria-label": `${app.name} policy` }, "policy"))),
        h("td", {}, app.strategy || h("span", { class: "muted" }, "no policy"),
          multi ? h("div", { class: "hint row-service" }, `service ${app.service}`) : null),
        h("td", {}, app.model ? `${app.model} v${app.version ?? "?"}` : "—"),
        h("td", { class: "num" }, num(s.score)),
        h("td", { class: "num" }, app.quality ? `${app.quality} ${num(s.quality)}` : "—"),
        h("td", { class: "num" }, mJ(s.energy_j)),
        h("td", { class: "num" }, s["p95(latency_ms)"] === undefined ? "—" : `${num(s["p95(latency_ms)"], 2)} ms`),
        h("td", {}, drift.length ? drift : "—"),
        h("td", {}, violations),
        h("td", { class: "num" }, `${app.actions.switch_model} / ${app.actions.retrain} / ${app.actions.reuse_version}`,
          app.open_actions ? h("div", {}, badge(`${app.open_actions} open`, "warn")) : null),
        h("td", { class: "latest-cell" }, last
          ? [app.services.length > 1 && last.service ? `${last.service}: ` : null,
            h("strong", {}, `${last.kind}${last.model ? ` → ${last.model}` : ""}`), ` ${isEpoch(last.ts) ? ago(last.ts) : ""}`,
            h("div", {}, "because ", h("code", {}, last.trigger), explainValues(last)),
            h("div", { class: "hint" }, last.reason)]
          : h("span", { class: "muted" }, "none yet")));
    });
    holder.replaceChildren(h("table", { id: "overview" },
      h("caption", { class: "muted", style: "text-align:left;padding:.4rem .55rem" }, `${apps.length} application(s), refreshed ${new Date().toLocaleTimeString()}`),
      h("thead", {}, h("tr", {}, ["Application", "Strategy", "Model in service", "Score", "Quality", "Energy / inference",
        "p95 latency", "Drift", "Open violations", "Switch / retrain / reuse", "Latest adaptation"].map((c) => h("th", { scope: "col" }, c)))),
      h("tbody", {}, rows)));
  }
  await refresh();
  every(3000, () => refresh().catch(() => {}));
}

// -- time range ------------------------------------------------------------------------------

/** A range picker: relative ranges follow live events, custom ones are fixed. */
function rangePicker(onChange, initial = "900") {
  const select = h("select", { id: "range" }, RANGES.map(([v, label]) => h("option", { value: v }, label)));
  select.value = initial;
  const from = h("input", { id: "range-from", type: "datetime-local", step: 1 });
  const to = h("input", { id: "range-to", type: "datetime-local", step: 1 });
  const custom = h("div", { class: "row", hidden: true },
    h("div", { class: "field" }, h("label", { for: "range-from" }, "From"), from),
    h("div", { class: "field" }, h("label", { for: "range-to" }, "To (empty: now, following live)"), to),
    h("button", { type: "button", onclick: () => onChange() }, "Show range"));
  select.addEventListener("change", () => {
    custom.hidden = select.value !== "custom";
    if (select.value === "custom" && !from.value) {
      const local = (d) => new Date(d.getTime() - d.getTimezoneOffset() * 60000).toISOString().slice(0, 19);
      from.value = local(new Date(Date.now() - 3600_000));
    }
    if (select.value !== "custom") onChange();
  });
  const el = h("fieldset", { class: "range" }, h("legend", {}, "Time range"),
    h("div", { class: "row" }, h("div", { class: "field" }, h("label", { for: "range" }, "Show"), select), custom));
  return {
    el,
    /** Show another choice (a value of RANGES) and load it. */
    set(value) {
      select.value = value;
      custom.hidden = value !== "custom";
      onChange();
    },
    /** {start, end, live}: seconds; end null means "now, and keep following". */
    get() {
      if (select.value === "all") return { start: null, end: null, live: true };
      if (select.value === "custom") {
        const start = from.value ? new Date(from.value).getTime() / 1000 : null;
        const end = to.value ? new Date(to.value).getTime() / 1000 : null;
        return { start, end, live: end === null };
      }
      return { start: Date.now() / 1000 - Number(select.value), end: null, live: true, span: Number(select.value) };
    },
  };
}

/** The most points a chart of the Live page draws: a range of more windows comes downsampled. */
const CHART_POINTS = 1500;

/** Windows in [start, end), oldest first, in one request: the windows themselves when the
 * range holds at most CHART_POINTS of them, else that many points, each aggregating the
 * windows of a span of time (``downsampled``, ``windows``: how many; see the API's ``points``). */
async function fetchWindows(name, start, end, service = null) {
  return api(`/apps/${encodeURIComponent(name)}/windows${query({ start, end, service, points: CHART_POINTS })}`);
}

/** "downsampled: N windows per point" when ``windows`` holds downsampled points, else "". */
function downsampledNote(windows) {
  const points = windows.filter((w) => w.downsampled);
  if (!points.length) return "";
  const per = Math.round(points.reduce((n, w) => n + (w.windows || 1), 0) / points.length);
  return `downsampled: ${per.toLocaleString()} windows per point`;
}

/** The application's pages; ``service`` (only for an app of several) keeps the one in view. */
function appNav(name, current, service = null) {
  const link = (href, label, key) => h("a", { href, id: `nav-${key}`, "aria-current": current === key ? "page" : null }, label);
  return h("nav", { class: "subnav", "aria-label": "Application" },
    link(appLink(name, null, "pipeline"), "Pipeline", "pipeline"),
    link(appLink(name, null, "contract"), "Contract", "contract"),
    link(appLink(name, null, "observers"), "Observers", "observers"),
    link(appLink(name, null, "deployment"), "Deployment", "deployment"),
    link(appLink(name, service), "Live", "live"), link(appLink(name, service, "history"), "Adaptation history", "history"),
    link(policyLink(name, service), "Policy", "policy"));
}

/** A choice of service that opens ``page`` of the chosen one (only for an app of several). */
function servicePicker(name, detail, current, page = "", allLabel = null) {
  const names = serviceNames(detail);
  if (names.length < 2) return null;
  const select = h("select", { id: "service-select" },
    allLabel ? h("option", { value: "" }, allLabel) : null,
    detail.stages.map((stage) => h("optgroup", { label: `stage ${stage.name}` },
      stage.services.map((s) => h("option", { value: s.name }, s.name)))));
  select.value = current || "";
  select.addEventListener("change", () => (location.hash = appLink(name, select.value || null, page)));
  return h("div", { class: "field" }, h("label", { for: "service-select" }, "Service"), select);
}

function actionHover(a) {
  const values = Object.entries(a.values || {}).map(([k, v]) => `${k} = ${signalText(k, v)}`).join("<br>");
  const target = a.model ? ` → ${a.model}${a.version ? ` v${a.version}` : ""}` : "";
  return `<b>${a.kind}${target}</b> (${a.status})<br>who: ${a.strategy}<br>why: ${escapeHtml(a.reason)}` +
    `<br>boundary: ${escapeHtml(a.trigger)}${values ? `<br>${values}` : ""}<br>${when(a.ts)}`;
}
/** " (quality = 0.71)": the values the trigger names, else the first few the action read. */
function explainValues(action) {
  const values = Object.entries(action.values || {});
  const named = values.filter(([k]) => action.trigger.includes(k));
  const shown = (named.length ? named : values.slice(0, 3)).map(([k, v]) => `${k} = ${signalText(k, v)}`);
  return shown.length ? ` (${shown.join(", ")})` : "";
}

function escapeHtml(text) {
  return String(text).replace(/[&<>"]/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;" })[c]);
}

/** Traces and shapes that mark each adaptation on a time chart. Decisions of one window
 * (a switch and a retrain) share a time: each is moved down a step, so that none hides
 * another, and each one's hover names the others. */
function actionMarks(actions, windows, key, levels = []) {
  const drawn = actions.filter((a) => KIND_STYLE[a.kind]);
  const valueAt = (a) => {
    if (typeof a.values?.[key] === "number") return a.values[key];
    const before = windows.filter((w) => w.end <= at(a) + 1e-6).at(-1);
    return before?.signals?.[key] ?? null;
  };
  // a step of 7 % of what the chart spans, thresholds included (or of the value where flat)
  const ys = [...windows.map((w) => w.signals?.[key]), ...drawn.map(valueAt), ...levels].filter((v) => typeof v === "number" && Number.isFinite(v));
  const spread = ys.length ? Math.max(...ys) - Math.min(...ys) : 0;
  const step = 0.07 * (spread || Math.abs(ys[0] ?? 0) || 1);
  const together = new Map();
  for (const a of drawn) {
    const t = at(a);
    if (!together.has(t)) together.set(t, []);
    together.get(t).push(a);
  }
  const hover = (a) => {
    const others = together.get(at(a)).filter((o) => o !== a);
    const also = others.map((o) => `${o.kind}${o.model ? ` → ${o.model}` : ""}`).join(", ");
    return actionHover(a) + (also ? `<br><b>same window:</b> ${escapeHtml(also)}` : "");
  };
  const traces = [];
  for (const [kind, style] of Object.entries(KIND_STYLE)) {
    const mine = drawn.filter((a) => a.kind === kind);
    if (!mine.length) continue;
    traces.push({
      type: "scatter", mode: "markers", name: style.label,
      x: mine.map((a) => toX(at(a))),
      y: mine.map((a) => {
        const y = valueAt(a);
        const rank = together.get(at(a)).indexOf(a);
        return y === null ? null : y - rank * step;
      }),
      marker: { symbol: style.symbol, size: 13, color: style.color, line: { color: "#000", width: 1 } },
      hovertext: mine.map(hover), hoverinfo: "text",
    });
  }
  const shapes = [...together.keys()].map((t) => ({
    type: "line", xref: "x", yref: "paper", x0: toX(t), x1: toX(t), y0: 0, y1: 1,
    line: { color: KIND_STYLE[together.get(t)[0].kind].color, width: 1, dash: "dot" },
  }));
  return { traces, shapes };
}

/** One trace per model: the chart shows which model served each window by colour and name;
 * a thin grey line under them keeps the series continuous across switches. */
function perModel(windows, key, models, extra = {}) {
  const x = windows.map((w) => toX(w.end));
  const all = { type: "scatter", mode: "lines", x, y: windows.map((w) => w.signals[key] ?? null), showlegend: false, hoverinfo: "skip", line: { color: "#b8c0c8", width: 1 } };
  const traces = models.map((model, i) => {
    const mine = windows.map((w) => (w.model === model ? w.signals[key] ?? null : null));
    return {
      type: "scatter", mode: "lines+markers", name: model, connectgaps: false,
      x: windows.map((w) => toX(w.end)), y: mine,
      line: { color: SERIES[i % SERIES.length], width: 2 }, marker: { size: 7 },
      hovertemplate: `${model}: %{y:.4f}<extra></extra>`, ...extra,
    };
  }).filter((t) => t.y.some((v) => v !== null));
  return traces.length ? [all, ...traces] : [];
}

// -- pipeline --------------------------------------------------------------------------------

const PIPELINE_SPANS = [["60", "Last minute"], ["300", "Last 5 minutes"], ["900", "Last 15 minutes"], ["3600", "Last hour"], ["21600", "Last 6 hours"], ["86400", "Last 24 hours"]];
const SVG_NS = "http://www.w3.org/2000/svg";

/** Each stage's column: 0 for a stage that follows none, else one past the latest it follows
 * (the API lists stages in topological order). */
function stageColumns(stages) {
  const column = {};
  for (const stage of stages) column[stage.name] = stage.after.length ? 1 + Math.max(...stage.after.map((a) => column[a] ?? 0)) : 0;
  return column;
}

/** A service's quality over the span: the mean of its policy's quality metric where samples
 * carry it, else accuracy, else the first other mean the samples carry. */
function qualityOf(signals, metric) {
  if (!signals) return null;
  if (metric && signals[`mean(${metric})`] != null) return { label: metric, value: signals[`mean(${metric})`] };
  if (signals.accuracy != null) return { label: "accuracy", value: signals.accuracy };
  const key = Object.keys(signals).find((k) => k.startsWith("mean(") && k !== "mean(latency_ms)" && signals[k] != null);
  return key ? { label: key.slice(5, -1), value: signals[key] } : null;
}

const ms = (value) => (value == null ? "—" : `${num(value, 2)} ms`);
const pct = (share) => `${num(share * 100, 1)} %`;
/** A count as a whole number (num() trims trailing zeros, which suits fractions only). */
const whole = (value) => (value == null ? "0" : String(Math.round(value)));

/** A value slot: a <dd> whose raw number is in data-value (tests and tools read it). */
function slot(dl, key, label, id = null) {
  const dd = h("dd", { "data-signal": key, id }, "—");
  dl.append(h("div", { class: "metric" }, h("dt", {}, label), dd));
  return dd;
}
function fillSlot(dd, value, text) {
  dd.textContent = text;
  if (value == null) dd.removeAttribute("data-value");
  else dd.dataset.value = String(value);
}

async function pipelinePage(name) {
  const shown = stillShown();
  const enc = encodeURIComponent(name);
  let detail = await api(`/apps/${enc}`);
  const names = serviceNames(detail);
  const multi = names.length > 1;
  const column = stageColumns(detail.stages);
  const columns = Math.max(0, ...Object.values(column)) + 1;
  // each service's policy says which quality it adapts on (none: no policy yet)
  const policies = {};
  async function readPolicies() {
    const found = await Promise.all(names.map((s) => api(`/apps/${enc}/services/${encodeURIComponent(s)}/policy`).then((p) => p.document).catch(() => null)));
    names.forEach((s, i) => (policies[s] = found[i]));
  }
  await readPolicies();

  const span = h("select", { id: "pipeline-span" }, PIPELINE_SPANS.map(([v, label]) => h("option", { value: v }, label)));
  span.value = "300";
  const refreshed = h("p", { id: "pipeline-refreshed", class: "hint", "aria-live": "off" });
  const e2e = h("dl", { class: "cards", id: "e2e" });
  // the contract's SLOs that are violated or at risk, marked where they point (in words)
  const e2eFlags = h("ul", { class: "slo-flags", id: "e2e-slos", "aria-label": "End-to-end SLOs", hidden: true });
  const energyRows = h("tbody");
  const energyTable = h("table", { id: "energy-by-stage", "aria-labelledby": "energy-heading" },
    h("thead", {}, h("tr", {}, ...["Stage", "Energy / request", "Share", "gCO2e / request", "Measured by"].map((t) => h("th", { scope: "col" }, t)))),
    energyRows);
  // the same breakdown as CSV, for the span shown (no token needed: it is public, like the view)
  const energyExport = h("a", { id: "energy-csv", download: "" }, "Download as CSV");
  const exportHref = () => { energyExport.href = `${API}/apps/${enc}/energy.csv${query({ by: "stage", span: span.value })}`; };
  exportHref();
  span.addEventListener("change", exportHref);
  const e2eSlots = {
    traces: slot(e2e, "traces", "Requests (traces)", "e2e-traces"),
    complete: slot(e2e, "complete", "Complete (went through every stage)", "e2e-complete"),
    p50: slot(e2e, "p50(latency_ms)", "p50 latency end to end", "e2e-p50"),
    p95: slot(e2e, "p95(latency_ms)", "p95 latency end to end", "e2e-p95"),
    energy: slot(e2e, "energy_j", "Energy per request", "e2e-energy"),
    samples: slot(e2e, "samples", "Samples read", "e2e-samples"),
  };
  for (const div of e2e.children) div.className = "stat";

  // the graph: a column per depth, stages stacked in it, services as boxes; the edges are an
  // SVG drawn over it once the boxes are laid out (the text says the same: "after camera")
  const edges = document.createElementNS(SVG_NS, "svg");
  edges.setAttribute("class", "edges");
  edges.setAttribute("aria-hidden", "true");
  edges.id = "pipeline-edges";
  const graph = h("div", { class: "pipeline", id: "pipeline-graph", "data-stages": detail.stages.length, "data-columns": columns });
  const grid = h("div", { class: "pipeline-columns" });
  graph.append(edges, grid);
  const slots = { stages: {}, services: {} };
  for (let c = 0; c < columns; c++) {
    const col = h("div", { class: "pipeline-column", "data-column": c });
    for (const stage of detail.stages.filter((st) => column[st.name] === c)) {
      const summary = h("dl", { class: "stage-summary" });
      const stageFlags = h("ul", { class: "slo-flags", "aria-label": `SLOs of stage ${stage.name}`, hidden: true });
      slots.stages[stage.name] = {
        flags: stageFlags,
        p95: slot(summary, "p95(latency_ms)", "p95 latency"),
        energy: slot(summary, "energy_j", "Energy / inference"),
        count: slot(summary, "count", "Samples"),
      };
      const boxes = stage.services.map((service) => {
        const dl = h("dl", { class: "service-metrics" });
        const instances = h("ul", { class: "instances", "aria-label": `Instances of ${service.name}` });
        const policyState = h("span", { class: "policy-state" });
        slots.services[service.name] = {
          model: slot(dl, "model", "Model in service"),
          p95: slot(dl, "p95(latency_ms)", "p95 latency"),
          quality: slot(dl, "quality", "Quality"),
          energy: slot(dl, "energy_j", "Energy / inference"),
          count: slot(dl, "count", "Samples"),
          instances, policyState,
          flags: h("ul", { class: "slo-flags", "aria-label": `SLOs of ${service.name}`, hidden: true }),
        };
        return h("article", { class: "service", "data-service": service.name, id: `service-${service.name}` },
          h("h3", {}, h("a", { href: appLink(name, multi ? service.name : null), class: "service-link", "aria-label": `${service.name}: open its live view` }, service.name), " ", policyState),
          h("p", { class: "hint models" }, `may serve ${service.models.join(", ")}`),
          slots.services[service.name].flags, dl, h("div", { class: "instances-head" }, "Instances"), instances);
      });
      col.append(h("section", { class: "stage", "data-stage": stage.name, id: `stage-${stage.name}`, "data-column": c, "aria-labelledby": `stage-title-${stage.name}` },
        h("h2", { id: `stage-title-${stage.name}` }, h("span", { class: "muted" }, "stage "), stage.name),
        h("p", { class: "hint after" }, stage.after.length ? `after ${stage.after.join(" and ")}` : "first stage"),
        stageFlags, summary, h("div", { class: "services" }, boxes)));
    }
    grid.append(col);
  }

  mount(h("h1", {}, name, h("span", { class: "muted" }, " · pipeline")),
    appNav(name, "pipeline"),
    h("p", { class: "muted" }, `${detail.stages.length} stage${detail.stages.length === 1 ? "" : "s"}, ${names.length} service${names.length === 1 ? "" : "s"}, by ${detail.owner}. Each box is a service with its own policy and live loop: open one to see it adapt. Stage numbers are over all its services; end to end, over each request's trace.`),
    h("div", { class: "toolbar" }, h("div", { class: "field" }, h("label", { for: "pipeline-span" }, "Over"), span), refreshed),
    h("h2", {}, "End to end"), e2eFlags, e2e,
    h("h2", { id: "graph-heading" }, "Stages"),
    h("div", { class: "pipeline-wrap", role: "group", "aria-labelledby": "graph-heading" }, graph),
    h("h2", { id: "energy-heading" }, "Energy per request, by stage"),
    h("p", { class: "hint" }, "Joules per request each stage spends (they add up to the pipeline's), its share, the gCO2e at each node's carbon intensity (its label, else its region's, else the server's default), and how the joules were measured: by the probes, or by the node's own counter apportioned by CPU time."),
    energyTable, h("p", {}, energyExport));

  function drawEdges() {
    if (!graph.isConnected) return;
    const box = graph.getBoundingClientRect();
    edges.setAttribute("width", graph.scrollWidth);
    edges.setAttribute("height", graph.scrollHeight);
    const at = (el) => {
      const r = el.getBoundingClientRect();
      return { left: r.left - box.left, right: r.right - box.left, mid: r.top - box.top + r.height / 2 };
    };
    const paths = [];
    const defs = document.createElementNS(SVG_NS, "defs");
    defs.innerHTML = '<marker id="arrow" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="8" markerHeight="8" orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z" fill="#56606b"/></marker>';
    for (const stage of detail.stages) {
      const to = graph.querySelector(`[data-stage="${CSS.escape(stage.name)}"]`);
      for (const after of stage.after) {
        const from = graph.querySelector(`[data-stage="${CSS.escape(after)}"]`);
        if (!from || !to) continue;
        const a = at(from);
        const b = at(to);
        const bend = Math.max(24, (b.left - a.right) / 2);
        const path = document.createElementNS(SVG_NS, "path");
        path.setAttribute("d", `M${a.right},${a.mid} C${a.right + bend},${a.mid} ${b.left - bend},${b.mid} ${b.left - 2},${b.mid}`);
        path.setAttribute("marker-end", "url(#arrow)");
        path.setAttribute("class", "edge");
        path.dataset.from = after;
        path.dataset.to = stage.name;
        paths.push(path);
      }
    }
    edges.replaceChildren(defs, ...paths);
    graph.dataset.edges = String(paths.length);
  }

  function instancesOf(service, reported, marks = { instances: {} }) {
    const registered = detail.stages.flatMap((st) => st.services).find((s) => s.name === service)?.instances || [];
    const counts = reported[service] || {};
    const all = [...new Set([...registered.map((i) => i.name), ...Object.keys(counts)])].sort();
    return all.map((instance) => {
      const known = registered.find((i) => i.name === instance);
      const labels = Object.entries(known?.labels || {}).map(([k, v]) => `${k}=${v}`).join(", ");
      return h("li", { "data-instance": instance, "data-node": known?.node || "" },
        h("strong", {}, instance), " on ", known?.node ? h("span", { class: "node" }, known.node) : h("span", { class: "muted" }, "an unregistered node"),
        labels ? h("span", { class: "hint" }, ` (${labels})`) : null,
        h("span", { class: "hint" }, ` · ${counts[instance] ?? 0} samples`),
        marks.instances[instance] ? h("span", { class: "blamed-instance", "data-blamed": marks.instances[instance].join(" ") },
          " · ", sloBadge("violated"), ` blamed for ${marks.instances[instance].join(", ")}`) : null);
    });
  }

  let refreshes = 0;
  async function refresh() {
    const [view, fresh, energy, slos] = await Promise.all([
      api(`/apps/${enc}/pipeline${query({ span: span.value })}`), api(`/apps/${enc}`),
      api(`/apps/${enc}/energy${query({ by: "stage", span: span.value })}`),
      api(`/apps/${enc}/slos`).catch(() => [])]);
    const marks = sloMarks(slos);
    e2e.dataset.slo = sloFlags(e2eFlags, marks.e2e);
    energyRows.replaceChildren(...detail.stages.filter((st) => energy.groups[st.name]).map((st) => {
      const g = energy.groups[st.name];
      return h("tr", { "data-stage": st.name, "data-j-per-request": g.j_per_request },
        h("th", { scope: "row" }, st.name), h("td", { class: "num" }, mJ(g.j_per_request)),
        h("td", { class: "num" }, g.share === null ? "—" : pct(g.share)),
        h("td", { class: "num" }, g.g_co2e_per_request === null ? "—" : `${num(g.g_co2e_per_request * 1000, 3)} mg`),
        h("td", { class: "method" }, (energy.methods?.[st.name] || []).join("; ") || "—"));
    }));
    detail = fresh; // instances come and go
    // a service that gained a policy: read which quality it adapts on
    if (names.some((s) => view.serving[s] && !policies[s])) await readPolicies();
    const e = view.end_to_end || {};
    fillSlot(e2eSlots.traces, e.traces ?? 0, whole(e.traces));
    fillSlot(e2eSlots.complete, e.complete ?? 0, `${whole(e.complete)}${e.traces ? ` (${pct(e.complete / e.traces)})` : ""}`);
    fillSlot(e2eSlots.p50, e["p50(latency_ms)"], ms(e["p50(latency_ms)"]));
    fillSlot(e2eSlots.p95, e["p95(latency_ms)"], ms(e["p95(latency_ms)"]));
    fillSlot(e2eSlots.energy, e.energy_j, mJ(e.energy_j));
    fillSlot(e2eSlots.samples, view.samples, String(view.samples));
    for (const stage of detail.stages) {
      const sig = view.stages[stage.name] || {};
      const mine = slots.stages[stage.name];
      if (!mine) continue;
      fillSlot(mine.p95, sig["p95(latency_ms)"], ms(sig["p95(latency_ms)"]));
      fillSlot(mine.energy, sig.energy_j, mJ(sig.energy_j));
      fillSlot(mine.count, sig.count ?? 0, whole(sig.count));
      const stageEl = graph.querySelector(`[data-stage="${CSS.escape(stage.name)}"]`);
      stageEl.dataset.slo = sloFlags(mine.flags, marks.stages[stage.name] || []);
      for (const service of stage.services) {
        const sig2 = view.services[service.name] || {};
        const box = slots.services[service.name];
        const shares = Object.entries(view.models[service.name] || {}).sort((p, q) => q[1] - p[1]);
        const serving = view.serving[service.name];
        const model = serving || shares[0]?.[0] || null;
        const mix = shares.length > 1 ? ` (${shares.map(([m, sh]) => `${m} ${pct(sh)}`).join(", ")})` : "";
        fillSlot(box.model, model, model ? `${model}${serving ? "" : " (most samples)"}${mix}` : "—");
        fillSlot(box.p95, sig2["p95(latency_ms)"], ms(sig2["p95(latency_ms)"]));
        const quality = qualityOf(sig2, policies[service.name]?.objective?.quality);
        fillSlot(box.quality, quality?.value, quality ? `${quality.label} ${num(quality.value, 3)}` : "—");
        fillSlot(box.energy, sig2.energy_j, mJ(sig2.energy_j));
        fillSlot(box.count, sig2.count ?? 0, whole(sig2.count));
        box.policyState.replaceChildren(serving ? badge(`adapting: ${policies[service.name]?.strategy || "policy"}`, "ok") : badge("no policy", "neutral"));
        box.instances.replaceChildren(...instancesOf(service.name, view.instances, marks));
        const serviceEl = graph.querySelector(`[data-service="${CSS.escape(service.name)}"]`);
        serviceEl.dataset.slo = sloFlags(box.flags, marks.services[service.name] || []);
        if (!box.instances.children.length) box.instances.append(h("li", { class: "muted" }, "none in this span"));
      }
    }
    refreshed.textContent = `${view.samples} samples from ${clock(view.start)} to ${clock(view.end)}; refreshed ${new Date().toLocaleTimeString()}, every 3 s.`;
    graph.dataset.refreshes = String(++refreshes);
    drawEdges();
  }
  span.addEventListener("change", () => refresh().catch(fail));
  await refresh();
  if (!shown()) return;
  const resize = new ResizeObserver(() => drawEdges());
  resize.observe(graph);
  onLeave(() => resize.disconnect());
  every(3000, () => refresh().catch(() => {}));
}

// -- contract --------------------------------------------------------------------------------

// An SLO's state in a word and a mark as well as a colour.
const SLO_STATUS = {
  met: { label: "met", tone: "ok", mark: "✓" },
  at_risk: { label: "at risk", tone: "warn", mark: "!" },
  violated: { label: "violated", tone: "bad", mark: "✗" },
  no_data: { label: "no data", tone: "neutral", mark: "?" },
};
// the symbol each remedy has on the charts (KIND_STYLE), as text
const KIND_MARK = { alert: "★", degrade: "▲", reroute: "✚", reject: "✖", scale: "⬢", migrate: "➜" };
const SEVERITY_TONE = { critical: "bad", warning: "warn", info: "info" };
const sloState = (status) => SLO_STATUS[status] || { label: String(status), tone: "neutral", mark: "?" };
function sloBadge(status) {
  const s = sloState(status);
  return h("span", { class: `badge ${s.tone} slo-status`, "data-status": status }, `${s.mark} ${s.label}`);
}
const scopeText = (r) => (r.scope === "end_to_end" ? "end to end" : `${r.scope} ${r.target}`);
/** A signal's value in its unit where the name says it (latency in ms, energy in mJ). */
function signalValue(signal, value) {
  if (value === null || value === undefined) return "no data";
  if (signal.includes("latency_ms")) return ms(value);
  if (isEnergy(signal)) return energyText(signal, value);
  return num(value, 4);
}
/** "stage classify · service fast · instance fast-2 on node edge-2 · 94 % of the excess". */
function blameText(a) {
  const parts = [];
  if (a.stage) parts.push(`stage ${a.stage}`);
  if (a.service) parts.push(`service ${a.service}`);
  if (a.instance) parts.push(`instance ${a.instance}${a.node ? ` on node ${a.node}` : ""}`);
  else if (a.node) parts.push(`node ${a.node}`);
  if (a.share != null) parts.push(`${pct(a.share)} of the excess`);
  if (a.value != null) parts.push(`${a.signal} ${signalValue(a.signal, a.value)}`);
  return parts.join(" · ");
}
function blameList(attribution) {
  if (!attribution?.length) return null;
  return h("ul", { class: "blame" }, attribution.map((a) => h("li", {
    "data-stage": a.stage || "", "data-blamed-service": a.service || "", "data-instance": a.instance || "", "data-node": a.node || "",
  }, blameText(a))));
}
const CONTRACT_EXAMPLE = `name: pipeline-sla
window: 5 min
slos:
  - name: e2e-latency
    scope: end_to_end
    condition: p99(latency_ms) <= 300
    window: 100 samples
    severity: critical
    then: reroute
  - name: classify-latency
    scope: stage
    target: classify
    condition: p95(latency_ms) <= 200
`;

async function contractPage(name) {
  const shown = stillShown();
  const enc = encodeURIComponent(name);
  const detail = await api(`/apps/${enc}`);
  const multi = serviceNames(detail).length > 1;
  const readContract = () => api(`/apps/${enc}/contract`).catch((error) => {
    if (error instanceof ApiError && error.status === 404) return null;
    throw error;
  });
  let contract = await readContract();
  const about = h("div", { id: "contract-about" });
  const slosBox = h("div", { id: "slo-list", class: "slo-list", "aria-live": "polite" });
  const violationsBox = h("div", { id: "violations-box" });
  const refreshed = h("p", { id: "contract-refreshed", class: "hint", "aria-live": "off" });
  const check = h("button", { type: "button", id: "check-now", class: "primary", onclick: () => checkNow().catch(fail) }, "Check now");
  const empty = h("section", { id: "no-contract", class: "card", hidden: true },
    h("p", {}, h("strong", {}, `${name} has no contract yet`), ": nothing states what it must achieve, so nothing is checked."),
    h("p", {}, "Set one with ", h("code", {}, `PUT ${API}/apps/${name}/contract`), " (YAML or JSON body, with the application's token or the admin token), for example:"),
    h("pre", { class: "example" }, CONTRACT_EXAMPLE),
    h("pre", { class: "example" }, `curl -X PUT -H "Authorization: Bearer $TOKEN" --data-binary @contract.yaml \\\n  ${location.origin}${API}/apps/${name}/contract`),
    h("p", { class: "hint" }, "Scopes: service, stage or end_to_end; conditions as in policies (p99(latency_ms) <= 300, availability >= 0.99, energy_j <= 0.5); then: alert, degrade, reroute, reject or none. See docs/contracts.md."));
  const withContract = h("div", { id: "contract-view" },
    h("div", { class: "toolbar" }, check, refreshed),
    h("h2", { id: "slos-heading" }, "Service-level objectives"), slosBox,
    h("h2", { id: "violations-heading" }, "Violations, newest first"),
    h("p", { class: "hint" }, "Each recorded when an SLO turns violated (one per episode), with the explanation and the action its SLO names."),
    violationsBox);
  mount(h("h1", {}, name, h("span", { class: "muted" }, " · contract")), appNav(name, "contract"), about, empty, withContract);

  function renderAbout() {
    const slos = contract?.document?.slos || [];
    about.replaceChildren(contract
      ? h("p", { class: "muted" }, `Contract ${contract.document?.name ? `${contract.document.name} ` : ""}version ${contract.version}: ${slos.length} SLO${slos.length === 1 ? "" : "s"}. The server checks it every few seconds; this page rereads the latest check every 5 s.`)
      : null);
    empty.hidden = Boolean(contract);
    withContract.hidden = !contract;
  }

  function renderSlos(results) {
    if (!results.length) {
      slosBox.replaceChildren(h("p", { class: "hint", id: "not-checked" }, "Not checked yet: press Check now, or wait for the server's next check."));
      return;
    }
    slosBox.replaceChildren(...results.map((r) => h("article", { class: `slo card slo-${r.status}`, "data-slo": r.slo, "data-status": r.status, "aria-labelledby": `slo-${r.slo}` },
      h("h3", { id: `slo-${r.slo}` }, h("span", { class: "slo-name" }, r.slo), " ", sloBadge(r.status), " ",
        badge(r.severity, SEVERITY_TONE[r.severity] || "neutral")),
      h("dl", { class: "slo-facts" },
        h("div", {}, h("dt", {}, "Condition"), h("dd", { class: "condition" }, h("code", {}, r.condition))),
        h("div", {}, h("dt", {}, "Scope"), h("dd", { class: "scope" }, scopeText(r))),
        h("div", {}, h("dt", {}, "Window"), h("dd", { class: "window" }, `${r.window} (${r.samples} read)`)),
        h("div", {}, h("dt", {}, "When violated"), h("dd", { class: "then" }, r.then && r.then !== "none" ? r.then : "nothing but recording it"))),
      h("table", { class: "checks" },
        h("thead", {}, h("tr", {}, ["Signal", "Must be", "Actual", "Status"].map((t) => h("th", { scope: "col" }, t)))),
        h("tbody", {}, r.checks.map((c) => h("tr", { "data-signal": c.signal, "data-value": c.value ?? "" },
          h("th", { scope: "row" }, h("code", {}, c.signal)),
          h("td", { class: "num" }, `${c.op} ${signalValue(c.signal, c.threshold)}`),
          h("td", { class: "num actual" }, signalValue(c.signal, c.value)),
          h("td", {}, sloBadge(c.status)))))),
      r.status === "violated" && r.explanation ? h("p", { class: "explanation" }, h("strong", {}, "Why: "), r.explanation) : null,
      r.status === "violated" && r.attribution?.length ? [h("div", { class: "blame-head" }, "Blamed"), blameList(r.attribution)] : null)));
  }

  async function renderViolations() {
    const found = await api(`/apps/${enc}/violations${query({ limit: 100 })}`);
    const actions = found.some((v) => v.action_id != null) ? await api(`/apps/${enc}/actions${query({ limit: 1000 })}`) : [];
    const byId = Object.fromEntries(actions.map((a) => [a.id, a]));
    if (!found.length) {
      violationsBox.replaceChildren(h("p", { class: "hint", id: "no-violations" }, "No violation recorded."));
      return;
    }
    violationsBox.replaceChildren(h("div", { class: "table-wrap" }, h("table", { id: "violation-list" },
      h("thead", {}, h("tr", {}, ["When", "SLO", "Severity", "Explanation", "Action taken"].map((t) => h("th", { scope: "col" }, t)))),
      h("tbody", {}, found.map((v) => {
        const a = v.action_id != null ? byId[v.action_id] : null;
        const style = a ? KIND_STYLE[a.kind] : null;
        const action = v.action_id == null
          ? h("span", { class: "muted" }, "none (its SLO names no remedy)")
          : h("span", { class: "taken", "data-kind": a?.kind || "" },
            h("strong", {}, `${style ? `${KIND_MARK[a.kind] || ""} ` : ""}${a ? a.kind : `action #${v.action_id}`}`),
            a?.service ? ` → ${a.service}` : "", a?.context?.away_from ? ` (away from ${a.context.away_from})` : "", " ",
            a ? outcomeBadge(a) : null, " ",
            h("a", { href: appLink(name, multi && a?.service ? a.service : null, "history"), class: "history-link" }, "in history"));
        return h("tr", { "data-violation": v.id, "data-slo": v.slo, "data-action": v.action_id ?? "" },
          h("td", { class: "nowrap" }, when(v.ts)),
          h("td", {}, h("strong", { class: "nowrap" }, v.slo), h("div", { class: "hint" }, scopeText(v))),
          h("td", {}, badge(v.severity, SEVERITY_TONE[v.severity] || "neutral")),
          h("td", { class: "explanation" }, v.explanation || "—"),
          h("td", {}, action));
      })))));
  }

  let refreshes = 0;
  async function refresh() {
    if (!contract) contract = await readContract();
    renderAbout();
    if (!contract) return;
    const [results] = await Promise.all([api(`/apps/${enc}/slos`), renderViolations()]);
    renderSlos(results);
    refreshed.textContent = `Latest check read ${new Date().toLocaleTimeString()}; reread every 5 s.`;
    slosBox.dataset.refreshes = String(++refreshes);
  }

  async function checkNow() {
    if (needLogin("check the contract")) return;
    check.disabled = true;
    try {
      const results = await api(`/apps/${enc}/contract/check`, { method: "POST" });
      renderSlos(results);
      await renderViolations();
      const count = (s) => results.filter((r) => r.status === s).length;
      announce(`Checked: ${Object.keys(SLO_STATUS).filter(count).map((s) => `${count(s)} ${sloState(s).label}`).join(", ") || "no SLO"}.`);
      slosBox.dataset.checked = String(Number(slosBox.dataset.checked || 0) + 1);
    } finally {
      check.disabled = false;
    }
  }

  await refresh();
  if (!shown()) return;
  const events = new EventSource(`${API}/apps/${enc}/stream`);
  events.addEventListener("violation", () => refresh().catch(() => {}));
  onLeave(() => events.close());
  every(5000, () => refresh().catch(() => {}));
}

/** Where each violated or at-risk SLO points on the pipeline: its own service or stage, and
 * for one end to end (or any with an explanation) the stages and services it blames. */
function sloMarks(results) {
  const marks = { stages: {}, services: {}, e2e: [], instances: {} };
  const add = (map, key, entry) => (map[key] ||= []).push(entry);
  for (const r of results) {
    if (r.status !== "violated" && r.status !== "at_risk") continue;
    if (r.scope === "service") add(marks.services, r.target, { r, own: true });
    else if (r.scope === "stage") add(marks.stages, r.target, { r, own: true });
    else marks.e2e.push({ r, own: true });
    if (r.status !== "violated") continue;
    for (const a of r.attribution || []) {
      if (a.instance && !(marks.instances[a.instance] || []).includes(r.slo)) add(marks.instances, a.instance, r.slo);
      if (a.service && !(r.scope === "service" && a.service === r.target)) add(marks.services, a.service, { r, own: false, a });
      if (a.stage && !(r.scope === "stage" && a.stage === r.target) && r.scope !== "service") add(marks.stages, a.stage, { r, own: false, a });
    }
  }
  return marks;
}
function blamedWhere(a) {
  const parts = [a.instance ? `${a.instance}${a.node ? ` on ${a.node}` : ""}` : null, a.share != null ? `${pct(a.share)} of the excess` : null].filter(Boolean);
  return parts.length ? ` (${parts.join(", ")})` : "";
}
/** The marks of one box as text (a word and a mark, never colour alone). */
function sloFlags(el, entries) {
  const worst = entries.some((e) => e.r.status === "violated") ? "violated" : entries.length ? "at_risk" : "";
  el.replaceChildren(...entries.map(({ r, own, a }) => h("li", { "data-slo": r.slo, "data-status": r.status, "data-own": own ? "yes" : "blamed" },
    sloBadge(r.status), " ", own ? `SLO ${r.slo}` : `blamed for SLO ${r.slo}`,
    h("span", { class: "hint" }, own ? ` (${r.condition})` : blamedWhere(a)))));
  el.hidden = !entries.length;
  return worst;
}

// -- observers -------------------------------------------------------------------------------

const OBSERVERS_EXAMPLE = `observers:
  - name: latency_outliers
    observer: isolation_forest
    params: {contamination: 0.02}
    metrics: latency_ms
    service: fast
    window: {size: 500}
    every: {samples: 500}
  - name: latency
    observer: summary
    window: {seconds: 60}
    every: {seconds: 10}
`;

/** What an observer's spec watches, in words (metrics, scope, window, cadence). */
function observerScope(spec) {
  const metrics = [].concat(spec.metrics || ["latency_ms"]).join(", ");
  const scope = [spec.stage ? `stage ${spec.stage}` : null, spec.service ? `service ${spec.service}` : null].filter(Boolean).join(", ") || "the whole app";
  const win = spec.window?.seconds != null ? `last ${spec.window.seconds} s` : `last ${spec.window?.size ?? 256} samples`;
  const cadence = spec.every?.seconds != null ? `every ${spec.every.seconds} s` : `every ${spec.every?.samples ?? 100} samples`;
  return `${metrics} of ${scope}; ${win}, ${cadence}`;
}

async function observersPage(name) {
  const shown = stillShown();
  const enc = encodeURIComponent(name);
  const readConfig = () => api(`/apps/${enc}/observers`).catch((error) => {
    if (error instanceof ApiError && error.status === 404) return null;
    throw error;
  });
  const about = h("div", { id: "observers-about" });
  const list = h("div", { id: "observer-list", class: "observer-list", "aria-live": "polite" });
  const refreshed = h("p", { id: "observers-refreshed", class: "hint", "aria-live": "off" });
  const empty = h("section", { id: "no-observers", class: "card", hidden: true },
    h("p", {}, h("strong", {}, `${name} has no observers yet`), ": nothing watches its telemetry beside the policies."),
    h("p", {}, "Set them with ", h("code", {}, `PUT ${API}/apps/${name}/observers`), " (YAML or JSON body, with the application's token or the admin token), for example:"),
    h("pre", { class: "example" }, OBSERVERS_EXAMPLE),
    h("pre", { class: "example" }, `curl -X PUT -H "Authorization: Bearer $TOKEN" --data-binary @observers.yaml \\\n  ${location.origin}${API}/apps/${name}/observers`),
    h("p", { class: "hint" }, "Observers: summary, correlation, isolation_forest, lof, half_space_trees; their values are signals observer.<name>.<field> for policies and contracts. See docs/observation.md."));
  const view = h("div", { id: "observers-view", hidden: true }, refreshed, list);
  mount(h("h1", {}, name, h("span", { class: "muted" }, " · observers")), appNav(name, "observers"), about, empty, view);

  const charts = {};
  function card(spec, runs, stats) {
    const latest = runs[0];
    const key = spec.name;
    const values = Object.entries(latest?.values || {});
    const flagged = latest ? latest.flagged_ts.length : 0;
    const anyFlags = runs.some((r) => r.flagged_ts.length);
    const chartId = `observer-chart-${key}`;
    if (anyFlags) charts[chartId] = runs;
    const status = !latest ? badge("? not run yet", "neutral") : latest.error ? badge("✗ failed", "bad") : badge("✓ ran", "ok");
    return h("article", { class: `observer card${latest?.error ? " observer-failed" : ""}`, "data-observer": key, "data-kind": spec.observer, "data-run": latest?.id ?? "", "data-flagged": latest ? String(flagged) : "", "aria-labelledby": `observer-${key}` },
      h("h3", { id: `observer-${key}` }, h("span", { class: "observer-name" }, key), " ", badge(spec.observer, "neutral"), " ", status),
      h("dl", { class: "slo-facts" },
        h("div", {}, h("dt", {}, "Watches"), h("dd", { class: "scope" }, observerScope(spec))),
        h("div", {}, h("dt", {}, "Latest run"), h("dd", { class: "when" }, latest ? `${when(latest.ts)} over ${latest.size} samples` : "—")),
        h("div", {}, h("dt", {}, "Flagged"), h("dd", { class: "flagged" }, latest ? `${flagged} sample${flagged === 1 ? "" : "s"}` : "—")),
        h("div", {}, h("dt", {}, "Runs / errors"), h("dd", { class: "stats" }, stats ? `${stats.runs} / ${stats.errors}${stats.dropped ? ` (${stats.dropped} dropped)` : ""}` : "—"))),
      latest?.error ? h("p", { class: "error-text run-error", role: "alert" }, h("strong", {}, "Error: "), latest.error) : null,
      stats?.last_error && !latest?.error ? h("p", { class: "hint" }, `Last error: ${stats.last_error}`) : null,
      values.length ? h("table", { class: "values" },
        h("thead", {}, h("tr", {}, h("th", { scope: "col" }, "Field"), h("th", { scope: "col", class: "num" }, "Value"), h("th", { scope: "col" }, "Signal"))),
        h("tbody", {}, values.map(([field, value]) => h("tr", { "data-field": field, "data-value": value ?? "" },
          h("th", { scope: "row" }, field), h("td", { class: "num" }, num(value, 3)), h("td", {}, h("code", {}, `observer.${key}.${field}`)))))) : null,
      latest?.explanation ? h("p", { class: "observer-explanation" }, latest.explanation) : null,
      anyFlags ? chartBox(chartId, `${key}: the flagged samples' times (x) in each of its last ${runs.length} run${runs.length === 1 ? "" : "s"} (y)`, true) : null);
  }

  function drawCharts() {
    for (const [id, runs] of Object.entries(charts)) {
      const older = [...runs].reverse();
      plot(id, [{
        type: "scatter", mode: "markers", name: "flagged",
        x: older.flatMap((r) => r.flagged_ts.map(toX)),
        y: older.flatMap((r) => r.flagged_ts.map(() => `#${r.id} ${clock(r.ts)}`)),
        marker: { size: 8, color: OI.vermillion, symbol: "x" },
        hovertemplate: "flagged sample at %{x}<br>run %{y}<extra></extra>",
      }], layout("", "run", { height: 120 + 22 * Math.min(older.length, 10), showlegend: false, yaxis: { type: "category", automargin: true, gridcolor: "#e5e8ec" } }));
      document.getElementById(id).dataset.points = String(older.reduce((n, r) => n + r.flagged_ts.length, 0));
    }
  }

  let refreshes = 0;
  async function refresh() {
    const config = await readConfig();
    empty.hidden = Boolean(config);
    view.hidden = !config;
    if (!config) {
      about.replaceChildren();
      return;
    }
    const specs = config.document?.observers || [];
    about.replaceChildren(h("p", { class: "muted" }, `Observers version ${config.version}: ${specs.length} observer${specs.length === 1 ? "" : "s"}, run by the server beside ingestion${config.skipped_batches ? `; ${config.skipped_batches} batches skipped (busy)` : ""}. This page rereads their runs every 5 s.`));
    const found = await api(`/apps/${enc}/observations${query({ limit: 200 })}`);
    const byName = {};
    for (const run of found) (byName[run.name] ||= []).push(run);
    for (const id of Object.keys(charts)) delete charts[id];
    for (const el of list.querySelectorAll(".js-plotly-plot")) Plotly.purge(el);
    list.replaceChildren(...(specs.length ? specs.map((spec) => card(spec, (byName[spec.name] || []).slice(0, 20), config.stats?.[spec.name])) : [h("p", { class: "hint" }, "The document lists no observer.")]));
    drawCharts();
    refreshed.textContent = `Runs read ${new Date().toLocaleTimeString()}; reread every 5 s and on each new run.`;
    list.dataset.refreshes = String(++refreshes);
  }

  await refresh();
  if (!shown()) return;
  const events = new EventSource(`${API}/apps/${enc}/stream`);
  const soon = throttle(() => refresh().catch(() => {}), 1000);
  events.addEventListener("observation", soon);
  onLeave(() => events.close());
  every(5000, () => refresh().catch(() => {}));
}

// -- live view -------------------------------------------------------------------------------

async function livePage(name, chosen) {
  const shown = stillShown();
  const enc = encodeURIComponent(name);
  // the view is one service's: the one named, else the first that has a policy
  const [detail, first] = await Promise.all([api(`/apps/${enc}`), api(`/apps/${enc}/status${query({ service: chosen })}`)]);
  const service = first.service;
  const multi = first.services.length > 1;
  const svc = encodeURIComponent(service);
  const mineOnly = (item) => !item.service || item.service === service;
  // last: the service's latest window wherever it is, in the range shown or not
  const data = { windows: [], actions: [], policy: null, status: null, last: null };
  const cards = h("dl", { class: "cards", id: "status-cards" });
  const reporting = h("dd", { id: "stat-reporting" });
  // said in words when telemetry stops, or when the range holds none (not five blank charts)
  const notice = h("div", { class: "notice", id: "live-notice", role: "status", hidden: true });
  const latest = h("div", { class: "card latest", id: "latest-action", "aria-live": "polite" }, "No adaptation yet in this range.");
  const liveBadge = h("span", { class: "live", id: "live-state" }, badge("connecting…", "neutral"));
  const range = rangePicker(() => load().catch(fail));
  const downloads = h("fieldset", {}, h("legend", {}, "Telemetry of this range"),
    h("div", { class: "row" },
      h("button", { type: "button", id: "download-csv", onclick: () => download("csv") }, "Download CSV"),
      h("button", { type: "button", id: "download-parquet", onclick: () => download("parquet") }, "Download Parquet")));
  const noPolicy = h("p", { class: "hint", id: "no-policy", hidden: true }, `${service} has no policy yet: it may report telemetry, but it has no windows and nothing adapts it. `,
    h("a", { href: policyLink(name, multi ? service : null) }, "Give it a policy"), ".");
  const stage = stageOf(detail, service);
  mount(
    h("h1", {}, name, multi ? [" · ", h("span", { class: "service-name" }, service)] : null, " ", liveBadge),
    h("div", { class: "toolbar service-bar" },
      h("p", { id: "live-service", "data-service": service },
        "Service ", h("strong", {}, service), stage ? ` in stage ${stage}` : "",
        multi ? ` — one of ${first.services.length} services of this application.` : "."),
      servicePicker(name, detail, service)),
    appNav(name, "live", multi ? service : null), noPolicy, cards,
    h("div", { class: "toolbar" }, range.el, downloads), notice, latest,
    h("div", { class: "charts" },
      chartBox("chart-main", "The policy's main metric per window, coloured by the model that served it; dashed: the threshold; markers: adaptations (hover for who, what and why).", true),
      chartBox("chart-energy", "Energy per inference (mJ) per window."),
      chartBox("chart-latency", "Latency percentiles (ms) per window."),
      chartBox("chart-drift", "Drift statistics per window against the model's training data; dashed: the drift threshold."),
      chartBox("chart-share", "Share of time each model served in this range.")));

  async function download(format) {
    if (needLogin("download telemetry")) return;
    const { start, end } = range.get();
    try {
      const blob = await api(`/apps/${enc}/telemetry.${format}${query({ start, end })}`, { blob: true });
      saveBlob(blob, `${name}-telemetry.${format}`);
      announce(`Telemetry downloaded as ${format.toUpperCase()}.`);
    } catch (error) {
      fail(error);
    }
  }

  async function refreshStatus(known = null) {
    const [status, policy] = await Promise.all([
      known || api(`/apps/${enc}/status${query({ service })}`),
      api(`/apps/${enc}/services/${svc}/policy`).then((p) => p.document).catch(() => null),
    ]);
    data.status = status;
    data.policy = policy;
    noPolicy.hidden = status.policy_version !== null;
    const s = status.window?.signals || {};
    const stat = (label, value, id) => h("div", { class: "stat" }, h("dt", {}, label), h("dd", { id }, value));
    const drift = Object.entries(status.drift).map(([k, d]) => `${k} ${num(d.value)}${d.drifted ? " (drifted)" : ""}`).join(", ");
    cards.replaceChildren(
      stat("Model in service", status.model ? `${status.model} v${status.version ?? "?"}` : "—", "stat-model"),
      stat("Strategy", `${status.strategy || "—"}${status.policy_version ? ` (policy v${status.policy_version})` : ""}`, "stat-strategy"),
      stat("Score", num(s.score), "stat-score"),
      stat(`Quality${status.quality ? ` (${status.quality})` : ""}`, num(s.quality), "stat-quality"),
      stat("Energy / inference", mJ(s.energy_j), "stat-energy"),
      stat("Drift", drift || "—", "stat-drift"),
      stat("Open violations", status.violations.length ? [...new Set(status.violations)].join("; ") : "none", "stat-violations"),
      stat("Switches", String(status.actions.switch_model), "count-switch"),
      stat("Retrains", String(status.actions.retrain), "count-retrain"),
      stat("Reuses", String(status.actions.reuse_version), "count-reuse"),
      h("div", { class: "stat" }, h("dt", {}, "Reporting"), reporting));
    showReporting();
  }

  /** When the latest window of this service closed, wherever it is. */
  function lastEnd() {
    const ends = [data.last?.end, data.windows.at(-1)?.end, data.status?.window?.end].filter((e) => typeof e === "number");
    return ends.length ? Math.max(...ends) : null;
  }
  /** How long a window of this service usually takes (s): the median of the latest. */
  function windowSpan() {
    const recent = data.windows.length ? data.windows.slice(-20) : data.last ? [data.last] : [];
    const spans = recent.map((w) => w.end - w.start).filter((x) => x > 0).sort((x, y) => x - y);
    return spans[Math.floor(spans.length / 2)] || 0;
  }
  /** live (a window closed lately), silent (none for five windows' time) or none (never). */
  function freshness() {
    const end = lastEnd();
    if (end === null) return { state: "none", end };
    return { state: silent(end, windowSpan()) ? "silent" : "live", end };
  }
  /** Whether the service reports: from its telemetry, whoever sends it (an sdk service
   * started elsewhere reports as well as a run started here). */
  function showReporting() {
    const { state, end } = freshness();
    const runs = data.status?.running || [];
    const here = runs.length ? ` · run ${runs.map((r) => `#${r}`).join(", ")} started here` : "";
    reporting.dataset.state = state;
    reporting.textContent = state === "none" ? `no telemetry yet${here}`
      : state === "silent" ? `no telemetry since ${since(end)}${here}`
      : `yes, last window ${isEpoch(end) ? ago(end) : `at ${clock(end)}`}${here}`;
  }
  /** What the notice above the charts says, or null when the charts speak for themselves. */
  function quietText(windows) {
    const { state, end } = freshness();
    if (state === "none") return data.status?.policy_version == null ? null : `No telemetry yet: no window of ${service} has closed. The charts fill in as its windows close.`;
    if (!windows.length) {
      return state === "silent"
        ? `No telemetry since ${since(end)} (${ago(end)}): nothing in this range.`
        : `No window in this range: the latest closed at ${when(end)}.`;
    }
    return state === "silent" ? `No telemetry since ${since(end)} (${ago(end)}): the charts end there.` : null;
  }
  function showNotice(windows) {
    const text = quietText(windows);
    notice.hidden = text === null;
    notice.dataset.state = freshness().state;
    if (text === null) return notice.replaceChildren();
    const all = range.get().start === null && range.get().end === null;
    const widen = !windows.length && !all && lastEnd() !== null;
    notice.replaceChildren(h("span", {}, text),
      ...(widen ? [h("button", { type: "button", id: "show-all-time", onclick: () => range.set("all") }, "Show all time")] : []));
  }
  /** A chart with nothing to draw says why, in the chart and to screen readers. */
  function explainEmpty(id, title, message) {
    const el = document.getElementById(id);
    if (!el) return;
    el.dataset.empty = message;
    el.setAttribute("aria-label", message);
    plot(id, [], layout(title, "", {
      xaxis: { visible: false }, yaxis: { visible: false },
      annotations: [{ xref: "paper", yref: "paper", x: 0.5, y: 0.5, showarrow: false, text: message.split("\n").map(escapeHtml).join("<br>"), font: { size: 13, color: "#56606b" } }],
    }));
  }
  function drawn(id) {
    const el = document.getElementById(id);
    if (!el) return;
    delete el.dataset.empty;
    el.setAttribute("aria-label", el.closest("figure")?.querySelector("figcaption")?.textContent || "");
  }
  /** Why the drift chart is empty while windows are not: no detector at all, or detectors
   * with nothing to compare yet. */
  function noDrift(policy) {
    if (!policy) return `No drift statistic: ${service} has no policy.`;
    const detectors = data.status?.drift_detectors || [];
    if (!detectors.length) {
      return `No drift detector: policy ${policy.policy} (strategy ${policy.strategy}) measures no drift.\nAdd one under drift: detectors:, or a boundary such as drift.psi > 0.2.`;
    }
    const watch = data.status?.drift_watch || "drift_value";
    return `No drift statistic yet from ${detectors.join(", ")}: the samples carry no ${watch},\nor there is no reference yet (the training data of the version in service, or a first window).`;
  }

  async function load() {
    const { start, end } = range.get();
    const [windows, actions, last] = await Promise.all([
      fetchWindows(name, start, end, service),
      api(`/apps/${enc}/actions${query({ start, end, limit: 1000, service })}`),
      api(`/apps/${enc}/windows${query({ limit: 1, service })}`),
    ]);
    data.windows = windows;
    data.last = last.at(-1) || null;
    data.actions = actions.reverse(); // oldest first, like the windows
    showDownsampled(windows);
    render();
  }

  /** Say in the main chart's caption when its points stand for several windows each. */
  function showDownsampled(windows) {
    const caption = document.getElementById("chart-main")?.closest("figure")?.querySelector("figcaption");
    if (!caption) return;
    let note = caption.querySelector("#downsampled-note");
    if (!note) {
      note = h("span", { id: "downsampled-note", class: "muted" });
      caption.append(" ", note);
    }
    note.textContent = downsampledNote(windows);
  }

  function trim() {
    // a relative range slides with the clock; what falls off the left is dropped
    const r = range.get();
    if (r.span) {
      const start = Date.now() / 1000 - r.span;
      data.windows = data.windows.filter((w) => w.end >= start);
      data.actions = data.actions.filter((a) => a.ts >= start);
    }
  }

  function render() {
    if (!shown()) return; // a fetch answered after the page was left: draw nothing
    const { windows, actions, policy } = data;
    showNotice(windows);
    showReporting();
    if (!windows.length) {
      const { state, end } = freshness();
      const why = state === "none" ? "No telemetry yet" : state === "silent" ? `No telemetry since ${since(end)}` : "No window in this range";
      explainEmpty("chart-main", "Main metric over time", why);
      explainEmpty("chart-energy", "Energy per inference", why);
      explainEmpty("chart-latency", "Latency percentiles", why);
      explainEmpty("chart-drift", "Drift", why);
      explainEmpty("chart-share", "Time share of each model", why);
      showLatest(actions);
      document.getElementById("chart-main")?.setAttribute("data-points", "0");
      return;
    }
    for (const id of ["chart-main", "chart-energy", "chart-latency", "chart-share"]) drawn(id);
    const models = [...new Set([...(data.status?.models || []), ...windows.map((w) => w.model)])];
    const metric = mainMetric(policy);
    const marks = actionMarks(actions, windows, metric.key, metric.lines.map((l) => l.value));
    plot("chart-main", [...perModel(windows, metric.key, models), ...marks.traces],
      layout(`${metric.key} over time`, metric.key, {
        shapes: [...thresholdShapes(metric.lines), ...marks.shapes], annotations: thresholdNotes(metric.lines), height: 330,
      }));
    const energy = windows.map((w) => ({ ...w, signals: { mj: w.signals.energy_j == null ? null : w.signals.energy_j * 1000 } }));
    plot("chart-energy", perModel(energy, "mj", models), layout("Energy per inference", "mJ"));
    const pcts = ["p50", "p95", "p99"].filter((p) => windows.some((w) => w.signals[`${p}(latency_ms)`] != null));
    plot("chart-latency", pcts.map((p, i) => ({
      type: "scatter", mode: "lines", name: p, x: windows.map((w) => toX(w.end)), y: windows.map((w) => w.signals[`${p}(latency_ms)`] ?? null),
      line: { color: [OI.sky, OI.blue, OI.black][i], dash: ["solid", "dash", "dot"][i] },
    })), layout("Latency percentiles", "ms"));
    const driftKeys = [...new Set(windows.flatMap((w) => Object.keys(w.signals).filter((k) => k.startsWith("drift."))))];
    const dLines = driftLines(policy);
    if (driftKeys.length) {
      drawn("chart-drift");
      plot("chart-drift", driftKeys.map((k, i) => ({
        type: "scatter", mode: "lines+markers", name: k, marker: { size: 4 }, x: windows.map((w) => toX(w.end)), y: windows.map((w) => w.signals[k] ?? null),
        line: { color: [OI.orange, OI.green, OI.purple, OI.sky][i % 4], dash: ["solid", "dash", "dot", "dashdot"][i % 4] },
      })), layout("Drift", "statistic", { shapes: thresholdShapes(dLines), annotations: thresholdNotes(dLines) }));
    } else {
      explainEmpty("chart-drift", "Drift", noDrift(policy));
    }
    const seconds = {};
    for (const w of windows) seconds[w.model] = (seconds[w.model] || 0) + Math.max(w.end - w.start, 0);
    const total = Object.values(seconds).reduce((a, b) => a + b, 0) || 1;
    const used = models.filter((m) => seconds[m]);
    plot("chart-share", [{
      type: "bar", orientation: "h", y: used, x: used.map((m) => (100 * seconds[m]) / total),
      marker: { color: used.map((m) => SERIES[models.indexOf(m) % SERIES.length]) },
      text: used.map((m) => `${num((100 * seconds[m]) / total, 1)} %`), textposition: "auto",
      hovertemplate: "%{y}: %{x:.1f} % of the time<extra></extra>",
    }], layout("Time share of each model", "", { xaxis: { title: { text: "% of time" }, range: [0, 100] }, yaxis: { automargin: true } }));
    showLatest(actions);
    document.getElementById("chart-main")?.setAttribute("data-points", String(windows.length));
  }

  function showLatest(actions) {
    const last = actions.filter(changes).at(-1);
    if (last) {
      latest.replaceChildren(h("strong", {}, "Latest adaptation: "),
        `${clock(last.ts)} — ${last.kind}${last.model ? ` → ${last.model}` : ""} by ${last.strategy}, because `,
        h("code", {}, last.trigger), explainValues(last), ". ",
        h("span", { class: "muted" }, last.reason), " ", badge(last.status, STATUS_TONE[last.status] || "neutral"), " ",
        h("a", { href: appLink(name, multi ? service : null, "history") }, "All adaptations"));
    } else {
      latest.textContent = "No adaptation yet in this range.";
    }
  }

  await refreshStatus(first);
  await load();

  if (!shown()) return; // left while loading: open no stream
  const soon = throttle(() => { trim(); render(); }, 1000);
  const statusSoon = throttle(() => refreshStatus().catch(() => {}), 2000);
  // Actions change status after delivery (pending → applied): reread the open ones now and then.
  const reread = throttle(async () => {
    const r = range.get();
    if (!r.live || !data.actions.some((a) => a.status === "pending" || a.status === "delivered")) return;
    const fresh = await api(`/apps/${enc}/actions${query({ start: r.start, limit: 1000, service })}`).catch(() => null);
    if (fresh) {
      data.actions = fresh.reverse();
      soon();
    }
  }, 3000);
  const events = new EventSource(`${API}/apps/${enc}/stream`);
  events.onopen = () => liveBadge.replaceChildren(badge("● live", "ok"));
  events.onerror = () => liveBadge.replaceChildren(badge("reconnecting…", "warn"));
  events.addEventListener("window", (event) => {
    const closed = JSON.parse(event.data);
    if (!mineOnly(closed)) return; // another service's
    if (!data.last || closed.end >= data.last.end) data.last = closed;
    if (!range.get().live) {
      showReporting(); // a fixed range keeps its charts; whether the service reports is news
      return;
    }
    data.windows.push(closed);
    soon();
    statusSoon();
    reread();
  });
  events.addEventListener("action", (event) => {
    if (!range.get().live) return;
    const action = JSON.parse(event.data);
    if (!mineOnly(action)) return;
    data.actions.push(action);
    if (changes(action)) announce(`${name}${multi ? `/${service}` : ""}: ${action.kind}${action.model ? ` → ${action.model}` : ""} (${action.trigger})`);
    soon();
    statusSoon();
  });
  onLeave(() => events.close());
  every(10_000, () => refreshStatus().then(soon).catch(() => {}));
}

// -- adaptation history ----------------------------------------------------------------------

async function historyPage(name, service = null) {
  const enc = encodeURIComponent(name);
  const appInfo = await api(`/apps/${enc}`);
  const multi = serviceNames(appInfo).length > 1;
  const statusSelect = h("select", { id: "status-filter" }, ["", "pending", "delivered", "applied", "failed"].map((s) => h("option", { value: s }, s || "any")));
  const range = rangePicker(() => load().catch(fail), "all");
  const holder = h("div", { class: "table-wrap" });
  const detail = h("section", { id: "action-detail", "aria-live": "polite" });
  const noops = h("input", { type: "checkbox", id: "show-noops" });
  statusSelect.addEventListener("change", () => load().catch(fail));
  noops.addEventListener("change", () => load().catch(fail));
  mount(h("h1", {}, `${name}${service ? ` · ${service}` : ""}: adaptation history`), appNav(name, "history", multi ? service : null),
    h("div", { class: "toolbar" }, servicePicker(name, appInfo, service, "history", "every service"), range.el,
      h("div", { class: "field" }, h("label", { for: "status-filter" }, "Outcome"), statusSelect),
      h("div", { class: "row", style: "align-items: center; gap: .35rem" }, noops,
        h("label", { for: "show-noops" }, "Also decisions that changed nothing")),
      h("button", { type: "button", onclick: () => load().catch(fail) }, "Refresh")),
    detail, holder);
  let actions = [];
  // each service's policy in force (its thresholds are drawn before / after), read once
  const policies = {};
  const policyOf = (which) => {
    policies[which] ??= api(`/apps/${enc}/services/${encodeURIComponent(which)}/policy`).then((p) => p.document).catch(() => null);
    return policies[which];
  };
  const modelsOf = (which) => appInfo.stages.flatMap((st) => st.services).find((s) => s.name === which)?.models || appInfo.models;

  async function load() {
    const { start, end } = range.get();
    for (const key of Object.keys(policies)) delete policies[key]; // reread: it may have changed
    actions = await api(`/apps/${enc}/actions${query({ start, end, status: statusSelect.value, limit: 1000, service })}`);
    if (!noops.checked) actions = actions.filter(changes);
    const rows = actions.map((a, i) => h("tr", { "data-action": a.id, "data-service": a.service },
      h("td", {}, when(a.ts)),
      multi ? h("td", {}, h("a", { href: appLink(name, a.service) }, a.service)) : null,
      h("td", {}, h("strong", {}, a.kind), a.model ? ` → ${a.model}${a.version ? ` v${a.version}` : ""}` : ""),
      h("td", {}, h("code", { class: "trigger" }, a.trigger)),
      h("td", {}, h("ul", { class: "values" }, Object.entries(a.values || {}).map(([k, v]) => h("li", { "data-value": k }, `${k} = ${signalText(k, v)}`)))),
      h("td", {}, h("div", {}, a.reason), h("div", { class: "hint" }, `by ${a.strategy}`)),
      h("td", {}, outcomeBadge(a), a.detail ? h("div", { class: "hint" }, a.detail) : null),
      h("td", {}, h("button", { type: "button", class: "before-after nowrap", onclick: () => show(i) }, "Before / after"))));
    holder.replaceChildren(actions.length
      ? h("table", { id: "history" },
        h("thead", {}, h("tr", {}, ["When", multi ? "Service" : null, "Action", "Boundary that fired", "Values read", "Why (who)", "Outcome", ""].filter((c) => c !== null).map((c) => h("th", { scope: "col" }, c)))),
        h("tbody", {}, rows))
      : h("p", { style: "padding: .75rem" }, "No adaptation in this range."));
  }

  async function show(index) {
    const a = actions[index];
    holder.querySelectorAll("tr.selected").forEach((tr) => tr.classList.remove("selected"));
    holder.querySelector(`tr[data-action="${a.id}"]`)?.classList.add("selected");
    const of = a.service || service;
    const policy = of ? await policyOf(of) : null;
    const before = await api(`/apps/${enc}/windows${query({ end: at(a) + 1e-6, limit: 15, service: of })}`);
    const spans = before.map((w) => w.end - w.start).filter((s) => s > 0).sort((x, y) => x - y);
    const span = spans[Math.floor(spans.length / 2)] || 1;
    const after = (await api(`/apps/${enc}/windows${query({ start: at(a) + 1e-6, end: at(a) + span * 20, limit: 1000, service: of })}`)).slice(0, 15);
    const windows = [...before, ...after];
    const models = [...new Set([...modelsOf(of), ...windows.map((w) => w.model)])];
    const metric = mainMetric(policy);
    const mean = (ws, key) => {
      const xs = ws.map((w) => w.signals[key]).filter((v) => typeof v === "number");
      return xs.length ? xs.reduce((p, q) => p + q, 0) / xs.length : null;
    };
    // one source: what the decision read, as it stored it (the values its rule read, else
    // its window's signals in its context), the figures its reason quotes; never recomputed
    const read = (action, key) => [action.values?.[key], action.context?.[key]].find((v) => typeof v === "number") ?? null;
    const marker = [{ type: "line", xref: "x", yref: "paper", x0: toX(at(a)), x1: toX(at(a)), y0: 0, y1: 1, line: { color: OI.vermillion, width: 2, dash: "dash" } }];
    const note = [{ x: toX(at(a)), xref: "x", y: 0.02, yref: "paper", xanchor: "left", yanchor: "bottom", text: ` ${a.kind}${a.model ? ` → ${a.model}` : ""}`, showarrow: false, bgcolor: "#ffffffcc", font: { color: "#9b3a00" } }];
    detail.replaceChildren(
      h("h2", { tabindex: "-1", id: "detail-heading" }, `Before and after${multi && of ? ` (${of})` : ""}: ${a.kind}${a.model ? ` → ${a.model}` : ""} at ${when(a.ts)}`),
      h("p", {}, "Boundary ", h("code", {}, a.trigger), ` fired; ${a.reason}. Outcome: `, outcomeBadge(a), a.detail ? ` ${a.detail}` : ""),
      h("div", { class: "table-wrap", style: "max-width: 40rem; margin-bottom: .75rem" }, h("table", { id: "before-after" },
        h("thead", {}, h("tr", {}, h("th", {}, ""), h("th", { class: "num" }, `before (${plural(before.length, "window")})`),
          h("th", { class: "num", title: "what the decision itself read and stored: its values, else its window's context" }, "the decision read"),
          h("th", { class: "num" }, `after (${plural(after.length, "window")})`))),
        h("tbody", {}, [metric.key, "quality", "energy_j", "p95(latency_ms)"].filter((k, i, all) => all.indexOf(k) === i).map((k) =>
          h("tr", { "data-signal": k }, h("th", { scope: "row" }, signalLabel(k)),
            h("td", { class: "num" }, signalText(k, mean(before, k))),
            h("td", { class: "num decided" }, signalText(k, read(a, k))),
            h("td", { class: "num" }, signalText(k, mean(after, k)))))))),
      h("div", { class: "charts" }, chartBox("chart-before-after", `${metric.key} around the adaptation`), chartBox("chart-before-after-energy", "Energy per inference around the adaptation")));
    plot("chart-before-after", perModel(windows, metric.key, models),
      layout(`${metric.key} before / after`, metric.key, { shapes: [...thresholdShapes(metric.lines), ...marker], annotations: [...thresholdNotes(metric.lines), ...note] }));
    const energy = windows.map((w) => ({ ...w, signals: { mj: w.signals.energy_j == null ? null : w.signals.energy_j * 1000 } }));
    plot("chart-before-after-energy", perModel(energy, "mj", models), layout("Energy per inference before / after", "mJ", { shapes: marker, annotations: note }));
    document.getElementById("detail-heading").focus();
  }

  await load();
}

// -- policies --------------------------------------------------------------------------------

/** The editor line of a field path such as ``boundaries[1].when`` (0-based), or null. */
function fieldLine(text, path) {
  const lines = text.split("\n");
  const parts = path.match(/[^.[\]]+/g) || [];
  let from = 0;
  let skip = 0;
  let found = null;
  for (const part of parts) {
    if (/^\d+$/.test(part)) {
      skip = Number(part);
      continue;
    }
    const key = new RegExp(`^\\s*(-\\s*)?"?${part.replace(/[^\w]/g, "\\$&")}"?\\s*:`);
    let seen = -1;
    for (let i = from; i < lines.length; i++) {
      if (key.test(lines[i]) && ++seen === skip) {
        found = i;
        break;
      }
    }
    if (seen < skip) return found;
    from = found + 1;
    skip = 0;
  }
  return found;
}

async function policiesPage(selected, chosen) {
  const [apps, presetList] = await Promise.all([api("/apps"), api("/presets")]);
  const appName = selected || apps[0]?.name || "";
  const appSelect = h("select", { id: "policy-app" }, apps.map((a) => h("option", { value: a.name }, a.name)));
  appSelect.value = appName;
  appSelect.addEventListener("change", () => (location.hash = policyLink(appSelect.value)));
  // a policy governs one service: the one named, else the app's first that has a policy
  const app = apps.find((a) => a.name === appName);
  const names = app ? serviceNames(app) : [];
  let service = chosen || null;
  if (app && !service) service = names.length > 1 ? (await api(`/apps/${encodeURIComponent(appName)}/status`)).service : names[0];
  const policyPath = app && service ? `/apps/${encodeURIComponent(appName)}/services/${encodeURIComponent(service)}/policy` : null;
  const serviceSelect = names.length > 1
    ? h("select", { id: "policy-service" }, app.stages.map((stage) => h("optgroup", { label: `stage ${stage.name}` },
      stage.services.map((s) => h("option", { value: s.name }, `${s.name} (${s.models.join(", ")})`)))))
    : null;
  if (serviceSelect) {
    serviceSelect.value = service;
    serviceSelect.addEventListener("change", () => (location.hash = policyLink(appName, serviceSelect.value)));
  }
  const whose = names.length > 1 ? `${appName}/${service}` : appName;
  const presetSelect = h("select", { id: "preset" },
    ["traffic", "vision", "other"].map((system) => {
      const mine = presetList.filter((p) => (p.system === system) || (system === "other" && !["traffic", "vision"].includes(p.system)));
      return mine.length ? h("optgroup", { label: system }, mine.map((p) => h("option", { value: p.name }, `${p.name} (${p.strategy}${p.harmonica ? ", Harmonica" : ""})`))) : null;
    }));
  const editor = h("textarea", { id: "policy-text", class: "policy", spellcheck: "false", autocapitalize: "off", "aria-describedby": "policy-issues" });
  const issues = h("div", { id: "policy-issues", "aria-live": "polite" });
  const version = h("p", { id: "policy-version", class: "muted" });
  const upload = h("input", { id: "policy-upload", type: "file", accept: ".yaml,.yml,.json,application/json,text/yaml" });
  let lastValid = null;

  mount(h("h1", {}, "Policies"),
    apps.length ? null : h("p", {}, "No application yet: you can still validate a policy and download it."),
    h("div", { class: "toolbar" },
      apps.length ? h("div", { class: "field" }, h("label", { for: "policy-app" }, "Application"), appSelect) : null,
      serviceSelect ? h("div", { class: "field" }, h("label", { for: "policy-service" }, "Service"), serviceSelect) : null,
      h("div", { class: "field" }, h("label", { for: "preset" }, "Start from a preset"), presetSelect),
      h("button", { type: "button", id: "load-preset", onclick: loadPreset }, "Load preset"),
      h("div", { class: "field" }, h("label", { for: "policy-upload" }, "Upload YAML or JSON"), upload)),
    version,
    h("div", { class: "editor-grid" },
      h("div", { class: "field" }, h("label", { for: "policy-text" }, "Policy (YAML or JSON)"), editor,
        h("div", { class: "row", style: "margin-top: .5rem" },
          h("button", { type: "button", id: "validate", onclick: () => validate(true) }, "Validate"),
          h("button", { type: "button", id: "save-policy", class: "primary", onclick: save, disabled: !apps.length }, "Save as new version and apply"),
          h("button", { type: "button", id: "download-yaml", onclick: () => downloadAs("yaml") }, "Download YAML"),
          h("button", { type: "button", id: "download-json", onclick: () => downloadAs("json") }, "Download JSON"))),
      h("section", { "aria-labelledby": "issues-heading" }, h("h2", { id: "issues-heading", style: "margin-top:0" }, "Validation"), issues,
        h("p", { class: "hint" }, "Validation runs as you type. Saving stores a new version and puts it in force at once in the running application."))));

  function showIssues(result) {
    const text = editor.value;
    if (result.valid) {
      editor.removeAttribute("aria-invalid");
      const p = result.policy;
      issues.replaceChildren(h("div", { class: "valid", id: "policy-valid" },
        h("strong", {}, "Valid. "), `Strategy ${p.strategy}, models ${p.models.join(", ")}, window ${p.window.samples ? `${p.window.samples} samples` : `${p.window.seconds} s`}.`,
        p.boundaries?.length ? h("ul", {}, p.boundaries.map((b) => h("li", {}, h("code", {}, b.when), ` → ${b.then}`))) : h("div", {}, "No boundaries: the strategy's own rules decide.")));
      return;
    }
    editor.setAttribute("aria-invalid", "true");
    issues.replaceChildren(h("ul", { class: "issues", id: "issue-list" }, result.issues.map((issue) => {
      const line = issue.field ? fieldLine(text, issue.field) : null;
      return h("li", { "data-field": issue.field },
        h("code", {}, issue.field || "(document)"), `: ${issue.reason}`,
        line === null ? null : [" ", h("button", { type: "button", class: "goto", onclick: () => gotoLine(line) }, `line ${line + 1}`)]);
    })));
  }

  function gotoLine(line) {
    const lines = editor.value.split("\n");
    const start = lines.slice(0, line).reduce((n, l) => n + l.length + 1, 0);
    editor.focus();
    editor.setSelectionRange(start, start + lines[line].length);
    const height = parseFloat(getComputedStyle(editor).lineHeight) || 20;
    editor.scrollTop = Math.max(0, (line - 3) * height);
  }

  async function validate(say = false) {
    const result = await api("/policy/validate", { method: "POST", text: editor.value });
    lastValid = result.valid ? result : null;
    showIssues(result);
    if (say) announce(result.valid ? "The policy is valid." : `${result.issues.length} problem(s) in the policy.`, !result.valid);
    return result;
  }

  /** Presets name a system; a policy must name the application it governs. */
  function forApp(text) {
    if (!appName) return text;
    if (/^system:/m.test(text)) return text.replace(/^system:.*$/m, `system: ${appName}`);
    return text;
  }

  async function loadPreset() {
    const preset = presetList.find((p) => p.name === presetSelect.value);
    if (!preset) return;
    editor.value = forApp(preset.text);
    version.textContent = `Preset ${preset.name}: not saved yet.`;
    await validate(true);
  }

  async function save() {
    if (needLogin("save a policy")) return;
    const result = await validate();
    if (!result.valid) {
      announce("Fix the problems shown next to the editor first.", true);
      return;
    }
    try {
      const stored = await api(policyPath, { method: "PUT", text: editor.value });
      version.textContent = `Saved as version ${stored.version} of ${whose}'s policy: in force now.`;
      announce(`Policy version ${stored.version} applied to ${whose}.`);
    } catch (error) {
      if (error.status === 422 && Array.isArray(error.detail)) showIssues({ valid: false, issues: error.detail });
      fail(error);
    }
  }

  async function downloadAs(format) {
    const result = await validate();
    if (!result.valid) {
      announce("Only a valid policy can be converted: fix the problems first.", true);
      return;
    }
    const type = format === "json" ? "application/json" : "application/yaml";
    const name = result.policy.policy || "policy";
    saveBlob(new Blob([result.text[format]], { type }), `${name}.${format}`);
  }

  upload.addEventListener("change", async () => {
    const file = upload.files[0];
    if (!file) return;
    editor.value = forApp(await file.text());
    version.textContent = `Uploaded ${file.name}: not saved yet.`;
    await validate(true);
  });

  let typing;
  editor.addEventListener("input", () => {
    clearTimeout(typing);
    typing = setTimeout(() => validate().catch(() => {}), 500);
  });

  if (appName && policyPath) {
    try {
      const current = await api(policyPath);
      const shown = await api("/policy/validate", { method: "POST", text: JSON.stringify(current.document) });
      editor.value = shown.valid ? shown.text.yaml : JSON.stringify(current.document, null, 2);
      version.textContent = `Version ${current.version} of ${whose}'s policy, in force since ${when(current.created)}.`;
    } catch (error) {
      if (error.status !== 404) throw error;
      version.textContent = `${whose} has no policy yet: start from a preset.`;
      // the service's own preset (pipeline-fast), else the system's live one
      const preset = presetList.find((p) => appName.startsWith(p.system) && p.name === `${p.system}-${service}`)
        || presetList.find((p) => appName.startsWith(p.system) && p.name.endsWith("-live")) || presetList[0];
      if (preset) {
        presetSelect.value = preset.name;
        editor.value = forApp(preset.text);
      }
    }
  } else if (presetList.length) {
    editor.value = presetList.find((p) => p.name === "traffic-live")?.text || presetList[0].text;
  }
  await validate();
}

// -- run a reference system ------------------------------------------------------------------

async function runPage() {
  const [systems, presetList] = await Promise.all([api("/systems"), api("/presets")]);
  const systemSelect = h("select", { id: "run-system" }, Object.keys(systems).map((s) => h("option", { value: s }, s)));
  const approach = h("select", { id: "run-approach", "aria-describedby": "approach-note" });
  const appInput = h("input", { id: "run-app", pattern: "[a-z0-9][a-z0-9_\\-]{0,63}", required: true, "aria-describedby": "approach-note" });
  const rate = h("input", { id: "run-rate", type: "number", min: "0.1", max: "100000", step: "any", value: "20" });
  const note = h("p", { id: "approach-note", class: "hint", "aria-live": "polite" });
  // logged out, nothing can be started: the button says so by being off, the line says why
  const startButton = h("button", { type: "submit", class: "primary", id: "start-run", disabled: !state.token, "aria-describedby": state.token ? null : "run-login" }, "Start");
  const holder = h("div", { id: "runs" });
  // next to Start: the run already going for the chosen application, if any (the server
  // runs one at a time per application and answers 409 to a second Start)
  const busyNote = h("p", { id: "run-busy", class: "warn-text", role: "status", hidden: true });
  // the application the name refers to, if it exists: {name, policy_version, strategy}
  let existing = null;
  let lookup = 0;
  // the name whose lookup the approaches reflect (data-app says it, for scripts and tests)
  let resolved = "";
  // the runs as last listed, and the server's last refusal: {app, message}
  let runsNow = [];
  let refused = null;

  const mine = () => presetList.filter((p) => p.system === systemSelect.value && !p.harmonica);
  /** The approaches: the application's own policy first (kept unless the user picks a
   * preset), then the system's presets. */
  function fillApproaches() {
    const system = systemSelect.value;
    const presets = mine();
    const chosen = approach.value;
    const keep = existing?.policy_version != null
      ? h("option", { value: "" }, `keep ${existing.name}'s policy (v${existing.policy_version}${existing.strategy ? `, ${existing.strategy}` : ""})`)
      : null;
    approach.replaceChildren(...[keep, ...presets.map((p) => h("option", { value: p.name }, `${p.name} (${p.strategy})`))].filter(Boolean));
    if (keep) approach.value = "";
    else if (chosen && presets.some((p) => p.name === chosen)) approach.value = chosen;
    else {
      const preferred = presets.find((p) => p.name === `${system}-live`);
      if (preferred) approach.value = preferred.name;
    }
    approach.dataset.app = resolved;
    explain();
  }
  /** Warn, next to Start, when the chosen application already has a run going: Start is
   * off (the server would refuse it) and the warning says which run, since when, and offers
   * to stop it. A refusal the list did not foresee (a run started elsewhere since the last
   * refresh) is shown in the same place, in the server's words. */
  function showBusy() {
    const app = appInput.value.trim();
    const busy = runsNow.find((r) => r.app === app && r.status === "running");
    if (busy || (refused && refused.app !== app)) refused = null; // the list says it now
    busyNote.hidden = !busy && !refused;
    startButton.toggleAttribute("aria-describedby", false);
    if (busy) {
      busyNote.replaceChildren(
        `A run of ${app} is already going (run #${busy.id}, started ${clock(busy.started)}). Stop it first: the server runs one at a time per application, so Start is off. `,
        h("button", { type: "button", class: "danger", id: "run-busy-stop", disabled: !state.token, onclick: () => stop(busy) }, `Stop run #${busy.id}`));
      startButton.disabled = true;
    } else if (refused) {
      busyNote.textContent = `The server did not start ${app}: ${refused.message}`;
    }
    if (busy || refused) startButton.setAttribute("aria-describedby", "run-busy");
    else if (!state.token) startButton.setAttribute("aria-describedby", "run-login");
  }
  function explain() {
    const system = systemSelect.value;
    startButton.disabled = !state.token || !approach.options.length;
    note.classList.toggle("warn-text", false);
    showBusy();
    if (!approach.options.length) {
      note.textContent = `No policy preset for ${system} ships with this server yet, so it cannot be started from here.`;
      return;
    }
    const models = `Models: ${systems[system].join(", ")}. `;
    if (existing?.policy_version != null && approach.value === "") {
      note.textContent = `${models}${existing.name} exists: its policy v${existing.policy_version} stays in force, as last saved.`;
    } else if (existing?.policy_version != null) {
      note.classList.toggle("warn-text", true);
      note.textContent = `${models}Starting puts ${approach.value} in force as a new version of ${existing.name}'s policy, in place of v${existing.policy_version}.`;
    } else {
      note.textContent = `${models}The approach is the policy put in force before the system starts.`;
    }
  }
  /** Find out whether the typed name is an application with a policy. */
  async function resolve() {
    const name = appInput.value.trim();
    const mineNow = ++lookup;
    let found = null;
    if (name && appInput.checkValidity()) {
      try {
        const status = await api(`/apps/${encodeURIComponent(name)}/status`);
        found = { name, policy_version: status.policy_version, strategy: status.strategy };
      } catch (error) {
        if (error.status !== 404) console.error(error);
      }
    }
    if (mineNow !== lookup) return; // a later name is being looked up
    existing = found;
    resolved = name;
    fillApproaches();
  }
  let typing;
  appInput.addEventListener("input", () => {
    appInput.dataset.edited = "true"; // the user's name is theirs: a change of system keeps it
    explain(); // the warning about a run going follows the name at once
    clearTimeout(typing);
    typing = setTimeout(resolve, 250);
  });
  approach.addEventListener("change", explain);
  systemSelect.addEventListener("change", () => {
    if (!appInput.dataset.edited) appInput.value = `${systemSelect.value}-live`;
    approach.value = "";
    fillApproaches();
    resolve();
  });
  appInput.value = `${systemSelect.value}-live`;
  fillApproaches();
  await resolve();

  const form = h("form", { class: "card", id: "run-form", onsubmit: async (event) => {
    event.preventDefault();
    if (needLogin("start a system")) return;
    startButton.disabled = true;
    try {
      const run = await api("/runs", { method: "POST", json: { system: systemSelect.value, app: appInput.value, preset: approach.value || null, rate: Number(rate.value) || null } });
      announce(`Started run ${run.id}: ${run.system} as ${run.app}.`);
      refused = null;
      await refresh();
    } catch (error) {
      if (error instanceof ApiError && error.status === 409) {
        refused = { app: appInput.value.trim(), message: error.message };
        await refresh().catch(() => {});
      }
      fail(error);
    } finally {
      explain();
    }
  } },
  h("div", { class: "row" },
    h("div", { class: "field" }, h("label", { for: "run-system" }, "Reference system"), systemSelect),
    h("div", { class: "field" }, h("label", { for: "run-approach" }, "Approach (policy)"), approach),
    h("div", { class: "field" }, h("label", { for: "run-app" }, "Application name"), appInput),
    h("div", { class: "field" }, h("label", { for: "run-rate" }, "Rate (observations / s)"), rate),
    startButton),
  busyNote,
  note);
  const toLogin = () => sessionStorage.setItem(NEXT_KEY, "#/run"); // and back here after
  mount(h("h1", {}, "Run a reference system"),
    h("p", { class: "muted" }, "Start a reference system live against this server with an approach of your choice, watch it adapt, stop it when done."),
    state.token ? null : h("p", { id: "run-login" }, badge("read-only", "warn"), " ", h("a", { href: "#/login", id: "run-login-link", onclick: toLogin }, "Log in"), " with the admin token to start or stop systems."),
    form, h("h2", {}, "Runs"), holder);

  async function stop(run) {
    if (needLogin("stop a system")) return;
    try {
      await api(`/runs/${run.id}`, { method: "DELETE" });
      announce(`Stopped run ${run.id}.`);
      await refresh();
    } catch (error) {
      fail(error);
    }
  }

  async function refresh() {
    const runs = await api("/runs");
    runsNow = runs;
    explain();
    holder.replaceChildren(runs.length ? h("div", { class: "table-wrap" }, h("table", { id: "run-table" },
      h("thead", {}, h("tr", {}, ["Run", "System", "Application", "Status", "Started", "Ended", "Log", ""].map((c) => h("th", { scope: "col" }, c)))),
      h("tbody", {}, runs.slice().reverse().map((run) => h("tr", { "data-run": run.id },
        h("td", {}, `#${run.id}`), h("td", {}, run.system),
        h("td", {}, run.app ? h("a", { href: `#/app/${encodeURIComponent(run.app)}` }, run.app) : "—"),
        h("td", {}, badge(run.status, STATUS_TONE[run.status] || "neutral"), run.exit_code !== null && run.status !== "stopped" ? h("div", { class: "hint" }, `exit ${run.exit_code}`) : null),
        h("td", {}, when(run.started)), h("td", {}, when(run.ended)),
        h("td", {}, run.log_tail ? h("details", {}, h("summary", {}, "log"), h("pre", { class: "log" }, run.log_tail)) : "—"),
        h("td", {}, run.status === "running" ? h("button", { type: "button", class: "danger stop-run", disabled: !state.token, title: state.token ? null : "Log in to stop it", onclick: () => stop(run) }, `Stop #${run.id}`) : null))))))
      : h("p", { class: "muted" }, "Nothing started from this server yet."));
  }
  await refresh();
  // keep an open <details> open: skip the refresh while the user reads a log
  every(2000, () => holder.querySelector("details[open]") || refresh().catch(() => {}));
}

// -- experiments -----------------------------------------------------------------------------

async function experimentsPage(id) {
  const systems = await api("/systems");
  const systemSelect = h("select", { id: "exp-system" }, Object.keys(systems).map((s) => h("option", { value: s }, s)));
  // the single-service traffic system first, as before pipelines joined the list (alphabetically first)
  if (systems.traffic) systemSelect.value = "traffic";
  const approaches = h("input", { id: "exp-approaches", value: "all", "aria-describedby": "exp-hint" });
  const limit = h("input", { id: "exp-limit", type: "number", min: "100", max: "1000000", placeholder: "whole stream" });
  const list = h("div", { id: "experiment-list" });
  const view = h("section", { id: "experiment-view" });
  mount(h("h1", {}, "Experiments"),
    h("p", { class: "muted" }, "Replay-lab results: every approach on the same recorded stream, energy against accuracy, with the hindsight oracle's frontier."),
    h("form", { class: "card", onsubmit: async (event) => {
      event.preventDefault();
      if (needLogin("run an experiment")) return;
      try {
        const names = approaches.value.split(",").map((s) => s.trim()).filter(Boolean);
        const started = await api("/experiments", { method: "POST", json: { system: systemSelect.value, approaches: names, limit: limit.value ? Number(limit.value) : null } });
        announce(`Experiment ${started.id} started.`);
        await refresh();
      } catch (error) {
        fail(error);
      }
    } },
    h("div", { class: "row" },
      h("div", { class: "field" }, h("label", { for: "exp-system" }, "System"), systemSelect),
      h("div", { class: "field" }, h("label", { for: "exp-approaches" }, "Approaches"), approaches),
      h("div", { class: "field" }, h("label", { for: "exp-limit" }, "Samples (optional)"), limit),
      h("button", { type: "submit", class: "primary", id: "start-experiment", disabled: !state.token, title: state.token ? null : "Log in to run a replay" }, "Run replay")),
    state.token ? null : h("p", { class: "hint", id: "exp-login" }, badge("read-only", "warn"), " ",
      h("a", { href: "#/login", onclick: () => sessionStorage.setItem(NEXT_KEY, "#/experiments") }, "Log in"), " with the admin token to run a replay."),
    h("p", { id: "exp-hint", class: "hint" }, "'all', or names separated by commas: harmonia, harmone, switch, switch+retrain, single-<model>, single-<model>+retrain, oracle.")),
    h("h2", {}, "Results"), list, view);

  async function refresh() {
    const items = await api("/experiments");
    list.replaceChildren(items.length ? h("ul", {}, items.map((item) => h("li", {},
      item.status === "finished"
        ? h("a", { href: `#/experiments/${encodeURIComponent(item.id)}`, "aria-current": item.id === id ? "page" : null }, item.id)
        : h("span", {}, item.id),
      " ", badge(item.status, STATUS_TONE[item.status] || "neutral"),
      item.run?.status === "failed" ? h("details", {}, h("summary", {}, "log"), h("pre", { class: "log" }, item.run.log_tail)) : null)))
      : h("p", { class: "muted" }, "No experiment yet: run one above, or with `harmonia replay <system> --out <data dir>/experiments/<name>`."));
    return items;
  }
  const items = await refresh();
  every(3000, () => refresh().catch(() => {}));
  const open = id || items.find((i) => i.status === "finished")?.id;
  if (open) await showExperiment(view, open);
}

async function showExperiment(view, id) {
  const result = await api(`/experiments/${encodeURIComponent(id)}`);
  const metric = result.quality_metric || "r2";
  const rows = result.approaches.map((a) => ({ ...a, metrics: a.metrics || { r2: a.r2, mae: a.mae } }));
  const names = Object.keys(rows[0]?.metrics || { [metric]: 0 });
  rows.sort((x, y) => (y.metrics[metric] ?? -Infinity) - (x.metrics[metric] ?? -Infinity));
  // the best of each column is marked in words as well as weight
  const best = {
    energy: Math.min(...rows.map((r) => r.energy_j_per_inference)),
    quality: Math.max(...rows.map((r) => r.metrics[metric] ?? -Infinity)),
  };
  view.replaceChildren(
    h("h2", {}, `${id}`),
    h("p", { class: "muted" }, `${result.system} (${result.menu} menu), ${result.samples} samples, windows of ${result.window}; quality is ${metric}.`),
    h("div", { class: "table-wrap" }, h("table", { id: "experiment-table" },
      h("thead", {}, h("tr", {}, [h("th", { scope: "col" }, "Approach"), h("th", { class: "num", scope: "col" }, "Energy / inference"),
        ...names.map((n) => h("th", { class: "num", scope: "col" }, n)),
        ...["Inference ms", "Switches", "Retrains", "Reuses", "Mean score"].map((c) => h("th", { class: "num", scope: "col" }, c))])),
      h("tbody", {}, rows.map((r) => h("tr", {},
        h("th", { scope: "row" }, r.approach),
        h("td", { class: "num" }, r.energy_j_per_inference === best.energy ? h("strong", {}, `${mJ(r.energy_j_per_inference)} (least)`) : mJ(r.energy_j_per_inference)),
        ...names.map((n) => h("td", { class: "num" }, n === metric && r.metrics[n] === best.quality ? h("strong", {}, `${num(r.metrics[n], 4)} (best)`) : num(r.metrics[n], 4))),
        h("td", { class: "num" }, num(r.inference_ms, 3)), h("td", { class: "num" }, r.switches), h("td", { class: "num" }, r.retrains),
        h("td", { class: "num" }, r.reuses), h("td", { class: "num" }, num(r.objective, 4))))))),
    h("div", { class: "charts", style: "margin-top: .75rem" }, chartBox("chart-frontier", `Energy per inference against ${metric}; the line is the hindsight oracle's frontier (what any approach could at best reach).`, true)));
  const frontier = (result.frontier || []).slice().sort((p, q) => p[0] - q[0]);
  const symbols = ["circle", "square", "diamond", "triangle-up", "triangle-down", "cross", "x", "star", "hexagon", "pentagon", "hourglass", "bowtie"];
  const points = rows.map((r) => ({ name: r.approach, x: r.energy_j_per_inference * 1000, y: r.metrics[metric] }));
  // energies span orders of magnitude (a linear model costs a fraction of an LSTM): on a
  // linear axis the cheap approaches and the oracle's frontier pile up at the left edge
  const energies = [...points.map((p) => p.x), ...frontier.map((p) => p[0] * 1000)].filter((x) => typeof x === "number");
  const log = energies.length > 0 && energies.every((x) => x > 0);
  const el = document.getElementById("chart-frontier");
  if (!el || !window.Plotly) return;
  await Plotly.react(el, [
    {
      type: "scatter", mode: "lines+markers", name: "oracle frontier", x: frontier.map((p) => p[0] * 1000), y: frontier.map((p) => p[1]),
      line: { color: OI.black, dash: "dash", shape: "hv" }, marker: { size: 5, color: OI.black },
      hovertemplate: "oracle: %{x:.3~f} mJ, %{y:.4f}<extra></extra>",
    },
    ...rows.map((r, i) => ({
      type: "scatter", mode: "markers", name: r.approach, x: [points[i].x], y: [points[i].y],
      marker: { size: 12, color: SERIES[i % SERIES.length], symbol: symbols[i % symbols.length], line: { color: "#000", width: 1 } },
      hovertemplate: `${r.approach}: %{x:.3~f} mJ, ${metric} %{y:.4f}<br>switches ${r.switches}, retrains ${r.retrains}, reuses ${r.reuses}<extra></extra>`,
    })),
  ], layout("Energy–accuracy", metric, {
    height: 480, legend: { orientation: "v", x: 1.02, y: 1 },
    xaxis: { type: log ? "log" : "linear", title: { text: `energy per inference (mJ${log ? ", log scale" : ""})` }, gridcolor: "#e5e8ec", automargin: true,
      ...(log ? logTicks(Math.min(...energies), Math.max(...energies)) : {}) },
  }), PLOT_CONFIG);
  placeLabels(el, points, frontier.map((p) => ({ x: p[0] * 1000, y: p[1] })));
}

/** Ticks of a log axis at 1, 2 and 5 of each decade, written in full (0.02, not "2"). */
function logTicks(low, high, mantissas = [1, 2, 5]) {
  const values = [];
  for (let e = Math.floor(Math.log10(low / 2)); e <= Math.ceil(Math.log10(high * 2)); e++) {
    for (const m of mantissas) {
      const v = m * 10 ** e;
      if (v >= low / 2 && v <= high * 2) values.push(Number(v.toPrecision(1)));
    }
  }
  if (values.length < 4 && mantissas.length < 9) return logTicks(low, high, [1, 2, 3, 4, 5, 6, 7, 8, 9]);
  return values.length >= 2 ? { tickmode: "array", tickvals: values, ticktext: values.map((v) => num(v, 6)) } : {};
}

/** Name each point of a scatter chart next to it, where the name covers no other name, no
 * marker and no point of ``line``: tried around the point, nearest first; a name moved
 * away from its point is tied to it by a thin leader line. */
function placeLabels(el, points, line = []) {
  const full = el._fullLayout;
  if (!full?.xaxis || !full?.yaxis) return;
  const xa = full.xaxis;
  const ya = full.yaxis;
  const X = (x) => xa._offset + xa.l2p(xa.d2l(x));
  const Y = (y) => ya._offset + ya.l2p(ya.d2l(y));
  const area = { x0: xa._offset, x1: xa._offset + xa._length, y0: ya._offset, y1: ya._offset + ya._length };
  const context = document.createElement("canvas").getContext("2d");
  context.font = "11px system-ui, sans-serif";
  const box = (cx, cy, w, hgt) => ({ x0: cx - w / 2, x1: cx + w / 2, y0: cy - hgt / 2, y1: cy + hgt / 2 });
  const overlaps = (a, b) => a.x0 < b.x1 && b.x0 < a.x1 && a.y0 < b.y1 && b.y0 < a.y1;
  const valid = points.filter((p) => Number.isFinite(p.x) && Number.isFinite(p.y) && (xa.type !== "log" || p.x > 0));
  const taken = valid.map((p) => box(X(p.x), Y(p.y), 13, 13)); // markers of 12 px
  const drawnLine = line.filter((p) => Number.isFinite(p.x) && Number.isFinite(p.y) && (xa.type !== "log" || p.x > 0));
  for (const p of drawnLine) taken.push(box(X(p.x), Y(p.y), 8, 8));
  const annotations = [];
  for (const p of valid) {
    const px = X(p.x);
    const py = Y(p.y);
    const w = context.measureText(p.name).width + 6;
    const hgt = 15;
    const candidates = [];
    for (const ring of [1, 2, 3, 4]) {
      const dy = 8 + hgt / 2 + (ring - 1) * 16;
      const dx = 10 + w / 2 + (ring - 1) * 16;
      candidates.push([0, -dy], [0, dy], [dx, 0], [-dx, 0], [dx, -dy], [-dx, -dy], [dx, dy], [-dx, dy]);
    }
    const inside = (b) => b.x0 >= area.x0 && b.x1 <= area.x1 && b.y0 >= area.y0 && b.y1 <= area.y1;
    const fits = candidates.find(([dx, dy]) => {
      const b = box(px + dx, py + dy, w, hgt);
      return inside(b) && !taken.some((t) => overlaps(b, t));
    }) || candidates.find(([dx, dy]) => inside(box(px + dx, py + dy, w, hgt))) || candidates[0];
    const [dx, dy] = fits;
    taken.push(box(px + dx, py + dy, w, hgt));
    const far = Math.abs(dx) > 10 + w / 2 || Math.abs(dy) > 8 + hgt / 2;
    annotations.push({
      x: xa.type === "log" ? Math.log10(p.x) : p.x, y: p.y, xref: "x", yref: "y", text: escapeHtml(p.name),
      ax: dx, ay: dy, showarrow: true, arrowhead: 0, arrowwidth: 1, standoff: 7,
      arrowcolor: far ? "#56606b" : "rgba(0,0,0,0)", font: { size: 11 }, bgcolor: "#ffffffcc",
    });
  }
  Plotly.relayout(el, { annotations }).then(() => { el.dataset.labels = String(annotations.length); });
}


// -- infrastructure: nodes and deployments ---------------------------------------------------

/** A share of a node's CPU as a bar and a number (over 90 %: saturated). */
function loadBar(share) {
  if (share === null || share === undefined) return "—";
  const pct = Math.round(share * 100);
  const tone = share >= 0.9 ? "bad" : share >= 0.7 ? "warn" : "ok";
  return h("span", { class: "load", "data-share": String(share) },
    h("meter", { min: 0, max: 1, low: 0.7, high: 0.9, optimum: 0.3, value: Math.min(share, 1), "aria-label": `${pct}% of the CPU requested` }),
    " ", badge(`${pct}%`, tone));
}

async function nodesPage() {
  const holder = h("div", { id: "node-list", class: "table-wrap" });
  mount(h("h1", {}, "Nodes"),
    h("p", { class: "hint" }, "The node inventory, with what the deployments in force place on each node and the share of its CPU they request. Set it with ",
      h("code", {}, `PUT ${API}/nodes`), " (admin; YAML, JSON or ROHE's add_node) or ", h("code", {}, "harmonia nodes put FILE"), ". See docs/orchestration.md."),
    holder);
  const nodes = await api("/nodes");
  if (!nodes.length) {
    holder.replaceChildren(h("p", { id: "no-nodes" }, h("strong", {}, "The inventory is empty"), ": no node to place services on yet."));
    return;
  }
  holder.replaceChildren(h("table", { id: "nodes" },
    h("thead", {}, h("tr", {}, ["Node", "Cores", "Memory", "Accelerators", "Labels", "CPU requested", "Runs"].map((c) => h("th", { scope: "col" }, c)))),
    h("tbody", {}, nodes.map((n) => h("tr", { "data-node": n.name },
      h("th", { scope: "row" }, n.name),
      h("td", { class: "num" }, String(n.spec.cores.length)),
      h("td", { class: "num" }, `${n.spec.memory_mib} MiB`),
      h("td", {}, n.spec.accelerators.map((a) => `${a.name} (${a.type})`).join(", ") || "—"),
      h("td", {}, Object.entries(n.spec.labels).map(([k, v]) => `${k}=${v}`).join(", ") || "—"),
      h("td", { class: "load-cell" }, `${n.allocated_cpu_millicores} m `, loadBar(n.utilisation)),
      h("td", { class: "runs" }, n.services.length
        ? n.services.map((s, i) => [i ? ", " : "", h("a", { href: appLink(s.app, null, "deployment") }, `${s.app}/${s.service}`), ` ×${s.replicas}`])
        : "—"))))));
}

async function deploymentPage(name) {
  const enc = encodeURIComponent(name);
  mount(h("h1", {}, name, h("span", { class: "muted" }, " · deployment")), appNav(name, "deployment"));
  let found;
  try {
    found = await api(`/apps/${enc}/deployment`);
  } catch (error) {
    if (!(error instanceof ApiError && error.status === 404)) throw error;
    mount(h("section", { id: "no-deployment", class: "card" },
      h("p", {}, h("strong", {}, `${name} has no deployment yet`), ": its services are not placed on the node inventory."),
      h("p", {}, "Place them with ", h("code", {}, `PUT ${API}/apps/${name}/deployment`), " (the services' requirements and a placer; see docs/orchestration.md), for example:"),
      h("pre", { class: "example" }, "placer: best-fit\nservices:\n  - {name: fast, cpu_millicores: 500, memory_mib: 512, replicas: 2}")));
    return;
  }
  const plan = found.in_force.plan;
  const byNode = {};
  for (const p of plan.placements) (byNode[p.node] ||= []).push(p);
  const objective = plan.objective;
  mount(
    h("section", { class: "card", id: "plan-summary" },
      h("p", {}, h("strong", {}, `Version ${found.in_force.version}`), ` — ${found.in_force.reason}`),
      h("p", { class: "hint" }, `${plan.placer} (${plan.status}): ${objective.name} ${num(objective.value, 4)} ${objective.unit}`,
        objective.bound !== null ? `, bound ${num(objective.bound, 4)}` : "", plan.gap !== null ? `, gap ${num(plan.gap * 100, 2)} %` : "",
        `; ${plan.placements.length} replica(s) placed, ${plan.unplaced.length} unplaced`)),
    h("h2", {}, "Where each replica runs"),
    h("div", { class: "table-wrap" }, h("table", { id: "placements" },
      h("thead", {}, h("tr", {}, ["Node", "Replicas"].map((c) => h("th", { scope: "col" }, c)))),
      h("tbody", {}, Object.entries(byNode).map(([node, placed]) => h("tr", { "data-node": node },
        h("th", { scope: "row" }, node),
        h("td", {}, placed.map((p) => `${p.service}#${p.replica}`).join(", "))))))),
    plan.unplaced.length ? h("div", { id: "unplaced" }, h("h2", {}, "Not placed"),
      h("ul", {}, plan.unplaced.map((u) => h("li", {}, `${u.service}#${u.replica}: ${u.reason}`)))) : null,
    h("h2", {}, "Why"),
    h("div", { id: "explanations" }, plan.explanations.map((e) => h("article", { class: "card explanation", "data-service": e.service },
      h("h3", {}, e.service, " ", badge(`${e.placed} placed`, "ok"), e.unplaced ? [" ", badge(`${e.unplaced} unplaced`, "bad")] : null),
      h("p", {}, e.why),
      Object.keys(e.rejected).length ? h("p", { class: "hint rejected" }, "Nodes turned down: ",
        Object.entries(e.rejected).map(([kind, n]) => `${kind} ${n}`).join(", ")) : null,
      e.examples.length ? h("ul", { class: "examples" }, [...new Map(e.examples.map((r) => [`${r.node} ${r.detail}`, r])).values()]
        .map((r) => h("li", {}, h("code", {}, r.node), ` (${r.kind}): ${r.detail}`))) : null))),
    h("h2", {}, "Versions"),
    h("div", { class: "table-wrap" }, h("table", { id: "deployment-history" },
      h("thead", {}, h("tr", {}, ["Version", "Status", "When", "Why", "Action"].map((c) => h("th", { scope: "col" }, c)))),
      h("tbody", {}, found.history.map((d) => h("tr", { "data-version": String(d.version), "data-status": d.status },
        h("td", { class: "num" }, String(d.version)), h("td", {}, badge(d.status, STATUS_TONE[d.status] || "neutral")),
        h("td", {}, when(d.created)), h("td", {}, d.reason), h("td", {}, d.action_id === null ? "—" : `#${d.action_id}`)))))),
    h("p", {}, h("a", { href: `${API}/apps/${enc}/deployment/manifests`, id: "manifests-link", download: `${name}-manifests.yaml` }, "Download the Kubernetes manifests (YAML)")));
}

// -- the registry: models and datasets per domain ---------------------------------------------

/** The plural of a route (models) and the kind the API's replies say (model). */
const KIND_OF = { models: "model", datasets: "dataset" };
const KINDS_OF = { model: "models", dataset: "datasets" };
/** How many versions one request reads, and how many get an energy card. */
const VERSION_PAGE = 100;
const ENERGY_VERSIONS = 12;
const ALIAS_TONE = { production: "ok", staging: "info" };
const PHASE_COLOR = { training: OI.blue, evaluation: OI.orange, promotion: OI.purple };

/** Append to ``el``, skipping the nulls of optional parts and flattening lists. */
function put(el, ...nodes) {
  el.append(...nodes.flat(Infinity).filter((n) => n !== null && n !== undefined && n !== false));
  return el;
}

function catalogLink(domain, kinds, name, version = null) {
  const base = `#/catalog/${encodeURIComponent(domain)}/${kinds}/${encodeURIComponent(name)}`;
  return version === null || version === undefined ? base : `${base}/${version}`;
}
function artifactPath(domain, kinds, name) {
  return `/domains/${encodeURIComponent(domain)}/${kinds}/${encodeURIComponent(name)}`;
}
/** A lineage reference (vendor/dataset/flows@3) as a link to that version's page. */
function lineageLink(ref, cls) {
  if (!ref) return null;
  const m = String(ref).match(/^([^/]+)\/(model|dataset)\/([^@]+)@(\d+)$/);
  if (!m) return h("code", {}, ref);
  const [, domain, kind, name, version] = m;
  return h("a", { href: catalogLink(domain, KINDS_OF[kind], name, version), class: cls, "data-ref": ref }, `${domain}/${name}@${version}`);
}
function bytes(n) {
  if (n === null || n === undefined) return "—";
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let value = n;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit += 1;
  }
  return unit ? `${num(value, 1)} ${units[unit]}` : `${n} B`;
}
/** Energy in total at a readable scale: 35 J, 1.2 kJ, 3.4 MJ; under 1 J in mJ (as
 * harmonia.core.units.format_joules). */
function joules(j) {
  if (j === null || j === undefined) return "—";
  if (Math.abs(j) < 1) return mJ(j);
  if (Math.abs(j) >= 1e6) return `${num(j / 1e6, 2)} MJ`;
  if (Math.abs(j) >= 1e3) return `${num(j / 1e3, 2)} kJ`;
  return `${num(j, 2)} J`;
}
function aliasBadge(alias, version) {
  return badge(version === undefined ? alias : `${alias} → v${version}`, ALIAS_TONE[alias] || "neutral");
}
function tags(list) {
  return list?.length ? h("span", { class: "tags" }, list.map((t) => h("span", { class: "tag" }, t))) : "—";
}
/** An empty state: what is missing, and the command or route that fills it. */
function emptyState(id, message, ...how) {
  return h("div", { class: "empty", id, "data-empty": "" }, h("p", {}, message), how.some(Boolean) ? h("ul", { class: "how" }, how.filter(Boolean).map((x) => h("li", {}, x))) : null);
}

/** Reading the registry needs a token: say so, and come back here after logging in. */
function loginFirst(what) {
  return h("section", { class: "card empty", id: "catalog-login" },
    h("p", {}, h("strong", {}, `Log in to ${what}`), ": the registry answers a domain key or the admin token only, never an anonymous request."),
    h("p", {}, h("a", { href: "#/login", onclick: () => sessionStorage.setItem(NEXT_KEY, location.hash) }, "Log in with the admin token"),
      " (it sees every domain), or read it from a shell: ", h("code", {}, "HARMONIA_TOKEN=hk_… harmonia models list")));
}

/** A refusal or failure of the API as a sentence for people, never the raw reply. */
function catalogProblem(error, what) {
  const status = error instanceof ApiError ? error.status : 0;
  if (![401, 403, 404, 422].includes(status)) console.error(error);
  const box = h("section", { class: "card problem", id: "catalog-problem", role: "alert", "data-status": String(status) });
  const back = h("a", { href: "#/catalog" }, "Back to the models and datasets");
  if (status === 401) {
    put(box, h("p", {}, h("strong", {}, "The server does not accept this tab's token any more"), " (it may have restarted with another admin token). ",
      h("a", { href: "#/login", onclick: () => sessionStorage.setItem(NEXT_KEY, location.hash) }, "Log in again"), "."));
  } else if (status === 403) {
    put(box, h("p", {}, h("strong", {}, `This token may not read ${what}`), ": that needs scope read on its domain, or a grant of it to a domain of the token. "), h("p", {}, back));
  } else if (status === 404) {
    put(box, h("p", {}, h("strong", {}, `There is no ${what}`), ": the name may be mistyped, or it was deleted."), h("p", {}, back));
  } else if (status === 422) {
    put(box, h("p", {}, h("strong", {}, `${what} is not a valid name`), ": names are letters, digits, '_', '.' and '-', up to 64 characters."), h("p", {}, back));
  } else {
    put(box, h("p", {}, h("strong", {}, `The registry did not answer for ${what}`), status ? ` (HTTP ${status})` : " (no reply)", ": try again in a moment."),
      h("p", {}, h("button", { type: "button", onclick: () => route() }, "Try again"), " ", back));
  }
  return box;
}

/** Each domain the caller sees, with its models and datasets and the latest version of each. */
async function catalogPage() {
  const root = main;
  put(root, h("h1", {}, "Models and datasets"),
    h("p", { class: "muted" }, "The registry, per domain: each model and dataset with its latest version, where its aliases point, its tags and the domains it is shared with. Open one for its versions, lineage, promotions and energy from training to serving. See docs/registry.md."));
  if (!state.token) {
    put(root, loginFirst("read the registry"));
    return;
  }
  let domains;
  try {
    domains = await api("/domains");
  } catch (error) {
    put(root, catalogProblem(error, "the domains"));
    return;
  }
  const read = await Promise.all(domains.map(async (domain) => {
    const d = encodeURIComponent(domain.name);
    try {
      const [models, datasets, recent] = await Promise.all([
        api(`/domains/${d}/models`), api(`/domains/${d}/datasets`), api(`/catalog${query({ domain: domain.name, limit: 1000 })}`)]);
      const latest = new Map(recent.map((v) => [`${v.kind}/${v.name}/${v.version}`, v]));
      // an artifact whose latest version is beyond the page of recent ones is asked for alone
      const all = [...models, ...datasets];
      await Promise.all(all.filter((a) => a.latest !== null && !latest.has(`${a.kind}/${a.name}/${a.latest}`)).map((a) =>
        api(`${artifactPath(a.domain, KINDS_OF[a.kind], a.name)}/versions/${a.latest}`).then((v) => latest.set(`${a.kind}/${a.name}/${v.version}`, v)).catch(() => null)));
      for (const a of all) a.latestVersion = a.latest === null ? null : latest.get(`${a.kind}/${a.name}/${a.latest}`) || null;
      return { domain, models, datasets };
    } catch (error) {
      return { domain, error };
    }
  }));
  const everything = read.flatMap((r) => (r.error ? [] : [...r.models, ...r.datasets]));
  const count = (kind) => everything.filter((a) => a.kind === kind).length;
  const filter = h("input", { id: "catalog-filter", type: "search", placeholder: "name or tag", "aria-describedby": "catalog-filter-hint" });
  const status = h("select", { id: "catalog-status" }, [["", "any"], ["production", "production"], ["staging", "staging"], ["development", "development only"]].map(([v, t]) => h("option", { value: v }, t)));
  const shown = h("p", { id: "catalog-filter-hint", class: "hint", "aria-live": "polite" });
  put(root, 
    h("p", { id: "catalog-summary" }, `${domains.length} domain${domains.length === 1 ? "" : "s"} · ${count("model")} model${count("model") === 1 ? "" : "s"} · ${count("dataset")} dataset${count("dataset") === 1 ? "" : "s"}`),
    everything.length ? h("div", { class: "toolbar" },
      h("div", { class: "field" }, h("label", { for: "catalog-filter" }, "Filter"), filter),
      h("div", { class: "field" }, h("label", { for: "catalog-status" }, "Status"), status), shown) : null,
    everything.length ? null : emptyState("catalog-empty", "The registry is empty: no domain has a model or a dataset yet.",
      [h("code", {}, "harmonia models push model.pt --name lstm --domain vendor --label 1.0"), " (a key with scope write, or the admin token)"],
      [h("code", {}, "harmonia datasets push flows.csv --name flows --domain vendor")],
      ["or ", h("code", {}, `POST ${API}/domains/{domain}/models/{name}/versions`), " (multipart: file, metadata)"]),
    read.map((r) => domainSection(r, everything)));

  function apply() {
    const text = filter.value.trim().toLowerCase();
    let visible = 0;
    for (const row of root.querySelectorAll("tr[data-name]")) {
      const hay = `${row.dataset.name} ${row.dataset.tags}`.toLowerCase();
      const statusOk = !status.value || (status.value === "development" ? row.dataset.aliases === "" : row.dataset.aliases.split(" ").includes(status.value));
      row.hidden = !(hay.includes(text) && statusOk);
      if (!row.hidden) visible += 1;
    }
    shown.textContent = text || status.value ? `${visible} shown` : "";
  }
  filter.addEventListener("input", apply);
  status.addEventListener("change", apply);
}

function domainSection({ domain, models, datasets, error }, everything) {
  const name = domain.name;
  const section = h("section", { class: "card domain", "data-domain": name, "aria-labelledby": `domain-${name}` },
    h("h2", { id: `domain-${name}` }, name, h("span", { class: "muted" }, ` · ${domain.org}`),
      domain.target ? h("span", { class: "hint" }, ` · target ${domain.target.context || "current context"}/${domain.target.namespace || "default"}`) : null));
  if (error) {
    put(section, catalogProblem(error, `the registry of ${name}`));
    return section;
  }
  const shared = everything.filter((a) => a.domain !== name && a.grants.includes(name));
  if (!models.length && !datasets.length) {
    put(section, emptyState(`empty-${name}`, `No model or dataset in ${name} yet.`,
      [h("code", {}, `harmonia models push model.pt --name NAME --domain ${name}`)],
      [h("code", {}, `harmonia datasets push data.csv --name NAME --domain ${name}`)],
      ["or ", h("code", {}, `POST ${API}/domains/${name}/models/NAME/versions`), " with the bytes as file"]));
  } else {
    for (const [kinds, list] of [["models", models], ["datasets", datasets]]) {
      put(section, h("h3", {}, `${kinds === "models" ? "Models" : "Datasets"} (${list.length})`),
        list.length ? artifactTable(name, kinds, list)
          : h("p", { class: "empty hint", "data-empty": kinds }, `No ${kinds} in ${name} yet: `, h("code", {}, `harmonia ${kinds} push FILE --name NAME --domain ${name}`), "."));
    }
  }
  if (shared.length) {
    put(section, h("h3", {}, `Shared with ${name} (${shared.length})`),
      h("ul", { class: "shared", id: `shared-${name}` }, shared.map((a) => h("li", { "data-name": `${a.domain}/${a.name}` },
        h("a", { href: catalogLink(a.domain, KINDS_OF[a.kind], a.name) }, `${a.domain}/${a.name}`), ` (${a.kind}`,
        a.latest === null ? "" : `, latest v${a.latest}`, ")"))));
  }
  return section;
}

function artifactTable(domain, kinds, list) {
  return h("div", { class: "table-wrap" }, h("table", { id: `${kinds}-${domain}`, class: "artifacts" },
    h("thead", {}, h("tr", {}, ["Name", "Latest", "Status", "Aliases", "Tags", "Shared with", "Updated", "By"].map((c) => h("th", { scope: "col" }, c)))),
    h("tbody", {}, list.map((a) => {
      const v = a.latestVersion;
      const aliases = Object.entries(a.aliases);
      return h("tr", { "data-name": a.name, "data-kind": a.kind, "data-latest": a.latest === null ? "" : String(a.latest),
        "data-tags": (v?.tags || []).join(" "), "data-aliases": aliases.map(([alias]) => alias).join(" ") },
      h("th", { scope: "row" }, h("a", { href: catalogLink(domain, kinds, a.name) }, a.name)),
      h("td", { class: "latest-version" }, a.latest === null ? h("span", { class: "muted" }, "no version") : [`v${a.latest}`, v?.label ? h("span", { class: "muted" }, ` · ${v.label}`) : null]),
      h("td", {}, v ? badge(v.status, ALIAS_TONE[v.status] || "neutral") : "—"),
      h("td", { class: "aliases" }, aliases.length ? aliases.map(([alias, n], i) => [i ? " " : "", aliasBadge(alias, n)]) : "—"),
      h("td", {}, tags(v?.tags)),
      h("td", { class: "grants" }, a.grants.length ? a.grants.join(", ") : "—"),
      h("td", {}, when(v?.created ?? a.created)),
      h("td", {}, v?.created_by ?? a.created_by));
    }))));
}

/** One model or dataset: versions, aliases and their history, promotions, lineage, grants,
 * and energy from training to serving per version. */
async function catalogItemPage(domain, kinds, name, selected) {
  const root = main;
  const kind = KIND_OF[kinds];
  const path = artifactPath(domain, kinds, name);
  const what = `${kind} ${domain}/${name}`;
  put(root, h("p", { class: "crumbs" }, h("a", { href: "#/catalog" }, "Models and datasets"), ` › ${domain} › ${kinds} ›`),
    h("h1", {}, name, h("span", { class: "muted" }, ` · ${kind} in ${domain}`)));
  if (!state.token) {
    put(root, loginFirst(`read ${what}`));
    return;
  }
  let artifact, versions, aliases, approvals, grants;
  try {
    artifact = await api(path); // first: a name that is not there is one refusal, not five
    [versions, aliases, approvals, grants] = await Promise.all([
      api(`${path}/versions?limit=${VERSION_PAGE}`), api(`${path}/aliases`), api(`${path}/approvals`), api(`${path}/grants`)]);
  } catch (error) {
    put(root, catalogProblem(error, what));
    return;
  }
  const wanted = selected === undefined ? null : Number(selected);
  // an older version named in the route: read on until it is there
  let more = versions.length === VERSION_PAGE;
  while (wanted !== null && more && !versions.some((v) => v.version === wanted) && versions.at(-1).version > wanted) {
    const next = await api(`${path}/versions?limit=${VERSION_PAGE}&offset=${versions.length}`).catch(() => []);
    versions.push(...next);
    more = next.length === VERSION_PAGE;
  }
  const cli = kind === "model" ? "models" : "datasets";
  const latest = versions.find((v) => v.version === artifact.latest);
  put(root, 
    h("dl", { class: "cards", id: "artifact-summary" },
      summaryStat("Latest", artifact.latest === null ? "none" : `v${artifact.latest}${latest?.label ? ` · ${latest.label}` : ""}`),
      summaryStat("Versions", more ? `${versions.length}+` : String(versions.length)),
      summaryStat("Aliases", Object.keys(artifact.aliases).length ? Object.entries(artifact.aliases).map(([a, n]) => `${a} → v${n}`).join(", ") : "none"),
      summaryStat("Shared with", artifact.grants.length ? artifact.grants.join(", ") : "no other domain"),
      summaryStat("Created", `${when(artifact.created)} by ${artifact.created_by}`)),
    wanted !== null && !versions.some((v) => v.version === wanted)
      ? h("p", { class: "card notice", id: "missing-version" }, `${name} has no version ${wanted} (any more): the versions there are are listed below.`) : null);

  // -- versions
  const versionRows = h("tbody", {});
  const addRows = (list) => versionRows.append(...list.map((v) => versionRow(v, wanted)));
  addRows(versions);
  const older = h("button", { type: "button", id: "older-versions", hidden: !more, onclick: async () => {
    older.disabled = true;
    try {
      const next = await api(`${path}/versions?limit=${VERSION_PAGE}&offset=${versions.length}`);
      versions.push(...next);
      addRows(next);
      older.hidden = next.length < VERSION_PAGE;
    } catch (error) {
      announce("The older versions could not be read; try again.", true);
      console.error(error);
    } finally {
      older.disabled = false;
    }
  } }, "Show older versions");
  put(root, h("h2", { id: "versions-head" }, "Versions"),
    versions.length ? [h("div", { class: "table-wrap" }, h("table", { id: "versions", "aria-labelledby": "versions-head" },
      h("thead", {}, h("tr", {}, ["Version", "Status", "Tags", "Size", "sha256", "Created", "By", "Lineage", "Library"].map((c) => h("th", { scope: "col" }, c)))),
      versionRows)), older,
    h("p", { class: "hint" }, "Download one, checked against its sha256: ", h("code", {}, `harmonia ${cli} pull ${name} <version|latest|alias> --domain ${domain}`))]
      : emptyState("no-versions", `${name} has no version left (each was deleted; numbers are never given again).`,
        [h("code", {}, `harmonia ${cli} push FILE --name ${name} --domain ${domain}`)]));

  // -- aliases, promotions
  const moves = aliases.history.slice().reverse();
  put(root, h("h2", {}, "Aliases"),
    Object.keys(aliases.aliases).length ? h("div", { class: "table-wrap narrow" }, h("table", { id: "aliases" },
      h("thead", {}, h("tr", {}, ["Alias", "Points at", "Since", "Moved by"].map((c) => h("th", { scope: "col" }, c)))),
      h("tbody", {}, Object.entries(aliases.aliases).map(([alias, n]) => {
        const last = moves.find((m) => m.alias === alias);
        return h("tr", { "data-alias": alias, "data-version": String(n) },
          h("th", { scope: "row" }, aliasBadge(alias)), h("td", {}, h("a", { href: catalogLink(domain, kinds, name, n) }, `v${n}`)),
          h("td", {}, when(last?.ts)), h("td", {}, last?.moved_by ?? "—"));
      }))))
      : emptyState("no-aliases", `No alias points at a version of ${name}.`,
        [h("code", {}, `PUT ${API}${path}/aliases/staging`), " with ", h("code", {}, '{"version": 1, "reason": "…"}'), " (write)"],
        ["production moves only by promotion, which records the approval"]),
    moves.length ? [h("h3", {}, "History of the aliases"), h("div", { class: "table-wrap" }, h("table", { id: "alias-history" },
      h("thead", {}, h("tr", {}, ["When", "Alias", "Move", "By", "Why", "Approval"].map((c) => h("th", { scope: "col" }, c)))),
      h("tbody", {}, moves.map((m) => h("tr", { "data-alias": m.alias, "data-from": m.from_version ?? "", "data-to": m.to_version ?? "" },
        h("td", {}, when(m.ts)), h("td", {}, aliasBadge(m.alias)),
        h("td", { class: "move" }, m.from_version === null ? "set " : `v${m.from_version} → `, m.to_version === null ? "unset" : `v${m.to_version}`),
        h("td", {}, m.moved_by), h("td", {}, m.reason || "—"),
        h("td", {}, m.approval_id === null ? "—" : h("a", { href: "#approvals", onclick: (e) => { e.preventDefault(); document.getElementById(`approval-${m.approval_id}`)?.scrollIntoView({ block: "center" }); } }, `#${m.approval_id}`)))))))] : null,
    h("h2", {}, "Promotions"),
    approvals.length ? h("div", { class: "table-wrap" }, h("table", { id: "approvals" },
      h("thead", {}, h("tr", {}, ["Approval", "When", "Version", "Move", "Approver", "Note"].map((c) => h("th", { scope: "col" }, c)))),
      h("tbody", {}, approvals.slice().reverse().map((a) => h("tr", { id: `approval-${a.id}`, "data-version": String(a.version) },
        h("td", {}, `#${a.id}`), h("td", {}, when(a.ts)), h("td", {}, h("a", { href: catalogLink(domain, kinds, name, a.version) }, `v${a.version}`)),
        h("td", {}, `${a.from_alias} → ${a.to_alias}`), h("td", {}, a.approver), h("td", {}, a.note || "—"))))))
      : emptyState("no-approvals", `No version of ${name} has been promoted yet.`,
        kind === "model"
          ? [h("code", {}, `harmonia models promote ${name} --domain ${domain} --note "what you checked"`), " promotes the staging version to production (admin)"]
          : [h("code", {}, `POST ${API}${path}/promote`), " with ", h("code", {}, '{"note": "…"}'), " promotes the staging version to production (admin)"]));

  // -- lineage: what else names a version of this one
  const derived = h("div", { id: "derived-holder" });
  put(root, h("h2", {}, kind === "dataset" ? "Models trained on it" : "Derived versions"), derived);
  const deriving = derivedFrom(derived, domain, kind, name);

  // -- grants
  put(root, h("h2", {}, "Shared with"),
    grants.length ? h("div", { class: "table-wrap narrow" }, h("table", { id: "grants" },
      h("thead", {}, h("tr", {}, ["Domain", "Granted", "By"].map((c) => h("th", { scope: "col" }, c)))),
      h("tbody", {}, grants.map((g) => h("tr", { "data-domain": g.domain }, h("th", { scope: "row" }, g.domain), h("td", {}, when(g.granted)), h("td", {}, g.granted_by))))))
      : emptyState("no-grants", `${name} is not shared: only ${domain} reads it.`,
        [h("code", {}, `PUT ${API}${path}/grants/{domain}`), " lets another domain read every version (admin)"]));

  // -- energy from training to serving, per version
  const energyGrid = h("div", { class: "energy-grid", id: "energy" });
  put(root, h("h2", {}, "Energy from training to serving"),
    h("p", { class: "hint" }, `Per version${versions.length > ENERGY_VERSIONS ? ` (the newest ${ENERGY_VERSIONS})` : ""}: the joules of its training runs, evaluations and promotions as recorded with it`,
      kind === "model" ? ", and the joules per inference in service (in mJ) in each domain, from the telemetry of the applications that report serving this version." : "; a dataset is not served."),
    energyGrid);
  await Promise.all([deriving, energyCards(energyGrid, path, kind, versions.slice(0, ENERGY_VERSIONS), wanted)]);

  if (wanted !== null) root.querySelector(`#versions tr[data-version="${wanted}"]`)?.scrollIntoView({ block: "center" });
}

function summaryStat(label, value) {
  return h("div", { class: "stat" }, h("dt", {}, label), h("dd", {}, value));
}

function versionRow(v, wanted) {
  const lineage = [
    v.trained_on ? h("div", { class: "trained-on" }, "trained on ", lineageLink(v.trained_on, "lineage-link")) : null,
    v.retrained_from ? h("div", { class: "retrained-from" }, "retrained from ", lineageLink(v.retrained_from, "lineage-link")) : null,
  ].filter(Boolean);
  const library = v.metadata?.library ? `${v.metadata.library}${v.metadata.library_version ? ` ${v.metadata.library_version}` : ""}` : "—";
  return h("tr", { "data-version": String(v.version), "data-status": v.status, class: v.version === wanted ? "selected" : null, "aria-current": v.version === wanted ? "true" : null },
    h("th", { scope: "row" }, `v${v.version}`, v.label ? h("span", { class: "muted" }, ` · ${v.label}`)
      : null),
    h("td", {}, badge(v.status, ALIAS_TONE[v.status] || "neutral"),
      v.aliases.filter((a) => a !== v.status).map((a) => [" ", aliasBadge(a)])),
    h("td", {}, tags(v.tags)),
    h("td", { class: "num size", "data-bytes": String(v.size) }, bytes(v.size)),
    h("td", { class: "sha" }, h("code", { title: v.sha256, "data-sha256": v.sha256 }, `${v.sha256.slice(0, 12)}…`)),
    h("td", {}, when(v.created)),
    h("td", { class: "by" }, v.created_by),
    h("td", { class: "lineage" }, lineage.length ? lineage : "—"),
    h("td", {}, library));
}

/** Versions (among the newest 1000 models the caller reads) whose lineage names this one. */
async function derivedFrom(holder, domain, kind, name) {
  let found;
  try {
    found = await api(`/catalog${query({ kind: "model", limit: 1000 })}`);
  } catch (error) {
    console.error(error);
    holder.replaceChildren(h("p", { class: "hint" }, "What was made from it could not be read just now."));
    return;
  }
  const prefix = `${domain}/${kind}/${name}@`;
  const named = (ref) => ref && ref.startsWith(prefix);
  const rows = found.filter((v) => named(v.trained_on) || named(v.retrained_from));
  holder.replaceChildren(rows.length
    ? h("ul", { id: "derived", class: "derived" }, rows.map((v) => h("li", { "data-ref": `${v.domain}/${v.name}@${v.version}` },
      h("a", { href: catalogLink(v.domain, "models", v.name, v.version) }, `${v.domain}/${v.name}@${v.version}`),
      named(v.trained_on) ? ` trained on v${v.trained_on.slice(prefix.length)}` : null,
      named(v.trained_on) && named(v.retrained_from) ? "," : null,
      named(v.retrained_from) ? ` retrained from v${v.retrained_from.slice(prefix.length)}` : null)))
    : emptyState("no-derived", kind === "dataset"
      ? `No model version names ${name} as what it was trained on (among the newest 1000 model versions).`
      : `No model version was retrained from ${name} (among the newest 1000 model versions).`,
    [h("code", {}, kind === "dataset" ? `harmonia models push FILE --name NAME --domain ${domain} --trained-on ${name}@1` : `harmonia models push FILE --name ${name} --domain ${domain} --retrained-from ${name}@1`),
      " records it, or ", h("code", {}, kind === "dataset" ? "trained_on" : "retrained_from"), " in the upload's metadata"]));
}

async function energyCards(grid, path, kind, versions, wanted) {
  if (!versions.length) {
    grid.replaceChildren(h("p", { class: "muted" }, "No version, so no energy."));
    return;
  }
  const read = await Promise.all(versions.map((v) => api(`${path}/versions/${v.version}/energy`).catch((error) => ({ error }))));
  if (read.every((e) => e.error)) {
    grid.classList.remove("energy-grid");
    grid.replaceChildren(h("p", { class: "hint", id: "energy-unread" }, "The energy of these versions could not be read just now; reload the page to try again."));
    return;
  }
  const anything = read.some((e) => !e.error && (e.runs.length || e.serving.length));
  if (!anything) {
    grid.classList.remove("energy-grid");
    grid.replaceChildren(emptyState("no-energy", "No energy is recorded for these versions yet.",
      [h("code", {}, `POST ${API}${path}/versions/{version}/energy`), " with ", h("code", {}, '{"phase": "training", "joules": 1200, "seconds": 60, "source": "rapl"}'), " (write; phase training, evaluation or promotion)"],
      ["reference systems record their training energy when they register a version through ", h("code", {}, "ServerRegistry")],
      kind === "model" ? ["joules per inference appear once an application reports serving a version: ", h("code", {}, "model"), " and ", h("code", {}, "model_version"), " in its telemetry, with ", h("code", {}, "energy_j")] : null));
    return;
  }
  const cards = versions.map((v, i) => energyCard(v, read[i], kind, wanted));
  grid.replaceChildren(...cards.map((c) => c.card));
  for (const c of cards) c.draw?.();
}

function energyCard(v, e, kind, wanted) {
  const id = `energy-chart-${v.version}`;
  const card = h("article", { class: `card energy-card${v.version === wanted ? " selected" : ""}`, "data-version": String(v.version) },
    h("h3", {}, `v${v.version}`, v.label ? h("span", { class: "muted" }, ` · ${v.label}`) : null, " ", badge(v.status, ALIAS_TONE[v.status] || "neutral")));
  if (e.error) {
    put(card, h("p", { class: "hint" }, "Its energy could not be read just now."));
    return { card };
  }
  const phases = ["training", "evaluation", "promotion"].filter((p) => e.runs.some((r) => r.phase === p));
  const serving = kind === "model" ? e.serving : [];
  const stored = v.metadata?.energy?.energy_j_per_inference;
  card.dataset.trainingJ = String(e.training_j);
  card.dataset.evaluationJ = String(e.evaluation_j);
  const sources = [...new Set(e.runs.map((r) => r.source))];
  put(card, h("dl", { class: "energy-facts" },
    h("div", {}, h("dt", {}, "training"), h("dd", { class: "training" }, phases.includes("training") ? joules(e.training_j) : "—")),
    h("div", {}, h("dt", {}, "evaluation"), h("dd", { class: "evaluation" }, phases.includes("evaluation") ? joules(e.evaluation_j) : "—")),
    phases.includes("promotion") ? h("div", {}, h("dt", {}, "promotion"), h("dd", { class: "promotion" }, joules(e.promotion_j))) : null,
    // what the version stored (energy_j_per_inference: a strategy's figure until the model
    // is measured in service), apart from what its service measured
    kind === "model" && typeof stored === "number" ? h("div", { class: "stored-fact" }, h("dt", {}, "per inference as stored"),
      h("dd", { class: "stored", "data-joules": String(stored), title: "energy.energy_j_per_inference in the version's metadata, in joules" }, mJ(stored))) : null,
    kind === "model" ? h("div", { class: "serving-fact" }, h("dt", {}, "per inference in service"),
      h("dd", { class: "serving" }, serving.length
        ? serving.map((s) => h("div", { "data-domain": s.domain, "data-joules": String(s.joules_per_inference) }, `${mJ(s.joules_per_inference)} in ${s.domain} (${s.samples} samples)`))
        : h("span", { class: "muted" }, "not served yet"))) : null),
  sources.length ? h("p", { class: "hint" }, `Measured by ${sources.join(", ")}; ${e.runs.length} run${e.runs.length === 1 ? "" : "s"} recorded.`) : null);
  const bars = phases.length + serving.length;
  if (!bars) {
    put(card, h("p", { class: "muted" }, "Nothing recorded for this version."));
    return { card };
  }
  const caption = `Energy of v${v.version}: ${phases.map((p) => `${p} ${joules(e[`${p}_j`])}`).join(", ")}${serving.length ? `; in service ${serving.map((s) => `${mJ(s.joules_per_inference)} per inference in ${s.domain}`).join(", ")}` : ""}.`;
  put(card, h("div", { class: "chart small", id, role: "img", "aria-label": caption, "data-points": String(bars) }));
  const draw = () => {
    const both = phases.length && serving.length;
    const data = [];
    if (phases.length) {
      data.push({ type: "bar", name: "J", x: phases, y: phases.map((p) => e[`${p}_j`]), xaxis: "x", yaxis: "y",
        marker: { color: phases.map((p) => PHASE_COLOR[p]) }, text: phases.map((p) => joules(e[`${p}_j`])), textposition: "auto",
        hovertemplate: "%{x}: %{y:.2f} J<extra></extra>" });
    }
    if (serving.length) {
      const axis = phases.length ? "2" : "";
      data.push({ type: "bar", name: "mJ / inference", x: serving.map((s) => s.domain), y: serving.map((s) => s.joules_per_inference * 1000),
        xaxis: `x${axis}`, yaxis: `y${axis}`, customdata: serving.map((s) => s.samples), marker: { color: OI.green },
        text: serving.map((s) => mJ(s.joules_per_inference)), textposition: "auto",
        hovertemplate: "in service in %{x}: %{y:.3~f} mJ per inference (%{customdata} samples)<extra></extra>" });
    }
    const axes = {};
    const left = phases.length ? "joules" : "mJ per inference";
    axes.xaxis = { domain: both ? [0, 0.5] : [0, 1], automargin: true };
    axes.yaxis = { title: { text: left, font: { size: 11 } }, gridcolor: "#e5e8ec", rangemode: "tozero", automargin: true };
    if (both) {
      axes.xaxis2 = { domain: [0.64, 1], anchor: "y2", automargin: true };
      axes.yaxis2 = { title: { text: "mJ per inference", font: { size: 11 } }, anchor: "x2", gridcolor: "#e5e8ec", rangemode: "tozero", automargin: true };
    }
    plot(id, data, { height: 210, margin: { l: 56, r: 12, t: 10, b: 30 }, showlegend: false, bargap: 0.35,
      font: { family: "system-ui, sans-serif", size: 11, color: "#1b1f24" }, paper_bgcolor: "#fff", plot_bgcolor: "#fff", ...axes });
  };
  return { card, draw };
}

// -- routing ---------------------------------------------------------------------------------

const ROUTES = [
  [/^#\/login$/, loginPage, "Log in", null],
  [/^#\/app\/([^/]+)\/pipeline$/, pipelinePage, "Pipeline", "overview"],
  [/^#\/app\/([^/]+)\/contract$/, contractPage, "Contract", "overview"],
  [/^#\/app\/([^/]+)\/observers$/, observersPage, "Observers", "overview"],
  [/^#\/app\/([^/]+)\/deployment$/, deploymentPage, "Deployment", "overview"],
  [/^#\/nodes$/, nodesPage, "Nodes", "nodes"],
  [/^#\/catalog$/, catalogPage, "Models", "catalog"],
  [/^#\/catalog\/([^/]+)\/(models|datasets)\/([^/]+)(?:\/(\d+))?$/, catalogItemPage, "Models", "catalog"],
  [/^#\/app\/([^/]+)\/services\/([^/]+)\/history$/, historyPage, "History", "overview"],
  [/^#\/app\/([^/]+)\/services\/([^/]+)$/, livePage, "Live", "overview"],
  [/^#\/app\/([^/]+)\/history$/, historyPage, "History", "overview"],
  [/^#\/app\/([^/]+)$/, livePage, "Live", "overview"],
  [/^#\/policies(?:\/([^/]+)(?:\/([^/]+))?)?$/, policiesPage, "Policies", "policies"],
  [/^#\/run$/, runPage, "Run", "run"],
  [/^#\/experiments(?:\/([^/]+))?$/, experimentsPage, "Experiments", "experiments"],
  [/^(?:#\/?)?$/, overviewPage, "Systems", "overview"],
];

let generation = 0;
async function route() {
  for (const fn of state.leave.splice(0)) fn();
  for (const el of shell.querySelectorAll(".js-plotly-plot")) Plotly.purge(el);
  const mine = ++generation;
  main = h("div", { class: "page" });
  shell.replaceChildren(main);
  const hash = location.hash || "#/";
  const match = ROUTES.map(([re, page, title, nav]) => [hash.match(re), page, title, nav]).find(([m]) => m);
  for (const link of document.querySelectorAll("[data-nav]")) {
    link.toggleAttribute("aria-current", false);
    if (match && link.dataset.nav === match[3]) link.setAttribute("aria-current", "page");
  }
  if (!match) {
    mount(h("h1", {}, "Not found"), h("p", {}, h("a", { href: "#/" }, "Back to the systems")));
    return;
  }
  const [m, page, title] = match;
  const args = m.slice(1).map((a) => (a === undefined ? undefined : decodeURIComponent(a)));
  document.title = `${args.filter(Boolean).map((a) => `${a} · `).join("")}${title} · Harmonia`;
  shell.dataset.page = page.name;
  shell.removeAttribute("data-ready");
  try {
    await page(...args);
  } catch (error) {
    if (mine === generation) {
      mount(h("p", { class: "error-text", role: "alert" }, `Could not load this page: ${error.message}`));
    }
    console.error(error);
  }
  // tests wait for this: the page of this route has its data
  if (mine === generation) shell.dataset.ready = hash;
}

window.addEventListener("hashchange", () => {
  route();
  shell.focus({ preventScroll: true });
});
renderSession();
route();
