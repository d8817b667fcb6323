//! Seeds moto through boto3 (installed with moto in `.venv`), so tests that need no AWS SDK in
//! Rust can still create parameters and secrets exactly as an operator would.

use std::io::Write;
use std::process::{Command, Stdio};

use serde_json::{Value, json};

use crate::netns::NetNs;
use crate::tools::venv_program;

const SCRIPT: &str = r#"
import base64, json, sys, boto3
endpoint, region = sys.argv[1], sys.argv[2]
clients = {}
for call in json.load(sys.stdin):
    service = call["service"]
    if service not in clients:
        clients[service] = boto3.client(service, region_name=region, endpoint_url=endpoint)
    args = call["args"]
    if "SecretBinary" in args:
        args["SecretBinary"] = base64.b64decode(args["SecretBinary"])
    getattr(clients[service], call["op"])(**args)
"#;

/// One boto3 call: `service` ("ssm", "secretsmanager"), operation in snake case, arguments.
/// A `SecretBinary` argument is given in base64.
pub fn call(service: &str, op: &str, args: Value) -> Value {
    json!({"service": service, "op": op, "args": args})
}

pub fn parameter(name: &str, value: &str, kind: &str) -> Value {
    call(
        "ssm",
        "put_parameter",
        json!({"Name": name, "Value": value, "Type": kind, "Overwrite": true}),
    )
}

pub fn secret(name: &str, value: &str) -> Value {
    call(
        "secretsmanager",
        "create_secret",
        json!({"Name": name, "SecretString": value}),
    )
}

/// Runs the calls against moto at `endpoint` in `region`, with static seeding keys.
pub fn seed(endpoint: &str, region: &str, calls: &[Value]) {
    seed_with(
        Command::new(venv_program("python")),
        endpoint,
        region,
        calls,
    );
}

/// [`seed`] from inside a network namespace, for a moto only reachable there.
pub fn seed_in(netns: &NetNs, endpoint: &str, region: &str, calls: &[Value]) {
    seed_with(
        netns.command(venv_program("python")),
        endpoint,
        region,
        calls,
    );
}

fn seed_with(mut python: Command, endpoint: &str, region: &str, calls: &[Value]) {
    let mut child = python
        .args(["-c", SCRIPT, endpoint, region])
        .env("AWS_ACCESS_KEY_ID", "seed")
        .env("AWS_SECRET_ACCESS_KEY", "seed")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run the seeding script");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(&serde_json::to_vec(calls).expect("JSON"))
        .expect("write calls");
    let output = child.wait_with_output().expect("seeding script");
    assert!(
        output.status.success(),
        "seeding moto failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}
