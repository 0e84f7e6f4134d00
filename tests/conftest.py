import importlib.util
import os
import sys

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# entrypoint.py lives at the repository root and is not a package.
sys.path.insert(0, REPO)


def _timeline_mark(config, event):
    """With CI_TIMELINE set (.ci/run), each suite's start and end go into the run's timeline."""
    path = os.environ.get("CI_TIMELINE")
    if not path:
        return
    spec = importlib.util.spec_from_file_location("timeline", os.path.join(REPO, ".ci", "timeline.py"))
    timeline = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(timeline)
    marker = config.getoption("markexpr", "")
    name = "pytest " + " ".join(config.args) + (f" -m {marker}" if marker else "")
    timeline.mark(path, event, name)


def pytest_sessionstart(session):
    _timeline_mark(session.config, "start")


def pytest_sessionfinish(session):
    _timeline_mark(session.config, "end")
