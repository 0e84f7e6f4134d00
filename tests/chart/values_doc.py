"""The chart README's table of values, generated from the `# --` comments in values.yaml.

    python tests/chart/values_doc.py          print the table
    python tests/chart/values_doc.py --write  rewrite it in helm/omero-web/README.md
tests/chart/test_render.py fails when the README's table is not this one."""

import os
import re
import sys

CHART = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))), "helm", "omero-web")
START, END = "<!-- values:start -->", "<!-- values:end -->"


def rows(values_text):
    """(dotted key, default as written, description) for each value with a `# --` comment."""
    found, path, comment = [], [], None
    for line in values_text.splitlines():
        stripped = line.strip()
        if stripped.startswith("# --"):
            comment = [stripped[4:].strip()]
        elif stripped.startswith("#") and comment is not None:
            comment.append(stripped[1:].strip())
        elif match := re.match(r"^( *)([A-Za-z]\w*):\s*(.*)$", line):
            depth = len(match.group(1)) // 2
            path = path[:depth] + [match.group(2)]
            if comment is not None:
                found.append((".".join(path), match.group(3) or "see values.yaml", " ".join(comment)))
                comment = None
    return found


def table(values_text):
    lines = ["| value | default | meaning |", "|---|---|---|"]
    lines += [f"| `{key}` | `{default}` | {text.replace('|', '&#124;')} |" for key, default, text in rows(values_text)]
    return "\n".join(lines)


def main(argv):
    values = open(os.path.join(CHART, "values.yaml")).read()
    if "--write" not in argv:
        print(table(values))
        return 0
    readme_path = os.path.join(CHART, "README.md")
    readme = open(readme_path).read()
    before, rest = readme.split(START)
    after = rest.split(END)[1]
    with open(readme_path, "w") as handle:
        handle.write(f"{before}{START}\n{table(values)}\n{END}{after}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
