"""A reverse proxy in front of moto that plays the part of a regional AWS endpoint.

- Every call waits a fixed round trip (half before it reaches moto, half after), as a client in
  a pod sees a regional endpoint: moto on loopback answers in well under a millisecond of
  network time, AWS does not.
- Parameter Store's account quota: a token bucket over every `AmazonSSM.*` call (default 40 a
  second, bursts of 40 pass); a call beyond it is answered as AWS does, HTTP 400
  `{"__type":"ThrottlingException","message":"Rate exceeded"}`, without reaching moto.
- Counts calls by kind (`sts:AssumeRoleWithWebIdentity`, `ssm:GetParameters`,
  `secretsmanager:GetSecretValue`, ...) and keeps a timeline of them for the report.

Keep-alive towards the client; moto's werkzeug server closes every connection after one
answer, so each call opens a fresh loopback connection upstream (about 0.1 ms).

Control endpoints on the same port (AWS calls all go to `/`):
  GET  /__bench/stats    counters and the call timeline (time.monotonic(), comparable across
                         processes on Linux)
  POST /__bench/reset    clears counters and timeline, refills the bucket
  POST /__bench/config   JSON {"delay_ms": 20, "quota_rate": 40, "quota_burst": 40}
                         (quota_rate 0 turns the quota off)
"""

import argparse
import asyncio
import json
import sys
import time
import uuid
from collections import Counter
from urllib.parse import parse_qs


class Quota:
    """A token bucket: `burst` calls pass at once, then `rate` a second."""

    def __init__(self, rate: float, burst: float):
        self.rate = rate
        self.burst = burst
        self.tokens = burst
        self.last = time.monotonic()

    def take(self) -> bool:
        if self.rate <= 0:
            return True
        now = time.monotonic()
        self.tokens = min(self.burst, self.tokens + (now - self.last) * self.rate)
        self.last = now
        if self.tokens >= 1:
            self.tokens -= 1
            return True
        return False


class State:
    def __init__(self, upstream_host: str, upstream_port: int, delay_ms: float, rate: float, burst: float):
        self.upstream = (upstream_host, upstream_port)
        self.delay = delay_ms / 1000.0
        self.quota = Quota(rate, burst)
        self.reset()

    def reset(self):
        self.calls = Counter()
        self.throttled = Counter()
        self.errors = Counter()
        # (arrival, kind, status, moto start, moto end, answered); moto start = end for a
        # call the proxy answered itself (throttled)
        self.timeline = []
        self.quota.tokens = self.quota.burst
        self.quota.last = time.monotonic()

    def stats(self) -> dict:
        return {
            "calls": dict(self.calls),
            "throttled": dict(self.throttled),
            "errors": dict(self.errors),
            "timeline": self.timeline,
            "delay_ms": self.delay * 1000.0,
            "quota_rate": self.quota.rate,
            "quota_burst": self.quota.burst,
        }


def call_kind(headers: dict, body: bytes) -> str:
    target = headers.get("x-amz-target")
    if target:
        service, _, op = target.partition(".")
        service = {"AmazonSSM": "ssm"}.get(service, service)
        return f"{service}:{op}"
    if body:
        try:
            action = parse_qs(body.decode("ascii", "replace")).get("Action", ["?"])[0]
        except ValueError:
            action = "?"
        return f"sts:{action}" if action.startswith("AssumeRole") or action == "GetCallerIdentity" else f"query:{action}"
    return "other"


async def read_chunked(reader: asyncio.StreamReader) -> bytes:
    out = bytearray()
    while True:
        size_line = await reader.readuntil(b"\r\n")
        size = int(size_line.split(b";")[0].strip(), 16)
        if size == 0:
            # trailers end with an empty line
            while (await reader.readuntil(b"\r\n")) != b"\r\n":
                pass
            return bytes(out)
        out += await reader.readexactly(size)
        await reader.readexactly(2)


async def read_message(reader: asyncio.StreamReader):
    """One HTTP/1.1 message head and body: (start line, [(name, value)], {lower name: value}, body)."""
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head[:-4].split(b"\r\n")
    start = lines[0].decode("latin-1")
    pairs = []
    for line in lines[1:]:
        name, _, value = line.decode("latin-1").partition(":")
        pairs.append((name.strip(), value.strip()))
    lower = {n.lower(): v for n, v in pairs}
    if lower.get("transfer-encoding", "").lower() == "chunked":
        body = await read_chunked(reader)
    else:
        body = await reader.readexactly(int(lower.get("content-length", "0")))
    return start, pairs, lower, body


def encode_response(status: int, reason: str, pairs, body: bytes, keep_alive: bool) -> bytes:
    skip = {"connection", "content-length", "transfer-encoding", "keep-alive"}
    out = [f"HTTP/1.1 {status} {reason}"]
    out += [f"{n}: {v}" for n, v in pairs if n.lower() not in skip]
    out.append(f"Content-Length: {len(body)}")
    out.append("Connection: keep-alive" if keep_alive else "Connection: close")
    return ("\r\n".join(out) + "\r\n\r\n").encode("latin-1") + body


async def forward(state: State, start: str, pairs, body: bytes):
    reader, writer = await asyncio.open_connection(*state.upstream)
    try:
        skip = {"connection", "content-length", "transfer-encoding", "keep-alive"}
        head = [start] + [f"{n}: {v}" for n, v in pairs if n.lower() not in skip]
        head += [f"Content-Length: {len(body)}", "Connection: close"]
        writer.write(("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + body)
        await writer.drain()
        status_line, rpairs, rlower, rbody = await read_message(reader)
    finally:
        writer.close()
    parts = status_line.split(" ", 2)
    return int(parts[1]), (parts[2] if len(parts) > 2 else ""), rpairs, rbody


THROTTLE_BODY = b'{"__type":"ThrottlingException","message":"Rate exceeded"}'


async def control(state: State, method: str, path: str, body: bytes):
    if method == "GET" and path == "/__bench/stats":
        return 200, state.stats()
    if method == "POST" and path == "/__bench/reset":
        state.reset()
        return 200, {"ok": True}
    if method == "POST" and path == "/__bench/config":
        cfg = json.loads(body or b"{}")
        if "delay_ms" in cfg:
            state.delay = float(cfg["delay_ms"]) / 1000.0
        if "quota_rate" in cfg:
            state.quota.rate = float(cfg["quota_rate"])
        if "quota_burst" in cfg:
            state.quota.burst = float(cfg["quota_burst"])
        state.reset()
        return 200, {"ok": True}
    return 404, {"error": f"no control endpoint {method} {path}"}


async def handle(state: State, reader: asyncio.StreamReader, writer: asyncio.StreamWriter):
    try:
        while True:
            try:
                start, pairs, lower, body = await read_message(reader)
            except (asyncio.IncompleteReadError, ConnectionError):
                return
            method, path, _ = start.split(" ", 2)
            keep_alive = lower.get("connection", "").lower() != "close"
            if path.startswith("/__bench/"):
                status, doc = await control(state, method, path, body)
                payload = json.dumps(doc).encode()
                writer.write(encode_response(status, "OK", [("Content-Type", "application/json")], payload, keep_alive))
                await writer.drain()
                if not keep_alive:
                    return
                continue
            arrival = time.monotonic()
            kind = call_kind(lower, body)
            state.calls[kind] += 1
            half = state.delay / 2
            if half:
                await asyncio.sleep(half)
            t0 = t1 = time.monotonic()
            if kind.startswith("ssm:") and not state.quota.take():
                state.throttled[kind] += 1
                status = 400
                response = encode_response(
                    400,
                    "Bad Request",
                    [("Content-Type", "application/x-amz-json-1.1"), ("x-amzn-RequestId", str(uuid.uuid4()))],
                    THROTTLE_BODY,
                    keep_alive,
                )
            else:
                t0 = time.monotonic()
                try:
                    status, reason, rpairs, rbody = await forward(state, start, pairs, body)
                except (OSError, asyncio.IncompleteReadError) as e:
                    state.errors[kind] += 1
                    status, reason, rpairs, rbody = 502, "Bad Gateway", [], str(e).encode()
                t1 = time.monotonic()
                if status >= 400:
                    state.errors[kind] += 1
                    # Diagnostics for the harness's log; moto's error bodies name no secret.
                    print(f"{kind} answered {status}: {rbody[:300]!r}", file=sys.stderr, flush=True)
                response = encode_response(status, reason, rpairs, rbody, keep_alive)
            if half:
                await asyncio.sleep(half)
            writer.write(response)
            await writer.drain()
            state.timeline.append((arrival, kind, status, t0, t1, time.monotonic()))
            if not keep_alive:
                return
    finally:
        writer.close()


async def main_async(args):
    state = State(args.upstream_host, args.upstream_port, args.delay_ms, args.quota_rate, args.quota_burst)
    server = await asyncio.start_server(
        lambda r, w: handle(state, r, w), args.host, args.port, backlog=4096, reuse_address=True
    )
    print(f"proxy listening on {args.host}:{args.port}", file=sys.stderr, flush=True)
    async with server:
        await server.serve_forever()


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--upstream-host", default="127.0.0.1")
    p.add_argument("--upstream-port", type=int, required=True)
    p.add_argument("--delay-ms", type=float, default=20.0)
    p.add_argument("--quota-rate", type=float, default=0.0)
    p.add_argument("--quota-burst", type=float, default=40.0)
    args = p.parse_args()
    try:
        import uvloop
    except ImportError:
        asyncio.run(main_async(args))
    else:
        uvloop.run(main_async(args))


if __name__ == "__main__":
    main()
