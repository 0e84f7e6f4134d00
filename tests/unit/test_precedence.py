"""Precedence: baked defaults < user .omero files (lexical) < shortcuts < CONFIG_* / CONFIG_*_FILE."""

import json

import entrypoint
from entrypoint import configure


def build(layout, schema, **variables):
    """The configuration a container start resolves (the entrypoint's own configure step)."""
    return configure({**layout[2], **variables}).config


def test_baked_defaults(layout, schema):
    config = build(layout, schema)
    assert config["omero.web.application_server.host"].value == "0.0.0.0"
    assert config["omero.web.static_root"].value == "/opt/omero/web/static"
    classes = [m["class"] for m in json.loads(config["omero.web.middleware"].value)]
    assert classes[-1] == "whitenoise.middleware.WhiteNoiseMiddleware"
    assert len(classes) == 7


def test_user_files_in_lexical_order_override_defaults(layout, schema):
    _, config_dir, _ = layout
    (config_dir / "20-late.omero").write_text("config set omero.web.page_size 30\n")
    (config_dir / "10-early.omero").write_text(
        "config set omero.web.page_size 10\nconfig set omero.web.application_server.host 127.0.0.1\n"
    )
    (config_dir / "ignored.txt").write_text("config set omero.web.page_size 99\n")
    config = build(layout, schema)
    assert config["omero.web.page_size"].value == "30"
    assert config["omero.web.page_size"].source.endswith("20-late.omero line 1")
    assert config["omero.web.application_server.host"].value == "127.0.0.1"


def test_omerohost_beats_files_and_config_beats_omerohost(layout, schema):
    _, config_dir, _ = layout
    (config_dir / "server.omero").write_text("""config set omero.web.server_list '[["file", 4064, "f"]]'\n""")
    config = build(layout, schema, OMEROHOST="omero.example.org")
    assert json.loads(config["omero.web.server_list"].value) == [["omero.example.org", 4064, "omero"]]
    config = build(layout, schema, OMEROHOST="omero.example.org", OMEROPORT="14064")
    assert json.loads(config["omero.web.server_list"].value) == [["omero.example.org", 14064, "omero"]]
    config = build(layout, schema, OMEROHOST="ignored", CONFIG_omero_web_server__list='[["env", 4064, "e"]]')
    assert json.loads(config["omero.web.server_list"].value) == [["env", 4064, "e"]]
    assert config["omero.web.server_list"].source == "CONFIG_omero_web_server__list"


def test_prefix_shortcut_sets_prefix_and_static_url(layout, schema):
    config = build(layout, schema, OMERO_WEB_PREFIX="/omero/")
    assert config["omero.web.prefix"].value == "/omero"
    assert config["omero.web.static_url"].value == "/omero/static/"
    config = build(layout, schema, OMERO_WEB_PREFIX="/omero", CONFIG_omero_web_static__url="/cdn/")
    assert config["omero.web.static_url"].value == "/cdn/"


def test_empty_or_root_prefix_means_no_prefix(layout, schema):
    for value in ("", "/", "  "):
        config = build(layout, schema, OMERO_WEB_PREFIX=value)
        assert "omero.web.prefix" not in config
        assert "omero.web.static_url" not in config
    assert "omero.web.prefix" not in build(layout, schema, CONFIG_omero_web_prefix="/")


def test_config_prefix_trailing_slash_is_normalised_like_upstream_static_url(layout, schema):
    config = build(layout, schema, CONFIG_omero_web_prefix="/omero//")
    assert config["omero.web.prefix"].value == "/omero"
    assert "omero.web.static_url" not in config  # as in the official image: set it yourself


def test_file_variable(layout, schema, tmp_path):
    secret = tmp_path / "secret"
    secret.write_text("a-very-secret-key\n")
    config = build(layout, schema, CONFIG_omero_web_secret__key_FILE=str(secret))
    entry = config["omero.web.secret_key"]
    assert entry.value == "a-very-secret-key"
    assert entry.secret and entry.source == "CONFIG_omero_web_secret__key_FILE"
    rendered = entrypoint.render_config(config)
    assert "a-very-secret-key" not in rendered
    assert "omero.web.secret_key=********" in rendered


def test_non_web_keys_pass_through(layout, schema):
    config = build(layout, schema, CONFIG_omero_qa_feedback="https://qa.example.org", CONFIG_Ice_Default_Host="x")
    assert config["omero.qa.feedback"].value == "https://qa.example.org"
    assert config["Ice.Default.Host"].value == "x"


def test_check_prints_effective_config_with_sources(check):
    status, out, err = check(CONFIG_omero_web_debug="true", CONFIG_omero_web_secret__key="hunter2-secret")
    assert status == 0, err
    assert "omero.web.debug=true    # CONFIG_omero_web_debug" in out
    assert "hunter2-secret" not in out + err
    assert "# gunicorn: gunicorn --config" in out
