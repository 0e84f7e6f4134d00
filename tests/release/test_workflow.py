"""The GitHub Actions release workflow (.github/workflows/release.yml): actionlint finds nothing,
and it does its work only through what CI runs here (.ci/run, make release), so the two cannot
drift. It cannot run here (no GitHub, no registry)."""

import os
import subprocess

import yaml

from cluster_helpers import REPO

WORKFLOW = os.path.join(REPO, ".github", "workflows", "release.yml")


def test_actionlint_finds_nothing(tools):
    lint = subprocess.run(
        [os.path.join(tools, "actionlint"), "-no-color", WORKFLOW], capture_output=True, text=True, timeout=120
    )
    assert lint.returncode == 0, lint.stdout + lint.stderr


def test_it_builds_tests_and_publishes_only_through_the_make_targets_ci_runs_here():
    workflow = yaml.safe_load(open(WORKFLOW))
    assert workflow[True]["push"]["tags"]  # `on:` is YAML's true; tags only, never branches
    assert set(workflow[True]) == {"push"} and set(workflow[True]["push"]) == {"tags"}
    runs = [step["run"] for job in workflow["jobs"].values() for step in job["steps"] if "run" in step]
    script = "\n".join(runs)
    assert "bash .ci/run" in script and "make release" in script
    for own_work in ("docker build", "docker push", "buildx", "skopeo", "crane", "helm push", "pytest"):
        assert own_work not in script, own_work
    # The tests run before anything is published, in the same job (the images it tested).
    assert script.index("bash .ci/run") < script.index("make release") and len(workflow["jobs"]) == 1
    assert "${{ secrets." not in script  # secrets reach scripts through env, never interpolated
