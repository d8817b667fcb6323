//! Any bytes as the body of `POST /mutate`: parsed as the server parses it, and when it is an
//! AdmissionReview, answered by `admission::respond` with every invariant checked.

#![no_main]

#[path = "../../webhook/tests/it/support/fuzz/mod.rs"]
mod fuzz_support;

libfuzzer_sys::fuzz_target!(|data: &[u8]| fuzz_support::fuzz_raw(data));
