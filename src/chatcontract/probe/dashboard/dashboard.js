/* chatcontract contract-health dashboard.
 *
 * Reads `api/summary` (relative to the page), renders every section, and refreshes every 30 s
 * (`?refresh=<seconds>` overrides it; `?hours=<n>` asks for another window). Vanilla JS, no
 * dependency, nothing fetched outside the origin. Text from the JSON only ever reaches the page
 * as Text nodes or attribute values: this file never assigns or parses markup.
 */

import {
  Charts, appendAll, arr, fmtInt, fmtMs, fmtPct, fmtStamp, fmtUsd, h, num, obj, parseTime, str,
} from "./charts.js";

// --- settings and policy tables ------------------------------------------------------------------

const SUMMARY_URL = "api/summary";
const MAX_WINDOW_HOURS = 24 * 366;
const DEFAULT_REFRESH_S = 30;
const FETCH_TIMEOUT_MS = 10000;

// The failure kinds of the taxonomy, in the order they stack (closest to the wire first).
const KINDS = [
  { key: "transport", label: "Transport" },
  { key: "http", label: "HTTP" },
  { key: "api_error", label: "API error" },
  { key: "parser", label: "Parser" },
  { key: "semantic", label: "Semantic" },
  { key: "budget", label: "Budget" },
];

// Where a rate turns amber ("watch") or red ("act"). `good: "high"` rates are healthy when
// high, `good: "low"` ones when low.
const SCHEMA_VALID = { good: "high", watch: 0.99, act: 0.95 };
const RATE_TILES = [
  {
    key: "client_timeout", label: "Client timeouts", good: "low", watch: 0.01, act: 0.05,
    help: "Calls (retries and fallback calls included) that a client-side time limit ended.",
  },
  {
    key: "fallback_activation", label: "Fallback activations", good: "low", watch: 0.01,
    act: 0.05, help: "First attempts that went on to a fallback route.",
  },
  {
    key: "retry_success", label: "Retry success", good: "high", watch: 0.8, act: 0.5,
    help: "Retries after a first failure that succeeded.",
  },
  {
    key: "usage_available", label: "Usage reported", good: "high", watch: 0.99, act: 0.9,
    help: "Answers expected to report usage that did.",
  },
];
// Any non-zero count is a finding; `level` says how loud.
const COUNT_TILES = [
  {
    key: "missing_required_paths", label: "Missing required paths", level: "act",
    help: "Responses lacking a path the contract requires.",
  },
  {
    key: "parse_failures", label: "Parse failures", level: "act",
    help: "2xx bodies the contract parser rejected.",
  },
  {
    key: "auth_failures", label: "Auth failures", level: "act",
    help: "Key refused: the secrets owner acts.",
  },
  {
    key: "rate_limited", label: "Rate-limited", level: "watch",
    help: "429s that are rate limits (retryable).",
  },
  {
    key: "quota", label: "Quota exhausted", level: "act",
    help: "Quota or balance exhausted: never retried.",
  },
];
const REVIEW_WATCH_DAYS = 14;
const STATUS_WORDS = { ok: "healthy", watch: "watch", act: "action needed", none: "no data yet" };
const MAX_MODEL_BARS = 8;

// --- formatting and status ---------------------------------------------------------------------

// "5 min ago", measured against the server's `generated_at` so a skewed browser clock
// cannot make a fresh probe look stale.
function fmtAgo(date, now) {
  if (!date) return "never";
  if (!now) return fmtStamp(date);
  const seconds = Math.round((now.getTime() - date.getTime()) / 1000);
  if (seconds < 45) return "just now";
  const minutes = Math.round(seconds / 60);
  if (minutes < 60) return `${minutes} min ago`;
  const hours = Math.round(minutes / 60);
  if (hours < 48) return `${hours} h ago`;
  return `${Math.round(hours / 24)} days ago`;
}

function fmtWindow(hours) {
  const n = num(hours) ?? 24;
  return n >= 48 && n % 24 === 0 ? `${n / 24} days` : `${n} h`;
}

function plural(count, word) {
  return `${fmtInt(count)} ${word}${count === 1 ? "" : "s"}`;
}

function rateStatus(value, spec) {
  const n = num(value);
  if (n === null) return "none";
  if (spec.good === "high") return n >= spec.watch ? "ok" : n >= spec.act ? "watch" : "act";
  return n <= spec.watch ? "ok" : n <= spec.act ? "watch" : "act";
}

// --- DOM helpers ---------------------------------------------------------------------------------

function fill(id, ...children) {
  const node = document.getElementById(id);
  node.replaceChildren();
  appendAll(node, children);
  return node;
}

function timeEl(date, now) {
  if (!date) return h("span", { class: "muted" }, "never");
  return h("time", { datetime: date.toISOString(), title: fmtStamp(date) }, fmtAgo(date, now));
}

// --- legends and tiles ---------------------------------------------------------------------------

function legend(id, entries) {
  fill(id, entries.map((entry) => h("li", {},
    h("span", { class: `swatch ${entry.cls}`, "aria-hidden": "true" }),
    entry.label,
    entry.value === undefined ? null : h("strong", {}, ` ${entry.value}`))));
}

function tile({ key, label, value, status, sub, help, big = true }) {
  return h("article", { class: `tile status-${status}`, "data-tile": key, title: help || null },
    h("h3", {}, label),
    h("p", { class: big ? "figure" : "figure figure-small", "data-value": key }, value),
    h("p", { class: "badge" }, STATUS_WORDS[status] || status),
    sub ? h("p", { class: "sub" }, sub) : null);
}

// --- sections ------------------------------------------------------------------------------------

function renderHeader(summary) {
  const contract = obj(summary.contract);
  const target = obj(summary.target);
  const name = str(contract.name) || "Unnamed contract";
  document.title = `${name} — contract health`;
  fill("contract-name", name);
  fill("contract-meta",
    `Provider ${str(contract.provider) || "unknown"} · `,
    `owner ${str(contract.owner) || "unassigned"}`);
  fill("target-meta",
    h("div", {}, h("dt", {}, "Target"), h("dd", {}, str(target.base_url) || "—")),
    h("div", {}, h("dt", {}, "Model"), h("dd", {}, str(target.model) || "—")),
    target.simulated ? h("div", {}, h("dt", {}, "Mode"),
      h("dd", {}, h("span", { class: "pill pill-sim" }, "simulated"))) : null);
}

function renderBanners(summary, error) {
  const banners = [];
  if (error) {
    const when = summary ? parseTime(summary.generated_at) : null;
    banners.push(h("p", { class: "banner banner-watch", role: "status" },
      `Could not refresh the summary (${error}). `,
      when ? `Showing data generated ${fmtStamp(when)}.` : "Retrying."));
  }
  if (summary) {
    const cost = obj(summary.cost);
    if (cost.paused === true) {
      const cap = num(cost.daily_cap_usd);
      banners.push(h("p", { class: "banner banner-act", role: "alert", "data-banner": "paused" },
        h("strong", {}, "Probing paused. "),
        `Spent ${fmtUsd(cost.spent_today_usd)} today`,
        cap === null ? "" : ` of the ${fmtUsd(cap)} daily cap`,
        ". Figures stop moving until probing resumes."));
    }
    if (obj(summary.target).simulated === true) {
      banners.push(h("p", { class: "banner banner-info", "data-banner": "simulated" },
        "The target is the built-in simulator: these figures describe the simulator, ",
        "not the provider."));
    }
  }
  fill("banners", banners);
}

function renderGlance(summary, now) {
  const contract = obj(summary.contract);
  const totals = obj(summary.totals);
  const rates = obj(summary.rates);
  const cost = obj(summary.cost);
  const window_ = fmtWindow(summary.window_hours);
  const tiles = [];

  const last = summary.last_validation ? obj(summary.last_validation) : null;
  if (last) {
    const passed = last.verdict === "pass";
    tiles.push(tile({
      key: "last_validation", label: "Last validation",
      value: str(last.verdict).toUpperCase() || "—", status: passed ? "ok" : "act",
      sub: [
        `${fmtInt(last.passed)} passed · ${fmtInt(last.failed)} failed · `,
        `${fmtInt(last.warned)} warned · ${fmtInt(last.skipped)} skipped · `,
        timeEl(parseTime(last.at), now),
      ],
    }));
  } else {
    tiles.push(tile({
      key: "last_validation", label: "Last validation", value: "never run", status: "none",
      big: false, sub: "Run chatcontract validate against this target.",
    }));
  }

  const days = num(contract.days_until_review);
  let reviewValue = "no date";
  let reviewStatus = "none";
  if (days !== null) {
    if (days < 0) {
      reviewValue = `overdue ${plural(-days, "day")}`;
      reviewStatus = "act";
    } else {
      reviewValue = days === 0 ? "due today" : `in ${plural(days, "day")}`;
      reviewStatus = days < REVIEW_WATCH_DAYS ? "watch" : "ok";
    }
  }
  tiles.push(tile({
    key: "review", label: "Contract review", value: reviewValue, status: reviewStatus,
    big: false,
    sub: `Due ${str(contract.review_due_on) || "—"} · `
      + `last reviewed ${str(contract.reviewed_on) || "—"}`,
  }));

  tiles.push(tile({
    key: "schema_valid", label: "Schema-valid", value: fmtPct(rates.schema_valid),
    status: rateStatus(rates.schema_valid, SCHEMA_VALID),
    sub: `Responses that met the contract, last ${window_}`,
  }));

  const probes = num(totals.probes) ?? 0;
  const success = num(totals.success) ?? 0;
  const failure = num(totals.failure) ?? 0;
  // Probes, not calls: each probe counts once, by its verdict after its retry (a fallback
  // that answered does not make it pass), as the summary's totals count them.
  tiles.push(tile({
    key: "success", label: "Probe success",
    value: probes > 0 ? fmtPct(success / probes) : "—",
    status: probes > 0 ? rateStatus(success / probes, SCHEMA_VALID) : "none",
    help: "Probes whose verdict was a pass: the primary route's final attempt, after its retry.",
    sub: `${fmtInt(success)} ok · ${fmtInt(failure)} failed of ${plural(probes, "probe")}, `
      + `last ${window_}`,
  }));

  const spent = num(cost.spent_today_usd);
  const cap = num(cost.daily_cap_usd);
  let costStatus = "ok";
  if (cost.paused === true) costStatus = "act";
  else if (spent !== null && cap !== null && cap > 0 && spent / cap >= 0.8) costStatus = "watch";
  else if (spent === null) costStatus = "none";
  const costTile = tile({
    key: "cost", label: "Cost today", value: fmtUsd(spent), status: costStatus,
    sub: cap === null ? "No daily cap" : `of ${fmtUsd(cap)} daily cap`,
  });
  if (cap !== null) {
    const title = `Spent ${fmtUsd(spent)} of ${fmtUsd(cap)}`;
    costTile.append(Charts.meter(title, spent, cap, costStatus));
  }
  tiles.push(costTile);

  fill("glance-tiles", tiles);
}

// The summary lists only the hours that have probe runs. Lay them on the full window, one
// bucket per hour, so an hour without probes (the process was down, probing paused) shows as
// a gap instead of silently closing up. Very long windows are drawn as listed.
const HOUR_MS = 3600000;
const MAX_DENSE_BUCKETS = 24 * 31;

function timeline(summary) {
  const rows = arr(summary.timeline).map(obj);
  const times = rows.map((row) => parseTime(row.t));
  const now = parseTime(summary.generated_at);
  const hours = num(summary.window_hours);
  if (rows.length === 0 || !now || hours === null || hours > MAX_DENSE_BUCKETS
    || times.some((time) => time === null)) {
    return { rows, times };
  }
  const byHour = new Map(rows.map((row, i) => [Math.floor(times[i].getTime() / HOUR_MS), row]));
  const last = Math.floor(now.getTime() / HOUR_MS);
  const first = Math.min(last - hours, ...byHour.keys());
  const dense = { rows: [], times: [] };
  for (let hour = first; hour <= last; hour += 1) {
    dense.rows.push(byHour.get(hour) ?? {});
    dense.times.push(new Date(hour * HOUR_MS));
  }
  return dense;
}

function renderFailures(summary) {
  const { rows, times } = timeline(summary);
  const byKind = obj(summary.failures_by_kind);
  const stacks = KINDS.map((kind) => ({
    ...kind, values: rows.map((row) => num(obj(row.by_kind)[kind.key])),
  }));
  const totalsText = KINDS.map((k) => `${k.label} ${fmtInt(num(byKind[k.key]) ?? 0)}`).join(", ");
  Charts.stackedBars(document.getElementById("chart-failures"), {
    title: `Failures per hour by kind, last ${fmtWindow(summary.window_hours)}`,
    desc: `Stacked bars, one per hour. Totals: ${totalsText}.`,
    times, stacks,
  });
  legend("legend-failures", KINDS.map((k) => ({
    cls: `k-${k.key}`, label: k.label, value: fmtInt(num(byKind[k.key]) ?? 0),
  })));
}

function renderSchema(summary) {
  const { rows, times } = timeline(summary);
  const overall = obj(summary.rates).schema_valid;
  const figure = fill("schema-figure", fmtPct(overall));
  figure.className = `card-figure status-${rateStatus(overall, SCHEMA_VALID)}`;
  Charts.lines(document.getElementById("chart-schema"), {
    title: "Schema-valid rate per hour",
    desc: "Share of responses that met the contract, per hour. "
      + `Over the window: ${fmtPct(overall)}.`,
    times, domain: "rate", format: fmtPct,
    series: [{
      key: "schema", label: "Schema-valid", values: rows.map((row) => row.schema_valid_rate),
    }],
    refLine: {
      value: SCHEMA_VALID.watch, label: `Healthy at or above ${fmtPct(SCHEMA_VALID.watch)}`,
    },
  });
}

function renderCounts(summary) {
  const counts = obj(summary.counts);
  // Zero out of zero probes is not healthy, it is unmeasured.
  const measured = (num(obj(summary.totals).probes) ?? 0) > 0;
  fill("count-tiles", COUNT_TILES.map((spec) => {
    const value = num(counts[spec.key]);
    const status = value === null || !measured ? "none" : value > 0 ? spec.level : "ok";
    return tile({
      key: spec.key, label: spec.label, value: fmtInt(value), status, help: spec.help,
      sub: `last ${fmtWindow(summary.window_hours)}`,
    });
  }));
}

function renderRates(summary) {
  const rates = obj(summary.rates);
  fill("rate-tiles", RATE_TILES.map((spec) => tile({
    key: spec.key, label: spec.label, value: fmtPct(rates[spec.key]),
    status: rateStatus(rates[spec.key], spec), help: spec.help, sub: spec.help,
  })));
}

const LATENCY_SERIES = [
  { key: "p50", label: "p50", field: "p50_ms" },
  { key: "p95", label: "p95", field: "p95_ms" },
];

function renderLatency(summary) {
  const bySize = obj(summary.latency_by_prompt_size);
  const groups = Object.keys(bySize).map((size) => {
    const entry = obj(bySize[size]);
    return {
      label: `${size} (n=${fmtInt(num(entry.samples) ?? 0)})`,
      bars: LATENCY_SERIES.map((se) => ({ key: se.key, label: se.label, value: entry[se.field] })),
    };
  });
  Charts.groupedBars(document.getElementById("chart-latency-size"), {
    title: "Latency p50 and p95 by prompt size",
    desc: groups
      .map((g) => `${g.label}: ${g.bars.map((b) => `${b.label} ${fmtMs(b.value)}`).join(", ")}`)
      .join("; ") || "No samples.",
    groups, format: fmtMs,
  });
  const seriesLegend = LATENCY_SERIES.map((se) => ({ cls: `s-${se.key}`, label: se.label }));
  legend("legend-latency-size", seriesLegend);

  const { rows, times } = timeline(summary);
  Charts.lines(document.getElementById("chart-latency-time"), {
    title: "Latency p50 and p95 per hour",
    desc: "Total request latency per hour, median and 95th percentile, of the successful "
      + "short non_streaming probes (failed and timed-out calls are not in it).",
    times, format: fmtMs,
    series: LATENCY_SERIES.map((se) => ({ ...se, values: rows.map((row) => row[se.field]) })),
  });
  legend("legend-latency-time", seriesLegend);
}

function renderModels(summary) {
  const requested = str(obj(summary.target).model);
  const entries = Object.entries(obj(summary.response_models))
    .map(([label, value]) => ({ label, value: num(value) ?? 0 }))
    .filter((item) => item.value > 0)
    .sort((a, b) => b.value - a.value || a.label.localeCompare(b.label));
  const total = entries.reduce((sum, item) => sum + item.value, 0);
  let items = entries;
  if (entries.length > MAX_MODEL_BARS) {
    const rest = entries.slice(MAX_MODEL_BARS - 1);
    items = [...entries.slice(0, MAX_MODEL_BARS - 1), {
      label: `${rest.length} other models`, value: rest.reduce((sum, it) => sum + it.value, 0),
    }];
  }
  // Gateways may answer with a dated variant of the requested name: that is the same model.
  for (const item of items) {
    item.highlight = requested !== ""
      && (item.label === requested || item.label.startsWith(`${requested}-`));
  }
  Charts.horizontalBars(document.getElementById("chart-models"), {
    title: "Model named in responses",
    desc: `${items.map((it) => `${it.label}: ${fmtInt(it.value)}`).join(", ")}. `
      + `Requested: ${requested || "—"}.`,
    items, total,
  });
  const other = items.filter((item) => !item.highlight).reduce((sum, item) => sum + item.value, 0);
  fill("models-note", total === 0 || requested === "" ? ""
    : `Requested ${requested} (highlighted). `
      + `${fmtPct(other / total)} of answers named another model.`);
}

function renderProbes(summary, now) {
  const probes = Object.entries(obj(summary.probes)).sort(([a], [b]) => a.localeCompare(b));
  if (probes.length === 0) {
    fill("probe-table", h("p", { class: "muted" }, "No probe has run yet."));
    return;
  }
  const rows = probes.map(([kind, raw]) => {
    const probe = obj(raw);
    const status = probe.last_ok === true ? "ok" : probe.last_ok === false ? "act" : "none";
    const word = { ok: "passing", act: "failing", none: "not run yet" }[status];
    return h("tr", { "data-probe": kind },
      h("th", { scope: "row" }, kind),
      h("td", {}, timeEl(parseTime(probe.last_run_at), now)),
      h("td", {}, timeEl(parseTime(probe.last_success_at), now)),
      h("td", {}, h("span", { class: `pill status-${status}` }, word)));
  });
  fill("probe-table", h("table", {},
    h("caption", { class: "visually-hidden" }, "Each probe's last run and last success"),
    h("thead", {}, h("tr", {},
      h("th", { scope: "col" }, "Probe"), h("th", { scope: "col" }, "Last run"),
      h("th", { scope: "col" }, "Last success"), h("th", { scope: "col" }, "Status"))),
    h("tbody", {}, rows)));
}

function renderDrift(summary, now) {
  const events = arr(summary.drift_events).map(obj)
    .map((event) => ({ ...event, when: parseTime(event.at) }))
    .sort((a, b) => (b.when ? b.when.getTime() : 0) - (a.when ? a.when.getTime() : 0));
  if (events.length === 0) {
    fill("drift-list", h("p", { class: "muted" },
      "No drift from the accepted baseline recorded."));
    return;
  }
  fill("drift-list", h("ol", { class: "drift" }, events.map((event) => h("li", {},
    timeEl(event.when, now),
    h("span", { class: "pill pill-drift" }, str(event.kind) || "drift"),
    h("span", { class: "detail" }, str(event.detail))))));
}

// --- refresh loop --------------------------------------------------------------------------------

const SECTIONS = [
  ["contract-name", renderHeader],
  ["glance-tiles", renderGlance],
  ["chart-failures", renderFailures],
  ["chart-schema", renderSchema],
  ["count-tiles", renderCounts],
  ["rate-tiles", renderRates],
  ["chart-latency-size", renderLatency],
  ["chart-models", renderModels],
  ["probe-table", renderProbes],
  ["drift-list", renderDrift],
];

const state = { summary: null, error: null, renders: 0 };

function refreshPeriod() {
  const asked = Number(new URLSearchParams(window.location.search).get("refresh"));
  return Number.isFinite(asked) && asked >= 1 ? Math.min(asked, 3600) : DEFAULT_REFRESH_S;
}

function render() {
  const summary = state.summary;
  renderBanners(summary, state.error);
  if (summary) {
    const now = parseTime(summary.generated_at);
    for (const [id, section] of SECTIONS) {
      try {
        section(summary, now);
      } catch (err) {
        // A bug in one section must not blank the page; it still shows in the console.
        console.error(`dashboard: cannot render #${id}`, err);
        fill(id, h("p", { class: "banner banner-watch" }, "This section could not be drawn."));
      }
    }
  }
  state.renders += 1;
  const root = document.documentElement;
  root.dataset.state = summary ? "ready" : "error";
  root.dataset.renders = String(state.renders);
  const when = summary ? parseTime(summary.generated_at) : null;
  fill("refresh-status",
    `Window: last ${fmtWindow(summary?.window_hours)} · `,
    when ? `generated ${fmtStamp(when)} · ` : "",
    `refreshes every ${refreshPeriod()} s · `,
    h("a", { href: summaryUrl() }, "summary JSON"), " · ", h("a", { href: "metrics" }, "metrics"));
}

// `?hours=168` on the page asks the summary for a week instead of the default day.
function summaryUrl() {
  const hours = new URLSearchParams(window.location.search).get("hours");
  const valid = hours !== null && /^[0-9]{1,4}$/.test(hours) && Number(hours) >= 1
    && Number(hours) <= MAX_WINDOW_HOURS;
  return valid ? `${SUMMARY_URL}?hours=${hours}` : SUMMARY_URL;
}

async function refresh() {
  const controller = new AbortController();
  const timer = setTimeout(() => controller.abort(), FETCH_TIMEOUT_MS);
  try {
    const response = await fetch(summaryUrl(), {
      cache: "no-store", headers: { Accept: "application/json" }, signal: controller.signal,
    });
    if (!response.ok) throw new Error(`HTTP ${response.status}`);
    const body = await response.json();
    if (body === null || typeof body !== "object" || Array.isArray(body)) {
      throw new Error("the summary is not a JSON object");
    }
    state.summary = body;
    state.error = null;
  } catch (err) {
    state.error = err && err.name === "AbortError"
      ? "timed out" : str(err && err.message) || "error";
  } finally {
    clearTimeout(timer);
  }
  try {
    render();
  } finally {
    // Keep refreshing even if drawing failed: the next summary may draw fine.
    window.setTimeout(refresh, refreshPeriod() * 1000);
  }
}

// Charts are drawn at the container's width: redraw when it changes.
let lastWidth = window.innerWidth;
let resizeTimer = 0;
window.addEventListener("resize", () => {
  window.clearTimeout(resizeTimer);
  resizeTimer = window.setTimeout(() => {
    if (window.innerWidth !== lastWidth) {
      lastWidth = window.innerWidth;
      render();
    }
  }, 150);
});

refresh();
