#!/usr/bin/env bash
# The life of a receivable, from a shell, against a running cluster:
#   register parties, credit line, order, ship, deliver, invoice, accept (a token is minted),
#   split part of it to a tier-2 supplier, a refused attempt to finance the split token again,
#   discount the rest at a bank, settle both, and read the records as their parties, a
#   regulator and a stranger (refused: 403).
#
# Start a cluster first, in another terminal:   scf-sim cluster --dir /tmp/scf
# then:                                         SCF_DIR=/tmp/scf scripts/walkthrough.sh
#
# SCF_DIR  the cluster's directory (cluster.json, registrar.key), as `scf-sim cluster` writes it
# SCF_SIM  the scf-sim binary (default: target/release/scf-sim, else scf-sim on PATH)
# SCF_URL  the node to write to (default: the cluster's first voter; any voter forwards)
#
# Every id is suffixed with a run number, so the script runs again against the same cluster.
# It stops at the first unexpected answer (scf-sim exits non-zero on an error or a rejection).
set -euo pipefail

: "${SCF_DIR:?set SCF_DIR to the directory of a running scf-sim cluster}"
root="$(cd "$(dirname "$0")/.." && pwd)"
SIM="${SCF_SIM:-}"
if [[ -z "$SIM" ]]; then
    if [[ -x "$root/target/release/scf-sim" ]]; then SIM="$root/target/release/scf-sim"; else SIM=scf-sim; fi
fi
if ! command -v "$SIM" >/dev/null; then
    echo "walkthrough: no scf-sim ($SIM): cargo build --release -p sim, or set SCF_SIM" >&2
    exit 1
fi
if [[ ! -f "$SCF_DIR/cluster.json" ]]; then
    echo "walkthrough: no $SCF_DIR/cluster.json: start scf-sim cluster --dir $SCF_DIR first" >&2
    exit 1
fi
mapfile -t urls < <(grep -o '"url": "[^"]*"' "$SCF_DIR/cluster.json" | cut -d'"' -f4)
URL="${SCF_URL:-${urls[0]}}"
OBSERVER="${urls[${#urls[@]}-1]}"
SCF_CHAIN="$(grep -o '"chain_id": "[^"]*"' "$SCF_DIR/cluster.json" | cut -d'"' -f4)"
export SCF_CHAIN
run="$(date +%s%N | cut -c8-16)"
keys="$(mktemp -d)"
trap 'rm -rf "$keys"' EXIT
cp "$SCF_DIR/registrar.key" "$keys/registrar.key"

step() { printf '\n== %s\n' "$*"; }
# line N TEXT: the Nth line of TEXT.
line() { sed -n "${1}p" <<<"$2"; }
# tx PARTY [--field POINTER]... COMMAND FLAGS...: sign as PARTY and submit; print the outcome,
# then each field asked for, one per line.
tx() {
    local who="$1"; shift
    "$SIM" tx --submit "$URL" --signer "$who" --key "$keys/$who.key" --field /outcome "$@"
}
# read PARTY PATH: a signed read on the observer, as PARTY.
read_as() { "$SIM" get --url "$OBSERVER" --as "$1" --key "$keys/$1.key" "$2"; }

acme="acme-$run" parts="parts-$run" tier2="tier2-$run" bank="bank-$run"
carrier="carrier-$run" regulator="regulator-$run"

step "keys and parties: a core enterprise, its supplier, the supplier's supplier, a bank, a carrier, a regulator"
register() {
    local id="$1" role="$2" public outcome
    public="$("$SIM" keygen --out "$keys/$id.key" 2>/dev/null)"
    outcome="$(tx registrar register-party --party-id "$id" --name "$id" --role "$role" \
        --public-key "$public")"
    echo "$id ($role): $outcome"
}
register "$acme" enterprise
register "$parts" enterprise
register "$tier2" enterprise
register "$bank" bank
register "$carrier" logistics
register "$regulator" regulator

step "$bank grants $acme a credit line of 1,000,000 EUR"
tx "$bank" grant-credit-line --line-id "line-$run" --obligor "$acme" --limit 1000000.00 \
    --currency EUR --expires-at-ms +365d

step "$acme orders 1000 bolts at 25 EUR from $parts"
tx "$acme" create-purchase-order --po-id "po-$run" --seller "$parts" --line bolt:1000:25.00 \
    --currency EUR

step "$parts ships them with $carrier; the carrier attests, $acme confirms delivery"
echo "delivery note $run: 1000 bolts" > "$keys/delivery-note.txt"
tx "$parts" record-shipment --shipment-id "sh-$run" --po-id "po-$run" --line bolt:1000 \
    --carrier "$carrier" --document "$keys/delivery-note.txt"
tx "$carrier" confirm-delivery --shipment-id "sh-$run"
tx "$acme" confirm-delivery --shipment-id "sh-$run"

step "$parts invoices 25,000 EUR; $acme accepts it, which mints a receivable token"
echo "invoice $run: 25000.00 EUR" > "$keys/invoice.txt"
tx "$parts" issue-invoice --invoice-id "inv-$run" --po-id "po-$run" --shipment-id "sh-$run" \
    --amount 25000.00 --due-date-ms +60d --document "$keys/invoice.txt"
answer="$(tx "$acme" --field /created_ids/0 accept-invoice --invoice-id "inv-$run" \
    --maturity-ms +90d)"
token="$(line 2 "$answer")"
echo "token $token: 25000.00 EUR owed by $acme to $parts"

step "$parts pays its own supplier $tier2 with 8,000 EUR of it (the token splits)"
answer="$(tx "$parts" --field /created_ids/0 --field /created_ids/1 transfer-token \
    --token-id "$token" --to "$tier2" --amount 8000.00)"
tier2_token="$(line 2 "$answer")" parts_token="$(line 3 "$answer")"
line 1 "$answer"
echo "$tier2 holds $tier2_token (8000.00), $parts keeps $parts_token (17000.00)"

step "$parts tries to sell the whole original token too, though it was split: refused"
if answer="$(tx "$parts" --field /tx_hash --field /reason/code offer-token --token-id "$token" \
    --bank "$bank" --max-annual-rate 0.08 --expires-at-ms +30d)"; then
    echo "walkthrough: the split (retired) token was offered: $answer" >&2
    exit 1
fi
refused_tx="$(line 2 "$answer")" code="$(line 3 "$answer")"
echo "$(line 1 "$answer"): $code"
[[ "$code" == token_not_live ]] || { echo "walkthrough: expected token_not_live" >&2; exit 1; }
echo "-- the attempt is on the chain for auditors, rejected (transaction $refused_tx):"
"$SIM" get --url "$OBSERVER" "/v1/transactions/$refused_tx?consistency=linearizable"

step "$parts sells the rest to $bank at a discount"
answer="$(tx "$parts" --field /created_ids/0 offer-token --token-id "$parts_token" \
    --bank "$bank" --max-annual-rate 0.08 --expires-at-ms +30d)"
offer="$(line 2 "$answer")"
echo "$(line 1 "$answer"): offer $offer"
tx "$bank" discount-token --offer-id "$offer" --annual-rate 0.06
read_as "$bank" "/v1/tokens/$parts_token?consistency=linearizable"

step "who may read what (signed requests, on the regulator's observer)"
echo "-- $regulator reads the invoice:"
read_as "$regulator" "/v1/invoices/inv-$run?consistency=linearizable&purpose=audit"
echo "-- $tier2 checks where its piece came from (its lineage):"
read_as "$tier2" "/v1/tokens/$tier2_token/lineage?consistency=linearizable"
echo "-- $carrier, a stranger to the invoice (it carried the goods only), may not read it:"
if refusal="$(read_as "$carrier" "/v1/invoices/inv-$run" 2>&1)"; then
    echo "walkthrough: the carrier read the invoice, which it must not: $refusal" >&2
    exit 1
fi
echo "$refusal"
[[ "$refusal" == *"HTTP 403"*forbidden* ]] || {
    echo "walkthrough: expected 403 forbidden for the carrier" >&2; exit 1; }

step "$acme pays every holder (before maturity, which the rules allow, rather than wait 90 days)"
tx "$acme" settle-token --token-id "$parts_token" --payment-reference "pay-$run-bank"
echo "-- the second payment is signed offline first, then submitted (twice: applied once):"
"$SIM" tx --signer "$acme" --key "$keys/$acme.key" settle-token --token-id "$tier2_token" \
    --payment-reference "pay-$run-tier2" >"$keys/settle.json"
first="$("$SIM" submit --url "$URL" --field /outcome --field /height "$keys/settle.json")"
again="$("$SIM" submit --url "$URL" --field /outcome --field /height - <"$keys/settle.json")"
echo "$(line 1 "$first") at height $(line 2 "$first"); resubmitted: $(line 1 "$again") at height $(line 2 "$again")"
[[ "$first" == "$again" ]] || { echo "walkthrough: a resubmission was applied again" >&2; exit 1; }
read_as "$acme" "/v1/tokens/$tier2_token?consistency=linearizable"

step "the regulator's observer re-verifies the whole chain, every signature included"
"$SIM" get --url "$OBSERVER" "/v1/audit/verify"
ok="$("$SIM" get --url "$OBSERVER" "/v1/audit/verify" --field /ok)"
[[ "$ok" == "true" ]] || { echo "walkthrough: the audit failed" >&2; exit 1; }
printf '\nwalkthrough: the receivable lived its whole life on the ledger\n'
