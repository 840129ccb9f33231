"""Read-side figures of one node (scripts/bench-reads.sh): what a supervision report costs
computed by a scan of every token (the maturity ladder), computed from the financing totals the
node keeps (concentration), and taken from the per-height cache; and what the access log adds
to a private read.

Each pair is measured interleaved (A, B, A, B, ...) on one keep-alive connection, so that the
machine's noise falls on both alike; every request is signed (scf-read-v2) with a fresh nonce
before its clock starts, so the figures are the node's time plus loopback, not Python's
signing.

usage: reads.py URL KEYS_DIR ROUNDS
"""

import http.client
import json
import os
import statistics
import sys
import time
import urllib.parse

from ecdsa import SECP256k1, SigningKey

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
import scf_read  # noqa: E402  (scripts/lib, beside this directory)


def main() -> None:
    url, keys_dir, rounds = sys.argv[1], sys.argv[2], int(sys.argv[3])
    parsed = urllib.parse.urlparse(url)
    connection = http.client.HTTPConnection(parsed.hostname, parsed.port, timeout=30)
    status = get(connection, "/v1/status")
    chain_id, node_id = status["genesis"]["chain_id"], str(status["node_id"])
    keys = {}
    for name in os.listdir(keys_dir):
        with open(os.path.join(keys_dir, name)) as file:
            key = json.load(file)
        keys[key["party_id"]] = SigningKey.from_string(
            bytes.fromhex(key["secret_key"]), curve=SECP256k1
        )
    regulator = next(party for party in keys if party.endswith("regulator"))

    def signed(party: str, path: str) -> dict:
        return scf_read.read_headers(chain_id, node_id, party, keys[party], "GET", path)

    def timed(party: str, path: str, expect: int) -> float:
        headers = signed(party, path)
        started = time.perf_counter()
        connection.request("GET", path, headers=headers)
        response = connection.getresponse()
        body = response.read()
        elapsed = time.perf_counter() - started
        if response.status != expect:
            sys.exit(f"{party} GET {path}: {response.status} {body[:300]!r}, not {expect}")
        return elapsed * 1000

    # A token and its holder, and a party with no part in it (refused: 403, nothing logged).
    holder = token = None
    for party in sorted(keys):
        if party == regulator:
            continue
        path = f"/v1/tokens?holder={party}"
        connection.request("GET", path, headers=signed(party, path))
        answer = json.loads(connection.getresponse().read())
        if answer.get("tokens"):
            holder, token = party, answer["tokens"][0]["token_id"]
            break
    if token is None:
        sys.exit("the workload left no token to read")
    stranger = None
    for party in sorted(keys):
        if party in (holder, regulator):
            continue
        path = f"/v1/tokens/{token}"
        connection.request("GET", path, headers=signed(party, path))
        response = connection.getresponse()
        response.read()
        if response.status == 403:
            stranger = party
            break
    if stranger is None:
        sys.exit(f"every party may read {token}: no stranger to compare with")
    height = get(connection, "/v1/status")["height"]

    if rounds > 90:
        sys.exit("at most 90 rounds: each computed round needs a `top` and `weeks` of its own")
    cached, computed, scanned, logged, refused = [], [], [], [], []
    report = "/v1/supervision/concentration?purpose=supervision&top="
    ladder = "/v1/supervision/maturity?purpose=supervision&weeks="
    # Computed once here (the financing totals scanned with it), cached in every round.
    timed(regulator, report + "10", 200)
    for i in range(rounds):
        # top=10 again and again is the cached report; a new `top` each round is computed
        # afresh from the financing totals kept at this height; a new `weeks` each round is a
        # maturity ladder computed afresh, a scan of every token.
        cached.append(timed(regulator, report + "10", 200))
        computed.append(timed(regulator, report + str(11 + i), 200))
        scanned.append(timed(regulator, ladder + str(11 + i), 200))
        logged.append(timed(holder, f"/v1/tokens/{token}", 200))
        refused.append(timed(stranger, f"/v1/tokens/{token}", 403))
    after = get(connection, "/v1/status")
    if after["height"] != height:
        sys.exit("the chain moved during the run: the cache was emptied")

    def figures(samples: list) -> dict:
        ordered = sorted(samples)
        return {"median_ms": round(statistics.median(ordered), 3),
                "p90_ms": round(ordered[int(len(ordered) * 0.9) - 1], 3)}

    print(json.dumps({
        "height": after["height"],
        "rounds": rounds,
        "maturity_ladder": {"computed (every token scanned)": figures(scanned)},
        "concentration_report": {"computed (from the financing totals)": figures(computed),
                                 "cached": figures(cached)},
        "token_read": {"logged (holder, 200)": figures(logged),
                       "unlogged (stranger, 403)": figures(refused)},
        "access_log_entries": after["access_log"]["length"],
    }, indent=2))


def get(connection: http.client.HTTPConnection, path: str) -> dict:
    connection.request("GET", path)
    response = connection.getresponse()
    return json.loads(response.read())


if __name__ == "__main__":
    main()
