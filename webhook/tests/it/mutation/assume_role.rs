//! Role chaining annotations: checked at admission, passed to the injector as flags.

use crate::support::mutate::*;
use serde_json::Value;

const ROLE: &str = "arn:aws:iam::111122223333:role/team/secrets-reader";

fn seeds_with(annotations: &[(&str, &str)]) -> Value {
    let mut pod = fixture("seeds-example-pod.yaml");
    annotate(&mut pod, annotations);
    pod
}

fn injector_args(pod: &Value) -> Vec<String> {
    injector(pod)["args"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap().to_owned())
        .collect()
}

#[test]
fn the_role_external_id_and_duration_become_the_injectors_flags() {
    let pod = seeds_with(&[
        ("secrets-injector.io/assume-role-arn", ROLE),
        ("secrets-injector.io/assume-role-external-id", "tenant-42"),
        ("secrets-injector.io/assume-role-duration-seconds", "900"),
    ]);
    let (out, warnings) = mutated(&pod, &cfg());
    assert!(warnings.is_empty(), "{warnings:?}");
    let args = injector_args(&out);
    for flag in [
        format!("--assume-role-arn={ROLE}"),
        "--assume-role-external-id=tenant-42".to_owned(),
        "--assume-role-duration-seconds=900".to_owned(),
    ] {
        assert!(args.contains(&flag), "{flag} not in {args:?}");
    }
    assert!(args.last().unwrap().starts_with("--objects="), "{args:?}");
    validate(&[("assume-role", &out)]);
    assert_converged(&out, &cfg());

    // The role alone: no other flag, the injector's default duration (3600 s).
    let (out, _) = mutated(
        &seeds_with(&[("secrets-injector.io/assume-role-arn", ROLE)]),
        &cfg(),
    );
    let args = injector_args(&out);
    assert!(args.contains(&format!("--assume-role-arn={ROLE}")));
    assert!(
        !args
            .iter()
            .any(|a| a.starts_with("--assume-role-external-id")
                || a.starts_with("--assume-role-duration-seconds"))
    );
    // None of them: no flag.
    let (out, _) = mutated(&seeds_with(&[]), &cfg());
    assert!(
        !injector_args(&out)
            .iter()
            .any(|a| a.starts_with("--assume-role"))
    );
}

/// The annotations of a pod, and what its denial must say.
type Case<'a> = (&'a [(&'a str, &'a str)], &'a [&'a str]);

#[test]
fn each_bad_annotation_is_denied_saying_how_to_fix_it() {
    let cases: &[Case] = &[
        (
            &[(
                "secrets-injector.io/assume-role-arn",
                "arn:aws:iam::111122223333:user/bob",
            )],
            &[
                "annotation secrets-injector.io/assume-role-arn \"arn:aws:iam::111122223333:user/bob\" is not the ARN of one IAM role",
                "give a role ARN such as arn:aws:iam::111122223333:role/NAME",
            ],
        ),
        (
            &[("secrets-injector.io/assume-role-arn", "secrets-reader")],
            &["is not an ARN"],
        ),
        (
            &[(
                "secrets-injector.io/assume-role-arn",
                "arn:aws:iam::1234:role/x",
            )],
            &["has no twelve-digit account id"],
        ),
        (
            &[
                ("secrets-injector.io/assume-role-arn", ROLE),
                ("secrets-injector.io/assume-role-external-id", "has space"),
            ],
            &[
                "annotation secrets-injector.io/assume-role-external-id: the value is not an external id STS accepts",
                "sts:ExternalId",
            ],
        ),
        (
            &[
                ("secrets-injector.io/assume-role-arn", ROLE),
                ("secrets-injector.io/assume-role-duration-seconds", "7200"),
            ],
            &[
                "annotation secrets-injector.io/assume-role-duration-seconds: \"7200\" is not a whole number of seconds from 900 to 3600",
                "one hour",
            ],
        ),
        (
            &[("secrets-injector.io/assume-role-external-id", "tenant-42")],
            &[
                "annotation secrets-injector.io/assume-role-external-id means nothing without secrets-injector.io/assume-role-arn",
            ],
        ),
        (
            &[("secrets-injector.io/assume-role-duration-seconds", "900")],
            &[
                "annotation secrets-injector.io/assume-role-duration-seconds means nothing without secrets-injector.io/assume-role-arn",
            ],
        ),
    ];
    for (annotations, expected) in cases {
        let message = denial(&seeds_with(annotations), &cfg());
        for part in *expected {
            assert!(
                message.contains(part),
                "{annotations:?}: {part:?} not in\n{message}"
            );
        }
    }
}
