"""Small helpers to run containers for the tests; everything is reached through 127.0.0.1."""

import json
import os
import subprocess
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
