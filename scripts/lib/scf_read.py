"""The signed-read headers of scf-node (scf-read-v2), as ledger::client::ReadRequest makes them:
for scripts/schemathesis/hooks.py and scripts/bench/reads.py (needs ecdsa)."""

import hashlib
import secrets
import time

from ecdsa import SigningKey
from ecdsa.util import sigencode_string_canonize


def read_headers(chain_id: str, node_id: str, party: str, key: SigningKey, method: str,
                 path_and_query: str, body: bytes = b"") -> dict:
    """The five headers (x-scf-party, -time, -nonce, -node, -signature), with a fresh nonce."""
    nonce = secrets.token_hex(16)
    now_ms = str(int(time.time() * 1000))
    text = "\n".join([
        "scf-read-v2", chain_id, node_id, party, method, path_and_query, nonce, now_ms,
        hashlib.sha256(body).hexdigest(),
    ])
    # RFC 6979 deterministic, 64-byte r||s, low-S: the node's form.
    signature = key.sign_digest_deterministic(
        hashlib.sha256(text.encode()).digest(),
        hashfunc=hashlib.sha256,
        sigencode=sigencode_string_canonize,
    )
    return {"x-scf-party": party, "x-scf-time": now_ms, "x-scf-nonce": nonce,
            "x-scf-node": node_id, "x-scf-signature": signature.hex()}
