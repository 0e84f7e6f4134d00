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
