// Keys and signatures for the explorer's signed reads, with @noble/secp256k1 and @noble/hashes
// (vendored: vendor/VENDORED.md).
//
// What it does: the compressed public key of a secret key; the digest a signed read signs, as
// the node checks it (ledger::client::ReadRequest, verified in api/src/auth.rs); and
// the signature the node accepts (ledger/src/crypto.rs): secp256k1 ECDSA over that 32-byte
// digest as it is (no second hashing), 64-byte compact r||s, low-S, with RFC 6979 deterministic
// nonces, so no random source is needed and a key and digest always give the same signature,
// the one libsecp256k1 gives.
//
// What it must never do: send or store a key. The caller keeps the secret in this tab's
// sessionStorage; only signatures leave the page. noble aims at algorithmic constant time, but
// JavaScript engines give no timing guarantee: do not reuse this where an attacker can time
// many signatures made with a valuable key.

import { getPublicKey, hashes, sign } from './noble-secp256k1.js';
import { hmac } from './noble-hashes-hmac.js';
import { sha256 as sha256Hash } from './noble-hashes-sha2.js';

// noble's synchronous signing takes its SHA-256 and HMAC from these two slots.
hashes.sha256 = sha256Hash;
hashes.hmacSha256 = (key, message) => hmac(sha256Hash, key, message);

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

/** SHA-256 of bytes. */
export function sha256(bytes) {
  return sha256Hash(Uint8Array.from(bytes));
}

/** The 32 bytes of a secret key given as hex, or an error saying why it is not one. */
function secretBytes(secretHex) {
  const bytes = hexToBytes(String(secretHex).trim());
  if (bytes.length !== 32) throw new Error('a secret key is 32 bytes (64 hex digits)');
  return bytes;
}

/** The compressed (33-byte, 02/03-prefixed) public key of a 32-byte secret key, as hex. */
export function publicKey(secretHex) {
  const secret = secretBytes(secretHex);
  let key;
  try {
    key = getPublicKey(secret, true);
  } catch {
    throw new Error('the secret key is out of range'); // 0, or not below the group order
  }
  return bytesToHex(key);
}

/**
 * Signs a 32-byte digest as it is (no further hashing): hex of r||s (64 bytes), s low
 * (s <= n/2), the nonce from RFC 6979 with HMAC-SHA256 and no extra entropy.
 */
export function signDigest(secretHex, digestBytes) {
  const digest = Uint8Array.from(digestBytes);
  if (digest.length !== 32) throw new Error('the digest must be 32 bytes');
  const signature = sign(digest, secretBytes(secretHex), {
    prehash: false,
    lowS: true,
    format: 'compact',
    extraEntropy: false,
  });
  return bytesToHex(signature);
}

/**
 * What a signed read signs (ledger::client::ReadRequest::digest): SHA-256 of
 * "scf-read-v2\n" CHAIN_ID "\n" NODE_ID "\n" PARTY "\n" METHOD "\n" PATH_AND_QUERY "\n" NONCE "\n"
 * TIME "\n" hex(SHA-256(BODY)), NODE_ID and TIME (ms since the Unix epoch) as decimal digits.
 */
export function readRequestDigest({ chainId, nodeId, party, method, pathAndQuery, nonce, timeMs, body = new Uint8Array(0) }) {
  const text = [
    'scf-read-v2', chainId, nodeId, party, method, pathAndQuery, nonce, timeMs, bytesToHex(sha256(body)),
  ].join('\n');
  return sha256(utf8(text));
}

/** A fresh nonce for a signed read: 16 random bytes from the browser, as 32 hex digits. */
export function readNonce() {
  return bytesToHex(crypto.getRandomValues(new Uint8Array(16)));
}
