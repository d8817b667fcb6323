//! The webhook's hand-written AdmissionReview types (`webhook/src/admission/review.rs`, kept for
//! speed) held to the ecosystem's own: kube-core's `AdmissionReview<DynamicObject>` must read
//! every review the same way, and read every answer the webhook writes as the webhook meant it.

use std::path::{Path, PathBuf};

use base64::Engine;
use kube_core::DynamicObject;
use kube_core::admission::{AdmissionRequest, AdmissionResponse, AdmissionReview};
use secrets_injector_e2e::admission::{body, create_review, update_review};
use secrets_injector_webhook::admission::{self, Refusal, Request, Response};
use secrets_injector_webhook::mutation::MutationConfig;
use serde_json::{Map, Value};

const UID: &str = "705ab4f5-6393-11e8-b7cc-42010a800002";

/// The fixture files under `dir` (relative to tests/fixtures), subdirectories included.
fn fixture_names(root: &Path, dir: &str, names: &mut Vec<String>) {
    let path = root.join(dir);
    for entry in std::fs::read_dir(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display())) {
        let entry = entry.expect("directory entry");
        let name = format!("{dir}{}", entry.file_name().to_string_lossy());
        if entry.file_type().expect("file type").is_dir() {
            fixture_names(root, &format!("{name}/"), names);
        } else {
            names.push(name);
        }
    }
}

/// Every fixture pod as the API server sends it, created and updated.
fn fixture_reviews() -> Vec<(String, Vec<u8>)> {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    let mut names = Vec::new();
    fixture_names(&root, "", &mut names);
    names.sort();
    let mut reviews = Vec::new();
    for name in names {
        let pod = crate::support::mutate::fixture(&name);
        reviews.push((
            format!("{name} created"),
            body(&create_review(UID, &pod, "apps")),
        ));
        reviews.push((
            format!("{name} updated"),
            body(&update_review(UID, &pod, &pod, "apps")),
        ));
    }
    reviews
}

/// Every entry of the admission-review fuzz corpus (real reviews and what the fuzzer grew from
/// them), named by file.
fn corpus_reviews() -> Vec<(String, Vec<u8>)> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../fuzz/corpus/admission_review");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|entry| entry.expect("directory entry").path())
        .collect();
    files.sort();
    files
        .into_iter()
        .map(|path| {
            let name = path.file_name().expect("a file").to_string_lossy();
            let data = std::fs::read(&path).expect("read corpus entry");
            (format!("corpus {name}"), data)
        })
        .collect()
}

/// The review as kube-core reads it: `None` when kube-core refuses it.
fn kube_request(body: &[u8]) -> Option<AdmissionRequest<DynamicObject>> {
    let review: AdmissionReview<DynamicObject> = serde_json::from_slice(body).ok()?;
    review.try_into().ok()
}

fn same_request(source: &str, ours: &Request<'_>, kube: &AdmissionRequest<DynamicObject>) {
    assert_eq!(ours.uid, kube.uid.as_str(), "{source}: uid");
    assert_eq!(
        (
            ours.kind.group.as_ref(),
            ours.kind.version.as_ref(),
            ours.kind.kind.as_ref()
        ),
        (
            kube.kind.group.as_str(),
            kube.kind.version.as_str(),
            kube.kind.kind.as_str()
        ),
        "{source}: kind"
    );
    assert_eq!(
        serde_json::to_value(&kube.operation).expect("an operation serialises"),
        Value::from(ours.operation.as_str()),
        "{source}: operation"
    );
    assert_eq!(
        ours.namespace.as_deref(),
        kube.namespace.as_deref(),
        "{source}: namespace"
    );
    // kube-core reads an absent name as "" (as the API server writes it on a generated name).
    assert_eq!(
        ours.name.as_deref().unwrap_or_default(),
        kube.name,
        "{source}: object name"
    );
}

/// The answer as kube-core's reader takes it. kube-core's `AdmissionResponse` is made to be
/// written: it reads `patch` only as an array of bytes (it writes it so; the API server reads
/// that or base64, and the webhook writes base64) and requires `status`, which the API server
/// does not. Those two, and nothing else, are shaped its way.
fn as_kube_core_reads(source: &str, written: &[u8]) -> Vec<u8> {
    let mut answer: Value = serde_json::from_slice(written)
        .unwrap_or_else(|e| panic!("{source}: the answer is not JSON: {e}"));
    let response = answer
        .get_mut("response")
        .and_then(Value::as_object_mut)
        .unwrap_or_else(|| panic!("{source}: no response in the answer"));
    if let Some(Value::String(encoded)) = response.get("patch") {
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(encoded)
            .unwrap_or_else(|e| panic!("{source}: the patch is not base64: {e}"));
        response.insert("patch".to_owned(), Value::from(bytes));
    }
    response
        .entry("status")
        .or_insert_with(|| Value::Object(Map::new()));
    serde_json::to_vec(&answer).expect("JSON")
}

/// Our answer, as written, read back by kube-core.
fn same_answer(source: &str, ours: &Response) {
    let written = as_kube_core_reads(source, &ours.to_review_json());
    let review: AdmissionReview<DynamicObject> = serde_json::from_slice(&written)
        .unwrap_or_else(|e| panic!("{source}: kube-core cannot read the answer: {e}"));
    let kube: AdmissionResponse = review
        .response
        .unwrap_or_else(|| panic!("{source}: kube-core finds no response in the answer"));
    assert_eq!(kube.uid, ours.uid, "{source}: uid");
    assert_eq!(kube.allowed, ours.allowed, "{source}: allowed");
    assert_eq!(kube.patch, ours.patch, "{source}: patch bytes");
    // `patch_type` is private in kube-core: read it as kube-core writes it back.
    let again = serde_json::to_value(&kube).expect("kube-core writes its response");
    let patch_type = again.get("patchType").and_then(Value::as_str);
    assert_eq!(
        patch_type,
        ours.patch.as_ref().map(|_| "JSONPatch"),
        "{source}: patch type"
    );
    assert_eq!(
        kube.warnings.unwrap_or_default(),
        ours.warnings,
        "{source}: warnings"
    );
    match &ours.denial {
        Some(denial) => {
            assert_eq!(kube.result.code, denial.code, "{source}: status code");
            assert_eq!(kube.result.message, denial.message, "{source}: message");
        }
        None => assert_eq!(
            kube.result.code, 0,
            "{source}: an allowed answer has no status"
        ),
    }
}

fn config() -> MutationConfig {
    crate::support::mutate::cfg()
}

#[test]
fn kube_core_reads_every_fixture_review_as_the_webhook_does() {
    let cfg = config();
    let reviews = fixture_reviews();
    assert!(
        reviews.len() >= 10,
        "only {} fixture reviews",
        reviews.len()
    );
    for (source, body) in &reviews {
        let kube = kube_request(body).unwrap_or_else(|| panic!("{source}: kube-core refuses it"));
        let ours = admission::parse(body)
            .unwrap_or_else(|reason| panic!("{source}: the webhook refuses it: {reason}"));
        same_request(source, &ours, &kube);
        same_answer(source, &admission::respond(&ours, &cfg).response);
    }
}

#[test]
fn kube_core_reads_every_corpus_review_as_the_webhook_does() {
    let cfg = config();
    let (mut compared, mut answered, mut stricter) = (0, 0, 0);
    for (source, body) in corpus_reviews() {
        let ours = admission::parse(&body);
        if let Some(kube) = kube_request(&body) {
            // Where the webhook is stricter: it speaks admission.k8s.io/v1 alone, and it checks
            // the whole body is UTF-8 (RFC 8259), where serde_json checks only the strings it
            // keeps; kube-core looks at neither.
            let ours = match ours {
                Ok(ours) => ours,
                Err(Refusal::OtherType | Refusal::NotUtf8 { .. }) => {
                    stricter += 1;
                    continue;
                }
                Err(reason) => {
                    panic!("{source}: kube-core reads it, the webhook refuses: {reason}")
                }
            };
            same_request(&source, &ours, &kube);
            compared += 1;
            same_answer(&source, &admission::respond(&ours, &cfg).response);
            answered += 1;
        } else if let Ok(ours) = ours {
            // Reviews kube-core refuses (a hostile shape it is stricter about) still get answers
            // kube-core reads.
            same_answer(&source, &admission::respond(&ours, &cfg).response);
            answered += 1;
        }
    }
    eprintln!(
        "{compared} reviews compared, {answered} answers read, {stricter} refused by the webhook alone"
    );
    assert!(compared >= 100, "only {compared} corpus reviews compared");
    assert!(answered >= compared, "{answered} answers read");
}
