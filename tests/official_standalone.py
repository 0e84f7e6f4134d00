"""The official omero-web-standalone image's default plugin file (tests/data/), which unit and stack
tests mount unchanged, a site's reduced copy of it, and the apps each enables, read from the files."""

import os
import re

DATA = os.path.join(os.path.dirname(os.path.abspath(__file__)), "data")
OFFICIAL_FILE = os.path.join(DATA, "official-standalone-webapps.omero")
REDUCED_FILE = os.path.join(DATA, "site-reduced-webapps.omero")  # figure and iviewer only
# Where a site mounts it: the name that replaces the image's default plugin set.
MOUNTED_AS = "01-default-webapps.omero"


def apps_in(path):
    with open(path) as handle:
        return re.findall(r"""^config append (?:-- )?omero\.web\.apps '"(\w+)"'""", handle.read(), re.M)


OFFICIAL_APPS = apps_in(OFFICIAL_FILE)
REDUCED_APPS = apps_in(REDUCED_FILE)
