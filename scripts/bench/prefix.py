"""Secrets Manager secrets by name prefix (`objectType: secretsmanagerpath`): 200 secrets under
one prefix over the 20 ms round trip.

- the injector: ListSecrets (100 a page, the pages one after another), then BatchGetSecretValue
  by ARN, 20 a call, the calls side by side;
- its floor: the round trips no client can avoid (credentials; each page, since a page needs the
  one before's token; then every read at once: 1 + 2 + 1) plus moto's own service time for exactly
  those calls, taken by a tiny client straight against moto, one call after another;
- External Secrets' way of reading a name pattern (`dataFrom.find.name` without `path`):
  ListSecrets, then one GetSecretValue per secret, one after another. `boto3_prefix.py` does
  exactly that in one boto3 process;
- the injector given the same 200 secrets as 200 `secretsmanager` objects (one GetSecretValue
  each, 16 in flight): what the batches save over the injector's own concurrency;
- the refresh sidecar over the prefix: the calls and time of a quiet cycle, and of a cycle in
  which one secret was rotated.

Started by run.py (part `prefix`).
"""

import json
import os
import shutil
import signal
import time
import xml.etree.ElementTree as ET

import benchlib as bl
import floor
import refresh

N = 200
PREFIX = "bench/folder/"
DIRECTORY = "folder"
PAGE = 100
BATCH = 20


def name(i: int) -> str:
    return f"{PREFIX}secret-{i:04d}"


def value(i: int) -> str:
    return bl.secret_value(i)


def seed(moto_port: int) -> None:
    """The 200 secrets, and a few whose names only start like the prefix."""
    import boto3  # noqa: PLC0415

    session = boto3.session.Session(aws_access_key_id="seed", aws_secret_access_key="seed", region_name=bl.REGION)
    sm = session.client("secretsmanager", endpoint_url=f"http://127.0.0.1:{moto_port}")
    for i in range(1, N + 1):
        sm.create_secret(Name=name(i), SecretString=value(i))
    for i in range(1, 6):
        sm.create_secret(Name=f"bench/folderX/secret-{i}", SecretString="outside the prefix")


def expected() -> dict:
    return {f"{DIRECTORY}/secret-{i:04d}": value(i).encode() for i in range(1, N + 1)}


def objects() -> str:
    return f'- {{objectName: "{PREFIX}", objectType: secretsmanagerpath, objectAlias: "{DIRECTORY}"}}\n'


def single_objects() -> tuple:
    """The same secrets as one `secretsmanager` object each, and the files they give."""
    text = "".join(f'- {{objectName: "{name(i)}", objectType: secretsmanager}}\n' for i in range(1, N + 1))
    files = {name(i).replace("/", "_"): value(i).encode() for i in range(1, N + 1)}
    return text, files


def _json_call(port: int, access_key: str, op: str, body: dict):
    data, conn, serve = floor._post(port, {
        "Content-Type": "application/x-amz-json-1.1",
        "X-Amz-Target": f"secretsmanager.{op}",
        "Authorization": floor._auth(access_key, "secretsmanager"),
    }, json.dumps(body).encode())
    return json.loads(data), conn, serve


def one_pass(port: int):
    """(service seconds, connect seconds, calls) of the injector's calls, one after another,
    straight against moto."""
    calls = []
    sts_body = ("Action=AssumeRoleWithWebIdentity&Version=2011-06-15&RoleArn=" + bl.ROLE_ARN
                + "&RoleSessionName=floor&WebIdentityToken=bench-web-identity-token").encode()
    data, conn, serve = floor._post(port, {"Content-Type": "application/x-www-form-urlencoded; charset=utf-8"}, sts_body)
    calls.append((conn, serve))
    ns = {"s": "https://sts.amazonaws.com/doc/2011-06-15/"}
    access_key = ET.fromstring(data).find(".//s:AccessKeyId", ns).text
    arns, token = [], None
    while True:
        body = {"Filters": [{"Key": "name", "Values": [PREFIX]}], "MaxResults": PAGE}
        if token:
            body["NextToken"] = token
        page, conn, serve = _json_call(port, access_key, "ListSecrets", body)
        calls.append((conn, serve))
        arns += [s["ARN"] for s in page["SecretList"] if s["Name"].startswith(PREFIX)]
        token = page.get("NextToken")
        if not token:
            break
    if len(arns) != N:
        raise RuntimeError(f"floor: ListSecrets found {len(arns)} of {N}")
    for start in range(0, N, BATCH):
        got, conn, serve = _json_call(port, access_key, "BatchGetSecretValue", {"SecretIdList": arns[start:start + BATCH]})
        if len(got["SecretValues"]) != len(arns[start:start + BATCH]):
            raise RuntimeError("floor: BatchGetSecretValue answered short")
        calls.append((conn, serve))
    return sum(s for _, s in calls), sum(c for c, _ in calls), len(calls)


class Passes:
    def __init__(self, moto_port: int):
        self.port = moto_port
        one_pass(moto_port)  # warm moto's code paths
        self.service, self.connects, self.calls = [], [], 0

    def one(self) -> None:
        service, conn, calls = one_pass(self.port)
        self.service.append(service)
        self.connects.append(conn)
        self.calls = calls

    def summary(self, rtt_ms: float) -> dict:
        pages = -(-N // PAGE)
        trips = 1 + pages + 1
        service = bl.median(self.service)
        return {"calls": self.calls, "passes": len(self.service), "service_ms": service * 1000,
                "connect_ms": bl.median(self.connects) * 1000, "round_trips": trips, "rtt_ms": rtt_ms,
                "floor_ms": service * 1000 + trips * rtt_ms}


def eso_floor(rtt_ms: float) -> dict:
    """External Secrets' way, as round trips alone: credentials, each page, then each secret one
    after another (no service time: a floor that favours it)."""
    pages = -(-N // PAGE)
    calls = 1 + pages + N
    return {"calls": calls, "round_trips": calls, "floor_ms": calls * rtt_ms}


def quiet_cycles(bench, rtt_ms: float, interval_s: int = 3, quiet: int = 4) -> dict:
    """The refresh sidecar over the prefix: quiet cycles, then one rotated secret."""
    moto, proxy = bench.aws()
    proxy.config(rtt_ms)
    d = bench.work / "runs" / "prefix-refresh"
    shutil.rmtree(d, ignore_errors=True)
    d.mkdir(parents=True)
    env = bl.aws_env(d, proxy.port)
    mount = d / "mount"
    mount.mkdir()
    argv = bench.injector_argv(mount, objects(), d / "termination-log")
    r = bl.run_once(argv, env, d / "init.stderr")
    if r.status != 0:
        raise RuntimeError(f"the init run failed: {r.stderr()[-2000:]}")
    stdout = d / "stdout"
    pid, _ = bl.spawn([bench.injector, "refresh", *argv[1:], f"--interval={interval_s}s"], env,
                      stdout_path=stdout, stderr_path=d / "stderr")
    lines = lambda: refresh.of(refresh.cycles(stdout), "refresh cycle")  # noqa: E731
    try:
        # The first cycle reads every value once; the quiet ones follow.
        refresh.wait_for(f"{quiet + 1} cycles", lambda: len(lines()) >= quiet + 1, pid)
        quiet_lines = lines()[1:quiet + 1]
        import boto3  # noqa: PLC0415
        session = boto3.session.Session(aws_access_key_id="seed", aws_secret_access_key="seed", region_name=bl.REGION)
        sm = session.client("secretsmanager", endpoint_url=f"http://127.0.0.1:{moto}")
        sm.put_secret_value(SecretId=name(7), SecretString=value(7)[:-1] + ', "rotated": 1}')
        n = len(lines())
        rotated = refresh.wait_for("the rotated secret", lambda: [c for c in lines()[n:] if c["outcome"] == "updated"], pid)[0]
        if (mount / DIRECTORY / "secret-0007").read_text() == value(7):
            raise RuntimeError("the rotated secret did not reach its file")
    finally:
        os.kill(pid, signal.SIGTERM)
        os.waitpid(pid, 0)
        sm_reset(moto)
    keys = ("list_secrets", "batch_get_secret_value", "get_secret_value", "describe_secret")
    return {
        "interval_s": interval_s,
        "quiet": [{k: c[k] for k in (*keys, "duration_ms", "outcome")} for c in quiet_lines],
        "rotated": {k: rotated[k] for k in (*keys, "duration_ms", "outcome")},
    }


def sm_reset(moto_port: int) -> None:
    import boto3  # noqa: PLC0415
    session = boto3.session.Session(aws_access_key_id="seed", aws_secret_access_key="seed", region_name=bl.REGION)
    sm = session.client("secretsmanager", endpoint_url=f"http://127.0.0.1:{moto_port}")
    sm.put_secret_value(SecretId=name(7), SecretString=value(7))


def run(bench, rtt_ms: float) -> dict:
    moto, _ = bench.aws()
    bl.log(f"prefix: seeding {N} secrets under {PREFIX}")
    seed(moto)
    res = {"secrets": N, "rtt_ms": rtt_ms, "machine_before": bench_machine()}
    want = expected()
    inj = lambda m, d: bench.injector_argv(m, objects(), d / "termination-log")  # noqa: E731
    passes = Passes(moto)
    bl.log("prefix: injector and floor")
    res["injector"] = bench.timed("prefix", inj, want, bench.runs(20, 5), 2, rtt_ms, before_each=passes.one)
    res["floor"] = passes.summary(rtt_ms)
    bl.log("prefix: injector, 200 secretsmanager objects")
    text, files = single_objects()
    singles = lambda m, d: bench.injector_argv(m, text, d / "termination-log")  # noqa: E731
    res["singles"] = bench.timed("prefix-singles", singles, files, bench.runs(10, 3), 1, rtt_ms)
    bl.log("prefix: boto3, External Secrets' way")
    boto = lambda m, d: [bl.PY, bl.BENCH / "boto3_prefix.py", m, DIRECTORY, PREFIX]  # noqa: E731
    res["boto3"] = bench.timed("prefix-boto3", boto, want, bench.runs(5, 2), 1, rtt_ms, memory_runs=1)
    res["eso"] = eso_floor(rtt_ms)
    bl.log("prefix: refresh sidecar")
    res["refresh"] = quiet_cycles(bench, rtt_ms)
    res["machine_after"] = bench_machine()
    return res


def bench_machine() -> dict:
    return {"loadavg": bl.load_average(), "busy": bl.busy_processes(), "at": time.strftime("%H:%M:%S")}


def render(r: dict, out: list) -> None:
    def ms(x):
        return f"{x:.0f} ms" if x >= 100 else f"{x:.1f} ms"

    f, inj, boto, singles, eso = r["floor"], r["injector"], r["boto3"], r["singles"], r["eso"]
    t = inj["wall_ms"]["median"]
    calls = lambda c: sum(c.values())  # noqa: E731
    sm_calls = lambda c: ", ".join(f"{v} {k.split(':')[1]}" for k, v in sorted(c.items()))  # noqa: E731
    out += [
        f"### Secrets Manager prefix: {r['secrets']} secrets under one name prefix, {r['rtt_ms']:.0f} ms round trip",
        "",
        f"Command: `./scripts/bench.sh prefix`. Medians of {inj['runs']} injector runs, {singles['runs']} runs of "
        f"the 200 single objects and {boto['runs']} boto3 runs; every run's files checked byte for byte.",
        "",
        "| client | wall time | calls | × injector |",
        "| --- | --- | --- | --- |",
        f"| injector, one `secretsmanagerpath` object | {ms(t)} (min {ms(inj['wall_ms']['min'])}, p90 "
        f"{ms(inj['wall_ms']['p90'])}) | {sm_calls(inj['calls'])} = {calls(inj['calls'])} | 1 |",
        f"| floor: {f['round_trips']} round trips + moto's service time for the {f['calls']} calls "
        f"({ms(f['service_ms'])}, one after another) | {ms(f['floor_ms'])} | {f['calls']} | "
        f"{f['floor_ms'] / t:.2f} |",
        f"| External Secrets' way (ListSecrets, then GetSecretValue one after another), its round trips alone "
        f"| ≥ {ms(eso['floor_ms'])} | {eso['calls']} | ≥ {eso['floor_ms'] / t:.1f} |",
        f"| boto3 script doing the same (`boto3_prefix.py`) | {ms(boto['wall_ms']['median'])} | "
        f"{sm_calls(boto['calls'])} = {calls(boto['calls'])} | {boto['wall_ms']['median'] / t:.1f} |",
        f"| injector, the 200 secrets as 200 `secretsmanager` objects (16 in flight) | "
        f"{ms(singles['wall_ms']['median'])} | {sm_calls(singles['calls'])} = {calls(singles['calls'])} | "
        f"{singles['wall_ms']['median'] / t:.1f} |",
        "",
        f"**Injector ÷ floor: {t / f['floor_ms']:.2f}×** (target under 2×); peak RSS {inj['maxrss_kib'] / 1024:.1f} MiB "
        f"(boto3 {boto['maxrss_kib'] / 1024:.1f} MiB).",
        "",
    ]
    rf = r["refresh"]
    q = rf["quiet"]
    out += [
        f"Refresh sidecar over the same prefix (`--interval={rf['interval_s']}s`), per cycle:",
        "",
        "| cycle | ListSecrets | BatchGetSecretValue | GetSecretValue | DescribeSecret | duration |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for c in q:
        out.append(f"| quiet ({c['outcome']}) | {c['list_secrets']} | {c['batch_get_secret_value']} | "
                   f"{c['get_secret_value']} | {c['describe_secret']} | {c['duration_ms']} ms |")
    c = rf["rotated"]
    out += [
        f"| one secret rotated ({c['outcome']}) | {c['list_secrets']} | {c['batch_get_secret_value']} | "
        f"{c['get_secret_value']} | {c['describe_secret']} | {c['duration_ms']} ms |",
        "",
    ]
