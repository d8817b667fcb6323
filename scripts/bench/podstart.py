"""A pod's start end to end with podman: the seeds' example pod (manifests/examples/pod.yaml: one
parameter, one secret with two JSON keys) as EKS hands it over (IRSA), mutated by the real webhook
(`webhook inject`), run by the pod runner (`kubelet-sim run`: the injector image's init container,
then the app), against the same pod without injection.

Times come from podman's own events (`create`, `init`, `start`, `died` of each container, wall
clock to the nanosecond) and from when the runner started each `podman run`; the injector's calls
from the bench proxy's timeline. Started by run.py (part `podstart`).
"""

import datetime
import json
import shutil
import subprocess
import time
from pathlib import Path

import benchlib as bl
import floor

# The seeds' objects, as scripts/demo.sh seeds them.
PARAMETER = ("/test/parameter", "gonitest")
SECRET = ("test/secret", json.dumps({"username": "example", "password": "example1234"}, separators=(",", ":")))
# What the app container reads: path translation `_` of the parameter's name, and a jmesPath alias.
FILES = {"_test_parameter": PARAMETER[1], "SECRET_USERNAME": "example"}


def seed(moto_port: int) -> None:
    import boto3  # noqa: PLC0415

    session = boto3.session.Session(aws_access_key_id="seed", aws_secret_access_key="seed", region_name=bl.REGION)
    endpoint = f"http://127.0.0.1:{moto_port}"
    session.client("ssm", endpoint_url=endpoint).put_parameter(
        Name=PARAMETER[0], Value=PARAMETER[1], Type="SecureString", Overwrite=True)
    sm = session.client("secretsmanager", endpoint_url=endpoint)
    try:
        sm.create_secret(Name=SECRET[0], SecretString=SECRET[1])
    except sm.exceptions.ResourceExistsException:
        sm.put_secret_value(SecretId=SECRET[0], SecretString=SECRET[1])


def pods(bench, proxy_port: int, image: str, work: Path):
    """(plain, injected): the example pod with IRSA and its app command, without and with the
    webhook's mutation, as the text `kubelet-sim run` reads."""
    example = (bl.ROOT / "manifests" / "examples" / "pod.yaml").read_text()
    out = subprocess.run([bench.bin / "kubelet-sim", "eks-irsa", "--role-arn", bl.ROLE_ARN, "--region", bl.REGION,
                          "--env", f"AWS_ENDPOINT_URL=http://127.0.0.1:{proxy_port}"],
                         input=example, capture_output=True, text=True, check=True).stdout
    pod = json.loads(out)
    app = pod["spec"]["containers"][0]
    # nginx cannot be pulled here: the app is the runner's busybox image, printing two of the files
    # (nothing without injection: the same command starts in both pods).
    app["image"] = subprocess.run([bench.bin / "kubelet-sim", "app-image"], capture_output=True, text=True,
                                  check=True).stdout.strip()
    reads = " ".join(f"/mnt/secrets-store/{name}" for name in FILES)
    app["command"] = ["/bin/busybox", "sh", "-c", f"/bin/busybox cat {reads} 2>/dev/null; exit 0"]
    plain = json.loads(json.dumps(pod))
    del plain["metadata"]["annotations"]["secrets-injector.io/objects"]
    source = work / "pod.json"
    source.write_text(json.dumps(pod))
    injected = subprocess.run([bench.webhook, "inject", "-f", source, "--injector-image", image,
                               "--default-region", bl.REGION], capture_output=True, text=True, check=True).stdout
    # kubelet-sim reads YAML or JSON.
    return json.dumps(plain), injected


def events(since: float, names) -> dict:
    """{run name: {status: wall-clock seconds}} from podman's event log."""
    out = subprocess.run(["podman", "events", "--stream=false", "--since", f"{since:.3f}", "--format", "json"],
                         capture_output=True, text=True, check=True).stdout
    want = set(names)
    got = {n: {} for n in want}
    for line in out.splitlines():
        e = json.loads(line)
        if e.get("Type") == "container" and e.get("Name") in want:
            got[e["Name"]].setdefault(e["Status"], wall_seconds(e["Time"]))
    return got


def wall_seconds(text: str) -> float:
    """podman's RFC 3339 time with nanoseconds, as seconds since the epoch (to the microsecond)."""
    date, _, frac = text.rstrip("Z").partition(".")
    frac = (frac + "000000000")[:9]
    base = datetime.datetime.fromisoformat(date).replace(tzinfo=datetime.timezone.utc).timestamp()
    return base + int(frac) / 1e9


def one(bench, pod: str, work: Path, tag: str, expect_files: bool) -> dict:
    """One run of the pod: its containers' times, relative to the first `podman run` started."""
    d = work / tag
    shutil.rmtree(d, ignore_errors=True)
    d.mkdir()
    timings = d / "timings.json"
    since = time.time() - 1
    bench.proxy.reset()
    # time.monotonic() and the wall clock, to place the proxy's timeline among podman's events.
    offset = time.time() - time.monotonic()
    r = subprocess.run([bench.bin / "kubelet-sim", "run", "--timings", timings], input=pod,
                       capture_output=True, text=True, timeout=600)
    stats = bench.proxy.stats()
    if r.returncode != 0:
        raise RuntimeError(f"podstart {tag}: kubelet-sim run exited {r.returncode}: {r.stderr[-2000:]}")
    printed = "".join(FILES.values())
    if expect_files and printed not in r.stdout.replace("\n", ""):
        raise RuntimeError(f"podstart {tag}: the app did not read the files: {r.stdout[-1000:]}")
    runs = json.loads(timings.read_text())["containers"]
    ev = events(since, [c["run_name"] for c in runs])
    t0 = runs[0]["invoked"]
    out = {"containers": []}
    for c in runs:
        e = ev[c["run_name"]]
        missing = {"create", "init", "start", "died"} - set(e)
        if missing:
            raise RuntimeError(f"podstart {tag}: no podman event {sorted(missing)} for {c['name']}")
        out["containers"].append({"name": c["name"], **{k: (v - t0) * 1000 for k, v in e.items()},
                                  "invoked": (c["invoked"] - t0) * 1000, "returned": (c["returned"] - t0) * 1000})
    # The injector's summary line (its stdout, which kubelet-sim prints): how long its run took
    # and when it had written the files.
    for line in r.stdout.splitlines():
        if line.startswith("{") and '"files written"' in line:
            e = json.loads(line)
            out["injector_run_ms"] = e["duration_ms"]
            written = datetime.datetime.fromisoformat(e["timestamp"].replace("Z", "+00:00")).timestamp()
            out["files_written"] = (written - t0) * 1000
    timeline = sorted(stats["timeline"])
    if timeline:
        out["first_call"] = (timeline[0][0] + offset - t0) * 1000
        out["last_answer"] = (max(t[5] for t in timeline) + offset - t0) * 1000
        out["calls"] = stats["calls"]
    shutil.rmtree(d, ignore_errors=True)
    return out


def run(bench) -> dict:
    image = bench.args.injector_image
    if not image:
        raise RuntimeError("part podstart needs --injector-image (scripts/bench.sh builds it with scripts/images.sh)")
    moto, proxy = bench.aws()
    seed(moto)
    work = bench.work / "podstart"
    work.mkdir(exist_ok=True)
    plain, injected = pods(bench, proxy.port, image, work)
    machine = {"loadavg": bl.load_average(), "busy": bl.busy_processes(), "at": time.strftime("%H:%M:%S")}
    proxy.config(bench.rtt_ms)
    passes = floor.Passes(moto, params=[PARAMETER], secrets=[SECRET])
    reps = bench.runs(10, 2)
    bl.log(f"podstart: the example pod with and without injection, in turn, {reps} times each")
    one(bench, plain, work, "warm-plain", False)
    one(bench, injected, work, "warm-injected", True)
    rows = []
    for n in range(reps):
        passes.one()
        # The order turns each time: drift falls on both alike.
        order = [("plain", plain, False), ("injected", injected, True)]
        if n % 2:
            order.reverse()
        row = {}
        for key, pod, files in order:
            row[key] = one(bench, pod, work, f"{key}-{n}", files)
        rows.append(row)
    return {"rtt_ms": bench.rtt_ms, "image": image, "reps": reps, "rows": rows, "floor": passes.summary(bench.rtt_ms),
            "image_bytes": image_size(image), "machine": machine}


def image_size(image: str) -> int:
    out = subprocess.run(["podman", "image", "inspect", "--format", "{{.Size}}", image],
                         capture_output=True, text=True, check=True).stdout
    return int(out.strip())


def figures(r: dict) -> dict:
    """Medians of the phases of the injected pod, and of the plain pod's app start."""
    def med(f):
        return bl.median([f(row) for row in r["rows"]])

    def c(row, key, name):
        return next(x for x in row[key]["containers"] if x["name"] == name)

    app = lambda row, key: row[key]["containers"][-1]  # noqa: E731
    inj = lambda row: c(row, "injected", "secrets-injector")  # noqa: E731
    return {
        "plain_app_start": med(lambda row: app(row, "plain")["start"]),
        "injected_app_start": med(lambda row: app(row, "injected")["start"]),
        "added": med(lambda row: app(row, "injected")["start"] - app(row, "plain")["start"]),
        "injector_start": med(lambda row: inj(row)["start"]),
        "injector_create": med(lambda row: inj(row)["create"]),
        "injector_run": med(lambda row: inj(row)["died"] - inj(row)["start"]),
        "to_first_call": med(lambda row: row["injected"]["first_call"] - inj(row)["start"]),
        "calls": med(lambda row: row["injected"]["last_answer"] - row["injected"]["first_call"]),
        "after_last_answer": med(lambda row: inj(row)["died"] - row["injected"]["last_answer"]),
        "injector_own": med(lambda row: row["injected"]["injector_run_ms"]),
        "written_to_died": med(lambda row: inj(row)["died"] - row["injected"]["files_written"]),
        "handover": med(lambda row: app(row, "injected")["start"] - inj(row)["died"]),
        "injector_teardown": med(lambda row: inj(row)["returned"] - inj(row)["died"]),
        "between": med(lambda row: app(row, "injected")["invoked"] - inj(row)["returned"]),
        "app_own_start": med(lambda row: app(row, "injected")["start"] - app(row, "injected")["invoked"]),
    }


def render(r: dict, out: list) -> None:
    f = figures(r)
    fl = r["floor"]
    out += [
        "### 6. A pod's start end to end (podman)",
        "",
        f"Command: `./scripts/bench.sh podstart`. The example pod (`manifests/examples/pod.yaml`: 1 parameter, "
        f"1 secret, 3 files) with IRSA, mutated by `webhook inject`, run by `kubelet-sim run` (podman {r['image']}, "
        f"{r['image_bytes'] / 1e6:.1f} MB) then the app (busybox), against the same pod without the annotation; "
        f"{r['reps']} runs of each in turn, {r['rtt_ms']:.0f} ms round trip. Times from the first `podman run` "
        "started, podman's events (`start`: the container's process runs; `died`: it ended), medians:",
        "",
        "| phase | time |",
        "| --- | --- |",
        f"| pod without injection: first `podman run` to the app's `start` | {f['plain_app_start']:.0f} ms |",
        f"| pod with injection: first `podman run` to the app's `start` | {f['injected_app_start']:.0f} ms |",
        f"| **added by injection** | **{f['added']:.0f} ms** |",
        f"| of which the injector's container start (`podman run` to its `start`) | {f['injector_start']:.0f} ms |",
        f"| of which the injector's process (`start` to `died`): fetch and files | {f['injector_run']:.0f} ms |",
        f"| &nbsp;&nbsp;its start to its first call reaching the endpoint | {f['to_first_call']:.1f} ms |",
        f"| &nbsp;&nbsp;first call to last answer | {f['calls']:.1f} ms |",
        f"| &nbsp;&nbsp;last answer to `died` (files written, exit, seen by podman) | {f['after_last_answer']:.1f} ms |",
        f"| &nbsp;&nbsp;the injector's own account of its run (`duration_ms` of its summary line: objects parsed to "
        f"files written) | {f['injector_own']:.0f} ms |",
        f"| &nbsp;&nbsp;its files written (its log's timestamp) to `died` | {f['written_to_died']:.1f} ms |",
        f"| of which the injector's `died` to the app's `start` | {f['handover']:.0f} ms |",
        f"| &nbsp;&nbsp;`died` to the injector's `podman run` returning (podman ends and removes the container) | "
        f"{f['injector_teardown']:.0f} ms |",
        f"| &nbsp;&nbsp;the runner between two containers | {f['between']:.0f} ms |",
        f"| &nbsp;&nbsp;the app's `podman run` to its `start` (without injection: {f['plain_app_start']:.0f} ms) | "
        f"{f['app_own_start']:.0f} ms |",
        f"| floor of the fetch: 2 × {r['rtt_ms']:.0f} ms + moto's service time for the {fl['calls']} calls "
        f"({fl['service_ms']:.1f} ms) | {fl['floor_ms']:.1f} ms |",
        "",
        f"Machine: load average {r['machine']['loadavg']} at {r['machine']['at']}; busy: "
        f"{', '.join(r['machine']['busy']) or 'nothing else above 5% CPU'}.",
        "",
    ]
