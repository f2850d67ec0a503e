/* chatcontract dashboard toolkit: number and time formatting, text-only DOM builders, and small
 * SVG charts (stacked bars, lines with gaps, grouped bars, horizontal bars, a meter).
 *
 * Every chart carries a <title> and a <desc> for assistive technology and draws a "No data yet"
 * panel when it has nothing to show. Strings only ever become Text nodes or attribute values.
 */

const SVG_NS = "http://www.w3.org/2000/svg"; // a namespace name, never fetched

// --- small utilities -----------------------------------------------------------------------------

const num = (value) => (typeof value === "number" && Number.isFinite(value) ? value : null);
const obj = (value) => (value !== null && typeof value === "object" && !Array.isArray(value)
  ? value : {});
const arr = (value) => (Array.isArray(value) ? value : []);
const str = (value) => (value === null || value === undefined ? "" : String(value));

function parseTime(value) {
  if (typeof value !== "string" || value === "") return null;
  const date = new Date(value);
  return Number.isNaN(date.getTime()) ? null : date;
}

const intFormat = new Intl.NumberFormat(undefined, { maximumFractionDigits: 0 });

function fmtInt(value) {
  const n = num(value);
  return n === null ? "—" : intFormat.format(n);
}

function fmtPct(value) {
  const n = num(value);
  if (n === null) return "—";
  const pct = n * 100;
  if (pct === 100 || pct === 0) return `${pct}%`;
  // Near the top the second decimal matters (99.95% and 99.5% are different incidents), and
  // rounding must never show a breach as 100%.
  if (pct >= 99 && pct < 100) return `${(Math.floor(pct * 100) / 100).toFixed(2)}%`;
  return `${pct.toFixed(1)}%`;
}

function fmtMs(value) {
  const n = num(value);
  if (n === null) return "—";
  return n < 1000 ? `${Math.round(n)} ms` : `${(n / 1000).toFixed(2)} s`;
}

function fmtUsd(value) {
  const n = num(value);
  if (n === null) return "—";
  return `$${n.toFixed(n !== 0 && Math.abs(n) < 0.01 ? 4 : 2)}`;
}

function fmtClock(date, withDay) {
  const options = { hour: "2-digit", minute: "2-digit" };
  if (withDay) options.weekday = "short";
  return date.toLocaleString(undefined, options);
}

function fmtStamp(date) {
  return date.toLocaleString(undefined, {
    year: "numeric", month: "short", day: "numeric", hour: "2-digit", minute: "2-digit",
    second: "2-digit",
  });
}

// --- DOM builders (text only: strings always become Text nodes) ----------------------------------

function setAttrs(node, attrs) {
  for (const [name, value] of Object.entries(attrs || {})) {
    if (value === null || value === undefined || value === false) continue;
    node.setAttribute(name, String(value));
  }
}

function appendAll(node, children) {
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    node.append(child instanceof Node ? child : String(child));
  }
}

function h(tag, attrs, ...children) {
  const node = document.createElement(tag);
  setAttrs(node, attrs);
  appendAll(node, children);
  return node;
}

function s(tag, attrs, ...children) {
  const node = document.createElementNS(SVG_NS, tag);
  setAttrs(node, attrs);
  appendAll(node, children);
  return node;
}

// --- charts: small SVG helpers, each with a <title> and a <desc> for assistive tech --------------

const Charts = (() => {
  const HEIGHT = 240;
  const MARGIN = { top: 14, right: 14, bottom: 30, left: 56 };
  let serial = 0;

  // The viewBox is as wide as the container in CSS pixels, so text keeps its CSS size at any
  // width; the page redraws on resize.
  function box(container, height = HEIGHT) {
    const width = Math.max(320, Math.round(container.clientWidth || 640));
    const left = MARGIN.left;
    const right = width - MARGIN.right;
    const top = MARGIN.top;
    const bottom = height - MARGIN.bottom;
    return { width, height, left, right, top, bottom, plotWidth: right - left };
  }

  function frame(b, title, desc) {
    serial += 1;
    const id = `chart-${serial}`;
    return s(
      "svg",
      {
        viewBox: `0 0 ${b.width} ${b.height}`, role: "img", class: "chart-svg",
        "aria-labelledby": `${id}-title ${id}-desc`,
      },
      s("title", { id: `${id}-title` }, title),
      s("desc", { id: `${id}-desc` }, desc),
    );
  }

  function empty(container, title, message = "No data yet") {
    const b = box(container, 120);
    const svg = frame(b, title, `${title}: ${message.toLowerCase()}.`);
    svg.classList.add("chart-empty");
    svg.append(
      s("rect", {
        x: 1, y: 1, width: b.width - 2, height: b.height - 2, rx: 8, class: "empty-box",
      }),
      s("text", {
        x: b.width / 2, y: b.height / 2 + 5, "text-anchor": "middle", class: "empty-text",
      },
        message),
    );
    container.replaceChildren(svg);
    return svg;
  }

  function baseline(b) {
    return s("line", { x1: b.left, x2: b.right, y1: b.bottom, y2: b.bottom, class: "baseline" });
  }

  // Round the top of the axis up to 1, 2, 2.5 or 5 times a power of ten.
  function niceScale(maxValue, { integer = false, ticks = 4 } = {}) {
    const max = maxValue > 0 ? maxValue : 1;
    const raw = max / ticks;
    const magnitude = 10 ** Math.floor(Math.log10(raw));
    let step = [1, 2, 2.5, 5, 10].map((f) => f * magnitude).find((v) => v >= raw);
    if (integer) step = Math.max(1, Math.ceil(step));
    const count = Math.ceil(max / step - 1e-9);
    const values = Array.from({ length: count + 1 }, (_, i) => i * step);
    return { bottom: 0, top: count * step, values };
  }

  // A 0..1 rate axis that starts low enough to show the lowest value and the amber line, so
  // a dip from 100% to 98% is visible instead of hugging the top.
  const RATE_FLOORS = [
    { floor: 0.95, step: 0.01 },
    { floor: 0.9, step: 0.025 },
    { floor: 0.8, step: 0.05 },
    { floor: 0.5, step: 0.1 },
    { floor: 0, step: 0.25 },
  ];

  function rateScale(minValue) {
    const { floor, step } = RATE_FLOORS.find((f) => f.floor <= minValue) ?? RATE_FLOORS.at(-1);
    const count = Math.round((1 - floor) / step);
    // Sum in thousandths so 0.95 + 4 × 0.01 is exactly 0.99.
    const values = Array.from(
      { length: count + 1 }, (_, i) => (floor * 1000 + i * step * 1000) / 1000,
    );
    const decimals = Number.isInteger(Math.round(step * 1000) / 10) ? 0 : 1;
    return { bottom: floor, top: 1, values, format: (v) => `${(v * 100).toFixed(decimals)}%` };
  }

  function yAxis(svg, b, scale, format) {
    const span = scale.top - scale.bottom;
    const project = (value) => b.bottom - ((value - scale.bottom) / span) * (b.bottom - b.top);
    const format_ = scale.format ?? format;
    const group = s("g", { class: "axis axis-y", "aria-hidden": "true" });
    for (const value of scale.values) {
      const y = project(value);
      group.append(
        s("line", { x1: b.left, x2: b.right, y1: y, y2: y, class: "grid" }),
        s("text", { x: b.left - 6, y: y + 4, "text-anchor": "end" }, format_(value)),
      );
    }
    svg.append(group);
    return project;
  }

  // Time labels under `n` equal bands, thinned so that they never overlap.
  function xAxis(svg, b, times) {
    const n = times.length;
    const band = b.plotWidth / n;
    const spanHours = n > 1 && times[0] && times[n - 1]
      ? (times[n - 1].getTime() - times[0].getTime()) / 3600000 : 0;
    const labelWidth = spanHours > 24 ? 110 : 70;
    const every = Math.max(1, Math.ceil(labelWidth / band));
    const group = s("g", { class: "axis axis-x", "aria-hidden": "true" });
    group.append(baseline(b));
    for (let i = 0; i < n; i += every) {
      if (!times[i]) continue;
      group.append(s("text", {
        x: b.left + (i + 0.5) * band, y: b.bottom + 18, "text-anchor": "middle",
      }, fmtClock(times[i], spanHours > 24)));
    }
    svg.append(group);
    return (i) => b.left + (i + 0.5) * band;
  }

  function label(time, i) {
    return time ? fmtStamp(time) : `bucket ${i + 1}`;
  }

  /* Stacked bars over time. stacks: [{key, label, values: (number|null)[]}] */
  function stackedBars(container, { title, desc, times, stacks }) {
    const n = times.length;
    if (n === 0) return empty(container, title);
    const totals = times.map(
      (_, i) => stacks.reduce((sum, st) => sum + (num(st.values[i]) ?? 0), 0),
    );
    const b = box(container);
    const svg = frame(b, title, desc);
    const y = yAxis(svg, b, niceScale(Math.max(...totals), { integer: true }), fmtInt);
    const x = xAxis(svg, b, times);
    const band = b.plotWidth / n;
    const width = Math.max(1, band - Math.min(band * 0.25, 6));
    const bars = s("g", { class: "bars" });
    times.forEach((time, i) => {
      let base = 0;
      for (const stack of stacks) {
        const value = num(stack.values[i]) ?? 0;
        if (value <= 0) continue;
        const top = y(base + value);
        bars.append(s("rect", {
          x: x(i) - width / 2, y: top, width, height: Math.max(1, y(base) - top),
          class: `bar k-${stack.key}`, "data-kind": stack.key,
        }, s("title", {}, `${label(time, i)} — ${stack.label}: ${fmtInt(value)}`)));
        base += value;
      }
    });
    svg.append(bars);
    if (totals.every((t) => t === 0)) {
      svg.append(s("text", {
        x: (b.left + b.right) / 2, y: b.top + 40, "text-anchor": "middle", class: "empty-text",
      }, "No failures in this window"));
    }
    container.replaceChildren(svg);
    return svg;
  }

  /* Lines over time with gaps where a value is null. series: [{key, label, values}] */
  function lines(container, { title, desc, times, series, domain, format, refLine }) {
    const n = times.length;
    const finite = series.flatMap((se) => se.values.map(num)).filter((v) => v !== null);
    if (n === 0 || finite.length === 0) return empty(container, title);
    const b = box(container);
    const svg = frame(b, title, desc);
    const scale = domain === "rate"
      ? rateScale(Math.min(...finite, refLine ? refLine.value : 1))
      : niceScale(Math.max(...finite));
    const y = yAxis(svg, b, scale, format);
    const x = xAxis(svg, b, times);
    if (refLine && num(refLine.value) !== null) {
      const ry = y(refLine.value);
      svg.append(s("line", { x1: b.left, x2: b.right, y1: ry, y2: ry, class: "ref-line" },
        s("title", {}, refLine.label)));
    }
    const radius = Math.min(3, b.plotWidth / n / 3);
    for (const se of series) {
      const group = s("g", { class: `series s-${se.key}` });
      let d = "";
      let run = 0;
      se.values.forEach((raw, i) => {
        const value = num(raw);
        if (value === null) {
          run = 0;
          return;
        }
        d += `${run === 0 ? "M" : "L"}${x(i).toFixed(1)} ${y(value).toFixed(1)} `;
        run += 1;
      });
      if (d) group.append(s("path", { d: d.trim(), class: "line" }));
      se.values.forEach((raw, i) => {
        const value = num(raw);
        if (value === null) return;
        group.append(s("circle", { cx: x(i), cy: y(value), r: radius, class: "dot" },
          s("title", {}, `${label(times[i], i)} — ${se.label}: ${format(value)}`)));
      });
      svg.append(group);
    }
    container.replaceChildren(svg);
    return svg;
  }

  /* Vertical bars in groups. groups: [{label, bars: [{key, label, value}]}] */
  function groupedBars(container, { title, desc, groups, format }) {
    const finite = groups
      .flatMap((g) => g.bars.map((bar) => num(bar.value)))
      .filter((v) => v !== null);
    if (groups.length === 0 || finite.length === 0) return empty(container, title);
    const b = box(container);
    const svg = frame(b, title, desc);
    const y = yAxis(svg, b, niceScale(Math.max(...finite)), format);
    const band = b.plotWidth / groups.length;
    const bars = s("g", { class: "bars" });
    groups.forEach((group, gi) => {
      const inner = Math.min(band * 0.7, 90 * group.bars.length);
      const width = inner / group.bars.length;
      const start = b.left + gi * band + (band - inner) / 2;
      group.bars.forEach((bar, bi) => {
        const value = num(bar.value);
        const cx = start + (bi + 0.5) * width;
        if (value === null) {
          bars.append(s("text", { x: cx, y: b.bottom - 6, "text-anchor": "middle", class: "na" },
            "n/a"));
          return;
        }
        const top = y(value);
        bars.append(
          s("rect", {
            x: start + bi * width + 2, y: top, width: Math.max(1, width - 4),
            height: Math.max(1, b.bottom - top), class: `bar s-${bar.key}`,
          }, s("title", {}, `${group.label} — ${bar.label}: ${format(value)}`)),
          s("text", { x: cx, y: top - 5, "text-anchor": "middle", class: "value" }, format(value)),
        );
      });
      bars.append(s("text", {
        x: b.left + (gi + 0.5) * band, y: b.bottom + 18, "text-anchor": "middle", class: "group",
      }, group.label));
    });
    svg.append(baseline(b),
      bars);
    container.replaceChildren(svg);
    return svg;
  }

  /* Horizontal bars, one row per item. items: [{label, value, highlight}] */
  function horizontalBars(container, { title, desc, items, total }) {
    if (items.length === 0 || total <= 0) return empty(container, title);
    const rowHeight = 28;
    const b = box(container, items.length * rowHeight + 16);
    const svg = frame(b, title, desc);
    const labelWidth = Math.min(220, b.width * 0.4);
    const maxChars = Math.floor(labelWidth / 7.5);
    const barSpace = b.width - labelWidth - 110;
    const max = Math.max(...items.map((it) => it.value));
    items.forEach((item, i) => {
      const top = 8 + i * rowHeight;
      const text = item.label.length > maxChars
        ? `${item.label.slice(0, maxChars - 1)}…` : item.label;
      const width = max > 0 ? Math.max(2, (item.value / max) * barSpace) : 0;
      const share = item.value / total;
      svg.append(s("g", { class: item.highlight ? "row highlight" : "row" },
        s("title", {}, `${item.label}: ${fmtInt(item.value)} (${fmtPct(share)})`),
        s("text", {
          x: labelWidth - 8, y: top + 17, "text-anchor": "end", class: "row-label",
        }, text),
        s("rect", {
          x: labelWidth, y: top + 4, width, height: rowHeight - 10, rx: 3, class: "bar",
        }),
        s("text", { x: labelWidth + width + 6, y: top + 17, class: "value" },
          `${fmtInt(item.value)} · ${fmtPct(share)}`)));
    });
    container.replaceChildren(svg);
    return svg;
  }

  /* A single horizontal meter, value of max. */
  function meter(title, value, max, status) {
    const width = 200;
    const ratio = num(value) !== null && num(max) !== null && max > 0
      ? Math.min(1, Math.max(0, value / max)) : 0;
    return s("svg", {
      viewBox: `0 0 ${width} 10`, role: "img", "aria-label": title, class: `meter status-${status}`,
      preserveAspectRatio: "none",
    },
    s("rect", { x: 0, y: 0, width, height: 10, rx: 5, class: "track" }),
    s("rect", { x: 0, y: 0, width: ratio * width, height: 10, rx: 5, class: "fill" }));
  }

  return { stackedBars, lines, groupedBars, horizontalBars, meter, empty };
})();

export {
  Charts, appendAll, arr, fmtClock, fmtInt, fmtMs, fmtPct, fmtStamp, fmtUsd, h, num, obj,
  parseTime, s, str,
};
