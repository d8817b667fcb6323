//! The object model's integration tests, one binary with a module per concern: lists that are
//! accepted and the files they give (`plan`), every rule that rejects one (`rejections`), the
//! Secrets Manager prefix objects (`secrets_prefix`),
//! hostile annotations stopped at a limit (`limits`), and the property tests over any input
//! (`fuzz_annotation`), whose generator and invariants the fuzz targets share (`fuzz_support`),
//! and the docs held to the code: every link resolves, the annotations reference lists exactly
//! the annotations the code knows (`docs`).

mod docs;
mod fuzz_annotation;
mod fuzz_support;
mod limits;
mod plan;
mod rejections;
mod secrets_prefix;
mod templates;
mod templates_hostile;
