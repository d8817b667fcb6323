//! Property tests of the `secrets-injector.io/objects` parser, the same checks the coverage-guided
//! fuzz target `fuzz/fuzz_targets/objects_parse.rs` runs: whatever the annotation holds, `parse`
//! answers fast, never panics, denies with a one-line message that names the annotation, and an
//! accepted list only writes files inside the mount directory. Also replays the fuzz corpus and
//! every crash the fuzzer ever found, so they stay fixed.

use std::path::PathBuf;

use secrets_injector_objects::Settings;

use crate::fuzz_support::{
    Bytes, Rng, check_parse, check_templates, fuzz_one, objects_annotation,
    objects_annotation_with, settings, templates_annotation,
};

/// Iterations of the generated-input property; seconds on a debug build.
const CASES: u64 = 4_000;

fn fuzz_dir(kind: &str, target: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../fuzz")
        .join(kind)
        .join(target)
}

/// The files of a corpus or artifacts directory, sorted.
fn inputs(dir: &PathBuf) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|entry| entry.expect("directory entry").path())
        .filter(|path| path.is_file())
        .collect();
    files.sort();
    files
}

#[test]
fn generated_annotations_keep_every_invariant() {
    let mut accepted = 0;
    for seed in 0..CASES {
        let data = Rng::new(seed).bytes(512);
        let mut b = Bytes::new(&data);
        let settings = settings(&mut b);
        let text = objects_annotation(&mut b);
        let outcome = std::panic::catch_unwind(|| check_parse(&text, settings.clone()));
        match outcome {
            Ok(plan) => accepted += usize::from(plan.is_some()),
            Err(_) => {
                panic!("seed {seed} broke an invariant; annotation {text:?} under {settings:?}")
            }
        }
    }
    // The generator must reach past the syntax: some lists are valid, most are not.
    assert!(
        accepted > 20,
        "only {accepted} of {CASES} generated lists were accepted"
    );
    assert!(
        accepted < CASES as usize / 2,
        "{accepted} of {CASES} accepted: the generator is too tame"
    );
}

#[test]
fn generated_templates_keep_every_invariant() {
    let mut accepted = 0;
    for seed in 0..CASES / 4 {
        let data = Rng::new(seed ^ 0x7E57).bytes(512);
        let mut b = Bytes::new(&data);
        let settings = settings(&mut b);
        let objects = objects_annotation_with(&mut b, true);
        let plan = check_parse(&objects, settings);
        let text = templates_annotation(&mut b);
        let outcome = std::panic::catch_unwind(|| {
            check_templates(&text, objects.len(), plan.as_ref());
            secrets_injector_objects::template::parse(&text, objects.len(), plan.as_ref()).is_ok()
        });
        match outcome {
            Ok(ok) => accepted += usize::from(ok && plan.is_some()),
            Err(_) => panic!("seed {seed} broke an invariant; templates {text:?} over {objects:?}"),
        }
    }
    assert!(
        accepted > 15,
        "only {accepted} generated templates lists were accepted"
    );
}

#[test]
fn random_bytes_keep_every_invariant() {
    for seed in 0..CASES {
        let mut rng = Rng::new(seed ^ 0xA5A5);
        let len = (rng.next() % 2048) as usize;
        let data = rng.bytes(len);
        if std::panic::catch_unwind(|| fuzz_one(&data)).is_err() {
            panic!("seed {seed} broke an invariant; input {data:?}");
        }
    }
}

#[test]
fn the_fuzz_corpus_and_every_crash_found_are_handled() {
    let corpus = inputs(&fuzz_dir("corpus", "objects_parse"));
    assert!(
        corpus.len() >= 50,
        "the objects_parse corpus has {} inputs",
        corpus.len()
    );
    let regressions = fuzz_dir("regressions", "objects_parse");
    let crashes = if regressions.is_dir() {
        inputs(&regressions)
    } else {
        Vec::new()
    };
    for path in corpus.iter().chain(&crashes) {
        let data = std::fs::read(path).expect("read corpus input");
        if std::panic::catch_unwind(|| fuzz_one(&data)).is_err() {
            panic!("{} breaks an invariant again", path.display());
        }
    }
}

fn denied(text: &str) -> String {
    secrets_injector_objects::parse(text, Settings::new("us-east-1"))
        .expect_err("must be denied")
        .to_string()
}

#[test]
fn ten_thousand_objects_get_a_short_clear_denial() {
    // 21,000 empty objects fit in 64 KiB as flow YAML; each lacks objectName.
    let text = format!("[{}]", vec!["{}"; 21_000].join(","));
    assert!(text.len() <= 64 * 1024);
    let message = denied(&text);
    assert!(
        message.starts_with("annotation secrets-injector.io/objects: objects[0]"),
        "{message:.200}"
    );
    assert!(
        message.len() <= crate::fuzz_support::MAX_MESSAGE_BYTES,
        "a denial of {} bytes cannot be read in kubectl; report the first problems and how many more",
        message.len()
    );
}

#[test]
fn ten_thousand_valid_objects_within_the_limit_are_parsed() {
    // Short names: 10,000 distinct objects in under 64 KiB of flow YAML.
    let items: Vec<String> = (0..10_000)
        .map(|i| format!("{{objectName: a{i:x},objectType: secretsmanager}}"))
        .collect();
    let text = format!("[{}]", items.join(","));
    if text.len() > 64 * 1024 {
        // Over the limit: denied before parsing, with the size in the message.
        let message = denied(&text);
        assert!(
            message.contains("over the limit of 65536 bytes"),
            "{message:.200}"
        );
        return;
    }
    // The work is bounded by the size limit and the parser's node budget, not timed.
    let plan = secrets_injector_objects::parse(&text, Settings::new("us-east-1")).expect("valid");
    assert_eq!(plan.objects.len(), 10_000);
}

#[test]
fn aliases_that_multiply_an_object_list_are_denied() {
    // Each level doubles the list: the expansion, not the text, is what must be bounded.
    let mut text = String::from("- &o0 {objectName: /a, objectType: ssmparameter}\n");
    for level in 1..=40 {
        text.push_str(&format!(
            "- &o{level} [*o{prev}, *o{prev}]\n",
            prev = level - 1
        ));
    }
    let message = denied(&text);
    assert!(
        message.starts_with("annotation secrets-injector.io/objects: "),
        "{message:.300}"
    );
    assert!(!message.contains('\n'), "{message}");
}

#[test]
fn deep_flow_mappings_and_mixed_nesting_are_denied() {
    for text in [
        format!(
            "- objectName: {}x{}",
            "{a: ".repeat(5_000),
            "}".repeat(5_000)
        ),
        format!("{}x", "- ".repeat(5_000)),
        format!(
            "- jmesPath: {}{}",
            "[{path: ".repeat(2_000),
            "}]".repeat(2_000)
        ),
    ] {
        let message = denied(&text);
        assert!(
            message.starts_with("annotation secrets-injector.io/objects: "),
            "{message:.300}"
        );
    }
}

#[test]
fn control_characters_and_odd_unicode_are_denied_or_kept_inside() {
    for alias in [
        "a\u{0}b",
        "\u{202e}gpj.exe",
        "a\u{7f}",
        "\u{feff}x",
        "..\u{2044}etc",
        "\u{0}",
    ] {
        let text = format!(
            "- objectName: /app/db\n  objectType: ssmparameter\n  objectAlias: {}\n",
            serde_json::to_string(alias).expect("string")
        );
        if let Some(plan) = check_parse(&text, Settings::new("us-east-1")) {
            assert!(!alias.contains('\0'));
            assert_eq!(plan.objects[0].file.as_str(), alias);
        } else {
            let message = denied(&text);
            assert!(
                message.starts_with("annotation secrets-injector.io/objects: "),
                "{message}"
            );
        }
    }
}
