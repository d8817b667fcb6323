//! The tag of the images the tests build and run: `test`, or `SECRETS_INJECTOR_TEST_TAG` when
//! set at build time, so that checkouts tested at once on one machine (one podman store) do not
//! run each other's images.

fn main() {
    println!("cargo:rerun-if-env-changed=SECRETS_INJECTOR_TEST_TAG");
    let tag = std::env::var("SECRETS_INJECTOR_TEST_TAG").unwrap_or_else(|_| "test".to_owned());
    let valid = !tag.is_empty()
        && tag.len() <= 128
        && tag
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
        && !tag.starts_with(['.', '-']);
    assert!(
        valid,
        "SECRETS_INJECTOR_TEST_TAG={tag:?} is not an image tag: use letters, digits, '.', '_' and '-'"
    );
    println!("cargo:rustc-env=SECRETS_INJECTOR_TEST_TAG={tag}");
}
