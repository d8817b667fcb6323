//! Command-line front of the test harness, for `scripts/demo.sh` and for debugging by hand:
//! `kubelet-sim eks-irsa` does what the EKS pod-identity webhook does to a pod, and
//! `kubelet-sim run` runs the pod's injected init container like the kubelet and prints the
//! files the app container would see.

use std::io::Read;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use secrets_injector_e2e::{eks, kubelet};
use serde_json::Value;

#[derive(Parser)]
#[command(about = "Run a pod's secrets-injector init container the way the kubelet does")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Read a pod (YAML or JSON) on stdin, add IRSA as EKS does, print it as JSON.
    EksIrsa {
        #[arg(long)]
        role_arn: String,
        #[arg(long)]
        region: String,
        /// More variables for every container, NAME=VALUE.
        #[arg(long = "env")]
        env: Vec<String>,
    },
    /// Read a mutated pod (YAML or JSON) on stdin, run its init container, print the files.
    Run {
        /// The injector binary to place at the init container's command[0].
        #[arg(long)]
        injector: PathBuf,
        /// The projected service-account token's content.
        #[arg(long, default_value = "demo-web-identity-token")]
        token: String,
    },
}

fn read_pod() -> Value {
    let mut text = String::new();
    std::io::stdin()
        .read_to_string(&mut text)
        .expect("read stdin");
    serde_saphyr::from_str(&text).expect("a pod in YAML or JSON on stdin")
}

fn main() -> ExitCode {
    match Cli::parse().command {
        Command::EksIrsa {
            role_arn,
            region,
            env,
        } => {
            let mut pod = read_pod();
            let extra: Vec<(&str, &str)> = env
                .iter()
                .map(|kv| kv.split_once('=').expect("--env takes NAME=VALUE"))
                .collect();
            eks::add_irsa(&mut pod, &role_arn, &region, &extra);
            println!("{}", serde_json::to_string_pretty(&pod).expect("JSON"));
            ExitCode::SUCCESS
        }
        Command::Run { injector, token } => {
            let pod = read_pod();
            let volumes = kubelet::Volumes::for_pod(&pod, &token);
            let run = kubelet::run_init_container(&pod, &volumes, &injector);
            for line in run.stdout.lines() {
                println!("injector log: {line}");
            }
            eprint!("{}", run.stderr);
            if run.exit_code != 0 {
                eprintln!(
                    "init container failed with exit code {}; termination message:\n{}",
                    run.exit_code, run.termination_log
                );
                return ExitCode::FAILURE;
            }
            for (path, file) in &run.files {
                println!("--- {path} (mode {:04o})", file.mode);
                println!("{}", String::from_utf8_lossy(&file.content));
            }
            ExitCode::SUCCESS
        }
    }
}
