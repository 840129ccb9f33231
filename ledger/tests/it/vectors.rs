//! The test vectors in the docs, recomputed from the docs' own text, so that the docs cannot
//! drift from the code: a client written from the README alone gets the same bytes.

use ledger::client::ReadRequest;
use ledger::crypto::{SignatureBytes, SigningKey, sha256};
use ledger::pb::{RegisterParty, Role, SignedTx, TxBody, tx_body::Command};
use ledger::{Genesis, Ledger, MemStore, chain};
use prost::Message;

const README: &str = include_str!("../../../README.md");
const LEDGER_RULES: &str = include_str!("../../../docs/ledger-rules.md");

/// The `name: value` lines between `<!-- {marker} -->` and `<!-- /{marker} -->` in `doc`.
fn vector(doc: &str, marker: &str) -> Vec<(String, String)> {
    let open = format!("<!-- {marker} -->");
    let close = format!("<!-- /{marker} -->");
    let start = doc.find(&open).unwrap_or_else(|| panic!("the doc has no {open}"));
    let end = doc.find(&close).unwrap_or_else(|| panic!("the doc has no {close}"));
    doc[start + open.len()..end]
        .lines()
        .filter_map(|line| line.split_once(':'))
        .map(|(name, value)| (name.trim().to_owned(), value.trim().to_owned()))
        .collect()
}

fn field<'a>(fields: &'a [(String, String)], name: &str) -> &'a str {
    let found = fields.iter().find(|(n, _)| n == name);
    &found.unwrap_or_else(|| panic!("the vector has no {name:?}")).1
}

/// The README's signed read: its text, digest and signature follow from its inputs.
#[test]
fn the_readmes_signed_read_is_what_the_code_signs() {
    let fields = vector(README, "signed-read-vector");
    let (method, path) = field(&fields, "request")
        .split_once(", no body")
        .and_then(|(request, _)| request.split_once(' '))
        .expect("request: METHOD PATH, no body");
    let node_id = field(&fields, "node_id").parse().expect("a node id");
    let time_ms = field(&fields, "time").parse().expect("a time");
    let request = ReadRequest {
        chain_id: field(&fields, "chain_id"),
        node_id,
        party: field(&fields, "party"),
        method,
        path_and_query: path,
        nonce: field(&fields, "nonce"),
        time_ms,
        body: b"",
    };
    let secret = hex::decode(field(&fields, "secret key")).expect("hex");
    let key = SigningKey::from_bytes(&secret).expect("a secret key");
    let digest = hex::encode(request.digest());
    let signature = hex::encode(key.sign_digest(&request.digest()).to_bytes());
    let computed = [
        ("text", request.text().replace('\n', "\\n")),
        ("digest", digest.clone()),
        ("signature", signature.clone()),
    ];
    for (name, value) in &computed {
        assert_eq!(field(&fields, name), value, "README's {name}; the code computes {value}");
    }
    // The signature is the compact, low-S form the node verifies, not DER.
    let parsed = SignatureBytes::parse(&hex::decode(&signature).expect("hex")).expect("compact");
    assert_eq!(parsed.verify(&request.digest(), &key.public_key()), Ok(()));
    assert_eq!(signature.len(), 128);
}

/// SHA-256 of the concatenation of `parts`, written out here rather than taken from the crate,
/// so that the layouts below are the docs' and not merely the code's.
fn h(parts: &[&[u8]]) -> [u8; 32] {
    sha256(&parts.concat())
}

fn hex32(text: &str) -> [u8; 32] {
    hex::decode(text).ok().and_then(|b| b.try_into().ok()).expect("64 hex digits")
}

/// The ledger rules' chain vector: every value follows from its inputs by the layouts the
/// section spells out (each recomputed here by hand), and the state machine builds the same
/// block. Each mismatch is reported with what the docs should say.
#[test]
fn the_ledger_rules_chain_vector_is_what_the_ledger_builds() {
    // The layouts built by hand below are these, word for word (line breaks aside).
    let prose = LEDGER_RULES.split_whitespace().collect::<Vec<_>>().join(" ");
    for layout in [
        "`SHA-256(\"scf-genesis-v1\" ‖ len(chain_id) u32 ‖ chain_id (UTF-8) ‖ registrar key [33] ‖ time_ms u64)`",
        "`\"scf-block-v1\" ‖ version u32 ‖ height u64 ‖ prev_hash [32] ‖ time_ms u64 ‖ tx_root [32] ‖ results_hash [32] ‖ state_hash [32] ‖ tx_count u32`",
        "164 bytes in all",
        "Leaf `i` is `SHA-256(tx_hash ‖ SHA-256(signature))`",
        "of one leaf `L` is `SHA-256(0x00 ‖ L)`",
        "`H(0x01 ‖ H(0x01 ‖ H(0x00 ‖ a) ‖ H(0x00 ‖ b)) ‖ H(0x00 ‖ c))`",
        "`\"scf-results-v2\" ‖ count u32`",
        "`len(tx_hash) u32 ‖ tx_hash ‖ applied u8 (0 or 1) ‖ len(reject_code) u32 ‖ reject_code ‖ count(created_ids) u32`",
        "`len(id) u32 ‖ id` for each created id",
        "every integer below is big-endian",
    ] {
        assert!(prose.contains(layout), "docs/ledger-rules.md no longer says {layout}");
    }
    let fields = vector(LEDGER_RULES, "chain-vector");
    let get = |name: &str| field(&fields, name).to_owned();
    let number = |name: &str| -> u64 { get(name).parse().expect("a number") };
    let mut computed: Vec<(&str, String)> = Vec::new();

    let chain_id = get("chain_id");
    let registrar = SigningKey::from_bytes(&hex::decode(get("registrar secret")).expect("hex"))
        .expect("a secret key");
    let registrar_key = registrar.public_key().to_bytes();
    computed.push(("registrar key", hex::encode(registrar_key)));
    let genesis_time = number("genesis time_ms");
    // "scf-genesis-v1" ‖ len(chain_id) u32 ‖ chain_id ‖ registrar key [33] ‖ time_ms u64
    let genesis_hash = h(&[
        b"scf-genesis-v1",
        &u32::try_from(chain_id.len()).unwrap().to_be_bytes(),
        chain_id.as_bytes(),
        &registrar_key,
        &genesis_time.to_be_bytes(),
    ]);
    let genesis = Genesis {
        chain_id: chain_id.clone(),
        registrar_public_key: registrar.public_key(),
        time_ms: genesis_time,
    };
    assert_eq!(genesis.hash(), genesis_hash, "the code's genesis hash is the documented layout");
    computed.push(("genesis hash", hex::encode(genesis_hash)));

    // tx command: register_party ID "NAME" ROLE, key of secret HEX
    let command = get("tx command");
    let rest = command.strip_prefix("register_party ").expect("a register_party command");
    let (party_id, rest) = rest.split_once(" \"").expect("ID \"NAME\"");
    let (name, rest) = rest.split_once("\" ").expect("\"NAME\" ROLE");
    let (role, secret) = rest.split_once(", key of secret ").expect("ROLE, key of secret HEX");
    assert_eq!(role, "enterprise");
    let party = SigningKey::from_bytes(&hex::decode(secret).expect("hex")).expect("a secret");
    computed.push(("party key", hex::encode(party.public_key().to_bytes())));
    let body = TxBody {
        chain_id: chain_id.clone(),
        signer: ledger::chain::REGISTRAR_ID.to_owned(),
        valid_until_ms: number("tx valid_until_ms"),
        nonce: number("tx nonce"),
        command: Some(Command::RegisterParty(RegisterParty {
            party_id: party_id.to_owned(),
            name: name.to_owned(),
            role: Role::Enterprise as i32,
            public_key: party.public_key().to_bytes().to_vec(),
        })),
    };
    let body_bytes = body.encode_to_vec();
    computed.push(("body", hex::encode(&body_bytes)));
    let tx_hash = sha256(&body_bytes);
    computed.push(("tx_hash", hex::encode(tx_hash)));
    // Signed over the digest itself: SHA-256 once, not twice.
    let signature = registrar.sign_digest(&tx_hash).to_bytes();
    assert_eq!(registrar.sign(&body_bytes).to_bytes(), signature, "sign hashes the body once");
    computed.push(("signature", hex::encode(signature)));
    let signed = SignedTx { body: body_bytes, signature: signature.to_vec() };

    let ledger = Ledger::new(genesis);
    let mut store = MemStore::new();
    store.commit(&ledger.genesis_writes());
    let applied = ledger
        .apply_block(&store, number("block time_ms"), vec![signed.clone()])
        .expect("the block applies");
    let header = applied.block.header.clone().expect("a header");
    let result = &applied.block.results[0];
    assert!(result.applied, "the vector's transaction is applied: {result:?}");
    assert_eq!(header.height, number("block height"));
    assert_eq!(header.prev_hash, genesis_hash, "block 1 points back to the genesis hash");

    let leaf = h(&[&tx_hash, &sha256(&signed.signature)]);
    computed.push(("leaf", hex::encode(leaf)));
    let tx_root = h(&[&[0x00], &leaf]);
    assert_eq!(header.tx_root, tx_root, "one leaf L gives SHA-256(0x00 ‖ L)");
    computed.push(("tx_root", hex::encode(tx_root)));
    // One applied result: no code, no created id.
    let results_hash = h(&[
        b"scf-results-v2",
        &1u32.to_be_bytes(),
        &32u32.to_be_bytes(),
        &tx_hash,
        &[1],
        &0u32.to_be_bytes(),
        &0u32.to_be_bytes(),
    ]);
    assert_eq!(header.results_hash, results_hash, "the documented results layout");
    computed.push(("results_hash", hex::encode(results_hash)));
    computed.push(("state_hash", hex::encode(&header.state_hash)));
    let preimage = [
        &b"scf-block-v1"[..],
        &header.version.to_be_bytes(),
        &header.height.to_be_bytes(),
        &header.prev_hash,
        &header.time_ms.to_be_bytes(),
        &header.tx_root,
        &header.results_hash,
        &header.state_hash,
        &header.tx_count.to_be_bytes(),
    ]
    .concat();
    assert_eq!(preimage.len(), 164, "the documented width of the block-hash layout");
    let block_hash = sha256(&preimage);
    assert_eq!(applied.hash, block_hash, "the code's block hash is the documented layout");
    computed.push(("block hash", hex::encode(block_hash)));

    // merkle leaves: sha256("a") sha256("b") sha256("c")
    let leaves: Vec<[u8; 32]> = get("merkle leaves")
        .split_whitespace()
        .map(|leaf| {
            let text = leaf.strip_prefix("sha256(\"").and_then(|l| l.strip_suffix("\")"));
            sha256(text.expect("sha256(\"TEXT\")").as_bytes())
        })
        .collect();
    assert_eq!(leaves.len(), 3, "the example in the text has three leaves");
    let node = |l: &[u8; 32]| h(&[&[0x00], l]);
    let root =
        h(&[&[0x01], &h(&[&[0x01], &node(&leaves[0]), &node(&leaves[1])]), &node(&leaves[2])]);
    assert_eq!(chain::merkle_root(&leaves), root, "the code's tree is RFC 6962's");
    computed.push(("merkle root", hex::encode(root)));

    let wrong: Vec<String> = computed
        .iter()
        .filter(|(name, value)| field(&fields, name) != value)
        .map(|(name, value)| format!("{name}: {value}"))
        .collect();
    assert!(wrong.is_empty(), "the docs' vector should say:\n{}", wrong.join("\n"));
    // The vector's hashes are what a client submits and looks up.
    assert_eq!(hex32(&get("tx_hash")), ledger::tx::tx_hash(&signed));
    let decoded = ledger::tx::DecodedTx::from_signed(&signed).expect("a canonical body");
    assert_eq!(decoded.signature.verify(&tx_hash, &registrar.public_key()), Ok(()));
}
