//! Command-line front of the test harness, for `scripts/demo.sh` and for debugging by hand:
//! `kubelet-sim eks-irsa` does what the EKS pod-identity webhook does to a pod, and
//! `kubelet-sim run` runs the pod's containers with podman as a node would (the init containers,
//! then the app containers, from the images the pod names) and prints what each printed.

use std::io::Read;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use secrets_injector_e2e::{eks, pod_runner, podman};
use serde_json::{Value, json};
use std::time::{SystemTime, UNIX_EPOCH};

#[derive(Parser)]
#[command(about = "Run a pod's containers with podman the way a node does")]
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
    /// Read a pod (YAML or JSON) on stdin, run its containers, print their output.
    Run {
        /// The projected service-account token's content.
        #[arg(long, default_value = "demo-web-identity-token")]
        token: String,
        /// Run every container in this network namespace (`ip netns add NAME`) instead of the
        /// host's network.
        #[arg(long)]
        netns: Option<String>,
        /// Write when each container's `podman run` started and returned, and podman's name for
        /// it, to this file (JSON), for timing a pod's start (scripts/bench/podstart.py).
        #[arg(long)]
        timings: Option<std::path::PathBuf>,
    },
    /// Build the busybox app image when needed and print its name.
    AppImage,
}

fn read_pod() -> Value {
    let mut text = String::new();
    std::io::stdin()
        .read_to_string(&mut text)
        .expect("read stdin");
    serde_saphyr::from_str(&text).expect("a pod in YAML or JSON on stdin")
}

/// Each container's name, podman's name for it, exit code, and when its `podman run` started and
/// returned (seconds since the epoch).
fn timings_json(run: &pod_runner::PodRun) -> Value {
    let seconds = |t: SystemTime| {
        t.duration_since(UNIX_EPOCH)
            .map_or(0.0, |d| d.as_secs_f64())
    };
    let containers: Vec<Value> = run
        .containers
        .iter()
        .map(|c| {
            json!({
                "name": c.name,
                "exit_code": c.exit_code,
                "run_name": c.times.as_ref().map(|t| t.run_name.clone()),
                "invoked": c.times.as_ref().map(|t| seconds(t.invoked)),
                "returned": c.times.as_ref().map(|t| seconds(t.returned)),
            })
        })
        .collect();
    json!({ "containers": containers })
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
        Command::AppImage => {
            println!("{}", podman::app_image());
            ExitCode::SUCCESS
        }
        Command::Run {
            token,
            netns,
            timings,
        } => {
            let pod = read_pod();
            // The busybox app image the demo's app container runs.
            podman::app_image();
            let volumes = pod_runner::Volumes::for_pod(&pod, &token);
            let network = netns.map_or(pod_runner::Network::Host, pod_runner::Network::Namespace);
            let run = pod_runner::run_pod_on(&pod, &volumes, &network);
            if let Some(path) = timings {
                std::fs::write(&path, timings_json(&run).to_string())
                    .unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
            }
            let mut ok = true;
            for container in &run.containers {
                println!(
                    "--- container {} exited with {}",
                    container.name, container.exit_code
                );
                print!("{}", container.stdout);
                eprint!("{}", container.stderr);
                if container.exit_code != 0 {
                    ok = false;
                    eprintln!("termination message:\n{}", container.termination_message);
                }
            }
            if ok {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            }
        }
    }
}
