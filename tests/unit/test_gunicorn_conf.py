"""The image's gunicorn settings (omeroweb/gunicorn.conf.py) in a real gunicorn on this machine."""

import os
import signal
import subprocess
import sys
import time

import pytest

CONF = os.path.join(os.path.dirname(__file__), "..", "..", "omeroweb", "gunicorn.conf.py")
GRACEFUL_TIMEOUT = 20  # what a lost SIGTERM costs: the master waits this long, then kills the worker


@pytest.mark.parametrize("when", ["before our hook", "after our hook"])
def test_a_worker_forked_as_the_master_stops_stops_too(tmp_path, when):
    """SIGTERM while a worker is between fork and gunicorn's own signal handlers.

    The window is a few milliseconds in real life; a wrapper around the image's post_fork hook
    holds the new worker in it for a second, either before the hook (the signal is queued in the
    copy of the master's queue) or after it (the signal reaches the hook's handler)."""
    (tmp_path / "app.py").write_text(
        "def app(environ, start_response):\n"
        "    start_response('200 OK', [('Content-Type', 'text/plain')])\n"
        "    return [b'ok']\n"
    )
    hold = "time.sleep(1); image_post_fork(server, worker)"
    if when == "after our hook":
        hold = "image_post_fork(server, worker); time.sleep(1)"
    (tmp_path / "conf.py").write_text(
        "import time\n"
        f"exec(open({os.path.abspath(CONF)!r}).read())\n"
        "preload_app = False  # no Django here: the image preloads OMERO.web\n"
        "worker_tmp_dir = None\n"
        "image_post_fork = post_fork\n"
        f"def post_fork(server, worker):\n    {hold}\n"
    )
    command = [sys.executable, "-m", "gunicorn", "--config", "conf.py", "--bind", "127.0.0.1:0"]
    command += ["--workers", "1", "--worker-class", "gthread", "--threads", "2"]
    command += ["--graceful-timeout", str(GRACEFUL_TIMEOUT), "app:app"]
    master = subprocess.Popen(command, cwd=tmp_path, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 15
        log = ""
        while "Booting worker" not in log:
            assert time.monotonic() < deadline, f"gunicorn booted no worker in 15 s:\n{log}"
            log += master.stderr.readline()
        master.send_signal(signal.SIGTERM)  # the worker is in the held window for ~1 s more
        started = time.monotonic()
        assert master.wait(timeout=GRACEFUL_TIMEOUT + 10) == 0
        stopped_in = time.monotonic() - started
        log += master.stderr.read()
    finally:
        master.kill()
        master.wait()
    assert "Shutting down: Master" in log
    assert stopped_in < GRACEFUL_TIMEOUT / 2, f"stopped in {stopped_in:.1f} s: the worker missed SIGTERM\n{log}"
