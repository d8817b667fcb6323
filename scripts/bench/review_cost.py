"""What one review costs the webhook, for two builds side by side (a change is told from the
machine's drift by running both in one go):

- the hostile pods of SECURITY.md's bounds (N init containers, each mounting one of N volumes,
  with an objects annotation): wall time of one review over HTTPS (median of 3) and the
  webhook's peak RSS;
- the benchmark's realistic review (pods.REALISTIC): instructions per review under callgrind
  (valgrind), which counts instructions, not seconds, so the figure is the same on a busy
  machine: (instructions after N reviews - instructions after none) / N.

    .venv/bin/python scripts/bench/review_cost.py BIN [BIN ...] [--sizes 3000 12000] [--reviews 400]

BIN is a `webhook` binary (a release build: `cargo build --release -p secrets-injector-webhook`).
"""

import argparse
import http.client
import json
import re
import ssl
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import benchlib as bl  # noqa: E402
import pods  # noqa: E402

OBJECTS = "- objectName: /app/db\n  objectType: ssmparameter\n"


def wide_review(n: int) -> bytes:
    init = [{"name": f"init-{i}", "image": "busybox", "command": ["/bin/true"],
             "volumeMounts": [{"name": f"v-{i}", "mountPath": "/data"}]} for i in range(n)]
    volumes = [{"name": f"v-{i}", "emptyDir": {}} for i in range(n)]
    pod = {"apiVersion": "v1", "kind": "Pod",
           "metadata": {"name": "wide", "namespace": "team-a",
                        "annotations": {"secrets-injector.io/objects": OBJECTS}},
           "spec": {"containers": [{"name": "app", "image": "app"}], "initContainers": init,
                    "volumes": volumes}}
    kind = {"group": "", "version": "v1", "kind": "Pod"}
    resource = {"group": "", "version": "v1", "resource": "pods"}
    review = {"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
              "request": {"uid": "wide", "kind": kind, "resource": resource, "requestKind": kind,
                          "requestResource": resource, "namespace": "team-a",
                          "operation": "CREATE", "userInfo": {"username": "bench"},
                          "object": pod, "oldObject": None, "dryRun": False}}
    return json.dumps(review, separators=(",", ":")).encode()


class Webhook:
    """`webhook serve` on loopback, optionally under callgrind."""

    def __init__(self, binary: str, work: Path, callgrind_out: Path | None = None):
        certs = work / "certs"
        certs.mkdir(exist_ok=True)
        subprocess.run([binary, "certs", "--out-dir", str(certs)], check=True, capture_output=True)
        self.port, metrics = bl.free_port(), bl.free_port()
        argv = [binary, "serve", "--listen", f"127.0.0.1:{self.port}",
                "--metrics-listen", f"127.0.0.1:{metrics}",
                "--tls-cert", str(certs / "tls.crt"), "--tls-key", str(certs / "tls.key"),
                "--injector-image", "ghcr.io/secrets-injector/injector:0.1.0",
                "--default-region", bl.REGION]
        if callgrind_out:
            argv = ["valgrind", "--tool=callgrind", f"--callgrind-out-file={callgrind_out}"] + argv
        self.proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        self.ctx = ctx
        end = time.monotonic() + 120
        while True:
            try:
                self.conn = http.client.HTTPSConnection("127.0.0.1", self.port, context=ctx, timeout=120)
                self.conn.request("GET", "/healthz")
                self.conn.getresponse().read()
                break
            except OSError:
                if time.monotonic() > end:
                    raise
                time.sleep(0.3)

    def review(self, body: bytes) -> float:
        start = time.monotonic()
        self.conn.request("POST", "/mutate", body=body, headers={"Content-Type": "application/json"})
        response = self.conn.getresponse()
        answer = response.read()
        took = time.monotonic() - start
        if response.status != 200 or b'"allowed":true' not in answer:
            raise RuntimeError(f"review not allowed: {response.status} {answer[:300]!r}")
        return took

    def peak_rss_kib(self) -> int:
        status = Path(f"/proc/{self.proc.pid}/status").read_text()
        return int(re.search(r"VmHWM:\s+(\d+)", status).group(1))

    def stop(self) -> None:
        self.proc.send_signal(2)
        self.proc.wait(timeout=120)


def instructions(path: Path) -> int:
    out = subprocess.run(["callgrind_annotate", str(path)], capture_output=True, text=True, check=True).stdout
    return int(re.search(r"([\d,]+) \(100\.0%\)\s+PROGRAM TOTALS", out).group(1).replace(",", ""))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("binaries", nargs="+")
    p.add_argument("--sizes", nargs="*", type=int, default=[3000, 12000])
    p.add_argument("--reviews", type=int, default=400)
    args = p.parse_args()
    realistic = json.dumps(pods.review(*pods.REALISTIC), separators=(",", ":")).encode()
    print(f"machine: load average {bl.load_average()}")
    for binary in args.binaries:
        with tempfile.TemporaryDirectory() as tmp:
            work = Path(tmp)
            hook = Webhook(binary, work)
            for n in args.sizes:
                body = wide_review(n)
                times = [hook.review(body) for _ in range(3)]
                print(f"{binary}: {n} init containers and volumes ({len(body)} bytes): "
                      f"median {statistics.median(times) * 1000:.0f} ms of {[round(t * 1000) for t in times]} ms")
            print(f"{binary}: peak RSS {hook.peak_rss_kib() / 1024:.1f} MiB")
            hook.stop()
            counts = {}
            for n in (0, args.reviews):
                out = work / f"callgrind-{n}.out"
                hook = Webhook(binary, work, out)
                for _ in range(n):
                    hook.review(realistic)
                hook.stop()
                counts[n] = instructions(out)
            per = (counts[args.reviews] - counts[0]) / args.reviews
            print(f"{binary}: realistic review {pods.REALISTIC}: {per:,.0f} instructions per review "
                  f"(callgrind, {args.reviews} reviews on one connection, start-up subtracted)")


if __name__ == "__main__":
    main()
