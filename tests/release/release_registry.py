"""A container registry of our own on 127.0.0.1 for the release test and bench: Debian's
docker-registry (distribution), wanting a password (htpasswd), its storage in a directory of the
caller's; and `make release` to it. Not pytest-specific."""

import os
import secrets
import socket
import subprocess
import time

import requests
import yaml

from contract import REPO


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Registry:
    """`with Registry(work) as registry:` host (127.0.0.1:PORT), username, password, and auth: a
    docker config directory logged in to it (`docker --config`, DOCKER_CONFIG, --registry-config)."""

    def __init__(self, work):
        self.work = str(work)
        self.host = f"127.0.0.1:{free_port()}"
        self.username, self.password = "releaser", secrets.token_urlsafe(18)
        self.auth = os.path.join(self.work, "docker")
        self.process = None

    def __enter__(self):
        path = lambda name: os.path.join(self.work, name)  # noqa: E731
        htpasswd = subprocess.run(["htpasswd", "-Bbn", self.username, self.password], capture_output=True,
                                  text=True, timeout=30)  # fmt: skip
        assert htpasswd.returncode == 0, htpasswd.stderr
        with open(path("htpasswd"), "w") as handle:
            handle.write(htpasswd.stdout)
        config = {
            "version": 0.1,
            "storage": {"filesystem": {"rootdirectory": path("data")}},
            "http": {"addr": self.host, "secret": secrets.token_hex(16)},
            "auth": {"htpasswd": {"realm": "release-test", "path": path("htpasswd")}},
            "log": {"level": "warn"},
        }
        with open(path("config.yml"), "w") as handle:
            yaml.safe_dump(config, handle)
        self.log = open(path("registry.log"), "w")
        self.process = subprocess.Popen(["docker-registry", "serve", path("config.yml")], stdout=self.log,
                                        stderr=subprocess.STDOUT)  # fmt: skip
        try:
            self._wait()
            os.makedirs(self.auth, mode=0o700)
            login = subprocess.run(
                ["docker", "--config", self.auth, "login", "--username", self.username, "--password-stdin", self.host],
                input=self.password, capture_output=True, text=True, timeout=60,
            )  # fmt: skip
            assert login.returncode == 0, login.stderr
        except BaseException:
            self.__exit__()
            raise
        return self

    def _wait(self, seconds=30):
        """Until it answers /v2/ (every attempt with a deadline; only "not listening yet" is retried),
        which must want a password."""
        deadline = time.monotonic() + seconds
        while True:
            assert self.process.poll() is None, open(self.log.name).read()
            try:
                answer = requests.get(f"http://{self.host}/v2/", timeout=2)
                break
            except requests.ConnectionError:
                assert time.monotonic() < deadline, f"the registry does not listen within {seconds} s"
                time.sleep(0.2)
        assert answer.status_code == 401, answer.status_code

    def __exit__(self, *exc):
        if self.process:
            self.process.terminate()
            self.process.wait(timeout=30)
            self.log.close()

    def release(self, image_tag, source_tag, timeout=900):
        """`make release` to this registry, credentials from the environment: the completed process
        and its seconds."""
        env = dict(
            os.environ, REGISTRY=self.host + "/", IMAGE_TAG=image_tag, SOURCE_TAG=source_tag,
            REGISTRY_USERNAME=self.username, REGISTRY_PASSWORD=self.password,
        )  # fmt: skip
        started = time.monotonic()
        result = subprocess.run(["make", "-s", "-C", REPO, "release"], capture_output=True, text=True,
                                timeout=timeout, env=env)  # fmt: skip
        return result, time.monotonic() - started
