//! The serving certificate: loading a PEM pair, the resolver rustls asks on every handshake, and
//! the reloader that swaps in a new pair when the files change.
//!
//! A Secret volume is updated by swapping its `..data` symlink, so the file names stay the same
//! while their contents change; polling the contents catches that and any other way of replacing
//! the files, without depending on which inotify events a given volume type emits.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use arc_swap::ArcSwap;
use rustls::ServerConfig;
use rustls::crypto::CryptoProvider;
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

use super::metrics::Metrics;
use crate::{Error, Result};

/// Where the serving certificate chain and its private key are.
#[derive(Clone, Debug)]
pub struct CertPaths {
    pub cert: PathBuf,
    pub key: PathBuf,
}

/// A parsed, consistent certificate chain and key, ready to serve.
#[derive(Clone, Debug)]
pub struct ServingCert {
    pub certified: Arc<CertifiedKey>,
    /// The end-entity certificate's notAfter, in Unix seconds.
    pub not_after: i64,
    /// The same, as the certificate writes it, for logs.
    pub not_after_text: String,
    pub subject: String,
}

/// The two files' bytes as last read: the reloader compares them to notice a change.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Contents {
    cert: Vec<u8>,
    key: Vec<u8>,
}

fn tls_error(path: &Path, message: impl Into<String>) -> Error {
    Error::Tls {
        path: path.to_path_buf(),
        message: message.into(),
    }
}

fn read(path: &Path) -> Result<Vec<u8>> {
    std::fs::read(path).map_err(|error| Error::File {
        path: path.to_path_buf(),
        error,
    })
}

/// Reads both files consistently. A Secret volume update swaps `..data` and then deletes the old
/// directory, so a read can fail or straddle the swap; reading again right away sees the new
/// files, and the certificate is read again after the key to notice a swap between the two.
pub fn read_pair(paths: &CertPaths) -> Result<Contents> {
    let mut attempt = 0;
    loop {
        attempt += 1;
        let read_once = || -> Result<(Contents, bool)> {
            let cert = read(&paths.cert)?;
            let key = read(&paths.key)?;
            let steady = read(&paths.cert)? == cert;
            Ok((Contents { cert, key }, steady))
        };
        match read_once() {
            Ok((contents, true)) => return Ok(contents),
            // Still changing after a few tries: parse what is there; a mismatch is reported and
            // the next poll tries again.
            Ok((contents, false)) if attempt >= 3 => return Ok(contents),
            Err(e) if attempt >= 3 => return Err(e),
            Ok(_) | Err(_) => {}
        }
    }
}

/// Parses a PEM certificate chain and private key and checks that they belong together.
/// Errors name the file at fault; none quotes the key.
pub fn parse(
    paths: &CertPaths,
    contents: &Contents,
    provider: &CryptoProvider,
) -> Result<ServingCert> {
    let chain = CertificateDer::pem_slice_iter(&contents.cert)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| tls_error(&paths.cert, format!("not a PEM certificate chain: {e}")))?;
    let Some(leaf) = chain.first() else {
        return Err(tls_error(
            &paths.cert,
            "no certificate found (expected a PEM \"CERTIFICATE\" block)",
        ));
    };
    let (_, parsed) = x509_parser::parse_x509_certificate(leaf).map_err(|e| {
        tls_error(
            &paths.cert,
            format!("the first certificate does not parse: {e}"),
        )
    })?;
    let not_after = parsed.validity().not_after;
    let (not_after_unix, not_after_text) = (not_after.timestamp(), not_after.to_string());
    let subject = parsed.subject().to_string();

    let key = PrivateKeyDer::from_pem_slice(&contents.key).map_err(|e| match e {
        rustls_pki_types::pem::Error::NoItemsFound => tls_error(
            &paths.key,
            "no private key found (expected a PEM PKCS#8, RSA or EC private key)",
        ),
        // The details of a PEM error could quote the file; the key's file gets none.
        _ => tls_error(&paths.key, "not a valid PEM private key"),
    })?;
    let certified = CertifiedKey::from_der(chain, key, provider).map_err(|e| match e {
        rustls::Error::InconsistentKeys(_) => tls_error(
            &paths.key,
            format!(
                "the private key does not match the certificate in {}",
                paths.cert.display()
            ),
        ),
        other => tls_error(
            &paths.key,
            format!("the private key cannot be used: {other}"),
        ),
    })?;
    Ok(ServingCert {
        certified: Arc::new(certified),
        not_after: not_after_unix,
        not_after_text,
        subject,
    })
}

/// Reads and parses the pair: what `serve` does at startup, where any error is fatal.
pub fn load(paths: &CertPaths, provider: &CryptoProvider) -> Result<(ServingCert, Contents)> {
    let contents = read_pair(paths)?;
    let serving = parse(paths, &contents, provider)?;
    Ok((serving, contents))
}

/// Hands rustls the current certificate on every handshake; the reloader replaces it atomically,
/// so a handshake gets either the old pair or the new one, never a mix.
#[derive(Debug)]
pub struct Resolver {
    current: ArcSwap<CertifiedKey>,
}

impl Resolver {
    pub fn new(certified: Arc<CertifiedKey>) -> Self {
        Self {
            current: ArcSwap::new(certified),
        }
    }

    pub fn set(&self, certified: Arc<CertifiedKey>) {
        self.current.store(certified);
    }

    #[cfg(test)]
    pub fn current(&self) -> Arc<CertifiedKey> {
        self.current.load_full()
    }
}

impl ResolvesServerCert for Resolver {
    fn resolve(&self, _client_hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.current.load_full())
    }
}

/// The TLS configuration of the webhook listener: TLS 1.3 and 1.2 only, HTTP/2 and HTTP/1.1.
pub fn server_config(
    resolver: Arc<Resolver>,
    provider: Arc<CryptoProvider>,
) -> Result<ServerConfig> {
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .map_err(|e| Error::Serve(format!("TLS configuration: {e}")))?
        .with_no_client_auth()
        .with_cert_resolver(resolver);
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(config)
}

/// What one look at the files found.
#[derive(Debug)]
pub enum Check {
    /// Same bytes as last time.
    Unchanged,
    /// A new, valid pair, now served.
    Reloaded(ServingCert),
    /// Changed files that cannot be served; the last good pair stays.
    Rejected(Error),
    /// The files could not be read (the same failure is reported once).
    Unreadable(Error),
}

/// Watches the certificate files and swaps a new valid pair into the resolver.
#[derive(Debug)]
pub struct Reloader {
    paths: CertPaths,
    provider: Arc<CryptoProvider>,
    resolver: Arc<Resolver>,
    seen: Contents,
    last_read_error: Option<String>,
}

impl Reloader {
    /// `seen` is what the served pair was loaded from.
    pub fn new(
        paths: CertPaths,
        provider: Arc<CryptoProvider>,
        resolver: Arc<Resolver>,
        seen: Contents,
    ) -> Self {
        Self {
            paths,
            provider,
            resolver,
            seen,
            last_read_error: None,
        }
    }

    /// Looks at the files once and swaps in a changed valid pair.
    pub fn check(&mut self) -> Check {
        let contents = match read_pair(&self.paths) {
            Ok(contents) => {
                self.last_read_error = None;
                contents
            }
            Err(e) => {
                let message = e.to_string();
                if self.last_read_error.as_deref() == Some(message.as_str()) {
                    return Check::Unchanged;
                }
                self.last_read_error = Some(message);
                return Check::Unreadable(e);
            }
        };
        if contents == self.seen {
            return Check::Unchanged;
        }
        // Remember the new bytes even when they are rejected, so a bad pair is reported once.
        self.seen = contents;
        match parse(&self.paths, &self.seen, &self.provider) {
            Ok(serving) => {
                self.resolver.set(Arc::clone(&serving.certified));
                Check::Reloaded(serving)
            }
            Err(e) => Check::Rejected(e),
        }
    }

    /// Polls the files every `interval`, logging and counting each change, until the task is
    /// dropped.
    pub async fn run(mut self, interval: Duration, metrics: Arc<Metrics>) {
        let mut ticker = tokio::time::interval(interval);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        ticker.tick().await;
        loop {
            ticker.tick().await;
            match self.check() {
                Check::Unchanged => {}
                Check::Reloaded(serving) => {
                    metrics.observe_certificate_reload(true);
                    metrics.set_certificate_expiry(serving.not_after);
                    warn_if_expired(&serving);
                    tracing::info!(
                        cert = %self.paths.cert.display(),
                        subject = %serving.subject,
                        not_after = %serving.not_after_text,
                        not_after_unix = serving.not_after,
                        "serving a new certificate"
                    );
                }
                Check::Rejected(e) | Check::Unreadable(e) => {
                    metrics.observe_certificate_reload(false);
                    tracing::warn!(error = %e, "certificate files changed but cannot be served; keeping the current certificate");
                }
            }
        }
    }
}

/// Logs a warning when a certificate is already past its notAfter: it still gets served (the
/// files are what the operator gave), but clients will refuse it.
pub fn warn_if_expired(serving: &ServingCert) {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
        .unwrap_or(0);
    if serving.not_after < now {
        tracing::warn!(
            not_after = %serving.not_after_text,
            "the serving certificate has expired; the API server will refuse it"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::certs;

    fn provider() -> Arc<CryptoProvider> {
        Arc::new(rustls::crypto::aws_lc_rs::default_provider())
    }

    fn paths() -> CertPaths {
        CertPaths {
            cert: PathBuf::from("/certs/tls.crt"),
            key: PathBuf::from("/certs/tls.key"),
        }
    }

    fn bundle() -> certs::Bundle {
        certs::generate(&certs::CertRequest::for_service("svc", "ns")).expect("certificates")
    }

    #[test]
    fn parses_a_generated_pair_and_reads_its_expiry() {
        let bundle = bundle();
        let contents = Contents {
            cert: bundle.cert_pem.into_bytes(),
            key: bundle.key_pem.into_bytes(),
        };
        let serving = parse(&paths(), &contents, &provider()).expect("valid pair");
        let now = i64::try_from(
            SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .unwrap()
                .as_secs(),
        )
        .unwrap();
        let days = (serving.not_after - now) / 86_400;
        assert!((364..=365).contains(&days), "notAfter {days} days away");
        assert_eq!(serving.certified.cert.len(), 1);
    }

    #[test]
    fn a_key_of_another_certificate_is_refused_naming_the_key_file() {
        let (a, b) = (bundle(), bundle());
        let contents = Contents {
            cert: a.cert_pem.into_bytes(),
            key: b.key_pem.into_bytes(),
        };
        let err = parse(&paths(), &contents, &provider()).unwrap_err();
        assert_eq!(
            err.to_string(),
            "/certs/tls.key: the private key does not match the certificate in /certs/tls.crt"
        );
    }

    #[test]
    fn garbage_files_are_refused_naming_the_file() {
        let good = bundle();
        let garbage = Contents {
            cert: b"not a certificate".to_vec(),
            key: good.key_pem.clone().into_bytes(),
        };
        let err = parse(&paths(), &garbage, &provider()).unwrap_err();
        assert!(
            err.to_string()
                .starts_with("/certs/tls.crt: no certificate found"),
            "{err}"
        );

        let no_key = Contents {
            cert: good.cert_pem.clone().into_bytes(),
            key: b"-----BEGIN PRIVATE KEY-----\n%%%%\n-----END PRIVATE KEY-----\n".to_vec(),
        };
        let err = parse(&paths(), &no_key, &provider()).unwrap_err();
        assert_eq!(
            err.to_string(),
            "/certs/tls.key: not a valid PEM private key"
        );

        let empty_key = Contents {
            cert: good.cert_pem.into_bytes(),
            key: Vec::new(),
        };
        let err = parse(&paths(), &empty_key, &provider()).unwrap_err();
        assert!(
            err.to_string()
                .starts_with("/certs/tls.key: no private key found"),
            "{err}"
        );
    }

    #[test]
    fn a_certificate_that_is_not_x509_is_refused() {
        let good = bundle();
        let contents = Contents {
            cert: b"-----BEGIN CERTIFICATE-----\nAAEC\n-----END CERTIFICATE-----\n".to_vec(),
            key: good.key_pem.into_bytes(),
        };
        let err = parse(&paths(), &contents, &provider()).unwrap_err();
        assert!(
            err.to_string()
                .starts_with("/certs/tls.crt: the first certificate does not parse"),
            "{err}"
        );
    }

    #[test]
    fn the_reloader_swaps_valid_pairs_and_keeps_the_last_good_one() {
        let dir = std::env::temp_dir().join(format!("tls-reloader-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let paths = CertPaths {
            cert: dir.join("tls.crt"),
            key: dir.join("tls.key"),
        };
        let write = |b: &certs::Bundle| {
            std::fs::write(&paths.cert, &b.cert_pem).unwrap();
            std::fs::write(&paths.key, &b.key_pem).unwrap();
        };
        let first = bundle();
        write(&first);
        let (serving, seen) = load(&paths, &provider()).unwrap();
        let resolver = Arc::new(Resolver::new(serving.certified));
        let mut reloader = Reloader::new(paths.clone(), provider(), Arc::clone(&resolver), seen);
        assert!(matches!(reloader.check(), Check::Unchanged));

        let second = bundle();
        write(&second);
        assert!(matches!(reloader.check(), Check::Reloaded(_)));
        assert_eq!(
            resolver.current().cert[0].as_ref(),
            second_der(&second).as_slice()
        );

        std::fs::write(&paths.cert, "garbage").unwrap();
        assert!(matches!(reloader.check(), Check::Rejected(_)));
        // Reported once, and the served certificate is still the second one.
        assert!(matches!(reloader.check(), Check::Unchanged));
        assert_eq!(
            resolver.current().cert[0].as_ref(),
            second_der(&second).as_slice()
        );

        std::fs::remove_file(&paths.cert).unwrap();
        assert!(matches!(reloader.check(), Check::Unreadable(_)));
        assert!(matches!(reloader.check(), Check::Unchanged));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    fn second_der(b: &certs::Bundle) -> Vec<u8> {
        CertificateDer::from_pem_slice(b.cert_pem.as_bytes())
            .unwrap()
            .as_ref()
            .to_vec()
    }
}
