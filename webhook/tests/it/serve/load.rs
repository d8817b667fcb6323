//! `webhook serve` over real HTTPS while the costliest pods a namespace can create are reviewed
//! several at once, more than there are review threads: 3,000 init containers each mounting one
//! of 3,000 volumes, and an objects annotation at its 64 KiB limit. Meanwhile `/healthz`,
//! `/readyz` and `/metrics` are polled: the reviews run on the review threads, never on the
//! threads that answer those, so every probe must be answered within 1 s (the kubelet's probes
//! time out at 2 s; a probe costs the server well under a millisecond). Every review gets its
//! answer, or, once every thread is in use and the queue full, a denial saying the webhook is
//! busy, counted as such; and the peak memory stays under the Deployment's limit (128 Mi).

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use secrets_injector_e2e::admission;
use secrets_injector_e2e::apiserver::{ApiServer, Mode};
use secrets_injector_e2e::https::{self, Client, SERVICE_NAME, Webhook};
use serde_json::{Value, json};

const IMAGE: &str = "registry.example.com/secrets-injector/injector:1.0.0";
const NAMESPACE: &str = "team-a";
/// The init containers and volumes of the big pod: the review's pod that took 20 s while the
/// work grew with the square of the pod (818 KB); a fraction of a second now that it is linear.
const BIG: usize = 12_000;
/// Reviews sent at once: more than the threads and the queue together.
const SENDERS: usize = 6;
/// Reviews each sender sends, one after the other.
const ROUNDS: usize = 3;
const THREADS: &str = "2";
const QUEUE: &str = "1";
/// The bound on every probe; the kubelet's own timeout is 2 s.
const PROBE_BOUND: Duration = Duration::from_secs(1);
/// The Deployment's memory limit.
const MEMORY_LIMIT_KIB: u64 = 128 * 1024;

fn program() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_webhook"))
}

const NORMAL: &str = "- objectName: /app/db\n  objectType: ssmparameter\n";

fn pod(name: &str, objects: &str) -> Value {
    json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "annotations": {"secrets-injector.io/objects": objects}},
        "spec": {"containers": [{"name": "app", "image": "app:1"}]}
    })
}

/// A pod that asks for objects, with BIG init containers, each mounting a volume of its own.
fn many_init_containers() -> Value {
    let mut pod = pod("many-init-containers", NORMAL);
    pod["spec"]["initContainers"] = (0..BIG)
        .map(|i| {
            json!({
                "name": format!("init-{i}"),
                "image": "busybox:1",
                "volumeMounts": [{"name": format!("volume-{i}"), "mountPath": format!("/data/{i}")}]
            })
        })
        .collect();
    pod["spec"]["volumes"] = (0..BIG)
        .map(|i| json!({"name": format!("volume-{i}"), "emptyDir": {}}))
        .collect();
    pod
}

/// A pod whose objects annotation is as long as allowed (64 KiB), all of it good objects.
fn annotation_at_the_limit() -> Value {
    let mut list = String::new();
    for i in 0.. {
        let item = format!("- objectName: /app/parameter-{i:05}\n  objectType: ssmparameter\n");
        if list.len() + item.len() > 64 * 1024 {
            break;
        }
        list.push_str(&item);
    }
    pod("annotation-at-the-limit", &list)
}

/// A field of `/proc/PID/status` in KiB (`VmHWM`).
fn status_kib(pid: u32, field: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("process status");
    status
        .lines()
        .find_map(|line| line.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|value| value.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or_else(|| panic!("no {field} in /proc/{pid}/status"))
}

/// The value of one series in the metrics text, 0 when absent.
fn series(metrics: &str, name: &str) -> u64 {
    metrics
        .lines()
        .find_map(|line| line.strip_prefix(name)?.strip_prefix(' '))
        .map_or(0, |value| value.trim().parse().expect("a series value"))
}

/// `GET /metrics` on the plain-HTTP listener: the status and the text.
fn scrape(addr: SocketAddr) -> std::io::Result<(u16, String)> {
    let mut socket = TcpStream::connect_timeout(&addr, Duration::from_secs(10))?;
    socket.set_read_timeout(Some(Duration::from_secs(10)))?;
    socket.write_all(b"GET /metrics HTTP/1.1\r\nHost: metrics\r\nConnection: close\r\n\r\n")?;
    let mut raw = Vec::new();
    socket.read_to_end(&mut raw)?;
    let raw = String::from_utf8_lossy(&raw).into_owned();
    let status = raw
        .get(9..12)
        .and_then(|code| code.parse().ok())
        .unwrap_or(0);
    Ok((status, raw))
}

/// A `webhook serve` with certificates of its own, and the API server it reads
/// SecretProviderClasses from when `--csi-volumes=rewrite` is given.
struct Server {
    webhook: Webhook,
    ca: PathBuf,
    _api: Option<ApiServer>,
    _dir: tempfile::TempDir,
}

impl Server {
    fn start(csi_rewrite: bool) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        https::make_certs(program(), dir.path(), &["--extra-san", "127.0.0.1"]);
        let (cert, key, ca) = (
            dir.path().join("tls.crt"),
            dir.path().join("tls.key"),
            dir.path().join("ca.crt"),
        );
        let mut args: Vec<std::ffi::OsString> = vec![
            "--tls-cert".into(),
            cert.clone().into(),
            "--tls-key".into(),
            key.clone().into(),
            "--injector-image".into(),
            IMAGE.into(),
            "--default-region=eu-west-1".into(),
            format!("--review-threads={THREADS}").into(),
            format!("--review-queue={QUEUE}").into(),
        ];
        let api = csi_rewrite.then(|| {
            let api = ApiServer::start(&cert, &key);
            api.set_mode(Mode::Serving);
            args.push("--csi-volumes=rewrite".into());
            args.push("--kubeconfig".into());
            args.push(api.kubeconfig(dir.path(), &ca).into());
            api
        });
        // As the Deployment runs it: arena memory committed only as it is used.
        let webhook = Webhook::start_with_env(program(), args, https::ALLOCATOR_ENV);
        let server = Self {
            webhook,
            ca,
            _api: api,
            _dir: dir,
        };
        server.wait_ready();
        server
    }

    fn client(&self) -> Client {
        Client::new(self.webhook.addr, SERVICE_NAME, &[&self.ca])
    }

    fn wait_ready(&self) {
        for _ in 0..600 {
            if self.client().get("/readyz").is_ok_and(|r| r.status == 200) {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!("never ready:\n{}", self.webhook.logs().join("\n"));
    }
}

/// How one review was answered.
#[derive(Debug, PartialEq, Eq)]
enum Answer {
    /// The pod's own answer, as without the load.
    Reviewed,
    /// Denied at once: no review thread for it.
    Busy,
}

/// Checks one answer: the request's uid, and either the pod's own answer or the busy denial,
/// which must say why and name the flags.
fn answer(uid: &str, response: &https::Response) -> Answer {
    assert_eq!(response.status, 200, "{uid}: {}", response.text());
    let review = response.json();
    let response = &review["response"];
    assert_eq!(response["uid"], uid, "{response}");
    let status = &response["status"];
    let message = status["message"].as_str().unwrap_or_default();
    if response["allowed"] == true || !message.starts_with("the webhook is busy") {
        assert_ne!(status["code"], 429, "{uid}: {message:.600}");
        return Answer::Reviewed;
    }
    assert_eq!(response["allowed"], false, "{response}");
    assert_eq!(
        (status["code"].as_u64(), status["reason"].as_str()),
        (Some(429), Some("TooManyRequests")),
        "{uid}: {message}"
    );
    let flags = format!(
        " (--review-threads={THREADS}, --review-queue={QUEUE}, --review-memory-bytes={}); retry \
         shortly",
        48 * 1024 * 1024
    );
    let cause = message
        .strip_prefix("the webhook is busy: ")
        .and_then(|rest| Some(&rest[..rest.find(&flags)?]))
        .unwrap_or_else(|| panic!("{uid}: {message}"));
    assert!(
        cause.starts_with("review threads in use: ")
            && cause.ends_with(&format!("reviews waiting: {QUEUE} of {QUEUE}"))
            || cause
                == format!(
                    "this review waited 3.0 s for a review thread, all {THREADS} being in use"
                )
            || cause.starts_with("this review waited 3.0 s for the ")
                && cause.ends_with(
                    " MiB of memory it needs, the reviews in progress holding the rest of 48 MiB"
                ),
        "{uid}: {message}"
    );
    Answer::Busy
}

/// What the probes saw.
#[derive(Debug, Default)]
struct Probes {
    answered: usize,
    slowest: Duration,
    too_slow: Vec<String>,
    /// Scrapes that saw every review thread in use: probes answered while the pool was full.
    while_full: usize,
}

/// Polls /healthz and /readyz (HTTPS, a new connection each, as the kubelet does) and /metrics
/// until `done` says every review is answered.
fn probe_until(server: &Server, done: &AtomicUsize, reviews: usize) -> Probes {
    let client = server.client();
    let threads: u64 = THREADS.parse().expect("threads");
    let mut probes = Probes::default();
    let record = |what: &str, elapsed: Duration, probes: &mut Probes| {
        probes.answered += 1;
        probes.slowest = probes.slowest.max(elapsed);
        if elapsed >= PROBE_BOUND {
            probes.too_slow.push(format!("{what}: {elapsed:?}"));
        }
    };
    while done.load(Ordering::SeqCst) < reviews {
        for path in ["/healthz", "/readyz"] {
            let started = Instant::now();
            let response = client.get(path);
            record(path, started.elapsed(), &mut probes);
            match response {
                Ok(response) => assert_eq!(response.status, 200, "{path}: {}", response.text()),
                Err(e) => probes.too_slow.push(format!("{path}: {e}")),
            }
        }
        let started = Instant::now();
        let scraped = scrape(server.webhook.metrics_addr);
        record("/metrics", started.elapsed(), &mut probes);
        match scraped {
            Ok((status, text)) => {
                assert_eq!(status, 200, "{text:.300}");
                if series(&text, "secrets_injector_reviews_in_progress") == threads {
                    probes.while_full += 1;
                }
            }
            Err(e) => probes.too_slow.push(format!("/metrics: {e}")),
        }
        // Fail as soon as the bound is broken, rather than after every review is answered.
        if !probes.too_slow.is_empty() {
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    probes
}

/// Sends the big pods SENDERS at a time, ROUNDS each, while probing; checks every answer, the
/// probes, the busy count against the metrics and the peak memory.
fn load(csi_rewrite: bool) {
    let server = Server::start(csi_rewrite);
    let pid = server.webhook.pid();
    let baseline = status_kib(pid, "VmRSS");
    let pods = [many_init_containers(), annotation_at_the_limit()];
    let bodies: Vec<Vec<Vec<u8>>> = (0..SENDERS)
        .map(|sender| {
            (0..ROUNDS)
                .map(|round| {
                    let pod = &pods[(sender + round) % pods.len()];
                    let uid = format!("load-{sender}-{round}");
                    admission::body(&admission::create_review(&uid, pod, NAMESPACE))
                })
                .collect()
        })
        .collect();
    eprintln!(
        "bodies: {} and {} bytes",
        bodies[0][0].len(),
        bodies[1][0].len()
    );
    let done = AtomicUsize::new(0);
    let started = Instant::now();
    let (answers, probes) = std::thread::scope(|scope| {
        let senders: Vec<_> = bodies
            .iter()
            .enumerate()
            .map(|(sender, rounds)| {
                let (client, done) = (server.client(), &done);
                scope.spawn(move || {
                    rounds
                        .iter()
                        .enumerate()
                        .map(|(round, body)| {
                            let uid = format!("load-{sender}-{round}");
                            let response = client.post_json("/mutate?timeout=10s", body);
                            done.fetch_add(1, Ordering::SeqCst);
                            answer(&uid, &response.expect("POST /mutate is answered"))
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        let probes = probe_until(&server, &done, SENDERS * ROUNDS);
        // Before the senders are joined, so a sender stuck behind the same fault cannot hide it.
        assert!(
            probes.too_slow.is_empty(),
            "probes over {PROBE_BOUND:?} or not answered: {:?}",
            probes.too_slow
        );
        let answers: Vec<Answer> = senders
            .into_iter()
            .flat_map(|sender| sender.join().expect("sender"))
            .collect();
        (answers, probes)
    });
    let elapsed = started.elapsed();
    let busy = answers.iter().filter(|a| **a == Answer::Busy).count();
    let peak = status_kib(pid, "VmHWM");
    let metrics = server.webhook.metrics();
    eprintln!(
        "csi rewrite {csi_rewrite}: {} reviews in {elapsed:?}, {busy} busy; {} probes, the slowest \
         {:?}, {} while every thread was in use; RSS {baseline} KiB at the start, peak {peak} KiB",
        answers.len(),
        probes.answered,
        probes.slowest,
        probes.while_full,
    );
    assert!(probes.answered >= 3, "{probes:?}");
    assert_eq!(
        series(&metrics, "secrets_injector_reviews_refused_busy_total"),
        busy as u64,
        "{metrics}"
    );
    assert!(
        answers.contains(&Answer::Reviewed),
        "no review was answered"
    );
    assert_eq!(series(&metrics, "secrets_injector_reviews_in_progress"), 0);
    assert_eq!(series(&metrics, "secrets_injector_reviews_waiting"), 0);
    assert!(
        peak < MEMORY_LIMIT_KIB,
        "peak RSS {peak} KiB over the Deployment's limit of {MEMORY_LIMIT_KIB} KiB"
    );
    // Still serving normally.
    let uid = "after-the-load";
    let body = admission::body(&admission::create_review(
        uid,
        &pod("after", NORMAL),
        NAMESPACE,
    ));
    let response = server
        .client()
        .post_json("/mutate", &body)
        .expect("POST /mutate");
    assert_eq!(answer(uid, &response), Answer::Reviewed);
}

#[test]
fn probes_stay_fast_while_big_pods_are_reviewed() {
    load(false);
}

#[test]
fn probes_stay_fast_while_big_pods_are_reviewed_with_csi_volumes_rewritten() {
    load(true);
}
