/* global document */
/**
 * The issuance chart: certificates issued and revoked per day, as bars side
 * by side, drawn as SVG elements (no library, nothing inline: colours come
 * from console.css classes). Each bar has a <title>, which browsers show on hover.
 */
const svgNs = 'http://www.w3.org/2000/svg';

function svg(tag, attrs = {}, text) {
  const node = document.createElementNS(svgNs, tag);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, String(v));
  if (text !== undefined) node.textContent = text;
  return node;
}

/** A tick step for a maximum: 1, 2 or 5 times a power of ten, so that about four lines cover it. */
export function tickStep(max) {
  if (max <= 4) return 1;
  const raw = max / 4;
  const power = 10 ** Math.floor(Math.log10(raw));
  for (const m of [1, 2, 5, 10]) if (m * power >= raw) return m * power;
  return 10 * power;
}

/** An <svg> chart of `days` ([{ day: 'YYYY-MM-DD', issued, revoked }], oldest first). */
export function issuanceChart(days) {
  const width = 880;
  const height = 220;
  const pad = { left: 40, right: 8, top: 10, bottom: 26 };
  const plotW = width - pad.left - pad.right;
  const plotH = height - pad.top - pad.bottom;
  const max = Math.max(1, ...days.map((d) => Math.max(d.issued, d.revoked)));
  const step = tickStep(max);
  const top = Math.ceil(max / step) * step;
  const y = (v) => pad.top + plotH - (v / top) * plotH;
  const slot = plotW / Math.max(1, days.length);
  const barW = Math.max(1, Math.min(14, (slot - 4) / 2));

  const root = svg('svg', { class: 'chart', viewBox: `0 0 ${width} ${height}`, role: 'img', 'aria-label': 'Certificates issued and revoked per day' });
  for (let v = 0; v <= top; v += step) {
    root.append(svg('line', { class: 'grid', x1: pad.left, x2: width - pad.right, y1: y(v), y2: y(v) }));
    root.append(svg('text', { x: pad.left - 6, y: y(v) + 4, 'text-anchor': 'end' }, String(v)));
  }
  root.append(svg('line', { class: 'axis', x1: pad.left, x2: width - pad.right, y1: y(0), y2: y(0) }));
  const labelEvery = Math.max(1, Math.ceil(days.length / 8));
  days.forEach((d, i) => {
    const x0 = pad.left + i * slot + (slot - 2 * barW) / 2;
    const bars = [
      ['bar-issued', d.issued, `${d.day}: ${d.issued} issued`],
      ['bar-revoked', d.revoked, `${d.day}: ${d.revoked} revoked`],
    ];
    bars.forEach(([cls, value, label], k) => {
      const h = y(0) - y(value);
      const bar = svg('rect', { class: cls, x: x0 + k * barW, y: y(value), width: barW, height: Math.max(0, h) });
      bar.append(svg('title', {}, label));
      root.append(bar);
    });
    // Every few days a date, and the last day's unless it would crowd the one before.
    if (i % labelEvery === 0 || (i === days.length - 1 && i % labelEvery >= labelEvery / 2)) {
      root.append(svg('text', { x: pad.left + i * slot + slot / 2, y: height - 8, 'text-anchor': 'middle' }, d.day.slice(5)));
    }
  });
  return root;
}
