"""The floor of an injector run: the fewest round trips any client needs (credentials, then every
fetch at once) plus moto's own service time for exactly the calls the job needs (one
AssumeRoleWithWebIdentity, ceil(params/10) GetParameters, one GetSecretValue per secret).

The service time is taken by a tiny client straight against moto, one call after another, with
no SDK, no signing work and no added round trip. moto's werkzeug server closes the connection
after every answer, so each call includes a loopback connect (about 0.1 ms); that is reported
apart (`connect_ms`) so it can be judged.
"""

import http.client
import json
import time
import xml.etree.ElementTree as ET

import benchlib


def _auth(access_key: str, service: str) -> str:
    # moto does not check signatures; it reads the access key (for the account) and the
    # credential scope (for the service) from this header, as AWS routes them.
    day = time.strftime("%Y%m%d", time.gmtime())
    return (f"AWS4-HMAC-SHA256 Credential={access_key}/{day}/{benchlib.REGION}/{service}/aws4_request, "
            "SignedHeaders=content-type;host;x-amz-date;x-amz-target, Signature=" + "0" * 64)


def _post(port: int, headers: dict, body: bytes):
    t0 = time.perf_counter()
    c = http.client.HTTPConnection("127.0.0.1", port)
    c.connect()
    t1 = time.perf_counter()
    c.request("POST", "/", body=body, headers=headers)
    r = c.getresponse()
    data = r.read()
    t2 = time.perf_counter()
    c.close()
    if r.status != 200:
        raise RuntimeError(f"moto answered {r.status}: {data[:300]!r}")
    return data, t1 - t0, t2 - t1


def one_pass(port: int, params, secrets):
    """(total seconds, connect seconds, per-call seconds) for the whole job, one call at a time.
    `params` and `secrets` are lists of (name, value); every answer is checked against them."""
    calls = []
    sts_body = ("Action=AssumeRoleWithWebIdentity&Version=2011-06-15&RoleArn=" + benchlib.ROLE_ARN
                + "&RoleSessionName=floor&WebIdentityToken=bench-web-identity-token").encode()
    data, conn, serve = _post(port, {"Content-Type": "application/x-www-form-urlencoded; charset=utf-8"}, sts_body)
    calls.append((conn, serve))
    ns = {"s": "https://sts.amazonaws.com/doc/2011-06-15/"}
    access_key = ET.fromstring(data).find(".//s:AccessKeyId", ns).text
    for start in range(0, len(params), 10):
        batch = dict(params[start:start + 10])
        data, conn, serve = _post(port, {
            "Content-Type": "application/x-amz-json-1.1",
            "X-Amz-Target": "AmazonSSM.GetParameters",
            "Authorization": _auth(access_key, "ssm"),
        }, json.dumps({"Names": list(batch), "WithDecryption": True}).encode())
        got = {p["Name"]: p["Value"] for p in json.loads(data)["Parameters"]}
        if got != batch:
            raise RuntimeError(f"floor: GetParameters returned {len(got)} of {len(batch)} parameters, or other values")
        calls.append((conn, serve))
    for name, value in secrets:
        data, conn, serve = _post(port, {
            "Content-Type": "application/x-amz-json-1.1",
            "X-Amz-Target": "secretsmanager.GetSecretValue",
            "Authorization": _auth(access_key, "secretsmanager"),
        }, json.dumps({"SecretId": name}).encode())
        if json.loads(data).get("SecretString") != value:
            raise RuntimeError("floor: wrong secret value")
        calls.append((conn, serve))
    total = sum(c + s for c, s in calls)
    return total, sum(c for c, _ in calls), calls


def bench_objects(params: int, secrets: int):
    """The seed data's first `params` parameters and `secrets` secrets, as (name, value) lists."""
    return ([(benchlib.param_name(i), benchlib.param_value(i)) for i in range(1, params + 1)],
            [(benchlib.secret_name(i), benchlib.secret_value(i)) for i in range(1, secrets + 1)])


class Passes:
    """Floor passes taken one at a time, between the runs of the client they are the floor of."""

    def __init__(self, moto_port: int, params, secrets):
        self.args = (moto_port, params, secrets)
        one_pass(*self.args)  # warm moto's code paths
        self.totals, self.connects = [], []

    def one(self) -> None:
        total, conn, _ = one_pass(*self.args)
        self.totals.append(total - conn)
        self.connects.append(conn)

    def summary(self, rtt_ms: float) -> dict:
        service = benchlib.median(self.totals)
        params, secrets = self.args[1], self.args[2]
        return {
            "calls": 1 + -(-len(params) // 10) + len(secrets),
            "passes": len(self.totals),
            "service_ms": service * 1000,
            "service_min_ms": min(self.totals) * 1000,
            "connect_ms": benchlib.median(self.connects) * 1000,
            "round_trips": 2,
            "rtt_ms": rtt_ms,
            "floor_ms": service * 1000 + 2 * rtt_ms,
        }
