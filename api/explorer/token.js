// #/token/ID and #/invoice/ID: a receivable token with its lineage tree, financing and the goods
// evidence behind it (invoice, purchase order, shipments), and an invoice with its evidence.

import { h } from './dom.js';
import { fmtPercent, relDays, shortId } from './format.js';
import { api, attempt } from './api.js';
import { badge, card, copyButton, enc, errorBox, hashEl, invoiceLink, kv, link, money, pageHead, partyLink, roleBadge, table, td, tdNum, timeEl, tokenLink } from './ui.js';

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

export async function viewToken(ctx, id = '') {
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

export async function viewInvoice(ctx, id = '') {
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
