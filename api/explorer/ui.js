// The pieces every page is drawn from: times, hashes with copy buttons, links to other pages,
// badges, cards, key-value lists, tables, error boxes, the live indicator and the chain tip.
// Data reaches the DOM only through dom.js (textContent), never as markup.

import { $, h } from './dom.js';
import { fmtAmount, fmtDate, fmtTime, shortHash, shortId } from './format.js';
import { session } from './api.js';

export function timeEl(ms, { dateOnly = false } = {}) {
  if (ms === null || ms === undefined || ms === '' || ms === 0) return h('span', { class: 'muted' }, '—');
  const d = new Date(Number(ms));
  if (Number.isNaN(d.getTime())) return h('span', {}, String(ms));
  return h(
    'time',
    { datetime: d.toISOString(), title: `${d.toISOString()} UTC · ${ms} ms since the epoch` },
    dateOnly ? fmtDate(ms) : fmtTime(ms),
  );
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

export function copyButton(text, label = 'value') {
  const button = h('button', { type: 'button', class: 'copy', title: `Copy the full ${label}`, 'aria-label': `Copy ${label}` }, 'copy');
  button.addEventListener('click', (event) => {
    event.preventDefault();
    event.stopPropagation();
    copyText(text, button);
  });
  return button;
}

/** A shortened hash with the full value in its title, optionally a link, and a copy button. */
export function hashEl(hex, { href = null, copy = true, full = false, label = 'hash' } = {}) {
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

export const enc = encodeURIComponent;
export const link = {
  block: (height) => `#/block/${enc(height)}`,
  tx: (hash) => `#/tx/${enc(hash)}`,
  token: (id) => `#/token/${enc(id)}`,
  invoice: (id) => `#/invoice/${enc(id)}`,
  party: (id) => `#/party/${enc(id)}`,
};

export function partyLink(id) {
  if (!id) return h('span', { class: 'muted' }, '—');
  return h('a', { href: link.party(id), class: 'party' }, id);
}

export function tokenLink(id, { short = true } = {}) {
  if (!id) return h('span', { class: 'muted' }, '—');
  return h('a', { href: link.token(id), class: 'id', title: id }, short ? shortId(id) : id);
}

export function invoiceLink(id) {
  if (!id) return h('span', { class: 'muted' }, '—');
  return h('a', { href: link.invoice(id), class: 'id' }, id);
}

export function blockLink(height) {
  if (height === null || height === undefined) return h('span', { class: 'muted' }, '—');
  return h('a', { href: link.block(height) }, `#${height}`);
}

/** An id the ledger created: tokens link to their page; others are shown as they are. */
export function createdIdEl(id) {
  if (/^tk-/.test(id)) return tokenLink(id);
  return h('span', { class: 'id', title: id }, shortId(id));
}

export function badge(text, kind = text) {
  return h('span', { class: `badge badge-${String(kind).toLowerCase()}` }, text ?? '—');
}

export const roleBadge = (role) => h('span', { class: `badge badge-role-${role}` }, role ?? '—');

export function money(amount, currency) {
  return h('span', { class: 'nowrap' }, fmtAmount(amount), currency ? h('span', { class: 'muted' }, ` ${currency}`) : null);
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
export function errorBox(error, { what = null, compact = false } = {}) {
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
// Page layout: headings, cards, key-value lists, tables, the live indicator, the chain tip
// ================================================================================================

export function pageHead(title, { crumbs = null, sub = null, right = null } = {}) {
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

export function card(title, body, { right = null, flush = false, foot = null, id = null, extraHead = null } = {}) {
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

export function kv(pairs) {
  const dl = h('dl', { class: 'kv' });
  for (const [key, value] of pairs) {
    if (value === undefined) continue;
    dl.append(h('dt', {}, key), h('dd', {}, value === null ? h('span', { class: 'muted' }, '—') : value));
  }
  return dl;
}

export function table(headers, rows, { empty = 'Nothing to show.', caption = null, foot = null, className = null } = {}) {
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

export const td = (content, props = {}) => h('td', props, content);
export const tdNum = (content, props = {}) => h('td', { ...props, class: ['num', props.class] }, content);

export function liveIndicator() {
  const el = h('span', { class: 'live', role: 'status' }, 'connecting…');
  el.set = (state, text) => {
    el.className = `live ${state === 'on' ? 'live-on' : state === 'off' ? 'live-off' : 'live-wait'}`;
    el.textContent = text;
  };
  return el;
}

export function setTip(height) {
  const value = Number(height);
  if (!Number.isFinite(value)) return;
  const known = Number(document.body.dataset.tip ?? -1);
  if (!(value >= known)) return;
  document.body.dataset.tip = String(value);
}
