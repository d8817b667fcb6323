"""Shared pieces of the benchmark harness: processes it starts and stops, moto and its seed
data, the latency/quota proxy's control endpoints, and timing one child process (wall time and
peak RSS from wait4)."""

import http.client
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
VENV = Path(os.environ.get("SECRETS_INJECTOR_VENV") or ROOT / ".venv")
PY = VENV / "bin" / "python"
BENCH = ROOT / "scripts" / "bench"
REGION = "us-east-1"
ROLE_ARN = "arn:aws:iam::123456789012:role/bench"


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port: int, timeout: float = 30.0) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"nothing listens on 127.0.0.1:{port} after {timeout} s")


class Processes:
    """Background services; every one is stopped by its own pid when the harness ends."""

    def __init__(self, workdir: Path):
        self.workdir = workdir
        self.procs = []

    def start(self, name: str, argv, env=None) -> subprocess.Popen:
        out = open(self.workdir / f"{name}.log", "wb")
        p = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, env=env, start_new_session=True)
        self.procs.append((name, p))
        return p

    def stop(self, p: subprocess.Popen, sig=signal.SIGTERM) -> None:
        if p.poll() is None:
            p.send_signal(sig)
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()

    def stop_all(self) -> None:
        for _, p in reversed(self.procs):
            self.stop(p)


def start_moto(procs: Processes) -> int:
    port = free_port()
    procs.start("moto", [str(VENV / "bin" / "moto_server"), "-H", "127.0.0.1", "-p", str(port)])
    wait_port(port)
    return port


def start_proxy(procs: Processes, moto_port: int, delay_ms: float) -> int:
    port = free_port()
    procs.start(
        "proxy",
        [str(PY), str(BENCH / "proxy.py"), "--port", str(port), "--upstream-port", str(moto_port),
         "--delay-ms", str(delay_ms)],
    )
    wait_port(port)
    return port


class Proxy:
    def __init__(self, port: int):
        self.port = port

    def _call(self, method: str, path: str, body=None) -> dict:
        c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        try:
            c.request(method, path, body=json.dumps(body) if body is not None else None)
            r = c.getresponse()
            return json.loads(r.read())
        finally:
            c.close()

    def config(self, delay_ms: float, quota_rate: float = 0.0, quota_burst: float = 40.0) -> None:
        self._call("POST", "/__bench/config", {"delay_ms": delay_ms, "quota_rate": quota_rate, "quota_burst": quota_burst})

    def reset(self) -> None:
        self._call("POST", "/__bench/reset", {})

    def stats(self) -> dict:
        return self._call("GET", "/__bench/stats")


# The seed data: parameter and secret names, and values of realistic sizes.
def param_name(i: int) -> str:
    return f"/bench/app/param-{i:04d}"


def secret_name(i: int) -> str:
    return f"bench/app/secret-{i:04d}"


def param_value(i: int) -> str:
    return f"value-{i:04d}-" + "p" * 40


def secret_value(i: int) -> str:
    return json.dumps({"username": f"user{i}", "password": f"pw-{i:04d}-" + "s" * 24, "host": f"db{i}.internal", "port": 5432})


def seed(moto_port: int, params: int, secrets: int) -> None:
    """Parameters (every other one a SecureString) and JSON secrets, straight into moto."""
    import boto3  # noqa: PLC0415 (only the seeding needs it)

    session = boto3.session.Session(aws_access_key_id="seed", aws_secret_access_key="seed", region_name=REGION)
    endpoint = f"http://127.0.0.1:{moto_port}"
    ssm = session.client("ssm", endpoint_url=endpoint)
    sm = session.client("secretsmanager", endpoint_url=endpoint)
    for i in range(1, params + 1):
        ssm.put_parameter(Name=param_name(i), Value=param_value(i), Type="SecureString" if i % 2 else "String")
    for i in range(1, secrets + 1):
        sm.create_secret(Name=secret_name(i), SecretString=secret_value(i))


def file_name(name: str) -> str:
    """Path translation `_` (the default): every '/' becomes '_'."""
    return name.replace("/", "_")


def expected_files(params: int, secrets: int) -> dict:
    files = {file_name(param_name(i)): param_value(i).encode() for i in range(1, params + 1)}
    files.update({file_name(secret_name(i)): secret_value(i).encode() for i in range(1, secrets + 1)})
    return files


def objects_yaml(params: int, secrets: int) -> str:
    lines = []
    for i in range(1, params + 1):
        lines += [f'- objectName: "{param_name(i)}"', "  objectType: ssmparameter"]
    for i in range(1, secrets + 1):
        lines += [f'- objectName: "{secret_name(i)}"', "  objectType: secretsmanager"]
    return "\n".join(lines) + "\n"


def aws_env(workdir: Path, proxy_port: int) -> dict:
    """The environment EKS gives a pod with IRSA, pointed at the proxy; nothing else of the
    harness's own environment leaks in (no stray AWS_* variables, no config files)."""
    token = workdir / "token"
    if not token.exists():
        token.write_text("bench-web-identity-token")
    home = workdir / "home"
    home.mkdir(exist_ok=True)
    return {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(home),
        "LANG": "C.UTF-8",
        "AWS_ROLE_ARN": ROLE_ARN,
        "AWS_WEB_IDENTITY_TOKEN_FILE": str(token),
        "AWS_REGION": REGION,
        "AWS_DEFAULT_REGION": REGION,
        "AWS_STS_REGIONAL_ENDPOINTS": "regional",
        "AWS_ENDPOINT_URL": f"http://127.0.0.1:{proxy_port}",
        "AWS_CONFIG_FILE": str(home / "no-config"),
        "AWS_SHARED_CREDENTIALS_FILE": str(home / "no-credentials"),
        "AWS_EC2_METADATA_DISABLED": "true",
        # The trusted CAs as the injector's image holds them: one bundle. Without this, on a host
        # whose /etc/ssl/certs also holds every certificate as a file of its own, the SDK reads
        # and parses each of them a second time.
        "SSL_CERT_FILE": "/etc/ssl/certs/ca-certificates.crt",
    }


def clear_dir(d: Path) -> None:
    if d.exists():
        for p in sorted(d.rglob("*"), key=lambda p: len(p.parts), reverse=True):
            if p.is_dir() and not p.is_symlink():
                p.rmdir()
            else:
                p.unlink()
    d.mkdir(parents=True, exist_ok=True)


def read_files(d: Path) -> dict:
    """The files as an app reads them, through the top-level links; the generation directory
    they point into (`..<timestamp>`, reached by `..data`) is not listed again."""
    files = {}
    for top, dirs, names in os.walk(d, followlinks=True):
        # A directory object's top-level entry is a link into the generation: follow it.
        if Path(top) == d:
            dirs[:] = [x for x in dirs if not x.startswith("..")]
            names = [x for x in names if not x.startswith("..")]
        for n in names:
            p = Path(top) / n
            if p.is_file():
                files[str(p.relative_to(d))] = p.read_bytes()
    return files


class Run:
    """One finished child: wall seconds, CPU seconds (user + system, from wait4's rusage), peak
    RSS in KiB (the largest of the process and its descendants, as wait4 reports it), exit
    status, and its start/end on time.monotonic()."""

    def __init__(self, wall, cpu, maxrss_kib, status, started, ended, stderr_path):
        self.wall = wall
        self.cpu = cpu
        self.maxrss_kib = maxrss_kib
        self.status = status
        self.started = started
        self.ended = ended
        self.stderr_path = stderr_path

    def stderr(self) -> str:
        return Path(self.stderr_path).read_text(errors="replace") if self.stderr_path else ""


def spawn(argv, env, stdout_path=os.devnull, stderr_path=os.devnull) -> tuple:
    """posix_spawn (no Python in between) with stdout/stderr to files; returns (pid, start)."""
    actions = [
        (os.POSIX_SPAWN_OPEN, 0, os.devnull, os.O_RDONLY, 0),
        (os.POSIX_SPAWN_OPEN, 1, str(stdout_path), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644),
        (os.POSIX_SPAWN_OPEN, 2, str(stderr_path), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644),
    ]
    envlist = {k: v for k, v in env.items()}
    start = time.monotonic()
    pid = os.posix_spawn(argv[0], [str(a) for a in argv], envlist, file_actions=actions)
    return pid, start


def wait(pid: int, start: float, stderr_path=None) -> Run:
    _, status, usage = os.wait4(pid, 0)
    end = time.monotonic()
    return Run(end - start, usage.ru_utime + usage.ru_stime, usage.ru_maxrss, os.waitstatus_to_exitcode(status),
               start, end, stderr_path)


def run_once(argv, env, stderr_path) -> Run:
    pid, start = spawn(argv, env, stderr_path=stderr_path)
    return wait(pid, start, stderr_path)


GNU_TIME = "/usr/bin/time"


def under_gnu_time(argv, rss_path) -> list:
    """The command run by GNU time, which writes the peak RSS (KiB) to `rss_path`.

    The harness cannot take the peak RSS from its own wait4: a child spawned by a process of
    50 MiB (this one, with boto3 loaded) inherits that process's memory high-water mark until
    it execs, and the kernel keeps the larger of the two. GNU time is a 2 MiB process, well
    below every figure measured here."""
    return [GNU_TIME, "-f", "%M", "-o", str(rss_path), *argv]


def read_rss(rss_path) -> int:
    return int(Path(rss_path).read_text().split()[-1])


def median(xs):
    return statistics.median(xs) if xs else float("nan")


def pct(xs, p):
    """Nearest-rank percentile of a list."""
    if not xs:
        return float("nan")
    s = sorted(xs)
    k = max(0, min(len(s) - 1, int(round(p / 100.0 * len(s) + 0.5)) - 1))
    return s[k]


def load_average() -> str:
    with open("/proc/loadavg") as f:
        return " ".join(f.read().split()[:3])


def busy_processes() -> list:
    """Other processes using CPU right now (name and %CPU over one second), so the report says
    what else the machine was doing while the figures were taken."""
    out = subprocess.run(["top", "-b", "-n", "2", "-d", "1", "-w", "200"], capture_output=True, text=True).stdout
    last = out[out.rfind("PID USER"):] if "PID USER" in out else ""
    busy = []
    for line in last.splitlines()[1:]:
        cols = line.split()
        if len(cols) >= 12:
            try:
                cpu = float(cols[8])
            except ValueError:
                continue
            if cpu >= 5.0:
                busy.append(f"{cols[11]} {cpu:.0f}%")
    return busy
