//! The injector re-checks the objects list with the webhook's code, so a hostile list that
//! reaches it (an `--objects` edited after admission, or a webhook of another version) fails
//! with a message instead of aborting: a JMESPath expression the parser would recurse on until
//! the stack overflows is refused before it is parsed.

use crate::support::*;

#[test]
fn a_deeply_nested_jmes_path_fails_with_a_message_not_a_signal() {
    // Never reached: the list is refused before any call.
    let pod = Pod::new("http://127.0.0.1:9");
    for path in [format!("{}a", "!".repeat(20_000)), "(".repeat(30_000)] {
        let objects = format!(
            "- objectName: db\n  objectType: secretsmanager\n  jmesPath:\n    - path: '{path}'\n      objectAlias: user\n"
        );
        let out = pod.run(&objects, &[]);
        // A signal (the abort of a stack overflow) has no exit code: `code` is -1.
        out.assert_failure();
        assert!(
            out.stderr
                .starts_with("secrets-injector: the objects are invalid; nothing was written\n"),
            "{}",
            out.stderr
        );
        assert!(
            out.stderr
                .contains(&format!("jmesPath[0] (path \"{}", &path[..8]))
                && out.stderr.contains("over the limit of 1024 bytes"),
            "{}",
            out.stderr
        );
        assert!(out.stderr.len() < 2048, "{}", out.stderr);
        assert!(out.termination_log.contains("over the limit of 1024 bytes"));
        assert!(pod.entries().is_empty());
    }
}

#[test]
fn warnings_of_a_huge_list_are_capped_in_the_log() {
    // Never reached within the deadline: only what is logged before any call matters here.
    let pod = Pod::new("http://127.0.0.1:9");
    let objects: String = (0..1000)
        .map(|i| format!("- {{objectName: /p{i}, objectType: ssmparameter, colour: red}}\n"))
        .collect();
    let out = pod.run(&objects, &["--deadline", "1s"]);
    let warnings: Vec<_> = out
        .logs()
        .into_iter()
        .filter(|line| line["message"] == "objects annotation")
        .collect();
    // The first ones (at most 20, within the same byte budget as at admission), then one that
    // counts the rest.
    assert!((2..=21).contains(&warnings.len()), "{}", warnings.len());
    let shown = warnings.len() - 1;
    let last = warnings.last().expect("a warning")["warning"]
        .as_str()
        .expect("text")
        .to_owned();
    assert!(last.contains(&format!("{} more", 1000 - shown)), "{last}");
}
