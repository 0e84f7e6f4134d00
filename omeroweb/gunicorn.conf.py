# gunicorn settings of the omero-web image that do not come from the OMERO configuration.
# Bind address, workers, threads, timeouts and extra arguments are taken from the
# omero.web.* keys by entrypoint.py and passed on the command line, as `omero web start` does.

# nginx keeps its connections to gunicorn open (upstream keepalive) and closes idle ones after
# 60 s; gunicorn waits longer, so it never closes one under a request nginx is sending. The
# threaded worker (entrypoint.py picks it for omero.web.wsgi_worker_class=sync) keeps them alive.
keepalive = 75

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


# Preloading sets Django up (settings, apps) but leaves the URL configuration to the first request:
# every new worker (each start, restart and max_requests recycle) would import the views of
# OMERO.web and every plugin while nginx waits on it, in as many threads as requests arrived.
# Import and index the URLs once in the master instead; the workers inherit them.
def on_starting(server):
    if not server.cfg.preload_app:
        return  # Django is not set up in the master (preload turned off by wsgi_args)
    from django.urls import get_resolver

    urls = len(get_resolver().reverse_dict)  # imports every urls.py and its views, then indexes them
    server.log.info("URL configuration loaded before the workers start: %d URL names and patterns", urls)


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


# On SIGTERM the master closes its copy of the listening socket, but each threaded worker keeps
# its own until it exits: up to graceful_timeout (30 s) with requests in flight, 2 s at least.
# Meanwhile the kernel still completes new connections into a backlog nobody accepts from, and
# nginx waits on them instead of passing the request to another replica or answering the
# maintenance page (gunicorn issues #3397, #922). So a stopping worker closes its copy as soon as
# it stops accepting: once all have, new connections are refused at once.
def post_worker_init(worker):
    stop_accepting = getattr(worker, "set_accept_enabled", None)  # gthread's own method
    if stop_accepting is None:
        return

    def set_accept_enabled(enabled):
        stop_accepting(enabled)
        if not enabled and not worker.alive:
            for listener in worker.sockets:
                listener.close()

    worker.set_accept_enabled = set_accept_enabled


# A worker forked just as the master is told to stop can miss its SIGTERM: until gunicorn installs
# the worker's own handlers (Worker.init_signals), the new process still has the master's, which
# only queue the signal in the worker's copy of the master's queue. That worker then serves on and
# the master waits graceful_timeout (30 s) before killing it: measured, 1 `docker stop` in ~15
# right after a start on a busy machine took 31 s instead of 3 (longer than docker's and
# Kubernetes' default grace periods). So a new worker stops at once for a stop signal that is
# already queued or arrives before gunicorn's own handlers are in place.
def post_fork(server, worker):
    import signal

    stop_signals = (signal.SIGTERM, signal.SIGINT, signal.SIGQUIT)

    def stop(signum, frame):
        worker.alive = False  # the worker's run loop is never entered, or is left at once

    for signum in stop_signals:
        signal.signal(signum, stop)
    inherited = getattr(server, "SIG_QUEUE", None)  # the master's queue, as it was at the fork
    while inherited is not None and not inherited.empty():
        if inherited.get_nowait() in stop_signals:
            worker.alive = False
