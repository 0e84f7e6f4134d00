# gunicorn settings of the omero-web image that do not come from the OMERO configuration.
# Bind address, workers, threads, timeouts and extra arguments are taken from the
# omero.web.* keys by entrypoint.py and passed on the command line, as `omero web start` does.

# Logs belong on the container's stdout/stderr.
accesslog = "-"
errorlog = "-"

# Worker heartbeat files in memory, so the root filesystem can be read-only.
worker_tmp_dir = "/dev/shm"

# No control socket in $HOME (gunicornc is not used in a container).
control_socket_disable = True

# Import Django and OMERO.web once in the master, then fork the workers: the first page is
# answered ~0.8 s sooner (5 workers no longer import in parallel on a small machine) and the
# workers share that memory. Connections (OMERO.server, Redis) are only opened after the fork.
preload_app = True


# With sessions in Redis, say so in the log when Redis goes away and when it is back. Anonymous
# pages never touch the session store, so without this an outage would be silent until the next
# login fails. The entrypoint passes the cache's Redis URL in OMERO_WEB_REDIS_WATCH_URL. The
# watcher is a separate process: a thread in this forking master could deadlock the workers.
def when_ready(server):
    import os
    import subprocess
    import sys

    if os.environ.get("OMERO_WEB_REDIS_WATCH_URL"):
        subprocess.Popen([sys.executable, os.path.join(os.path.dirname(__file__), "redis_watch.py")])
