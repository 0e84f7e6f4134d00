"""The project's single sources, as the tests read them: versions.env (every port and pinned
version) and omeroweb/environment.toml (every variable, through the entrypoint's own loader), and
docs/configuration.md's variable tables generated from the latter.

    python tests/contract.py           print the tables
    python tests/contract.py --write   rewrite them in docs/configuration.md   (`make docs`)
tests/unit/test_contract.py fails when the tables there are not these."""

import os
import re
import sys

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)

import entrypoint  # noqa: E402

VERSIONS_FILE = os.path.join(REPO, "versions.env")
CONTRACT_FILE = os.path.join(REPO, "omeroweb", entrypoint.CONTRACT_FILE)
LOCK_FILE = os.path.join(REPO, "omeroweb", "requirements.lock")
DOCS_FILE = os.path.join(REPO, "docs", "configuration.md")


def read_versions(path=VERSIONS_FILE):
    """``{KEY: value}`` of versions.env: ``KEY=value`` lines, ``#`` comments."""
    versions = {}
    with open(path) as handle:
        for number, line in enumerate(handle, 1):
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            key, equals, value = line.partition("=")
            if not equals or not key.isidentifier() or key in versions:
                raise ValueError(f"{path} line {number}: expected one KEY=value per key, got {line!r}")
            versions[key] = value
    return versions


def pinned(package):
    """The version omeroweb/requirements.lock pins for `package` (what the web image installs)."""
    with open(LOCK_FILE) as lock:
        return re.search(rf"^{package}==(\S+)", lock.read(), re.M).group(1)


VERSIONS = read_versions()
CONTRACT = entrypoint.load_contract(CONTRACT_FILE)
WEB_PORT = int(VERSIONS["WEB_PORT"])
NGINX_PORT = int(VERSIONS["NGINX_PORT"])
NGINX_HTTPS_PORT = int(VERSIONS["NGINX_HTTPS_PORT"])
OMERO_SERVER_PORT = int(VERSIONS["OMERO_SERVER_PORT"])
REDIS_PORT = int(VERSIONS["REDIS_PORT"])
# The Kubernetes minors the chart is checked against, as "1.35.0" (helm's and kubeconform's form).
KUBERNETES_SCHEMA_VERSIONS = [f"{minor}.0" for minor in VERSIONS["KUBERNETES_SCHEMA_MINORS"].split(",")]
# The test clusters, "oldest" and "newest", as helm --kube-version takes their versions.
KUBERNETES_CLUSTERS = {
    which: VERSIONS[f"KUBERNETES_{which.upper()}_VERSION"].removeprefix("v") for which in ("oldest", "newest")
}
# What rendering tests pass as --kube-version when one version is enough: the newest cluster's.
KUBERNETES_VERSION = KUBERNETES_CLUSTERS["newest"]

# Markers of the generated tables in docs/configuration.md, one pair per container.
START, END = "<!-- environment:{}:start -->", "<!-- environment:{}:end -->"


def _cell(text):
    return text.replace("|", "&#124;").replace("\n", " ")


def table(container):
    """The Markdown table of one container's variables, in the contract's order; a "sets" column
    (the OMERO properties each one sets) where any of them sets one."""
    variables = CONTRACT[container].values()
    with_sets = any(v.drives for v in variables)
    rows = [["variable", "default", "meaning"] + ["sets"] * with_sets]
    for variable in variables:
        name = f"`{variable.name}`"
        if variable.file:
            name += f" / `{variable.name}{entrypoint.FILE_SUFFIX}`"
        default = f"`{variable.default}`" if variable.default else ""
        meaning = variable.meaning + (" Never printed (secret)." if variable.secret else "")
        sets = ", ".join(f"`{key}`" for key in variable.drives)
        rows.append([name, default, meaning] + [sets] * with_sets)
    lines = ["| " + " | ".join(_cell(cell) for cell in row) + " |" for row in rows]
    lines.insert(1, "|" + "---|" * len(rows[0]))
    return "\n".join(lines)


def generated(container):
    return f"{START.format(container)}\n{table(container)}\n{END.format(container)}"


def write_docs(path=DOCS_FILE):
    text = open(path).read()
    for container in ("web", "nginx"):
        before, rest = text.split(START.format(container))
        after = rest.split(END.format(container))[1]
        text = before + generated(container) + after
    with open(path, "w") as handle:
        handle.write(text)


if __name__ == "__main__":
    if "--write" in sys.argv:
        write_docs()
    else:
        print("\n\n".join(table(container) for container in ("web", "nginx")))
