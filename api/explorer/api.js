// The session (sessionStorage only) and the signed API client: every read of the node's JSON API
// goes through api(), which signs the request when a party is signed in.
//
// The session is exported as a live binding; only setSession() changes it.

import { readNonce, readRequestDigest, signDigest } from './signing.js';

const SESSION_KEY = 'scf-explorer.session';
export let session = loadSession();

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

/**
 * Signs in (a session) or out (null), in this tab's sessionStorage too. Signing out also forgets
 * the node's clock offset learnt for the last reader.
 */
export function setSession(value) {
  session = value;
  if (!value) clockOffsetMs = 0;
  saveSession(value);
}

export const isRegulator = () => session?.role === 'regulator';

// What a regulator's read gives as its purpose (?purpose=, covered by the signature): every read
// of private data by a regulator must give one, and the node logs it where the data's owners see
// it. The codes are the node's (api/src/access.rs).
export const REGULATOR_PURPOSES = [
  ['supervision', 'Routine supervision and reporting'],
  ['investigation', 'An inquiry into a named party or case'],
  ['audit', 'An audit engagement'],
  ['legal_order', 'A court order or another legal demand'],
  ['complaint', 'The handling of a complaint'],
];

/** The regulator's current purpose (kept in the session), or null for anyone else. */
export const purpose = () => (isRegulator() ? session.purpose || 'supervision' : null);

/** Changes the signed-in regulator's purpose for its next reads. */
export function setPurpose(code) {
  if (!session || !REGULATOR_PURPOSES.some(([c]) => c === code)) return;
  setSession({ ...session, purpose: code });
}

export class ApiError extends Error {
  constructor(status, code, message, extra = {}) {
    super(message || code);
    this.name = 'ApiError';
    this.status = status;
    this.code = code || `http_${status}`;
    Object.assign(this, extra);
  }
}

// Offset of the node's clock from ours, learnt from a stale_request answer's Date header, so that
// a reader whose computer clock is off by more than the node's 5-minute window can still read.
let clockOffsetMs = 0;

// The chain id and node id this page's node gives in GET /v1/status, which a signed read names
// (so that it is good at this node only); asked once per page.
let nodeIdentity = null;

async function identity(signal) {
  if (!nodeIdentity) {
    const status = await api('/v1/status', { signal, unsigned: true });
    nodeIdentity = { chainId: status.genesis.chain_id, nodeId: String(status.node_id) };
  }
  return nodeIdentity;
}

/**
 * The five headers of a signed read of `pathAndQuery` (no body), by the signed-in party, with a
 * fresh nonce: the node answers each signed request once.
 */
async function signedHeaders(method, pathAndQuery, signal) {
  const { chainId, nodeId } = await identity(signal);
  const time = String(Date.now() + clockOffsetMs);
  const nonce = readNonce();
  const digest = readRequestDigest({
    chainId, nodeId, party: session.party, method, pathAndQuery, nonce, timeMs: time,
  });
  return {
    'x-scf-party': session.party,
    'x-scf-time': time,
    'x-scf-nonce': nonce,
    'x-scf-node': nodeId,
    'x-scf-signature': signDigest(session.secret, digest),
  };
}

/**
 * Every API read: GET `path` (path and query, already encoded), signed when signed in (unless
 * `unsigned`), and the JSON answer; `stream: true` answers the Response instead (for the event
 * stream). Failures throw ApiError with the code of the JSON error body.
 */
export async function api(path, { signal, stream = false, unsigned = false, retried = false } = {}) {
  const url = new URL(path, window.location.origin);
  // A regulator's signed reads say why (routes without private data ignore it).
  if (session && !unsigned && purpose() && !url.searchParams.has('purpose')) {
    url.searchParams.set('purpose', purpose());
  }
  const pathAndQuery = url.pathname + url.search; // exactly what the browser sends
  const headers = { accept: stream ? 'text/event-stream' : 'application/json' };
  if (session && !unsigned) Object.assign(headers, await signedHeaders('GET', pathAndQuery, signal));
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
export async function attempt(path, options) {
  try {
    return { ok: true, value: await api(path, options) };
  } catch (error) {
    if (error?.name === 'AbortError') throw error;
    return { ok: false, error };
  }
}
