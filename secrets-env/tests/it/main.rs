//! `secrets-env`'s integration tests, one binary: the built binary run as a container's command
//! (`process`), and its static build in a root without a libc (`static_build`).

mod process;
mod static_build;
