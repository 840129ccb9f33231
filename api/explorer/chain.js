// #/chain: the node's status, the latest blocks (updated live, older ones on demand) and, when
// signed in, the live feed of the transactions the reader may see.

import { $, h } from './dom.js';
import { humanize } from './format.js';
import { api, attempt, isRegulator, session } from './api.js';
import { badge, blockLink, card, errorBox, hashEl, kv, link, liveIndicator, pageHead, partyLink, setTip, table, td, tdNum, timeEl } from './ui.js';
import { followChain, txEventFromBlock } from './live.js';

const CHAIN_ROWS = 20;

export async function viewChain(ctx) {
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
