//! Who a certificate names: the DNS names that identify nodes and operators, and the checks that
//! bind a verified peer certificate to one of them.
//!
//! A handshake proves that the peer's chain leads to the cluster CA; it does not say *which*
//! node the peer is. [`peer_is_node`] and [`peer_is_operator`] answer that from the end-entity
//! certificate's subject alternative names, the way a browser matches a host name.
//!
//! Invariants: a node's only identity is the DNS name [`node_name`]`(id)`; an operator's is
//! [`OPERATOR_NAME`]; no other certificate we issue carries a name under [`NAMESPACE`].
//! These checks never verify a chain themselves: they must only be asked about a connection
//! whose handshake (with this crate's verifiers) has completed.

use rustls::pki_types::{CertificateDer, ServerName};

/// The DNS suffix under which every identity of the cluster lives. Names in it are reserved:
/// [`crate::Authority::issue_node`] refuses them as extra names.
pub const NAMESPACE: &str = "scf-ledger";

/// The DNS name in an operator's (admin client's) certificate.
pub const OPERATOR_NAME: &str = "operator.scf-ledger";

/// The DNS name in node `id`'s certificate: `node-{id}.scf-ledger`.
///
/// A dialler passes it (see [`node_server_name`]) as the server name it expects, so that a
/// listener holding another node's certificate fails the handshake.
#[must_use]
pub fn node_name(id: u64) -> String {
    format!("node-{id}.{NAMESPACE}")
}

/// [`node_name`]`(id)` as the [`ServerName`] a dialler expects when it connects to node `id`.
#[must_use]
pub fn node_server_name(id: u64) -> ServerName<'static> {
    ServerName::try_from(node_name(id))
        .expect("node-{id}.scf-ledger is a valid DNS name for every u64 id")
}

/// Whether the peer of a completed handshake presented a certificate valid for node `id`.
///
/// Takes any rustls connection (`&ServerConnection` and `&ClientConnection` deref to
/// [`rustls::CommonState`]); with tokio-rustls, `stream.get_ref().1`. False when the peer
/// presented no certificate at all.
#[must_use = "an unchecked identity is no identity"]
pub fn peer_is_node(conn: &rustls::CommonState, id: u64) -> bool {
    certificates_name(conn.peer_certificates(), &node_name(id))
}

/// Whether the peer of a completed handshake presented an operator's certificate
/// ([`OPERATOR_NAME`]). See [`peer_is_node`].
#[must_use = "an unchecked identity is no identity"]
pub fn peer_is_operator(conn: &rustls::CommonState) -> bool {
    certificates_name(conn.peer_certificates(), OPERATOR_NAME)
}

/// Whether the end-entity certificate (the first) of a verified chain is valid for `name`.
fn certificates_name(chain: Option<&[CertificateDer<'static>]>, name: &str) -> bool {
    let Some(end_entity) = chain.and_then(<[_]>::first) else { return false };
    let Ok(certificate) = webpki::EndEntityCert::try_from(end_entity) else { return false };
    let Ok(name) = ServerName::try_from(name) else { return false };
    certificate.verify_is_valid_for_subject_name(&name).is_ok()
}

/// Whether `name` (a DNS name, any case, with or without the final dot) lies in [`NAMESPACE`].
pub(crate) fn is_reserved(name: &str) -> bool {
    let name = name.strip_suffix('.').unwrap_or(name).to_ascii_lowercase();
    name == NAMESPACE || name.ends_with(&format!(".{NAMESPACE}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    // Goal: the names are exactly the ones the transport and the certificates agree on.
    #[test]
    fn names() {
        assert_eq!(node_name(7), "node-7.scf-ledger");
        assert_eq!(node_server_name(u64::MAX).to_str(), format!("node-{}.scf-ledger", u64::MAX));
        assert!(is_reserved("node-3.scf-ledger"));
        assert!(is_reserved("Operator.SCF-Ledger."));
        assert!(is_reserved("scf-ledger"));
        assert!(!is_reserved("scf-ledger.example.com"));
        assert!(!is_reserved("my-scf-ledger"));
    }

    // Goal: no certificate, or garbage, never counts as an identity.
    #[test]
    fn no_certificate_is_nobody() {
        assert!(!certificates_name(None, &node_name(1)));
        assert!(!certificates_name(Some(&[]), &node_name(1)));
        let garbage = [CertificateDer::from(vec![0x30, 0x00])];
        assert!(!certificates_name(Some(&garbage), &node_name(1)));
    }
}
