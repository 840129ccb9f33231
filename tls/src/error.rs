//! The one error type of this crate: what went wrong reading, checking, building or issuing.
//!
//! Every variant that concerns a file names it, so an operator can act on the message alone.
//! None of them ever carries key material.

use std::path::PathBuf;

/// Why a TLS configuration could not be built, or a certificate not issued or written.
///
/// All of these are fatal for the operation that returned them: retrying without changing the
/// files (or the arguments) gives the same answer.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TlsError {
    /// A file could not be read.
    #[error("cannot read {}: {source}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// What the operating system said.
        source: std::io::Error,
    },

    /// A file or directory could not be written or created.
    #[error("cannot write {}: {source}", path.display())]
    Write {
        /// The file or directory.
        path: PathBuf,
        /// What the operating system said.
        source: std::io::Error,
    },

    /// A file is not well-formed PEM.
    #[error("{} is not valid PEM: {source}", path.display())]
    Pem {
        /// The file.
        path: PathBuf,
        /// What the PEM parser said.
        source: rustls::pki_types::pem::Error,
    },

    /// A file that should hold a certificate holds none.
    #[error("no certificate in {}", path.display())]
    NoCertificate {
        /// The file.
        path: PathBuf,
    },

    /// A file that should hold a private key holds none.
    #[error("no private key in {}", path.display())]
    NoPrivateKey {
        /// The file.
        path: PathBuf,
    },

    /// A private key file that group or others may read or write (ssh refuses those too).
    #[error(
        "key file {} readable by group/others (mode {mode:#o}): chmod 600 it",
        path.display()
    )]
    KeyPermissions {
        /// The key file.
        path: PathBuf,
        /// Its permission bits (`mode & 0o777`).
        mode: u32,
    },

    /// A certificate that rustls refuses to trust or to use (for example as a CA root).
    #[error("bad certificate in {}: {source}", path.display())]
    BadCertificate {
        /// The file it came from.
        path: PathBuf,
        /// Why rustls refused it.
        source: rustls::Error,
    },

    /// A certificate and the private key meant to go with it do not match, or the key is not
    /// one the ring provider can use.
    #[error("the key in {} does not fit the certificate in {}: {source}", key.display(), cert.display())]
    KeyMismatch {
        /// The certificate file.
        cert: PathBuf,
        /// The key file.
        key: PathBuf,
        /// What rustls found.
        source: rustls::Error,
    },

    /// rustls refused a configuration (protocol versions, certificate and key, ...).
    #[error("TLS configuration refused: {0}")]
    Rustls(#[from] rustls::Error),

    /// The client certificate verifier could not be built (for example: no CA roots).
    #[error("client certificate verifier refused: {0}")]
    Verifier(#[from] rustls::server::VerifierBuilderError),

    /// rcgen could not make or sign a certificate, or parse a CA certificate or key.
    #[error("cannot issue certificate: {0}")]
    Issue(#[from] rcgen::Error),

    /// An extra subject alternative name that is neither an IP address nor a valid DNS name.
    #[error("{san:?} is neither an IP address nor a valid DNS name")]
    BadSubjectAltName {
        /// The name as given.
        san: String,
    },

    /// An extra subject alternative name inside the `scf-ledger` namespace, which only
    /// [`crate::node_name`] and [`crate::OPERATOR_NAME`] may use: allowing it would let one
    /// certificate claim two identities.
    #[error("{san:?} is reserved: names under scf-ledger identify nodes and operators")]
    ReservedSubjectAltName {
        /// The name as given.
        san: String,
    },

    /// Exactly one of a CA's certificate and key files exists, so the CA can be neither
    /// reused nor safely replaced.
    #[error(
        "{} exists but {} does not: restore it or remove both to make a new CA",
        present.display(),
        missing.display()
    )]
    PartialAuthority {
        /// The file that exists.
        present: PathBuf,
        /// The file that is missing.
        missing: PathBuf,
    },
}
