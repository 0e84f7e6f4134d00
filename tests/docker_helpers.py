"""Small helpers to run containers for the tests; everything is reached through 127.0.0.1."""

import json
import os
import re
import subprocess
import tempfile
import time

import requests
import testinfra

WEB_IMAGE = os.environ.get("WEB_IMAGE", "omero-web:latest")


def docker(*args, check=True, timeout=120):
    return subprocess.run(["docker", *args], capture_output=True, text=True, check=check, timeout=timeout)


class Container:
    """A detached container with its port published on 127.0.0.1 (random host port)."""

    def __init__(self, image, env=None, port=4080, args=(), docker_args=()):
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
            ["docker", "exec", "-i", self.id, *command], input=stdin, capture_output=True, text=True, timeout=120
        )

    def wait_http(self, path="/webgateway/", timeout=60, status=200):
        """Poll until `path` answers `status`; return the response."""
        deadline = time.monotonic() + timeout
        last = None
        while time.monotonic() < deadline:
            if not self.state()["Running"]:
                raise AssertionError(f"container exited:\n{self.logs()}")
            try:
                last = requests.get(self.url + path, timeout=5)
                if last.status_code == status:
                    return last
            except requests.RequestException as error:
                last = error
            time.sleep(0.2)
        raise AssertionError(f"{path} did not answer {status} within {timeout}s (last: {last}):\n{self.logs()}")

    def remove(self):
        docker("rm", "-f", "-v", self.id, check=False)


REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
NGINX_IMAGE = os.environ.get("NGINX_IMAGE", "omero-web-nginx:latest")
STANDALONE_IMAGE = os.environ.get("STANDALONE_IMAGE", "omero-web-standalone:latest")


class Stack:
    """The repository's compose.yaml as a uniquely named project, nginx on a random 127.0.0.1 port."""

    def __init__(self, name, env=None, scale_web=1):
        """`env`: compose variables (OMERO_WEB_PREFIX ...) and CONFIG_* lines for the web service."""
        self.project = f"owtest-{name}-{os.getpid()}"
        env = env or {}
        self.env_file = tempfile.NamedTemporaryFile("w", prefix=f"{self.project}-", suffix=".env", delete=False)
        with self.env_file as handle:
            handle.writelines(f"{k}={v}\n" for k, v in env.items() if k.startswith("CONFIG_"))
        self.env = {
            **os.environ,
            "OMERO_WEB_BIND": "127.0.0.1",
            "OMERO_WEB_PORT": "0",
            "OMERO_WEB_ENV_FILE": self.env_file.name,
            **{k: v for k, v in env.items() if not k.startswith("CONFIG_")},
        }
        self.scale_web = scale_web

    def compose(self, *args, check=True, timeout=300):
        return subprocess.run(
            ["docker", "compose", "-p", self.project, "-f", os.path.join(REPO, "compose.yaml"), *args],
            capture_output=True, text=True, check=check, timeout=timeout, env=self.env, cwd=REPO,
        )  # fmt: skip

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
        self.compose("down", "-v", "--remove-orphans", check=False)
        os.unlink(self.env_file.name)

    @property
    def url(self):
        return "http://" + self.compose("port", "nginx", "8080").stdout.strip()

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
            timeout=timeout,
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
        nginx, deadline = self.ids("nginx")[0], time.monotonic() + timeout
        while time.monotonic() < deadline:
            listed = self.exec(nginx, "cat", "/tmp/nginx/upstream.conf").stdout
            if set(re.findall(r"server ([0-9.]+):4080", listed)) == self.web_addresses():
                time.sleep(1)  # the graceful reload follows the file by a few milliseconds
                return
            time.sleep(0.2)
        raise AssertionError(f"nginx upstream {listed!r} does not list web {self.web_addresses()} after {timeout}s")

    def wait_status(self, path, status, timeout=60, **kwargs):
        """Poll `path` through nginx until it answers `status`; return the response."""
        deadline, last = time.monotonic() + timeout, None
        while time.monotonic() < deadline:
            try:
                last = requests.get(self.url + path, timeout=5, allow_redirects=False, **kwargs)
                if last.status_code == status:
                    return last
            except requests.RequestException as error:
                last = error
            time.sleep(0.1)
        logs = self.compose("logs", "--no-color", "--tail", "30", check=False).stdout
        raise AssertionError(f"{path} did not answer {status} within {timeout}s (last: {last})\n{logs}")


def login(base_url, prefix="", headers=None):
    """GET the login page, then POST its form as a browser would; return (page, POST response).

    The CSRF cookie is sent back explicitly: behind a TLS proxy it is marked Secure, and this
    client talks plain http to nginx (the proxy's side of the connection)."""
    page = requests.get(f"{base_url}{prefix}/webclient/login/", headers=headers, timeout=10)
    assert page.status_code == 200, page.text[:500]
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text).group(1)
    form = {"csrfmiddlewaretoken": token, "server": "1", "username": "root", "password": "omero"}
    answer = requests.post(
        page.url,
        data=form,
        headers={"Referer": page.url, **(headers or {})},
        cookies={"csrftoken": page.cookies["csrftoken"]},
        timeout=60,
        allow_redirects=False,
    )
    return page, answer
