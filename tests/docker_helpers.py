"""Small helpers to run containers for the tests; everything is reached through 127.0.0.1."""

import functools
import json
import os
import platform
import re
import subprocess
import tempfile
import time

import requests
import testinfra

from contract import NGINX_PORT, WEB_PORT

WEB_IMAGE = os.environ.get("WEB_IMAGE", "omero-web:latest")
NGINX_IMAGE = os.environ.get("NGINX_IMAGE", "omero-web-nginx:latest")
STANDALONE_IMAGE = os.environ.get("STANDALONE_IMAGE", "omero-web-standalone:latest")
MACHINE_ARCHS = {"x86_64": "amd64", "aarch64": "arm64"}  # `uname -m` -> Debian and Docker architecture names
HOST_ARCH = MACHINE_ARCHS.get(platform.machine(), platform.machine())
# How much longer everything takes when the images are another architecture's, run under emulation
# (qemu-user-static; `make test-arch ARCH=arm64`), measured on this project's 2-core amd64 machine
# with the arm64 images: docs/architectures.md.
EMULATION_SLOWDOWN = 25


@functools.cache
def image_arch():
    """WEB_IMAGE's architecture (the machine's when it is not built yet)."""
    command = ["docker", "image", "inspect", "-f", "{{.Architecture}}", WEB_IMAGE]
    return subprocess.run(command, capture_output=True, text=True).stdout.strip() or HOST_ARCH


def slowdown():
    """1 for the machine's own architecture; EMULATION_SLOWDOWN when WEB_IMAGE is another's."""
    return 1 if image_arch() == HOST_ARCH else EMULATION_SLOWDOWN


def scaled(seconds):
    """A deadline of `seconds` on the machine's own architecture, scaled for emulation."""
    return seconds * slowdown()


class CommandFailed(subprocess.CalledProcessError):
    """A tool command (docker, compose) that failed, shown with what the tool said: pytest prints
    str(error), which for a plain CalledProcessError is only the exit status."""

    def __str__(self):
        said = "\n".join(out.strip()[-4000:] for out in (self.stdout, self.stderr) if out and out.strip())
        return f"`{' '.join(map(str, self.cmd))}` exited with {self.returncode}:\n{said or '(it printed nothing)'}"


def run_tool(command, check=True, **kwargs):
    """subprocess.run(command) capturing its output as text; a failure (with `check`) raises
    CommandFailed, which says what the command printed."""
    result = subprocess.run(command, capture_output=True, text=True, **kwargs)
    if check and result.returncode != 0:
        raise CommandFailed(result.returncode, command, result.stdout, result.stderr)
    return result


def docker(*args, check=True, timeout=120):
    if args[:1] == ("run",) and slowdown() > 1 and {WEB_IMAGE, NGINX_IMAGE, STANDALONE_IMAGE} & set(args):
        args = ("run", "--platform", f"linux/{image_arch()}", *args[1:])  # as a user would (no warning on stderr)
    return run_tool(["docker", *args], check=check, timeout=scaled(timeout))


class Container:
    """A detached container with its port published on 127.0.0.1 (random host port)."""

    def __init__(self, image, env=None, port=WEB_PORT, args=(), docker_args=()):
        command = ["run", "-d", "-p", f"127.0.0.1::{port}", *docker_args]
        for name, value in (env or {}).items():
            command += ["-e", f"{name}={value}"]
        self.id = docker(*command, image, *args).stdout.strip()
        self.port = port

    @property
    def url(self):
        mapping = docker("port", self.id, str(self.port)).stdout.split()[0]
        return "http://" + mapping

    @property
    def host(self):
        return testinfra.get_host("docker://" + self.id)

    def state(self):
        return json.loads(docker("inspect", self.id).stdout)[0]["State"]

    def logs(self):
        result = docker("logs", self.id, check=False)
        return result.stdout + result.stderr

    def exec(self, *command, stdin=None):
        return subprocess.run(
            ["docker", "exec", "-i", self.id, *command],
            input=stdin,
            capture_output=True,
            text=True,
            timeout=scaled(120),
        )

    def wait_log(self, text, timeout=60):
        """Wait until the container's log says `text` (a test upstream's "listening" line)."""
        deadline = time.monotonic() + scaled(timeout)
        while text not in (logs := self.logs()):
            assert time.monotonic() < deadline, f"{text!r} not logged within {timeout}s:\n{logs[-3000:]}"
            assert self.state()["Running"], f"container exited:\n{logs[-3000:]}"
            time.sleep(0.5)

    def wait_file(self, path, timeout=60):
        """The contents of `path` in the container once it exists and is not empty (e.g. a certificate it makes)."""
        deadline = time.monotonic() + scaled(timeout)
        while self.exec("test", "-s", path).returncode != 0:
            assert time.monotonic() < deadline, f"{path} was not made within {timeout}s:\n{self.logs()}"
            assert self.state()["Running"], f"container exited:\n{self.logs()}"
            time.sleep(0.5)
        return self.exec("cat", path).stdout

    def wait_http(self, path="/webgateway/", timeout=60, status=200, base=None, verify=True):
        """Poll until `path` answers `status`; return the response. `base`: another address of the
        container (e.g. its HTTPS one), `verify`: the CA file for it."""
        timeout = scaled(timeout)
        deadline = time.monotonic() + timeout
        last = None
        while time.monotonic() < deadline:
            if not self.state()["Running"]:
                raise AssertionError(f"container exited:\n{self.logs()}")
            try:
                last = requests.get((base or self.url) + path, timeout=scaled(5), verify=verify)
                if last.status_code == status:
                    return last
            except requests.RequestException as error:
                last = error
            time.sleep(0.2)
        raise AssertionError(f"{path} did not answer {status} within {timeout}s (last: {last}):\n{self.logs()}")

    def remove(self):
        docker("rm", "-f", "-v", self.id, check=False)


REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
STANDIN_IMAGE = os.environ.get("STANDIN_IMAGE", "omero-web-standin:latest")
USERS = {"root": "omero", "user-1": "ome", "public": "public-ome"}  # the stand-in's users (tests/standin/standin.py)


# Runs inside a web container (compose or Kubernetes): GET a page from that container's own
# gunicorn with a session cookie; prints the status and the body.
GET_ON_THIS_WEB = f"""
import sys, urllib.request
cookie = {{"Cookie": "sessionid=" + sys.argv[2]}}
request = urllib.request.Request("http://127.0.0.1:{WEB_PORT}" + sys.argv[1], headers=cookie)
with urllib.request.urlopen(request, timeout=30) as answer:
    print(answer.status, answer.read().decode())
"""


def assert_no_unknown_calls(standin_logs):
    """No calls the stand-in does not implement (logged "UNKNOWN CALL"): OMERO.web asked nothing new."""
    unknown = [line for line in standin_logs.splitlines() if "UNKNOWN CALL" in line]
    assert not unknown, f"OMERO.web made calls the stand-in does not know: {unknown}"


def wait_healthy(container_id, timeout=90):
    """Wait for Docker's health check of the container to say healthy."""
    timeout = scaled(timeout)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        state = json.loads(docker("inspect", container_id).stdout)[0]["State"]
        if state.get("Health", {}).get("Status") == "healthy":
            return
        time.sleep(0.5)
    logs = docker("logs", container_id, check=False)
    raise AssertionError(f"{container_id[:12]} not healthy within {timeout}s:\n{(logs.stdout + logs.stderr)[-3000:]}")


class Standin:
    """The OMERO.server stand-in alone on a fresh Docker network, reachable there as `omero`, for
    single containers (`docker_args` puts one on that network)."""

    def __init__(self):
        self.network = f"owtest-standin-{os.getpid()}-{time.monotonic_ns()}"
        docker("network", "create", self.network)
        self.container = Container(
            STANDIN_IMAGE, port=4063, docker_args=("--network", self.network, "--network-alias", "omero")
        )
        self.docker_args = ("--network", self.network)
        wait_healthy(self.container.id, timeout=60)

    def remove(self):
        logs = self.container.logs()
        self.container.remove()
        docker("network", "rm", self.network, check=False)
        assert_no_unknown_calls(logs)


class Stack:
    """The repository's compose.yaml as a uniquely named project, nginx on a random 127.0.0.1 port."""

    def __init__(self, name, env=None, scale_web=1, standin=False, overlays=(), web_env=None):
        """`env`: compose variables (OMERO_WEB_PREFIX ...) and CONFIG_* lines for the web service.
        `web_env`: more lines of web's env_file (OMERO_WEB_ENV_FILE), e.g. a *_FILE variable.
        `standin`: add compose.test.yaml, the OMERO.server stand-in as `omero`, which web uses.
        `overlays`: more compose files (paths in the repository), after those."""
        self.project = f"owtest-{name}-{os.getpid()}"
        env = env or {}
        self.env_file = tempfile.NamedTemporaryFile("w", prefix=f"{self.project}-", suffix=".env", delete=False)
        with self.env_file as handle:
            handle.writelines(f"{k}={v}\n" for k, v in env.items() if k.startswith("CONFIG_"))
            handle.writelines(f"{k}={v}\n" for k, v in (web_env or {}).items())
        self.env = {
            **os.environ,
            "OMERO_WEB_BIND": "127.0.0.1",
            "OMERO_WEB_PORT": "0",
            "OMERO_WEB_ENV_FILE": self.env_file.name,
            **{k: v for k, v in env.items() if not k.startswith("CONFIG_")},
        }
        self.scale_web = scale_web
        self.standin = standin
        self.overlays = list(overlays)

    def compose(self, *args, check=True, timeout=300):
        names = ["compose.yaml", "compose.test.yaml"] if self.standin else ["compose.yaml"]
        names += self.overlays
        if slowdown() > 1:
            names.append("tests/stack/emulated.yaml")
        files = [arg for name in names for arg in ("-f", os.path.join(REPO, name))]
        command = ["docker", "compose", "-p", self.project, *files, *args]
        return run_tool(command, check=check, timeout=scaled(timeout), env=self.env, cwd=REPO)

    def up(self):
        result = self.compose(
            "up", "-d", "--no-build", "--wait", "--scale", f"web={self.scale_web}", check=False, timeout=600
        )
        if result.returncode != 0:
            logs = self.compose("logs", "--no-color", check=False).stdout
            self.down()
            raise AssertionError(f"compose up failed:\n{result.stderr}\n{logs}")
        return self

    def down(self):
        standin_logs = self.logs("omero") if self.standin else ""
        self.compose("down", "-v", "--remove-orphans", check=False)
        os.unlink(self.env_file.name)
        assert_no_unknown_calls(standin_logs)

    @property
    def url(self):
        return "http://" + self.compose("port", "nginx", str(NGINX_PORT)).stdout.strip()

    def ids(self, service):
        return self.compose("ps", "-q", service).stdout.split()

    def logs(self, service):
        return self.compose("logs", "--no-color", service, check=False).stdout

    def exec(self, container_id, *command, stdin=None, timeout=120):
        return subprocess.run(
            ["docker", "exec", "-i", container_id, *command],
            input=stdin,
            capture_output=True,
            text=True,
            timeout=scaled(timeout),
        )

    def take_web_away(self, how):
        """`stop` (graceful), `kill` (SIGKILL; Docker restarts it) or `recreate` (new container, new address)."""
        if how == "stop":
            self.compose("stop", "web")
        elif how == "kill":
            docker("kill", "--signal", "KILL", self.ids("web")[0])
        else:
            self.compose("up", "-d", "--no-deps", "--force-recreate", "web")

    def web_addresses(self):
        addresses = set()
        for container in self.ids("web"):
            networks = json.loads(docker("inspect", container).stdout)[0]["NetworkSettings"]["Networks"]
            addresses.update(n["IPAddress"] for n in networks.values())
        return addresses

    def wait_nginx_follows_web(self, timeout=30):
        """Wait until nginx's upstream list names exactly web's current addresses and the reload it
        triggers is over (a case must not start while nginx still points at a vanished address)."""
        timeout = scaled(timeout)
        nginx, deadline = self.ids("nginx")[0], time.monotonic() + timeout
        while time.monotonic() < deadline:
            listed = self.exec(nginx, "cat", "/tmp/nginx/upstream.conf").stdout
            if set(re.findall(rf"server ([0-9.]+):{WEB_PORT}", listed)) == self.web_addresses():
                time.sleep(0.5)  # the watcher signals nginx right after writing the file
                titles = self.exec(nginx, "sh", "-c", "cat /proc/[0-9]*/cmdline | tr '\\0' ' '").stdout
                if "shutting down" not in titles:  # old workers (old addresses) are gone
                    return
            time.sleep(0.2)
        raise AssertionError(f"nginx upstream {listed!r} does not list web {self.web_addresses()} after {timeout}s")

    def wait_status(self, path, status, timeout=60, **kwargs):
        """Poll `path` through nginx until it answers `status`; return the response."""
        timeout = scaled(timeout)
        deadline, last = time.monotonic() + timeout, None
        while time.monotonic() < deadline:
            try:
                last = requests.get(self.url + path, timeout=scaled(5), allow_redirects=False, **kwargs)
                if last.status_code == status:
                    return last
            except requests.RequestException as error:
                last = error
            time.sleep(0.1)
        logs = self.compose("logs", "--no-color", "--tail", "30", check=False).stdout
        raise AssertionError(f"{path} did not answer {status} within {timeout}s (last: {last})\n{logs}")


PUBLIC_PREFIX = "/omero"


def public_site(name, directory):
    """A public data site (OMERO_WEB_PUBLIC_USER=public) of the compose stack and the stand-in,
    under PUBLIC_PREFIX with OMERO.iviewer and nginx's cache of the public images (NGINX_CACHE);
    the public user's password in a file written to `directory`, mounted as a compose secret
    (tests/stack/public.yaml). Not started."""
    password = os.path.join(directory, "omero_public_password")
    with open(password, "w") as handle:
        handle.write(USERS["public"] + "\n")
    os.chmod(password, 0o644)  # a compose file secret is a bind mount: web (uid 999) reads it as it is
    env = {"OMERO_WEB_PUBLIC_USER": "public", "OMERO_WEB_PREFIX": PUBLIC_PREFIX, "OMERO_WEB_PLUGINS": "iviewer",
           "NGINX_CACHE": "on", "OMERO_TEST_PUBLIC_PASSWORD_FILE": password}  # fmt: skip
    web_env = {"OMERO_WEB_PUBLIC_PASSWORD_FILE": "/run/secrets/omero_public_password"}
    return Stack(name, standin=True, env=env, web_env=web_env, overlays=["tests/stack/public.yaml"])


class WebUser:
    """One person's browser on OMERO.web: its own cookies, every request with a deadline and no
    automatic redirect. Behind a TLS proxy the cookies are Secure; they are still sent back here,
    as the proxy's client would (this side of the proxy is plain http)."""

    def __init__(self, base_url, prefix="", headers=None, public_url=None, verify=True):
        """`verify`: the CA bundle (or certificate) an https `base_url` is checked against."""
        self.url = base_url + prefix
        self.public = (public_url or base_url) + prefix  # what a browser's Referer names
        self.http = requests.Session()
        self.http.verify = verify
        # requests lets REQUESTS_CA_BUNDLE (set on many machines) override a Session's own CA.
        self.http.trust_env = verify is True
        self.http.headers.update(headers or {})
        self.set_cookies = []

    def get(self, path, timeout=30):
        return self._kept(self.http.get(self.url + path, timeout=scaled(timeout), allow_redirects=False))

    def post_form(self, path, data, timeout=60, form=None):
        """POST `data` to `path` with the CSRF token of the form at `form` (default: `path`), as a
        browser submits it."""
        form = self.get(form or path)
        assert form.status_code == 200, f"GET {form.url}: {form.status_code} {form.text[:300]}"
        token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', form.text).group(1)
        return self._kept(
            self.http.post(
                self.url + path,
                data={"csrfmiddlewaretoken": token, **data},
                headers={"Referer": self.public + path},
                timeout=scaled(timeout),
                allow_redirects=False,
            )
        )

    def login(self, username="root", password=None):
        password = USERS[username] if password is None else password
        return self.post_form("/webclient/login/", {"server": "1", "username": username, "password": password})

    def logout(self):
        return self.post_form("/webclient/logout/", {})

    @property
    def session_id(self):
        return self.http.cookies.get("sessionid")

    def _kept(self, response):
        self.set_cookies += response.raw.headers.getlist("Set-Cookie")
        for cookie in self.http.cookies:
            cookie.secure = False
        return response


# The stand-in's data set (tests/standin/data.py) in each user's own tree: (user, group) -> the
# names of their projects and of their datasets outside a project. Everyone sees the one project
# of the public-data group in the JSON API.
OWN_TREE = {("user-1", "3"): ([], ["Lab dataset"]), ("user-1", "4"): (["Public project"], [])}
API_PROJECTS = ["Public project"]


def assert_logged_in(user, prefix=""):
    """The logged-in pages answer: the cheapest one, an API page, and the webclient home page with
    its data tree (OWN_TREE), fetched from the URLs the page itself gives its tree."""
    ping = user.get("/webclient/keepalive_ping/")
    assert (ping.status_code, ping.text) == (200, "OK")
    projects = user.get("/api/v0/m/projects/")
    assert projects.status_code == 200, projects.text[:300]
    assert [p["Name"] for p in projects.json()["data"]] == API_PROJECTS
    assert projects.json()["meta"]["totalCount"] == len(API_PROJECTS)
    home = user.get("/webclient/")
    assert home.status_code == 200, home.text[:500]
    assert "$.jstree.reference('#dataTree')" in home.text
    urls = dict(re.findall(r'WEBCLIENT\.URLS\.(\w+) = "([^"]+)"', home.text))
    owner = user.get(urls["api_experimenter"].removeprefix(prefix))
    assert owner.status_code == 200, owner.text[:300]
    user_id = owner.json()["experimenter"]["id"]
    group_id = re.search(r"WEBCLIENT\.active_group_id = (\d+)", home.text).group(1)
    tree = user.get(f"{urls['api_containers'].removeprefix(prefix)}?id={user_id}&page=1&group={group_id}")
    assert tree.status_code == 200, tree.text[:300]
    name = owner.json()["experimenter"]["omeName"]
    names = ([p["name"] for p in tree.json()["projects"]], [d["name"] for d in tree.json()["datasets"]])
    assert names == OWN_TREE.get((name, group_id), ([], [])), (name, group_id, names)
    assert tree.json()["screens"] == tree.json()["plates"] == []
    return owner.json()["experimenter"]


def assert_login_and_logout(base_url, prefix="", **user_args):
    user = WebUser(base_url, prefix, **user_args)
    answer = user.login()
    assert answer.status_code == 302, answer.text[:500]
    assert answer.headers["Location"] == prefix + "/webclient/"
    assert assert_logged_in(user, prefix)["omeName"] == "root"
    session_id = user.session_id
    out = user.logout()
    assert out.status_code == 302 and out.headers["Location"] == prefix + "/webclient/login/"
    assert user.session_id is None
    # The old session cookie, replayed, is worth nothing.
    replay = WebUser(base_url, prefix, **user_args)
    replay.http.cookies.set("sessionid", session_id)
    assert replay.get("/webclient/keepalive_ping/").text == "Connection Failed"
    home = replay.get("/webclient/")
    assert home.status_code == 302 and home.headers["Location"].startswith(prefix + "/webclient/login/")
    return user
