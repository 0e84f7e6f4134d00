"""OMERO_WEB_PLUGINS presets, plugin settings validation, and sites' own plugin .omero files."""

import json
import os
import re
import shutil
import sys

import pytest
from conftest import BAKED_DEFAULTS, REPO

from entrypoint import (
    DEFAULTS_DIR,
    PRESETS_SUBDIR,
    ConfigError,
    build_time_ops,
    configure,
    list_presets,
    load_schema,
    select_presets,
)
from official_standalone import MOUNTED_AS, OFFICIAL_APPS, OFFICIAL_FILE, REDUCED_APPS, REDUCED_FILE

PRESETS = list_presets(BAKED_DEFAULTS)


def standalone_default():
    """The omero-web-standalone image's default plugin set (its Dockerfile is the source)."""
    with open(os.path.join(REPO, "docker", "standalone.Dockerfile")) as handle:
        return re.search(r"OMERO_WEB_DEFAULT_PLUGINS=(\S+)", handle.read()).group(1)


STANDALONE = {"OMERO_WEB_DEFAULT_PLUGINS": standalone_default()}  # what the standalone image sets


def build(layout, user_files=(), **variables):
    """The configuration a container start resolves (the entrypoint's own configure step), with
    ``user_files`` mounted: a path, or (path, name it is mounted as)."""
    _, config_dir, base = layout
    for each in user_files:
        path, name = each if isinstance(each, tuple) else (each, os.path.basename(each))
        shutil.copy(path, config_dir / name)
    return configure({**base, **variables}).config


def value(config, key):
    return json.loads(config[key].value) if key in config else None


def test_every_preset_enables_an_installed_app_and_nothing_else_by_default(layout):
    assert sorted(PRESETS) == ["autotag", "figure", "fpbioimage", "gallery", "iviewer", "mapr", "parade", "tagsearch"]
    with open(os.path.join(REPO, "docker", "web.Dockerfile")) as handle:  # where the image has them
        assert f"COPY omeroweb/{PRESETS_SUBDIR}/ {DEFAULTS_DIR}/{PRESETS_SUBDIR}/" in handle.read()
    for name in PRESETS:
        apps = value(build(layout, OMERO_WEB_PLUGINS=name), "omero.web.apps")
        assert len(apps) == 1 and apps[0].startswith("omero_"), (name, apps)
        __import__(apps[0])  # installed (the host venv uses the image's lock)


def test_none_and_empty_leave_the_core_alone(layout):
    core = build(layout)
    for chosen in ("none", "", " NONE "):
        config = build(layout, OMERO_WEB_PLUGINS=chosen)
        assert {k: e.value for k, e in config.items()} == {k: e.value for k, e in core.items()}
    assert "omero.web.apps" not in core and "omero.web.viewer.view" not in core


def test_named_plugins_get_what_their_documentation_prescribes(layout):
    config = build(layout, OMERO_WEB_PLUGINS="iviewer, figure,omero-parade,omero_mapr")
    assert value(config, "omero.web.apps") == ["omero_iviewer", "omero_figure", "omero_parade", "omero_mapr"]
    assert config["omero.web.viewer.view"].value == "omero_iviewer.views.index"
    assert [entry[0] for entry in value(config, "omero.web.open_with")] == [
        "Image viewer",  # OMERO.web's own entry stays first
        "omero_iviewer",
        "omero_figure",
    ]
    links = [link[0] for link in value(config, "omero.web.ui.top_links")]
    assert links == ["Data", "History", "Help", "Figure", "Any Value"]
    assert value(config, "omero.web.ui.center_plugins") == [["Parade", "omero_parade/init.js.html", "omero_parade"]]
    assert value(config, "omero.web.mapr.config")[0]["menu"] == "anyvalue"
    assert "/plugins/iviewer.omero line" in config["omero.web.viewer.view"].source


def test_all_enables_every_preset(layout):
    apps = value(build(layout, OMERO_WEB_PLUGINS="all"), "omero.web.apps")
    assert sorted(apps) == sorted(f"omero_{name}" for name in PRESETS)


@pytest.mark.parametrize(
    "chosen, says",
    [
        ("ivewer", ["'ivewer' is not a plugin of this image. Did you mean iviewer?", "autotag, figure,"]),
        ("figure,zarr", ["'zarr' is not a plugin of this image.", "all or none"]),
        ("all,figure", ["use all or none alone"]),
        ("none,figure", ["use all or none alone"]),
    ],
)
def test_unknown_or_mixed_names_are_refused_with_the_valid_ones(check, chosen, says):
    status, out, err = check(OMERO_WEB_PLUGINS=chosen)
    assert status == 2 and out == ""
    assert "OMERO_WEB_PLUGINS" in err
    for text in says:
        assert text in err


def test_site_files_and_config_variables_win_over_presets(layout, tmp_path):
    links = '[["Data", "webindex"], ["Figure", "figure_index"]]'
    site = tmp_path / "50-site.omero"
    site.write_text(f"config set omero.web.ui.top_links '{links}'\n")
    config = build(
        layout,
        [site],
        OMERO_WEB_PLUGINS="figure,iviewer",
        CONFIG_omero_web_viewer_view="webclient.views.image_viewer",
    )
    assert value(config, "omero.web.ui.top_links") == json.loads(links)
    assert config["omero.web.viewer.view"].value == "webclient.views.image_viewer"
    config = build(layout, OMERO_WEB_PLUGINS="figure", CONFIG_omero_web_apps='["omero_iviewer"]')
    assert value(config, "omero.web.apps") == ["omero_iviewer"]


def test_a_site_appending_a_preset_app_itself_gets_it_once(layout, tmp_path):
    site = tmp_path / "10-iviewer.omero"
    site.write_text(
        "config append omero.web.apps '\"omero_iviewer\"'\n"
        'config append omero.web.open_with \'["omero_iviewer", "omero_iviewer_index", '
        '{"script_url": "omero_iviewer/openwith.js", "supported_objects": ["images", "dataset", "well"], '
        '"label": "OMERO.iviewer"}]\'\n'
    )
    config = build(layout, [site], OMERO_WEB_PLUGINS="iviewer")
    assert value(config, "omero.web.apps") == ["omero_iviewer"]
    assert [entry[0] for entry in value(config, "omero.web.open_with")] == ["Image viewer", "omero_iviewer"]
    config = build(layout, CONFIG_omero_web_apps='["omero_figure", "omero_figure"]')
    assert value(config, "omero.web.apps") == ["omero_figure"]


@pytest.mark.parametrize("image", ["omero-web", "omero-web-standalone"])
def test_the_official_standalone_file_gives_the_official_apps(layout, image):
    """Mounted unchanged as 01-default-webapps.omero, on omero-web or on omero-web-standalone."""
    config = build(layout, [(OFFICIAL_FILE, MOUNTED_AS)], **(STANDALONE if image == "omero-web-standalone" else {}))
    assert value(config, "omero.web.apps") == OFFICIAL_APPS
    assert [m["class"] for m in value(config, "omero.web.middleware")].count(
        "whitenoise.middleware.WhiteNoiseMiddleware"
    ) == 1
    assert [entry[0] for entry in value(config, "omero.web.open_with")] == [
        "Image viewer",
        "omero_figure",
        "omero_iviewer",
    ]
    assert [p[0] for p in value(config, "omero.web.ui.center_plugins")] == ["Parade", "Auto Tag"]
    links = [link[0] for link in value(config, "omero.web.ui.top_links")]
    assert links == ["Data", "History", "Mapr", "Figure", "Help", "Tag Search"]


def without_sources(config):
    return {key: entry.value for key, entry in config.items()}


@pytest.mark.parametrize("site_file", [OFFICIAL_FILE, REDUCED_FILE])
def test_a_mounted_default_webapps_file_replaces_the_standalone_default_set(layout, site_file):
    """As in the official standalone image, where the mount replaces its baked file: the site's
    01-default-webapps.omero enables exactly its own plugins, none of the image's default set."""
    on_standalone = build(layout, [(site_file, MOUNTED_AS)], **STANDALONE)
    assert value(on_standalone, "omero.web.apps") == (OFFICIAL_APPS if site_file == OFFICIAL_FILE else REDUCED_APPS)
    # Exactly the file's configuration: the same as the file on omero-web, which has no default set.
    assert without_sources(on_standalone) == without_sources(build(layout, [(site_file, MOUNTED_AS)]))


def test_the_reduced_file_keeps_the_removed_plugins_off(layout):
    config = build(layout, [(REDUCED_FILE, MOUNTED_AS)], **STANDALONE)
    assert value(config, "omero.web.apps") == ["omero_figure", "omero_iviewer"]
    assert "omero.web.mapr.config" not in config
    assert value(config, "omero.web.ui.center_plugins") is None  # no parade, no autotag panel
    assert [link[0] for link in value(config, "omero.web.ui.top_links")] == ["Data", "History", "Figure", "Help"]


def test_plugins_named_explicitly_are_added_to_a_mounted_default_webapps_file(layout):
    config = build(layout, [(REDUCED_FILE, MOUNTED_AS)], OMERO_WEB_PLUGINS="parade", **STANDALONE)
    assert value(config, "omero.web.apps") == ["omero_parade", "omero_figure", "omero_iviewer"]


def test_only_that_file_name_replaces_the_default_set(layout):
    """A site file of another name adds to the image's default set, as before."""
    config = build(layout, [(REDUCED_FILE, "50-site.omero")], **STANDALONE)
    assert value(config, "omero.web.apps") == OFFICIAL_APPS


def test_standalone_default_is_the_official_set(layout):
    config = build(layout, **STANDALONE)
    assert value(config, "omero.web.apps") == OFFICIAL_APPS
    assert value(build(layout, OMERO_WEB_PLUGINS="figure", **STANDALONE), "omero.web.apps") == ["omero_figure"]


@pytest.mark.parametrize(
    "variables, says",
    [
        (
            {"CONFIG_omero_web_iviewer_max__projection__byte": "1"},
            "omero.web.iviewer.max_projection_byte is not an OMERO.web setting. Did you mean "
            "omero.web.iviewer.max_projection_bytes (CONFIG_omero_web_iviewer_max__projection__bytes)?",
        ),
        ({"CONFIG_omero_web_iviewer_max__projection__bytes": "lots"}, "is invalid"),
        ({"CONFIG_omero_web_mapr_config": "{menu: gene}"}, "omero.web.mapr.config='{menu: gene}' is invalid"),
        ({"CONFIG_omero_figure_max__active__channels": "ten"}, "omero.figure.max_active_channels='ten' is invalid"),
        ({"CONFIG_omero_web_gallery_categry__queries": "{}"}, "Did you mean omero.web.gallery.category_queries"),
    ],
)
def test_plugin_settings_are_validated_from_the_plugins_own_definitions(check, variables, says):
    status, _, err = check(OMERO_WEB_PLUGINS="all", **variables)
    assert status == 2
    assert says in err


def test_plugin_settings_are_accepted_when_right(check):
    status, out, err = check(
        OMERO_WEB_PLUGINS="all",
        CONFIG_omero_web_iviewer_max__projection__bytes="268435456",
        CONFIG_omero_figure_max__active__channels="15",
        CONFIG_omero_web_gallery_title="Our images",
    )
    assert status == 0, err
    assert "omero.web.iviewer.max_projection_bytes=268435456" in out


def test_a_plugin_setting_without_default_must_be_set(check, tmp_path, monkeypatch):
    """Any plugin (here a made-up one of a derived image): settings read from its *_settings module."""
    package = tmp_path / "site" / "omero_needs_admin"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "needs_settings.py").write_text(
        "import sys\n"
        "from omeroweb.settings import process_custom_settings\n"
        "def not_empty(value):\n"
        "    if not value:\n"
        "        raise ValueError('empty')\n"
        "    return value\n"
        "NEEDS_SETTINGS_MAPPING = {\n"
        "    'omero.web.needs.admin.user': ['NEEDS_ADMIN', '', not_empty, None],\n"
        "    'omero.web.needs.color': ['NEEDS_COLOR', 'red', str, None],\n"
        "}\n"
        "process_custom_settings(sys.modules[__name__], 'NEEDS_SETTINGS_MAPPING')\n"
    )
    monkeypatch.syspath_prepend(str(package.parent))
    apps = '["omero_needs_admin"]'
    status, _, err = check(CONFIG_omero_web_apps=apps)
    assert status == 2
    assert (
        "omero_needs_admin needs omero.web.needs.admin.user, which has no default: "
        "set CONFIG_omero_web_needs_admin_user" in err
    )
    status, _, err = check(CONFIG_omero_web_apps=apps, CONFIG_omero_web_needs_colour="blue")
    assert "Did you mean omero.web.needs.color" in err
    status, _, err = check(CONFIG_omero_web_apps=apps, CONFIG_omero_web_needs_admin_user="root")
    assert status == 0, err
    # Image builds (collectstatic) load the plugin with a throw-away value instead.
    ops = build_time_ops([], load_schema(["omero_needs_admin"]))
    assert [(op.key, op.value) for op in ops] == [("omero.web.needs.admin.user", "placeholder")]
    sys.modules.pop("omero_needs_admin.needs_settings", None)
    sys.modules.pop("omero_needs_admin", None)


def test_select_presets_keeps_the_order_given_and_ignores_repeats():
    presets = {"a": "/p/a.omero", "b": "/p/b.omero"}
    assert select_presets("b,a,b", presets) == ["/p/b.omero", "/p/a.omero"]
    assert select_presets("ALL", presets) == ["/p/a.omero", "/p/b.omero"]
    with pytest.raises(ConfigError):
        select_presets("c", presets)
