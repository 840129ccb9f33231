// secp256k1 ECDSA for the explorer's signed reads, over BigInt, with no dependencies.
//
// What it does: derives a compressed public key from a secret key, and signs a 32-byte digest
// as the ledger expects (64-byte compact r||s, low-S), with RFC 6979 deterministic nonces
// (HMAC-SHA256 from crypto.subtle), so no random source is needed and the same key and digest
// always give the same signature.
//
// What it does not do: run in constant time. Browser BigInt arithmetic takes time that depends
// on the values, so a precise timing observer could learn about the key. That is accepted here:
// the key stays in this page (sessionStorage of this tab), it is never sent anywhere, and only
// signatures of read requests leave the page. Do not reuse this module where an attacker can
// time many signatures made with a valuable key.

const P = 0xfffffffffffffffffffffffffffffffffffffffffffffffffffffffefffffc2fn;
const N = 0xfffffffffffffffffffffffffffffffebaaedce6af48a03bbfd25e8cd0364141n;
const GX = 0x79be667ef9dcbbac55a06295ce870b07029bfcdb2dce28d959f2815b16f81798n;
const GY = 0x483ada7726a3c4655da4fbfc0e1108a8fd17b448a68554199c47d08ffb10d4b8n;

// ---- hex and bytes --------------------------------------------------------------------------

/** Bytes to lower-case hex. */
export function bytesToHex(bytes) {
  let out = '';
  for (const b of bytes) out += b.toString(16).padStart(2, '0');
  return out;
}

/** Hex (either case, even length) to bytes; throws on anything else. */
export function hexToBytes(hex) {
  if (typeof hex !== 'string' || hex.length % 2 !== 0 || !/^[0-9a-fA-F]*$/.test(hex)) {
    throw new Error('not a hex string of whole bytes');
  }
  const out = new Uint8Array(hex.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = parseInt(hex.substr(i * 2, 2), 16);
  return out;
}

/** UTF-8 bytes of a string. */
export function utf8(text) {
  return new TextEncoder().encode(text);
}

function bytesToInt(bytes) {
  return bytes.length === 0 ? 0n : BigInt('0x' + bytesToHex(bytes));
}

function intTo32(n) {
  return hexToBytes(n.toString(16).padStart(64, '0'));
}

function concat(...parts) {
  const out = new Uint8Array(parts.reduce((sum, p) => sum + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

// ---- hashes (crypto.subtle) -----------------------------------------------------------------

/** SHA-256 of bytes. */
export async function sha256(bytes) {
  return new Uint8Array(await crypto.subtle.digest('SHA-256', bytes));
}

async function hmacSha256(key, data) {
  const k = await crypto.subtle.importKey('raw', key, { name: 'HMAC', hash: 'SHA-256' }, false, [
    'sign',
  ]);
  return new Uint8Array(await crypto.subtle.sign('HMAC', k, data));
}

// ---- field and curve arithmetic -------------------------------------------------------------

function mod(a, m) {
  const r = a % m;
  return r >= 0n ? r : r + m;
}

/** Inverse of a modulo m (m prime, a not a multiple of m), by the extended Euclid algorithm. */
function invert(a, m) {
  let [r, newR] = [m, mod(a, m)];
  let [t, newT] = [0n, 1n];
  while (newR !== 0n) {
    const q = r / newR;
    [r, newR] = [newR, r - q * newR];
    [t, newT] = [newT, t - q * newT];
  }
  if (r !== 1n) throw new Error('no inverse');
  return mod(t, m);
}

// Points in Jacobian coordinates (X, Y, Z) for x = X/Z², y = Y/Z³; Z = 0 is the point at infinity.
const INFINITY = { X: 0n, Y: 1n, Z: 0n };

function double(p) {
  if (p.Z === 0n || p.Y === 0n) return INFINITY;
  // dbl-2009-l, for a = 0.
  const A = mod(p.X * p.X, P);
  const B = mod(p.Y * p.Y, P);
  const C = mod(B * B, P);
  const D = mod(2n * ((p.X + B) ** 2n - A - C), P);
  const E = 3n * A;
  const F = mod(E * E, P);
  const X = mod(F - 2n * D, P);
  const Y = mod(E * (D - X) - 8n * C, P);
  const Z = mod(2n * p.Y * p.Z, P);
  return { X, Y, Z };
}

function add(p, q) {
  if (p.Z === 0n) return q;
  if (q.Z === 0n) return p;
  const pz2 = mod(p.Z * p.Z, P);
  const qz2 = mod(q.Z * q.Z, P);
  const u1 = mod(p.X * qz2, P);
  const u2 = mod(q.X * pz2, P);
  const s1 = mod(p.Y * q.Z * qz2, P);
  const s2 = mod(q.Y * p.Z * pz2, P);
  const h = mod(u2 - u1, P);
  const r = mod(s2 - s1, P);
  if (h === 0n) return r === 0n ? double(p) : INFINITY;
  const h2 = mod(h * h, P);
  const h3 = mod(h * h2, P);
  const v = mod(u1 * h2, P);
  const X = mod(r * r - h3 - 2n * v, P);
  const Y = mod(r * (v - X) - s1 * h3, P);
  const Z = mod(p.Z * q.Z * h, P);
  return { X, Y, Z };
}

function multiply(k, p) {
  let acc = INFINITY;
  for (let bit = BigInt(k.toString(2).length - 1); bit >= 0n; bit--) {
    acc = double(acc);
    if ((k >> bit) & 1n) acc = add(acc, p);
  }
  return acc;
}

function affine(p) {
  if (p.Z === 0n) throw new Error('point at infinity');
  const zi = invert(p.Z, P);
  const zi2 = mod(zi * zi, P);
  return { x: mod(p.X * zi2, P), y: mod(p.Y * zi2 * zi, P) };
}

const G = { X: GX, Y: GY, Z: 1n };

function secretScalar(secretHex) {
  const bytes = hexToBytes(String(secretHex).trim());
  if (bytes.length !== 32) throw new Error('a secret key is 32 bytes (64 hex digits)');
  const d = bytesToInt(bytes);
  if (d === 0n || d >= N) throw new Error('the secret key is out of range');
  return d;
}

// ---- the two operations ---------------------------------------------------------------------

/** The compressed (33-byte, 02/03-prefixed) public key of a 32-byte secret key, as hex. */
export function publicKey(secretHex) {
  const { x, y } = affine(multiply(secretScalar(secretHex), G));
  return ((y & 1n) === 0n ? '02' : '03') + x.toString(16).padStart(64, '0');
}

/**
 * Signs a 32-byte digest as it is (no further hashing): hex of r||s (64 bytes), s low
 * (s <= n/2), the nonce from RFC 6979 with HMAC-SHA256.
 */
export async function signDigest(secretHex, digestBytes) {
  const digest = Uint8Array.from(digestBytes);
  if (digest.length !== 32) throw new Error('the digest must be 32 bytes');
  const d = secretScalar(secretHex);
  const e = mod(bytesToInt(digest), N); // bits2int then reduced: qlen = hlen = 256
  const x = intTo32(d);
  const h = intTo32(e); // bits2octets
  // RFC 6979 section 3.2, steps b to h.
  let V = new Uint8Array(32).fill(1);
  let K = new Uint8Array(32);
  K = await hmacSha256(K, concat(V, [0], x, h));
  V = await hmacSha256(K, V);
  K = await hmacSha256(K, concat(V, [1], x, h));
  V = await hmacSha256(K, V);
  for (;;) {
    V = await hmacSha256(K, V);
    const k = bytesToInt(V);
    if (k >= 1n && k < N) {
      const r = mod(affine(multiply(k, G)).x, N);
      if (r !== 0n) {
        let s = mod(invert(k, N) * (e + r * d), N);
        if (s !== 0n) {
          if (s > N >> 1n) s = N - s; // low-S, as the ledger requires
          return bytesToHex(concat(intTo32(r), intTo32(s)));
        }
      }
    }
    K = await hmacSha256(K, concat(V, [0]));
    V = await hmacSha256(K, V);
  }
}
