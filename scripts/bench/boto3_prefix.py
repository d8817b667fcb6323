"""External Secrets' way to read every secret under a name prefix (its `dataFrom.find.name` path
without `path`), as a one-process boto3 script: ListSecrets with the `name` filter, every page,
then one GetSecretValue per secret found, one after another; each value written to its file
(the name after the prefix, `/` as `_`) in MOUNT_DIR/DIRECTORY.

usage: boto3_prefix.py MOUNT_DIR DIRECTORY PREFIX
"""

import os
import sys

import boto3


def main() -> None:
    out, directory, prefix = sys.argv[1:4]
    sm = boto3.client("secretsmanager")
    names = []
    kwargs = {"Filters": [{"Key": "name", "Values": [prefix]}], "MaxResults": 100}
    while True:
        page = sm.list_secrets(**kwargs)
        names += [s["Name"] for s in page["SecretList"] if s["Name"].startswith(prefix)]
        if not page.get("NextToken"):
            break
        kwargs["NextToken"] = page["NextToken"]
    target = os.path.join(out, directory)
    os.makedirs(target, exist_ok=True)
    for name in names:
        value = sm.get_secret_value(SecretId=name)["SecretString"]
        with open(os.path.join(target, name[len(prefix):].replace("/", "_")), "w") as f:
            f.write(value)


if __name__ == "__main__":
    main()
