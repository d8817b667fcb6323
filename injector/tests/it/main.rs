//! The injector's integration tests, one binary: the built injector run as the kubelet runs it,
//! against moto, through `support`. The files it writes (`files`), its AWS calls (`api`), its
//! credentials (`identity`, `assume_role`) and trust (`trust`), faults on the way to AWS
//! (`faults_aws`) and leaks of values (`faults_leaks`), hostile object lists (`limits`), the
//! copy of `secrets-env` (`secrets_env`), the refresh sidecar (`refresh`), and Secrets Manager
//! prefix objects, fetched and refreshed (`secrets_prefix`).

mod api;
mod assume_role;
mod faults_aws;
mod faults_leaks;
mod files;
mod identity;
mod limits;
mod refresh;
mod secrets_env;
mod secrets_prefix;
mod support;
mod templates;
mod trust;
