// SCF Ledger Explorer: a hash-routed single page over the node's JSON API.
//
// Rules this file keeps (the page is served with a strict Content-Security-Policy):
// - every piece of data reaches the DOM through textContent / createElement (never innerHTML);
// - no inline styles from markup: classes, SVG attributes, or element.style set from here;
// - every API read goes through api(), which signs the request when a party is signed in.
// The signing key lives in this tab's sessionStorage only; only signatures leave the page.

import { publicKey, signDigest, sha256, utf8 } from './secp256k1.js';

// ================================================================================================
// DOM helpers
// ================================================================================================

const SVG_NS = 'http://www.w3.org/2000/svg';

function applyProps(el, props) {
  if (!props) return;
  for (const [key, value] of Object.entries(props)) {
    if (value === null || value === undefined || value === false) continue;
    if (key === 'class') {
      el.setAttribute('class', Array.isArray(value) ? value.filter(Boolean).join(' ') : value);
    } else if (key === 'text') {
      el.textContent = String(value);
    } else if (/^on[A-Z]/.test(key)) {
      el.addEventListener(key.slice(2).toLowerCase(), value);
    } else {
      el.setAttribute(key, value === true ? '' : String(value));
    }
  }
}

function appendKids(el, kids) {
  for (const kid of kids.flat(Infinity)) {
    if (kid === null || kid === undefined || kid === false) continue;
    el.append(kid instanceof Node ? kid : String(kid));
  }
  return el;
}

/** An HTML element: h('td', {class: 'num', 'data-field': 'x'}, 'text', child, ...). */
function h(tag, props, ...kids) {
  const el = document.createElement(tag);
  applyProps(el, props);
  return appendKids(el, kids);
}

/** An SVG element, the same way. */
function s(tag, props, ...kids) {
  const el = document.createElementNS(SVG_NS, tag);
  applyProps(el, props);
  return appendKids(el, kids);
}

const $ = (selector, root = document) => root.querySelector(selector);
let uid = 0;
const nextId = (prefix) => `${prefix}-${++uid}`;

// ================================================================================================
// Formatting (amounts stay decimal strings; floats only for chart geometry)
// ================================================================================================

const pad = (n, width = 2) => String(n).padStart(width, '0');

/** "2026-01-31 14:05:09", local time. */
function fmtTime(ms) {
  if (ms === null || ms === undefined || ms === '') return '—';
  const d = new Date(Number(ms));
  if (Number.isNaN(d.getTime())) return String(ms);
  return `${fmtDate(ms)} ${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
}

/** "2026-01-31", local time. */
function fmtDate(ms) {
  const d = new Date(Number(ms));
  if (Number.isNaN(d.getTime())) return String(ms);
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}`;
}

function timeEl(ms, { dateOnly = false } = {}) {
  if (ms === null || ms === undefined || ms === '' || ms === 0) return h('span', { class: 'muted' }, '—');
  const d = new Date(Number(ms));
  if (Number.isNaN(d.getTime())) return h('span', {}, String(ms));
  return h(
    'time',
    { datetime: d.toISOString(), title: `${d.toISOString()} UTC · ${ms} ms since the epoch` },
    dateOnly ? fmtDate(ms) : fmtTime(ms),
  );
}

const DAY_MS = 86_400_000;

/** "in 12 days", "3 days ago", "today". */
function relDays(ms, now = Date.now()) {
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
function decSum(values) {
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
function decCmp(x, y) {
  const a = decParse(x);
  const b = decParse(y);
  if (!a || !b) return (a ? 1 : 0) - (b ? 1 : 0);
  const [p, q] = decAlign(a, b);
  return p < q ? -1 : p > q ? 1 : 0;
}

const decIsZero = (x) => {
  const d = decParse(x);
  return !d || d.v === 0n;
};

/** "1234567.50" → "1,234,567.50" (the string's own decimals kept). */
function fmtAmount(text) {
  const str = String(text ?? '');
  const m = /^(-?)(\d+)(\.\d+)?$/.exec(str);
  if (!m) return str || '—';
  return m[1] + m[2].replace(/\B(?=(\d{3})+(?!\d))/g, ',') + (m[3] ?? '');
}

/** A fraction string "0.4120" as "41.20%" (exact, rounded half away from zero). */
function fmtPercent(fraction, digits = 2) {
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

const toNumber = (text) => {
  const n = Number(text);
  return Number.isFinite(n) ? n : 0;
};

const compactFormat = new Intl.NumberFormat('en-US', { notation: 'compact', maximumFractionDigits: 1 });
const compact = (n) => compactFormat.format(n);

function humanize(kind) {
  if (!kind) return '—';
  const text = String(kind).replace(/[_-]+/g, ' ').trim();
  return text.charAt(0).toUpperCase() + text.slice(1);
}

function shortHash(hex, head = 8, tail = 6) {
  const text = String(hex ?? '');
  return text.length <= head + tail + 1 ? text : `${text.slice(0, head)}…${text.slice(-tail)}`;
}

function shortId(id) {
  const text = String(id ?? '');
  if (text.length <= 22) return text;
  const dash = text.indexOf('-');
  const head = dash > 0 && dash < 6 ? dash + 9 : 12;
  return `${text.slice(0, head)}…${text.slice(-4)}`;
}

async function copyText(text, button) {
  try {
    await navigator.clipboard.writeText(text);
    if (button) {
      button.classList.add('copied');
      button.textContent = 'copied';
      setTimeout(() => {
        button.classList.remove('copied');
        button.textContent = 'copy';
      }, 1200);
    }
  } catch {
    window.prompt('Copy:', text); // clipboard unavailable (e.g. not a secure context)
  }
}

function copyButton(text, label = 'value') {
  const button = h('button', { type: 'button', class: 'copy', title: `Copy the full ${label}`, 'aria-label': `Copy ${label}` }, 'copy');
  button.addEventListener('click', (event) => {
    event.preventDefault();
    event.stopPropagation();
    copyText(text, button);
  });
  return button;
}

/** A shortened hash with the full value in its title, optionally a link, and a copy button. */
function hashEl(hex, { href = null, copy = true, full = false, label = 'hash' } = {}) {
  if (!hex) return h('span', { class: 'muted' }, '—');
  const text = full ? hex : shortHash(hex);
  const inner = href
    ? h('a', { href, class: full ? 'hash-full' : 'hash', title: hex }, text)
    : h('span', { class: full ? 'hash-full' : 'hash', title: hex }, text);
  return copy ? h('span', { class: 'nowrap' }, inner, copyButton(hex, label)) : inner;
}

// ================================================================================================
// Links and badges
// ================================================================================================

const enc = encodeURIComponent;
const link = {
  block: (height) => `#/block/${enc(height)}`,
  tx: (hash) => `#/tx/${enc(hash)}`,
  token: (id) => `#/token/${enc(id)}`,
  invoice: (id) => `#/invoice/${enc(id)}`,
  party: (id) => `#/party/${enc(id)}`,
};

function partyLink(id) {
  if (!id) return h('span', { class: 'muted' }, '—');
  return h('a', { href: link.party(id), class: 'party' }, id);
}

function tokenLink(id, { short = true } = {}) {
  if (!id) return h('span', { class: 'muted' }, '—');
  return h('a', { href: link.token(id), class: 'id', title: id }, short ? shortId(id) : id);
}

function invoiceLink(id) {
  if (!id) return h('span', { class: 'muted' }, '—');
  return h('a', { href: link.invoice(id), class: 'id' }, id);
}

function blockLink(height) {
  if (height === null || height === undefined) return h('span', { class: 'muted' }, '—');
  return h('a', { href: link.block(height) }, `#${height}`);
}

/** An id the ledger created: tokens link to their page; others are shown as they are. */
function createdIdEl(id) {
  if (/^tk-/.test(id)) return tokenLink(id);
  return h('span', { class: 'id', title: id }, shortId(id));
}

function badge(text, kind = text) {
  return h('span', { class: `badge badge-${String(kind).toLowerCase()}` }, text ?? '—');
}

const roleBadge = (role) => h('span', { class: `badge badge-role-${role}` }, role ?? '—');

function money(amount, currency) {
  return h('span', { class: 'nowrap' }, fmtAmount(amount), currency ? h('span', { class: 'muted' }, ` ${currency}`) : null);
}

// ================================================================================================
// Session (sessionStorage only) and the signed API client
// ================================================================================================

const SESSION_KEY = 'scf-explorer.session';
let session = loadSession();

function loadSession() {
  try {
    const value = JSON.parse(sessionStorage.getItem(SESSION_KEY) || 'null');
    return value && typeof value.secret === 'string' && typeof value.party === 'string' ? value : null;
  } catch {
    return null;
  }
}

function saveSession(value) {
  try {
    if (value) sessionStorage.setItem(SESSION_KEY, JSON.stringify(value));
    else sessionStorage.removeItem(SESSION_KEY);
  } catch {
    // Storage refused (private mode quotas): the session then lasts as long as the page.
  }
}

const isRegulator = () => session?.role === 'regulator';

class ApiError extends Error {
  constructor(status, code, message, extra = {}) {
    super(message || code);
    this.name = 'ApiError';
    this.status = status;
    this.code = code || `http_${status}`;
    Object.assign(this, extra);
  }
}

const EMPTY_BODY_SHA256 = 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855';
// Offset of the node's clock from ours, learnt from a stale_request answer's Date header, so that
// a reader whose computer clock is off by more than the node's 5-minute window can still read.
let clockOffsetMs = 0;

async function signedHeaders(method, pathAndQuery) {
  const time = String(Date.now() + clockOffsetMs);
  const text = `scf-read-v1\n${method}\n${pathAndQuery}\n${time}\n${EMPTY_BODY_SHA256}`;
  const digest = await sha256(utf8(text));
  return {
    'x-scf-party': session.party,
    'x-scf-time': time,
    'x-scf-signature': await signDigest(session.secret, digest),
  };
}

/**
 * Every API read: GET `path` (path and query, already encoded), signed when signed in (unless
 * `unsigned`), and the JSON answer; `stream: true` answers the Response instead (for the event
 * stream). Failures throw ApiError with the code of the JSON error body.
 */
async function api(path, { signal, stream = false, unsigned = false, retried = false } = {}) {
  const url = new URL(path, window.location.origin);
  const pathAndQuery = url.pathname + url.search; // exactly what the browser sends
  const headers = { accept: stream ? 'text/event-stream' : 'application/json' };
  if (session && !unsigned) Object.assign(headers, await signedHeaders('GET', pathAndQuery));
  let response;
  try {
    response = await fetch(url, { headers, signal, cache: 'no-store', credentials: 'omit' });
  } catch (error) {
    if (error?.name === 'AbortError') throw error;
    throw new ApiError(0, 'network_error', `The node did not answer (${error?.message || error}).`);
  }
  if (!response.ok) {
    let code = `http_${response.status}`;
    let message = response.statusText || 'request failed';
    try {
      const body = await response.json();
      if (body?.error) {
        code = body.error.code || code;
        message = body.error.message || message;
      }
    } catch {
      // Not a JSON error body: keep the HTTP status.
    }
    if (code === 'stale_request' && !retried && session && !unsigned) {
      const nodeNow = Date.parse(response.headers.get('date') || '');
      if (Number.isFinite(nodeNow) && Math.abs(nodeNow - Date.now()) > 60_000) {
        clockOffsetMs = nodeNow - Date.now();
        return api(path, { signal, stream, unsigned, retried: true });
      }
    }
    throw new ApiError(response.status, code, message);
  }
  if (stream) return response;
  return response.json();
}

/** Like api(), but never throws: {ok, value} or {ok: false, error}. */
async function attempt(path, options) {
  try {
    return { ok: true, value: await api(path, options) };
  } catch (error) {
    if (error?.name === 'AbortError') throw error;
    return { ok: false, error };
  }
}

// ================================================================================================
// Errors in the view
// ================================================================================================

const ERROR_TITLES = {
  unauthenticated: 'Sign in to see this',
  forbidden: 'Not visible to you',
  not_found: 'Not found',
  no_such_route: 'Not available on this node',
  bad_signature: 'Your signature was refused',
  stale_request: 'Your clock is too far from the node’s',
  unknown_party: 'Unknown party',
  network_error: 'The node did not answer',
};

const ERROR_HINTS = {
  unauthenticated:
    'This is a private record. Sign in with your party id and key file (above) to see what you may read.',
  forbidden:
    'You may read a record only if you are one of its parties, a party granted access by one of them, or a regulator.',
  bad_signature: 'The node could not verify your signature: sign out and sign in again with your current key.',
  stale_request: 'Signed reads must carry a time within 5 minutes of the node’s clock: check this computer’s clock.',
  unknown_party: 'The party you signed in as is not on this chain: sign out and sign in again.',
};

/** An error box carrying data-error-code; `what` names what could not be read. */
function errorBox(error, { what = null, compact = false } = {}) {
  const code = error?.code || 'error';
  const title = ERROR_TITLES[code] || 'Something went wrong';
  const auth = code === 'unauthenticated';
  const box = h(
    'div',
    {
      class: ['alert', auth ? 'alert-auth' : code === 'forbidden' ? 'alert-warn' : 'alert-error', compact && 'compact'],
      role: 'alert',
      'data-error-code': code,
    },
    h('strong', {}, what ? `${title}: ${what}` : title),
    ERROR_HINTS[code] ? h('p', {}, ERROR_HINTS[code]) : null,
    h('p', { class: 'alert-code' }, `${error?.status ? `HTTP ${error.status} · ` : ''}${code}: ${error?.message || String(error)}`),
  );
  if (auth && !session) {
    box.append(
      h('p', { class: 'alert-code' }, h('a', { href: '#signin-panel', onClick: focusSignIn }, 'Go to sign-in')),
    );
  }
  return box;
}

function focusSignIn(event) {
  event?.preventDefault();
  $('#party-id')?.focus();
}

// ================================================================================================
// Router and view lifecycle
// ================================================================================================

class ViewContext {
  constructor() {
    this.controller = new AbortController();
    this.signal = this.controller.signal;
    this.cleanups = [];
  }

  get alive() {
    return !this.signal.aborted;
  }

  onClose(fn) {
    this.cleanups.push(fn);
  }

  close() {
    this.controller.abort();
    for (const fn of this.cleanups.splice(0)) {
      try {
        fn();
      } catch {
        // keep closing
      }
    }
  }

  sleep(ms) {
    return new Promise((resolve) => {
      const timer = setTimeout(resolve, ms);
      this.onClose(() => {
        clearTimeout(timer);
        resolve();
      });
    });
  }

  /** fn at most once every `ms`, the last call always honoured, never two runs at once. */
  throttle(fn, ms) {
    let last = 0;
    let timer = null;
    let running = false;
    let again = false;
    const run = async () => {
      timer = null;
      if (!this.alive) return;
      if (running) {
        again = true;
        return;
      }
      running = true;
      last = Date.now();
      try {
        await fn();
      } finally {
        running = false;
        if (again && this.alive) {
          again = false;
          trigger();
        }
      }
    };
    const trigger = () => {
      if (timer || !this.alive) return;
      if (running) {
        again = true;
        return;
      }
      timer = setTimeout(run, Math.max(0, last + ms - Date.now()));
    };
    this.onClose(() => clearTimeout(timer));
    return trigger;
  }
}

const routes = {
  chain: viewChain,
  block: viewBlock,
  tx: viewTx,
  token: viewToken,
  invoice: viewInvoice,
  party: viewParty,
  dashboard: viewDashboard,
  search: viewSearch,
};

const VIEW_TITLES = {
  chain: 'Chain',
  block: 'Block',
  tx: 'Transaction',
  token: 'Receivable token',
  invoice: 'Invoice',
  party: 'Party',
  dashboard: 'Supervision dashboard',
  search: 'Search',
};

let current = null;
let routeSeq = 0;

function parseHash() {
  const raw = window.location.hash.replace(/^#\/?/, '');
  const parts = raw.split('/').map((part) => {
    try {
      return decodeURIComponent(part);
    } catch {
      return part;
    }
  });
  const name = parts[0] || 'chain';
  return { name, args: parts.slice(1).filter((arg) => arg !== '') };
}

async function route() {
  const seq = ++routeSeq;
  if (current) current.close();
  const ctx = new ViewContext();
  current = ctx;
  const { name, args } = parseHash();
  const view = routes[name] || viewNotFound;
  const main = $('#view');
  document.body.dataset.loading = '1';
  for (const nav of document.querySelectorAll('[data-nav]')) {
    if (nav.dataset.nav === name) nav.setAttribute('aria-current', 'page');
    else nav.removeAttribute('aria-current');
  }
  main.replaceChildren(h('div', { class: 'loading-block' }, h('span', { class: 'spinner', 'aria-hidden': 'true' }), 'Loading…'));
  let rendered;
  try {
    rendered = await view(ctx, ...args);
  } catch (error) {
    if (!ctx.alive || seq !== routeSeq) return;
    if (error?.name === 'AbortError') return;
    const heading = VIEW_TITLES[name] || 'Explorer';
    rendered = { node: h('div', {}, pageHead(heading, { sub: args[0] || null }), errorBox(error)), title: heading };
    if (!(error instanceof ApiError)) console.error(error);
  }
  if (!ctx.alive || seq !== routeSeq || !rendered) return; // replaced, or redirected
  main.replaceChildren(rendered.node);
  document.title = `${rendered.title ? `${rendered.title} · ` : ''}SCF Ledger Explorer`;
  document.body.dataset.view = routes[name] ? name : 'notfound';
  document.body.dataset.loading = '0';
  if (rendered.start) {
    try {
      rendered.start();
    } catch (error) {
      console.error(error);
    }
  }
}

function pageHead(title, { crumbs = null, sub = null, right = null } = {}) {
  return h(
    'div',
    { class: 'page-head' },
    crumbs ? h('div', { class: 'crumbs' }, crumbs) : null,
    h('h1', {}, title),
    sub ? h('span', { class: 'page-sub' }, sub) : null,
    right ? h('span', { class: 'spacer' }) : null,
    right,
  );
}

function card(title, body, { right = null, flush = false, foot = null, id = null, extraHead = null } = {}) {
  return h(
    'section',
    { class: 'card', id },
    title || right
      ? h('div', { class: 'card-head' }, title ? h('h2', {}, title) : null, extraHead, h('span', { class: 'spacer' }), right)
      : null,
    h('div', { class: ['card-body', flush && 'flush'] }, body),
    foot ? h('div', { class: 'card-foot' }, foot) : null,
  );
}

function kv(pairs) {
  const dl = h('dl', { class: 'kv' });
  for (const [key, value] of pairs) {
    if (value === undefined) continue;
    dl.append(h('dt', {}, key), h('dd', {}, value === null ? h('span', { class: 'muted' }, '—') : value));
  }
  return dl;
}

function table(headers, rows, { empty = 'Nothing to show.', caption = null, foot = null, className = null } = {}) {
  if (!rows.length) return h('div', { class: 'empty' }, empty);
  const head = h(
    'tr',
    {},
    headers.map((header) => {
      const spec = typeof header === 'string' ? { label: header } : header;
      return h('th', { scope: 'col', class: spec.num ? 'num' : null }, spec.label);
    }),
  );
  return h(
    'div',
    { class: 'table-wrap' },
    h('table', { class: ['table', className] }, caption ? h('caption', { class: 'visually-hidden' }, caption) : null, h('thead', {}, head), h('tbody', {}, rows), foot ? h('tfoot', {}, foot) : null),
  );
}

const td = (content, props = {}) => h('td', props, content);
const tdNum = (content, props = {}) => h('td', { ...props, class: ['num', props.class] }, content);

function liveIndicator() {
  const el = h('span', { class: 'live', role: 'status' }, 'connecting…');
  el.set = (state, text) => {
    el.className = `live ${state === 'on' ? 'live-on' : state === 'off' ? 'live-off' : 'live-wait'}`;
    el.textContent = text;
  };
  return el;
}

function setTip(height) {
  const value = Number(height);
  if (!Number.isFinite(value)) return;
  const known = Number(document.body.dataset.tip ?? -1);
  if (!(value >= known)) return;
  document.body.dataset.tip = String(value);
}

// ================================================================================================
// Live events: fetch + ReadableStream + our own SSE parser (EventSource cannot sign)
// ================================================================================================

/** Reads an SSE response, calling onEvent({event, data, id}) per dispatched event. */
async function readEventStream(response, signal, onEvent) {
  const reader = response.body.getReader();
  const decoder = new TextDecoder();
  let buffer = '';
  let eventName = '';
  let data = [];
  let lastId = null;
  const abort = () => reader.cancel().catch(() => {});
  signal.addEventListener('abort', abort, { once: true });
  const line = (text) => {
    if (text === '') {
      if (data.length) onEvent({ event: eventName || 'message', data: data.join('\n'), id: lastId });
      eventName = '';
      data = [];
      return;
    }
    if (text.startsWith(':')) return; // comment / keep-alive
    const colon = text.indexOf(':');
    const field = colon < 0 ? text : text.slice(0, colon);
    let value = colon < 0 ? '' : text.slice(colon + 1);
    if (value.startsWith(' ')) value = value.slice(1);
    if (field === 'event') eventName = value;
    else if (field === 'data') data.push(value);
    else if (field === 'id' && !value.includes('\0')) lastId = value;
  };
  try {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      buffer += decoder.decode(value, { stream: true });
      for (;;) {
        const at = buffer.search(/\r\n|\r|\n/);
        if (at < 0) break;
        if (buffer[at] === '\r' && at === buffer.length - 1) break; // a \n may follow in the next chunk
        const width = buffer.startsWith('\r\n', at) ? 2 : 1;
        line(buffer.slice(0, at));
        buffer = buffer.slice(at + width);
      }
    }
  } finally {
    signal.removeEventListener('abort', abort);
  }
}

/**
 * Follows the chain from height `from` while the view is open: the event stream
 * (/v1/events?from=H, signed when signed in) with reconnects from the last block + 1 and a short
 * backoff; polling /v1/blocks if this node has no event stream.
 */
async function followChain(ctx, from, { onBlock, onTx, indicator }) {
  let next = Math.max(1, Number(from) || 1);
  let backoff = 1000;
  const status = (state, text) => indicator?.set(state, text);
  while (ctx.alive) {
    try {
      status('wait', 'connecting…');
      const response = await api(`/v1/events?from=${next}`, { signal: ctx.signal, stream: true });
      status('on', 'live');
      await readEventStream(response, ctx.signal, (event) => {
        backoff = 1000;
        let payload;
        try {
          payload = JSON.parse(event.data);
        } catch {
          return;
        }
        if (event.event === 'block') {
          next = Math.max(next, Number(payload.height) + 1);
          setTip(payload.height);
          onBlock?.(payload);
        } else if (event.event === 'tx') {
          onTx?.(payload);
        }
      });
      if (!ctx.alive) return;
      status('wait', 'reconnecting…');
    } catch (error) {
      if (!ctx.alive || error?.name === 'AbortError') return;
      if (error instanceof ApiError && (error.code === 'no_such_route' || error.status === 404)) {
        return pollChain(ctx, next, { onBlock, onTx, status });
      }
      if (error instanceof ApiError && (error.status === 401 || error.status === 403)) {
        status('off', `live updates refused: ${error.code}`);
        await ctx.sleep(15000);
        continue;
      }
      status('wait', 'reconnecting…');
    }
    await ctx.sleep(backoff);
    backoff = Math.min(backoff * 2, 15000);
  }
}

/** The fallback: ask for new blocks every few seconds. */
async function pollChain(ctx, from, { onBlock, onTx, status }) {
  let next = from;
  status('on', 'live (polling)');
  while (ctx.alive) {
    await ctx.sleep(3000);
    if (!ctx.alive) return;
    try {
      const page = await api(`/v1/blocks?from=${next}&limit=20`, { signal: ctx.signal });
      for (const block of page.blocks || []) {
        next = Math.max(next, Number(block.height) + 1);
        setTip(block.height);
        onBlock?.({ height: block.height, block_hash: block.block_hash, time_ms: block.time_ms, tx_count: block.tx_count });
        (block.transactions || []).forEach((tx, index) => onTx?.(txEventFromBlock(block, tx, index)));
      }
      status('on', 'live (polling)');
    } catch (error) {
      if (!ctx.alive || error?.name === 'AbortError') return;
      status('wait', 'reconnecting…');
    }
  }
}

function txEventFromBlock(block, tx, index) {
  return {
    height: block.height,
    index,
    time_ms: block.time_ms,
    tx_hash: tx.tx_hash,
    outcome: tx.outcome,
    reason: tx.reason,
    kind: tx.decoded?.kind ?? null,
    signer: tx.decoded?.signer ?? null,
    created_ids: tx.created_ids || [],
  };
}

// ================================================================================================
// #/chain
// ================================================================================================

const CHAIN_ROWS = 20;

async function viewChain(ctx) {
  const status = await api('/v1/status', { signal: ctx.signal });
  setTip(status.height);
  const tip = Number(status.height) || 0;
  const first = Math.max(1, tip - CHAIN_ROWS + 1);
  const page = tip > 0 ? await api(`/v1/blocks?from=${first}&limit=${CHAIN_ROWS}`, { signal: ctx.signal }) : { blocks: [] };
  if (page.height !== undefined) setTip(page.height);
  const blocks = (page.blocks || []).slice().sort((a, b) => b.height - a.height);

  // Status card, its values updated in place.
  const fields = {};
  const field = (name, content) => {
    fields[name] = h('span', {}, content);
    return fields[name];
  };
  const statusCard = card(
    'Node status',
    h(
      'div',
      { class: 'kv-cols' },
      kv([
        ['Node', field('node', `node ${status.node_id}`)],
        ['Role', field('role', badge(status.role))],
        ['Leader', field('leader', status.leader_id === null || status.leader_id === undefined ? 'none known' : `node ${status.leader_id}`)],
        ['Term', field('term', String(status.term ?? '—'))],
      ]),
      kv([
        ['Height', field('height', String(status.height ?? 0))],
        ['Last block', field('last', hashEl(status.last_block_hash, { href: tip ? link.block(tip) : null, label: 'block hash' }))],
        ['State hash', field('state', hashEl(status.state_hash, { label: 'state hash' }))],
        ['Commit / applied', field('indexes', `${status.commit_index ?? '—'} / ${status.applied_index ?? '—'}`)],
      ]),
    ),
  );
  const setStatus = (st) => {
    fields.node.textContent = `node ${st.node_id}`;
    fields.role.replaceChildren(badge(st.role));
    fields.leader.textContent = st.leader_id === null || st.leader_id === undefined ? 'none known' : `node ${st.leader_id}`;
    fields.term.textContent = String(st.term ?? '—');
    fields.height.textContent = String(st.height ?? 0);
    fields.last.replaceChildren(hashEl(st.last_block_hash, { href: st.height ? link.block(st.height) : null, label: 'block hash' }));
    fields.state.replaceChildren(hashEl(st.state_hash, { label: 'state hash' }));
    fields.indexes.textContent = `${st.commit_index ?? '—'} / ${st.applied_index ?? '—'}`;
    $('#footer-node').textContent = `node ${st.node_id} (${st.role}) · height ${st.height}`;
  };
  $('#footer-node').textContent = `node ${status.node_id} (${status.role}) · height ${status.height}`;

  // Blocks table.
  const tbody = h('tbody', {});
  let cap = CHAIN_ROWS;
  const blockRow = (block, fresh = false) => {
    const row = h(
      'tr',
      { 'data-height': String(block.height), class: ['clickable', fresh && 'row-new'] },
      td(h('a', { href: link.block(block.height) }, String(block.height))),
      td(timeEl(block.time_ms)),
      tdNum(String(block.tx_count ?? (block.tx_hashes || []).length)),
      td(hashEl(block.block_hash, { copy: false })),
    );
    row.addEventListener('click', (event) => {
      if (event.target.closest('a, button')) return;
      window.location.hash = link.block(block.height);
    });
    return row;
  };
  for (const block of blocks) tbody.append(blockRow(block));
  const emptyRow = h('tr', { class: 'empty-row' }, h('td', { colspan: '4', class: 'empty' }, 'No blocks yet: the chain starts with its first transaction.'));
  if (!blocks.length) tbody.append(emptyRow);
  let oldest = blocks.length ? Math.min(...blocks.map((b) => Number(b.height))) : tip + 1;
  const olderButton = h('button', { type: 'button', class: 'button-small', hidden: oldest <= 1 }, 'Older blocks');
  olderButton.addEventListener('click', async () => {
    olderButton.disabled = true;
    try {
      const from = Math.max(1, oldest - CHAIN_ROWS);
      const older = await api(`/v1/blocks?from=${from}&limit=${oldest - from}`, { signal: ctx.signal });
      const rows = (older.blocks || []).slice().sort((a, b) => b.height - a.height);
      for (const block of rows) {
        if (!tbody.querySelector(`tr[data-height="${Number(block.height)}"]`)) tbody.append(blockRow(block));
      }
      cap += rows.length;
      oldest = from;
      olderButton.hidden = oldest <= 1;
    } catch (error) {
      if (error?.name !== 'AbortError') olderButton.after(errorBox(error, { compact: true }));
    } finally {
      olderButton.disabled = false;
    }
  });
  const indicator = liveIndicator();
  const blocksCard = card(
    'Latest blocks',
    h(
      'div',
      { class: 'table-wrap' },
      h(
        'table',
        { class: 'table', id: 'blocks' },
        h('caption', { class: 'visually-hidden' }, 'Latest blocks, newest first'),
        h('thead', {}, h('tr', {}, h('th', { scope: 'col' }, 'Height'), h('th', { scope: 'col' }, 'Time'), h('th', { scope: 'col', class: 'num' }, 'Transactions'), h('th', { scope: 'col' }, 'Block hash'))),
        tbody,
      ),
    ),
    { flush: true, right: indicator, foot: h('div', { class: 'pager' }, olderButton, h('span', {}, 'Newest first. New blocks appear at the top as they are committed.')) },
  );

  // Live transactions (what the signed-in reader may see: a regulator sees all).
  let feedCard = null;
  let feedBody = null;
  const feedRow = (tx, fresh = false) =>
    h(
      'tr',
      { class: fresh ? 'row-new' : null, 'data-tx': tx.tx_hash, 'data-outcome': tx.outcome },
      td([h('div', { class: 'nowrap' }, timeEl(tx.time_ms)), h('div', { class: 'small muted' }, 'block ', blockLink(tx.height))]),
      td([
        h('div', {}, h('span', { title: tx.kind || '' }, tx.kind ? humanize(tx.kind) : h('span', { class: 'muted' }, '—')), ' ', badge(tx.outcome)),
        tx.signer ? h('div', { class: 'small muted' }, 'by ', partyLink(tx.signer)) : null,
        tx.reason ? h('div', { class: 'small', title: tx.reason.message || '' }, h('code', {}, tx.reason.code), ' ', h('span', { class: 'muted' }, tx.reason.message || '')) : null,
      ]),
      td(hashEl(tx.tx_hash, { href: link.tx(tx.tx_hash), copy: false })),
    );
  const FEED_MAX = 100;
  if (session) {
    feedBody = h('tbody', {});
    const prefill = [];
    for (const block of blocks) {
      (block.transactions || []).forEach((tx, index) => prefill.push(txEventFromBlock(block, tx, index)));
    }
    prefill.sort((a, b) => b.height - a.height || b.index - a.index);
    for (const tx of prefill.slice(0, FEED_MAX)) feedBody.append(feedRow(tx));
    const feedEmpty = h(
      'div',
      { class: 'empty' },
      isRegulator() ? 'No transactions in the latest blocks. New ones appear here as they are committed.' : 'Waiting for new transactions you are party to…',
    );
    feedEmpty.hidden = prefill.length > 0;
    const feedTable = table(['When', 'What, by whom, outcome', 'Transaction'], [h('tr', {})], {});
    feedTable.classList.add('feed-scroll');
    feedTable.querySelector('tbody').replaceWith(feedBody);
    feedTable.hidden = prefill.length === 0;
    feedCard = card(isRegulator() ? 'Live transactions (all parties)' : 'Your live transactions', [feedTable, feedEmpty], {
      flush: true,
      foot: isRegulator() ? 'As a regulator you see every transaction, applied or rejected, with the reason for each rejection.' : 'Transactions you are party to, as they are committed from now on.',
    });
    feedCard.showRows = () => {
      feedTable.hidden = false;
      feedEmpty.hidden = true;
    };
  }

  const refreshStatus = ctx.throttle(async () => {
    const fresh = await attempt('/v1/status', { signal: ctx.signal });
    if (fresh.ok && ctx.alive) setStatus(fresh.value);
  }, 3000);

  const node = h(
    'div',
    {},
    pageHead('Chain', { sub: isRegulator() ? 'regulator view: transactions included' : session ? 'block headers; transactions as you may see them' : 'public view: block headers and transaction hashes' }),
    statusCard,
    feedCard ? h('div', { class: 'grid grid-chain' }, blocksCard, feedCard) : blocksCard,
  );

  return {
    node,
    title: 'Chain',
    start() {
      followChain(ctx, tip + 1, {
        indicator,
        onBlock(block) {
          if (tbody.querySelector(`tr[data-height="${Number(block.height)}"]`)) return;
          emptyRow.remove();
          const row = blockRow(block, true);
          const firstRow = tbody.querySelector('tr[data-height]');
          if (firstRow && Number(firstRow.dataset.height) > Number(block.height)) {
            // Out of order (should not happen): put it where it belongs.
            const after = [...tbody.querySelectorAll('tr[data-height]')].find((r) => Number(r.dataset.height) < Number(block.height));
            tbody.insertBefore(row, after || null);
          } else {
            tbody.prepend(row);
          }
          const rows = tbody.querySelectorAll('tr[data-height]');
          for (let i = cap; i < rows.length; i++) rows[i].remove();
          oldest = Math.min(...[...tbody.querySelectorAll('tr[data-height]')].map((r) => Number(r.dataset.height)));
          olderButton.hidden = oldest <= 1;
          fields.height.textContent = String(block.height);
          fields.last.replaceChildren(hashEl(block.block_hash, { href: link.block(block.height), label: 'block hash' }));
          refreshStatus();
        },
        onTx(tx) {
          if (!feedBody || feedBody.querySelector(`tr[data-tx="${CSS.escape(tx.tx_hash)}"]`)) return;
          feedBody.prepend(feedRow(tx, true));
          feedCard.showRows();
          while (feedBody.rows.length > FEED_MAX) feedBody.lastElementChild.remove();
        },
      });
    },
  };
}

// ================================================================================================
// #/block/H
// ================================================================================================

const PARTY_FIELDS = new Set(['signer', 'seller', 'buyer', 'obligor', 'holder', 'bank', 'to', 'from', 'carrier', 'party_id', 'grantee', 'owner', 'payer', 'new_holder', 'party']);
const TOKEN_FIELDS = new Set(['token_id', 'parent_id']);
const INVOICE_FIELDS = new Set(['invoice_id']);

function commandValue(key, value) {
  if (value === null || value === undefined) return h('span', { class: 'muted' }, '—');
  if (typeof value === 'string') {
    if (PARTY_FIELDS.has(key)) return partyLink(value);
    if (TOKEN_FIELDS.has(key)) return tokenLink(value, { short: false });
    if (INVOICE_FIELDS.has(key)) return invoiceLink(value);
    if (/(_hash|public_key)$/.test(key) && /^[0-9a-f]{16,}$/i.test(value)) return hashEl(value, { label: key });
    if (/_ms$/.test(key) && /^\d+$/.test(value)) return timeEl(Number(value));
    return h('span', {}, value);
  }
  if (typeof value === 'number') return /_ms$/.test(key) && value > 1e11 ? timeEl(value) : h('span', {}, String(value));
  if (typeof value === 'boolean') return h('span', {}, value ? 'yes' : 'no');
  if (Array.isArray(value)) {
    if (!value.length) return h('span', { class: 'muted' }, 'none');
    if (value.every((v) => typeof v !== 'object' || v === null)) {
      return h('span', { class: 'pill-list' }, value.map((v) => (typeof v === 'string' && PARTY_FIELDS.has(key.replace(/s$/, '')) ? partyLink(v) : h('code', {}, String(v)))));
    }
    return h('ul', { class: 'plain' }, value.map((v) => h('li', {}, h('code', {}, formatObject(v)))));
  }
  return h('code', {}, formatObject(value));
}

function formatObject(value) {
  if (value && typeof value === 'object' && !Array.isArray(value)) {
    return Object.entries(value)
      .map(([k, v]) => `${k}: ${typeof v === 'object' ? JSON.stringify(v) : v}`)
      .join(', ');
  }
  return JSON.stringify(value);
}

/** A nonce: a u64, which JSON.parse rounds above 2^53, so large ones are marked approximate. */
function nonceEl(nonce) {
  if (nonce === null || nonce === undefined) return h('span', { class: 'muted' }, '—');
  if (typeof nonce === 'number' && !Number.isSafeInteger(nonce)) {
    return h('code', { title: 'a 64-bit number: the browser shows it rounded' }, `≈ ${BigInt(Math.round(nonce)).toString()}`);
  }
  return h('code', {}, String(nonce));
}

function decodedDetails(decoded) {
  if (!decoded) return h('span', { class: 'muted', title: 'the body does not decode as a ledger transaction' }, 'not decodable');
  const command = decoded.command && typeof decoded.command === 'object' ? decoded.command : {};
  const pairs = Object.entries(command)
    .filter(([key]) => key !== 'kind' && key !== 'command')
    .map(([key, value]) => [humanize(key), commandValue(key, value)]);
  pairs.push(['Valid until', timeEl(decoded.valid_until_ms)], ['Nonce', nonceEl(decoded.nonce)]);
  return h('details', {}, h('summary', {}, 'Command'), kv(pairs));
}

function transactionsTable(block, transactions) {
  const rows = transactions.map((tx, index) =>
    h(
      'tr',
      { 'data-tx': tx.tx_hash, 'data-outcome': tx.outcome },
      tdNum(String(tx.index ?? index)),
      td(hashEl(tx.tx_hash, { href: link.tx(tx.tx_hash), copy: false })),
      td(tx.decoded ? humanize(tx.decoded.kind) : h('span', { class: 'muted' }, '—'), { title: tx.decoded?.kind || '' }),
      td(partyLink(tx.decoded?.signer)),
      td(badge(tx.outcome)),
      td(
        tx.outcome === 'rejected' && tx.reason
          ? [h('code', {}, tx.reason.code), h('div', { class: 'small muted' }, tx.reason.message || '')]
          : (tx.created_ids || []).length
            ? h('span', { class: 'pill-list' }, h('span', { class: 'muted small' }, 'created'), tx.created_ids.map(createdIdEl))
            : h('span', { class: 'muted' }, '—'),
      ),
      td(decodedDetails(tx.decoded), { class: 'details-cell' }),
    ),
  );
  return table(['#', 'Transaction', 'Kind', 'Signer', 'Outcome', 'Result', 'Details'], rows, { empty: 'No transactions in this block.', caption: `Transactions of block ${block.height}` });
}

async function viewBlock(ctx, heightArg) {
  if (!/^\d+$/.test(heightArg || '')) throw new ApiError(400, 'bad_height', 'A block height is a whole number, 1 or more.');
  const height = Number(heightArg);
  const [block, status] = await Promise.all([
    api(`/v1/blocks/${height}`, { signal: ctx.signal }),
    attempt('/v1/status', { signal: ctx.signal }),
  ]);
  const tip = status.ok ? Number(status.value.height) : null;
  if (tip !== null) setTip(tip);
  const prev = height > 1 ? h('a', { class: 'button button-small', href: link.block(height - 1) }, '← Previous') : null;
  const next = tip === null || height < tip ? h('a', { class: 'button button-small', href: link.block(height + 1) }, 'Next →') : null;

  const header = card(
    'Header',
    h(
      'div',
      { class: 'kv-cols' },
      kv([
        ['Height', String(block.height)],
        ['Time', timeEl(block.time_ms)],
        ['Transactions', String(block.tx_count ?? (block.tx_hashes || []).length)],
        ['Version', String(block.version ?? '—')],
      ]),
      kv([
        ['Block hash', hashEl(block.block_hash, { label: 'block hash' })],
        ['Previous hash', hashEl(block.prev_hash, { href: height > 1 ? link.block(height - 1) : null, label: 'previous block hash' })],
        ['Transactions root', hashEl(block.tx_root, { label: 'tx root' })],
        ['Results hash', hashEl(block.results_hash, { label: 'results hash' })],
        ['State hash', hashEl(block.state_hash, { label: 'state hash' })],
      ]),
    ),
    { right: h('span', { class: 'pager' }, prev, next) },
  );

  let body;
  if (Array.isArray(block.transactions)) {
    const applied = block.transactions.filter((t) => t.outcome === 'applied').length;
    body = card('Transactions', transactionsTable(block, block.transactions), {
      flush: true,
      extraHead: h('span', { class: 'muted small' }, `${applied} applied, ${block.transactions.length - applied} rejected`),
      foot: 'Decoded bodies and outcomes are shown to regulators. Rejected transactions stay on the chain for auditors.',
    });
  } else {
    const hashes = block.tx_hashes || [];
    body = card(
      'Transaction hashes',
      hashes.length
        ? h('ol', { class: 'hash-list', start: '0' }, hashes.map((hash) => h('li', {}, hashEl(hash, { href: link.tx(hash) }))))
        : h('div', { class: 'empty' }, 'No transactions in this block.'),
      { foot: session ? 'Transaction contents are shown to regulators only; open a transaction for its outcome.' : 'Open a transaction for its outcome. Transaction contents are shown to signed-in regulators only.' },
    );
  }
  return {
    node: h('div', {}, pageHead(`Block ${block.height}`, { crumbs: [h('a', { href: '#/chain' }, 'Chain'), ' / block'], sub: fmtTime(block.time_ms) }), header, body),
    title: `Block ${block.height}`,
  };
}

// ================================================================================================
// #/tx/HASH
// ================================================================================================

async function viewTx(ctx, hash = '') {
  const tx = await api(`/v1/transactions/${enc(hash)}`, { signal: ctx.signal });
  let decodedCard = null;
  if (session) {
    const block = await attempt(`/v1/blocks/${enc(tx.height)}`, { signal: ctx.signal });
    const full = block.ok && Array.isArray(block.value.transactions) ? block.value.transactions.find((t) => t.tx_hash === tx.tx_hash) : null;
    if (full) {
      const decoded = full.decoded;
      decodedCard = card(
        'Contents',
        decoded
          ? kv([
              ['Kind', h('span', {}, humanize(decoded.kind), ' ', h('code', { class: 'muted' }, decoded.kind || ''))],
              ['Signer', partyLink(decoded.signer)],
              ['Valid until', timeEl(decoded.valid_until_ms)],
              ['Nonce', nonceEl(decoded.nonce)],
              ['Chain', decoded.chain_id ? h('code', {}, decoded.chain_id) : undefined],
              ...Object.entries(decoded.command || {})
                .filter(([key]) => key !== 'kind')
                .map(([key, value]) => [humanize(key), commandValue(key, value)]),
              ['Signature', hashEl(full.signature, { label: 'signature' })],
            ])
          : h('div', { class: 'empty' }, 'The body does not decode as a ledger transaction.'),
        { foot: 'Shown to regulators.' },
      );
    } else if (block.ok) {
      decodedCard = h('div', { class: 'alert alert-info' }, h('strong', {}, 'Contents not shown'), h('p', {}, 'Transaction contents are shown to regulators only.'));
    }
  }
  const outcome = card(
    'Outcome',
    kv([
      ['Transaction hash', hashEl(tx.tx_hash, { full: true, label: 'transaction hash' })],
      ['Outcome', badge(tx.outcome)],
      ['Block', h('span', {}, blockLink(tx.height), tx.index !== undefined ? h('span', { class: 'muted' }, ` · position ${tx.index}`) : null)],
      tx.reason ? ['Rejected because', h('span', {}, h('code', {}, tx.reason.code), ' ', tx.reason.message || '')] : ['Rejected because', undefined],
      (tx.created_ids || []).length ? ['Created', h('span', { class: 'pill-list' }, tx.created_ids.map(createdIdEl))] : ['Created', undefined],
    ]),
  );
  return {
    node: h('div', {}, pageHead('Transaction', { crumbs: [h('a', { href: '#/chain' }, 'Chain'), ' / ', blockLink(tx.height), ' / transaction'], sub: shortHash(tx.tx_hash, 12, 8) }), outcome, decodedCard),
    title: `Transaction ${shortHash(tx.tx_hash)}`,
  };
}

// ================================================================================================
// Goods evidence: invoice → purchase order → shipments
// ================================================================================================

function invoiceDetails(invoice) {
  return h(
    'div',
    { class: 'kv-cols' },
    kv([
      ['Invoice', h('span', { class: 'id' }, invoice.invoice_id)],
      ['Status', badge(invoice.status)],
      ['Amount', money(invoice.amount, invoice.currency)],
      ['Seller', partyLink(invoice.seller)],
      ['Buyer', partyLink(invoice.buyer)],
      ['Purchase order', h('span', { class: 'id' }, invoice.po_id)],
      ['Shipments', (invoice.shipment_ids || []).length ? h('span', { class: 'pill-list' }, invoice.shipment_ids.map((id) => h('code', {}, id))) : null],
    ]),
    kv([
      ['Issued', timeEl(invoice.issued_at_ms)],
      ['Due', invoice.due_date_ms ? h('span', {}, timeEl(invoice.due_date_ms, { dateOnly: true }), invoice.token_id ? null : h('span', { class: 'muted' }, ` (${relDays(invoice.due_date_ms)})`)) : null],
      ['Maturity', invoice.maturity_ms ? timeEl(invoice.maturity_ms, { dateOnly: true }) : null],
      ['Token', invoice.token_id ? tokenLink(invoice.token_id, { short: false }) : null],
      ['Rejected because', invoice.reject_reason ? h('span', {}, invoice.reject_reason) : undefined],
      ['Document hash', hashEl(invoice.document_hash, { label: 'document hash' })],
    ]),
  );
}

function purchaseOrderDetails(order) {
  const shipped = new Map();
  for (const line of order.shipped || []) shipped.set(line.sku, line.quantity);
  const rows = (order.lines || []).map((line) =>
    h('tr', {}, td(h('code', {}, line.sku)), tdNum(String(line.quantity)), tdNum(String(line.unit_price ?? '—')), tdNum(String(shipped.get(line.sku) ?? 0))),
  );
  return h(
    'div',
    {},
    kv([
      ['Buyer', partyLink(order.buyer)],
      ['Seller', partyLink(order.seller)],
      ['Currency', order.currency],
      ['Created', timeEl(order.created_at_ms)],
    ]),
    h('div', { class: 'gap-top' }, table([{ label: 'SKU' }, { label: 'Ordered', num: true }, { label: `Unit price${order.currency ? ` (${order.currency})` : ''}`, num: true }, { label: 'Shipped', num: true }], rows, { empty: 'No order lines.' })),
  );
}

function shipmentDetails(shipment) {
  return h(
    'div',
    {},
    kv([
      ['Carrier', shipment.carrier ? partyLink(shipment.carrier) : null],
      ['Shipped', timeEl(shipment.shipped_at_ms)],
      ['Delivered', shipment.delivered_at_ms ? timeEl(shipment.delivered_at_ms) : h('span', { class: 'muted' }, 'not confirmed yet')],
      ['Carrier attested', shipment.carrier_attested_at_ms ? timeEl(shipment.carrier_attested_at_ms) : h('span', { class: 'muted' }, 'no')],
      ['Lines', (shipment.lines || []).length ? h('span', { class: 'pill-list' }, shipment.lines.map((l) => h('code', {}, `${l.sku} × ${l.quantity}`))) : null],
      ['Invoice', shipment.invoice_id ? invoiceLink(shipment.invoice_id) : null],
      ['Document hash', hashEl(shipment.document_hash, { label: 'document hash' })],
    ]),
  );
}

function evidenceItem(kind, id, content) {
  return h('div', { class: 'evidence-item' }, h('h3', {}, h('span', { class: 'kind' }, kind), h('span', { class: 'id' }, id)), content);
}

/** The purchase order and shipments behind an invoice, each read as the reader may. */
async function goodsEvidence(ctx, invoice) {
  const shipmentIds = invoice.shipment_ids || [];
  const [order, ...shipments] = await Promise.all([
    attempt(`/v1/purchase-orders/${enc(invoice.po_id)}`, { signal: ctx.signal }),
    ...shipmentIds.map((id) => attempt(`/v1/shipments/${enc(id)}`, { signal: ctx.signal })),
  ]);
  return h(
    'div',
    { class: 'evidence' },
    evidenceItem('Purchase order', invoice.po_id, order.ok ? purchaseOrderDetails(order.value) : errorBox(order.error, { what: `purchase order ${invoice.po_id}`, compact: true })),
    shipmentIds.length
      ? shipmentIds.map((id, i) =>
          evidenceItem('Shipment', id, shipments[i].ok ? shipmentDetails(shipments[i].value) : errorBox(shipments[i].error, { what: `shipment ${id}`, compact: true })),
        )
      : h('div', { class: 'empty' }, 'The invoice names no shipment.'),
  );
}

// ================================================================================================
// #/token/ID
// ================================================================================================

function tokenNode(token, currentId) {
  const here = token.token_id === currentId;
  return h(
    'div',
    {
      class: ['token-node', here && 'is-current', (token.state === 'retired' || token.state === 'settled') && 'is-off'],
      'data-token-id': token.token_id,
      'data-holder': token.holder,
      'data-face-value': token.face_value,
      'data-state': token.state,
    },
    here ? h('span', { class: 'tn-here' }, 'this token') : null,
    h('a', { class: 'tn-id', href: link.token(token.token_id), title: token.token_id }, shortId(token.token_id)),
    h('span', { class: 'tn-state' }, badge(token.state)),
    h('span', { class: 'tn-holder' }, 'held by ', partyLink(token.holder)),
    h('span', { class: 'tn-value' }, money(token.face_value, token.currency)),
  );
}

/** The lineage as an indented tree with connector lines, from the first ancestor down. */
function lineageTree(lineage, currentId) {
  const all = new Map();
  for (const token of [...(lineage.ancestors || []), lineage.token, ...(lineage.descendants || [])]) {
    if (token?.token_id) all.set(token.token_id, token);
  }
  const root = (lineage.ancestors || [])[0] || lineage.token;
  const seen = new Set();
  const item = (token) => {
    seen.add(token.token_id);
    const li = h('li', {}, tokenNode(token, currentId));
    const children = (token.child_ids || []).map((id) => {
      const child = all.get(id);
      if (child && !seen.has(id)) return item(child);
      return h(
        'li',
        {},
        h('span', { class: 'token-stub', 'data-stub-token-id': id }, 'another piece: ', h('a', { href: link.token(id), title: id }, shortId(id)), h('span', { class: 'muted' }, ' (open to see it, if you may)')),
      );
    });
    if (children.length) li.append(h('ul', {}, children));
    return li;
  };
  return h('div', { class: 'tree-wrap' }, h('ul', { class: 'tree tree-root', 'aria-label': 'Token lineage' }, item(root)));
}

/** A party's name from an attempt() of its record, when it says more than the id. */
function partyName(result) {
  if (!result?.ok) return null;
  const { name, party_id: id } = result.value;
  return name && name !== id ? name : null;
}

async function viewToken(ctx, id = '') {
  const token = await api(`/v1/tokens/${enc(id)}`, { signal: ctx.signal });
  const [lineage, invoice, holder, obligor] = await Promise.all([
    attempt(`/v1/tokens/${enc(id)}/lineage`, { signal: ctx.signal }),
    token.invoice_id ? attempt(`/v1/invoices/${enc(token.invoice_id)}`, { signal: ctx.signal }) : Promise.resolve(null),
    attempt(`/v1/parties/${enc(token.holder)}`, { signal: ctx.signal }),
    attempt(`/v1/parties/${enc(token.obligor)}`, { signal: ctx.signal }),
  ]);
  const evidence = invoice?.ok ? await goodsEvidence(ctx, invoice.value) : null;

  const holderRole = holder.ok ? holder.value.role : null;
  const maturity = Number(token.maturity_ms);
  const notes = [];
  if (holderRole === 'bank') {
    const then = {
      live: ' The obligor pays the bank at maturity.',
      overdue: ' It is overdue: the obligor has not paid the bank yet.',
      settled: ' The obligor has paid it.',
    }[token.state] || '';
    notes.push(
      h('div', { class: 'callout bank' }, h('strong', {}, 'Held by a bank. '), partyLink(token.holder), ` holds this receivable: it was financed (discounted) by, or sold to, that bank.${then}`),
    );
  }
  if (token.open_offer_id) {
    notes.push(h('div', { class: 'callout' }, 'An offer to sell this token to a bank is open: ', h('code', {}, token.open_offer_id), '.'));
  }
  const summary = card(
    'Token',
    h(
      'div',
      {},
      notes,
      h(
        'div',
        { class: 'kv-cols' },
        kv([
          ['Token id', h('span', { class: 'id' }, token.token_id, copyButton(token.token_id, 'token id'))],
          ['State', badge(token.state)],
          ['Face value', money(token.face_value, token.currency)],
          ['Maturity', maturity ? h('span', {}, timeEl(maturity, { dateOnly: true }), token.state === 'live' || token.state === 'overdue' ? h('span', { class: token.state === 'overdue' ? 'bad-text' : 'muted' }, ` (${relDays(maturity)})`) : null) : null],
          ['Invoice', invoiceLink(token.invoice_id)],
        ]),
        kv([
          ['Obligor', h('span', {}, partyLink(token.obligor), partyName(obligor) ? h('span', { class: 'muted' }, ` · ${partyName(obligor)}`) : null)],
          ['Holder', h('span', {}, partyLink(token.holder), ' ', holderRole ? roleBadge(holderRole) : null, partyName(holder) ? h('span', { class: 'muted' }, ` ${partyName(holder)}`) : null)],
          ['Holder changes', String(token.holder_changes ?? 0)],
          ['Split from', token.parent_id ? tokenLink(token.parent_id, { short: false }) : null],
          ['Split into', (token.child_ids || []).length ? h('span', { class: 'pill-list' }, token.child_ids.map((c) => tokenLink(c))) : null],
        ]),
      ),
    ),
  );

  const lineageCard = card(
    'Lineage',
    lineage.ok ? lineageTree(lineage.value, token.token_id) : errorBox(lineage.error, { what: 'the lineage' }),
    { foot: 'From the token minted when the invoice was accepted, down through every split; retired tokens were split or replaced, settled ones paid.' },
  );

  // The discounts of the tree's pieces that this reader may see (the seller and the bank of
  // each sale, and regulators).
  let financingCard = null;
  if (lineage.ok) {
    const financings = lineage.value.financings || [];
    financingCard = card(
      'Financing',
      table(
        ['Token', 'Sold by', 'To bank', { label: 'Face value', num: true }, { label: 'Rate', num: true }, { label: 'Days', num: true }, { label: 'Proceeds', num: true }, 'Financed'],
        financings.map((f) =>
          h(
            'tr',
            { 'data-financing': f.offer_id, 'data-token': f.token_id },
            td(tokenLink(f.token_id)),
            td(partyLink(f.seller)),
            td(partyLink(f.bank)),
            tdNum(money(f.face_value, f.currency), { 'data-field': 'face_value' }),
            tdNum(fmtPercent(f.annual_rate, 2), { title: `annual rate ${f.annual_rate}` }),
            tdNum(String(f.days)),
            tdNum(money(f.proceeds, f.currency), { 'data-field': 'proceeds' }),
            td(timeEl(Number(f.financed_at_ms))),
          ),
        ),
        { empty: 'No discounting of these pieces that you may see: none was sold to a bank, or you were not party to the sale.' },
      ),
      { foot: 'Proceeds = face value × (1 − rate × days / 360), rounded half-even to 0.01; each sale is shown to its seller, its bank and regulators.' },
    );
  }

  let evidenceBody;
  if (!token.invoice_id) evidenceBody = h('div', { class: 'empty' }, 'This token names no invoice.');
  else if (!invoice.ok) {
    evidenceBody = h(
      'div',
      {},
      errorBox(invoice.error, { what: `invoice ${token.invoice_id}` }),
      h('p', { class: 'muted small' }, 'Without the invoice, its purchase order and shipments cannot be looked up. Its seller or buyer can grant you trade access.'),
    );
  } else {
    evidenceBody = h(
      'div',
      {},
      h('div', { class: 'evidence-chain' }, 'Invoice → purchase order → shipments: what backs this receivable.'),
      h('div', { class: 'evidence' }, evidenceItem('Invoice', invoice.value.invoice_id, invoiceDetails(invoice.value)), evidence),
    );
  }
  const evidenceCard = card('Goods evidence', evidenceBody);

  return {
    node: h(
      'div',
      {},
      pageHead('Receivable token', { crumbs: [partyLink(token.obligor), ' owes · ', invoiceLink(token.invoice_id), ' · token'], sub: token.token_id }),
      summary,
      lineageCard,
      financingCard,
      evidenceCard,
    ),
    title: `Token ${shortId(token.token_id)}`,
  };
}

// ================================================================================================
// #/invoice/ID
// ================================================================================================

async function viewInvoice(ctx, id = '') {
  const invoice = await api(`/v1/invoices/${enc(id)}`, { signal: ctx.signal });
  const evidence = await goodsEvidence(ctx, invoice);
  const tokenNote = invoice.token_id
    ? h('div', { class: 'callout' }, 'Accepted by the buyer: the receivable is on the ledger as token ', tokenLink(invoice.token_id, { short: false }), '.')
    : invoice.status === 'rejected'
      ? h('div', { class: 'alert alert-warn compact' }, h('strong', {}, 'Rejected by the buyer'), h('p', {}, invoice.reject_reason || 'no reason given'))
      : h('div', { class: 'callout' }, 'Not accepted yet: no token has been minted for this invoice.');
  return {
    node: h(
      'div',
      {},
      pageHead(`Invoice ${invoice.invoice_id}`, { crumbs: [partyLink(invoice.seller), ' bills ', partyLink(invoice.buyer)], sub: [badge(invoice.status), ' ', money(invoice.amount, invoice.currency)] }),
      card('Invoice', [tokenNote, invoiceDetails(invoice)]),
      card('Goods evidence', [h('div', { class: 'evidence-chain' }, 'The purchase order and the shipments this invoice bills for.'), evidence]),
    ),
    title: `Invoice ${invoice.invoice_id}`,
  };
}

// ================================================================================================
// #/party/ID
// ================================================================================================

const TOKEN_STATES = ['live', 'overdue', 'retired', 'settled'];

function holdingsSummary(tokens) {
  const byCurrency = new Map();
  for (const token of tokens) {
    if (!byCurrency.has(token.currency)) byCurrency.set(token.currency, {});
    const bucket = byCurrency.get(token.currency);
    (bucket[token.state] ||= []).push(token.face_value);
  }
  const rows = [...byCurrency.entries()]
    .sort(([a], [b]) => String(a).localeCompare(String(b)))
    .map(([currency, states]) =>
      h(
        'tr',
        { 'data-currency': currency },
        td(h('strong', {}, currency)),
        TOKEN_STATES.map((state) =>
          tdNum(states[state] ? [decSum(states[state]), h('span', { class: 'muted' }, ` (${states[state].length})`)] : h('span', { class: 'muted' }, '—'), { 'data-state': state }),
        ),
        tdNum(h('strong', {}, decSum([...(states.live || []), ...(states.overdue || [])])), { 'data-field': 'outstanding' }),
      ),
    );
  return table(['Currency', ...TOKEN_STATES.map((s) => ({ label: humanize(s), num: true })), { label: 'Outstanding (live + overdue)', num: true }], rows, { empty: 'No tokens.' });
}

function tokensTable(tokens) {
  const order = { overdue: 0, live: 1, settled: 2, retired: 3 };
  const sorted = tokens.slice().sort((a, b) => (order[a.state] ?? 9) - (order[b.state] ?? 9) || Number(a.maturity_ms) - Number(b.maturity_ms));
  const rows = sorted.map((t) =>
    h(
      'tr',
      { 'data-token-row': t.token_id },
      td(tokenLink(t.token_id)),
      td(badge(t.state)),
      tdNum(t.face_value),
      td(t.currency),
      td(partyLink(t.obligor)),
      td(timeEl(t.maturity_ms, { dateOnly: true })),
      td(invoiceLink(t.invoice_id)),
    ),
  );
  return table(['Token', 'State', { label: 'Face value', num: true }, 'Currency', 'Obligor', 'Maturity', 'Invoice'], rows, { empty: 'This party holds no tokens.' });
}

async function viewParty(ctx, id = '') {
  const party = await api(`/v1/parties/${enc(id)}`, { signal: ctx.signal });
  const me = session?.party === party.party_id;
  const canSupervise = !!session && (isRegulator() || me);
  const [tokens, exposure, financing, grants] = await Promise.all([
    attempt(`/v1/tokens?holder=${enc(party.party_id)}`, { signal: ctx.signal }),
    canSupervise && party.role === 'enterprise' ? attempt('/v1/supervision/exposure', { signal: ctx.signal }) : null,
    canSupervise && party.role === 'bank' ? attempt('/v1/supervision/financing', { signal: ctx.signal }) : null,
    canSupervise ? attempt(`/v1/parties/${enc(party.party_id)}/grants`, { signal: ctx.signal }) : null,
  ]);

  const record = card(
    'Public record',
    kv([
      ['Party id', h('span', { class: 'id' }, party.party_id)],
      ['Name', party.name || null],
      ['Role', roleBadge(party.role)],
      ['Status', party.frozen ? badge('frozen') : badge('active', 'ok')],
      ['Registered', timeEl(party.registered_at_ms)],
      ['Public key', hashEl(party.public_key, { full: true, label: 'public key' })],
    ]),
    { foot: 'Parties and their keys are public: anyone can check a transaction’s signature.' },
  );

  const sections = [record];
  if (tokens.ok) {
    const list = Array.isArray(tokens.value) ? tokens.value : tokens.value.tokens || [];
    sections.push(card('Holdings by currency and state', holdingsSummary(list), { flush: true, foot: 'Face values summed exactly. Retired tokens were split into the pieces that replaced them, so they are not counted as outstanding.' }));
    sections.push(card(`Tokens held (${list.length})`, tokensTable(list), { flush: true }));
  } else {
    sections.push(card('Tokens held', errorBox(tokens.error, { what: `the tokens ${party.party_id} holds` })));
  }
  if (exposure) {
    if (exposure.ok) {
      const rows = (exposure.value.obligors || []).filter((row) => row.obligor === party.party_id);
      sections.push(card('Exposure as obligor', exposureTable(rows, { empty: 'No open receivables owed by this party.' }), { flush: true }));
    } else {
      sections.push(card('Exposure as obligor', errorBox(exposure.error, { compact: true })));
    }
  }
  if (financing) {
    if (financing.ok) {
      const rows = (financing.value.banks || []).filter((row) => row.bank === party.party_id);
      sections.push(card('Financing provided', financingTable(rows), { flush: true }));
    } else {
      sections.push(card('Financing provided', errorBox(financing.error, { compact: true })));
    }
  }
  if (grants?.ok) {
    const rows = (grants.value.grants || []).map((g) =>
      h('tr', {}, td(partyLink(g.grantee)), td(g.scope), td(timeEl(g.granted_at_ms)), td(timeEl(g.expires_at_ms)), td(g.active ? badge('active', 'ok') : badge('expired', 'retired')), tdNum(String(g.reads_on_this_replica ?? 0))),
    );
    sections.push(card('Access granted to others', table(['Grantee', 'Scope', 'Granted', 'Expires', 'Status', { label: 'Reads (this node)', num: true }], rows, { empty: 'No access granted.' }), { flush: true }));
  }
  return {
    node: h('div', {}, pageHead(party.name || party.party_id, { crumbs: ['Party ', h('code', {}, party.party_id)], sub: [roleBadge(party.role), me ? h('span', { class: 'muted' }, ' · you') : null] }), sections),
    title: `Party ${party.party_id}`,
  };
}

// ================================================================================================
// SVG charts (hand-drawn, no libraries)
// ================================================================================================

function niceMax(value) {
  if (!(value > 0)) return 1;
  const power = 10 ** Math.floor(Math.log10(value));
  for (const step of [1, 1.2, 1.5, 2, 2.5, 3, 4, 5, 6, 8, 10]) {
    if (value <= step * power) return step * power;
  }
  return 10 * power;
}

function chartSvg(width, height, title, desc) {
  const titleId = nextId('chart-title');
  const descId = nextId('chart-desc');
  const svg = s(
    'svg',
    { class: 'chart', viewBox: `0 0 ${width} ${height}`, width, height, role: 'img', 'aria-labelledby': `${titleId} ${descId}`, preserveAspectRatio: 'xMinYMin meet' },
    s('title', { id: titleId }, title),
    s('desc', { id: descId }, desc),
  );
  svg.style.maxWidth = `${width}px`; // drawn at its natural size; only ever scaled down
  return svg;
}

/**
 * Horizontal bars: rows [{label, href, value (number, for length), text (label at the bar's end),
 * tip, cls, attrs}], scaled to `max`; x ticks labelled by tickText.
 */
function hBarChart({ title, desc, rows, max, ticks = null, tickText = compact, axisLabel = '', marker = null, width = 680, labelW = 150, valueW = 150 }) {
  const rowH = 26;
  const top = 6;
  const plotW = width - labelW - valueW;
  const height = top + rows.length * rowH + 34;
  const svg = chartSvg(width, height, title, desc);
  const scale = (v) => (max > 0 ? Math.max(0, Math.min(1, v / max)) * plotW : 0);
  const grid = s('g', { class: 'grid' });
  const tickGroup = s('g', { class: 'tick' });
  for (const value of ticks || [0, 1, 2, 3, 4].map((i) => (max * i) / 4)) {
    const x = labelW + scale(value);
    grid.append(s('line', { x1: x, x2: x, y1: top, y2: top + rows.length * rowH }));
    tickGroup.append(s('text', { x, y: top + rows.length * rowH + 14, 'text-anchor': 'middle' }, tickText(value)));
  }
  svg.append(grid, tickGroup);
  if (axisLabel) svg.append(s('text', { class: 'axis-label', x: labelW + plotW / 2, y: height - 4, 'text-anchor': 'middle' }, axisLabel));
  rows.forEach((row, i) => {
    const y = top + i * rowH;
    const g = s('g', { class: 'bar-group', ...(row.attrs || {}) });
    const maxChars = Math.floor((labelW - 10) / 6.6);
    const label = s('text', { x: labelW - 8, y: y + rowH / 2 + 4, 'text-anchor': 'end' }, row.label.length > maxChars ? `${row.label.slice(0, maxChars - 1)}…` : row.label);
    g.append(row.href ? s('a', { href: row.href }, label) : label);
    g.append(s('rect', { class: 'track', x: labelW, y: y + 5, width: plotW, height: rowH - 10, rx: 2 }));
    g.append(s('rect', { class: `bar ${row.cls || ''}`, x: labelW, y: y + 5, width: Math.max(row.value > 0 ? 2 : 0, scale(row.value)), height: rowH - 10, rx: 2 }));
    g.append(s('text', { class: 'value', x: labelW + plotW + 8, y: y + rowH / 2 + 4 }, row.text));
    g.append(s('title', {}, row.tip || `${row.label}: ${row.text}`));
    svg.append(g);
  });
  if (marker !== null && max > 0) {
    const x = labelW + scale(marker.value);
    svg.append(s('line', { class: 'limit', x1: x, x2: x, y1: top - 2, y2: top + rows.length * rowH + 2 }, s('title', {}, marker.label)));
  }
  svg.append(s('line', { class: 'axis', x1: labelW, x2: labelW, y1: top, y2: top + rows.length * rowH }));
  return svg;
}

/** Vertical bars: bars [{label, sub, value, text, cls, tip, attrs}]. */
function vBarChart({ title, desc, bars, axisLabel = '' }) {
  const width = Math.max(560, Math.min(1240, 64 + bars.length * 64));
  const height = 260;
  const left = 56;
  const right = 8;
  const top = 18;
  const bottom = 46;
  const plotW = width - left - right;
  const plotH = height - top - bottom;
  const max = niceMax(Math.max(0, ...bars.map((b) => b.value)));
  const svg = chartSvg(width, height, title, desc);
  const grid = s('g', { class: 'grid' });
  const ticks = s('g', { class: 'tick' });
  for (let i = 0; i <= 4; i++) {
    const y = top + plotH - (plotH * i) / 4;
    grid.append(s('line', { x1: left, x2: width - right, y1: y, y2: y }));
    ticks.append(s('text', { x: left - 6, y: y + 4, 'text-anchor': 'end' }, compact((max * i) / 4)));
  }
  svg.append(grid, ticks);
  if (axisLabel) svg.append(s('text', { class: 'axis-label', x: 12, y: top + plotH / 2, 'text-anchor': 'middle', transform: `rotate(-90 12 ${top + plotH / 2})` }, axisLabel));
  const slot = plotW / Math.max(1, bars.length);
  const barW = Math.min(46, slot * 0.7);
  bars.forEach((bar, i) => {
    const x = left + slot * i + (slot - barW) / 2;
    const barH = max > 0 ? (Math.max(0, bar.value) / max) * plotH : 0;
    const y = top + plotH - barH;
    const g = s('g', { class: 'bar-group' });
    g.append(s('rect', { class: `bar ${bar.cls || ''}`, x, y, width: barW, height: Math.max(bar.value > 0 ? 1 : 0, barH), rx: 2, ...(bar.attrs || {}) }, s('title', {}, bar.tip || `${bar.label}: ${bar.text}`)));
    if (bar.value > 0) g.append(s('text', { class: 'value', x: x + barW / 2, y: y - 4, 'text-anchor': 'middle' }, compact(bar.value)));
    g.append(s('text', { x: x + barW / 2, y: top + plotH + 15, 'text-anchor': 'middle' }, bar.label));
    if (bar.sub) g.append(s('text', { class: 'axis-label', x: x + barW / 2, y: top + plotH + 29, 'text-anchor': 'middle' }, bar.sub));
    svg.append(g);
  });
  svg.append(s('line', { class: 'axis', x1: left, x2: width - right, y1: top + plotH, y2: top + plotH }));
  return svg;
}

// ================================================================================================
// #/dashboard (supervision)
// ================================================================================================

let exposureSort = { key: 'unsettled', dir: -1 };

const EXPOSURE_SORTS = {
  obligor: (a, b) => String(a.obligor).localeCompare(String(b.obligor)) || String(a.currency).localeCompare(String(b.currency)),
  unsettled: (a, b) => decCmp(a.unsettled, b.unsettled),
  overdue: (a, b) => decCmp(a.overdue, b.overdue),
  credit_used: (a, b) => decCmp(a.credit_used, b.credit_used),
};

function exposureTable(rows, { empty = 'No open receivables.', sortable = false } = {}) {
  if (!rows.length) return h('div', { class: 'empty' }, empty);
  const tbody = h('tbody', {});
  const headers = [
    ['obligor', 'Obligor', false],
    [null, 'Currency', false],
    ['unsettled', 'Unsettled', true],
    ['overdue', 'Overdue', true],
    [null, 'Credit limit', true],
    ['credit_used', 'Credit used', true],
    [null, 'Holders', true],
    [null, 'Live tokens', true],
  ];
  const headRow = h('tr', {});
  const render = () => {
    const sorted = rows.slice();
    if (sortable) {
      const cmp = EXPOSURE_SORTS[exposureSort.key] || EXPOSURE_SORTS.unsettled;
      sorted.sort((a, b) => exposureSort.dir * cmp(a, b) || EXPOSURE_SORTS.obligor(a, b));
    }
    tbody.replaceChildren(
      ...sorted.map((row) =>
        h(
          'tr',
          { 'data-obligor': row.obligor, 'data-currency': row.currency },
          td(partyLink(row.obligor)),
          td(row.currency),
          tdNum(String(row.unsettled ?? ''), { 'data-field': 'unsettled' }),
          tdNum(String(row.overdue ?? ''), { 'data-field': 'overdue', class: decIsZero(row.overdue) ? null : 'bad-text' }),
          tdNum(row.credit_limit === null || row.credit_limit === undefined ? '—' : String(row.credit_limit), { 'data-field': 'credit_limit' }),
          tdNum(
            row.credit_used === null || row.credit_used === undefined
              ? h('span', { class: 'muted' }, 'no limit')
              : [
                  (() => {
                    const bar = h('span', { class: ['inline-bar', toNumber(row.credit_used) > 0.9 && 'bad'] });
                    bar.style.width = `${Math.round(Math.min(1, Math.max(0, toNumber(row.credit_used))) * 60)}px`;
                    return bar;
                  })(),
                  fmtPercent(row.credit_used, 1),
                ],
            { 'data-field-value': row.credit_used ?? '' },
          ),
          tdNum(String(row.holders ?? ''), { 'data-field': 'holders' }),
          tdNum(String(row.live_tokens ?? '')),
        ),
      ),
    );
    headRow.querySelectorAll('th').forEach((th) => {
      if (th.dataset.sortKey) th.setAttribute('aria-sort', th.dataset.sortKey === exposureSort.key ? (exposureSort.dir < 0 ? 'descending' : 'ascending') : 'none');
    });
  };
  for (const [key, label, num] of headers) {
    const th = h('th', { scope: 'col', class: num ? 'num' : null });
    if (sortable && key) {
      th.dataset.sortKey = key;
      const button = h('button', { type: 'button', class: 'sort', title: `Sort by ${label.toLowerCase()}` }, label);
      button.addEventListener('click', () => {
        exposureSort = exposureSort.key === key ? { key, dir: -exposureSort.dir } : { key, dir: key === 'obligor' ? 1 : -1 };
        render();
      });
      th.append(button);
    } else {
      th.textContent = label;
    }
    headRow.append(th);
  }
  render();
  return h('div', { class: 'table-wrap' }, h('table', { class: 'table', id: sortable ? 'exposure' : null }, h('caption', { class: 'visually-hidden' }, 'Exposure per obligor and currency'), h('thead', {}, headRow), tbody));
}

function financingTable(rows) {
  const trs = rows.map((row) =>
    h(
      'tr',
      { 'data-bank': row.bank, 'data-currency': row.currency },
      td(partyLink(row.bank)),
      td(row.currency),
      tdNum(String(row.count ?? ''), { 'data-field': 'count' }),
      tdNum(String(row.face_value ?? ''), { 'data-field': 'face_value' }),
      tdNum(String(row.proceeds ?? ''), { 'data-field': 'proceeds' }),
      tdNum(String(row.discount ?? ''), { 'data-field': 'discount' }),
      tdNum([h('strong', { class: 'pct' }, fmtPercent(row.average_rate, 2)), h('span', { class: 'raw', 'data-field': 'average_rate', title: 'average annual discount rate, as a fraction' }, String(row.average_rate ?? ''))]),
      tdNum(String(row.average_days ?? ''), { 'data-field': 'average_days' }),
    ),
  );
  return table(
    ['Bank', 'Currency', { label: 'Discountings', num: true }, { label: 'Face value', num: true }, { label: 'Proceeds paid', num: true }, { label: 'Discount', num: true }, { label: 'Avg. rate p.a.', num: true }, { label: 'Avg. days', num: true }],
    trs,
    { empty: 'No financings yet.', caption: 'Financing per bank and currency' },
  );
}

function headline(label, content, { cls = '', sub = null } = {}) {
  return h('div', { class: ['headline', cls] }, h('div', { class: 'headline-label' }, label), content, sub ? h('div', { class: 'headline-sub' }, sub) : null);
}

function perCurrencyFigure(name, sums) {
  if (!sums.length) return h('div', { class: 'headline-figure muted' }, '—');
  if (sums.length === 1) {
    const [currency, amount] = sums[0];
    return h('div', { class: 'headline-figure', 'data-headline': name, 'data-currency': currency, 'data-value': amount }, fmtAmount(amount), h('span', { class: 'ccy' }, currency));
  }
  return h(
    'div',
    {},
    sums.map(([currency, amount]) => h('div', { class: 'headline-line', 'data-headline': name, 'data-currency': currency, 'data-value': amount }, h('strong', {}, fmtAmount(amount)), h('span', { class: 'muted' }, currency))),
  );
}

function sumsBy(rows, field, currencyField = 'currency') {
  const groups = new Map();
  for (const row of rows) {
    if (!groups.has(row[currencyField])) groups.set(row[currencyField], []);
    groups.get(row[currencyField]).push(row[field]);
  }
  return [...groups.entries()].sort(([a], [b]) => String(a).localeCompare(String(b))).map(([currency, values]) => [currency, decSum(values)]);
}

function sectionOr(result, build, what) {
  if (!result) return null;
  if (!result.ok) return errorBox(result.error, { what, compact: true });
  return build(result.value);
}

function maturitySection(report) {
  const currencies = report.currencies || [];
  if (!currencies.length) return h('div', { class: 'empty' }, 'No unsettled receivables: nothing falls due.');
  return currencies.map((ccy) => {
    const bars = [
      {
        label: 'Overdue',
        sub: `${ccy.overdue_tokens ?? 0} tokens`,
        value: toNumber(ccy.overdue),
        text: `${fmtAmount(ccy.overdue)} ${ccy.currency}`,
        cls: 'bar-overdue',
        tip: `Overdue: ${fmtAmount(ccy.overdue)} ${ccy.currency} in ${ccy.overdue_tokens ?? 0} tokens`,
        attrs: { 'data-bucket': 'overdue', 'data-currency': ccy.currency, 'data-face-value': String(ccy.overdue ?? '') },
      },
      ...(ccy.buckets || []).map((bucket) => ({
        label: fmtDate(bucket.from_ms).slice(5),
        sub: `${bucket.tokens ?? 0}`,
        value: toNumber(bucket.face_value),
        text: `${fmtAmount(bucket.face_value)} ${ccy.currency}`,
        tip: `Week from ${fmtDate(bucket.from_ms)} to ${fmtDate(bucket.to_ms)}: ${fmtAmount(bucket.face_value)} ${ccy.currency} in ${bucket.tokens ?? 0} tokens`,
        attrs: { 'data-bucket': String(bucket.week), 'data-currency': ccy.currency, 'data-face-value': String(bucket.face_value ?? '') },
      })),
      {
        label: 'Later',
        sub: `${ccy.later_tokens ?? 0}`,
        value: toNumber(ccy.later),
        text: `${fmtAmount(ccy.later)} ${ccy.currency}`,
        cls: 'bar-later',
        tip: `Later: ${fmtAmount(ccy.later)} ${ccy.currency} in ${ccy.later_tokens ?? 0} tokens`,
        attrs: { 'data-bucket': 'later', 'data-currency': ccy.currency, 'data-face-value': String(ccy.later ?? '') },
      },
    ];
    return h(
      'div',
      { class: 'chart-block' },
      h('div', { class: 'ccy-head' }, h('span', { class: 'ccy-tag' }, ccy.currency), h('span', { class: 'muted small' }, `overdue ${fmtAmount(ccy.overdue)} · next ${report.weeks ?? (ccy.buckets || []).length} weeks · later ${fmtAmount(ccy.later)}`)),
      vBarChart({
        title: `Maturity ladder, ${ccy.currency}`,
        desc: `Face value of unsettled tokens in ${ccy.currency} by when they fall due: overdue, then each week from its first day, then later.`,
        bars,
        axisLabel: `Face value (${ccy.currency})`,
      }),
      h('div', { class: 'legend' }, h('span', { class: 'lg-overdue' }, 'Overdue'), h('span', {}, 'Due in the week starting (MM-DD); token count below'), h('span', { class: 'lg-later' }, 'Later')),
    );
  });
}

function shareChart(kind, currency, entries) {
  if (!entries.length) return h('div', { class: 'empty' }, `No ${kind === 'banks' ? 'bank financing' : 'financed obligors'} in ${currency}.`);
  return hBarChart({
    title: `${kind === 'banks' ? 'Banks' : 'Obligors'} by share of financed value, ${currency}`,
    desc: `Share of the financed total in ${currency} for each ${kind === 'banks' ? 'bank' : 'obligor'}, largest first.`,
    rows: entries.map((entry) => ({
      label: entry.party,
      href: link.party(entry.party),
      value: toNumber(entry.share),
      text: `${fmtPercent(entry.share, 1)} · ${compact(toNumber(entry.financed))}`,
      tip: `${entry.party}: ${fmtPercent(entry.share, 2)} of financed ${currency} (${fmtAmount(entry.financed)} ${currency})`,
      cls: kind === 'banks' ? 'bar-2' : '',
      attrs: { 'data-share-party': entry.party, 'data-share-kind': kind, 'data-currency': currency, 'data-share': String(entry.share ?? '') },
    })),
    max: 1,
    tickText: (v) => `${Math.round(v * 100)}%`,
    axisLabel: 'Share of financed value',
    width: 580,
    labelW: 140,
    valueW: 130,
  });
}

function concentrationSection(report) {
  const currencies = report.currencies || [];
  if (!currencies.length) return h('div', { class: 'empty' }, 'No financings yet: nothing to concentrate.');
  return currencies.map((ccy) =>
    h(
      'div',
      { class: 'chart-block' },
      h('div', { class: 'ccy-head' }, h('span', { class: 'ccy-tag' }, ccy.currency), h('span', { class: 'muted small' }, `financed total ${fmtAmount(ccy.financed_total)} ${ccy.currency}`)),
      h('div', { class: 'grid' }, h('div', {}, h('h3', {}, 'Top obligors'), shareChart('obligors', ccy.currency, ccy.obligors || [])), h('div', {}, h('h3', {}, 'Top banks'), shareChart('banks', ccy.currency, ccy.banks || []))),
    ),
  );
}

function creditChart(rows) {
  const limited = rows.filter((row) => row.credit_used !== null && row.credit_used !== undefined);
  if (!limited.length) return h('div', { class: 'empty' }, 'No obligor has a credit line.');
  limited.sort((a, b) => decCmp(b.credit_used, a.credit_used));
  const largest = Math.max(...limited.map((row) => toNumber(row.credit_used)));
  const step = largest > 2 ? 0.5 : 0.25;
  const max = Math.max(1, Math.ceil(largest / step) * step);
  const ticks = Array.from({ length: Math.round(max / step) + 1 }, (_, i) => i * step);
  return hBarChart({
    title: 'Credit used per obligor',
    desc: 'Unsettled receivables of each obligor as a share of its credit limit; the dashed line is 100%.',
    rows: limited.map((row) => {
      const used = toNumber(row.credit_used);
      return {
        label: `${row.obligor} (${row.currency})`,
        href: link.party(row.obligor),
        value: used,
        text: fmtPercent(row.credit_used, 1),
        tip: `${row.obligor}: ${fmtPercent(row.credit_used, 2)} of its ${fmtAmount(row.credit_limit)} ${row.currency} limit used (${fmtAmount(row.unsettled)} unsettled)`,
        cls: used > 1 ? 'bar-bad' : used > 0.9 ? 'bar-warn' : '',
        attrs: { 'data-credit-obligor': row.obligor, 'data-currency': row.currency, 'data-credit-used': String(row.credit_used) },
      };
    }),
    max,
    ticks,
    tickText: (v) => `${Math.round(v * 100)}%`,
    axisLabel: 'Credit used (share of limit)',
    marker: max > 1 ? { value: 1, label: '100% of the limit' } : null,
    width: 820,
    labelW: 220,
    valueW: 90,
  });
}

function rejectionsSection(report) {
  const byCode = (report.by_code || []).slice().sort((a, b) => b.count - a.count || String(a.code).localeCompare(String(b.code)));
  const maxCount = Math.max(1, ...byCode.map((row) => Number(row.count) || 0));
  const codeRows = byCode.map((row) =>
    h(
      'tr',
      { 'data-code': row.code },
      td(h('code', {}, row.code)),
      tdNum(String(row.count), { 'data-field': 'count' }),
      td(
        (() => {
          const bar = h('span', { class: 'inline-bar bad' });
          bar.style.width = `${Math.round(((Number(row.count) || 0) / maxCount) * 160)}px`;
          return bar;
        })(),
      ),
    ),
  );
  const recentRows = (report.recent || []).map((row) =>
    h(
      'tr',
      { 'data-rejected-tx': row.tx_hash },
      td(timeEl(row.time_ms)),
      td(blockLink(row.height)),
      td(h('span', {}, partyLink(row.signer), ' ', row.signature_verified ? badge('verified', 'verified') : h('span', { class: 'badge badge-unverified', title: 'The signature did not verify: this signer is only claimed.' }, 'unverified'))),
      td(humanize(row.kind), { title: row.kind || '' }),
      td(h('code', {}, row.code)),
      td(h('span', { class: 'small' }, row.message || '')),
      td(hashEl(row.tx_hash, { href: link.tx(row.tx_hash), copy: false })),
    ),
  );
  return h(
    'div',
    { class: 'stack' },
    h('div', { class: 'narrow' }, h('h3', {}, 'By reason'), table(['Code', { label: 'Count', num: true }, ''], codeRows, { empty: 'No rejected transactions.' })),
    h('div', {}, h('h3', {}, `Recent attempts${(report.recent || []).length ? ` (latest ${(report.recent || []).length})` : ''}`), table(['Time', 'Block', 'Attempted by', 'Kind', 'Code', 'Message', 'Transaction'], recentRows, { empty: 'No rejected transactions.' })),
  );
}

function dashboardBody(reports) {
  const { exposure, concentration, maturity, financing, rejections } = reports;
  const any = [exposure, concentration, maturity, financing, rejections].find((r) => r?.ok)?.value;
  const scope = any?.scope;
  const exposureRows = exposure.ok ? exposure.value.obligors || [] : [];
  const financingRows = financing.ok ? financing.value.banks || [] : [];

  const financedSums = concentration.ok
    ? (concentration.value.currencies || []).map((c) => [c.currency, String(c.financed_total)]).sort(([a], [b]) => String(a).localeCompare(String(b)))
    : sumsBy(financingRows, 'face_value');
  const discountings = financingRows.reduce((n, row) => n + (Number(row.count) || 0), 0);
  const headlines = h(
    'div',
    { class: 'headlines' },
    headline('Unsettled receivables', exposure.ok ? perCurrencyFigure('unsettled', sumsBy(exposureRows, 'unsettled')) : errorBox(exposure.error, { compact: true }), { sub: exposure.ok ? `${exposureRows.length} obligor rows` : null }),
    headline('Overdue', exposure.ok ? perCurrencyFigure('overdue', sumsBy(exposureRows, 'overdue')) : h('div', { class: 'headline-figure muted' }, '—'), { cls: exposureRows.some((r) => !decIsZero(r.overdue)) ? 'bad' : 'ok' }),
    headline('Financed', concentration.ok || financing.ok ? perCurrencyFigure('financed', financedSums) : h('div', { class: 'headline-figure muted' }, '—'), { sub: financing.ok ? `${discountings} discounting${discountings === 1 ? '' : 's'}` : null }),
    headline(
      'Rejected transactions',
      rejections.ok ? h('div', { class: 'headline-figure', 'data-headline': 'rejected_total' }, String(rejections.value.total ?? 0)) : h('div', { class: 'headline-figure muted' }, '—'),
      { cls: rejections.ok && Number(rejections.value.total) > 0 ? 'warn' : 'ok', sub: rejections.ok ? `${(rejections.value.by_code || []).length} distinct reasons` : null },
    ),
  );

  return h(
    'div',
    {},
    scope
      ? h(
          'div',
          { class: ['alert', 'compact', 'alert-info'], 'data-scope': scope },
          h('strong', {}, scope === 'all' ? 'Scope: every party (regulator view)' : `Scope: rows about ${session?.party ?? 'you'} only`),
          h('p', {}, scope === 'all' ? 'Figures cover the whole ledger.' : 'A regulator sees these reports for every party; you see the rows about yourself.', ' As of block ', blockLink(any.height), ', ledger time ', timeEl(any.time_ms), '.'),
        )
      : null,
    headlines,
    card('Exposure per obligor', sectionOr(exposure, (r) => exposureTable(r.obligors || [], { sortable: true, empty: 'No open receivables.' }), 'exposure'), { flush: true, foot: 'Amounts are exact ledger values. Click a column head to sort.' }),
    card('Credit used per obligor', sectionOr(exposure, (r) => creditChart(r.obligors || []), 'exposure'), { foot: 'Unsettled receivables as a share of the credit limit banks granted the obligor; obligors without a limit are not shown.' }),
    card('Maturity ladder', sectionOr(maturity, maturitySection, 'maturity')),
    card('Concentration of financing', sectionOr(concentration, concentrationSection, 'concentration')),
    card('Financing per bank', sectionOr(financing, (r) => financingTable(r.banks || []), 'financing'), { flush: true, foot: 'Average rate: the average annual discount rate (shown as a percentage, then as the ledger’s fraction).' }),
    card('Rejections log', sectionOr(rejections, rejectionsSection, 'rejections'), { foot: 'Transactions the ledger refused, and who attempted them; an unverified signer is only claimed by a transaction whose signature failed.' }),
  );
}

async function loadSupervision(ctx) {
  const paths = {
    exposure: '/v1/supervision/exposure',
    concentration: '/v1/supervision/concentration?top=10',
    maturity: '/v1/supervision/maturity?weeks=12',
    financing: '/v1/supervision/financing',
    rejections: '/v1/supervision/rejections?limit=50',
  };
  const names = Object.keys(paths);
  const results = await Promise.all(names.map((name) => attempt(paths[name], { signal: ctx.signal })));
  return Object.fromEntries(names.map((name, i) => [name, results[i]]));
}

async function viewDashboard(ctx) {
  const reports = await loadSupervision(ctx);
  const all = Object.values(reports);
  if (all.every((r) => !r.ok)) {
    const codes = new Set(all.map((r) => r.error.code));
    if (codes.size === 1) throw all[0].error; // e.g. unauthenticated: one clear message
  }
  const indicator = liveIndicator();
  const body = h('div', {}, dashboardBody(reports));
  const note = h('span', { class: 'muted small' });
  let height = Math.max(0, ...all.filter((r) => r.ok).map((r) => Number(r.value.height) || 0));
  setTip(height);
  const refresh = ctx.throttle(async () => {
    const fresh = await loadSupervision(ctx);
    if (!ctx.alive) return;
    const values = Object.values(fresh);
    if (values.every((r) => !r.ok)) {
      note.textContent = `refresh failed: ${values[0].error.code}`;
      return;
    }
    height = Math.max(height, ...values.filter((r) => r.ok).map((r) => Number(r.value.height) || 0));
    body.replaceChildren(dashboardBody(fresh));
    note.textContent = `updated ${fmtTime(Date.now())}`;
    body.dataset.height = String(height);
  }, 2000);
  body.dataset.height = String(height);
  return {
    node: h('div', { id: 'dashboard' }, pageHead('Supervision dashboard', { sub: session ? `signed in as ${session.party} (${session.role})` : null, right: h('span', { class: 'pager' }, note, indicator) }), body),
    title: 'Dashboard',
    start() {
      followChain(ctx, height + 1, { indicator, onBlock: () => refresh() });
    },
  };
}

// ================================================================================================
// #/search/Q and not found
// ================================================================================================

async function viewSearch(ctx, query = '') {
  const q = query.trim();
  const go = (hash) => {
    window.location.replace(hash);
    return null; // the hashchange renders the target
  };
  if (!q) return go('#/chain');
  if (/^\d+$/.test(q)) return go(link.block(Number(q)));
  if (/^(0x)?[0-9a-fA-F]{64}$/.test(q)) return go(link.tx(q.replace(/^0x/, '').toLowerCase()));
  if (/^tk-/i.test(q)) return go(link.token(q));
  const party = await attempt(`/v1/parties/${enc(q)}`, { signal: ctx.signal });
  if (party.ok) return go(link.party(q));
  if (session) {
    const invoice = await attempt(`/v1/invoices/${enc(q)}`, { signal: ctx.signal });
    if (invoice.ok) return go(link.invoice(q));
    const token = await attempt(`/v1/tokens/${enc(q)}`, { signal: ctx.signal });
    if (token.ok) return go(link.token(q));
  }
  return {
    node: h(
      'div',
      {},
      pageHead('No match', { sub: q }),
      h(
        'div',
        { class: 'alert alert-info' },
        h('strong', {}, `Nothing found for “${q}”`),
        h('p', {}, session ? 'No party has this id, and there is no invoice or token with it that you may read.' : 'No party has this id. Sign in to search invoices and tokens too.'),
        h('p', { class: 'alert-code' }, 'Open it as: ', h('a', { href: link.invoice(q) }, 'invoice'), ' · ', h('a', { href: link.token(q) }, 'token'), ' · ', h('a', { href: link.party(q) }, 'party')),
      ),
    ),
    title: 'Search',
  };
}

async function viewNotFound() {
  return {
    node: h('div', {}, pageHead('Page not found'), h('div', { class: 'alert alert-warn', 'data-error-code': 'no_such_page' }, h('strong', {}, 'There is no such page.'), h('p', {}, h('a', { href: '#/chain' }, 'Go to the chain')))),
    title: 'Not found',
  };
}

// ================================================================================================
// Sign-in
// ================================================================================================

/** Signs in: checks the key file and that its key is the party's key on the ledger. */
async function signIn(partyId, keyJsonText) {
  let file;
  try {
    file = JSON.parse(String(keyJsonText ?? ''));
  } catch {
    throw new Error('The key file is not JSON. Paste the whole file, e.g. {"secret_key": "…", "public_key": "…"}.');
  }
  if (!file || typeof file.secret_key !== 'string') throw new Error('The key file has no "secret_key".');
  const secret = file.secret_key.trim().replace(/^0x/i, '').toLowerCase();
  let key;
  try {
    key = publicKey(secret);
  } catch (error) {
    throw new Error(`The secret key is not usable: ${error.message}.`);
  }
  if (typeof file.public_key === 'string' && file.public_key.trim().toLowerCase() !== key) {
    throw new Error('The key file does not hold together: its "public_key" is not the public key of its "secret_key".');
  }
  const party = String(partyId ?? '').trim() || (typeof file.party_id === 'string' ? file.party_id.trim() : '');
  if (!party) throw new Error('Enter your party id.');
  let record;
  try {
    record = await api(`/v1/parties/${enc(party)}`, { unsigned: true });
  } catch (error) {
    if (error instanceof ApiError && (error.status === 404 || error.code === 'not_found')) throw new Error(`There is no party “${party}” on this chain.`);
    throw new Error(`Could not look up party “${party}”: ${error.message}`);
  }
  if (String(record.public_key).toLowerCase() !== key) {
    throw new Error(
      `This key is not ${party}’s: the ledger has ${shortHash(record.public_key, 10, 6)} for ${party}, the key file is for ${shortHash(key, 10, 6)}. Check the party id, or use the key registered for it.`,
    );
  }
  session = { party: record.party_id, role: record.role, name: record.name || '', frozen: !!record.frozen, publicKey: key, secret };
  saveSession(session);
  updateAccount();
  await route();
  return { party_id: record.party_id, role: record.role, name: record.name };
}

async function signOut() {
  session = null;
  clockOffsetMs = 0;
  saveSession(null);
  updateAccount();
  await route();
}

function updateAccount() {
  const who = $('#who');
  const out = $('#sign-out');
  const panel = $('#signin-panel');
  if (session) {
    who.replaceChildren(
      ...['Signed in as ', h('strong', {}, session.party), ` (${session.role})`, session.frozen ? h('span', { class: 'badge badge-frozen' }, 'frozen') : null].filter(Boolean),
    );
    who.title = session.name ? `${session.name} · key ${shortHash(session.publicKey, 10, 6)}` : `key ${shortHash(session.publicKey, 10, 6)}`;
    who.hidden = false;
    out.hidden = false;
    panel.hidden = true;
    document.body.dataset.signedIn = session.party;
    document.body.dataset.role = session.role;
  } else {
    who.replaceChildren();
    who.hidden = true;
    out.hidden = true;
    panel.hidden = false;
    delete document.body.dataset.signedIn;
    delete document.body.dataset.role;
  }
}

function prefillPartyFromKey(text) {
  try {
    const file = JSON.parse(text);
    const input = $('#party-id');
    if (file && typeof file.party_id === 'string' && !input.value.trim()) input.value = file.party_id;
  } catch {
    // not (yet) JSON
  }
}

function setSignInMessage(text, kind) {
  const message = $('#signin-message');
  message.textContent = text;
  message.className = `signin-message ${kind || ''}`;
}

function wireSignIn() {
  const form = $('#signin-form');
  const keyJson = $('#key-json');
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    const button = $('#sign-in');
    button.disabled = true;
    setSignInMessage('Checking the key against the ledger…', '');
    try {
      await signIn($('#party-id').value, keyJson.value);
      keyJson.value = ''; // the secret is kept in sessionStorage only, not left in the form
      $('#key-file').value = '';
      setSignInMessage('', '');
    } catch (error) {
      setSignInMessage(error.message, 'error');
    } finally {
      button.disabled = false;
    }
  });
  keyJson.addEventListener('input', () => prefillPartyFromKey(keyJson.value));
  $('#key-file').addEventListener('change', async (event) => {
    const file = event.target.files?.[0];
    if (!file) return;
    if (file.size > 64 * 1024) {
      setSignInMessage('That file is too large to be a key file.', 'error');
      return;
    }
    keyJson.value = (await file.text()).trim();
    prefillPartyFromKey(keyJson.value);
    setSignInMessage(`Loaded ${file.name}. Check the party id, then sign in.`, 'ok');
  });
  $('#sign-out').addEventListener('click', () => signOut());
  $('#search').addEventListener('submit', (event) => {
    event.preventDefault();
    const input = $('#search-input');
    const q = input.value.trim();
    if (!q) return;
    const target = `#/search/${enc(q)}`;
    if (window.location.hash === target) route();
    else window.location.hash = target;
    input.blur();
  });
}

// ================================================================================================
// Start
// ================================================================================================

window.scfExplorer = { signIn, signOut };
wireSignIn();
updateAccount();
window.addEventListener('hashchange', () => route());
if (!window.location.hash) window.location.replace('#/chain'); // fires hashchange → route()
else route();
