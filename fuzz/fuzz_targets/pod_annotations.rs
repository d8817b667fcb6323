//! Hostile pods generated from the input (annotations, forged init containers and volumes, root
//! and privileged security contexts), reviewed by `admission::respond`, and the injected pod checked:
//! the webhook's image and command, locked down, writing only to its in-memory volume.

#![no_main]

#[path = "../../webhook/tests/it/support/fuzz/mod.rs"]
mod fuzz_support;

libfuzzer_sys::fuzz_target!(|data: &[u8]| fuzz_support::fuzz_structured(data));
