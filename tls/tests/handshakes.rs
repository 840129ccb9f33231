//! Real TLS handshakes over 127.0.0.1 between configurations built from issued files: who may
//! connect to whom, and what a rotation or a rerun of `issue_cluster` changes.
//!
//! Every wait is bounded by [`WAIT`]; nothing sleeps to synchronise.

use std::io;
use std::net::{IpAddr, Ipv4Addr};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use tls::rustls::pki_types::ServerName;
use tls::rustls::{self, CertificateError};
use tls::tokio_rustls::{TlsAcceptor, TlsConnector, client, server};
use tls::{
    ClientAuth, ClusterCerts, HTTPS_ALPN, PEER_ALPN, TlsError, TlsFiles, https_client_config,
    https_client_config_with_identity, issue_cluster, node_server_name, peer_is_node,
    peer_is_operator, write_private, write_public,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// The longest any step of a test may take.
const WAIT: Duration = Duration::from_secs(10);

/// Both ends of one handshake.
struct Outcome {
    server: io::Result<server::TlsStream<TcpStream>>,
    client: io::Result<client::TlsStream<TcpStream>>,
}

/// Runs one handshake between `acceptor` and `connector` (which expects `name`) on a fresh
/// loopback port.
async fn handshake(
    acceptor: TlsAcceptor,
    connector: TlsConnector,
    name: ServerName<'static>,
) -> Outcome {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let server = tokio::spawn(async move {
        let (stream, _) = listener.accept().await?;
        acceptor.accept(stream).await
    });
    let client = tokio::time::timeout(WAIT, async {
        let stream = TcpStream::connect(address).await?;
        connector.connect(name, stream).await
    })
    .await
    .expect("the client's handshake ends in time");
    let server = tokio::time::timeout(WAIT, server)
        .await
        .expect("the server's handshake ends in time")
        .expect("the server task does not panic");
    Outcome { server, client }
}

/// The rustls error inside an I/O error from a handshake.
fn rustls_error(error: &io::Error) -> Option<&rustls::Error> {
    error.get_ref().and_then(|inner| inner.downcast_ref::<rustls::Error>())
}

/// Asserts that the server refused the client and the client cannot use the connection: in
/// TLS 1.3 the client may finish its half first and learn of the refusal on its first read.
async fn assert_server_refused(outcome: Outcome) -> rustls::Error {
    let error = outcome.server.expect_err("the server refuses the client");
    if let Ok(mut stream) = outcome.client {
        let mut byte = [0u8; 1];
        let read = tokio::time::timeout(WAIT, stream.read(&mut byte)).await.expect("read ends");
        assert!(matches!(read, Err(_) | Ok(0)), "a refused client reads nothing: {read:?}");
    }
    rustls_error(&error).cloned().unwrap_or_else(|| panic!("not a TLS error: {error}"))
}

/// Sends one byte each way and checks that it arrives.
async fn exchange(outcome: Outcome) {
    let mut server = outcome.server.expect("the server completes the handshake");
    let mut client = outcome.client.expect("the client completes the handshake");
    tokio::time::timeout(WAIT, async {
        client.write_all(b"c").await.unwrap();
        client.flush().await.unwrap();
        let mut byte = [0u8; 1];
        server.read_exact(&mut byte).await.unwrap();
        assert_eq!(&byte, b"c");
        server.write_all(b"s").await.unwrap();
        server.flush().await.unwrap();
        client.read_exact(&mut byte).await.unwrap();
        assert_eq!(&byte, b"s");
    })
    .await
    .expect("the bytes cross in time");
}

fn cluster(dir: &Path, ids: &[u64]) -> ClusterCerts {
    issue_cluster(dir, ids, &["127.0.0.1".to_owned(), "localhost".to_owned()]).unwrap()
}

/// A new cluster of `ids` under a CA of its own, issued in a fresh temporary directory (removed
/// when the returned handle is dropped).
fn issued(ids: &[u64]) -> (tempfile::TempDir, ClusterCerts) {
    let dir = tempfile::tempdir().unwrap();
    let certs = cluster(dir.path(), ids);
    (dir, certs)
}

/// Node `id`'s files, trusting `ca_file` instead of its own CA file.
fn trusting(certs: &ClusterCerts, id: u64, ca_file: &Path) -> TlsFiles {
    TlsFiles { ca_file: ca_file.to_owned(), ..certs.nodes[&id].clone() }
}

fn copy(from: &Path, to: &Path, private: bool) {
    let pem = std::fs::read_to_string(from).unwrap();
    if private { write_private(to, &pem).unwrap() } else { write_public(to, &pem).unwrap() }
}

/// Whether `error` says the certificate does not name what the client expected.
fn is_not_valid_for_name(error: &io::Error) -> bool {
    matches!(
        rustls_error(error),
        Some(rustls::Error::InvalidCertificate(
            CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. }
        ))
    )
}

fn mode(path: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

/// Node 1 of a new cluster of three dials node 2's peer listener, expecting to reach `name`.
async fn node_1_dials_node_2(name: ServerName<'static>) -> Outcome {
    let (_dir, certs) = issued(&[1, 2, 3]);
    let acceptor = certs.nodes[&2].peer_acceptor().unwrap();
    handshake(acceptor, certs.nodes[&1].peer_connector().unwrap(), name).await
}

// Goal: node 1 dialling node 2 by name completes mutual TLS; each side can bind the other's
// certificate to its id (and to no other), and bytes cross both ways.
#[tokio::test]
async fn peer_link_binds_node_ids() {
    let outcome = node_1_dials_node_2(node_server_name(2)).await;
    {
        let server = outcome.server.as_ref().expect("the server completes the handshake");
        let accepted = server.get_ref().1;
        assert!(peer_is_node(accepted, 1));
        assert!(!peer_is_node(accepted, 3));
        assert!(!peer_is_node(accepted, 2));
        assert!(!peer_is_operator(accepted));
        assert_eq!(accepted.alpn_protocol(), Some(PEER_ALPN));
        let client = outcome.client.as_ref().expect("the client completes the handshake");
        let dialled = client.get_ref().1;
        assert!(peer_is_node(dialled, 2));
        assert!(!peer_is_node(dialled, 1));
        assert_eq!(dialled.protocol_version(), Some(rustls::ProtocolVersion::TLSv1_3));
    }
    exchange(outcome).await;
}

// Goal: a client that presents no certificate cannot complete a handshake with a peer acceptor.
#[tokio::test]
async fn peer_acceptor_requires_a_client_certificate() {
    let (_dir, certs) = issued(&[1, 2]);
    // Trusts the CA and speaks the peer protocol, but has no certificate to present.
    let mut config = (*https_client_config(&certs.ca_file).unwrap()).clone();
    config.alpn_protocols = vec![PEER_ALPN.to_vec()];
    let outcome = handshake(
        certs.nodes[&2].peer_acceptor().unwrap(),
        TlsConnector::from(Arc::new(config)),
        node_server_name(2),
    )
    .await;
    let error = assert_server_refused(outcome).await;
    assert_eq!(error, rustls::Error::NoCertificatesPresented);
}

// Goal: certificates of another CA are refused both ways: the acceptor refuses such a client,
// and a dialler that trusts another CA refuses the server.
#[tokio::test]
async fn another_ca_is_refused_both_ways() {
    let (_ours_dir, ours) = issued(&[1, 2]);
    let (_theirs_dir, theirs) = issued(&[1, 2]);

    // Their node 1, trusting our CA so that only the acceptor's check can fail.
    let outcome = handshake(
        ours.nodes[&2].peer_acceptor().unwrap(),
        trusting(&theirs, 1, &ours.ca_file).peer_connector().unwrap(),
        node_server_name(2),
    )
    .await;
    let error = assert_server_refused(outcome).await;
    assert_eq!(error, rustls::Error::InvalidCertificate(CertificateError::UnknownIssuer));

    // Our node 1, trusting their CA only.
    let outcome = handshake(
        ours.nodes[&2].peer_acceptor().unwrap(),
        trusting(&ours, 1, &theirs.ca_file).peer_connector().unwrap(),
        node_server_name(2),
    )
    .await;
    let error = outcome.client.expect_err("the dialler refuses the server");
    assert_eq!(
        rustls_error(&error),
        Some(&rustls::Error::InvalidCertificate(CertificateError::UnknownIssuer))
    );
    assert!(outcome.server.is_err());
}

// Goal: a dialler that expects node 3 but reaches node 2's listener fails the handshake.
#[tokio::test]
async fn dialler_refuses_the_wrong_node() {
    let outcome = node_1_dials_node_2(node_server_name(3)).await;
    let error = outcome.client.expect_err("the dialler refuses node 2's certificate");
    assert!(is_not_valid_for_name(&error), "{error}");
    assert!(outcome.server.is_err());
}

// Goal: a key file that group or others can read is refused, by the check and by everything
// that reads a key; 0600 passes; write_private creates 0600, even over a 0644 file.
#[tokio::test]
async fn key_permissions() {
    use std::os::unix::fs::PermissionsExt;
    let parent = tempfile::tempdir().unwrap();
    let dir = parent.path().join("cluster").join("certs");
    let certs = cluster(&dir, &[1, 2]);
    let node = &certs.nodes[&2];
    assert_eq!(mode(&dir), 0o700, "issue_cluster creates its directory private");
    assert_eq!(mode(&node.key_file), 0o600);
    assert_eq!(mode(&certs.ca_key_file), 0o600);
    assert_eq!(mode(&certs.operator.key_file), 0o600);
    node.check_key_permissions().unwrap();

    std::fs::set_permissions(&node.key_file, std::fs::Permissions::from_mode(0o644)).unwrap();
    let refused = node.check_key_permissions().expect_err("0644 is refused");
    assert!(matches!(refused, TlsError::KeyPermissions { mode: 0o644, .. }), "{refused}");
    assert!(refused.to_string().contains("(mode 0o644): chmod 600 it"), "{refused}");
    assert!(matches!(node.peer_acceptor(), Err(TlsError::KeyPermissions { .. })));
    assert!(matches!(node.peer_connector(), Err(TlsError::KeyPermissions { .. })));
    assert!(matches!(node.https_acceptor(ClientAuth::None), Err(TlsError::KeyPermissions { .. })));

    std::fs::set_permissions(&certs.ca_key_file, std::fs::Permissions::from_mode(0o640)).unwrap();
    assert!(matches!(
        tls::Authority::load(&certs.ca_file, &certs.ca_key_file),
        Err(TlsError::KeyPermissions { mode: 0o640, .. })
    ));

    std::fs::set_permissions(&node.key_file, std::fs::Permissions::from_mode(0o600)).unwrap();
    node.check_key_permissions().unwrap();
    node.peer_acceptor().unwrap();

    let fresh = dir.join("fresh-key.pem");
    write_private(&fresh, "secret").unwrap();
    assert_eq!(mode(&fresh), 0o600);
    let loose = dir.join("loose-key.pem");
    std::fs::write(&loose, "old").unwrap();
    std::fs::set_permissions(&loose, std::fs::Permissions::from_mode(0o644)).unwrap();
    write_private(&loose, "secret").unwrap();
    assert_eq!(mode(&loose), 0o600);
    assert_eq!(std::fs::read_to_string(&loose).unwrap(), "secret");
}

// Goal: once ca.pem, node-2.pem and node-2-key.pem are replaced by files of a new CA, an
// acceptor built afterwards accepts clients of the new CA only (one built before is unchanged).
#[tokio::test]
async fn replacing_the_files_rotates_certificates() {
    let (old_dir, old) = issued(&[1, 2]);
    let (new_dir, new) = issued(&[1, 2]);
    let before = old.nodes[&2].peer_acceptor().unwrap();
    let kept_old_ca = new_dir.path().join("old-ca.pem");
    copy(&old.ca_file, &kept_old_ca, false);

    copy(&new.ca_file, &old.ca_file, false);
    copy(&new.nodes[&2].cert_file, &old.nodes[&2].cert_file, false);
    copy(&new.nodes[&2].key_file, &old.nodes[&2].key_file, true);
    let after = || old.nodes[&2].peer_acceptor().unwrap();

    let outcome =
        handshake(after(), new.nodes[&1].peer_connector().unwrap(), node_server_name(2)).await;
    exchange(outcome).await;

    // The old CA's node 1, trusting the new CA so that only the acceptor's check can fail.
    let stale = TlsFiles {
        ca_file: new.ca_file.clone(),
        cert_file: old_dir.path().join("node-1.pem"),
        key_file: old_dir.path().join("node-1-key.pem"),
    };
    let outcome = handshake(after(), stale.peer_connector().unwrap(), node_server_name(2)).await;
    let error = assert_server_refused(outcome).await;
    assert_eq!(error, rustls::Error::InvalidCertificate(CertificateError::UnknownIssuer));

    // The acceptor built before the rotation is a snapshot: it still accepts the old CA's
    // node 1 (trusting the old CA, kept aside) and does not see the new files.
    let old_trust = TlsFiles { ca_file: kept_old_ca, ..stale };
    let outcome = handshake(before, old_trust.peer_connector().unwrap(), node_server_name(2)).await;
    exchange(outcome).await;
}

// Goal: running issue_cluster again on the same directory keeps its CA: the second run's
// certificates chain to the first run's CA. A directory with half a CA is refused.
#[tokio::test]
async fn issue_cluster_reuses_its_ca() {
    let dir = tempfile::tempdir().unwrap();
    let kept = tempfile::tempdir().unwrap();
    let first = cluster(dir.path(), &[1, 2]);
    let first_ca = std::fs::read_to_string(&first.ca_file).unwrap();
    let first_ca_file = kept.path().join("first-ca.pem");
    write_public(&first_ca_file, &first_ca).unwrap();
    let first_cert = std::fs::read_to_string(&first.nodes[&2].cert_file).unwrap();

    let second = cluster(dir.path(), &[1, 2]);
    assert_eq!(second, first, "the same paths");
    assert_eq!(std::fs::read_to_string(&second.ca_file).unwrap(), first_ca);
    assert_ne!(std::fs::read_to_string(&second.nodes[&2].cert_file).unwrap(), first_cert);

    let outcome = handshake(
        trusting(&second, 2, &first_ca_file).peer_acceptor().unwrap(),
        trusting(&second, 1, &first_ca_file).peer_connector().unwrap(),
        node_server_name(2),
    )
    .await;
    exchange(outcome).await;

    std::fs::remove_file(&second.ca_key_file).unwrap();
    assert!(matches!(issue_cluster(dir.path(), &[1], &[]), Err(TlsError::PartialAuthority { .. })));
}

// Goal: an HTTPS client that trusts the CA reaches a node's HTTPS acceptor by IP address, an
// IP subject alternative name; an address the certificate does not name is refused.
#[tokio::test]
async fn https_by_ip_address() {
    let (_dir, certs) = issued(&[1, 2]);
    let client = || TlsConnector::from(https_client_config(&certs.ca_file).unwrap());
    let acceptor = || certs.nodes[&2].https_acceptor(ClientAuth::None).unwrap();

    let loopback = ServerName::IpAddress(IpAddr::V4(Ipv4Addr::LOCALHOST).into());
    let outcome = handshake(acceptor(), client(), loopback).await;
    {
        let server = outcome.server.as_ref().expect("the server completes the handshake");
        assert_eq!(server.get_ref().1.alpn_protocol(), Some(HTTPS_ALPN));
        assert!(!peer_is_operator(server.get_ref().1));
    }
    exchange(outcome).await;

    let other = ServerName::IpAddress(IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2)).into());
    let outcome = handshake(acceptor(), client(), other).await;
    let error = outcome.client.expect_err("127.0.0.2 is not in the certificate");
    assert!(is_not_valid_for_name(&error), "{error}");
}

// Goal: an admin HTTPS acceptor requires a certificate chained to the CA and lets the handler
// tell an operator from a node; an optional one also lets clients without one in.
#[tokio::test]
async fn https_client_certificates() {
    let (_dir, certs) = issued(&[1, 2]);
    let node = &certs.nodes[&2];
    let anonymous = || TlsConnector::from(https_client_config(&certs.ca_file).unwrap());
    let operator =
        || TlsConnector::from(https_client_config_with_identity(&certs.operator).unwrap());

    let outcome = handshake(
        node.https_acceptor(ClientAuth::Required).unwrap(),
        operator(),
        node_server_name(2),
    )
    .await;
    {
        let server = outcome.server.as_ref().expect("the operator is let in");
        assert!(peer_is_operator(server.get_ref().1));
        assert!(!peer_is_node(server.get_ref().1, 1));
    }
    exchange(outcome).await;

    let outcome = handshake(
        node.https_acceptor(ClientAuth::Required).unwrap(),
        anonymous(),
        node_server_name(2),
    )
    .await;
    assert_eq!(assert_server_refused(outcome).await, rustls::Error::NoCertificatesPresented);

    let outcome = handshake(
        node.https_acceptor(ClientAuth::Optional).unwrap(),
        anonymous(),
        node_server_name(2),
    )
    .await;
    assert!(!peer_is_operator(outcome.server.as_ref().expect("optional lets it in").get_ref().1));
    exchange(outcome).await;
}

// Goal: peer links and HTTPS cannot be mistaken for each other even though a node serves the
// same certificate on both: their ALPN protocols differ and both ends insist.
#[tokio::test]
async fn peer_and_https_ports_do_not_mix() {
    let (_dir, certs) = issued(&[1, 2]);
    let node = &certs.nodes[&2];

    let outcome = handshake(
        node.https_acceptor(ClientAuth::None).unwrap(),
        certs.nodes[&1].peer_connector().unwrap(),
        node_server_name(2),
    )
    .await;
    let error = outcome.server.expect_err("the server finds no common protocol");
    assert_eq!(rustls_error(&error), Some(&rustls::Error::NoApplicationProtocol));
    assert!(outcome.client.is_err());

    let outcome = handshake(
        node.peer_acceptor().unwrap(),
        TlsConnector::from(https_client_config_with_identity(&certs.nodes[&1]).unwrap()),
        node_server_name(2),
    )
    .await;
    let error = outcome.server.expect_err("the server finds no common protocol");
    assert_eq!(rustls_error(&error), Some(&rustls::Error::NoApplicationProtocol));
    assert!(outcome.client.is_err());
}
