// SCF Ledger Explorer: a hash-routed single page over the node's JSON API. This module is the
// entry point: the router and view lifecycle, search, sign-in, and start. Each page is a module
// of its own (chain, block, token, party, dashboard); they share dom.js, format.js, ui.js,
// live.js, api.js (the signed API client) and signing.js (keys and signatures).
//
// Rules every module keeps (the page is served with a strict Content-Security-Policy):
// - every piece of data reaches the DOM through textContent / createElement (never innerHTML);
// - no inline styles from markup: classes, SVG attributes, or element.style set from here;
// - every API read goes through api(), which signs the request when a party is signed in.
// The signing key lives in this tab's sessionStorage only; only signatures leave the page.
//
// A view is `async (ctx, ...args) => ({ node, title, start? })`: ctx (ViewContext) is closed
// when the next route opens, which aborts its requests and timers.

import { publicKey } from './signing.js';
import { $, h } from './dom.js';
import { shortHash } from './format.js';
import { api, ApiError, attempt, isRegulator, purpose, REGULATOR_PURPOSES, session, setPurpose, setSession } from './api.js';
import { enc, errorBox, link, pageHead } from './ui.js';
import { viewChain } from './chain.js';
import { viewBlock, viewTx } from './block.js';
import { viewInvoice, viewToken } from './token.js';
import { viewParty } from './party.js';
import { viewDashboard } from './dashboard.js';

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
      } catch (error) {
        // The view closed while fn was in flight (its fetch aborted): nothing is left to update.
        if (error?.name !== 'AbortError') console.error(error);
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
  setSession({ party: record.party_id, role: record.role, name: record.name || '', frozen: !!record.frozen, publicKey: key, secret });
  updateAccount();
  await route();
  return { party_id: record.party_id, role: record.role, name: record.name };
}

async function signOut() {
  setSession(null);
  updateAccount();
  await route();
}

function updateAccount() {
  const who = $('#who');
  const out = $('#sign-out');
  const panel = $('#signin-panel');
  if (session) {
    who.replaceChildren(
      ...['Signed in as ', h('strong', {}, session.party), ` (${session.role})`, session.frozen ? h('span', { class: 'badge badge-frozen' }, 'frozen') : null, isRegulator() ? purposePicker() : null].filter(Boolean),
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

// A regulator's purpose for its reads: logged with each of them where the data's owners see it.
function purposePicker() {
  const select = h(
    'select',
    { id: 'purpose', 'aria-label': 'Purpose of your reads', title: 'Every read you make is logged with this purpose, and the owners of the records see it.' },
    REGULATOR_PURPOSES.map(([code, label]) => h('option', { value: code, selected: code === purpose() }, label)),
  );
  select.addEventListener('change', async () => {
    setPurpose(select.value);
    await route();
  });
  return h('span', { class: 'purpose' }, ' · purpose ', select);
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
