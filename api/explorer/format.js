// Formatting of ledger values as text: times, amounts and rates. Amounts stay decimal strings
// and are summed and compared exactly with BigInt; floats only ever place chart geometry.

const pad = (n, width = 2) => String(n).padStart(width, '0');

/** "2026-01-31 14:05:09", local time. */
export function fmtTime(ms) {
  if (ms === null || ms === undefined || ms === '') return '—';
  const d = new Date(Number(ms));
  if (Number.isNaN(d.getTime())) return String(ms);
  return `${fmtDate(ms)} ${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
}

/** "2026-01-31", local time. */
export function fmtDate(ms) {
  const d = new Date(Number(ms));
  if (Number.isNaN(d.getTime())) return String(ms);
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}`;
}

const DAY_MS = 86_400_000;

/** "in 12 days", "3 days ago", "today". */
export function relDays(ms, now = Date.now()) {
  const days = Math.round((Number(ms) - now) / DAY_MS);
  if (days === 0) return 'today';
  if (days === 1) return 'tomorrow';
  if (days === -1) return 'yesterday';
  return days > 0 ? `in ${days} days` : `${-days} days ago`;
}

function decParse(text) {
  const m = /^\s*([+-]?)(\d*)(?:\.(\d*))?\s*$/.exec(String(text ?? ''));
  if (!m || (m[2] === '' && (m[3] ?? '') === '')) return null;
  const frac = m[3] ?? '';
  return { v: BigInt((m[1] === '-' ? '-' : '') + (m[2] || '0') + frac), scale: frac.length };
}

function decAlign(a, b) {
  const scale = Math.max(a.scale, b.scale);
  return [a.v * 10n ** BigInt(scale - a.scale), b.v * 10n ** BigInt(scale - b.scale), scale];
}

function decToString(v, scale) {
  const neg = v < 0n;
  const digits = (neg ? -v : v).toString().padStart(scale + 1, '0');
  const text = scale ? `${digits.slice(0, -scale)}.${digits.slice(-scale)}` : digits;
  return (neg ? '-' : '') + text;
}

/** Exact sum of decimal strings (unparsable values are skipped). */
export function decSum(values) {
  let acc = { v: 0n, scale: 0 };
  for (const value of values) {
    const d = decParse(value);
    if (!d) continue;
    const [a, b, scale] = decAlign(acc, d);
    acc = { v: a + b, scale };
  }
  return decToString(acc.v, acc.scale);
}

/** Exact comparison of decimal strings; null/unparsable sorts first. */
export function decCmp(x, y) {
  const a = decParse(x);
  const b = decParse(y);
  if (!a || !b) return (a ? 1 : 0) - (b ? 1 : 0);
  const [p, q] = decAlign(a, b);
  return p < q ? -1 : p > q ? 1 : 0;
}

export const decIsZero = (x) => {
  const d = decParse(x);
  return !d || d.v === 0n;
};

/** "1234567.50" → "1,234,567.50" (the string's own decimals kept). */
export function fmtAmount(text) {
  const str = String(text ?? '');
  const m = /^(-?)(\d+)(\.\d+)?$/.exec(str);
  if (!m) return str || '—';
  return m[1] + m[2].replace(/\B(?=(\d{3})+(?!\d))/g, ',') + (m[3] ?? '');
}

/** A fraction string "0.4120" as "41.20%" (exact, rounded half away from zero). */
export function fmtPercent(fraction, digits = 2) {
  const d = decParse(fraction);
  if (!d) return '—';
  const num = d.v * 100n * 10n ** BigInt(digits);
  const den = 10n ** BigInt(d.scale);
  const neg = num < 0n;
  const abs = neg ? -num : num;
  let q = abs / den;
  if ((abs % den) * 2n >= den) q += 1n;
  return `${decToString(neg ? -q : q, digits)}%`;
}

export const toNumber = (text) => {
  const n = Number(text);
  return Number.isFinite(n) ? n : 0;
};

const compactFormat = new Intl.NumberFormat('en-US', { notation: 'compact', maximumFractionDigits: 1 });
export const compact = (n) => compactFormat.format(n);

export function humanize(kind) {
  if (!kind) return '—';
  const text = String(kind).replace(/[_-]+/g, ' ').trim();
  return text.charAt(0).toUpperCase() + text.slice(1);
}

export function shortHash(hex, head = 8, tail = 6) {
  const text = String(hex ?? '');
  return text.length <= head + tail + 1 ? text : `${text.slice(0, head)}…${text.slice(-tail)}`;
}

export function shortId(id) {
  const text = String(id ?? '');
  if (text.length <= 22) return text;
  const dash = text.indexOf('-');
  const head = dash > 0 && dash < 6 ? dash + 9 : 12;
  return `${text.slice(0, head)}…${text.slice(-4)}`;
}
