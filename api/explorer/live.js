// Live events: the node's event stream read with fetch and a ReadableStream and parsed here
// (EventSource cannot send the signed-read headers), with reconnects, and polling of
// /v1/blocks on a node without an event stream. Used by the chain page and the dashboard.

import { api, ApiError } from './api.js';
import { setTip } from './ui.js';

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
export async function followChain(ctx, from, { onBlock, onTx, indicator }) {
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

export function txEventFromBlock(block, tx, index) {
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
