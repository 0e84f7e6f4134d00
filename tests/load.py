"""Request loops for the reliability tests and `make bench`. Every request has a deadline, and a
request that times out, fails or answers an unexpected status is recorded as an error, never
retried: a hang is a result, not something to wait out."""

import os
import re
import signal
import subprocess
import tempfile
import threading
import time
from dataclasses import dataclass

import requests


@dataclass
class Answer:
    sent: float  # time.monotonic() when the request was sent
    seconds: float  # until the answer (or the error)
    status: int | None  # None: no HTTP answer (timeout, refused, reset)
    error: str = ""


def failure(error):
    """A failed request as `ConnectionError (Connection refused)`: the exception and what the socket
    said (refused: nothing listens; reset or disconnected: a listener closed the connection)."""
    text = str(error)
    cause = re.search(r"\[Errno -?\d+\] ([^'\")]+)|\(\d+, '([^']+)'\)|(RemoteDisconnected|Read timed out)", text)
    said = cause and next(group for group in cause.groups() if group)
    return f"{type(error).__name__} ({said.strip()})" if said else type(error).__name__


class Loop:
    """`workers` threads, each sending GETs to `url` one after another on a new connection,
    with `deadline` seconds for each, until stop(). `answers` keeps every request."""

    def __init__(self, url, workers=4, deadline=5.0, pause=0.0):
        self.url, self.deadline, self.pause = url, deadline, pause
        self.answers = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._run, daemon=True) for _ in range(workers)]

    def _run(self):
        while not self._stop.is_set():
            sent = time.monotonic()
            try:
                response = requests.get(self.url, timeout=self.deadline, allow_redirects=False)
                answer = Answer(sent, time.monotonic() - sent, response.status_code)
                if response.status_code == 503 and "OMERO.web is under maintenance" not in response.text:
                    answer.error = "503 without the maintenance page"
                elif response.status_code >= 500 and response.status_code != 503:
                    # Who answered: nginx's own error page, or OMERO.web's (a Django error).
                    answer.error = " ".join(response.text.split())[:160]
            except requests.RequestException as error:
                answer = Answer(sent, time.monotonic() - sent, None, failure(error))
            with self._lock:
                self.answers.append(answer)
            if self.pause:
                time.sleep(self.pause)

    def __enter__(self):
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc):
        self.stop()

    def stop(self):
        self._stop.set()
        for thread in self._threads:
            thread.join(self.deadline + 5)

    def between(self, start, end):
        with self._lock:
            return [a for a in self.answers if start <= a.sent < end]


@dataclass
class Switch:
    before: list  # requests sent in the second before the action
    during: list  # sent from the action's start to the end
    after: list  # sent once the action had returned


def around(url, action, after=5.0, workers=4):
    """Send requests to `url` for 1 s, run `action()`, and go on for `after` seconds once it returned."""
    with Loop(url, workers=workers) as loop:
        time.sleep(1)
        start = time.monotonic()
        action()
        done = time.monotonic()
        time.sleep(after)
        end = time.monotonic()
    return Switch(loop.between(0, start), loop.between(start, end), loop.between(done, end))


def failures(loop):
    """The answers of a Loop that timed out, failed or were not 200."""
    return [a for a in loop.answers if a.error or a.status != 200]


def when(answers, since):
    """Each answer as "+seconds after `since` (time.monotonic): status or error"."""
    return [f"+{a.sent - since:.1f} s: {a.error or a.status}" for a in answers]


def summary(answers):
    """One line: how many, which statuses, errors, slowest."""
    statuses = {}
    for answer in answers:
        key = answer.status if not answer.error else f"{answer.status}:{answer.error}"
        statuses[key] = statuses.get(key, 0) + 1
    slowest = max((a.seconds for a in answers), default=0.0)
    return f"{len(answers)} requests, statuses {statuses}, slowest {slowest * 1000:.0f} ms"


# wrk runs for its whole -d duration even when its threads stop early, so each thread, after its
# share of `total` responses, stops and leaves a file; the caller then interrupts wrk (SIGINT),
# which prints its summary.
_STOP_AFTER = """
local count, limit, threads = 0, tonumber(os.getenv("WRK_PER_THREAD")), 0
function setup(thread)
    threads = threads + 1
    thread:set("marker", os.getenv("WRK_DONE_DIR") .. "/" .. threads)
end
function response(status, headers, body)
    count = count + 1
    if count == limit then
        io.open(marker, "w"):close()  -- marker: set by setup() in this thread
        wrk.thread:stop()
    end
end
"""


@dataclass
class WrkResult:
    requests: int
    seconds: float
    rate: float
    p50_ms: float
    p99_ms: float
    socket_errors: int  # connect, read, write and timeout (the per-request deadline)
    non_2xx_3xx: int
    text: str
    not_logged_in: int = 0  # logged-in load only: answers that were not the logged-in page

    @property
    def errors(self):
        return self.socket_errors + self.non_2xx_3xx + self.not_logged_in

    def line(self):
        return (
            f"{self.requests:,} requests in {self.seconds:.1f} s: {self.rate:,.0f} req/s, p50 {self.p50_ms:.1f} ms, "
            f"p99 {self.p99_ms:.1f} ms, errors {self.errors} "
            f"(socket/timeout {self.socket_errors}, non-2xx/3xx {self.non_2xx_3xx}, not logged in {self.not_logged_in})"
        )


def _ms(number, unit):
    return float(number) * {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60000.0}[unit]


def wrk(url, connections=50, seconds=None, total=None, deadline=5, threads=2, headers=None):
    """Run wrk for `seconds`, or until `total` responses (then `seconds` is only a bound); every
    request with `headers` ({name: value}), e.g. a session cookie."""
    command = ["wrk", f"-t{threads}", f"-c{connections}", f"--timeout={deadline}s", "--latency"]
    for name, value in (headers or {}).items():
        command += ["-H", f"{name}: {value}"]
    with tempfile.TemporaryDirectory() as work:
        env = dict(os.environ, WRK_PER_THREAD=str(-(-(total or 0) // threads)), WRK_DONE_DIR=work)
        if total:
            with open(os.path.join(work, "stop.lua"), "w") as script:
                script.write(_STOP_AFTER)
            command += ["-s", script.name]
            seconds = seconds or 900
        process = subprocess.Popen(
            [*command, f"-d{seconds}s", url], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env
        )
        if total:
            while process.poll() is None and len(os.listdir(work)) < threads + 1:
                time.sleep(0.1)
            process.send_signal(signal.SIGINT)
        out = process.communicate(timeout=seconds + 60)[0]
    if process.returncode != 0:
        raise RuntimeError(f"wrk failed ({process.returncode}):\n{out}")
    return _parse(out)


def _parse(out):
    done = re.search(r"(\d+) requests in ([\d.]+)(us|ms|s|m)", out)
    latency = {p: _ms(*re.search(rf"\s{p}%\s+([\d.]+)(us|ms|s|m)", out).groups()) for p in ("50", "99")}
    socket = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    not_logged_in = re.search(r"Not logged in: (\d+)", out)
    return WrkResult(
        requests=int(done.group(1)),
        seconds=_ms(done.group(2), done.group(3)) / 1000,
        rate=float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)),
        p50_ms=latency["50"],
        p99_ms=latency["99"],
        socket_errors=sum(int(n) for n in socket.groups()) if socket else 0,
        non_2xx_3xx=int(non2xx.group(1)) if non2xx else 0,
        not_logged_in=int(not_logged_in.group(1)) if not_logged_in else 0,
        text=out,
    )


# One wrk thread per user, each with one connection and its own session cookie, alternating the
# cheapest logged-in page and an API page. A redirect (to the login page) or a 200 that is not the
# logged-in answer ("Connection Failed") is counted as "Not logged in"; wrk counts other statuses.
_LOGGED_IN = """
local cookies, threads = {}, {}
for cookie in string.gmatch(os.getenv("WRK_COOKIES"), "[^,]+") do cookies[#cookies + 1] = cookie end
local prefix = os.getenv("WRK_PREFIX")
local paths = {prefix .. "/webclient/keepalive_ping/", prefix .. "/api/v0/m/projects/"}
function setup(thread)
    threads[#threads + 1] = thread
    thread:set("cookie", cookies[#threads])
end
sent, failed = 0, 0  -- globals of each thread: done() reads them with thread:get()
function request()
    sent = sent + 1
    return wrk.format("GET", paths[sent % 2 + 1], {Cookie = "sessionid=" .. cookie})
end
function response(status, headers, body)
    local ping = sent % 2 == 0
    local wrong_page = (ping and body ~= "OK") or (not ping and string.sub(body, 1, 9) ~= '{"data": ')
    if (status >= 300 and status < 400) or (status == 200 and wrong_page) then  -- wrk counts the rest
        failed = failed + 1
    end
end
function done(summary, latency, requests)
    local total = 0
    for _, thread in ipairs(threads) do total = total + thread:get("failed") end
    io.write(string.format("Not logged in: %d\\n", total))
end
"""


def wrk_logged_in(base_url, session_ids, seconds=60, prefix="", deadline=5):
    """Each session id is one user: one wrk thread and one connection of its own, for `seconds`."""
    users = len(session_ids)
    with tempfile.NamedTemporaryFile("w", suffix=".lua") as script:
        script.write(_LOGGED_IN)
        script.flush()
        env = dict(os.environ, WRK_COOKIES=",".join(session_ids), WRK_PREFIX=prefix)
        command = ["wrk", f"-t{users}", f"-c{users}", f"-d{seconds}s", f"--timeout={deadline}s", "--latency"]
        result = subprocess.run(
            [*command, "-s", script.name, base_url + prefix + "/"],
            capture_output=True, text=True, env=env, timeout=seconds + 120,
        )  # fmt: skip
    if result.returncode != 0 or "Not logged in:" not in result.stdout:  # wrk goes on after a script error
        raise RuntimeError(f"wrk failed ({result.returncode}):\n{result.stdout}{result.stderr}")
    return _parse(result.stdout)


def time_wait_sockets(stack, container_id):
    """Sockets in TIME_WAIT in the container's network namespace (IPv4 and IPv6)."""
    tables = stack.exec(container_id, "cat", "/proc/net/tcp", "/proc/net/tcp6").stdout.splitlines()
    return sum(1 for line in tables if len(line.split()) > 3 and line.split()[3] == "06")
