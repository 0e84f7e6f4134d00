""".omero files (as `omero load` reads them) and properties files (as `omero config load`)."""

import json

import pytest

from entrypoint import ConfigError, Op, apply_ops, parse_omero_file, parse_properties, read_text


def parse(text, tmp_path, name="10-site.omero"):
    path = tmp_path / name
    path.write_text(text)
    return parse_omero_file(text, str(path), read_text)


def test_set_append_remove_and_comments(tmp_path, schema):
    ops = parse(
        """
        # a comment
        config set omero.web.debug true
        omero config set -- omero.web.server_list '[["omero.example.org", 4064, "demo"]]'
        config append -- omero.web.apps '"omero_figure"'
        config append --set omero.web.apps '"omero_figure"'
        config remove omero.web.apps '"omero_figure"'
        config set omero.web.login_logo   # removes the key
        """,
        tmp_path,
    )
    assert [op.action for op in ops] == ["set", "set", "append", "append-unique", "remove", "unset"]
    assert ops[1].value == '[["omero.example.org", 4064, "demo"]]'
    assert ops[0].source.endswith("10-site.omero line 3")
    config = apply_ops(ops, schema)
    assert json.loads(config["omero.web.apps"].value) == []
    assert "omero.web.login_logo" not in config


def test_append_unique_does_not_duplicate(tmp_path, schema):
    ops = parse("config append omero.web.apps '\"a\"'\nconfig append --set omero.web.apps '\"a\"'\n", tmp_path)
    assert json.loads(apply_ops(ops, schema)["omero.web.apps"].value) == ["a"]


def test_append_to_unset_web_list_starts_from_upstream_default(tmp_path, schema):
    entry = '{"index": 0.5, "class": "x.Middleware"}'
    config = apply_ops(parse(f"config append omero.web.middleware '{entry}'\n", tmp_path), schema)
    middleware = json.loads(config["omero.web.middleware"].value)
    upstream = schema.default_value("omero.web.middleware")
    assert middleware == upstream + [json.loads(entry)]
    assert len(upstream) == 6


def test_set_from_file_and_load_properties(tmp_path, schema):
    (tmp_path / "key.txt").write_text("s3cret\n")
    (tmp_path / "extra.properties").write_text("# props\nomero.web.page_size=100\nomero.web.top_logo=\\\n/logo.png\n")
    ops = parse("config set -f key.txt omero.web.secret_key\nconfig load extra.properties\n", tmp_path)
    config = apply_ops(ops, schema)
    assert config["omero.web.secret_key"].value == "s3cret"
    assert config["omero.web.secret_key"].secret
    assert config["omero.web.page_size"].value == "100"
    assert config["omero.web.top_logo"].value == "/logo.png"


def test_properties_without_key():
    with pytest.raises(ConfigError, match="x.properties line 1"):
        parse_properties("=value\n", "x.properties")


@pytest.mark.parametrize(
    "line, complaint",
    [
        ("admin start", "not supported"),
        ("config set omero.web.debug 'true", "unbalanced quotes"),
        ("config set a b c", "quote values"),
        ("config append omero.web.apps", "config append KEY VALUE"),
        ("config set --bogus omero.web.debug true", "option --bogus"),
        ("config load missing.properties", "cannot read"),
    ],
)
def test_bad_lines_name_file_and_line(tmp_path, line, complaint):
    with pytest.raises(ConfigError) as error:
        parse(f"# header\n{line}\n", tmp_path)
    assert "10-site.omero line 2" in str(error.value)
    assert complaint in str(error.value)


def test_append_to_non_list_is_an_error(schema):
    ops = [
        Op("set", "omero.web.apps", '{"a": 1}', "first"),
        Op("append", "omero.web.apps", '"b"', "second"),
    ]
    with pytest.raises(ConfigError, match="second.*not a list"):
        apply_ops(ops, schema)
