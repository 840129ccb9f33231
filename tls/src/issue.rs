//! Issuing the cluster's certificates with rcgen: a CA ([`Authority`]), node certificates,
//! operator certificates, and the files they live in.
//!
//! Invariants:
//! - A node certificate names `node-{id}.scf-ledger` (plus extra names for HTTPS, none of
//!   them under `scf-ledger`) and serves both as server and as client; an operator certificate
//!   names `operator.scf-ledger` and is a client certificate only. Nothing else is issued.
//! - The CA is valid for ten years and a leaf for one, both from an hour before now (so that a
//!   peer whose clock is a little behind does not see a certificate from the future).
//! - A private key file is created with mode 0600 from its first byte, and every file is
//!   replaced by a rename, so a reader (an acceptor built during a rotation) sees the old file
//!   or the new one, never half of one.
//!
//! It never prints, logs or `Debug`-formats a private key.

use std::collections::BTreeMap;
use std::fmt::{self, Write as _};
use std::io::Write as _;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose, SanType,
};
use rustls::pki_types::ServerName;

use crate::config::{check_key_permissions, parse_certificates, provider, read, read_private_key};
use crate::identity::{OPERATOR_NAME, is_reserved, node_name};
use crate::{TlsError, TlsFiles};

/// How long a CA certificate is valid: ten years.
pub const CA_VALIDITY_DAYS: i64 = 3_650;

/// How long a node or operator certificate is valid: one year.
pub const LEAF_VALIDITY_DAYS: i64 = 365;

/// How far before "now" a certificate's validity starts, to absorb clock skew between the
/// machine that issues it and the ones that check it.
const BACKDATE_MINUTES: i64 = 60;

/// The start of the common name of a CA that [`issue_cluster`] creates; the rest is 16 hex
/// digits of its public key. Two clusters' CAs thus never share a name, so a certificate from
/// the wrong one fails as "unknown issuer", and `openssl x509 -issuer` tells them apart.
pub const CLUSTER_CA_NAME: &str = "scf-ledger CA";

/// A certificate authority: its certificate and the key that signs what it issues.
pub struct Authority {
    /// The CA certificate as PEM, for `ca.pem`: as issued, or the loaded file's text unchanged
    /// (so a file that also holds an old CA during a rotation keeps it).
    cert_pem: String,
    /// The CA's name, key identifier and signing key, as rcgen signs with them.
    issuer: Issuer<'static, KeyPair>,
}

impl fmt::Debug for Authority {
    /// Shows nothing of the key.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Authority").finish_non_exhaustive()
    }
}

/// A certificate just issued and its new private key, both PEM.
#[derive(Clone)]
pub struct Issued {
    /// The certificate.
    pub cert_pem: String,
    /// The private key (PKCS#8). Write it with [`write_private`].
    pub key_pem: String,
}

impl fmt::Debug for Issued {
    /// Shows the certificate, not the key.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Issued").field("cert_pem", &self.cert_pem).finish_non_exhaustive()
    }
}

impl Issued {
    /// Writes the certificate with [`write_public`] and the key with [`write_private`].
    pub fn write(&self, cert_file: &Path, key_file: &Path) -> Result<(), TlsError> {
        write_private(key_file, &self.key_pem)?;
        write_public(cert_file, &self.cert_pem)
    }
}

impl Authority {
    /// A new self-signed CA named `common_name`, with a new ECDSA P-256 key. It may sign leaf
    /// certificates only (path length 0).
    pub fn new(common_name: &str) -> Result<Self, TlsError> {
        Self::generate(|_| common_name.to_owned())
    }

    /// A new CA whose common name `name` derives from its new key.
    fn generate(name: impl FnOnce(&KeyPair) -> String) -> Result<Self, TlsError> {
        let key = KeyPair::generate()?;
        let mut params = CertificateParams::default();
        params.distinguished_name = common_name_only(&name(&key));
        params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        set_validity(&mut params, CA_VALIDITY_DAYS);
        let cert_pem = params.self_signed(&key)?.pem();
        Ok(Self { cert_pem, issuer: Issuer::new(params, key) })
    }

    /// The CA whose certificate is the first in `cert_file` and whose key is in `key_file`, so
    /// that more certificates can be issued later from the same CA. Refuses a key file others
    /// can read, and a key that is not the certificate's.
    pub fn load(cert_file: &Path, key_file: &Path) -> Result<Self, TlsError> {
        check_key_permissions(key_file)?;
        let cert_pem = String::from_utf8(read(cert_file)?)
            .map_err(|_| TlsError::NoCertificate { path: cert_file.to_owned() })?;
        let certificate = parse_certificates(cert_file, cert_pem.as_bytes())?.swap_remove(0);
        let key_der = read_private_key(key_file)?;
        let mismatch = |source| TlsError::KeyMismatch {
            cert: cert_file.to_owned(),
            key: key_file.to_owned(),
            source,
        };
        rustls::sign::CertifiedKey::from_der(
            vec![certificate.clone()],
            key_der.clone_key(),
            &provider(),
        )
        .map_err(mismatch)?;
        let key = KeyPair::try_from(&key_der)?;
        let issuer = Issuer::from_ca_cert_der(&certificate, key)?;
        Ok(Self { cert_pem, issuer })
    }

    /// The CA certificate, PEM: the contents of every node's CA file.
    #[must_use]
    pub fn cert_pem(&self) -> &str {
        &self.cert_pem
    }

    /// Writes the CA certificate with [`write_public`] and its key with [`write_private`].
    pub fn write(&self, cert_file: &Path, key_file: &Path) -> Result<(), TlsError> {
        write_private(key_file, &self.issuer.key().serialize_pem())?;
        write_public(cert_file, &self.cert_pem)
    }

    /// A certificate for node `id`: DNS name [`node_name`]`(id)`, common name
    /// `scf-ledger node {id}`, usable as server and as client. Each of `extra_sans` (for HTTPS
    /// clients that reach the node by address or host name) becomes an IP address name if it
    /// parses as one and a DNS name otherwise; names under `scf-ledger` are refused.
    pub fn issue_node(&self, id: u64, extra_sans: &[String]) -> Result<Issued, TlsError> {
        let name = node_name(id);
        let mut names = vec![SanType::DnsName(name.as_str().try_into()?)];
        for san in extra_sans {
            names.push(extra_san(san)?);
        }
        self.issue(
            &format!("scf-ledger node {id}"),
            names,
            vec![ExtendedKeyUsagePurpose::ServerAuth, ExtendedKeyUsagePurpose::ClientAuth],
        )
    }

    /// A certificate for an operator (admin client): DNS name [`OPERATOR_NAME`], client only.
    pub fn issue_operator(&self) -> Result<Issued, TlsError> {
        self.issue(
            "scf-ledger operator",
            vec![SanType::DnsName(OPERATOR_NAME.try_into()?)],
            vec![ExtendedKeyUsagePurpose::ClientAuth],
        )
    }

    fn issue(
        &self,
        common_name: &str,
        names: Vec<SanType>,
        usages: Vec<ExtendedKeyUsagePurpose>,
    ) -> Result<Issued, TlsError> {
        let mut params = CertificateParams::default();
        params.distinguished_name = common_name_only(common_name);
        params.subject_alt_names = names;
        params.is_ca = IsCa::ExplicitNoCa;
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = usages;
        params.use_authority_key_identifier_extension = true;
        set_validity(&mut params, LEAF_VALIDITY_DAYS);
        let key = KeyPair::generate()?;
        let certificate = params.signed_by(&key, &self.issuer)?;
        Ok(Issued { cert_pem: certificate.pem(), key_pem: key.serialize_pem() })
    }
}

/// An extra name for a node certificate: an IP address, or a DNS name outside `scf-ledger`.
fn extra_san(san: &str) -> Result<SanType, TlsError> {
    if let Ok(address) = san.parse::<IpAddr>() {
        return Ok(SanType::IpAddress(address));
    }
    if !matches!(ServerName::try_from(san), Ok(ServerName::DnsName(_))) {
        return Err(TlsError::BadSubjectAltName { san: san.to_owned() });
    }
    if is_reserved(san) {
        return Err(TlsError::ReservedSubjectAltName { san: san.to_owned() });
    }
    Ok(SanType::DnsName(san.try_into()?))
}

fn common_name_only(common_name: &str) -> DistinguishedName {
    let mut name = DistinguishedName::new();
    name.push(DnType::CommonName, common_name);
    name
}

fn set_validity(params: &mut CertificateParams, days: i64) {
    let now = time::OffsetDateTime::now_utc();
    params.not_before = now - time::Duration::minutes(BACKDATE_MINUTES);
    params.not_after = now + time::Duration::days(days);
}

/// Writes a private key (or any secret) to `path`: a new file created with mode 0600, then
/// renamed over `path`, so the secret is never readable by others, not even for an instant,
/// and a reader never sees a half-written file.
pub fn write_private(path: &Path, pem: &str) -> Result<(), TlsError> {
    write_replacing(path, pem, 0o600)
}

/// Writes a certificate to `path` with mode 0644, replacing any file there by a rename.
pub fn write_public(path: &Path, pem: &str) -> Result<(), TlsError> {
    write_replacing(path, pem, 0o644)
}

/// Distinguishes the temporary files of concurrent writes within one process.
static TEMPORARY_FILES: AtomicU64 = AtomicU64::new(0);

fn write_replacing(path: &Path, contents: &str, mode: u32) -> Result<(), TlsError> {
    let failed = |source| TlsError::Write { path: path.to_owned(), source };
    let Some(file_name) = path.file_name() else {
        return Err(failed(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            "the path names no file",
        )));
    };
    let directory = match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent,
        _ => Path::new("."),
    };
    let temporary = directory.join(format!(
        ".{}.{}-{}.tmp",
        file_name.to_string_lossy(),
        std::process::id(),
        TEMPORARY_FILES.fetch_add(1, Ordering::Relaxed)
    ));
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, mode);
    #[cfg(not(unix))]
    let _ = mode;
    let written = options.open(&temporary).and_then(|mut file| {
        file.write_all(contents.as_bytes())?;
        file.sync_all()
    });
    let renamed = written.and_then(|()| std::fs::rename(&temporary, path));
    if let Err(source) = renamed {
        // Best effort: the write already failed, and a stray temporary file is harmless.
        let _ = std::fs::remove_file(&temporary);
        return Err(failed(source));
    }
    // The rename is durable once the directory is synced (not possible on every platform).
    #[cfg(unix)]
    std::fs::File::open(directory).and_then(|d| d.sync_all()).map_err(failed)?;
    Ok(())
}

/// The files [`issue_cluster`] wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterCerts {
    /// `ca.pem`.
    pub ca_file: PathBuf,
    /// `ca-key.pem`: keep it off the nodes in production.
    pub ca_key_file: PathBuf,
    /// Each node's files (`node-{id}.pem`, `node-{id}-key.pem`, with `ca.pem`), by id.
    pub nodes: BTreeMap<u64, TlsFiles>,
    /// The operator's files (`operator.pem`, `operator-key.pem`, with `ca.pem`).
    pub operator: TlsFiles,
}

/// Writes the certificates of a cluster into `dir` (created with mode 0700 if missing): the CA
/// (`ca.pem`, `ca-key.pem`), a certificate for each of `node_ids` with `extra_sans` (see
/// [`Authority::issue_node`]) and one for an operator. A CA already in `dir` is reused, so
/// re-running keeps the cluster's trust; node and operator certificates are issued anew.
pub fn issue_cluster(
    dir: &Path,
    node_ids: &[u64],
    extra_sans: &[String],
) -> Result<ClusterCerts, TlsError> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(dir).map_err(|source| TlsError::Write { path: dir.to_owned(), source })?;

    let ca_file = dir.join("ca.pem");
    let ca_key_file = dir.join("ca-key.pem");
    let exists = |path: &Path| {
        path.try_exists().map_err(|source| TlsError::Read { path: path.to_owned(), source })
    };
    let authority = match (exists(&ca_file)?, exists(&ca_key_file)?) {
        (true, true) => Authority::load(&ca_file, &ca_key_file)?,
        (false, false) => {
            let authority = Authority::generate(|key| {
                // Skips the first byte of the public key: for P-256 it is always 0x04.
                let mut name = format!("{CLUSTER_CA_NAME} ");
                for byte in key.public_key_raw().iter().skip(1).take(8) {
                    write!(name, "{byte:02x}").expect("writing to a String cannot fail");
                }
                name
            })?;
            authority.write(&ca_file, &ca_key_file)?;
            authority
        }
        (true, false) => {
            return Err(TlsError::PartialAuthority { present: ca_file, missing: ca_key_file });
        }
        (false, true) => {
            return Err(TlsError::PartialAuthority { present: ca_key_file, missing: ca_file });
        }
    };

    let files = |stem: &str| TlsFiles {
        ca_file: ca_file.clone(),
        cert_file: dir.join(format!("{stem}.pem")),
        key_file: dir.join(format!("{stem}-key.pem")),
    };
    let mut nodes = BTreeMap::new();
    for &id in node_ids {
        let node = files(&format!("node-{id}"));
        authority.issue_node(id, extra_sans)?.write(&node.cert_file, &node.key_file)?;
        nodes.insert(id, node);
    }
    let operator = files("operator");
    authority.issue_operator()?.write(&operator.cert_file, &operator.key_file)?;
    Ok(ClusterCerts { ca_file, ca_key_file, nodes, operator })
}

#[cfg(test)]
mod tests {
    use super::*;

    // Goal: extra names become IP or DNS names, and names that could claim an identity or are
    // not names at all are refused.
    #[test]
    fn extra_names() {
        assert!(matches!(extra_san("127.0.0.1"), Ok(SanType::IpAddress(_))));
        assert!(matches!(extra_san("::1"), Ok(SanType::IpAddress(_))));
        assert!(matches!(extra_san("ledger.example.com"), Ok(SanType::DnsName(_))));
        assert!(matches!(
            extra_san("node-2.scf-ledger"),
            Err(TlsError::ReservedSubjectAltName { .. })
        ));
        assert!(matches!(
            extra_san("OPERATOR.scf-ledger"),
            Err(TlsError::ReservedSubjectAltName { .. })
        ));
        assert!(matches!(extra_san("not a name"), Err(TlsError::BadSubjectAltName { .. })));
        assert!(matches!(extra_san(""), Err(TlsError::BadSubjectAltName { .. })));
    }
}
