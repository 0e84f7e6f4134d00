"""The chart, rendered (no cluster): lint with Helm 3 and Helm 4, strict schemas of every supported
Kubernetes minor, and what the rendered objects promise: the same objects at every render (no
random value), secrets only in Secrets, names carrying the release, probes under the prefix, values
refused by the schema, the environment the omero-web image validates, and a chart version that
changes with the chart."""

import base64
import json
import os
import re
import subprocess
import tempfile

import pytest
import yaml

import chart_history
from contract import KUBERNETES_SCHEMA_VERSIONS, KUBERNETES_VERSION, NGINX_PORT, REDIS_PORT, WEB_PORT
from docker_helpers import NGINX_IMAGE, WEB_IMAGE, docker
from entrypoint import env_to_key

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
CHART = os.path.join(REPO, "helm", "omero-web")

VALUES_FILES = sorted(os.listdir(os.path.join(CHART, "ci")))
# kubeconform's Kubernetes schemas have no Gateway API kinds (a CRD): HTTPRoute is checked by the
# assertions below instead.
NOT_IN_KUBERNETES = "HTTPRoute"


@pytest.fixture(scope="session")
def kubeconform_schemas(tmp_path_factory):
    """kubernetes-validate's strict schemas (PyPI, offline) in the form kubeconform reads: theirs
    refer to a shared "/api/_definitions.json" that only kubernetes-validate's own loader finds, so
    each schema a rendered kind needs is written with those definitions inside it."""
    import kubernetes_validate

    source = os.path.join(os.path.dirname(kubernetes_validate.__file__), "kubernetes-json-schema")
    target = tmp_path_factory.mktemp("kubernetes-json-schema")

    def provide(objects, version):
        folder = target / f"v{version}-local-strict"
        folder.mkdir(exist_ok=True)
        for api_version, kind in {(o["apiVersion"], o["kind"]) for o in objects if o["kind"] != NOT_IN_KUBERNETES}:
            group, _, version_part = api_version.rpartition("/")
            name = "-".join(filter(None, [kind.lower(), group.split(".")[0], version_part])) + ".json"
            if (folder / name).exists():
                continue
            original = os.path.join(source, folder.name, name)
            assert os.path.exists(original), f"no Kubernetes {version} schema for {api_version} {kind}"
            schema = json.loads(open(original).read().replace('"/api/_definitions.json#', '"#'))
            shared = open(os.path.join(source, folder.name, "_definitions.json")).read()
            schema["$defs"] = json.loads(shared.replace('"/api/_definitions.json#', '"#'))["$defs"]
            (folder / name).write_text(json.dumps(schema))
        return str(target)

    return provide


def of_kind(objects, kind):
    return [o for o in objects if o["kind"] == kind]


def web_deployment(objects):
    (deployment,) = [o for o in of_kind(objects, "Deployment") if not o["metadata"]["name"].endswith("-redis")]
    return deployment


def container(objects, name):
    (found,) = [c for c in web_deployment(objects)["spec"]["template"]["spec"]["containers"] if c["name"] == name]
    return found


def secret_sources(objects):
    """The Secrets (name, items) the web container's mounted secrets volume is made of."""
    volumes = {v["name"]: v for v in web_deployment(objects)["spec"]["template"]["spec"]["volumes"]}
    return [source["secret"] for source in volumes["secrets"]["projected"]["sources"]]


def env(objects, name="web"):
    return {e["name"]: e.get("value", e.get("valueFrom")) for e in container(objects, name)["env"]}


@pytest.mark.parametrize("major", ["helm3", "helm4"])
@pytest.mark.parametrize("values", VALUES_FILES)
def test_lint_strict(helm, helm4, values, major):
    run = helm if major == "helm3" else helm4
    run("lint", "--strict", CHART, "-f", os.path.join(CHART, "ci", values), "--kube-version", KUBERNETES_VERSION)


def rendered_text(helm, values, kubernetes=KUBERNETES_VERSION):
    """`helm template` of one ci/ values file, as the manifest text the command-line tools read."""
    values_file = os.path.join(CHART, "ci", values)
    return helm("template", "r", CHART, "-f", values_file, "--kube-version", kubernetes).stdout


@pytest.mark.parametrize("values", VALUES_FILES)
def test_helm4_renders_what_helm3_renders_and_every_render_is_the_same(helm, helm4, values):
    """The same objects from both majors, and from two renders of the same values: nothing random
    is rendered, so an upgrade or a GitOps sync with unchanged values changes no object."""
    three = rendered_text(helm, values)
    assert rendered_text(helm, values) == three, "two renders of the same values differ"
    objects = lambda text: [d for d in yaml.safe_load_all(text) if d]  # noqa: E731
    assert objects(rendered_text(helm4, values)) == objects(three)


@pytest.mark.parametrize("values", VALUES_FILES)
@pytest.mark.parametrize("kubernetes", KUBERNETES_SCHEMA_VERSIONS)
def test_objects_valid_for_kubernetes(helm, tools, kubeconform_schemas, values, kubernetes):
    rendered = rendered_text(helm, values, kubernetes)
    schemas = kubeconform_schemas([d for d in yaml.safe_load_all(rendered) if d], kubernetes)
    location = os.path.join(
        schemas, "{{ .NormalizedKubernetesVersion }}-local{{ .StrictSuffix }}",
        "{{ .ResourceKind }}{{ .KindSuffix }}.json",
    )  # fmt: skip
    result = subprocess.run(
        [os.path.join(tools, "kubeconform"), "-strict", "-summary", "-kubernetes-version", kubernetes,
         "-schema-location", location, "-skip", NOT_IN_KUBERNETES, "-"],
        input=rendered, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Invalid: 0, Errors: 0" in result.stdout, result.stdout


def test_chart_version_changes_with_the_chart():
    """Chart.yaml's version is bumped whenever what the chart renders may change: templates,
    values, schema, files (the README aside). Compared with the commit that set the version."""
    since = chart_history.introduced()
    if since is None:
        return  # the work tree's version is new: the bump is there
    changed = chart_history.changed_since(since)
    assert not changed, (
        f"helm/omero-web changed since {since[:10]} set version {chart_history.version()} ({', '.join(changed)}):"
        " bump version in helm/omero-web/Chart.yaml (SemVer)"
    )


# The linter: kube-score (tests/chart/tools.sh; kube-linter's modules are refused by the Go proxy
# here), every default check plus the optional seccomp one. What the chart does otherwise, and why:
KUBE_SCORE_IGNORED = {
    "container-security-context-user-group-id": "the containers run as their images' users (omero-web "
    "999, as the official image; nginx 101; Redis 999), so files on existing volumes keep their owners",
    "container-image-pull-policy": "IfNotPresent (image.*.pullPolicy): tags are pinned, and a cluster "
    "without a registry (the test cluster) can run the images; Always is one value away",
    "container-ephemeral-storage-request-and-limit": "nginx buffers uploads of up to "
    "nginx.clientMaxBodySize in its /tmp, so no default limit fits every site; resources.* takes one",
    "deployment-replicas": "one web pod by default, as with compose (replicaCount, autoscaling), and one Redis",
}
KUBE_SCORE_FLAGS = ["--ignore-container-cpu-limit"]  # CPU limits throttle gunicorn's bursts; requests are set
# Checks set aside for one object, by the end of its name:
KUBE_SCORE_IGNORED_FOR = {
    ("-redis", "deployment-strategy"): "Recreate: never two Redis at once, splitting the sessions",
    ("-test", "pod-networkpolicy"): "the helm test pod only connects out, to the release's Service",
    ("-secrets", "pod-networkpolicy"): "the secrets Job only connects out, to the API server, whose address "
    "and port (after the kubernetes Service's translation) no NetworkPolicy can name on every cluster",
}
GRADE_OK = 10  # kube-score's grades: 1 critical, 5 warning, 7 almost OK, 10 OK


@pytest.mark.parametrize("values", VALUES_FILES)
def test_kube_score_finds_nothing_unexplained(helm, tools, values):
    rendered = rendered_text(helm, values)
    result = subprocess.run(
        [os.path.join(tools, "kube-score"), "score", "--output-format", "json", "--kubernetes-version",
         "v" + KUBERNETES_VERSION.rsplit(".", 1)[0], "--enable-optional-test", "container-seccomp-profile",
         *KUBE_SCORE_FLAGS, "--ignore-test", ",".join(KUBE_SCORE_IGNORED), "-"],
        input=rendered, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert result.returncode in (0, 1) and result.stdout, result.stderr  # 1: something critical
    report = json.loads(result.stdout)
    findings = []
    for scored in report:
        name = scored["object_meta"]["name"]
        for check in scored["checks"]:
            check_id = check["check"]["id"]
            if check["skipped"] or check["grade"] >= GRADE_OK:
                continue
            if any(name.endswith(end) and check_id == ignored for end, ignored in KUBE_SCORE_IGNORED_FOR):
                continue
            summaries = "; ".join(comment["summary"] for comment in check["comments"] or [])
            findings.append(f"{scored['object_name']}: {check_id}: {summaries}")
    assert not findings, "\n".join(findings)
    objects = [d for d in yaml.safe_load_all(rendered) if d]
    workloads = {o["metadata"]["name"] for o in objects if o["kind"] in ("Deployment", "Pod", "Job")}
    assert workloads <= {scored["object_meta"]["name"] for scored in report}  # each one scored


def test_defaults_give_the_hardened_pod_redis_and_policies(render):
    objects = render()
    kinds = sorted(o["kind"] for o in objects)
    assert kinds == sorted(
        ["ServiceAccount", "Service", "Service", "Deployment", "Deployment", "NetworkPolicy", "NetworkPolicy",
         "Pod", "ServiceAccount", "Role", "RoleBinding", "ConfigMap", "Job"]
    )  # fmt: skip
    pod = web_deployment(objects)["spec"]["template"]["spec"]
    assert pod["automountServiceAccountToken"] is False
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    for deployment in of_kind(objects, "Deployment"):
        for each in deployment["spec"]["template"]["spec"]["containers"]:
            context = each["securityContext"]
            assert context["readOnlyRootFilesystem"] is True and context["allowPrivilegeEscalation"] is False
            assert context["capabilities"] == {"drop": ["ALL"]}
            assert context["runAsUser"] > 0
    assert env(objects, "nginx")["OMERO_WEB_UPSTREAM"] == f"127.0.0.1:{WEB_PORT}"
    assert [p["containerPort"] for p in container(objects, "web")["ports"]] == [WEB_PORT]
    assert [p["containerPort"] for p in container(objects, "nginx")["ports"]] == [NGINX_PORT]
    assert env(objects)["REDIS_URL"] == f"redis://omero-web-redis:{REDIS_PORT}/0"
    assert not of_kind(objects, "PodDisruptionBudget")  # one pod: nothing to budget


def test_no_secret_outside_secrets(render):
    for values in VALUES_FILES:
        objects = render(values)
        for config_map in of_kind(objects, "ConfigMap"):  # the secrets Job's script, nothing else
            assert config_map["metadata"]["name"].endswith("-secrets") and list(config_map["data"]) == [
                "generate-secrets.py"
            ], values
        secrets = [
            base64.b64decode(v).decode()
            for s in of_kind(objects, "Secret")
            for v in s["data"].values()
        ]  # fmt: skip
        text = yaml.safe_dump_all([o for o in objects if o["kind"] != "Secret"])
        for secret in secrets:
            assert secret not in text, values
        for each in container(objects, "web")["env"]:
            assert not re.search(r"secret__key$|PASSWORD$", each["name"]), (values, each["name"])


def test_secret_key_and_redis_password_are_generated_in_the_cluster_never_rendered(render):
    """Nothing to generate is rendered: a hook Job creates the Secret once in the cluster, and every
    replica mounts it."""
    objects = render("replicas-hpa-pdb-values.yaml")
    assert not of_kind(objects, "Secret")
    (job,) = of_kind(objects, "Job")
    assert job["metadata"]["annotations"]["helm.sh/hook"] == "pre-install,pre-upgrade"
    job_env = {e["name"]: e.get("value") for e in job["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert job_env["GENERATE"] == "secret-key=50 redis-password=32"
    assert job_env["SECRET_NAME"] == "omero-web-generated" and job_env["ADOPT_FROM"] == "omero-web"
    assert job_env["APP_NAME"] == "omero-web" and job_env["RELEASE"] == "omero-web"  # the generated Secret's labels
    (script,) = of_kind(objects, "ConfigMap")
    assert script["data"]["generate-secrets.py"] == open(os.path.join(CHART, "files", "generate-secrets.py")).read()
    # Only the Job's pod gets an API token; its Role reads and patches only its own Secret by name.
    for each in of_kind(objects, "Deployment") + of_kind(objects, "Pod"):
        spec = each["spec"]["template"]["spec"] if each["kind"] == "Deployment" else each["spec"]
        assert spec["automountServiceAccountToken"] is False, each["metadata"]["name"]
    (role,) = of_kind(objects, "Role")
    assert [(r["verbs"], r.get("resourceNames")) for r in role["rules"]] == [
        (["get", "patch"], ["omero-web-generated"]), (["get"], ["omero-web"]), (["create"], None)
    ]  # fmt: skip
    variables = env(objects)
    assert variables["CONFIG_omero_web_secret__key_FILE"] == "/run/secrets/omero-web/secret-key"
    assert variables["REDIS_PASSWORD_FILE"] == "/run/secrets/omero-web/redis-password"
    assert {s["name"] for s in secret_sources(objects)} == {"omero-web-generated"}
    (redis,) = [o for o in of_kind(objects, "Deployment") if o["metadata"]["name"].endswith("-redis")]
    assert redis["spec"]["template"]["spec"]["volumes"][1]["secret"]["secretName"] == "omero-web-generated"
    # One Deployment, one pod template for all replicas: every replica reads the same Secret.
    assert "replicas" not in web_deployment(objects)["spec"]  # the autoscaler owns the count
    (hpa,) = of_kind(objects, "HorizontalPodAutoscaler")
    assert hpa["spec"]["minReplicas"] == 3
    (pdb,) = of_kind(objects, "PodDisruptionBudget")
    assert pdb["spec"]["maxUnavailable"] == 1


def test_pod_templates_carry_no_version(render):
    """A new chart or app version alone restarts no pod: the built-in Redis restarting would log
    every user out."""
    for each in of_kind(render(), "Deployment") + of_kind(render(), "Job"):
        labels = each["spec"]["template"]["metadata"]["labels"]
        assert not {"helm.sh/chart", "app.kubernetes.io/version"} & set(labels), each["metadata"]["name"]


def test_explicit_and_existing_secrets(render):
    explicit = render(None, "--set", "secretKey=k", "--set", "redis.password=p@ss word")
    (secret,) = of_kind(explicit, "Secret")
    assert base64.b64decode(secret["data"]["secret-key"]) == b"k"
    assert base64.b64decode(secret["data"]["redis-password"]) == b"p@ss word"
    assert not of_kind(explicit, "Job")  # nothing to generate
    half = render(None, "--set", "secretKey=k")
    (job,) = of_kind(half, "Job")
    assert {"name": "GENERATE", "value": "redis-password=32"} in job["spec"]["template"]["spec"]["containers"][0]["env"]
    assert {s["name"] for s in secret_sources(half)} == {"omero-web", "omero-web-generated"}
    existing = render("existing-secret-values.yaml")
    assert not of_kind(existing, "Secret") and not of_kind(existing, "Job")  # the site's Secret has both
    assert {s["name"] for s in secret_sources(existing)} == {"site-omero-web"}
    external = render("external-redis-values.yaml")
    assert not of_kind(external, "Secret") or "redis-password" not in of_kind(external, "Secret")[0]["data"]
    assert env(external)["REDIS_URL"] == "redis://redis.example.org:6379/2"
    items = [item for source in secret_sources(external) for item in source["items"]]
    assert {"key": "password", "path": "redis-password"} in items


def test_public_user_and_its_password_file(render):
    """public.user: OMERO_WEB_PUBLIC_USER, and the password as a file of the mounted secrets (never
    an env value), from the release's Secret or the site's own."""
    explicit = render(None, "--set", "public.user=public", "--set", "public.password=pub pw")
    (secret,) = of_kind(explicit, "Secret")
    assert base64.b64decode(secret["data"]["public-password"]) == b"pub pw"
    variables = env(explicit)
    assert variables["OMERO_WEB_PUBLIC_USER"] == "public"
    assert variables["OMERO_WEB_PUBLIC_PASSWORD_FILE"] == "/run/secrets/omero-web/public-password"
    assert {"name": "omero-web", "items": [{"key": "public-password", "path": "public-password"}]} in secret_sources(
        explicit
    )
    existing = render("public-user-values.yaml")
    assert not of_kind(existing, "Secret") or "public-password" not in of_kind(existing, "Secret")[0]["data"]
    assert {"name": "site-public", "items": [{"key": "password", "path": "public-password"}]} in secret_sources(
        existing
    )
    assert not {"OMERO_WEB_PUBLIC_USER", "OMERO_WEB_PUBLIC_PASSWORD_FILE"} & set(env(render(None)))


def test_every_name_carries_the_release_and_two_releases_never_collide(render):
    names = {}
    for release in ("first", "second"):
        objects = render("replicas-hpa-pdb-values.yaml", "--set", "ingress.enabled=true", release=release)
        for each in objects:
            assert release in each["metadata"]["name"], each["metadata"]["name"]
            assert each["metadata"]["labels"]["app.kubernetes.io/instance"] == release
        names[release] = {(o["kind"], o["metadata"]["name"]) for o in objects}
    assert not names["first"] & names["second"]


def test_probes_ingress_and_route_follow_the_prefix(render):
    objects = render("prefix-values.yaml", "--set", "ingress.enabled=true")
    web = container(objects, "web")
    for probe in ("startupProbe", "readinessProbe"):  # through gunicorn, under the prefix
        assert web[probe]["httpGet"] == {"path": "/omero/webgateway/", "port": "gunicorn"}, probe
    assert web["livenessProbe"]["tcpSocket"] == {"port": "gunicorn"}  # busy workers restart nothing
    assert env(objects)["OMERO_WEB_PREFIX"] == env(objects, "nginx")["OMERO_WEB_PREFIX"] == "/omero"
    (ingress,) = of_kind(objects, "Ingress")
    assert ingress["spec"]["rules"][0]["http"]["paths"][0]["path"] == "/omero"
    (route,) = of_kind(render("httproute-values.yaml"), "HTTPRoute")
    assert route["spec"]["rules"][0]["matches"][0]["path"] == {"type": "PathPrefix", "value": "/omero"}
    assert route["spec"]["parentRefs"] == [{"name": "gateway", "namespace": "gateway-system"}]


def test_the_nginx_cache_of_a_public_site(render):
    """nginx.cache: the sidecar's variables with the public user, an emptyDir at the cache's path
    with its sizeLimit, and the rendered variables pass the nginx image's own validation (the
    locations are there). Without public.user the chart refuses it, as nginx would (below)."""
    objects = render("public-cache-values.yaml")
    nginx = env(objects, "nginx")
    assert {k: v for k, v in nginx.items() if "CACHE" in k or "PUBLIC_USER" in k} == {
        "OMERO_WEB_PUBLIC_USER": "public", "NGINX_CACHE": "on", "NGINX_CACHE_MAX_SIZE": "500m",
        "NGINX_CACHE_VALID": "10m"}  # fmt: skip
    (mount,) = [m for m in container(objects, "nginx")["volumeMounts"] if m["name"] == "nginx-cache"]
    assert mount["mountPath"] == "/var/cache/omero-web-nginx"
    volumes = {v["name"]: v for v in web_deployment(objects)["spec"]["template"]["spec"]["volumes"]}
    assert volumes["nginx-cache"] == {"name": "nginx-cache", "emptyDir": {"sizeLimit": "1Gi"}}
    rendered = docker("run", "--rm", *[f"-e{k}={v}" for k, v in nginx.items()], NGINX_IMAGE, "render").stdout
    assert "location ~ ^/omero/web(gateway|client)/(render_thumbnail|" in rendered
    assert "proxy_cache_valid 200 10m;" in rendered and "max_size=300m" in rendered  # 60 % of 500m: planes
    plain = render("public-user-values.yaml")
    assert not {n for n in env(plain, "nginx") if "CACHE" in n or "PUBLIC" in n}
    assert "nginx-cache" not in {v["name"] for v in web_deployment(plain)["spec"]["template"]["spec"]["volumes"]}


def test_omero_ws_is_wired_routed_and_allowed_out(render):
    """nginx.omeroWs: the sidecar's variables (the CA mounted where NGINX_OMERO_WS_CA says), the
    Ingress and the HTTPRoute route /omero-ws beside the prefix, the NetworkPolicy lets the pods
    reach the URL's port; and the rendered variables pass the nginx image's own validation."""
    objects = render("omero-ws-values.yaml")
    nginx = env(objects, "nginx")
    assert nginx["NGINX_OMERO_WS_URL"] == "wss://omero.example.org:4066"
    assert nginx["NGINX_OMERO_WS_TLS_NAME"] == "omero-server"
    (mount,) = [m for m in container(objects, "nginx")["volumeMounts"] if m["name"] == "omero-ws-ca"]
    assert os.path.join(mount["mountPath"], "ca.pem") == nginx["NGINX_OMERO_WS_CA"] and mount["readOnly"]
    volumes = {v["name"]: v for v in web_deployment(objects)["spec"]["template"]["spec"]["volumes"]}
    assert volumes["omero-ws-ca"]["secret"] == {"secretName": "omero-server-ca",
                                                "items": [{"key": "ca.crt", "path": "ca.pem"}]}  # fmt: skip
    (ingress,) = of_kind(objects, "Ingress")
    paths = [(p["path"], p["pathType"]) for p in ingress["spec"]["rules"][0]["http"]["paths"]]
    assert paths == [("/omero", "Prefix"), ("/omero-ws", "Exact")]
    (route,) = of_kind(objects, "HTTPRoute")
    assert route["spec"]["rules"][0]["matches"][1] == {"path": {"type": "Exact", "value": "/omero-ws"}}
    web_policy = [p for p in of_kind(objects, "NetworkPolicy") if not p["metadata"]["name"].endswith("-redis")]
    ports = {port["port"] for rule in web_policy[0]["spec"]["egress"] for port in rule.get("ports", [])}
    assert {4064, 4066} <= ports
    rendered = docker("run", "--rm", *[f"-e{k}={v}" for k, v in nginx.items()], NGINX_IMAGE, "render").stdout
    assert "location = /omero-ws" in rendered and "proxy_ssl_name omero-server;" in rendered
    # Without a prefix, / carries it already; a ConfigMap instead of the Secret; no URL: none of it.
    objects = render("omero-ws-values.yaml", "--set", "prefix=", "--set", "nginx.omeroWs.ca.secret=", "--set",
                     "nginx.omeroWs.ca.configMap=omero-ca", "--set", "nginx.omeroWs.ca.key=bundle.pem")  # fmt: skip
    (ingress,) = of_kind(objects, "Ingress")
    assert [p["path"] for p in ingress["spec"]["rules"][0]["http"]["paths"]] == ["/"]
    volumes = {v["name"]: v for v in web_deployment(objects)["spec"]["template"]["spec"]["volumes"]}
    items = [{"key": "bundle.pem", "path": "ca.pem"}]
    assert volumes["omero-ws-ca"]["configMap"] == {"name": "omero-ca", "items": items}
    objects = render("omero-ws-values.yaml", "--set", "nginx.omeroWs.url=")
    assert not {n for n in env(objects, "nginx") if n.startswith("NGINX_OMERO_WS")}
    assert "omero-ws-ca" not in {v["name"] for v in web_deployment(objects)["spec"]["template"]["spec"]["volumes"]}
    (ingress,) = of_kind(objects, "Ingress")
    assert [p["path"] for p in ingress["spec"]["rules"][0]["http"]["paths"]] == ["/omero"]


def test_ingress_with_class_and_tls(render):
    (ingress,) = of_kind(render("ingress-tls-values.yaml"), "Ingress")
    assert ingress["spec"]["ingressClassName"] == "nginx"
    assert ingress["spec"]["tls"] == [{"secretName": "omero-example-org-tls", "hosts": ["omero.example.org"]}]
    assert ingress["spec"]["rules"][0]["host"] == "omero.example.org"


@pytest.mark.parametrize(
    "args, says",
    [
        (["--set", "omeroHots=omero.example.org"], "omeroHots"),
        (["--set", "redis.enable=false"], "enable"),
        (["--set", "replicaCount=two"], "replicaCount"),
        (["--set", "prefix=omero"], "prefix"),
        (["--set", "config.debug=true"], "debug"),
        (["--set", "omeroHost=a", "--set-json", 'serverList=[["b",4064]]'], "omeroHost or serverList"),
        (["--set", "replicaCount=2", "--set", "redis.enabled=false"], "shared sessions"),
        (["--set", "config.omero\\.web\\.secret_key=x"], "secretKey or existingSecret"),
        (["--set", "secretKey=k", "--set", "existingSecret=mine"], "set secretKey or existingSecret, not both"),
        (["--set", "redis.password=p", "--set", "redis.existingSecret=mine"], "redis.password or redis.existingSecret"),
        (["--set", "public.user=public"], "public.user needs the public user's password"),
        (["--set", "nginx.cache.enabled=true"], "nginx.cache.enabled caches the images of a public data site"),
        (["--set", "public.password=p"], "public.existingSecret or public.password is set but public.user is not"),
        (["--set", "public.user=u", "--set", "public.password=p", "--set", "public.existingSecret=mine"],
         "set public.password or public.existingSecret, not both"),
        (["--set", "nginx.omeroWs.url=wss://omero.example.org/omero-ws"], "url"),
        (["--set", "nginx.omeroWs.ca.configMap=a", "--set", "nginx.omeroWs.ca.secret=b"],
         "set nginx.omeroWs.ca.configMap or nginx.omeroWs.ca.secret, not both"),
        # What nginx, the container port or the probes depend on: refused, naming the value.
        (["--set", "config.omero\\.web\\.application_server\\.port=4090"],
         "config.omero.web.application_server.port cannot be set in this chart (gunicorn must listen on 0.0.0.0:4080"),
        (["--set", "config.omero\\.web\\.application_server\\.host=127.0.0.1"],
         "config.omero.web.application_server.host cannot be set"),
        (["--set", "config.omero\\.web\\.application_server=wsgi"], "config.omero.web.application_server cannot"),
        (["--set", "config.omero\\.web\\.prefix=/omero"], "use the value prefix"),
        (["--set", "extraEnv[0].name=CONFIG_omero_web_application__server_port", "--set", "extraEnv[0].value=4090"],
         "extraEnv CONFIG_omero_web_application__server_port cannot be set in this chart (gunicorn must listen"),
        (["--set", "extraEnv[0].name=OMERO_WEB_PREFIX", "--set", "extraEnv[0].value=/omero"],
         "extraEnv OMERO_WEB_PREFIX cannot be set in this chart: use the value prefix"),
    ],
)  # fmt: skip
def test_values_refused_with_a_readable_message(helm, args, says):
    result = helm("template", "r", CHART, "--kube-version", KUBERNETES_VERSION, *args, check=False)
    assert result.returncode != 0
    assert says in result.stderr, result.stderr


def test_config_values_become_the_variables_the_image_reads(render):
    """No second translation: each config key comes back from its variable name through the
    entrypoint's own rule, and its value is the string OMERO.web gets."""
    objects = render("public-url-values.yaml")
    values = yaml.safe_load(open(os.path.join(CHART, "ci", "public-url-values.yaml")))
    variables = env(objects)
    for key, value in values["config"].items():
        (name,) = [n for n in variables if n.startswith("CONFIG_") and env_to_key(n[len("CONFIG_") :]) == key]
        expected = value if isinstance(value, str) else yaml.safe_dump(value)  # compared as data below
        assert yaml.safe_load(variables[name]) == yaml.safe_load(expected), key
    assert variables["OMEROHOST"] == "omero.example.org" and variables["OMEROPORT"] == "4064"
    assert variables["OMERO_WEB_PUBLIC_URL"] == "https://omero.example.org"


def test_rendered_environment_passes_the_images_validation(render):
    """What the chart renders is what the omero-web image accepts: `entrypoint.py check` in the
    real image, with the Secret's files mounted where the pod mounts them."""
    for values in (
        "public-url-values.yaml", "cors-values.yaml", "prefix-values.yaml", "external-redis-values.yaml",
        "public-user-values.yaml", "public-cache-values.yaml",
    ):  # fmt: skip
        objects = render(values)
        with tempfile.TemporaryDirectory() as secrets:
            for name in ("secret-key", "redis-password", "public-password"):
                with open(os.path.join(secrets, name), "w") as handle:
                    handle.write("s3cret-value-" * 4)
            os.chmod(secrets, 0o755)
            for name in os.listdir(secrets):
                os.chmod(os.path.join(secrets, name), 0o644)
            args = ["run", "--rm", "-v", f"{secrets}:/run/secrets/omero-web:ro"]
            for name, value in env(objects).items():
                args += ["-e", f"{name}={value}"]
            result = docker(*args, WEB_IMAGE, "check", check=False)
        assert result.returncode == 0, f"{values}:\n{result.stderr}"
        assert "s3cret-value" not in result.stdout + result.stderr
        assert "is not a variable of these images" not in result.stderr, result.stderr
