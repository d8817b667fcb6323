//! Property tests of the AdmissionReview handler, the same checks the coverage-guided fuzz
//! targets `fuzz/fuzz_targets/admission_review.rs` (raw bodies) and `pod_annotations.rs`
//! (generated hostile pods) run: whatever arrives, the answer carries the request's uid, a denial
//! is a one-line 400, and an injected pod runs the webhook's image, locked down, writing only to
//! its in-memory volume. Also replays both fuzz corpora and every crash the fuzzer found.

use std::path::PathBuf;

use secrets_injector_webhook::admission::Verdict;

use crate::support::fuzz::{
    Bytes, Rng, check_review, config, fuzz_raw, fuzz_structured, generated_review,
};

/// Generated reviews per run: seconds on a debug build.
const CASES: u64 = 1_500;

fn fuzz_dir(kind: &str, target: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../fuzz")
        .join(kind)
        .join(target)
}

fn inputs(dir: &PathBuf) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|entry| entry.expect("directory entry").path())
        .filter(|path| path.is_file())
        .collect();
    files.sort();
    files
}

fn replay(target: &str, run: fn(&[u8])) {
    let corpus = inputs(&fuzz_dir("corpus", target));
    assert!(
        corpus.len() >= 50,
        "the {target} corpus has {} inputs",
        corpus.len()
    );
    let regressions = fuzz_dir("regressions", target);
    let crashes = if regressions.is_dir() {
        inputs(&regressions)
    } else {
        Vec::new()
    };
    for path in corpus.iter().chain(&crashes) {
        let data = std::fs::read(path).expect("read corpus input");
        if std::panic::catch_unwind(|| run(&data)).is_err() {
            panic!("{} breaks an invariant again", path.display());
        }
    }
}

#[test]
fn generated_hostile_reviews_keep_every_invariant() {
    let (mut mutated, mut denied, mut templated) = (0, 0, 0);
    for seed in 0..CASES {
        let data = Rng::new(seed).bytes(2048);
        let mut b = Bytes::new(&data);
        let cfg = config(&mut b);
        let review = generated_review(&mut b);
        let outcome = std::panic::catch_unwind(|| check_review(&review, &cfg))
            .unwrap_or_else(|_| panic!("seed {seed} broke an invariant; review {review}"));
        let has_templates = review
            .pointer("/request/object/metadata/annotations/secrets-injector.io~1templates")
            .is_some();
        match outcome.verdict {
            Verdict::Mutated | Verdict::Unchanged => {
                mutated += 1;
                templated += usize::from(has_templates);
            }
            Verdict::Denied => denied += 1,
            _ => {}
        }
    }
    // Templates that pass every check reach an injected pod now and then.
    assert!(
        templated > 3,
        "only {templated} of {CASES} injected reviews had templates"
    );
    // Both ways out must be exercised, or the generator proves nothing.
    assert!(
        mutated > 50,
        "only {mutated} of {CASES} reviews were injected"
    );
    assert!(denied > 50, "only {denied} of {CASES} reviews were denied");
}

#[test]
fn random_bodies_are_refused_or_answered() {
    for seed in 0..CASES {
        let mut rng = Rng::new(seed ^ 0x5EED);
        let len = (rng.next() % 1024) as usize;
        let data = rng.bytes(len);
        if std::panic::catch_unwind(|| fuzz_raw(&data)).is_err() {
            panic!("seed {seed}: body {data:?}");
        }
    }
}

#[test]
fn mutated_real_reviews_are_refused_or_answered() {
    // Bit flips and truncations of valid reviews reach the deeper parsers.
    for seed in 0..CASES / 3 {
        let mut rng = Rng::new(seed ^ 0xF11F);
        let data = rng.bytes(1024);
        let mut b = Bytes::new(&data);
        let review = generated_review(&mut b);
        let mut body = serde_json::to_vec(&review).expect("serialise");
        for _ in 0..(rng.next() % 4) {
            let at = (rng.next() as usize) % body.len();
            body[at] ^= 1 << (rng.next() % 8);
        }
        if rng.next().is_multiple_of(4) {
            let cut = (rng.next() as usize) % body.len();
            body.truncate(cut);
        }
        if std::panic::catch_unwind(|| fuzz_raw(&body)).is_err() {
            panic!("seed {seed}: body {}", String::from_utf8_lossy(&body));
        }
    }
}

#[test]
fn the_admission_review_corpus_and_crashes_are_handled() {
    replay("admission_review", fuzz_raw);
}

#[test]
fn the_pod_annotations_corpus_and_crashes_are_handled() {
    replay("pod_annotations", fuzz_structured);
}
