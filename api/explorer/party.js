// #/party/ID: a party's public record and, as far as the reader may see, its holdings, its
// exposure or financing rows, and the access it granted to others.

import { h } from './dom.js';
import { decSum, humanize } from './format.js';
import { api, attempt, isRegulator, session } from './api.js';
import { badge, card, enc, errorBox, hashEl, invoiceLink, kv, pageHead, partyLink, roleBadge, table, td, tdNum, timeEl, tokenLink } from './ui.js';
import { exposureTable, financingTable } from './dashboard.js';

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

// Entries of this node's access log shown on one's own party page: the newest, newest first.
const ACCESS_ROWS = 200;
// A `before=` past every seq (u64::MAX): the newest entries.
const NEWEST = '18446744073709551615';

// "Who read my records": this node's access-log entries about the signed-in party's data.
function accessCard(log) {
  const rows = (log.entries || []).slice().reverse().map((e) =>
    h(
      'tr',
      { 'data-access': String(e.seq), 'data-reader': e.reader, 'data-purpose': e.purpose || '' },
      td(timeEl(e.time_ms)),
      td(partyLink(e.reader)),
      td(e.role),
      td(e.purpose ? humanize(e.purpose) : h('span', { class: 'muted' }, '—')),
      td(e.grant ? ['under ', partyLink(e.grant), '’s grant'] : h('span', { class: 'muted' }, '—')),
      td(h('code', {}, (e.records || []).join(' ') || e.path)),
    ),
  );
  const more = log.earlier ? ` Showing the newest ${rows.length}; earlier ones before entry ${log.earlier}.` : '';
  return card(
    `Who read my records (${rows.length})`,
    table(['When', 'Reader', 'Role', 'Purpose', 'Grant', 'What'], rows, { empty: 'Nobody has read your records on this node.' }),
    {
      flush: true,
      foot: `Every read of your data this node answered, your own included (a counterparty's look at a transaction you share is in its own log, a regulator's in yours), from its hash-chained access log (${log.length} entries in all, head ${String(log.head).slice(0, 16)}…). Each node keeps its own log.${more}`,
    },
  );
}

export async function viewParty(ctx, id = '') {
  const party = await api(`/v1/parties/${enc(id)}`, { signal: ctx.signal });
  const me = session?.party === party.party_id;
  const canSupervise = !!session && (isRegulator() || me);
  const [tokens, exposure, financing, grants, accesses] = await Promise.all([
    attempt(`/v1/tokens?holder=${enc(party.party_id)}`, { signal: ctx.signal }),
    canSupervise && party.role === 'enterprise' ? attempt('/v1/supervision/exposure', { signal: ctx.signal }) : null,
    canSupervise && party.role === 'bank' ? attempt('/v1/supervision/financing', { signal: ctx.signal }) : null,
    canSupervise ? attempt(`/v1/parties/${enc(party.party_id)}/grants`, { signal: ctx.signal }) : null,
    me ? attempt(`/v1/access-log?before=${NEWEST}&limit=${ACCESS_ROWS}`, { signal: ctx.signal }) : null,
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
  if (accesses) {
    sections.push(accesses.ok ? accessCard(accesses.value) : card('Who read my records', errorBox(accesses.error, { compact: true })));
  }
  return {
    node: h('div', {}, pageHead(party.name || party.party_id, { crumbs: ['Party ', h('code', {}, party.party_id)], sub: [roleBadge(party.role), me ? h('span', { class: 'muted' }, ' · you') : null] }), sections),
    title: `Party ${party.party_id}`,
  };
}
