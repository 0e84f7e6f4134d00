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
