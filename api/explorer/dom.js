// DOM helpers: elements built from data with createElement and textContent, never innerHTML,
// so that nothing the ledger says can become markup (the page runs under a strict CSP).

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
export function h(tag, props, ...kids) {
  const el = document.createElement(tag);
  applyProps(el, props);
  return appendKids(el, kids);
}

/** An SVG element, the same way. */
export function s(tag, props, ...kids) {
  const el = document.createElementNS(SVG_NS, tag);
  applyProps(el, props);
  return appendKids(el, kids);
}

export const $ = (selector, root = document) => root.querySelector(selector);
let uid = 0;
export const nextId = (prefix) => `${prefix}-${++uid}`;
