"""Shortcuts on top of omero-web's keys: Redis sessions, the public URL, the public user, CORS, logging."""

import json
import re

import pytest
import redis

from entrypoint import ConfigError, configure, gunicorn_environ, render_config

CORS_MIDDLEWARE = "corsheaders.middleware.CorsMiddleware"
CORS_POST_CSRF = "corsheaders.middleware.CorsPostCsrfMiddleware"


def build(layout, schema, **variables):
    """The configuration a container start resolves (the entrypoint's own configure step)."""
    return configure({**layout[2], **variables}).config


def value(config, key):
    return json.loads(config[key].value)


def test_logs_go_to_the_console_by_default(layout, schema):
    settings = dict(value(build(layout, schema), "omero.web.django_additional_settings"))
    handler = settings["LOGGING"]["handlers"]["console"]
    assert handler["class"] == "logging.StreamHandler"
    assert settings["LOGGING"]["root"]["handlers"] == ["console"]


def test_redis_url_switches_cache_and_sessions_together(layout, schema):
    config = build(layout, schema, REDIS_URL="redis://:pw-secret@redis:6379/0")
    cache = value(config, "omero.web.caches")["default"]
    assert cache["BACKEND"] == "django_redis.cache.RedisCache"
    assert cache["LOCATION"] == "redis://:pw-secret@redis:6379/0"
    assert cache["OPTIONS"] == {"SOCKET_CONNECT_TIMEOUT": 2, "SOCKET_TIMEOUT": 2}
    assert config["omero.web.session_engine"].value == "django.contrib.sessions.backends.cache"
    assert "pw-secret" not in render_config(config)
    assert gunicorn_environ(config, {})["OMERO_WEB_REDIS_WATCH_URL"] == "redis://:pw-secret@redis:6379/0"


def test_redis_watch_follows_any_redis_cache(layout, schema):
    assert "OMERO_WEB_REDIS_WATCH_URL" not in gunicorn_environ(
        build(layout, schema), {"OMERO_WEB_REDIS_WATCH_URL": "x"}
    )
    caches = '{"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": ["redis://r:1/2"]}}'
    config = build(layout, schema, CONFIG_omero_web_caches=caches)
    assert gunicorn_environ(config, {})["OMERO_WEB_REDIS_WATCH_URL"] == "redis://r:1/2"


def test_redis_url_file(layout, schema, tmp_path):
    secret = tmp_path / "redis-url"
    secret.write_text("redis://:pw@redis:6379/1\n")
    config = build(layout, schema, REDIS_URL_FILE=str(secret))
    assert value(config, "omero.web.caches")["default"]["LOCATION"] == "redis://:pw@redis:6379/1"


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("redis://r:6379/0", "redis://:p%40ss%3Aw%2Frd%20%22x@r:6379/0"),
        ("rediss://user@r:6380/1", "rediss://user:p%40ss%3Aw%2Frd%20%22x@r:6380/1"),
    ],
)
def test_redis_password_file_joins_the_url_quoted(layout, schema, tmp_path, url, expected):
    """The chart's Secret holds only the password; any character in it keeps the URL valid."""
    secret = tmp_path / "redis-password"
    secret.write_text('p@ss:w/rd "x\n')
    config = build(layout, schema, REDIS_URL=url, REDIS_PASSWORD_FILE=str(secret))
    assert value(config, "omero.web.caches")["default"]["LOCATION"] == expected
    assert config["omero.web.caches"].secret
    assert "p%40ss" not in render_config(config)
    assert redis.Redis.from_url(expected).connection_pool.connection_kwargs["password"] == 'p@ss:w/rd "x'


def test_empty_redis_url_is_unset(layout, schema, tmp_path):
    assert "omero.web.caches" not in build(layout, schema, REDIS_URL="")
    secret = tmp_path / "redis-url"
    secret.write_text("redis://r:6379/0")
    config = build(layout, schema, REDIS_URL="", REDIS_URL_FILE=str(secret))
    assert value(config, "omero.web.caches")["default"]["LOCATION"] == "redis://r:6379/0"


def test_config_variable_beats_redis_shortcut(layout, schema):
    config = build(
        layout,
        schema,
        REDIS_URL="redis://redis:6379/0",
        CONFIG_omero_web_session__engine="django.contrib.sessions.backends.file",
    )
    assert config["omero.web.session_engine"].value == "django.contrib.sessions.backends.file"


def test_https_public_url(layout, schema):
    config = build(layout, schema, OMERO_WEB_PUBLIC_URL="https://OMERO.example.org/omero/")
    assert value(config, "omero.web.csrf_trusted_origins") == ["https://omero.example.org"]
    assert value(config, "omero.web.secure_proxy_ssl_header") == ["HTTP_X_FORWARDED_PROTO", "https"]
    assert config["omero.web.session_cookie_secure"].value == "true"
    assert config["omero.web.csrf_cookie_secure"].value == "true"


def test_http_public_url_only_trusts_the_origin(layout, schema):
    config = build(layout, schema, OMERO_WEB_PUBLIC_URL="http://omero.lan:8080")
    assert value(config, "omero.web.csrf_trusted_origins") == ["http://omero.lan:8080"]
    assert "omero.web.secure_proxy_ssl_header" not in config
    assert "omero.web.session_cookie_secure" not in config


def test_public_url_keeps_origins_from_files(layout, schema):
    (layout[1] / "csrf.omero").write_text("""config set omero.web.csrf_trusted_origins '["https://a.example.org"]'\n""")
    config = build(layout, schema, OMERO_WEB_PUBLIC_URL="https://b.example.org")
    assert value(config, "omero.web.csrf_trusted_origins") == ["https://a.example.org", "https://b.example.org"]


def middleware_classes(config):
    entries = sorted(value(config, "omero.web.middleware"), key=lambda m: m["index"])
    return [m["class"] for m in entries]


def test_no_cors_by_default(layout, schema):
    config = build(layout, schema)
    assert "omero.web.apps" not in config
    assert CORS_MIDDLEWARE not in middleware_classes(config)


@pytest.mark.parametrize(
    "variables",
    [
        {"CONFIG_omero_web_cors__origin__whitelist": '["https://app.example.org"]'},
        {"CONFIG_omero_web_cors__origin__allow__all": "true"},
    ],
)
def test_cors_setting_enables_app_and_middleware_in_documented_order(layout, schema, variables):
    config = build(layout, schema, **variables)
    assert value(config, "omero.web.apps") == ["corsheaders"]
    classes = middleware_classes(config)
    assert classes[0] == "whitenoise.middleware.WhiteNoiseMiddleware"  # index 0
    assert classes[1] == CORS_MIDDLEWARE  # index 0.5, before Django's CommonMiddleware
    assert classes[-1] == CORS_POST_CSRF  # index 10, after CsrfViewMiddleware
    assert classes.index("django.middleware.csrf.CsrfViewMiddleware") < classes.index(CORS_POST_CSRF)
    assert "CORS enabled by CONFIG_omero_web_cors__origin" in config["omero.web.apps"].source


def test_cors_keeps_user_apps_and_is_idempotent(layout, schema):
    (layout[1] / "apps.omero").write_text(
        "config append -- omero.web.apps '\"corsheaders\"'\nconfig append -- omero.web.apps '\"omeroweb.webgateway\"'\n"
    )
    config = build(layout, schema, CONFIG_omero_web_cors__origin__allow__all="true")
    assert value(config, "omero.web.apps") == ["corsheaders", "omeroweb.webgateway"]


def test_cors_allow_all_false_enables_nothing(layout, schema):
    config = build(layout, schema, CONFIG_omero_web_cors__origin__allow__all="false")
    assert "omero.web.apps" not in config


@pytest.mark.parametrize(
    "variables, names, says",
    [
        ({"REDIS_URL": "http://redis:6379"}, ["REDIS_URL"], "not a Redis URL"),
        ({"REDIS_URL": "x", "REDIS_URL_FILE": "/y"}, ["REDIS_URL", "REDIS_URL_FILE"], "keep only one"),
        ({"REDIS_URL_FILE": "/nonexistent"}, ["REDIS_URL_FILE"], "cannot read"),
        ({"REDIS_PASSWORD": "pw"}, ["REDIS_PASSWORD", "REDIS_URL"], "REDIS_URL is not"),
        ({"REDIS_URL": "redis://:a@r:1/0", "REDIS_PASSWORD": "b"}, ["REDIS_PASSWORD", "REDIS_URL"], "already has"),
        ({"OMERO_WEB_PUBLIC_URL": "omero.example.org"}, ["OMERO_WEB_PUBLIC_URL"], "https://omero.example.org"),
        (
            {"CONFIG_omero_web_session__engine": "django.contrib.sessions.backends.cache"},
            ["CONFIG_omero_web_session__engine"],
            "DummyCache",
        ),
        (
            {"CONFIG_omero_web_cors__origin__whitelist": '["app.example.org"]'},
            ["CONFIG_omero_web_cors__origin__whitelist"],
            "e.g. https://app.example.org",
        ),
        (
            {"CONFIG_omero_web_cors__origin__whitelist": '["https://app.example.org/"]'},
            ["CONFIG_omero_web_cors__origin__whitelist"],
            "no path",
        ),
    ],
)
def test_refused(check, variables, names, says):
    status, out, err = check(**variables)
    assert status == 2
    for name in names:
        assert name in err
    assert says in err


# --- A public data site: OMERO_WEB_PUBLIC_USER ------------------------------------------------

PUBLIC_PATHS = ["/webclient/", "/webclient/api/containers/", "/webgateway/render_thumbnail/1/",
                "/webgateway/imgData/1/", "/webgateway/render_image_region/1/0/0/", "/api/v0/m/projects/",
                "/iviewer/", "/webadmin/myphoto/", "/webclient/render_thumbnail/size/96/1/"]  # fmt: skip
KEPT_OUT = ["/webadmin/", "/webadmin/experimenters/", "/webgateway/archived_files/download/1/",
            "/webgateway/download_as/", "/webclient/action/addnewcontainer/", "/webclient/script_ui/1/",
            "/webclient/script_run/1/", "/webgateway/applyOwnersRDef/", "/webgateway/saveImgRDef/1/",
            "/webclient/render_image_download/1/", "/webclient/12/render_image_download/1/",
            "/webclient/download_original_file/1/", "/webgateway/su/root/", "/webclient/annotate_tags/"]  # fmt: skip


def public_site(layout, schema, tmp_path, **variables):
    secret = tmp_path / "public-password"
    secret.write_text("pub-Secret\n")
    return build(
        layout, schema, OMERO_WEB_PUBLIC_USER="public", OMERO_WEB_PUBLIC_PASSWORD_FILE=str(secret), **variables
    )


def test_public_user_turns_on_public_mode_with_its_password_from_a_file(layout, schema, tmp_path):
    config = public_site(layout, schema, tmp_path)
    assert config["omero.web.public.enabled"].value == "true"
    assert config["omero.web.public.user"].value == "public"
    assert config["omero.web.public.password"].value == "pub-Secret"
    assert config["omero.web.public.password"].secret
    assert config["omero.web.public.get_only"].value == "true"
    assert "pub-Secret" not in render_config(config)


@pytest.mark.parametrize("prefix", ["", "/omero"])
def test_public_filter_lets_the_public_browse_and_view_under_the_prefix(layout, schema, tmp_path, prefix):
    variables = {"OMERO_WEB_PREFIX": prefix} if prefix else {}
    config = public_site(layout, schema, tmp_path, **variables)
    url_filter = re.compile(config["omero.web.public.url_filter"].value)  # OMERO.web: search(request.path)
    assert [p for p in PUBLIC_PATHS if not url_filter.search(prefix + p)] == []
    assert [p for p in KEPT_OUT if url_filter.search(prefix + p)] == []
    if prefix:  # the path without the prefix is not OMERO.web's
        assert not url_filter.search("/webclient/")


def test_a_public_filter_of_your_own_is_kept(layout, schema, tmp_path):
    config = public_site(layout, schema, tmp_path, CONFIG_omero_web_public_url__filter="^/webgateway/render_")
    assert config["omero.web.public.url_filter"].value == "^/webgateway/render_"
    (layout[1] / "public.omero").write_text("config set omero.web.public.url_filter '^/iviewer/'\n")
    assert public_site(layout, schema, tmp_path)["omero.web.public.url_filter"].value == "^/iviewer/"


def test_no_public_user_no_public_mode(layout, schema):
    config = build(layout, schema, OMERO_WEB_PUBLIC_USER="")
    assert not any(key.startswith("omero.web.public.") for key in config)


@pytest.mark.parametrize(
    ("variables", "message"),
    [
        ({"OMERO_WEB_PUBLIC_USER": "public"}, "OMERO_WEB_PUBLIC_USER=public needs the user's password: set "
                                              "OMERO_WEB_PUBLIC_PASSWORD_FILE"),
        ({"OMERO_WEB_PUBLIC_PASSWORD": "x"}, "OMERO_WEB_PUBLIC_PASSWORD is set but OMERO_WEB_PUBLIC_USER is not"),
        ({"OMERO_WEB_PUBLIC_USER": "public", "OMERO_WEB_PUBLIC_PASSWORD_FILE": "/nowhere/pw"},
         "OMERO_WEB_PUBLIC_PASSWORD_FILE: cannot read the file '/nowhere/pw'"),
    ],
)  # fmt: skip
def test_public_user_mistakes_are_named(layout, schema, variables, message):
    with pytest.raises(ConfigError) as error:
        build(layout, schema, **variables)
    assert any(message in problem for problem in error.value.problems), error.value.problems
    assert len(error.value.problems) == 1


def test_public_mode_adds_the_cache_middleware_inside_the_session_middleware(layout, schema, tmp_path):
    """The middleware that marks the public user's answers for the nginx cache: whenever public mode
    is on (by OMERO_WEB_PUBLIC_USER or a CONFIG_ variable), once, right after Django's sessions."""
    classes = middleware_classes(public_site(layout, schema, tmp_path))
    session = classes.index("django.contrib.sessions.middleware.SessionMiddleware")
    assert classes[session + 1] == "public_cache.PublicCacheMiddleware"
    assert classes.count("public_cache.PublicCacheMiddleware") == 1
    by_config = build(layout, schema, CONFIG_omero_web_public_enabled="true")
    assert "public_cache.PublicCacheMiddleware" in middleware_classes(by_config)
    for off in (build(layout, schema), build(layout, schema, CONFIG_omero_web_public_enabled="false")):
        assert "omero.web.middleware" not in off or "public_cache" not in off["omero.web.middleware"].value
