// #/block/H and #/tx/HASH: a block's header and its transactions (decoded for regulators), and
// one transaction's outcome and, for regulators, its contents.

import { h } from './dom.js';
import { fmtTime, humanize, shortHash } from './format.js';
import { api, ApiError, attempt, session } from './api.js';
import { badge, blockLink, card, createdIdEl, enc, hashEl, invoiceLink, kv, link, pageHead, partyLink, setTip, table, td, tdNum, timeEl, tokenLink } from './ui.js';

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

export async function viewBlock(ctx, heightArg) {
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

export async function viewTx(ctx, hash = '') {
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
