//! `webhook certs`: a self-signed CA and a serving certificate for the webhook's Service, for
//! clusters without cert-manager, and for tests. Writes the PEM files, a `kubernetes.io/tls`
//! Secret manifest and the base64 CA bundle the MutatingWebhookConfiguration needs.

use std::collections::BTreeMap;
use std::fs;
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use base64::Engine;
use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose,
};
use time::{Duration, OffsetDateTime};

use crate::{Error, Result};

/// What the certificates are for.
#[derive(clap::Args, Clone, Debug)]
pub struct CertRequest {
    /// Name of the webhook's Service.
    #[arg(
        long,
        env = "SECRETS_INJECTOR_SERVICE",
        default_value = "secrets-injector"
    )]
    pub service: String,
    /// Namespace of the webhook's Service (and of the Secret manifest).
    #[arg(
        long,
        env = "SECRETS_INJECTOR_NAMESPACE",
        default_value = "secrets-injector"
    )]
    pub namespace: String,
    /// One more DNS name or IP address for the serving certificate (repeatable).
    #[arg(
        long = "extra-san",
        env = "SECRETS_INJECTOR_EXTRA_SAN",
        value_delimiter = ','
    )]
    pub extra_sans: Vec<String>,
    /// Validity of the serving certificate, in days.
    #[arg(long, env = "SECRETS_INJECTOR_DAYS", default_value_t = 365)]
    pub days: u32,
    /// Validity of the CA certificate, in days.
    #[arg(long, env = "SECRETS_INJECTOR_CA_DAYS", default_value_t = 3650)]
    pub ca_days: u32,
}

/// `webhook certs` flags.
#[derive(clap::Args, Clone, Debug)]
pub struct CertsArgs {
    #[command(flatten)]
    pub request: CertRequest,
    /// Name of the Secret in `secret.yaml`.
    #[arg(
        long,
        env = "SECRETS_INJECTOR_SECRET_NAME",
        default_value = "secrets-injector-tls"
    )]
    pub secret_name: String,
    /// Directory to write ca.crt, tls.crt, tls.key, secret.yaml and ca-bundle.txt into.
    #[arg(long, env = "SECRETS_INJECTOR_OUT_DIR", default_value = ".")]
    pub out_dir: PathBuf,
}

/// The generated PEM texts.
#[derive(Clone, Debug)]
pub struct Bundle {
    pub ca_pem: String,
    pub cert_pem: String,
    pub key_pem: String,
}

impl CertRequest {
    /// The defaults for a Service, as the command line gives them.
    pub fn for_service(service: &str, namespace: &str) -> Self {
        Self {
            service: service.to_owned(),
            namespace: namespace.to_owned(),
            extra_sans: Vec::new(),
            days: 365,
            ca_days: 3650,
        }
    }

    /// The names the API server may use for the Service, then the extra ones.
    pub fn subject_alt_names(&self) -> Vec<String> {
        let (svc, ns) = (&self.service, &self.namespace);
        let mut names = vec![
            svc.clone(),
            format!("{svc}.{ns}"),
            format!("{svc}.{ns}.svc"),
            format!("{svc}.{ns}.svc.cluster.local"),
        ];
        for extra in &self.extra_sans {
            if !names.contains(extra) {
                names.push(extra.clone());
            }
        }
        names
    }

    fn validate(&self) -> Result<()> {
        for (flag, value) in [
            ("--service", &self.service),
            ("--namespace", &self.namespace),
        ] {
            if !is_dns_label(value) {
                return Err(Error::CertGen(format!(
                    "{flag} {value:?} is not a valid Kubernetes name (lowercase letters, digits \
                     and '-', starting and ending with a letter or digit, at most 63 characters)"
                )));
            }
        }
        if self.days == 0 {
            return Err(Error::CertGen("--days must be at least 1".into()));
        }
        if self.days > self.ca_days {
            return Err(Error::CertGen(format!(
                "--days {} is longer than the CA's --ca-days {}: the serving certificate would \
                 outlive its CA",
                self.days, self.ca_days
            )));
        }
        Ok(())
    }
}

fn is_dns_label(s: &str) -> bool {
    let bytes = s.as_bytes();
    !bytes.is_empty()
        && bytes.len() <= 63
        && bytes
            .iter()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'-')
        && bytes[0] != b'-'
        && bytes[bytes.len() - 1] != b'-'
}

fn gen_error(what: &str, e: rcgen::Error) -> Error {
    Error::CertGen(format!("{what}: {e}"))
}

/// Makes a new CA (ECDSA P-256) and a serving certificate it signs, valid from an hour ago (for
/// clock skew) for the requested number of days.
pub fn generate(request: &CertRequest) -> Result<Bundle> {
    request.validate()?;
    let now = OffsetDateTime::now_utc();
    let not_before = now - Duration::hours(1);

    let ca_key = KeyPair::generate().map_err(|e| gen_error("CA key", e))?;
    let mut ca_params = CertificateParams::default();
    // The time in the name tells CAs of different runs apart, for people and for clients
    // that look issuers up by name.
    ca_params.distinguished_name = name(&format!(
        "{} webhook CA {}",
        request.service,
        now.unix_timestamp()
    ));
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    ca_params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    ca_params.not_before = not_before;
    ca_params.not_after = now + Duration::days(i64::from(request.ca_days));
    let ca_cert = ca_params
        .self_signed(&ca_key)
        .map_err(|e| gen_error("CA certificate", e))?;
    let issuer = Issuer::new(ca_params, ca_key);

    let key = KeyPair::generate().map_err(|e| gen_error("serving key", e))?;
    let mut params = CertificateParams::new(request.subject_alt_names())
        .map_err(|e| gen_error("subject alternative names", e))?;
    params.distinguished_name = name(&format!("{}.{}.svc", request.service, request.namespace));
    params.is_ca = IsCa::ExplicitNoCa;
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    params.use_authority_key_identifier_extension = true;
    params.not_before = not_before;
    params.not_after = now + Duration::days(i64::from(request.days));
    let cert = params
        .signed_by(&key, &issuer)
        .map_err(|e| gen_error("serving certificate", e))?;

    Ok(Bundle {
        ca_pem: ca_cert.pem(),
        cert_pem: cert.pem(),
        key_pem: key.serialize_pem(),
    })
}

fn name(common_name: &str) -> DistinguishedName {
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, common_name);
    dn
}

/// The `kubernetes.io/tls` Secret holding the pair and the CA, as YAML.
pub fn secret_manifest(secret_name: &str, namespace: &str, bundle: &Bundle) -> Result<String> {
    let data = BTreeMap::from([
        (
            "ca.crt".to_owned(),
            ByteString(bundle.ca_pem.clone().into_bytes()),
        ),
        (
            "tls.crt".to_owned(),
            ByteString(bundle.cert_pem.clone().into_bytes()),
        ),
        (
            "tls.key".to_owned(),
            ByteString(bundle.key_pem.clone().into_bytes()),
        ),
    ]);
    let secret = Secret {
        metadata: ObjectMeta {
            name: Some(secret_name.to_owned()),
            namespace: Some(namespace.to_owned()),
            labels: Some(BTreeMap::from([(
                "app.kubernetes.io/name".to_owned(),
                "secrets-injector".to_owned(),
            )])),
            ..ObjectMeta::default()
        },
        type_: Some("kubernetes.io/tls".to_owned()),
        data: Some(data),
        ..Secret::default()
    };
    serde_saphyr::to_string(&secret).map_err(|e| Error::CertGen(format!("Secret manifest: {e}")))
}

/// The CA certificate as the `caBundle` field of a webhook configuration wants it.
pub fn ca_bundle(bundle: &Bundle) -> String {
    base64::engine::general_purpose::STANDARD.encode(&bundle.ca_pem)
}

/// Generates and writes everything into `args.out_dir`; returns the files written.
pub fn run(args: &CertsArgs) -> Result<Vec<PathBuf>> {
    let bundle = generate(&args.request)?;
    let secret = secret_manifest(&args.secret_name, &args.request.namespace, &bundle)?;
    fs::create_dir_all(&args.out_dir).map_err(|error| Error::File {
        path: args.out_dir.clone(),
        error,
    })?;
    let files = [
        ("ca.crt", bundle.ca_pem.clone(), 0o644),
        ("tls.crt", bundle.cert_pem.clone(), 0o644),
        ("tls.key", bundle.key_pem.clone(), 0o600),
        ("secret.yaml", secret, 0o600),
        ("ca-bundle.txt", format!("{}\n", ca_bundle(&bundle)), 0o644),
    ];
    let mut written = Vec::with_capacity(files.len());
    for (name, text, mode) in files {
        let path = args.out_dir.join(name);
        write_file(&path, text.as_bytes(), mode)?;
        written.push(path);
    }
    Ok(written)
}

/// Writes a file with the given mode, also when it already existed with a looser one.
fn write_file(path: &Path, bytes: &[u8], mode: u32) -> Result<()> {
    let file_error = |error| Error::File {
        path: path.to_path_buf(),
        error,
    };
    let mut file = fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(mode)
        .open(path)
        .map_err(file_error)?;
    file.set_permissions(fs::Permissions::from_mode(mode))
        .map_err(file_error)?;
    file.write_all(bytes).map_err(file_error)?;
    file.sync_all().map_err(file_error)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rustls::client::danger::ServerCertVerifier;
    use x509_parser::extensions::GeneralName;

    #[test]
    fn names_cover_every_form_of_the_service_name() {
        let mut request = CertRequest::for_service("hook", "infra");
        request.extra_sans = vec!["127.0.0.1".into(), "hook.example.com".into(), "hook".into()];
        assert_eq!(
            request.subject_alt_names(),
            [
                "hook",
                "hook.infra",
                "hook.infra.svc",
                "hook.infra.svc.cluster.local",
                "127.0.0.1",
                "hook.example.com"
            ]
        );
    }

    #[test]
    fn the_serving_certificate_is_signed_by_the_ca_for_the_service_names() {
        let mut request = CertRequest::for_service("hook", "infra");
        request.extra_sans = vec!["127.0.0.1".into()];
        request.days = 30;
        let bundle = generate(&request).unwrap();
        let ca_der = pem_der(&bundle.ca_pem);
        let cert_der = pem_der(&bundle.cert_pem);
        let (_, ca) = x509_parser::parse_x509_certificate(&ca_der).unwrap();
        let (_, cert) = x509_parser::parse_x509_certificate(&cert_der).unwrap();

        assert!(ca.is_ca());
        assert!(!cert.is_ca());
        assert_eq!(cert.issuer(), ca.subject());
        let now = OffsetDateTime::now_utc().unix_timestamp();
        let days = (cert.validity().not_after.timestamp() - now) / 86_400;
        assert!((29..=30).contains(&days), "{days}");
        let ca_days = (ca.validity().not_after.timestamp() - now) / 86_400;
        assert!(ca_days >= 3649, "{ca_days}");

        // A TLS client that trusts only the CA accepts the certificate for each Service name.
        let provider = std::sync::Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let mut roots = rustls::RootCertStore::empty();
        roots.add(ca_der.clone().into()).unwrap();
        let verifier =
            rustls::client::WebPkiServerVerifier::builder_with_provider(roots.into(), provider)
                .build()
                .unwrap();
        let end_entity = rustls_pki_types::CertificateDer::from(cert_der.clone());
        for name in [
            "hook.infra.svc",
            "hook.infra.svc.cluster.local",
            "127.0.0.1",
        ] {
            verifier
                .verify_server_cert(
                    &end_entity,
                    &[],
                    &rustls_pki_types::ServerName::try_from(name).unwrap(),
                    &[],
                    rustls_pki_types::UnixTime::now(),
                )
                .unwrap_or_else(|e| panic!("{name}: {e}"));
        }
        let other = rustls_pki_types::ServerName::try_from("other.infra.svc").unwrap();
        assert!(
            verifier
                .verify_server_cert(
                    &end_entity,
                    &[],
                    &other,
                    &[],
                    rustls_pki_types::UnixTime::now()
                )
                .is_err()
        );

        let sans = cert.subject_alternative_name().unwrap().unwrap();
        let names: Vec<String> = sans
            .value
            .general_names
            .iter()
            .map(|n| match n {
                GeneralName::DNSName(d) => (*d).to_owned(),
                GeneralName::IPAddress(ip) => format!("{ip:?}"),
                other => format!("{other:?}"),
            })
            .collect();
        assert_eq!(
            names,
            [
                "hook",
                "hook.infra",
                "hook.infra.svc",
                "hook.infra.svc.cluster.local",
                "[127, 0, 0, 1]"
            ]
        );
    }

    #[test]
    fn bad_requests_are_refused_with_the_flag_named() {
        let bad_service = CertRequest::for_service("Hook_1", "infra");
        assert!(generate(&bad_service).unwrap_err().to_string().starts_with(
            "certificate generation: --service \"Hook_1\" is not a valid Kubernetes name"
        ));
        let bad_namespace = CertRequest::for_service("hook", "-infra");
        assert!(
            generate(&bad_namespace)
                .unwrap_err()
                .to_string()
                .contains("--namespace \"-infra\" is not a valid Kubernetes name")
        );
        let mut too_long = CertRequest::for_service("hook", "infra");
        too_long.days = 4000;
        assert_eq!(
            generate(&too_long).unwrap_err().to_string(),
            "certificate generation: --days 4000 is longer than the CA's --ca-days 3650: the \
             serving certificate would outlive its CA"
        );
        let mut zero = CertRequest::for_service("hook", "infra");
        zero.days = 0;
        assert_eq!(
            generate(&zero).unwrap_err().to_string(),
            "certificate generation: --days must be at least 1"
        );
        let mut bad_san = CertRequest::for_service("hook", "infra");
        bad_san.extra_sans = vec!["hôte".into()];
        assert!(
            generate(&bad_san)
                .unwrap_err()
                .to_string()
                .starts_with("certificate generation: subject alternative names:")
        );
    }

    #[test]
    fn the_secret_manifest_and_ca_bundle_carry_the_pems() {
        let bundle = generate(&CertRequest::for_service("hook", "infra")).unwrap();
        let yaml = secret_manifest("hook-tls", "infra", &bundle).unwrap();
        let secret: Secret = serde_saphyr::from_str(&yaml).unwrap();
        assert_eq!(secret.type_.as_deref(), Some("kubernetes.io/tls"));
        assert_eq!(secret.metadata.name.as_deref(), Some("hook-tls"));
        assert_eq!(secret.metadata.namespace.as_deref(), Some("infra"));
        let data = secret.data.unwrap();
        assert_eq!(data["tls.crt"].0, bundle.cert_pem.as_bytes());
        assert_eq!(data["tls.key"].0, bundle.key_pem.as_bytes());
        assert_eq!(data["ca.crt"].0, bundle.ca_pem.as_bytes());
        assert!(
            yaml.contains("apiVersion: v1") && yaml.contains("kind: Secret"),
            "{yaml}"
        );

        let decoded = base64::engine::general_purpose::STANDARD
            .decode(ca_bundle(&bundle))
            .unwrap();
        assert_eq!(decoded, bundle.ca_pem.as_bytes());
    }

    #[test]
    fn run_writes_the_files_with_the_key_private() {
        let dir = std::env::temp_dir().join(format!("certs-run-{}", std::process::id()));
        let args = CertsArgs {
            request: CertRequest::for_service("hook", "infra"),
            secret_name: "hook-tls".into(),
            out_dir: dir.clone(),
        };
        let written = run(&args).unwrap();
        let names: Vec<_> = written
            .iter()
            .map(|p| p.file_name().unwrap().to_str().unwrap().to_owned())
            .collect();
        assert_eq!(
            names,
            [
                "ca.crt",
                "tls.crt",
                "tls.key",
                "secret.yaml",
                "ca-bundle.txt"
            ]
        );
        let mode = fs::metadata(dir.join("tls.key"))
            .unwrap()
            .permissions()
            .mode()
            & 0o777;
        assert_eq!(mode, 0o600);
        assert!(
            fs::read_to_string(dir.join("tls.key"))
                .unwrap()
                .contains("PRIVATE KEY")
        );
        fs::remove_dir_all(&dir).unwrap();
    }

    fn pem_der(pem: &str) -> Vec<u8> {
        use rustls_pki_types::CertificateDer;
        use rustls_pki_types::pem::PemObject;
        CertificateDer::from_pem_slice(pem.as_bytes())
            .unwrap()
            .as_ref()
            .to_vec()
    }
}
