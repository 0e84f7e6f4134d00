"""CONFIG_* variable names <-> OMERO property keys (the official image's rule)."""

import string

import pytest
from hypothesis import given
from hypothesis import strategies as st

from entrypoint import env_to_key, key_to_env

segment = st.text(string.ascii_lowercase + string.digits + "_", min_size=1, max_size=12).filter(
    lambda s: not s.startswith("_")
)
keys = st.lists(segment, min_size=1, max_size=6).map(".".join)
env_names = st.text(string.ascii_letters + string.digits + "_", min_size=1, max_size=40)


@pytest.mark.parametrize(
    "env, key",
    [
        ("CONFIG_omero_web_debug", "omero.web.debug"),
        ("CONFIG_omero_web_secret__key", "omero.web.secret_key"),
        ("CONFIG_omero_web_server__list", "omero.web.server_list"),
        ("CONFIG_omero_web_application__server_port", "omero.web.application_server.port"),
        ("CONFIG_omero_web_wsgi__worker__class", "omero.web.wsgi_worker_class"),
        ("CONFIG_omero_web_public_url__filter", "omero.web.public.url_filter"),
    ],
)
def test_known_names(env, key):
    assert env_to_key(env[len("CONFIG_") :]) == key
    assert key_to_env(key) == env


@given(keys)
def test_key_round_trip(key):
    env = key_to_env(key)
    assert env.startswith("CONFIG_")
    assert "." not in env
    assert env_to_key(env[len("CONFIG_") :]) == key


@given(env_names)
def test_env_round_trip(name):
    assert key_to_env(env_to_key(name)) == "CONFIG_" + name


def test_nginx_variables_agree_across_start_script_compose_and_docs():
    """nginx/start.sh is the source of truth for the sidecar's variables: each one it checks is
    passed by compose.yaml, shown in .env.example and documented, and nothing else is."""
    import os
    import re

    import yaml

    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    read = lambda *path: open(os.path.join(root, *path)).read()  # noqa: E731
    checked = set(re.findall(r"^check (\w+) ", read("nginx", "start.sh"), re.M))
    assert "NGINX_PROXY_CONNECT_TIMEOUT" in checked
    passed = set(yaml.safe_load(read("compose.yaml"))["services"]["nginx"]["environment"])
    assert passed == checked - {"NGINX_LISTEN_PORT"}  # the port is the image's contract (8080)
    example, docs = read(".env.example"), read("docs", "configuration.md")
    for name in checked:
        assert f"`{name}`" in docs or f"`{name}`," in docs, name
        if name in passed and name.startswith("NGINX_"):
            assert f"#{name}=" in example, name
