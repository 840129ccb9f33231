// #/dashboard: the supervision reports (exposure, credit used, maturity ladder, concentration,
// financing, rejections) as headline figures, sortable tables and hand-drawn SVG charts,
// refreshed as blocks arrive. The exposure and financing tables are also the party page's.

import { h, nextId, s } from './dom.js';
import { compact, decCmp, decIsZero, decSum, fmtAmount, fmtDate, fmtPercent, fmtTime, humanize, toNumber } from './format.js';
import { attempt, session } from './api.js';
import { badge, blockLink, card, errorBox, hashEl, link, liveIndicator, pageHead, partyLink, setTip, table, td, tdNum, timeEl } from './ui.js';
import { followChain } from './live.js';

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

export function exposureTable(rows, { empty = 'No open receivables.', sortable = false } = {}) {
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

export function financingTable(rows) {
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

export async function viewDashboard(ctx) {
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
