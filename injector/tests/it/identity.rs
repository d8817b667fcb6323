//! Where the injector's AWS credentials come from: only what the pod was given (its web
//! identity, EKS Pod Identity, static keys in its own environment). A shared config file cannot
//! make it run a command, and a pod without an identity fails at once, without a call to AWS
//! and without asking the node's instance metadata service.

use std::net::TcpListener;
use std::time::Duration;

use crate::support::*;

const OBJECTS: &str = "- {objectName: /identity/p0, objectType: ssmparameter}\n";
/// What the report says when the pod has no identity.
const NO_IDENTITY: &str = "no AWS identity";

/// A pod without a web identity, with calls to AWS going through a counting proxy and the
/// instance metadata service pointed at a listener nobody should connect to.
struct Bare {
    pod: Pod,
    proxy: Proxy,
    metadata: TcpListener,
    _moto: Moto,
}

impl Bare {
    fn new() -> Bare {
        let moto = Moto::start();
        let proxy = Proxy::start(moto.addr());
        let metadata = TcpListener::bind("127.0.0.1:0").expect("bind");
        metadata.set_nonblocking(true).expect("non-blocking");
        let mut pod = Pod::new(&proxy.endpoint());
        pod.unset = vec![
            "AWS_ROLE_ARN",
            "AWS_WEB_IDENTITY_TOKEN_FILE",
            "AWS_EC2_METADATA_DISABLED",
        ];
        pod.env.push((
            "AWS_EC2_METADATA_SERVICE_ENDPOINT".to_owned(),
            format!("http://{}", metadata.local_addr().expect("addr")),
        ));
        Bare {
            pod,
            proxy,
            metadata,
            _moto: moto,
        }
    }

    /// Runs the injector; checks it failed at once, clearly, having called no one.
    #[track_caller]
    fn run_and_fail(&self) -> Outcome {
        let out = self.pod.run(OBJECTS, &["--deadline", "60s"]);
        out.assert_failure();
        for (stream, text) in [
            ("stderr", &out.stderr),
            ("termination log", &out.termination_log),
        ] {
            assert!(text.contains(NO_IDENTITY), "{stream}: {text}");
            assert!(
                text.contains("eks.amazonaws.com/role-arn")
                    && text.contains("Pod Identity association"),
                "{stream} does not say what to set up: {text}"
            );
        }
        assert!(self.pod.files().is_empty(), "{:?}", self.pod.files());
        assert!(
            self.proxy.records().is_empty(),
            "calls to AWS: {:?}",
            self.proxy.records()
        );
        // Connections wait in the backlog even unaccepted: none means no one tried.
        assert!(
            self.metadata.accept().is_err(),
            "the injector connected to the instance metadata service"
        );
        // At once: nothing is retried, whatever the deadline.
        assert!(out.elapsed < Duration::from_secs(20), "{:?}", out.elapsed);
        out
    }
}

#[test]
fn a_pod_without_an_identity_fails_at_once_without_any_call_or_the_instance_role() {
    Bare::new().run_and_fail();
}

#[test]
fn a_credential_process_in_a_shared_config_file_never_runs() {
    let mut bare = Bare::new();
    let dir = tempfile::tempdir().expect("temp dir");
    let marker = dir.path().join("ran");
    let config = dir.path().join("config");
    std::fs::write(
        &config,
        format!(
            "[default]\ncredential_process = /usr/bin/touch {}\n\n[profile app]\ncredential_process = /usr/bin/touch {}\n",
            marker.display(),
            marker.display()
        ),
    )
    .expect("config file");
    for (name, value) in [
        ("AWS_CONFIG_FILE", config.display().to_string()),
        ("AWS_SHARED_CREDENTIALS_FILE", config.display().to_string()),
        ("AWS_PROFILE", "app".to_owned()),
    ] {
        bare.pod.env.push((name.to_owned(), value));
    }
    bare.run_and_fail();
    assert!(!marker.exists(), "the credential_process command ran");
}

/// With a web identity too, the shared config file is still never read for credentials.
#[test]
fn a_credential_process_never_runs_beside_a_web_identity() {
    let moto = Moto::start();
    Seeder::new(&moto.endpoint(), REGION).string("/identity/p0", "p0-SENTINEL");
    let mut pod = Pod::new(&moto.endpoint());
    let dir = tempfile::tempdir().expect("temp dir");
    let marker = dir.path().join("ran");
    let config = dir.path().join("config");
    std::fs::write(
        &config,
        format!(
            "[default]\ncredential_process = /usr/bin/touch {}\n",
            marker.display()
        ),
    )
    .expect("config file");
    pod.env
        .push(("AWS_CONFIG_FILE".to_owned(), config.display().to_string()));
    let out = pod.run(OBJECTS, &[]);
    out.assert_success();
    assert_eq!(pod.read_string("_identity_p0"), "p0-SENTINEL");
    assert!(!marker.exists(), "the credential_process command ran");
}
