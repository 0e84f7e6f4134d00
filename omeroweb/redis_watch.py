"""Log when the Redis behind OMERO.web's sessions becomes unreachable, and when it is back.

Started by gunicorn.conf.py's when_ready hook; reads OMERO_WEB_REDIS_WATCH_URL (set by
entrypoint.py from omero.web.caches) and exits when gunicorn does.
"""

import os
import sys
import time
from urllib.parse import urlsplit

import redis

INTERVAL = 5  # seconds between pings


def log(level, message):
    stamp = time.strftime("%Y-%m-%d %H:%M:%S %z")
    print(f"[{stamp}] [{os.getpid()}] [{level}] {message}", file=sys.stderr, flush=True)


def main():
    url = os.environ["OMERO_WEB_REDIS_WATCH_URL"]
    parts = urlsplit(url)
    where = parts.path if parts.scheme == "unix" else f"{parts.hostname}:{parts.port or 6379}"
    client = redis.Redis.from_url(url, socket_connect_timeout=2, socket_timeout=2)
    parent, reachable = os.getppid(), None
    while os.getppid() == parent:
        try:
            client.ping()
            if reachable is False:
                log("INFO", f"Redis at {where} is reachable again: sessions and cache work.")
            reachable = True
        except redis.RedisError as error:
            if reachable is not False:
                log("ERROR", f"Redis at {where} is unreachable ({error}): logins fail until it is back.")
            reachable = False
        time.sleep(INTERVAL)


if __name__ == "__main__":
    try:
        main()
    except KeyboardInterrupt:
        pass
