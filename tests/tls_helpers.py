"""A test certificate authority (openssl): CAs and the certificates they sign, for the HTTPS,
websocket and cluster tests."""

import os

from docker_helpers import run_tool


def openssl(*args, cwd):
    run_tool(["openssl", *args], cwd=cwd, timeout=60)


def make_ca(directory, name="ca"):
    """A test CA, as `name`.key / `name`.crt."""
    openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-days", "30",
            "-subj", f"/CN=owtest {name}", "-keyout", f"{name}.key", "-out", f"{name}.crt", cwd=directory)  # fmt: skip
    os.chmod(os.path.join(directory, f"{name}.crt"), 0o644)


def issue(directory, name, ca="ca", host="localhost"):
    """A key and a certificate for `host` signed by the test CA `ca`, as `name`.key / `name`.crt."""
    openssl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-subj", f"/CN={host}",
            "-keyout", f"{name}.key", "-out", f"{name}.csr", cwd=directory)  # fmt: skip
    with open(os.path.join(directory, "san.ext"), "w") as ext:
        ext.write(f"subjectAltName=DNS:{host}\n")
    openssl("x509", "-req", "-in", f"{name}.csr", "-CA", f"{ca}.crt", "-CAkey", f"{ca}.key", "-days", "30",
            "-extfile", "san.ext", "-out", f"{name}.crt", cwd=directory)  # fmt: skip
    os.chmod(os.path.join(directory, f"{name}.key"), 0o644)  # readable by nginx's uid (a test directory)
