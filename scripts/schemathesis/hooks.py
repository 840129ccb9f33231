"""Schemathesis hooks for scf-node: signs every request as one party (a regulator, say) when
SCF_READER and SCF_READER_KEY are set, the way ledger::client::ReadRequest does (scf-read-v2),
with a fresh nonce for each request, since a node answers each signed request once.

SCF_READER: the party id. SCF_READER_KEY: its 32-byte secret key in hex. SCF_CHAIN_ID and
SCF_NODE_ID: what the node's /v1/status says (genesis.chain_id, node_id).

The signature covers the path and query exactly as sent, so it is made from the prepared
request, after Schemathesis has filled in its parameters.
"""

import hashlib
import os
import secrets
import time

import requests
import schemathesis
from ecdsa import SECP256k1, SigningKey
from ecdsa.util import sigencode_string_canonize

READER = os.environ.get("SCF_READER")
KEY = SigningKey.from_string(bytes.fromhex(os.environ["SCF_READER_KEY"]), curve=SECP256k1) if READER else None
CHAIN_ID = os.environ.get("SCF_CHAIN_ID", "")
NODE_ID = os.environ.get("SCF_NODE_ID", "")


def read_headers(method: str, path_and_query: str, body: bytes) -> dict:
    """The five signed-read headers (x-scf-party, -time, -nonce, -node, -signature)."""
    nonce = secrets.token_hex(16)
    now_ms = str(int(time.time() * 1000))
    text = "\n".join(
        [
            "scf-read-v2",
            CHAIN_ID,
            NODE_ID,
            READER,
            method,
            path_and_query,
            nonce,
            now_ms,
            hashlib.sha256(body).hexdigest(),
        ]
    )
    digest = hashlib.sha256(text.encode()).digest()
    # RFC 6979 deterministic, 64-byte r||s, low-S: the node's form.
    signature = KEY.sign_digest_deterministic(
        digest, hashfunc=hashlib.sha256, sigencode=sigencode_string_canonize
    )
    return {
        "x-scf-party": READER,
        "x-scf-time": now_ms,
        "x-scf-nonce": nonce,
        "x-scf-node": NODE_ID,
        "x-scf-signature": signature.hex(),
    }


@schemathesis.hook
def before_call(ctx, case, kwargs):
    if not READER:
        return
    prepared = requests.Request(
        method=kwargs.get("method", case.method),
        url=kwargs["url"],
        params=kwargs.get("params"),
    ).prepare()
    body = kwargs.get("data") or kwargs.get("json") or b""
    if isinstance(body, str):
        body = body.encode()
    if not isinstance(body, bytes):
        body = b""
    headers = dict(kwargs.get("headers") or {})
    # Schemathesis's own header cases (a missing or odd header) stay as they are.
    for name in list(headers):
        if name.lower().startswith("x-scf-"):
            return
    headers.update(read_headers(prepared.method, prepared.path_url, body))
    kwargs["headers"] = headers
