#!/usr/bin/env python3
"""Say which architecture a local image's files are for: set-image-arch.py IMAGE ARCH.

`docker import` (Docker Engine 20.10) records the machine's architecture even with --platform, and
`docker run --platform linux/arm64` then refuses the image. This rewrites the image's config
(architecture, variant) through `docker save` and `docker load`; the layers are untouched. ARCH is
a Debian architecture name (amd64, arm64); nothing is done when the image already says it."""

import hashlib
import io
import json
import subprocess
import sys
import tarfile
import tempfile

VARIANTS = {"arm64": "v8"}  # what the official images record (linux/arm64/v8)


def docker(*args):
    return subprocess.run(["docker", *args], check=True, capture_output=True, text=True).stdout.strip()


def add(archive, name, data):
    member = tarfile.TarInfo(name)
    member.size = len(data)
    archive.addfile(member, io.BytesIO(data))


def relabel(image, arch):
    old_id, old_arch = docker("image", "inspect", "-f", "{{.Id}} {{.Architecture}}", image).split()
    if old_arch == arch:
        return
    with tempfile.TemporaryDirectory() as tmp:
        saved, patched = f"{tmp}/saved.tar", f"{tmp}/patched.tar"
        docker("save", "-o", saved, image)
        with tarfile.open(saved) as source, tarfile.open(patched, "w") as target:
            manifest = json.load(source.extractfile("manifest.json"))
            (entry,) = manifest
            old_config = entry["Config"]
            config = json.load(source.extractfile(old_config))
            config["architecture"] = arch
            config.pop("variant", None)
            if arch in VARIANTS:
                config["variant"] = VARIANTS[arch]
            data = json.dumps(config).encode()
            entry["Config"] = hashlib.sha256(data).hexdigest() + ".json"
            entry["RepoTags"] = [image]
            for member in source:
                if member.name not in ("manifest.json", "repositories", old_config):
                    target.addfile(member, source.extractfile(member) if member.isfile() else None)
            add(target, entry["Config"], data)
            add(target, "manifest.json", json.dumps(manifest).encode())
        docker("load", "-i", patched)
    subprocess.run(["docker", "image", "rm", old_id], capture_output=True)  # the relabelled copy keeps the tag


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    relabel(sys.argv[1], sys.argv[2])
