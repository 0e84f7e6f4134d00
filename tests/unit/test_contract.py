"""One source for every name, value and version: each place that repeats one is checked here
against its source, in seconds and without Docker, and a failure names the file to fix.

Sources: omeroweb/environment.toml (every variable; entrypoint.py reads it), versions.env (every
port and pinned version), helm/omero-web/values.yaml (every chart value; its schema and README
follow it)."""

import importlib
import json
import os
import re
import subprocess
import sys

import pytest
import yaml

import entrypoint
from contract import (
    CONTRACT,
    END,
    KUBERNETES_CLUSTERS,
    NGINX_HTTPS_PORT,
    NGINX_PORT,
    OMERO_SERVER_PORT,
    REDIS_PORT,
    REPO,
    START,
    VERSIONS,
    WEB_PORT,
    generated,
)

CHART = os.path.join(REPO, "helm", "omero-web")
WEB, NGINX, COMPOSE = CONTRACT["web"], CONTRACT["nginx"], CONTRACT["compose"]


def read(*path):
    with open(os.path.join(REPO, *path)) as handle:
        return handle.read()


def named(variables, **fields):
    """Names of the (non-pattern) variables whose fields have these values."""
    return {
        v.name for v in variables.values() if "<" not in v.name and all(getattr(v, k) == f for k, f in fields.items())
    }


def fail_with(problems):
    assert not problems, "\n" + "\n".join(problems)


# --- The environment contract ---------------------------------------------------------------------


def test_entrypoint_handles_exactly_the_declared_web_variables():
    declared = named(WEB)
    handled = set(entrypoint.HANDLED_VARIABLES)
    fail_with(
        [f"entrypoint.py handles {n}, which omeroweb/environment.toml does not declare" for n in handled - declared]
        + [f"omeroweb/environment.toml declares {n}, which entrypoint.py never reads" for n in declared - handled]
    )
    assert WEB["OMERODIR"].default == entrypoint.DEFAULT_OMERODIR
    assert WEB["OMERO_WEB_DEFAULTS_DIR"].default == entrypoint.DEFAULTS_DIR
    assert WEB["OMERO_WEB_CONFIG_DIR"].default == entrypoint.USER_CONFIG_DIR


def test_docs_tables_are_generated_from_the_contract():
    docs = read("docs", "configuration.md")
    for container in ("web", "nginx"):
        assert generated(container) in docs, (
            f"docs/configuration.md: the {container} variables table is not the one omeroweb/environment.toml "
            "gives: run `make docs`"
        )
    assert START.format("compose") not in docs and END.format("compose") not in docs


def env_example():
    """``{NAME: value}`` of the commented ``#NAME=value`` lines of .env.example."""
    return dict(re.findall(r"^#([A-Z][A-Z0-9_]*)=(.*)$", read(".env.example"), re.M))


def test_env_example_shows_every_variable_compose_reads():
    example = env_example()
    expected = named(WEB, compose="pass") | named(NGINX, compose="pass") | set(COMPOSE)
    problems = [
        f".env.example has no '#{n}=' line (omeroweb/environment.toml declares it)" for n in expected - set(example)
    ]
    problems += [f".env.example shows {n}, which no container or compose.yaml reads" for n in set(example) - expected]
    for name in sorted(expected & set(example)):  # compose's and nginx's lines show the default
        declared = COMPOSE.get(name) or (NGINX.get(name) if name not in WEB else None)
        if declared and example[name] != declared.default:
            problems.append(f".env.example: #{name}={example[name]}, but its default is '{declared.default}'")
    fail_with(problems)


def test_compose_passes_exactly_the_declared_variables():
    compose = yaml.safe_load(read("compose.yaml"))["services"]
    problems = []
    for service, variables in (("web", WEB), ("nginx", NGINX)):
        passed = compose[service]["environment"]
        expected = named(variables, compose="pass") | named(variables, compose="set")
        problems += [f"compose.yaml: {service} gets {n}, undeclared for {service}" for n in set(passed) - expected]
        problems += [f"compose.yaml: {service} does not get {n}" for n in expected - set(passed)]
        for name in sorted(named(variables, compose="pass") & set(passed)):
            # empty: the container's own default (OMEROPORT must stay empty without OMEROHOST)
            wanted = {f"${{{name}:-{variables[name].default}}}", f"${{{name}:-}}"}
            if passed[name] not in wanted:
                problems.append(f"compose.yaml: {service} {name}: {passed[name]}, expected one of {sorted(wanted)}")
    # The ports file of HTTPS off is part of the default stack: its defaults are the declared ones.
    text = read("compose.yaml") + read("compose", "nginx-ports-off.yaml")
    for name, variable in COMPOSE.items():
        uses = re.findall(rf"\$\{{{name}(?::-([^}}]*))?\}}", text)
        if not uses:
            problems.append(f"compose.yaml never reads {name} (omeroweb/environment.toml declares it for compose)")
        problems += [
            f"compose.yaml: ${{{name}:-{default}}}, but its default is '{variable.default}'"
            for default in uses
            if default != variable.default
        ]
    interpolated = set(re.findall(r"\$\{([A-Z][A-Z0-9_]*)", text))
    passed_through = named(WEB, compose="pass") | named(NGINX, compose="pass")
    problems += [f"compose.yaml reads {n}, undeclared" for n in interpolated - set(COMPOSE) - passed_through]
    assert compose["web"]["environment"]["REDIS_URL"] == f"redis://redis:{REDIS_PORT}/0", "compose.yaml: REDIS_URL"
    assert compose["nginx"]["environment"]["OMERO_WEB_UPSTREAM"] == f"web:{WEB_PORT}", "compose.yaml: upstream"
    fail_with(problems)


def test_compose_publishes_the_ports_of_each_https_mode():
    """compose.yaml takes nginx's ports from compose/nginx-ports-<NGINX_HTTPS>.yaml: one file for
    every mode nginx/start.sh accepts (a mode without one would stop `docker compose up`)."""
    nginx = yaml.safe_load(read("compose.yaml"))["services"]["nginx"]
    assert nginx["extends"] == {"file": "compose/nginx-ports-${NGINX_HTTPS:-off}.yaml", "service": "nginx-ports"}
    assert "ports" not in nginx
    modes = re.search(r"^check NGINX_HTTPS '([^']+)'", read("nginx", "start.sh"), re.M).group(1).split("|")
    files = sorted(f"nginx-ports-{mode}.yaml" for mode in modes + ["https"])
    assert sorted(os.listdir(os.path.join(REPO, "compose"))) == files

    def ports(mode):
        return yaml.safe_load(read("compose", f"nginx-ports-{mode}.yaml"))["services"]["nginx-ports"]["ports"]

    assert ports("off") == [
        "${OMERO_WEB_BIND:-127.0.0.1}:${OMERO_WEB_PORT:-8080}:" + str(NGINX_PORT),
        "${OMERO_WEB_BIND:-127.0.0.1}:${OMERO_WEB_HTTPS_PORT:-}:" + str(NGINX_HTTPS_PORT),
    ]
    for mode in set(modes) - {"off"}:  # nginx is the edge: 80 and 443 on every interface
        assert ports(mode) == [
            "${OMERO_WEB_BIND:-0.0.0.0}:${OMERO_WEB_PORT:-80}:" + str(NGINX_PORT),
            "${OMERO_WEB_BIND:-0.0.0.0}:${OMERO_WEB_HTTPS_PORT:-443}:" + str(NGINX_HTTPS_PORT),
        ], mode


def test_nginx_start_script_checks_exactly_the_declared_variables():
    script = read("nginx", "start.sh")
    checked = set(re.findall(r"^check (\w+) ", script, re.M))
    defaults = dict(re.findall(r'^: "\$\{(\w+):=([^}]*)\}"$', script, re.M))
    problems = [
        f"nginx/start.sh checks {n}, undeclared in omeroweb/environment.toml [nginx]" for n in checked - set(NGINX)
    ]
    problems += [f"nginx/start.sh does not check {n} (declared for nginx)" for n in set(NGINX) - checked]
    for name, variable in NGINX.items():
        if defaults.get(name) != variable.default:
            problems.append(
                f"nginx/start.sh: default of {name} is {defaults.get(name)!r}, declared {variable.default!r}"
            )
    fail_with(problems)
    assert NGINX["OMERO_WEB_UPSTREAM"].default == f"web:{WEB_PORT}"
    assert NGINX["NGINX_LISTEN_PORT"].default == str(NGINX_PORT)


def deployment_env(container):
    """Variable names the chart's Deployment gives one container (its env: block, as written)."""
    text = read("helm", "omero-web", "templates", "deployment.yaml")
    web_part, nginx_part = text.split("\n        - name: nginx\n", 1)
    part = web_part if container == "web" else nginx_part
    block = part.split("          env:\n", 1)[1].split(
        "          startupProbe:" if container == "web" else "\n          readinessProbe:", 1
    )[0]
    return set(re.findall(r"- name: ([A-Z][A-Z0-9_]*)\b", block))


def values_doc():
    """tests/chart/values_doc.py, which generates the chart README's table from values.yaml."""
    sys.path.insert(0, os.path.join(REPO, "tests", "chart"))
    return importlib.import_module("values_doc")


def values_comments():
    """``{dotted.key: its # -- comment}`` of values.yaml."""
    return {key: text for key, _, text in values_doc().rows(read("helm", "omero-web", "values.yaml"))}


@pytest.mark.parametrize("container", ["web", "nginx"])
def test_chart_wires_exactly_the_declared_variables(container):
    variables = CONTRACT[container]
    rendered = {
        n.removesuffix(entrypoint.FILE_SUFFIX) for n in deployment_env(container) if not n.startswith("CONFIG_")
    }
    expected = {v.name for v in variables.values() if v.chart and "<" not in v.name}
    problems = [f"helm/omero-web/templates/deployment.yaml gives {container} {n}, which omeroweb/environment.toml "
                f"does not declare with a chart value" for n in rendered - expected]  # fmt: skip
    problems += [f"helm/omero-web/templates/deployment.yaml does not give {container} {n}" for n in expected - rendered]
    comments = values_comments()
    for variable in variables.values():
        for key in () if variable.chart == "set" else variable.chart:
            if key not in comments:
                problems.append(f"helm/omero-web/values.yaml has no documented value {key} ({variable.name})")
            elif "<" not in variable.name and variable.name not in comments[key]:
                problems.append(f"helm/omero-web/values.yaml: the comment of {key} does not name {variable.name}")
    fail_with(problems)


def test_standalone_image_sets_only_declared_variables():
    dockerfile = read("docker", "standalone.Dockerfile")
    env = dict(re.findall(r"(?:ENV|\\)\s+(\w+)=(\S+)", dockerfile))
    assert set(env) == {"OMERO_WEB_UPSTREAM", "OMERO_WEB_DEFAULT_PLUGINS"}, env
    assert env["OMERO_WEB_UPSTREAM"] == f"127.0.0.1:{WEB_PORT}"


def test_a_misspelled_variable_is_pointed_out():
    environ = {"OMERO_WEB_PLUGIN": "figure", "OMEROHOTS": "x", "OMERO_WEB_PORT": "8080", "REDIS_URL_FILE": "/f"}
    warnings = entrypoint.unknown_variables(environ, CONTRACT)
    assert warnings == [
        "OMEROHOTS is not a variable of these images, so it changes nothing. Did you mean OMEROHOST?",
        "OMERO_WEB_PLUGIN is not a variable of these images, so it changes nothing. Did you mean OMERO_WEB_PLUGINS?",
    ]


# --- Ports and versions ---------------------------------------------------------------------------


def test_ports_agree_with_versions_env(schema):
    problems = []

    def expect(place, found, wanted, key):
        if str(found) != str(wanted):
            problems.append(f"{place} is {found!r}, but versions.env has {key}={wanted}")

    expect("omero-web's default omero.web.application_server.port", schema.settings[entrypoint.KEY_APP_PORT].default,
           WEB_PORT, "WEB_PORT")  # fmt: skip
    expect("omeroweb/environment.toml: the default of OMEROPORT", WEB["OMEROPORT"].default, OMERO_SERVER_PORT,
           "OMERO_SERVER_PORT")  # fmt: skip
    nginx_ports = f"{NGINX_PORT} {NGINX_HTTPS_PORT}"
    for name, port, key in (("web", WEB_PORT, "WEB_PORT"), ("nginx", nginx_ports, "NGINX_PORT, NGINX_HTTPS_PORT"),
                            ("standalone", nginx_ports, "NGINX_PORT, NGINX_HTTPS_PORT")):  # fmt: skip
        exposed = re.findall(r"^EXPOSE (.+)$", read("docker", f"{name}.Dockerfile"), re.M)
        expect(f"docker/{name}.Dockerfile: EXPOSE", " ".join(exposed), port, key)
    expect("omeroweb/environment.toml: the default of NGINX_HTTPS_LISTEN_PORT",
           NGINX["NGINX_HTTPS_LISTEN_PORT"].default, NGINX_HTTPS_PORT, "NGINX_HTTPS_PORT")  # fmt: skip
    helpers = read("helm", "omero-web", "templates", "_helpers.tpl")
    for helper, port, key in (("webPort", WEB_PORT, "WEB_PORT"), ("nginxPort", NGINX_PORT, "NGINX_PORT"),
                              ("redisPort", REDIS_PORT, "REDIS_PORT")):  # fmt: skip
        found = re.search(rf'define "omero-web\.{helper}" -}}}}(\w*)\{{\{{', helpers)
        expect(f"helm/omero-web/templates/_helpers.tpl: omero-web.{helper}", found and found.group(1), port, key)
    policy = yaml.safe_load(read("helm", "omero-web", "values.yaml"))["networkPolicy"]
    if OMERO_SERVER_PORT not in policy["omeroServerPorts"]:
        problems.append(f"helm/omero-web/values.yaml: networkPolicy.omeroServerPorts lacks {OMERO_SERVER_PORT}")
    expect("helm/omero-web/values.yaml: networkPolicy.externalRedisPort", policy["externalRedisPort"], REDIS_PORT,
           "REDIS_PORT")  # fmt: skip
    fail_with(problems)


def test_chart_templates_write_no_port_of_their_own():
    """The templates use the port helpers: no literal 4080, 8080 or 6379 outside _helpers.tpl."""
    templates = os.path.join(CHART, "templates")
    problems = []
    for name in sorted(os.listdir(templates)):
        path = os.path.join(templates, name)
        if name == "_helpers.tpl" or not os.path.isfile(path) or name == "NOTES.txt":
            continue
        for port in (WEB_PORT, NGINX_PORT, REDIS_PORT):
            if re.search(rf"\b{port}\b", read(path)):
                problems.append(f"helm/omero-web/templates/{name} writes {port}: use the helper in _helpers.tpl")
    fail_with(problems)


def test_images_and_base_agree_with_versions_env():
    problems = []

    def expect(place, found, key):
        if found != VERSIONS[key]:
            problems.append(f"{place} is {found!r}, but versions.env has {key}={VERSIONS[key]}")

    for name in ("web.Dockerfile", "nginx.Dockerfile", "redis.Dockerfile"):
        found = re.search(r"^ARG BASE_IMAGE=(\S*)$", read("docker", name), re.M)
        expect(f"docker/{name}: ARG BASE_IMAGE", found and found.group(1), "BASE_IMAGE")
    compose, example = read("compose.yaml"), env_example()
    for key in ("BASE_IMAGE", "REDIS_IMAGE"):
        expect(f"omeroweb/environment.toml: the default of {key}", COMPOSE[key].default, key)
        for default in re.findall(rf"\$\{{{key}:-([^}}]*)\}}", compose):
            expect(f"compose.yaml: the default of ${{{key}}}", default, key)
        expect(f".env.example: #{key}", example.get(key), key)
    redis = yaml.safe_load(read("helm", "omero-web", "values.yaml"))["redis"]["image"]
    expect("helm/omero-web/values.yaml: redis.image", f"{redis['repository']}:{redis['tag']}", "REDIS_IMAGE")
    if not VERSIONS["BASE_IMAGE"].startswith(f"debian:{VERSIONS['DEBIAN_SUITE']}-"):
        problems.append("versions.env: BASE_IMAGE is not the Debian suite DEBIAN_SUITE")
    if VERSIONS["LOCAL_BASE_IMAGE"].split(":")[1] != VERSIONS["BASE_IMAGE"].split(":")[1]:
        problems.append("versions.env: LOCAL_BASE_IMAGE's tag is not BASE_IMAGE's")
    fail_with(problems)


def test_chart_versions_agree_with_versions_env():
    chart = yaml.safe_load(read("helm", "omero-web", "Chart.yaml"))
    lock = read("omeroweb", "requirements.lock")
    assert f"omero-web=={chart['appVersion']} " in lock, "helm/omero-web/Chart.yaml: appVersion"
    minors = VERSIONS["KUBERNETES_SCHEMA_MINORS"].split(",")
    oldest, newest = (KUBERNETES_CLUSTERS[which].rsplit(".", 1)[0] for which in ("oldest", "newest"))
    assert chart["kubeVersion"] == f">={oldest}.0-0", (
        "helm/omero-web/Chart.yaml: kubeVersion must be '>=' the oldest test cluster's minor (versions.env), "
        "with no upper bound"
    )
    number = lambda minor: int(minor.split(".")[1])  # noqa: E731
    assert minors == [f"1.{n}" for n in range(number(oldest), number(minors[-1]) + 1)], (
        "versions.env: KUBERNETES_SCHEMA_MINORS must be every minor from the oldest test cluster's"
    )
    assert number(newest) <= number(minors[-1]), "versions.env: the newest test cluster's minor has no schemas"
    import kubernetes_validate

    shipped = os.listdir(os.path.join(os.path.dirname(kubernetes_validate.__file__), "kubernetes-json-schema"))
    shipped = {m.group(1) for m in map(re.compile(r"v(1\.\d+)\.\d+-local-strict$").match, shipped) if m}
    assert set(minors) <= shipped and max(shipped, key=number) == minors[-1], (
        "versions.env: KUBERNETES_SCHEMA_MINORS must end at the newest minor kubernetes-validate ships "
        f"({', '.join(sorted(shipped, key=number))})"
    )


def test_release_commands_in_the_docs_name_the_current_versions():
    """The install commands users copy (README, chart README, docs/architectures.md) name this
    chart version and this OMERO.web version's image tags."""
    chart = yaml.safe_load(read("helm", "omero-web", "Chart.yaml"))
    problems, named = [], 0
    for path in (("README.md",), ("helm", "omero-web", "README.md"), ("docs", "architectures.md")):
        text = read(*path)
        for found in re.findall(r"oci://\S+/charts/omero-web\s+--version\s+(\S+)", text):
            named += 1
            if found != chart["version"]:
                problems.append(f"{'/'.join(path)}: oci:// --version {found}, Chart.yaml has {chart['version']}")
        for found in re.findall(r"(?:omero-web(?:-nginx|-standalone)?:|IMAGE_TAG=)(\d+\.\d+\.\d+)-", text):
            if found != chart["appVersion"]:
                problems.append(f"{'/'.join(path)}: release tag {found}-..., OMERO.web is {chart['appVersion']}")
    assert named, "README.md: no `helm install oci://... --version` command any more"
    fail_with(problems)


# Where a pinned version may be written besides versions.env: the places the tests above check,
# and prose (Markdown) that describes them.
PIN_KEYS = ["BASE_IMAGE", "LOCAL_BASE_IMAGE", "REDIS_IMAGE", "LOCAL_REDIS_IMAGE", "COMPOSE_VERSION", "HELM3_VERSION",
            "HELM4_VERSION", "KUBECONFORM_VERSION", "KUBE_SCORE_VERSION", "KUBERNETES_OLDEST_VERSION",
            "KUBERNETES_OLDEST_GO", "KUBERNETES_NEWEST_VERSION", "ETCD_VERSION", "COREDNS_VERSION",
            "CRICTL_VERSION"]  # fmt: skip
CHECKED_PLACES = {
    "versions.env", "compose.yaml", ".env.example", "omeroweb/environment.toml", "docker/web.Dockerfile",
    "docker/nginx.Dockerfile", "docker/redis.Dockerfile",
}  # fmt: skip


def test_each_pinned_version_is_defined_once():
    files = subprocess.run(["git", "ls-files"], cwd=REPO, capture_output=True, text=True, check=True).stdout.split()
    problems = []
    for path in files:
        if path in CHECKED_PLACES or path.endswith(".md") or path.startswith("tests/unit/") or path.endswith(".lock"):
            continue
        full = os.path.join(REPO, path)
        if not os.path.isfile(full):
            continue  # deleted in the work tree
        try:
            text = open(full).read()
        except UnicodeDecodeError:
            continue
        for key in PIN_KEYS:
            if VERSIONS[key] in text:
                problems.append(f"{path} writes {VERSIONS[key]} ({key}): read it from versions.env")
    fail_with(problems)


# --- The chart's values, schema and README --------------------------------------------------------


def tree(mapping, prefix=""):
    """``(dotted path, is_leaf)`` of every key of a values mapping (lists and empty maps are leaves)."""
    for key, value in mapping.items():
        path = f"{prefix}{key}"
        nested = isinstance(value, dict) and value
        yield path, not nested
        if nested:
            yield from tree(value, path + ".")


# Keys the schema accepts that values.yaml leaves out: Helm's `global` (the chart as a subchart), and
# fields of Kubernetes' ResourceRequirements with no default (resources.* are passed as they are).
SCHEMA_ONLY = {"global", "resources.web.claims", "resources.nginx.claims", "redis.resources.claims"}


def schema_node(schema, path):
    """The schema of a dotted path, or None; a free-form map (no ``properties``) covers its keys."""
    node = schema
    for part in path.split("."):
        properties = node.get("properties")
        if properties is None:
            return node if node.get("type") == "object" and node.get("additionalProperties") is not False else None
        if part not in properties:
            return None
        node = properties[part]
    return node


def schema_paths(schema, prefix=""):
    for key, node in schema.get("properties", {}).items():
        yield f"{prefix}{key}"
        yield from schema_paths(node, f"{prefix}{key}.")


def test_chart_readme_table_is_generated_from_the_values():
    generator = values_doc()
    expected = generator.table(read("helm", "omero-web", "values.yaml"))
    assert f"{generator.START}\n{expected}\n{generator.END}" in read("helm", "omero-web", "README.md"), (
        "helm/omero-web/README.md: the values table is not the one values.yaml gives: run `make docs`"
    )


def test_values_schema_and_readme_cover_the_same_key_tree():
    values = yaml.safe_load(read("helm", "omero-web", "values.yaml"))
    schema = json.loads(read("helm", "omero-web", "values.schema.json"))
    paths, comments = dict(tree(values)), values_comments()
    value_paths = set(paths)
    problems = [f"helm/omero-web/values.schema.json has no {p} (values.yaml has it)"
                for p in sorted(value_paths) if schema_node(schema, p) is None]  # fmt: skip
    problems += [f"helm/omero-web/values.yaml has no {p} (values.schema.json has it)"
                 for p in sorted(set(schema_paths(schema)) - value_paths - SCHEMA_ONLY)]  # fmt: skip
    for path in sorted(p for p, leaf in paths.items() if leaf):  # documented itself, or inside a documented value
        parts = path.split(".")
        if not any(".".join(parts[:n]) in comments for n in range(1, len(parts) + 1)):
            problems.append(f"helm/omero-web/values.yaml: {path} has no '# --' comment (the README's table)")
    problems += [f"helm/omero-web/values.yaml documents {p}, which is not a value" for p in set(comments) - value_paths]

    def closed(node, path):  # every object with properties refuses unknown keys (a typo is an error)
        if "properties" in node and node.get("additionalProperties") is not False:
            problems.append(f"helm/omero-web/values.schema.json: {path or 'the root'} accepts unknown keys")
        for key, child in node.get("properties", {}).items():
            closed(child, f"{path}.{key}".lstrip("."))

    closed(schema, "")
    fail_with(problems)
