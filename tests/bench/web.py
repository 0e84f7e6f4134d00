"""`make bench`: figures for the omero-web image. Reports only; nothing here is a pass/fail test.

(a) applying 30 CONFIG_* variables: entrypoint.py (one process) vs one `omero config set` per variable
(b) `docker run` -> first 200 on the login page, without plugins and with all of them
(c) image sizes (omero-web, omero-web-nginx, omero-web-standalone)
"""

import os
import statistics
import subprocess
import sys
import time

import requests

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from docker_helpers import NGINX_IMAGE, STANDALONE_IMAGE, WEB_IMAGE, Container, docker, scaled  # noqa: E402

# 30 real settings of several kinds (bool, int, str, JSON), as a site would set them.
VARIABLES = {
    "omero.web.debug": "false",
    "omero.web.server_list": '[["omero.example.org", 4064, "omero"]]',
    "omero.web.session_cookie_age": "86400",
    "omero.web.session_expire_at_browser_close": "true",
    "omero.web.session_cookie_secure": "false",
    "omero.web.csrf_cookie_secure": "false",
    "omero.web.csrf_trusted_origins": '["https://omero.example.org"]',
    "omero.web.allowed_hosts": '["*"]',
    "omero.web.wsgi_workers": "4",
    "omero.web.wsgi_timeout": "120",
    "omero.web.wsgi_threads": "2",
    "omero.web.application_server.max_requests": "500",
    "omero.web.page_size": "100",
    "omero.web.thumbnails_batch": "40",
    "omero.web.ping_interval": "30000",
    "omero.web.chunk_size": "1048576",
    "omero.web.max_table_download_rows": "20000",
    "omero.web.time_zone": "Europe/Berlin",
    "omero.web.x_frame_options": "SAMEORIGIN",
    "omero.web.public.enabled": "false",
    "omero.web.public.cache.enabled": "false",
    "omero.web.login.show_client_downloads": "false",
    "omero.web.show_forgot_password": "true",
    "omero.web.user_dropdown": "true",
    "omero.web.feedback.comment.enabled": "false",
    "omero.web.feedback.error.enabled": "false",
    "omero.web.check_version": "true",
    "omero.web.login_incorrect_credentials_text": "Wrong user name or password.",
    "omero.web.plate_layout": "expand",
    "omero.web.html_meta_referrer": "origin-when-crossorigin",
}


def env_name(key):
    return "CONFIG_" + key.replace("_", "__").replace(".", "_")


def timed_in(container, script, env=None):
    """Seconds a shell script takes inside a running container."""
    command = ["docker", "exec", "-i"]
    for name, value in (env or {}).items():
        command += ["-e", f"{name}={value}"]
    command += [container, "bash", "-c", script]
    started = time.monotonic()
    subprocess.run(command, check=True, capture_output=True, timeout=600)
    return time.monotonic() - started


def bench_config():
    container = docker("run", "-d", "--entrypoint", "sleep", WEB_IMAGE, "infinity").stdout.strip()
    try:
        env = {env_name(k): v for k, v in VARIABLES.items()}
        ours = min(timed_in(container, "entrypoint.py check >/dev/null", env) for _ in range(3))
        sets = "\n".join(f"omero config set {k} '{v}'" for k, v in VARIABLES.items())
        theirs = timed_in(container, sets)
    finally:
        docker("rm", "-f", container)
    print(f"(a) 30 CONFIG_* variables: entrypoint {ours:.2f} s, 30x `omero config set` {theirs:.2f} s")
    print(f"    ({theirs / 30:.2f} s per variable) -> {theirs / ours:.1f}x faster (goal >= 10x)")


def bench_start(plugins, runs=5, label="(b)", goal=" (goal <= 3 s)"):
    """Polls until the first 200. A refused connection means "not listening yet"; a timed-out
    request (2 s deadline) or any other answer is an error, counted and reported. Both limits
    scaled for images of another architecture (emulation)."""
    times, errors = [], []
    limit, deadline = scaled(60), scaled(2)
    for _ in range(runs):
        started = time.monotonic()
        env = {"CONFIG_omero_web_server__list": '[["omero.example.org", 4064, "o"]]', "OMERO_WEB_PLUGINS": plugins}
        web = Container(WEB_IMAGE, env=env)
        try:
            url = web.url + "/webclient/login/"
            while time.monotonic() - started < limit:
                try:
                    status = requests.get(url, timeout=deadline).status_code
                    if status == 200:
                        times.append(time.monotonic() - started)
                        break
                    errors.append(f"HTTP {status}")
                except requests.ConnectionError as error:
                    if "refused" not in str(error) and "reset" not in str(error).lower():
                        errors.append(type(error).__name__)
                except requests.RequestException as error:
                    errors.append(type(error).__name__)
                time.sleep(0.02)
            else:
                errors.append(f"no 200 within {limit} s")
        finally:
            web.remove()
    print(
        f"{label} OMERO_WEB_PLUGINS={plugins}: docker run -> first 200 on /webclient/login/: "
        f"median {statistics.median(times):.2f} s, "
        f"min {min(times):.2f} s over {len(times)} runs, {len(errors)} errors {errors[:5]}{goal}"
    )


def bench_size(label="(c)", web_goal=" (goal <= 320 MB with every plugin)"):
    for image, goal in ((WEB_IMAGE, web_goal), (NGINX_IMAGE, ""), (STANDALONE_IMAGE, "")):
        size = int(docker("image", "inspect", "-f", "{{.Size}}", image).stdout)
        print(f"{label} {image} size: {size / 1e6:.0f} MB uncompressed{goal}")


if __name__ == "__main__":
    print(f"Benchmarks of {WEB_IMAGE} on {os.cpu_count()} CPUs (report only)")
    bench_config()
    bench_start("none")
    bench_start("all")
    bench_size()
