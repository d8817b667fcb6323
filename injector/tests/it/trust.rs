//! Which certificate authorities the injector trusts on its HTTPS calls: its image's bundle, or
//! only the pod's own `AWS_CA_BUNDLE` (a TLS-inspecting proxy, a private endpoint). moto sits
//! behind an HTTPS proxy whose certificate comes from a CA of the test's own.

use aws_sdk_ssm::types::ParameterType;
use secrets_injector_e2e::https;
use secrets_injector_e2e::tools::workspace_binary;

use crate::support::*;

const OBJECTS: &str = "- {objectName: /trust/p0, objectType: ssmparameter}\n";

/// moto seeded with one parameter, behind an HTTPS proxy for 127.0.0.1 signed by `ca.crt` in
/// the returned directory (made by `webhook certs`).
fn behind_tls() -> (Moto, Proxy, tempfile::TempDir) {
    let moto = Moto::start();
    Seeder::new(&moto.endpoint(), REGION).put(
        "/trust/p0",
        &format!("{MARK}-trusted"),
        ParameterType::SecureString,
    );
    let certs = tempfile::tempdir().expect("temp dir");
    https::make_certs(
        &workspace_binary("webhook"),
        certs.path(),
        &["--extra-san", "127.0.0.1"],
    );
    let proxy = Proxy::start_tls(
        moto.addr(),
        &certs.path().join("tls.crt"),
        &certs.path().join("tls.key"),
    );
    (moto, proxy, certs)
}

#[test]
fn the_pods_aws_ca_bundle_is_trusted() {
    let (_moto, proxy, certs) = behind_tls();
    let mut pod = Pod::new(&proxy.endpoint());

    // Without it, the system's CAs do not know the proxy's: no request gets through.
    let refused = pod.run(OBJECTS, &[]);
    refused.assert_failure();
    assert!(
        refused.termination_log.contains("UnknownIssuer"),
        "{}",
        refused.termination_log
    );
    assert!(proxy.records().is_empty(), "{:?}", proxy.records());

    pod.env.push((
        "AWS_CA_BUNDLE".to_owned(),
        certs.path().join("ca.crt").display().to_string(),
    ));
    let trusted = pod.run(OBJECTS, &[]);
    trusted.assert_success();
    assert_eq!(pod.read_string("_trust_p0"), format!("{MARK}-trusted"));
    // STS too goes through the bundle's client: one web-identity call, then the fetch.
    assert_eq!(proxy.count("AssumeRoleWithWebIdentity"), 1);
    assert_eq!(proxy.count("GetParameters"), 1);
}

#[test]
fn a_ca_bundle_that_cannot_be_used_fails_at_once_naming_it() {
    let (_moto, proxy, certs) = behind_tls();
    let garbage = certs.path().join("garbage.pem");
    std::fs::write(
        &garbage,
        "-----BEGIN CERTIFICATE-----\nbm90IGEgY2VydGlmaWNhdGU=\n-----END CERTIFICATE-----\n",
    )
    .expect("write");
    let missing = certs.path().join("missing.pem");
    for (bundle, problem) in [
        (&garbage, "certificate 1 cannot be used"),
        (&missing, "cannot be read"),
    ] {
        let mut pod = Pod::new(&proxy.endpoint());
        pod.env
            .push(("AWS_CA_BUNDLE".to_owned(), bundle.display().to_string()));
        let out = pod.run(OBJECTS, &[]);
        // A clean failure (exit 1), not the SDK's client stopping the process.
        assert_eq!(out.code, 1, "{}", out.stderr);
        for text in [&out.stderr, &out.termination_log] {
            assert!(
                text.contains("InvalidCABundle") && text.contains(&bundle.display().to_string()),
                "{text}"
            );
            assert!(text.contains(problem), "{text}");
        }
    }
    assert!(proxy.records().is_empty(), "{:?}", proxy.records());
}

#[test]
fn the_pods_http_proxy_is_used_with_its_aws_ca_bundle_too() {
    let moto = Moto::start();
    Seeder::new(&moto.endpoint(), REGION).put(
        "/trust/p0",
        &format!("{MARK}-proxied"),
        ParameterType::SecureString,
    );
    let proxy = Proxy::start(moto.addr());
    // Nothing listens at the endpoint itself: only through the pod's proxy do calls arrive.
    let mut pod = Pod::new("http://127.0.0.1:9");
    pod.env.push(("HTTP_PROXY".to_owned(), proxy.endpoint()));
    for bundle in [None, Some("/etc/ssl/certs/ca-certificates.crt")] {
        pod.env.retain(|(name, _)| name != "AWS_CA_BUNDLE");
        if let Some(bundle) = bundle {
            pod.env
                .push(("AWS_CA_BUNDLE".to_owned(), bundle.to_owned()));
        }
        let out = pod.run(OBJECTS, &[]);
        out.assert_success();
        assert_eq!(pod.read_string("_trust_p0"), format!("{MARK}-proxied"));
    }
    assert_eq!(proxy.count("AssumeRoleWithWebIdentity"), 2);
    assert_eq!(proxy.count("GetParameters"), 2);
}
