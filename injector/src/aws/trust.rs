//! Which certificate authorities the injector trusts: the image's CA bundle, or only those of
//! `AWS_CA_BUNDLE` when the pod sets it (as the AWS CLI does; the SDK for Rust does not read
//! that variable itself). The webhook copies the variable and the mount that holds its file
//! into the init container, so a pod behind a TLS-inspecting proxy or a private endpoint works.

use std::ffi::OsStr;
use std::path::Path;

use aws_smithy_http_client::tls::{TlsContext, TrustStore};
use aws_smithy_runtime_api::client::http::SharedHttpClient;
use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject;

use super::https;

/// The largest bundle read: Debian's whole bundle is about 220 KiB.
const MAX_BUNDLE_BYTES: u64 = 4 << 20;

/// The HTTPS client for every call (STS included): trusting only the certificates of the file
/// `AWS_CA_BUNDLE` names when the pod sets it, else the image's CA bundle as the SDK finds it. A
/// bundle that cannot be read, or holds no valid certificate, is an error that names the file:
/// the SDK's client would otherwise stop the process on the first connection.
pub fn https_client(ca_bundle: Option<&OsStr>) -> Result<SharedHttpClient, String> {
    let Some(path) = ca_bundle.filter(|path| !path.is_empty()).map(Path::new) else {
        return Ok(https::client(TlsContext::default()));
    };
    let pem = read_bundle(path)?;
    let context = TlsContext::builder()
        .with_trust_store(TrustStore::empty().with_pem_certificate(pem))
        .build()
        .map_err(|e| format!("AWS_CA_BUNDLE {}: {e}", path.display()))?;
    Ok(https::client(context))
}

/// The bundle's text, once every certificate in it has been checked as the TLS client will
/// load it.
fn read_bundle(path: &Path) -> Result<Vec<u8>, String> {
    let problem = |what: String| {
        format!(
            "InvalidCABundle: AWS_CA_BUNDLE {}: {what}; point AWS_CA_BUNDLE at a PEM file of \
             CA certificates mounted in the container, or remove it to trust the image's CA bundle",
            path.display()
        )
    };
    let size = std::fs::metadata(path)
        .map_err(|e| problem(format!("cannot be read ({e})")))?
        .len();
    if size > MAX_BUNDLE_BYTES {
        return Err(problem(format!(
            "is {size} bytes, over the limit of {MAX_BUNDLE_BYTES} bytes"
        )));
    }
    let pem = std::fs::read(path).map_err(|e| problem(format!("cannot be read ({e})")))?;
    let mut roots = rustls::RootCertStore::empty();
    for (i, certificate) in CertificateDer::pem_slice_iter(&pem).enumerate() {
        let certificate = certificate
            .map_err(|e| problem(format!("certificate {} is not valid PEM ({e})", i + 1)))?;
        roots
            .add(certificate)
            .map_err(|e| problem(format!("certificate {} cannot be used ({e})", i + 1)))?;
    }
    if roots.is_empty() {
        return Err(problem("holds no PEM certificate".to_owned()));
    }
    Ok(pem)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bundle(text: &[u8]) -> (tempfile::TempDir, std::path::PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ca.pem");
        std::fs::write(&path, text).unwrap();
        (dir, path)
    }

    #[test]
    fn no_variable_gives_a_client_of_the_image_bundle() {
        assert!(https_client(None).is_ok());
        assert!(https_client(Some(OsStr::new(""))).is_ok());
    }

    #[test]
    fn a_bundle_without_a_usable_certificate_is_refused_naming_the_file() {
        let missing = https_client(Some(OsStr::new("/nonexistent/ca.pem"))).unwrap_err();
        assert!(
            missing.contains("/nonexistent/ca.pem") && missing.contains("cannot be read"),
            "{missing}"
        );
        let (_dir, empty) = bundle(b"not a certificate\n");
        let message = https_client(Some(empty.as_os_str())).unwrap_err();
        assert!(message.contains("holds no PEM certificate"), "{message}");
        let (_dir, broken) = bundle(
            b"-----BEGIN CERTIFICATE-----\nbm90IGEgY2VydGlmaWNhdGU=\n-----END CERTIFICATE-----\n",
        );
        let message = https_client(Some(broken.as_os_str())).unwrap_err();
        assert!(
            message.contains("certificate 1 cannot be used"),
            "{message}"
        );
        assert!(message.starts_with("InvalidCABundle: "), "{message}");
    }

    #[test]
    fn a_valid_bundle_gives_a_client() {
        let ca = system_bundle();
        let (_dir, path) = bundle(ca.as_bytes());
        assert!(https_client(Some(path.as_os_str())).is_ok());
    }

    /// Debian's bundle, present wherever the tests run (the image carries the same file).
    fn system_bundle() -> String {
        std::fs::read_to_string("/etc/ssl/certs/ca-certificates.crt")
            .expect("the system CA bundle at /etc/ssl/certs/ca-certificates.crt")
    }
}
