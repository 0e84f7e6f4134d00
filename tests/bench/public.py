"""`make bench`, public data part: a public data site (OMERO_WEB_PUBLIC_USER) of the compose stack
and the OMERO.server stand-in's images (tests/standin/data.py), through nginx with its cache on
(NGINX_CACHE). Reports only; nothing here is a pass/fail test.

(l) an anonymous visitor's requests for the heavy image paths, each URL on its own: wrk, 20
    connections, 20 s, twice each, every request with the visitor's public session cookie (as a
    browser sends it): requests/s, p50/p99, errors (socket errors, wrk's 5 s timeout, non-2xx/3xx):
    a thumbnail, a rendered plane, a region (a 256 px tile), imgData. Uncached: with the cookie
    that sends logged-in users past the cache (omero_web_cache=bypass), so OMERO.web and the
    stand-in render every request for the public session; cached: the same without it (the first
    request fills the entry), and the X-Cache-Status of one more request
(m) a viewer session replayed, one request at a time (each with a 10 s deadline): the requests a
    browser makes to open image 1 in OMERO.iviewer and step through its 5 Z planes, from a new
    visitor (its first request logs the public user in to OMERO), uncached (bypass cookie), then
    cold (a new visitor, the cache emptied first) and warm (another new visitor): seconds in all,
    and every request that failed or did not answer 200
The stand-in renders with numpy and Pillow in one Python process: it is the bound here, as
OMERO.server's rendering would be. wrk shares the machine's CPUs with the containers.
"""

import http.client
import os
import shutil
import sys
import tempfile
import time
import urllib.parse

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from docker_helpers import PUBLIC_PREFIX as PREFIX  # noqa: E402
from docker_helpers import WebUser, public_site  # noqa: E402
from load import wrk  # noqa: E402

CONNECTIONS, SECONDS, RUNS = 20, 20, 2
PATHS = {
    "thumbnail": "/webgateway/render_thumbnail/1/",
    "plane": "/webgateway/render_image/1/2/0/?c=1|0:255$0000FF,2|0:255$00FF00,3|0:255$FF0000&m=c&q=0.9",
    "tile": "/webgateway/render_image_region/1/2/0/?region=0,0,256,256&c=1|0:255$0000FF&m=c&q=0.9",
    "imgData": "/webgateway/imgData/1/",
}
C = "c=1|0:243$0000FF,2|0:248$00FF00,3|0:249$FF0000"
VIEWER = [
    "/iviewer/?images=1", "/webgateway/luts/", "/iviewer/image_data/1/", "/webgateway/getImgRDef/",
    "/iviewer/image_data/1/delta_t/", "/webgateway/get_image_rdefs_json/1/",
    "/webclient/api/paths_to_object/?image=1&page_size=10", "/api/v0/m/datasets/1/images/?offset=0&limit=10",
    "/webclient/render_thumbnail/1/", "/webclient/render_thumbnail/2/", "/webgateway/render_thumbnail/1/?rev=1",
] + [f"/webgateway/render_image/1/{z}/0/?{C}&m=c&p=normal&q=0.9" for z in range(5)]  # fmt: skip


def bench_paths(stack):
    visitor = WebUser(stack.url, prefix=PREFIX)
    assert visitor.get("/webclient/").status_code == 200 and visitor.session_id
    session = f"sessionid={visitor.session_id}"
    for name, path in PATHS.items():
        rates = {}
        for mode, cookie in (("uncached", f"{session}; omero_web_cache=bypass"), ("cached", session)):
            for run in range(1, RUNS + 1):
                result = wrk(stack.url + PREFIX + path, CONNECTIONS, seconds=SECONDS, headers={"Cookie": cookie})
                rates.setdefault(mode, []).append(result.rate)
                print(f"(l) {name} {path.split('?')[0]}, {mode}, run {run}: {result.line()}")
        status = cache_status(stack.url, path, session)
        ratio = min(rates["cached"]) / max(rates["uncached"])
        print(f"(l) {name}: cached/uncached >= {ratio:.0f}x (slowest cached run / fastest uncached run); "
              f"one more request: {status}")  # fmt: skip


def cache_status(base_url, path, cookie):
    """Status and X-Cache-Status of one more request, its URL sent as wrk sent it (requests would
    percent-encode the | and $ of the rendering parameters: another cache key)."""
    connection = http.client.HTTPConnection(urllib.parse.urlsplit(base_url).netloc, timeout=10)
    try:
        connection.request("GET", PREFIX + path, headers={"Cookie": cookie})
        answer = connection.getresponse()
        return f"{answer.status} {answer.getheader('X-Cache-Status')}"
    except Exception as error:  # reported, never retried
        return type(error).__name__
    finally:
        connection.close()


def replay(visitor):
    started, failed = time.monotonic(), []
    for path in VIEWER:
        try:
            answer = visitor.get(path, timeout=10)
            if answer.status_code != 200:
                failed.append(f"{path}: {answer.status_code}")
        except Exception as error:  # counted, never retried
            failed.append(f"{path}: {type(error).__name__}")
    return time.monotonic() - started, failed


def bench_viewer(stack):
    uncached = WebUser(stack.url, prefix=PREFIX)
    uncached.http.cookies.set("omero_web_cache", "bypass")
    purge = stack.exec(stack.ids("nginx")[0], "omero-web-nginx", "cache-purge")
    assert purge.returncode == 0, purge.stderr
    visitors = (
        ("uncached, a new visitor", uncached),
        ("cached, cold: a new visitor, the cache emptied", WebUser(stack.url, prefix=PREFIX)),
        ("cached, warm: another new visitor", WebUser(stack.url, prefix=PREFIX)),
    )
    for when, visitor in visitors:
        seconds, failed = replay(visitor)
        print(f"(m) OMERO.iviewer opening image 1 and its 5 planes ({len(VIEWER)} requests), {when}: "
              f"{seconds:.2f} s, failed {len(failed)}{': ' + str(failed) if failed else ''}")  # fmt: skip


if __name__ == "__main__":
    if not shutil.which("wrk"):
        sys.exit("public data benchmarks need wrk: apt-get install wrk")
    sys.stdout.reconfigure(line_buffering=True)
    stack = public_site("bench-public", tempfile.mkdtemp(prefix="bench-public-")).up()
    try:
        bench_viewer(stack)
        bench_paths(stack)
    finally:
        stack.down()
