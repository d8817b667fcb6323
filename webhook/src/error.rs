//! The crate's one error type.

/// Everything that can go wrong in the webhook outside a denial (a denial is an answer, not an error).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{0}")]
    Input(String),
    /// A mutation flag that cannot work (checked at startup).
    #[error("{0}")]
    Config(String),
    /// `webhook inject`: a document the webhook would deny, with the admission message.
    #[error("{document}: {message}")]
    Denied { document: String, message: String },
    /// `webhook policy`: a flag or a pod that no policy can be written for.
    #[error("{0}")]
    Policy(String),
    /// `webhook inject`: the result cannot be written.
    #[error("{0}")]
    Output(String),
    /// A certificate or key file that cannot be served.
    #[error("{}: {message}", path.display())]
    Tls {
        path: std::path::PathBuf,
        message: String,
    },
    /// A file that cannot be read or written. The I/O error is part of the message rather than
    /// a source, so a report of the chain does not say it twice.
    #[error("{}: {error}", path.display())]
    File {
        path: std::path::PathBuf,
        error: std::io::Error,
    },
    /// `webhook certs` could not make a certificate.
    #[error("certificate generation: {0}")]
    CertGen(String),
    /// A listener that cannot be bound or served.
    #[error("{0}")]
    Serve(String),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
