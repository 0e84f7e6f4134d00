"""The chart's versions in git history: which commit set the checkout's version, which version
came before it, and the previous version's chart itself (for the upgrade test). Needs the full
history (a fresh `git clone`, not `--depth`); says so when it is missing."""

import os
import subprocess

import yaml

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
CHART_DIR = "helm/omero-web"
CHART_FILE = f"{CHART_DIR}/Chart.yaml"
# What a chart version covers: everything `helm package` ships but the README (prose).
NOT_VERSIONED = [f":(exclude){CHART_DIR}/README.md"]


def git(*args):
    result = subprocess.run(["git", *args], cwd=REPO, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, f"git {' '.join(args)}: {result.stderr}"
    return result.stdout


def version(commit=None):
    """Chart.yaml's version in the work tree, or at a commit."""
    text = git("show", f"{commit}:{CHART_FILE}") if commit else open(os.path.join(REPO, CHART_FILE)).read()
    return str(yaml.safe_load(text)["version"])


def history():
    """``[(commit, version)]`` of every commit that changed Chart.yaml, newest first."""
    assert git("rev-parse", "--is-shallow-repository").strip() == "false", (
        "the chart tests read the chart's versions from git history: use a full clone (git fetch --unshallow)"
    )
    commits = git("log", "--format=%H", "--", CHART_FILE).split()
    return [(commit, version(commit)) for commit in commits]


def introduced():
    """The commit that set the work tree's version, or None while that version is not committed."""
    current, found = version(), None
    for commit, each in history():
        if each != current:
            break
        found = commit
    return found


def previous():
    """``(commit, version)`` of the newest commit whose chart version is not the work tree's."""
    current = version()
    for commit, each in history():
        if each != current:
            return commit, each
    raise AssertionError(f"no earlier chart version than {current} in git history")


def changed_since(commit):
    """The chart's files that differ between a commit and the work tree (README aside)."""
    changed = git("diff", "--name-only", commit, "--", CHART_DIR, *NOT_VERSIONED).split()
    changed += git("ls-files", "--others", "--exclude-standard", "--", CHART_DIR, *NOT_VERSIONED).split()
    return sorted(set(changed))


def export(commit, target):
    """The chart as it was at a commit, written under ``target``; returns its directory."""
    archive = subprocess.run(["git", "archive", commit, CHART_DIR], cwd=REPO, capture_output=True, timeout=60)
    assert archive.returncode == 0, archive.stderr.decode()
    subprocess.run(["tar", "-x", "-C", target], input=archive.stdout, check=True, timeout=60)
    return os.path.join(target, CHART_DIR)
