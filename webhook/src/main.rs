//! `webhook`: the admission webhook server (`serve`), its offline twin for manifests (`inject`),
//! the IAM policy a manifest's pods need (`policy`), and a certificate maker for clusters without
//! cert-manager (`certs`).

use std::io::Read;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use clap::{Parser, Subcommand};
use secrets_injector_webhook::certs::{self, CertsArgs};
use secrets_injector_webhook::inject;
use secrets_injector_webhook::mutation::MutationConfig;
use secrets_injector_webhook::policy::{self, PolicyArgs};
use secrets_injector_webhook::serve::{self, ServeArgs, telemetry};

// Each review allocates thousands of small JSON nodes from several threads at once; glibc's
// allocator spent over a quarter of the webhook's CPU time on them under load.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser, Debug)]
#[command(name = "webhook", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Serve the mutating admission webhook over HTTPS.
    Serve(Box<ServeArgs>),
    /// Print Kubernetes manifests as the webhook would admit them (YAML in, YAML out).
    Inject(Box<InjectArgs>),
    /// Make a self-signed CA and a serving certificate for the webhook's Service.
    Certs(CertsArgs),
    /// Print the least-privilege IAM policy (or trust policy) the pods of manifests need.
    Policy(Box<PolicyArgs>),
}

#[derive(clap::Args, Debug)]
struct InjectArgs {
    /// File of YAML or JSON documents; standard input when absent or "-".
    #[arg(short = 'f', long = "filename")]
    file: Option<PathBuf>,
    #[command(flatten)]
    mutation: MutationConfig,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Serve(args) => {
            let _logs = match telemetry::init(args.log_format) {
                Ok(flusher) => flusher,
                Err(e) => {
                    eprintln!("cannot start the log writer: {e}");
                    return ExitCode::FAILURE;
                }
            };
            match run_serve(*args) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    tracing::error!(error = format!("{e:#}"), "webhook failed");
                    ExitCode::FAILURE
                }
            }
        }
        Command::Inject(args) => report(run_inject(&args)),
        Command::Certs(args) => report(run_certs(&args)),
        Command::Policy(args) => report(run_policy(&args)),
    }
}

fn report(result: anyhow::Result<()>) -> ExitCode {
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("{e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run_serve(args: ServeArgs) -> anyhow::Result<()> {
    args.mutation.validate()?;
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    // One process-wide provider, so nothing else in the process can pick a different one.
    provider
        .as_ref()
        .clone()
        .install_default()
        .map_err(|_| anyhow::anyhow!("a TLS crypto provider was already installed"))?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    runtime.block_on(serve::serve(args, provider))?;
    Ok(())
}

fn run_inject(args: &InjectArgs) -> anyhow::Result<()> {
    args.mutation.validate()?;
    let input = read_input(args.file.as_deref())?;
    let output = inject::run(&input, &args.mutation)?;
    print!("{output}");
    Ok(())
}

fn run_policy(args: &PolicyArgs) -> anyhow::Result<()> {
    let input = read_input(args.file.as_deref())?;
    print!("{}", policy::run(&input, args)?);
    Ok(())
}

/// The text of `-f FILE`, or standard input when it is absent or "-".
fn read_input(file: Option<&std::path::Path>) -> anyhow::Result<String> {
    match file {
        Some(path) if path.as_os_str() != "-" => {
            std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))
        }
        _ => {
            let mut text = String::new();
            std::io::stdin()
                .read_to_string(&mut text)
                .context("reading standard input")?;
            Ok(text)
        }
    }
}

fn run_certs(args: &CertsArgs) -> anyhow::Result<()> {
    for path in certs::run(args)? {
        println!("wrote {}", path.display());
    }
    Ok(())
}
