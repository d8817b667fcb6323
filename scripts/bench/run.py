"""The benchmark suite of secrets-injector (see BENCHMARKS.md). Started by scripts/bench.sh, which
installs the tools and builds the release binaries and the injector as its image ships it first.

Parts (all by default):
  injector  one init container: 40 parameters + 10 secrets over a 20 ms round trip, against
            the floor, a boto3 script and an AWS CLI shell script; the injector builds (the
            image's, the release build, --ab's) run in turn, wall and CPU time of each
  webhook   HTTPS POST /mutate under load, against GET /healthz on the same listener
  storm     60 and 300 pods starting at once under Parameter Store's 40 calls/s quota
  growth    injector and webhook cost for growing object and container counts
  refresh   one refresh sidecar (idle memory and CPU, fetch-to-swap time), then 300 sidecars
            under Parameter Store's quota
  podstart  the example pod mutated by the webhook and run with podman (the injector image,
            then the app), against the same pod without injection
  prefix    200 Secrets Manager secrets under one name prefix (secretsmanagerpath) against the
            floor, External Secrets' way and a boto3 script; the refresh sidecar's quiet cycle

Writes target/bench/results.json and target/bench/report.md; --update-doc also puts the report
into BENCHMARKS.md between its result markers.
"""

import argparse
import datetime
import json
import os
import resource
import shutil
import ssl
import http.client
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import benchlib as bl
import floor
import pods
import podstart
import prefix
import refresh
import report

RTT_MS = 20.0


class Build:
    """One injector binary the injector part times: a key for the results, a label, its path."""

    def __init__(self, key: str, label: str, path: Path):
        self.key, self.label, self.path = key, label, path


class Bench:
    def __init__(self, args, workdir: Path):
        self.args = args
        self.work = workdir
        self.bin = Path(args.bin_dir)
        self.webhook = self.bin / "webhook"
        # The injector builds the injector part pairs run by run; the first is the one every
        # other part times: the image's when it was built, else the release build.
        self.builds = []
        if args.shipped:
            self.builds.append(Build("shipped", "shipped: static, profile `injector`", Path(args.shipped)))
        self.builds.append(Build("release", "release profile", self.bin / "injector"))
        labels = args.ab_label or []
        for i, path in enumerate(args.ab or []):
            label = labels[i] if i < len(labels) else path
            self.builds.append(Build(f"ab{i + 1}", label, Path(path)))
        self.injector = self.builds[0].path
        self.procs = bl.Processes(workdir)
        self.results = {"started": time.strftime("%Y-%m-%d %H:%M:%S %Z"), "quick": args.quick,
                        "machine": machine_facts(), "parts": {}}
        self.rtt_ms = RTT_MS
        self.moto = None
        self.moto_proc = None
        self.proxy = None

    def runs(self, full: int, quick: int) -> int:
        return quick if self.args.quick else full

    # ---- shared services ---------------------------------------------------------------
    def aws(self):
        if self.moto is None:
            self.moto = bl.start_moto(self.procs)
            self.moto_proc = self.procs.procs[-1][1]
            bl.log(f"moto on {self.moto}; seeding 400 parameters and 100 secrets")
            bl.seed(self.moto, 400, 100)
            port = bl.start_proxy(self.procs, self.moto, RTT_MS)
            self.proxy = bl.Proxy(port)
        return self.moto, self.proxy

    def env(self, run_id: str) -> dict:
        """A fresh HOME per run, so no client reuses a credentials cache of an earlier run."""
        d = self.work / "runs" / run_id
        if d.exists():
            shutil.rmtree(d)
        d.mkdir(parents=True)
        env = bl.aws_env(d, self.proxy.port)
        return env

    def injector_argv(self, mount: Path, objects: str, tlog: Path, injector=None):
        # One --flag=value word each, as the webhook writes them.
        return [injector or self.injector, f"--mount-path={mount}", f"--region={bl.REGION}", f"--objects={objects}",
                f"--termination-log={tlog}"]

    # ---- one client, timed -------------------------------------------------------------
    def one_run(self, label: str, run_id: str, argv_for, expected: dict, extra_env=None, memory=False):
        """One run of a client with a fresh HOME and mount; checks it wrote exactly the expected
        files. Returns its figures, or with `memory` its peak RSS under GNU time (KiB)."""
        rundir = self.work / "runs" / run_id
        env = {**self.env(run_id), **(extra_env or {})}
        mount = rundir / "mount"
        mount.mkdir()
        argv = argv_for(mount, rundir)
        if memory:
            argv = bl.under_gnu_time(argv, rundir / "rss")
        self.proxy.reset()
        pid, start = bl.spawn(argv, env, stdout_path=rundir / "stdout", stderr_path=rundir / "stderr")
        r = bl.wait(pid, start, rundir / "stderr")
        # The wall clock of time.monotonic()'s zero, to place the injector's log timestamps.
        r.wall_offset = time.time() - time.monotonic()
        stats = self.proxy.stats()
        if r.status != 0:
            gone = "" if self.moto_proc.poll() is None else \
                f"\nmoto is no longer running (exit {self.moto_proc.returncode}): something outside the suite stopped it"
            raise RuntimeError(f"{label} exited {r.status}: {r.stderr()[-2000:]}\n"
                               f"calls {stats['calls']}, errors {stats['errors']}{gone}")
        got = bl.read_files(mount)
        if got != expected:
            missing = sorted(set(expected) - set(got))[:5]
            wrong = sorted(k for k in expected if k in got and got[k] != expected[k])[:5]
            raise RuntimeError(f"{label}: files differ (missing {missing}, wrong {wrong}, {len(got)} files)")
        out = bl.read_rss(rundir / "rss") if memory else \
            {"wall_ms": r.wall * 1000, "cpu_ms": r.cpu * 1000, "calls": stats["calls"], "errors": stats["errors"],
             "phases": phases(r, stats["timeline"]), "spans": spans(rundir / "stdout", r)}
        shutil.rmtree(rundir)
        return out

    def paired(self, tag: str, builds, argv_for, expected: dict, reps: int, warmup: int, delay_ms: float,
               before_each=None, memory_runs: int = 3) -> dict:
        """Every build once per repetition, one after another, the order turned by one each time
        (A B C, B C A, ...), so that a load that comes and goes falls on all of them alike.
        `argv_for(path, mount, rundir)`; `before_each` runs once before each timed repetition."""
        self.proxy.config(delay_ms)
        runs = {b.key: [] for b in builds}
        for n in range(warmup + reps):
            if before_each and n >= warmup:
                before_each()
            k = n % len(builds)
            for b in builds[k:] + builds[:k]:
                r = self.one_run(b.label, f"{tag}-{b.key}-{n}", lambda m, d, p=b.path: argv_for(p, m, d), expected)
                if n >= warmup:
                    runs[b.key].append(r)
        rss = {b.key: [self.one_run(b.label, f"{tag}-{b.key}-rss{n}", lambda m, d, p=b.path: argv_for(p, m, d),
                                    expected, memory=True) for n in range(memory_runs)] for b in builds}
        out = {"builds": {b.key: summarize(runs[b.key], rss[b.key]) for b in builds}, "pairs": {}}
        first = builds[0].key
        for b in builds[1:]:
            a, o = runs[first], runs[b.key]
            out["pairs"][b.key] = {
                "reps": len(a),
                "first_faster": sum(1 for x, y in zip(a, o) if x["wall_ms"] < y["wall_ms"]),
                "wall_ratio_median": bl.median([x["wall_ms"] / y["wall_ms"] for x, y in zip(a, o)]),
                "cpu_ratio_median": bl.median([x["cpu_ms"] / y["cpu_ms"] for x, y in zip(a, o)]),
                # moto's own time varies from run to run by more than the builds differ; without
                # it, what is left of a run is the round trips and the client.
                "beside_moto_diff_ms_median": bl.median([beside_moto(x) - beside_moto(y) for x, y in zip(a, o)]),
            }
        return out

    def timed(self, label: str, argv_for, expected: dict, runs: int, warmup: int, delay_ms: float, extra_env=None,
              memory_runs: int = 3, before_each=None):
        """Runs a client `runs` times (after `warmup` untimed runs) with the proxy's round trip
        set to `delay_ms`, then `memory_runs` more under GNU time for the peak RSS; checks every
        run wrote exactly the expected files."""
        self.proxy.config(delay_ms)
        out = []
        for n in range(warmup + runs):
            if before_each and n >= warmup:
                before_each()
            r = self.one_run(label, f"{label}-{n}", argv_for, expected, extra_env)
            if n >= warmup:
                out.append(r)
        rss = [self.one_run(label, f"{label}-rss{n}", argv_for, expected, extra_env, memory=True)
               for n in range(memory_runs)]
        return summarize(out, rss)

    # ---- part 1 --------------------------------------------------------------------------
    def part_injector(self):
        moto, proxy = self.aws()
        P, S = 40, 10
        names = [bl.param_name(i) for i in range(1, P + 1)]
        secrets = [bl.secret_name(i) for i in range(1, S + 1)]
        expected = bl.expected_files(P, S)
        objects = bl.objects_yaml(P, S)
        res = {"params": P, "secrets": S, "rtt_ms": RTT_MS, "machine_before": machine_load(),
               "builds": [{"key": b.key, "label": b.label, "path": str(b.path), "bytes": b.path.stat().st_size}
                          for b in self.builds]}
        inj = lambda p, m, d: self.injector_argv(m, objects, d / "termination-log", p)  # noqa: E731
        bl.log(f"injector: {', '.join(b.label for b in self.builds)} in turn, and the floor; 20 ms round trip")
        # One floor pass before each repetition, so both see the same machine: a background load
        # that comes and goes moves them together instead of skewing their ratio.
        passes = floor.Passes(moto, *floor.bench_objects(P, S))
        reps = self.args.reps or self.runs(15, 3)
        res["paired"] = self.paired("inj", self.builds, inj, expected, reps, 2, RTT_MS, before_each=passes.one)
        res["floor"] = passes.summary(RTT_MS)
        bl.log("injector: the same, no added round trip")
        res["paired_no_rtt"] = self.paired("inj0", self.builds, inj, expected, reps, 2, 0.0)
        first = self.builds[0].key
        bl.log(f"injector: {self.builds[0].label}, its own marks of each step (RUST_LOG=injector::timing=debug)")
        res["timing"] = self.timed("injt", lambda m, d: inj(self.builds[0].path, m, d), expected, self.runs(15, 3), 1,
                                   RTT_MS, extra_env=TIMING_ENV, memory_runs=0)
        res["injector"] = res["paired"]["builds"][first]
        res["injector_no_rtt"] = res["paired_no_rtt"]["builds"][first]
        bl.log("injector: boto3 script")
        boto = lambda m, d: [bl.PY, bl.BENCH / "boto3_fetch.py", m, *names, "--", *secrets]  # noqa: E731
        res["boto3"] = self.timed("boto3", boto, expected, self.runs(10, 3), 1, RTT_MS)
        bl.log("injector: AWS CLI script")
        cli = lambda m, d: ["/bin/sh", bl.BENCH / "awscli_fetch.sh", m, *names, "--", *secrets]  # noqa: E731
        # `sh` runs the script; the script runs this `aws`.
        res["awscli"] = self.timed("awscli", cli, expected, self.runs(3, 1), 0, RTT_MS,
                                   extra_env={"AWS_CLI": str(bl.VENV / "bin" / "aws")}, memory_runs=1)
        res["binary_bytes"] = {"injector": self.injector.stat().st_size, "webhook": self.webhook.stat().st_size}
        res["machine_after"] = machine_load()
        self.results["parts"]["injector"] = res

    # ---- part 3 --------------------------------------------------------------------------
    def storm(self, pods_n: int, P: int = 20, S: int = 2):
        _, proxy = self.aws()
        proxy.config(RTT_MS, quota_rate=40, quota_burst=40)
        objects = bl.objects_yaml(P, S)
        expected = bl.expected_files(P, S)
        base = self.work / "storm"
        if base.exists():
            shutil.rmtree(base)
        base.mkdir()
        env = self.env(f"storm-{pods_n}")
        proxy.reset()
        machine = machine_load()
        started = {}
        # Wall-clock times: a pod's end is the moment GNU time wrote its file, right after the
        # injector exited (mtime, ns on tmpfs), so reaping order and delay do not matter.
        t0 = time.time()
        starts = []
        for i in range(pods_n):
            d = base / f"pod-{i:03d}"
            (d / "mount").mkdir(parents=True)
            argv = bl.under_gnu_time(self.injector_argv(d / "mount", objects, d / "termination-log"), d / "rss")
            pid, _ = bl.spawn(argv, env, stderr_path=d / "stderr")
            starts.append(time.time() - t0)
            started[pid] = i
        spawn_s = time.time() - t0
        ends = {}
        while len(ends) < pods_n:
            pid, status, _ = os.wait4(-1, 0)
            if pid in started:
                i = started[pid]
                rss = base / f"pod-{i:03d}" / "rss"
                ends[i] = (rss.stat().st_mtime_ns / 1e9 - t0, os.waitstatus_to_exitcode(status), bl.read_rss(rss))
        total = max(e for e, _, _ in ends.values())
        stats = proxy.stats()
        proxy.config(RTT_MS)
        complete, partial, failed, empty_failed = 0, 0, 0, 0
        for i in range(pods_n):
            got = bl.read_files(base / f"pod-{i:03d}" / "mount")
            ok = ends[i][1] == 0
            if ok and got == expected:
                complete += 1
            elif not ok and not got:
                failed += 1
                empty_failed += 1
            elif ok:
                partial += 1
            else:
                failed += 1
                partial += 1
        finish = sorted(e * 1000 for e, _, _ in ends.values())
        ssm_calls = stats["calls"].get("ssm:GetParameters", 0)
        ssm_needed = pods_n * -(-P // 10)
        quota_floor = max(0.0, (ssm_needed - 40) / 40.0)
        first_errors = [
            (base / f"pod-{i:03d}" / "stderr").read_text(errors="replace")[-600:]
            for i in range(pods_n) if ends[i][1] != 0
        ][:3]
        shutil.rmtree(base)
        return {
            "pods": pods_n, "params": P, "secrets": S, "rtt_ms": RTT_MS,
            "total_s": total, "spawn_s": spawn_s, "complete": complete, "partial": partial, "failed": failed,
            "calls": stats["calls"], "throttled": stats["throttled"], "errors": stats["errors"],
            "ssm_calls_needed": ssm_needed, "ssm_calls_made": ssm_calls,
            "quota_floor_s": quota_floor, "ratio_to_floor": total / quota_floor if quota_floor else None,
            "pod_done_ms": {"min": finish[0], "p10": bl.pct(finish, 10), "p50": bl.pct(finish, 50),
                            "p90": bl.pct(finish, 90), "max": finish[-1]},
            "maxrss_kib_max": max(u for _, _, u in ends.values()),
            "failure_samples": first_errors, "machine": machine,
        }

    def part_storm(self):
        bl.log("storm: 60 pods")
        res = {"60": self.storm(60)}
        if not self.args.quick:
            bl.log("storm: 300 pods")
            res["300"] = self.storm(300)
        self.results["parts"]["storm"] = res

    # ---- part 5 --------------------------------------------------------------------------
    def part_refresh(self):
        self.results["parts"]["refresh"] = refresh.run(self)

    # ---- part 6 --------------------------------------------------------------------------
    def part_podstart(self):
        self.results["parts"]["podstart"] = podstart.run(self)

    # ---- part 7 --------------------------------------------------------------------------
    def part_prefix(self):
        self.results["parts"]["prefix"] = prefix.run(self, RTT_MS)

    # ---- part 4: injector ----------------------------------------------------------------
    def part_growth(self):
        self.aws()
        res = {"injector": [], "webhook": None}
        for count in (1, 10, 100, 500):
            secrets = count // 5
            params = count - secrets
            objects = bl.objects_yaml(params, secrets)
            expected = bl.expected_files(params, secrets)
            inj = lambda m, d, o=objects: self.injector_argv(m, o, d / "termination-log")  # noqa: E731
            bl.log(f"growth: injector, {count} objects")
            row = {"objects": count, "params": params, "secrets": secrets}
            row["rtt"] = self.timed(f"grow{count}", inj, expected, self.runs(10, 3), 1, RTT_MS)
            row["no_rtt"] = self.timed(f"grow{count}z", inj, expected, self.runs(10, 3), 1, 0.0)
            res["injector"].append(row)
        res["webhook"] = self.webhook_growth()
        self.results["parts"]["growth"] = res

    # ---- part 2 and the webhook half of part 4 --------------------------------------------
    def start_webhook(self):
        certs = self.work / "certs"
        certs.mkdir(exist_ok=True)
        subprocess.run([self.webhook, "certs", "--out-dir", certs], check=True, capture_output=True)
        port, metrics = bl.free_port(), bl.free_port()
        p = self.procs.start("webhook", [
            str(self.webhook), "serve", "--listen", f"127.0.0.1:{port}", "--metrics-listen", f"127.0.0.1:{metrics}",
            "--tls-cert", str(certs / "tls.crt"), "--tls-key", str(certs / "tls.key"),
            "--injector-image", "ghcr.io/secrets-injector/injector:0.1.0", "--default-region", bl.REGION,
        ], env={"PATH": os.environ["PATH"]})
        bl.wait_port(port)
        return p, port

    def review_file(self, objects: int, containers: int) -> Path:
        path = self.work / f"review-{objects}-{containers}.json"
        path.write_text(json.dumps(pods.review(objects, containers), separators=(",", ":")))
        return path

    def check_review(self, port: int, body: Path, containers: int):
        """One review by hand: HTTP 200, allowed, a JSONPatch adding the init container, the
        volume and one mount per target container."""
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        c = http.client.HTTPSConnection("127.0.0.1", port, context=ctx, timeout=10)
        c.request("POST", "/mutate", body=body.read_bytes(), headers={"Content-Type": "application/json"})
        r = c.getresponse()
        doc = json.loads(r.read())
        tls = c.sock.version()
        c.close()
        resp = doc.get("response", {})
        if r.status != 200 or not resp.get("allowed") or resp.get("patchType") != "JSONPatch":
            raise RuntimeError(f"webhook did not admit the benchmark pod with a patch: {r.status} {json.dumps(doc)[:800]}")
        import base64  # noqa: PLC0415
        raw = resp["patch"]
        # AdmissionReview v1 carries the patch as base64 text; anything else the API server refuses.
        encoding = "base64" if isinstance(raw, str) else type(raw).__name__
        patch = json.loads(base64.b64decode(raw) if isinstance(raw, str) else bytes(raw))
        text = json.dumps(patch)
        if "/usr/local/bin/injector" not in text or '"secrets-injector"' not in text:
            raise RuntimeError(f"the patch does not add the init container: {text[:800]}")
        return {"patch_ops": len(patch), "patch_bytes": len(text), "request_bytes": body.stat().st_size,
                "patch_encoding": encoding, "tls": tls, "response_bytes": len(json.dumps(doc)),
                "warnings": resp.get("warnings")}

    def wrk(self, port: int, path: str, body, expect: str, conns: int, threads: int, seconds: float, pause_ms: int,
            pid=None, fresh=False):
        """One wrk load; with `pid`, also the CPU time that process spent per request. `fresh`: every
        request carries an objects list the webhook has not seen (see wrk.lua)."""
        cpu0 = cpu_seconds(pid) if pid else None
        argv = ["wrk", "-t", str(threads), "-c", str(conns), "-d", f"{seconds}s", "--timeout", "5s",
                "-s", str(bl.BENCH / "wrk.lua"), f"https://127.0.0.1:{port}{path}", "--",
                str(body) if body else "-", expect, str(pause_ms)]
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        env = {**os.environ, "WRK_FRESH": "1" if fresh else "0"}
        out = subprocess.run(argv, capture_output=True, text=True, check=True, env=env).stdout
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        wrk_cpu = (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)
        line = [ln for ln in out.splitlines() if ln.startswith("{")][-1]
        d = json.loads(line)
        if pid:
            d["server_cpu_us_per_request"] = (cpu_seconds(pid) - cpu0) / max(1, d["requests"]) * 1e6
        d["client_cpu_us_per_request"] = wrk_cpu / max(1, d["requests"]) * 1e6
        d["rps"] = d["requests"] / (d["duration_us"] / 1e6)
        d["error_total"] = d["bad"] + sum(d["errors"].values())
        d["latency_ms"] = {k: v / 1000.0 for k, v in d.pop("latency_us").items()}
        return d

    def part_webhook(self):
        p, port = self.start_webhook()
        res = {"machine_before": machine_load(), "rss_idle_kib": rss_kib(p.pid)}
        objects, containers = pods.REALISTIC
        body = self.review_file(objects, containers)
        res["pod"] = {"objects": objects, "containers": containers, **self.check_review(port, body, containers)}
        # The same pod without the objects annotation: every pod of an opted-in namespace comes
        # through, most of them asking for nothing; it also splits parsing from mutating.
        plain = pods.review(objects, containers)
        del plain["request"]["object"]["metadata"]["annotations"]["secrets-injector.io/objects"]
        plain_body = self.work / "review-plain.json"
        plain_body.write_text(json.dumps(plain, separators=(",", ":")))
        secs = 3 if self.args.quick else 10
        expect = '"allowed":true'
        bl.log("webhook: warm-up")
        self.wrk(port, "/mutate", body, expect, 32, 2, 2, 0)
        bl.log("webhook: /healthz flat out")
        res["healthz"] = self.wrk(port, "/healthz", None, "", 32, 2, secs, 0, pid=p.pid)
        bl.log("webhook: /mutate flat out")
        res["mutate"] = self.wrk(port, "/mutate", body, expect, 32, 2, secs, 0, pid=p.pid)
        bl.log("webhook: /mutate flat out, every review a list never seen")
        res["mutate_fresh"] = self.wrk(port, "/mutate", body, expect, 32, 2, secs, 0, pid=p.pid, fresh=True)
        bl.log("webhook: /mutate flat out, a pod that asks for nothing")
        res["mutate_plain"] = self.wrk(port, "/mutate", plain_body, expect, 32, 2, secs, 0, pid=p.pid)
        bl.log("webhook: /mutate one request at a time on one connection")
        # The latency one client sees with nothing else in flight (a test before, now measured).
        res["one_connection"] = self.wrk(port, "/mutate", body, expect, 1, 1, secs, 0, pid=p.pid)
        bl.log("webhook: /mutate paced, 8 connections")
        # Each connection waits 9 ms after every answer: about 100 reviews a second each.
        res["paced"] = self.wrk(port, "/mutate", body, expect, 8, 2, 3 if self.args.quick else 15, 9, pid=p.pid)
        res["rss_peak_kib"] = peak_rss_kib(p.pid)
        res["rss_after_kib"] = rss_kib(p.pid)
        res["machine_after"] = machine_load()
        self.procs.stop(p)
        self.results["parts"]["webhook"] = res

    def webhook_growth(self):
        p, port = self.start_webhook()
        secs = 1 if self.args.quick else 3
        rows = []
        bl.log("growth: webhook")
        self.wrk(port, "/healthz", None, "", 1, 1, 1, 0)
        base = self.wrk(port, "/healthz", None, "", 1, 1, secs, 0)
        for objects in (1, 10, 100):
            for containers in (1, 5, 20):
                body = self.review_file(objects, containers)
                facts = self.check_review(port, body, containers)
                self.wrk(port, "/mutate", body, '"allowed":true', 1, 1, 1, 0)
                d = self.wrk(port, "/mutate", body, '"allowed":true', 1, 1, secs, 0)
                f = self.wrk(port, "/mutate", body, '"allowed":true', 1, 1, secs, 0, fresh=True)
                rows.append({"objects": objects, "containers": containers, **facts,
                             "p50_ms": d["latency_ms"]["p50"], "p99_ms": d["latency_ms"]["p99"],
                             "rps": d["rps"], "errors": d["error_total"] + f["error_total"],
                             "fresh_p50_ms": f["latency_ms"]["p50"], "fresh_p99_ms": f["latency_ms"]["p99"]})
        peak = peak_rss_kib(p.pid)
        self.procs.stop(p)
        return {"healthz_p50_ms": base["latency_ms"]["p50"], "healthz_p99_ms": base["latency_ms"]["p99"],
                "rows": rows, "rss_peak_kib": peak}


def busy_ms(intervals) -> float:
    """Length of the union of (start, end) intervals, in ms: how long moto was working."""
    total, end = 0.0, None
    for a, b in sorted(intervals):
        if end is None or a > end:
            total += b - a
            end = b
        elif b > end:
            total += b - end
            end = b
    return total * 1000


def phases(run: bl.Run, timeline) -> dict:
    """Where one client run's time went, from the proxy's timeline of its calls: (arrival, kind,
    status, moto start, moto end, answered), all on time.monotonic()."""
    if not timeline:
        return {}
    timeline = sorted(timeline)
    first = timeline[0]
    rest = [t for t in timeline if not t[1].startswith("sts:")]
    ms = lambda a, b: (b - a) * 1000  # noqa: E731
    out = {"to_first_call_ms": ms(run.started, first[0]),
           "exit_after_last_answer_ms": ms(max(t[5] for t in timeline), run.ended),
           "moto_busy_ms": busy_ms([(t[3], t[4]) for t in timeline if t[4] > t[3]])}
    if first[1].startswith("sts:"):
        out["credentials_ms"] = ms(first[0], first[5])
        if rest:
            out["credentials_to_first_fetch_ms"] = ms(first[5], rest[0][0])
            out["fetch_ms"] = ms(rest[0][0], max(t[5] for t in rest))
            out["fetch_arrival_spread_ms"] = ms(rest[0][0], rest[-1][0])
            out["fetch_moto_busy_ms"] = busy_ms([(t[3], t[4]) for t in rest if t[4] > t[3]])
    return out


TIMING_ENV = {"RUST_LOG": "info,injector::timing=debug"}


def beside_moto(run: dict) -> float:
    """A run's wall time less the time moto was working (the union of its busy intervals)."""
    return run["wall_ms"] - run["phases"].get("moto_busy_ms", 0.0)


def spans(stdout: Path, run: bl.Run) -> dict:
    """The injector's own marks of a run (`RUST_LOG=injector::timing=debug`: each step with the
    microseconds since its `main` began), in ms since the process was spawned; `main` is when
    its `main` began (the wall clock of a mark less its microseconds)."""
    out = {}
    try:
        lines = stdout.read_text().splitlines()
    except FileNotFoundError:
        return out
    for line in lines:
        if '"injector::timing"' not in line:
            continue
        e = json.loads(line)
        at = e["at_us"] / 1000
        if "main" not in out:
            wall = datetime.datetime.fromisoformat(e["timestamp"].replace("Z", "+00:00")).timestamp()
            out["main"] = (wall - e["at_us"] / 1e6 - (run.started + run.wall_offset)) * 1000
        out[e["step"]] = out["main"] + at
    return out


def summarize(runs, rss) -> dict:
    walls = [r["wall_ms"] for r in runs]
    cpus = [r["cpu_ms"] for r in runs]
    keys = sorted({k for r in runs for k in r["phases"]})
    calls = runs[0]["calls"] if runs else {}
    return {
        "runs": len(runs),
        "wall_ms": {"median": bl.median(walls), "min": min(walls), "p90": bl.pct(walls, 90), "max": max(walls)},
        "cpu_ms": {"median": bl.median(cpus), "min": min(cpus), "max": max(cpus)},
        "walls_ms": walls, "cpus_ms": cpus,
        "beside_moto_ms": {"median": bl.median([beside_moto(r) for r in runs])},
        "maxrss_kib": max(rss) if rss else None,
        "memory_runs": len(rss),
        "calls": calls,
        "calls_same_every_run": all(r["calls"] == calls for r in runs),
        "errors": [r["errors"] for r in runs if r["errors"]],
        "phases_median_ms": {k: bl.median([r["phases"][k] for r in runs if k in r["phases"]]) for k in keys},
        "spans_median_ms": {k: bl.median([r["spans"][k] for r in runs if k in r["spans"]])
                            for k in sorted({k for r in runs for k in r["spans"]})},
    }


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (clock ticks of /proc/PID/stat)."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rss_kib(pid: int) -> int:
    return status_field(pid, "VmRSS")


def peak_rss_kib(pid: int) -> int:
    return status_field(pid, "VmHWM")


def status_field(pid: int, field: str) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise RuntimeError(f"no {field} for {pid}")


def machine_facts() -> dict:
    cpu = ""
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    with open("/proc/meminfo") as f:
        mem_kib = int(f.readline().split()[1])
    return {"cpus": os.cpu_count(), "cpu": cpu, "mem_gib": round(mem_kib / 1024 / 1024, 1),
            "kernel": os.uname().release, "wrk": subprocess.run(["wrk", "-v"], capture_output=True, text=True).stdout.split("\n")[0]}


def machine_load() -> dict:
    return {"loadavg": bl.load_average(), "busy": bl.busy_processes(), "at": time.strftime("%H:%M:%S")}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("parts", nargs="*", metavar="PART",
                   help="injector, webhook, storm, growth, refresh, podstart, prefix (default: all)")
    p.add_argument("--quick", action="store_true", help="fewer runs, shorter loads, no 300-pod storm (a smoke test)")
    p.add_argument("--bin-dir", default=str(bl.ROOT / "target" / "release"))
    p.add_argument("--shipped", help="the injector as its image ships it (static, profile injector), timed first")
    p.add_argument("--ab", action="append", help="one more injector binary to pair with the others, run by run "
                   "(may be repeated)")
    p.add_argument("--ab-label", action="append", help="its name in the report (default: its path), in --ab's order")
    p.add_argument("--reps", type=int, help="repetitions of the injector part's pairs (default 15, 3 with --quick)")
    p.add_argument("--injector-image", help="the injector image part podstart runs (scripts/images.sh builds it)")
    p.add_argument("--out", default=str(bl.ROOT / "target" / "bench"))
    p.add_argument("--update-doc", action="store_true", help="write the report into BENCHMARKS.md")
    args = p.parse_args()
    every = ["injector", "webhook", "storm", "growth", "refresh", "podstart", "prefix"]
    unknown = [x for x in args.parts if x not in every]
    if unknown:
        p.error(f"unknown part {', '.join(unknown)}; choose from {', '.join(every)}")
    args.parts = args.parts or every
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    # tmpfs when there is one: the injector writes into an emptyDir with medium Memory.
    shm = Path("/dev/shm")
    workdir = Path(tempfile.mkdtemp(prefix="secrets-injector-bench-", dir=shm if shm.is_dir() else None))
    bench = Bench(args, workdir)
    needs = [bench.bin / "injector"] + ([bench.webhook] if set(args.parts) & {"injector", "webhook", "growth"} else [])
    for path in needs + [b.path for b in bench.builds]:
        if not path.is_file():
            sys.exit(f"{path} is missing: build it with cargo build --release --workspace --bins")
    try:
        for part in args.parts:
            getattr(bench, f"part_{part}")()
            (out / "results.json").write_text(json.dumps(bench.results, indent=2))
    except BaseException:
        # Keep the services' logs of a failed run.
        logs = out / "logs"
        logs.mkdir(exist_ok=True)
        for f in workdir.glob("*.log"):
            shutil.copy(f, logs / f.name)
        bl.log(f"the services' logs are in {logs}")
        raise
    finally:
        bench.procs.stop_all()
        shutil.rmtree(workdir, ignore_errors=True)
    bench.results["finished"] = time.strftime("%Y-%m-%d %H:%M:%S %Z")
    bench.results["command"] = "./scripts/bench.sh " + " ".join(sys.argv[1:])
    (out / "results.json").write_text(json.dumps(bench.results, indent=2))
    text = report.render(bench.results)
    (out / "report.md").write_text(text)
    print(text)
    if args.update_doc:
        report.update_doc(bl.ROOT / "BENCHMARKS.md", text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
