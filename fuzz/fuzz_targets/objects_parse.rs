//! The `secrets-injector.io/objects` parser on any text, raw or generated from the input, under
//! settings the other annotations could give. The checks live in the shared support module so
//! `cargo test` runs them on the corpus too.

#![no_main]

#[path = "../../objects/tests/it/fuzz_support.rs"]
mod fuzz_support;

libfuzzer_sys::fuzz_target!(|data: &[u8]| fuzz_support::fuzz_one(data));
