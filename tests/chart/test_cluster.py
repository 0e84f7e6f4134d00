"""The chart on real single-node Kubernetes clusters (tests/chart/k8s/: built from upstream sources,
our images imported from `docker save`): every test runs on the oldest and on the newest
Kubernetes the chart supports, with Helm 3 on the one and Helm 4 on the other (CLUSTERS), in a
namespace that enforces the `restricted` Pod Security Standard. Everything is reached through
127.0.0.1: NodePorts that kube-proxy binds to loopback only, or `kubectl port-forward`. Every
request has a deadline."""

import glob
import json
import os
import re
import socket
import subprocess
import zipfile
from urllib.parse import urljoin

import pytest
import requests
import websockets
from websockets.sync.client import connect

import chart_history
from cluster_helpers import (
    CHART,
    CLUSTERS,
    NAMESPACE,
    REPO,
    helm,
    image_values,
    install,
    kubectl,
    pods,
    restricted_cluster,
    rolled,
    run,
    wait_until,
    web_pods,
)
from contract import KUBERNETES_CLUSTERS, NGINX_PORT
from docker_helpers import (
    GET_ON_THIS_WEB,
    STANDIN_IMAGE,
    USERS,
    WEB_IMAGE,
    WebUser,
    assert_logged_in,
    assert_no_unknown_calls,
)
from load import failures, summary, when
from tls_helpers import issue, make_ca

# Run in the web container: SIGTERM to gunicorn's master, the child of tini (PID 1 itself ignores
# signals sent from inside its own container).
# The OMERO.server stand-in (tests/standin/) as `omero` in the test namespace, hardened like the chart.
STANDIN = f"""
apiVersion: apps/v1
kind: Deployment
metadata: {{name: omero, labels: {{app: omero-standin}}}}
spec:
  selector: {{matchLabels: {{app: omero-standin}}}}
  template:
    metadata: {{labels: {{app: omero-standin}}}}
    spec:
      automountServiceAccountToken: false
      securityContext: {{runAsNonRoot: true, runAsUser: 999, seccompProfile: {{type: RuntimeDefault}}}}
      containers:
        - name: standin
          image: {STANDIN_IMAGE}
          imagePullPolicy: Never
          ports: [{{containerPort: 4063}}, {{containerPort: 4064}}]
          readinessProbe: {{tcpSocket: {{port: 4064}}, periodSeconds: 2}}
          securityContext:
            allowPrivilegeEscalation: false
            readOnlyRootFilesystem: true
            capabilities: {{drop: [ALL]}}
          volumeMounts: [{{name: tmp, mountPath: /tmp}}]
      volumes: [{{name: tmp, emptyDir: {{}}}}]
---
apiVersion: v1
kind: Service
metadata: {{name: omero}}
spec:
  selector: {{app: omero-standin}}
  ports: [{{name: tcp, port: 4063}}, {{name: ssl, port: 4064}}]
"""
# The websocket stand-in (tests/stack/upstreams/websocket.py) as `omero-ws`, on the web image's Python.
WEBSOCKET_UPSTREAM = os.path.join(REPO, "tests", "stack", "upstreams", "websocket.py")
OMERO_WS = f"""
apiVersion: apps/v1
kind: Deployment
metadata: {{name: omero-ws, labels: {{app: omero-ws}}}}
spec:
  selector: {{matchLabels: {{app: omero-ws}}}}
  template:
    metadata: {{labels: {{app: omero-ws}}}}
    spec:
      automountServiceAccountToken: false
      securityContext: {{runAsNonRoot: true, runAsUser: 999, seccompProfile: {{type: RuntimeDefault}}}}
      containers:
        - name: websocket
          image: {WEB_IMAGE}
          imagePullPolicy: Never
          command: [python3, /srv/code/websocket.py, /srv/tls/tls.crt, /srv/tls/tls.key]
          env: [{{name: PYTHONPATH, value: /srv/code/websockets.zip}}]
          ports: [{{containerPort: 4065}}, {{containerPort: 4066}}]
          readinessProbe: {{tcpSocket: {{port: 4066}}, periodSeconds: 2}}
          securityContext:
            allowPrivilegeEscalation: false
            readOnlyRootFilesystem: true
            capabilities: {{drop: [ALL]}}
          volumeMounts:
            - {{name: code, mountPath: /srv/code}}
            - {{name: tls, mountPath: /srv/tls}}
      volumes:
        - {{name: code, configMap: {{name: omero-ws-code}}}}
        - {{name: tls, secret: {{secretName: omero-ws-tls, defaultMode: 0444}}}}
---
apiVersion: v1
kind: Service
metadata: {{name: omero-ws}}
spec:
  selector: {{app: omero-ws}}
  ports: [{{name: ws, port: 4065}}, {{name: wss, port: 4066}}]
"""
STOP_GUNICORN = """
import os, signal
for pid in filter(str.isdigit, os.listdir("/proc")):
    if open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()[1] == "1":
        os.kill(int(pid), signal.SIGTERM)
"""


@pytest.fixture(scope="module", params=list(CLUSTERS))
def cluster(request, tools):
    with restricted_cluster(tools, request.param) as env:
        yield env


@pytest.fixture(scope="module")
def standin(cluster):
    """The OMERO.server stand-in as `omero` in the namespace, for the releases that log users in."""
    kubectl(cluster, "apply", "-f", "-", stdin=STANDIN)
    kubectl(cluster, "rollout", "status", "deployment/omero", "--timeout=120s", timeout=150)
    yield "omero"
    assert_no_unknown_calls(kubectl(cluster, "logs", "deployment/omero").stdout)


def get(url, **kwargs):
    return requests.get(url, timeout=10, allow_redirects=False, **kwargs)


@pytest.fixture(scope="module")
def plain(cluster):
    """A release with zero values except where our images are (no registry here)."""
    return cluster, install(cluster, "plain", 30080)


@pytest.fixture(scope="module")
def omero_ws(cluster, tmp_path_factory):
    """A stand-in for OMERO.server's websocket ports as `omero-ws` (tests/stack/upstreams/websocket.py,
    echo on ws 4065 and wss 4066, its certificate from a test CA), with the host's `websockets`
    library as a zip; the CA in the ConfigMap `omero-ws-ca`, as a site would give OMERO.server's."""
    work = tmp_path_factory.mktemp("omero-ws")
    make_ca(work, "ca")
    issue(work, "server", host="omero-ws")
    library = os.path.dirname(websockets.__file__)
    with zipfile.ZipFile(work / "websockets.zip", "w") as archive:
        for path in glob.glob(os.path.join(library, "**", "*.py"), recursive=True):
            archive.write(path, os.path.relpath(path, os.path.dirname(library)))
    kubectl(cluster, "create", "configmap", "omero-ws-ca", f"--from-file=ca.crt={work / 'ca.crt'}")
    kubectl(cluster, "create", "configmap", "omero-ws-code", f"--from-file={WEBSOCKET_UPSTREAM}",
            f"--from-file={work / 'websockets.zip'}")  # fmt: skip
    kubectl(cluster, "create", "secret", "tls", "omero-ws-tls", f"--cert={work / 'server.crt'}",
            f"--key={work / 'server.key'}")  # fmt: skip
    kubectl(cluster, "apply", "-f", "-", stdin=OMERO_WS)
    kubectl(cluster, "rollout", "status", "deployment/omero-ws", "--timeout=120s", timeout=150)
    yield "wss://omero-ws:4066"
    logs = kubectl(cluster, "logs", "deployment/omero-ws").stdout
    assert "listening on 4065" in logs, logs


@pytest.fixture(scope="module")
def prefixed(cluster, omero_ws):
    """A release under /omero with CORS, two plugins, an Ingress and /omero-ws (wss, the CA from a ConfigMap)."""
    url = install(
        cluster, "prefixed", 30081, "--set", "prefix=/omero", "--set", "cors.origins={https://app.example.org}",
        "--set", "plugins={figure,iviewer}", "--set", "ingress.enabled=true", "--set", f"nginx.omeroWs.url={omero_ws}",
        "--set", "nginx.omeroWs.ca.configMap=omero-ws-ca",
    )  # fmt: skip
    return cluster, url


def test_the_cluster_runs_the_pinned_kubernetes_and_enforces_restricted_pods(cluster):
    server = json.loads(run(cluster, "kubectl", "version", "-o", "json").stdout)["serverVersion"]["gitVersion"]
    assert server == "v" + KUBERNETES_CLUSTERS[cluster["KUBERNETES"]]
    namespace = json.loads(kubectl(cluster, "get", "namespace", NAMESPACE, "-o", "json").stdout)
    assert namespace["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"
    # A pod the standard refuses (no securityContext: root allowed, capabilities kept, no seccomp)
    # is refused here, so every pod of the chart below passed it.
    refused = kubectl(cluster, "run", "unhardened", "--image", WEB_IMAGE, "--image-pull-policy=Never",
                      "--restart=Never", check=False)  # fmt: skip
    assert refused.returncode != 0 and "violates PodSecurity" in refused.stderr, refused.stderr


def test_zero_values_release_is_ready_and_passes_helm_test(plain):
    env, url = plain
    test = helm(env, "test", "plain", "--logs", timeout=300)
    assert "login page, static file from nginx, /healthz: OK" in test.stdout, test.stdout
    page = get(url + "/webclient/login/")
    assert page.status_code == 200 and "OMERO.web - Login" in page.text
    static = get(url + "/static/webgateway/js/ome.viewport.js")
    assert static.status_code == 200 and static.headers["Server"] == "nginx"
    assert get(url + "/healthz").status_code == 200


def test_two_releases_side_by_side_with_a_prefix_and_cors(plain, prefixed):
    env, url = prefixed
    page = get(url + "/omero/webclient/login/")
    assert page.status_code == 200 and "OMERO.web - Login" in page.text
    static = {u for u in re.findall(r'(?:href|src)="(/[^"]+)"', page.text) if "/static/" in u}
    assert len(static) >= 5
    for path in static:
        assert path.startswith("/omero/static/"), path
        answer = get(urljoin(url, path))
        assert answer.status_code == 200 and answer.headers["Server"] == "nginx", path
    preflight = requests.options(
        url + "/omero/api/v0/",
        headers={"Origin": "https://app.example.org", "Access-Control-Request-Method": "GET"},
        timeout=10,
    )
    assert preflight.headers.get("Access-Control-Allow-Origin") == "https://app.example.org"
    # The plugins named in `plugins` are routed, and their files come from the nginx sidecar.
    for page in ("/omero/figure/", "/omero/iviewer/"):
        answer = get(url + page)
        assert answer.status_code == 302 and answer.headers["Location"].startswith("/omero/webclient/login/"), page
    script = get(url + "/omero/static/omero_iviewer/main.js")
    assert script.status_code == 200 and script.headers["Server"] == "nginx" and len(script.content) > 1000
    # Both releases run in one namespace, their objects apart.
    names = kubectl(env, "get", "deployments,services,secrets,networkpolicies", "-o", "name").stdout.split()
    for release in ("plain", "prefixed"):
        assert f"deployment.apps/{release}-omero-web" in names and f"secret/{release}-omero-web-generated" in names
        assert f"networkpolicy.networking.k8s.io/{release}-omero-web" in names
    assert get(plain[1] + "/webclient/login/").status_code == 200


def test_omero_ws_through_the_sidecar_with_the_users_address(prefixed):
    """nginx.omeroWs: a websocket client exchanges messages with the stand-in through the pod's
    sidecar (wss verified against the CA from the ConfigMap); the address it gives as the
    X-Forwarded-For of a proxy in the cluster (nginx.trustedProxies' default) is the one nginx logs
    and passes on. A plain GET gets 426, and the Ingress routes /omero-ws beside the prefix."""
    env, url = prefixed
    user = "203.0.113.7"
    uri = url.replace("http://", "ws://") + "/omero-ws"
    with connect(uri, open_timeout=10, close_timeout=5, additional_headers={"X-Forwarded-For": user}) as connection:
        connection.send("hello OMERO")
        assert connection.recv(timeout=10) == "hello OMERO"
        connection.send("whoami")
        assert json.loads(connection.recv(timeout=10)) == {"path": "/omero-ws", "x-forwarded-for": user}
    assert get(url + "/omero-ws").status_code == 426
    logs = kubectl(env, "logs", "deployment/prefixed-omero-web", "-c", "nginx").stdout
    assert re.search(rf'^{re.escape(user)} .*"GET /omero-ws HTTP/1.1" 101 ', logs, re.M), logs[-2000:]
    ingress = json.loads(kubectl(env, "get", "ingress", "prefixed-omero-web", "-o", "json").stdout)
    paths = {(p["path"], p["pathType"]) for rule in ingress["spec"]["rules"] for p in rule["http"]["paths"]}
    assert paths == {("/omero", "Prefix"), ("/omero-ws", "Exact")}


def test_web_process_down_gives_the_maintenance_page(plain):
    """gunicorn stops in the pod: nginx beside it answers 503 with the maintenance page, and the
    pod leaves the Service (not ready) until gunicorn is back."""
    env, _ = plain
    pod = kubectl(env, "get", "pods", "-l", "app.kubernetes.io/instance=plain,app.kubernetes.io/component=web",
                  "-o", "jsonpath={.items[0].metadata.name}").stdout  # fmt: skip
    port = free_port()
    forward = subprocess.Popen(
        ["kubectl", "--namespace", NAMESPACE, "port-forward", f"pod/{pod}", f"{port}:{NGINX_PORT}",
         "--address", "127.0.0.1"],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        wait_until(lambda: get(f"http://127.0.0.1:{port}/healthz").status_code == 200, 30, "port-forward")
        kubectl(env, "exec", pod, "-c", "web", "--", "python3", "-c", STOP_GUNICORN)
        down = wait_until(lambda: maintenance(f"http://127.0.0.1:{port}/webclient/login/"), 30, "maintenance page")
        assert "OMERO.web is under maintenance" in down.text and down.headers["Retry-After"] == "30"
        wait_until(lambda: not pod_ready(env, pod), 60, "pod not ready")
        wait_until(lambda: pod_ready(env, pod), 180, "pod ready again")
        assert get(f"http://127.0.0.1:{port}/webclient/login/").status_code == 200
    finally:
        forward.terminate()
        forward.wait(timeout=10)


def test_logged_in_user_stays_through_a_second_replica_and_a_zero_failure_upgrade(plain, standin):
    """With the stand-in as OMERO.server: a user logs in, both pods serve them, then `helm upgrade`
    with a changed config value rolls every pod while requests run: none fails, the user is still
    logged in, and the secret key is the same."""
    env, url = plain
    settings = ["--set", f"omeroHost={standin}", "--set", "replicaCount=2"]
    unset = web_pods(env, "plain")
    install(env, "plain", 30080, *settings)
    # The old pod keeps serving (without omeroHost) while its endpoint removal propagates.
    wait_until(lambda: not set(unset) & set(web_pods(env, "plain", terminating=True)), 120, "old pods gone")
    user = WebUser(url)
    assert user.login().status_code == 302
    replicas = web_pods(env, "plain")
    assert len(replicas) == 2
    for pod in replicas:
        ping = kubectl(env, "exec", pod, "-c", "web", "--", "python3", "-c", GET_ON_THIS_WEB,
                       "/webclient/keepalive_ping/", user.session_id).stdout  # fmt: skip
        assert ping.strip() == "200 OK", pod
    key_before = secret_key_digest(env, "plain")
    changed = ["--set", "config.omero\\.web\\.page_size=100"]
    loop, times = rolled(env, "plain", url, lambda: install(env, "plain", 30080, *settings, *changed))
    print(f"\nupgrade: {summary(loop.answers)}")
    assert_no_failures(loop, times)
    assert assert_logged_in(user)["omeName"] == "root"
    assert secret_key_digest(env, "plain") == key_before


def assert_no_failures(loop, times):
    failed = failures(loop)
    sent = "; ".join(when(failed[:10], times["started"]))
    assert len(loop.answers) > 100 and not failed, f"{len(failed)} failed of {summary(loop.answers)}, sent at {sent}"


def secret_key_digest(env, release):
    """SHA-256 of the secret key as the release's web pods read it (one value for all of them)."""
    script = "import hashlib; print(hashlib.sha256(open('/run/secrets/omero-web/secret-key', 'rb').read()).hexdigest())"
    digests = {kubectl(env, "exec", pod, "-c", "web", "--", "python3", "-c", script).stdout.strip()
               for pod in web_pods(env, release)}  # fmt: skip
    assert len(digests) == 1, "the pods read different secret keys"
    return digests.pop()


def generations(env, release):
    listed = json.loads(kubectl(env, "get", "deployments", "-l", f"app.kubernetes.io/instance={release}",
                                "-o", "json").stdout)["items"]  # fmt: skip
    return {d["metadata"]["name"]: d["metadata"]["generation"] for d in listed}


def test_noop_upgrade_after_install_restarts_no_pod_and_logs_nobody_out(cluster, standin):
    """The first upgrade after install (--reuse-values), then the same values given again: no
    Deployment changes, no pod is replaced or restarted, the user stays logged in."""
    settings = ["--set", f"omeroHost={standin}"]
    url = install(cluster, "noop", 30082, *settings)
    user = WebUser(url)
    assert user.login().status_code == 302
    before, deployments = pods(cluster, "noop"), generations(cluster, "noop")
    assert len(before) == 2 and len(deployments) == 2
    helm(cluster, "upgrade", "noop", CHART, "--reuse-values", "--wait", "--timeout", "5m", timeout=400)
    install(cluster, "noop", 30082, *settings)
    assert generations(cluster, "noop") == deployments
    assert pods(cluster, "noop") == before
    assert assert_logged_in(user)["omeName"] == "root"
    helm(cluster, "uninstall", "noop", "--wait", timeout=300)


def test_gitops_render_and_apply_rolls_nothing(cluster, standin):
    """As Argo CD syncs: `helm template` (no cluster access, hooks as plain objects) piped to
    `kubectl apply`, three rounds. The Secret is generated once in the cluster, never rendered:
    later rounds change no Deployment, replace no pod, keep the user logged in."""
    version = KUBERNETES_CLUSTERS[cluster["KUBERNETES"]]
    args = ["template", "gitops", CHART, "--namespace", NAMESPACE, "--kube-version", version, "--skip-tests",
            *image_values(), "--set", f"omeroHost={standin}", "--set", "service.type=NodePort",
            "--set", "service.nodePort=30083"]  # fmt: skip
    rendered = run(cluster, cluster["OWK8S_HELM"], *args).stdout
    kubectl(cluster, "apply", "-f", "-", stdin=rendered)
    for name in ("gitops-omero-web", "gitops-omero-web-redis"):
        kubectl(cluster, "rollout", "status", f"deployment/{name}", "--timeout=300s", timeout=330)
    url = "http://127.0.0.1:30083"
    wait_until(lambda: get(url + "/webclient/login/").status_code == 200, 30, "the Service")
    user = WebUser(url)
    assert user.login().status_code == 302
    secret = lambda: json.loads(kubectl(cluster, "get", "secret", "gitops-omero-web-generated", "-o", "json").stdout)  # noqa: E731
    before, deployments, generated = pods(cluster, "gitops"), generations(cluster, "gitops"), secret()
    for _ in range(2):
        again = run(cluster, cluster["OWK8S_HELM"], *args).stdout
        assert again == rendered
        kubectl(cluster, "apply", "-f", "-", stdin=again)
    assert generations(cluster, "gitops") == deployments
    assert pods(cluster, "gitops") == before
    assert secret()["metadata"]["resourceVersion"] == generated["metadata"]["resourceVersion"]
    assert assert_logged_in(user)["omeName"] == "root"
    kubectl(cluster, "delete", "-f", "-", "--wait", stdin=rendered, timeout=300)
    kubectl(cluster, "delete", "secret", "gitops-omero-web-generated")


def test_upgrade_from_the_previous_chart_version_and_rollback(cluster, standin, tmp_path):
    """The previous chart version (from git history) installed, a user logged in, then upgraded to
    this chart (with a changed config value, so the web pods roll whatever the two versions
    differ in) and rolled back, each while requests run: none fails, the user stays logged in,
    the secret key never changes."""
    commit, version = chart_history.previous()
    previous = chart_history.export(commit, str(tmp_path))
    settings = ["--set", f"omeroHost={standin}", "--set", "replicaCount=2"]
    url = install(cluster, "prev", 30084, *settings, chart=previous)
    user = WebUser(url)
    assert user.login().status_code == 302
    key = secret_key_digest(cluster, "prev")
    changed = ["--set", "config.omero\\.web\\.page_size=100"]
    rollback = ["rollback", "prev", "1", "--wait", "--timeout", "5m"]
    for step, change in (
        (
            f"upgrade {version} -> {chart_history.version()}",
            lambda: install(cluster, "prev", 30084, *settings, *changed),
        ),
        (f"rollback to {version}", lambda: helm(cluster, *rollback, timeout=400)),
    ):
        loop, times = rolled(cluster, "prev", url, change)
        print(f"\n{step}: {summary(loop.answers)}")
        assert_no_failures(loop, times)
        assert assert_logged_in(user)["omeName"] == "root", step
        assert secret_key_digest(cluster, "prev") == key, step
    helm(cluster, "uninstall", "prev", "--wait", timeout=300)


def test_a_public_data_site_with_the_password_from_a_secret_of_the_sites(cluster, standin):
    """public.user with public.existingSecret: anonymous visitors browse under the prefix as the
    stand-in's public user; webadmin still asks for a login. With nginx.cache on (an emptyDir under
    the read-only root filesystem): the second visitor's thumbnail comes from the cache."""
    kubectl(cluster, "create", "secret", "generic", "site-public", f"--from-literal=password={USERS['public']}")
    url = install(
        cluster, "public", 30085, "--set", f"omeroHost={standin}", "--set", "prefix=/omero",
        "--set", "public.user=public", "--set", "public.existingSecret=site-public",
        "--set", "public.existingSecretPasswordKey=password", "--set", "nginx.cache.enabled=true",
    )  # fmt: skip
    visitor = WebUser(url, prefix="/omero")
    home = visitor.get("/webclient/")
    assert home.status_code == 200, (home.status_code, home.headers.get("Location"))
    assert 'id="public_login_button"' in home.text
    assert re.search(r"WEBCLIENT\.active_group_id = 4\b", home.text)  # the stand-in's public-data group
    admin = visitor.get("/webadmin/")
    assert admin.status_code == 302 and admin.headers["Location"].startswith("/omero/webclient/login/")
    answers = [user.get("/webgateway/render_thumbnail/1/") for user in (visitor, WebUser(url, prefix="/omero"))]
    assert [(a.status_code, a.headers.get("X-Cache-Status")) for a in answers] == [(200, "MISS"), (200, "HIT")]
    helm(cluster, "uninstall", "public", "--wait", timeout=300)
    kubectl(cluster, "delete", "secret", "site-public")


def test_network_policies_are_accepted(plain):
    env, _ = plain
    policies = json.loads(kubectl(env, "get", "networkpolicies", "-o", "json").stdout)["items"]
    assert {p["metadata"]["name"] for p in policies} >= {"plain-omero-web", "plain-omero-web-redis"}


def pod_ready(env, pod):
    status = json.loads(kubectl(env, "get", "pod", pod, "-o", "json").stdout)["status"]
    return any(c["type"] == "Ready" and c["status"] == "True" for c in status.get("conditions", []))


def maintenance(url):
    answer = get(url)
    return answer if answer.status_code == 503 else None


def free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_make_e2e_k8s_installs_and_runs_helm_test(cluster):
    """The target for users' own clusters, run against this one (kubectl's context = this cluster)."""
    values = " ".join(image_values())
    result = run(cluster, "make", "-C", REPO, "e2e-k8s", f"E2E_VALUES={values}", "E2E_NAMESPACE=e2e",
                 f"HELM={cluster['OWK8S_HELM']}", timeout=900)  # fmt: skip
    assert "login page, static file from nginx, /healthz: OK" in result.stdout, result.stdout[-2000:]
    run(cluster, cluster["OWK8S_HELM"], "uninstall", "omero-web-e2e", "--namespace", "e2e", "--wait", timeout=300)
