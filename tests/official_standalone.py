"""The official omero-web-standalone image's default plugin file (tests/data/), which unit and stack
tests mount unchanged, and the apps it enables, read from the file itself."""

import os
import re

OFFICIAL_FILE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "data", "official-standalone-webapps.omero")

with open(OFFICIAL_FILE) as _handle:
    OFFICIAL_APPS = re.findall(r"""^config append (?:-- )?omero\.web\.apps '"(\w+)"'""", _handle.read(), re.M)
