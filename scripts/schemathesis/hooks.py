"""Schemathesis hooks for scf-node: signs every request as one party (a regulator, say) when
SCF_READER and SCF_READER_KEY are set, the way ledger::client::ReadRequest does (scf-read-v2),
with a fresh nonce for each request, since a node answers each signed request once.

SCF_READER: the party id. SCF_READER_KEY: its 32-byte secret key in hex. SCF_CHAIN_ID and
SCF_NODE_ID: what the node's /v1/status says (genesis.chain_id, node_id). SCF_BASE_URL: the
node's URL.

The signature covers the path and query exactly as sent, so it is made from the prepared
request, after Schemathesis has filled in its parameters.
"""

import os

import requests
import schemathesis
import scf_read
from ecdsa import SECP256k1, SigningKey

READER = os.environ.get("SCF_READER")
KEY = SigningKey.from_string(bytes.fromhex(os.environ["SCF_READER_KEY"]), curve=SECP256k1) if READER else None
CHAIN_ID = os.environ.get("SCF_CHAIN_ID", "")
NODE_ID = os.environ.get("SCF_NODE_ID", "")
BASE_URL = os.environ.get("SCF_BASE_URL", "")


def read_headers(method: str, path_and_query: str, body: bytes) -> dict:
    """The five signed-read headers, as READER (scripts/lib/scf_read.py)."""
    return scf_read.read_headers(CHAIN_ID, NODE_ID, READER, KEY, method, path_and_query, body)


if READER:

    @schemathesis.auth()
    class SignedRead:
        """The `signedRequest` scheme: a fresh signature for each request. As an auth provider
        (not a plain hook), so that Schemathesis's own checks of missing or broken credentials
        still send requests without it."""

        def get(self, case, ctx):
            return READER

        def set(self, case, data, ctx):
            # The request as it will be sent, to sign its path and query byte for byte.
            sent = case.as_transport_kwargs(base_url=BASE_URL)
            prepared = requests.Request(
                method=sent["method"], url=sent["url"], params=sent.get("params")
            ).prepare()
            body = sent.get("data") or b""
            if isinstance(body, str):
                body = body.encode()
            if not isinstance(body, bytes):
                body = b""
            headers = dict(case.headers or {})
            headers.update(read_headers(prepared.method, prepared.path_url, body))
            case.headers = headers
