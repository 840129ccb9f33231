//! Reading PEM files and building the rustls configurations: the peer link (mutual TLS 1.3),
//! HTTPS (server, optionally requiring client certificates) and HTTPS clients.
//!
//! Invariants:
//! - Every configuration is built with the ring provider passed explicitly, never with the
//!   process-wide default provider, so no other crate's choice of provider can change (or make
//!   ambiguous, and so panic) what is used here.
//! - The only trust anchors are the certificates in the CA file. No system roots, no
//!   verifier that skips a check.
//! - Files are read when a configuration is built, never cached here: building one per
//!   connection makes replacing the files on disk a certificate rotation.
//! - A private key is read only after [`TlsFiles::check_key_permissions`] has passed.
//!
//! This module opens no socket: callers own the IO and hand streams to the acceptors and
//! connectors it returns.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::WebPkiClientVerifier;
use rustls::{ClientConfig, RootCertStore, ServerConfig};
use tokio_rustls::{TlsAcceptor, TlsConnector};

use crate::TlsError;

/// The ALPN protocol of peer links. Both ends insist on it, so a peer dialler that reaches an
/// HTTPS port (which serves the same certificate) fails the handshake instead of speaking raft
/// framing to an HTTP server, and an HTTPS client that reaches a peer port fails likewise.
pub const PEER_ALPN: &[u8] = b"scf-ledger-peer/1";

/// The ALPN protocol of the HTTPS API (HTTP/1.1 only: the API serves nothing else).
pub const HTTPS_ALPN: &[u8] = b"http/1.1";

/// The PEM files of one TLS identity: the CA that identities are checked against, and this
/// identity's certificate (chain) and private key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFiles {
    /// The CA certificate(s) that peers' chains must lead to. Every certificate in the file is a
    /// root, so during a CA rotation it can hold the old and the new CA together.
    pub ca_file: PathBuf,
    /// This identity's certificate, optionally followed by intermediates.
    pub cert_file: PathBuf,
    /// This identity's private key (PKCS#8, SEC1 or PKCS#1 PEM). Must be mode 0600 or stricter.
    pub key_file: PathBuf,
}

/// Whether an HTTPS server asks its clients for a certificate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientAuth {
    /// No client certificate is asked for (the public API).
    None,
    /// A client certificate chained to the CA is asked for but not required, so one port can
    /// serve both; the handler decides, with [`crate::peer_is_operator`], what needs one.
    Optional,
    /// A client certificate chained to the CA is required (the admin API).
    Required,
}

impl TlsFiles {
    /// Refuses a key file that group or others may read or write (`mode & 0o077 != 0`), as ssh
    /// does. Follows symbolic links (a mounted secret is often one) and checks the target.
    pub fn check_key_permissions(&self) -> Result<(), TlsError> {
        check_key_permissions(&self.key_file)
    }

    /// The accepting side of a peer link: TLS 1.3, this node's certificate, and a client
    /// certificate required whose chain leads to the CA. Which node the client is remains to
    /// be checked with [`crate::peer_is_node`].
    ///
    /// Reads the three files now. Build one per accepted connection so that files replaced on
    /// disk take effect without a restart. Note that in TLS 1.3 the dialler finishes its half of
    /// the handshake before the acceptor checks its certificate: a rejected dialler learns it
    /// on its first read.
    pub fn peer_acceptor(&self) -> Result<TlsAcceptor, TlsError> {
        let mut config = self.server_config(ClientAuth::Required, &[&rustls::version::TLS13])?;
        config.alpn_protocols = vec![PEER_ALPN.to_vec()];
        Ok(TlsAcceptor::from(Arc::new(config)))
    }

    /// The dialling side of a peer link: TLS 1.3, this node's certificate presented as a client
    /// certificate, and the server's chain verified against the CA alone.
    ///
    /// Connect with [`crate::node_server_name`]`(expected_id)` as the server name: a listener
    /// holding another node's certificate then fails the handshake. Reads the files now.
    pub fn peer_connector(&self) -> Result<TlsConnector, TlsError> {
        let mut config = self.client_config_with_identity(&[&rustls::version::TLS13])?;
        config.alpn_protocols = vec![PEER_ALPN.to_vec()];
        Ok(TlsConnector::from(Arc::new(config)))
    }

    /// The server side of the HTTPS API: this node's certificate (whose extra names cover the
    /// addresses clients use), TLS 1.3 or 1.2, and client certificates as `client_auth` says.
    /// Reads the files now.
    pub fn https_acceptor(&self, client_auth: ClientAuth) -> Result<TlsAcceptor, TlsError> {
        let mut config = self.server_config(client_auth, rustls::DEFAULT_VERSIONS)?;
        config.alpn_protocols = vec![HTTPS_ALPN.to_vec()];
        Ok(TlsAcceptor::from(Arc::new(config)))
    }

    /// A server configuration with this identity's certificate and the given client checks.
    fn server_config(
        &self,
        client_auth: ClientAuth,
        versions: &[&'static rustls::SupportedProtocolVersion],
    ) -> Result<ServerConfig, TlsError> {
        self.check_key_permissions()?;
        let builder =
            ServerConfig::builder_with_provider(provider()).with_protocol_versions(versions)?;
        let builder = match client_auth {
            ClientAuth::None => builder.with_no_client_auth(),
            ClientAuth::Optional | ClientAuth::Required => {
                let roots = read_roots(&self.ca_file)?;
                let verifier = WebPkiClientVerifier::builder_with_provider(roots, provider());
                let verifier = if client_auth == ClientAuth::Optional {
                    verifier.allow_unauthenticated()
                } else {
                    verifier
                };
                builder.with_client_cert_verifier(verifier.build()?)
            }
        };
        let chain = read_certificates(&self.cert_file)?;
        let key = read_private_key(&self.key_file)?;
        builder.with_single_cert(chain, key).map_err(|source| self.key_mismatch(source))
    }

    /// A client configuration that trusts the CA alone and presents this identity.
    fn client_config_with_identity(
        &self,
        versions: &[&'static rustls::SupportedProtocolVersion],
    ) -> Result<ClientConfig, TlsError> {
        self.check_key_permissions()?;
        let roots = read_roots(&self.ca_file)?;
        let chain = read_certificates(&self.cert_file)?;
        let key = read_private_key(&self.key_file)?;
        ClientConfig::builder_with_provider(provider())
            .with_protocol_versions(versions)?
            .with_root_certificates(roots)
            .with_client_auth_cert(chain, key)
            .map_err(|source| self.key_mismatch(source))
    }

    fn key_mismatch(&self, source: rustls::Error) -> TlsError {
        TlsError::KeyMismatch { cert: self.cert_file.clone(), key: self.key_file.clone(), source }
    }
}

/// An HTTPS client configuration that trusts only the CA(s) in `ca_file` and presents no
/// certificate: for scf-sim, and for a follower forwarding writes to its leader (which can use
/// [`crate::node_server_name`]`(leader_id)` as the server name, whatever its address).
pub fn https_client_config(ca_file: &Path) -> Result<Arc<ClientConfig>, TlsError> {
    let mut config = ClientConfig::builder_with_provider(provider())
        .with_protocol_versions(rustls::DEFAULT_VERSIONS)?
        .with_root_certificates(read_roots(ca_file)?)
        .with_no_client_auth();
    config.alpn_protocols = vec![HTTPS_ALPN.to_vec()];
    Ok(Arc::new(config))
}

/// An HTTPS client configuration that trusts no certificate at all: for a client that was given
/// no CA, so that plain `http://` URLs work and every `https://` one fails to verify (rather
/// than falling back to the system's roots, which never issue node certificates).
pub fn https_client_config_trusting_nothing() -> Result<Arc<ClientConfig>, TlsError> {
    let mut config = ClientConfig::builder_with_provider(provider())
        .with_protocol_versions(rustls::DEFAULT_VERSIONS)?
        .with_root_certificates(RootCertStore::empty())
        .with_no_client_auth();
    config.alpn_protocols = vec![HTTPS_ALPN.to_vec()];
    Ok(Arc::new(config))
}

/// An HTTPS client configuration that trusts only `files.ca_file` and presents the certificate
/// in `files`: for operators (admin clients) calling an API that requires one.
pub fn https_client_config_with_identity(files: &TlsFiles) -> Result<Arc<ClientConfig>, TlsError> {
    let mut config = files.client_config_with_identity(rustls::DEFAULT_VERSIONS)?;
    config.alpn_protocols = vec![HTTPS_ALPN.to_vec()];
    Ok(Arc::new(config))
}

/// The one provider this crate uses. Building it is cheap (a few static tables).
// rustls 0.23.48 deprecated this constructor because ring has no post-quantum key exchange
// (X25519MLKEM768); only aws-lc-rs does, and its C build (cmake, minutes on 2 cores) is what
// this crate exists to keep out. Classical X25519 / P-256 key exchange is the accepted cost.
#[allow(deprecated)]
pub(crate) fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// See [`TlsFiles::check_key_permissions`].
pub(crate) fn check_key_permissions(path: &Path) -> Result<(), TlsError> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let metadata = std::fs::metadata(path)
            .map_err(|source| TlsError::Read { path: path.to_owned(), source })?;
        let mode = metadata.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            return Err(TlsError::KeyPermissions { path: path.to_owned(), mode });
        }
    }
    // Elsewhere there are no mode bits to check; access is the platform's ACLs' business.
    #[cfg(not(unix))]
    let _ = path;
    Ok(())
}

pub(crate) fn read(path: &Path) -> Result<Vec<u8>, TlsError> {
    std::fs::read(path).map_err(|source| TlsError::Read { path: path.to_owned(), source })
}

/// Every certificate in a PEM file, in order; at least one.
fn read_certificates(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    parse_certificates(path, &read(path)?)
}

/// Every certificate in the PEM text `pem` read from `path`, in order; at least one.
pub(crate) fn parse_certificates(
    path: &Path,
    pem: &[u8],
) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let certificates = CertificateDer::pem_slice_iter(pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|source| TlsError::Pem { path: path.to_owned(), source })?;
    if certificates.is_empty() {
        return Err(TlsError::NoCertificate { path: path.to_owned() });
    }
    Ok(certificates)
}

/// The first private key in a PEM file. The caller has checked the file's permissions.
pub(crate) fn read_private_key(path: &Path) -> Result<PrivateKeyDer<'static>, TlsError> {
    let pem = read(path)?;
    PrivateKeyDer::from_pem_slice(&pem).map_err(|source| match source {
        rustls::pki_types::pem::Error::NoItemsFound => {
            TlsError::NoPrivateKey { path: path.to_owned() }
        }
        source => TlsError::Pem { path: path.to_owned(), source },
    })
}

/// The certificates of a CA file as the only trust anchors.
fn read_roots(path: &Path) -> Result<Arc<RootCertStore>, TlsError> {
    let mut roots = RootCertStore::empty();
    for certificate in read_certificates(path)? {
        roots
            .add(certificate)
            .map_err(|source| TlsError::BadCertificate { path: path.to_owned(), source })?;
    }
    Ok(Arc::new(roots))
}
