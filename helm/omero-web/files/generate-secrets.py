"""Creates the release's generated Secret once: run by the chart's hook Job (secrets-job.yaml)
with the web image's Python, before the release's pods exist (pre-install, pre-upgrade; Argo CD:
PreSync). Keys already in the Secret are never changed, so a re-run (every upgrade, every GitOps
sync) changes nothing. A key found in ADOPT_FROM (the Secret where chart 0.1.0 kept its generated
values) is taken from there, so upgrading from that version keeps the secret key.

Environment: SECRET_NAME, GENERATE ("key=length ..."), ADOPT_FROM (optional), and the labels the
Secret gets: APP_NAME and RELEASE (the release's app.kubernetes.io/name and /instance).
Talks to the API server with the Job's own ServiceAccount token; prints names, never values."""

import base64
import json
import os
import secrets
import ssl
import string
import sys
import urllib.error
import urllib.request

ACCOUNT = "/var/run/secrets/kubernetes.io/serviceaccount"
ALPHABET = string.ascii_letters + string.digits


class Api:
    def __init__(self):
        self.namespace = open(f"{ACCOUNT}/namespace").read().strip()
        host, port = os.environ["KUBERNETES_SERVICE_HOST"], os.environ["KUBERNETES_SERVICE_PORT"]
        host = f"[{host}]" if ":" in host else host
        self.base = f"https://{host}:{port}/api/v1/namespaces/{self.namespace}/secrets"
        self.token = open(f"{ACCOUNT}/token").read().strip()
        self.tls = ssl.create_default_context(cafile=f"{ACCOUNT}/ca.crt")
        # The chain and the host name are verified; Python 3.13's extra strictness (a CA without a
        # keyUsage extension, as some hand-made cluster CAs are) is not asked of the cluster.
        self.tls.verify_flags &= ~ssl.VERIFY_X509_STRICT

    def call(self, method, name="", body=None, content_type="application/json"):
        """(status, decoded JSON body) of one request, with a deadline."""
        request = urllib.request.Request(
            f"{self.base}/{name}" if name else self.base,
            method=method,
            data=json.dumps(body).encode() if body is not None else None,
            headers={"Authorization": f"Bearer {self.token}", "Content-Type": content_type},
        )
        try:
            with urllib.request.urlopen(request, context=self.tls, timeout=20) as answer:
                return answer.status, json.load(answer)
        except urllib.error.HTTPError as error:
            return error.code, json.loads(error.read() or b"{}")
        except (urllib.error.URLError, OSError) as error:
            reason = getattr(error, "reason", error)
            sys.exit(f"generate-secrets: could not reach the API server at {self.base}: {reason}")

    def get(self, name):
        """The Secret's data (base64 values), or None when it does not exist."""
        status, body = self.call("GET", name)
        if status == 404:
            return None
        self.check(status, body, f"read Secret {name}")
        return body.get("data") or {}

    def check(self, status, body, what):
        if status < 300:
            return
        account = os.environ.get("SERVICE_ACCOUNT", "this Job's ServiceAccount")
        hint = (
            f" (RBAC: {account} needs get, create and patch on Secrets in {self.namespace}; the chart's Role grants it)"
            if status == 403
            else ""
        )
        message = body.get("message", "")
        sys.exit(f"generate-secrets: could not {what} in namespace {self.namespace}: {status} {message}{hint}")


def wanted():
    keys = {}
    for item in os.environ["GENERATE"].split():
        key, _, length = item.partition("=")
        keys[key] = int(length)
    return keys


def main():
    api = Api()
    name, adopt = os.environ["SECRET_NAME"], os.environ.get("ADOPT_FROM", "")
    keys = wanted()
    current = api.get(name)
    missing = [key for key in keys if key not in (current or {})]
    if not missing:
        print(f"Secret {name} already holds {', '.join(keys)}: nothing to do")
        return
    previous = (api.get(adopt) if adopt else None) or {}
    data, adopted = {}, []
    for key in missing:
        if previous.get(key):
            data[key] = previous[key]
            adopted.append(key)
        else:
            value = "".join(secrets.choice(ALPHABET) for _ in range(keys[key]))
            data[key] = base64.b64encode(value.encode()).decode()
    if current is None:
        body = {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {
                "name": name,
                "labels": {
                    "app.kubernetes.io/name": os.environ.get("APP_NAME", "omero-web"),
                    "app.kubernetes.io/instance": os.environ.get("RELEASE", ""),
                    "app.kubernetes.io/part-of": "omero-web",
                },
                "annotations": {"omero-web/generated-by": "the omero-web chart's secrets Job; kept on uninstall"},
            },
            "type": "Opaque",
            "data": data,
        }
        status, answer = api.call("POST", body=body)
        if status == 409:  # created meanwhile by another run: start again from what it holds
            return main()
        api.check(status, answer, f"create Secret {name}")
    else:
        status, answer = api.call("PATCH", name, {"data": data}, "application/merge-patch+json")
        api.check(status, answer, f"add {', '.join(missing)} to Secret {name}")
    generated = [key for key in missing if key not in adopted]
    done = [f"generated {', '.join(generated)}"] if generated else []
    if adopted:
        done.append(f"{', '.join(adopted)} kept from Secret {adopt}")
    print(f"Secret {name}: {'; '.join(done)}")


if __name__ == "__main__":
    main()
