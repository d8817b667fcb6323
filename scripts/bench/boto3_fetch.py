"""The usual one-process boto3 way to do the injector's job: credentials from the default chain
(web identity from AWS_ROLE_ARN and AWS_WEB_IDENTITY_TOKEN_FILE), GetParameters in batches of 10,
then one GetSecretValue per secret, in order, each value written to its file.

usage: boto3_fetch.py MOUNT_DIR PARAM_NAME... -- SECRET_NAME...
"""

import os
import sys

import boto3


def main() -> None:
    out = sys.argv[1]
    rest = sys.argv[2:]
    split = rest.index("--")
    params, secrets = rest[:split], rest[split + 1:]
    ssm = boto3.client("ssm")
    sm = boto3.client("secretsmanager")
    for i in range(0, len(params), 10):
        batch = params[i:i + 10]
        got = ssm.get_parameters(Names=batch, WithDecryption=True)
        if got["InvalidParameters"]:
            sys.exit(f"not found: {got['InvalidParameters']}")
        for p in got["Parameters"]:
            with open(os.path.join(out, p["Name"].replace("/", "_")), "w") as f:
                f.write(p["Value"])
    for name in secrets:
        value = sm.get_secret_value(SecretId=name)["SecretString"]
        with open(os.path.join(out, name.replace("/", "_")), "w") as f:
            f.write(value)


if __name__ == "__main__":
    main()
