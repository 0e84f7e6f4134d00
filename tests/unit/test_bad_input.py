"""Invalid input: non-zero exit, a message naming the variable or file, nothing secret, nothing written."""

import pytest

SECRET = "hunter2-do-not-print"


@pytest.mark.parametrize(
    "variables, names, says",
    [
        ({"CONFIG_omero_web_debug": "yes"}, ["CONFIG_omero_web_debug"], "true or false"),
        ({"CONFIG_omero_web_debug": "on"}, ["CONFIG_omero_web_debug"], "not a boolean"),
        ({"CONFIG_omero_web_server__list": "[[bad"}, ["CONFIG_omero_web_server__list"], "valid JSON"),
        ({"CONFIG_omero_web_server__list": '{"a": 1}'}, ["CONFIG_omero_web_server__list"], "JSON list"),
        ({"CONFIG_omero_web_server__list": '[["h", "4064"]]'}, ["CONFIG_omero_web_server__list"], "[host, port"),
        ({"CONFIG_omero_web_wsgi__workers": "many"}, ["CONFIG_omero_web_wsgi__workers"], "whole number"),
        ({"CONFIG_omero_web_wsgi__workers": "0"}, ["CONFIG_omero_web_wsgi__workers"], "at least 1"),
        ({"CONFIG_omero_web_application__server_port": "70000"}, ["application__server_port"], "65535"),
        ({"CONFIG_omero_web_secret__key": ""}, ["CONFIG_omero_web_secret__key"], "empty value"),
        ({"CONFIG_omero_web_sesion__engine": "x"}, ["CONFIG_omero_web_sesion__engine"], "omero.web.session_engine"),
        ({"CONFIG_omero_web_debgu": "true"}, ["CONFIG_omero_web_debgu"], "Did you mean omero.web.debug"),
        ({"CONFIG_omero_web_secret__key_FILE": "/nonexistent/key"}, ["secret__key_FILE"], "cannot read"),
        (
            {"CONFIG_omero_web_debug": "true", "CONFIG_omero_web_debug_FILE": "/x"},
            ["CONFIG_omero_web_debug", "CONFIG_omero_web_debug_FILE"],
            "keep only one",
        ),
        ({"CONFIG_omero_web_prefix": "omero"}, ["CONFIG_omero_web_prefix"], "must start with '/'"),
        ({"OMERO_WEB_PREFIX": "omero"}, ["OMERO_WEB_PREFIX"], "must start with '/'"),
        ({"OMEROHOST": "omero.example.org", "OMEROPORT": "abc"}, ["OMEROPORT"], "port number"),
        ({"OMEROPORT": "4064"}, ["OMEROPORT", "OMEROHOST"], "set both"),
        ({"CONFIG_omero_web_time__zone": "Mars/Olympus"}, ["CONFIG_omero_web_time__zone"], "time zone"),
        ({"CONFIG_omero_web_public_url__filter": "(unclosed"}, ["public_url__filter"], "regular expression"),
        (
            {"CONFIG_omero_web_session__engine": "django.contrib.sessions.backends.signed_cookies"},
            ["CONFIG_omero_web_session__engine"],
            "invalid",
        ),
        ({"CONFIG_omero_web_application__server": "development"}, ["application__server"], "gunicorn"),
        ({"CONFIG_omero_web_apps": '["no_such_plugin"]'}, ["CONFIG_omero_web_apps"], "not installed"),
        ({"CONFIG_omero_web_wsgi__worker__class": "gevent"}, ["wsgi__worker__class"], "gevent"),
        ({"CONFIG_omero_web_wsgi__worker__class": "eventlet"}, ["wsgi__worker__class"], "sync or gevent"),
        (
            {"CONFIG_omero_web_caches": '{"default": {"LOCATION": "redis://:' + SECRET + '@r"'},
            ["CONFIG_omero_web_caches"],
            "valid JSON",
        ),
    ],
)
def test_refused(check, layout, variables, names, says):
    status, out, err = check(**variables)
    assert status == 2
    assert "nothing was started" in err
    for name in names:
        assert name in err
    assert says in err
    assert SECRET not in out + err
    omerodir = layout[0]
    assert not (omerodir / "etc" / "grid" / "config.xml").exists()


def test_all_problems_reported_at_once(check):
    status, _, err = check(CONFIG_omero_web_debug="yes", CONFIG_omero_web_page__size="x")
    assert status == 2
    assert "CONFIG_omero_web_debug" in err and "CONFIG_omero_web_page__size" in err


def test_secret_file_value_never_printed(check, tmp_path):
    secret = tmp_path / "workers"
    secret.write_text(SECRET)
    status, out, err = check(CONFIG_omero_web_wsgi__workers_FILE=str(secret))
    assert status == 2
    assert "CONFIG_omero_web_wsgi__workers_FILE" in err
    assert SECRET not in out + err


@pytest.mark.parametrize(
    "content, where",
    [
        ("config set omero.web.debug yes\n", "bad.omero line 1"),
        ("\nconfig set omero.web.nosuchkey 1\n", "bad.omero line 2"),
        ("web start\n", "bad.omero line 1"),
    ],
)
def test_refused_file_lines(check, layout, content, where):
    (layout[1] / "bad.omero").write_text(content)
    status, _, err = check()
    assert status == 2
    assert where in err


def test_other_commands_still_run_with_a_warning(layout, capsys, monkeypatch):
    import entrypoint

    ran = []
    monkeypatch.setattr(entrypoint.os, "execvpe", lambda cmd, argv, env: ran.append(argv))
    status = entrypoint.main(["entrypoint.py", "bash", "-c", "true"], {**layout[2], "CONFIG_omero_web_debug": "yes"})
    assert status == 0
    assert ran == [["bash", "-c", "true"]]
    assert "running the command anyway" in capsys.readouterr().err
