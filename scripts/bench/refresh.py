"""The refresh sidecar (`injector refresh`): one sidecar's idle memory and CPU, the time from the
end of a fetch to the swap of 50 objects, and a fleet of sidecars under Parameter Store's quota.

Started by run.py (part `refresh`); every figure comes from the real binary against moto through
the bench proxy, which counts calls per second and can enforce a token-bucket quota on SSM.
"""

import json
import os
import shutil
import signal
import time
from pathlib import Path

import benchlib as bl


def cycles(stdout: Path) -> list:
    """The sidecar's log lines so far (JSON), complete lines only."""
    try:
        text = stdout.read_text()
    except FileNotFoundError:
        return []
    out = []
    for line in text.splitlines():
        if line.endswith("}"):
            try:
                out.append(json.loads(line))
            except json.JSONDecodeError:
                pass
    return out


def of(lines: list, message: str) -> list:
    return [x for x in lines if x.get("message") == message]


def wait_for(what: str, done, pid: int, limit_s: float = 300.0):
    """Polls `done()` until it gives something truthy; fails when the sidecar exited or after
    `limit_s` (a guard against a hang, far above what the waits need)."""
    started = time.monotonic()
    while True:
        got = done()
        if got:
            return got
        finished, status = os.waitpid(pid, os.WNOHANG)
        if finished:
            raise RuntimeError(f"the sidecar exited ({status}) while waiting for {what}")
        if time.monotonic() - started > limit_s:
            raise RuntimeError(f"no {what} in {limit_s} s")
        time.sleep(0.02)


def status_field(pid: int, field: str) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise RuntimeError(f"no {field} for {pid}")


def cpu_s(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def wakeups(pid: int) -> int:
    """Context switches of every thread of the process: each is a wakeup or a preemption."""
    total = 0
    for task in Path(f"/proc/{pid}/task").iterdir():
        with open(task / "status") as f:
            for line in f:
                if line.startswith(("voluntary_ctxt_switches", "nonvoluntary_ctxt_switches")):
                    total += int(line.split()[1])
    return total


def bump(moto_port: int, params: list, secrets: list, n: int) -> None:
    """New values for these parameters and secrets (generation `n`)."""
    import boto3  # noqa: PLC0415

    session = boto3.session.Session(aws_access_key_id="seed", aws_secret_access_key="seed", region_name=bl.REGION)
    endpoint = f"http://127.0.0.1:{moto_port}"
    ssm = session.client("ssm", endpoint_url=endpoint)
    sm = session.client("secretsmanager", endpoint_url=endpoint)
    for i in params:
        ssm.put_parameter(Name=bl.param_name(i), Value=f"{bl.param_value(i)}-{n}", Type="SecureString" if i % 2 else "String",
                          Overwrite=True)
    for i in secrets:
        sm.put_secret_value(SecretId=bl.secret_name(i), SecretString=bl.secret_value(i)[:-1] + f', "n": {n}}}')


def memory(pid: int) -> dict:
    """The process's resident memory (KiB): in all, its own (anonymous: heap, stacks) and the
    pages of files it maps (the binary's own, mostly), which the kernel shares with every process
    mapping the same file and may reclaim."""
    return {k: status_field(pid, k) for k in ("VmRSS", "RssAnon", "RssFile", "RssShmem")}


def one_sidecar(bench, P: int = 40, S: int = 10, interval_s: int = 4, idle_windows: int = 5, swaps: int = 5,
                injector=None) -> dict:
    moto, proxy = bench.aws()
    proxy.config(0.0)
    objects = bl.objects_yaml(P, S)
    d = bench.work / "runs" / "refresh-one"
    shutil.rmtree(d, ignore_errors=True)
    d.mkdir(parents=True)
    env = bl.aws_env(d, proxy.port)
    mount = d / "mount"
    mount.mkdir()
    r = bl.run_once(bench.injector_argv(mount, objects, d / "termination-log"), env, d / "init.stderr")
    if r.status != 0:
        raise RuntimeError(f"the init run failed: {r.stderr()[-2000:]}")
    injector = injector or bench.injector
    argv = [injector, "refresh", *bench.injector_argv(mount, objects, d / "termination-log")[1:],
            f"--interval={interval_s}s"]
    stdout = d / "stdout"
    pid, _ = bl.spawn(argv, env, stdout_path=stdout, stderr_path=d / "stderr")
    try:
        # The first cycle reads every value once; the quiet ones follow.
        wait_for("two cycles", lambda: len(of(cycles(stdout), "refresh cycle")) >= 2, pid)
        quiet_from, quiet_cpu_from = len(of(cycles(stdout), "refresh cycle")), cpu_s(pid)
        idle = []
        for _ in range(idle_windows):
            n = len(of(cycles(stdout), "refresh cycle"))
            wait_for("a cycle", lambda n=n: len(of(cycles(stdout), "refresh cycle")) > n, pid)
            # Idle: from a cycle's end to 60% of the interval later (the next one starts at 90%
            # of the interval at the earliest).
            c0, w0, t0 = cpu_s(pid), wakeups(pid), time.monotonic()
            time.sleep(interval_s * 0.6)
            c1, w1, t1 = cpu_s(pid), wakeups(pid), time.monotonic()
            mem = memory(pid)
            wait_for("a cycle", lambda n=n: len(of(cycles(stdout), "refresh cycle")) > n + 1, pid)
            c2 = cpu_s(pid)
            idle.append({"idle_s": t1 - t0, "idle_cpu_s": c1 - c0, "idle_wakeups": w1 - w0, "rss_kib": mem["VmRSS"],
                         "memory_kib": mem, "cycle_cpu_s": c2 - c1})
        quiet = of(cycles(stdout), "refresh cycle")[-1]
        quiet_cycles = len(of(cycles(stdout), "refresh cycle")) - quiet_from
        quiet_cpu_ms = (cpu_s(pid) - quiet_cpu_from) * 1000 / quiet_cycles
        swap_us = []
        for k in range(1, swaps + 1):
            n = len(of(cycles(stdout), "new files in place"))
            bump(moto, range(1, P + 1), range(1, S + 1), k)
            wait_for("a swap", lambda n=n: len(of(cycles(stdout), "new files in place")) > n, pid)
            swap_us.append(of(cycles(stdout), "new files in place")[-1]["swap_us"])
        updated = [c for c in of(cycles(stdout), "refresh cycle") if c["outcome"] == "updated"]
        result = {
            "injector": str(injector), "injector_bytes": Path(injector).stat().st_size,
            "objects": P + S, "params": P, "secrets": S, "interval_s": interval_s,
            "rss_kib": [w["rss_kib"] for w in idle], "peak_rss_kib": status_field(pid, "VmHWM"),
            "threads": len(list(Path(f"/proc/{pid}/task").iterdir())),
            "idle": idle,
            "quiet_cycle_calls": {k: quiet[k] for k in ("get_parameters", "get_parameters_by_path", "describe_secret", "get_secret_value")},
            "quiet_cycle_ms": quiet["duration_ms"],
            "quiet_cycle_cpu_ms": quiet_cpu_ms, "quiet_cycles": quiet_cycles,
            "swap_ms": [u / 1000 for u in swap_us],
            "update_cycle_ms": [c["duration_ms"] for c in updated[-swaps:]],
        }
    finally:
        os.kill(pid, signal.SIGTERM)
        _, status = os.waitpid(pid, 0)
    result["sigterm_exit"] = os.waitstatus_to_exitcode(status)
    # Put the seed values back for the other parts.
    bump_back(moto, P, S)
    return result


def bump_back(moto_port: int, P: int, S: int) -> None:
    """The seed values again, for the parts that check them."""
    import boto3  # noqa: PLC0415

    session = boto3.session.Session(aws_access_key_id="seed", aws_secret_access_key="seed", region_name=bl.REGION)
    endpoint = f"http://127.0.0.1:{moto_port}"
    ssm = session.client("ssm", endpoint_url=endpoint)
    sm = session.client("secretsmanager", endpoint_url=endpoint)
    for i in range(1, P + 1):
        ssm.put_parameter(Name=bl.param_name(i), Value=bl.param_value(i), Type="SecureString" if i % 2 else "String",
                          Overwrite=True)
    for i in range(1, S + 1):
        sm.put_secret_value(SecretId=bl.secret_name(i), SecretString=bl.secret_value(i))


def fleet(bench, sidecars: int = 300, P: int = 20, S: int = 2, interval_s: int = 60, quota: float = 40.0) -> dict:
    """`sidecars` sidecars started in the same second against a proxy enforcing `quota` SSM calls a
    second (bursts of 40): quiet cycles, then one change of every parameter, until every volume
    has it."""
    moto, proxy = bench.aws()
    objects = bl.objects_yaml(P, S)
    base = bench.work / "runs" / "fleet"
    shutil.rmtree(base, ignore_errors=True)
    base.mkdir(parents=True)
    env = bl.aws_env(base, proxy.port)
    proxy.config(0.0)
    # The init containers' files, written once and copied: the fleet measures the sidecars.
    first = base / "init"
    first.mkdir()
    r = bl.run_once(bench.injector_argv(first, objects, base / "termination-log"), env, base / "init.stderr")
    if r.status != 0:
        raise RuntimeError(f"the init run failed: {r.stderr()[-2000:]}")
    pids = {}
    for i in range(sidecars):
        mount = base / f"pod-{i:03d}"
        shutil.copytree(first, mount, symlinks=True)
    proxy.config(0.0, quota_rate=quota, quota_burst=40.0)
    proxy.reset()
    t0 = time.time()
    for i in range(sidecars):
        mount = base / f"pod-{i:03d}"
        argv = [bench.injector, "refresh", *bench.injector_argv(mount, objects, base / "termination-log")[1:],
                f"--interval={interval_s}s"]
        pid, _ = bl.spawn(argv, env, stdout_path=base / f"pod-{i:03d}.log")
        pids[pid] = i
    spawn_s = time.time() - t0
    logs = [base / f"pod-{i:03d}.log" for i in range(sidecars)]
    first_pid = next(iter(pids))
    try:
        # Two full intervals: the first cycles (every value read once) and the quiet ones.
        wait_for("two cycles everywhere",
                 lambda: all(len(of(cycles(p), "refresh cycle")) >= 2 for p in logs), first_pid, 4 * interval_s + 120)
        quiet_stats = proxy.stats()
        quiet = [of(cycles(p), "refresh cycle")[1] for p in logs]
        changed_at = time.time()
        bump(moto, range(1, P + 1), [], 1)
        want = (bl.param_value(1) + "-1").encode()
        name = bl.file_name(bl.param_name(1))

        def reached():
            got = 0
            for i in range(sidecars):
                try:
                    if (base / f"pod-{i:03d}" / name).read_bytes() == want:
                        got += 1
                except OSError:
                    pass
            return got == sidecars

        wait_for("the change everywhere", reached, first_pid, 3 * interval_s + 120)
        reach_s = time.time() - changed_at
        stats = proxy.stats()
        all_cycles = [c for p in logs for c in of(cycles(p), "refresh cycle")]
        rss = [status_field(pid, "VmRSS") for pid in pids]
    finally:
        for pid in pids:
            try:
                os.kill(pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
        exits = [os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]) for pid in pids]
        proxy.config(0.0)
    per_second = {}
    for arrival, *_ in stats["timeline"]:
        per_second[int(arrival)] = per_second.get(int(arrival), 0) + 1
    shutil.rmtree(base, ignore_errors=True)
    bump_back(moto, P, 0)
    return {
        "sidecars": sidecars, "params": P, "secrets": S, "interval_s": interval_s, "quota": quota,
        "spawn_s": spawn_s, "cycles": len(all_cycles),
        "failed_cycles": sum(1 for c in all_cycles if c["outcome"] == "failed"),
        "quiet_cycle_calls": {k: sorted({q[k] for q in quiet}) for k in ("get_parameters", "describe_secret", "get_secret_value")},
        "calls": stats["calls"], "throttled": sum(stats["throttled"].values()), "quiet_calls": quiet_stats["calls"],
        "peak_calls_per_s": max(per_second.values()) if per_second else None,
        "change_reached_all_s": reach_s, "rss_kib_max": max(rss), "rss_kib_median": bl.median(rss),
        "exit_codes": sorted(set(exits)),
    }


def run(bench) -> dict:
    bl.log(f"refresh: one sidecar ({bench.builds[0].label}), 40 parameters + 10 secrets")
    res = {"one": one_sidecar(bench), "label": bench.builds[0].label}
    # The other builds' memory: the binary's pages are most of a sidecar's resident memory.
    res["others"] = {}
    for b in bench.builds[1:]:
        if b.key == "release":
            bl.log(f"refresh: one sidecar ({b.label}), its memory")
            res["others"][b.label] = one_sidecar(bench, idle_windows=2, swaps=1, injector=b.path)
    if not bench.args.quick:
        bl.log("refresh: 300 sidecars, 20 parameters + 2 secrets each, 60 s interval, 40 SSM calls/s")
        res["fleet"] = fleet(bench)
    return res


def memory_rows(one: dict, label: str) -> list:
    """Idle memory between cycles (the largest of the windows): all, anonymous, the files' pages."""
    mems = [w["memory_kib"] for w in one["idle"] if "memory_kib" in w]
    if not mems:
        return [f"| idle RSS (VmRSS between cycles), {label} | {max(one['rss_kib']) / 1024:.1f} MiB |"]
    big = max(mems, key=lambda m: m["VmRSS"])
    anon = max(m["RssAnon"] for m in mems)
    ok = "met" if anon <= 3 * 1024 else "**MISSED**"
    return [f"| idle memory between cycles, {label} ({one.get('injector_bytes', 0):,} bytes): the sidecar's own "
            f"(`RssAnon`) | **{anon / 1024:.2f} MiB** (≤ 3 MiB: {ok}) |",
            f"| … the binary's and other files' pages (`RssFile`) / in all (`VmRSS`) | {big['RssFile'] / 1024:.2f} MiB / "
            f"{big['VmRSS'] / 1024:.2f} MiB |"]


def render(r: dict, out: list) -> None:
    one = r["one"]
    idle = one["idle"]
    out += [
        "### 5. Refresh sidecar",
        "",
        f"One `injector refresh` ({one.get('injector', '?')}), {one['params']} parameters + {one['secrets']} secrets, "
        f"`--interval={one['interval_s']}s`:",
        "",
        "| measure | value |",
        "| --- | --- |",
        *memory_rows(one, r.get("label", "this build")),
        *[row for label, other in r.get("others", {}).items() for row in memory_rows(other, label)],
        f"| peak RSS (VmHWM, updates included) | {one['peak_rss_kib'] / 1024:.1f} MiB |",
        f"| threads | {one['threads']} |",
        f"| CPU while idle | {sum(w['idle_cpu_s'] for w in idle) * 1000:.0f} ms in {sum(w['idle_s'] for w in idle):.1f} s |",
        f"| context switches while idle | {sum(w['idle_wakeups'] for w in idle)} in {sum(w['idle_s'] for w in idle):.1f} s |",
        f"| CPU per quiet cycle, idle between them included | {one['quiet_cycle_cpu_ms']:.1f} ms (mean of {one['quiet_cycles']} cycles) |",
        f"| calls of a quiet cycle | {', '.join(f'{k} {v}' for k, v in one['quiet_cycle_calls'].items())} |",
        f"| quiet cycle duration | {one['quiet_cycle_ms']} ms |",
        f"| end of fetch to swap, {one['objects']} objects changed | {bl.median(one['swap_ms']):.2f} ms median (max {max(one['swap_ms']):.2f}) |",
        f"| SIGTERM | exit {one['sigterm_exit']} |",
        "",
    ]
    f = r.get("fleet")
    if f:
        out += [
            f"Fleet: {f['sidecars']} sidecars started within {f['spawn_s']:.1f} s, {f['params']} parameters + "
            f"{f['secrets']} secrets each, `--interval={f['interval_s']}s`, proxy enforcing {f['quota']:.0f} SSM calls/s:",
            "",
            "| measure | value |",
            "| --- | --- |",
            f"| cycles / failed cycles | {f['cycles']} / {f['failed_cycles']} |",
            f"| throttled answers | {f['throttled']} |",
            f"| peak calls per second | {f['peak_calls_per_s']} |",
            f"| calls of a quiet cycle (per sidecar) | {f['quiet_cycle_calls']} |",
            f"| a changed parameter in every volume after | {f['change_reached_all_s']:.1f} s |",
            f"| RSS per sidecar | median {f['rss_kib_median'] / 1024:.1f} MiB, max {f['rss_kib_max'] / 1024:.1f} MiB |",
            f"| exit codes after SIGTERM | {f['exit_codes']} |",
            "",
        ]
