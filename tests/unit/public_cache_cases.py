"""Cases of omeroweb/public_cache.py, the middleware that tells nginx's cache which answers were made
for the public user, with Django's own requests, responses and (signed-cookie) sessions: which
answer gets the mark, and when the bypass cookie is set and removed. Each case runs in a Python of
its own (test_public_cache.py), so that its Django settings do not reach the other unit tests:
`python public_cache_cases.py NAME`."""

import os
import sys

import django
from django.conf import settings

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "omeroweb"))
from public_cache import BYPASS_COOKIE, MARKER_HEADER, PublicCacheMiddleware  # noqa: E402

if not settings.configured:
    settings.configure(SECRET_KEY="unit-test", SESSION_ENGINE="django.contrib.sessions.backends.signed_cookies",
                       SESSION_COOKIE_SECURE=True, SESSION_EXPIRE_AT_BROWSER_CLOSE=True)  # fmt: skip
    django.setup()

from django.contrib.sessions.middleware import SessionMiddleware  # noqa: E402
from django.http import HttpResponse  # noqa: E402
from django.test import RequestFactory  # noqa: E402

PUBLIC = {"server_id": 1, "is_secure": False, "is_public": True, "omero_session_key": "k1", "user_id": 3}
USER = dict(PUBLIC, is_public=False, omero_session_key="k2", user_id=2)


def answer(connector=..., cookies=None, view_header=False):
    """A request through SessionMiddleware and the middleware; the view (like OMERO.web's
    login_required ones) reads the session, and leaves `connector` in it (... = none)."""

    def view(request):
        if connector is not ...:
            request.session["connector"] = connector
        request.session.get("connector")
        response = HttpResponse(b"pixels", content_type="image/jpeg")
        if view_header:
            response[MARKER_HEADER] = "1"
        return response

    request = RequestFactory().get("/webgateway/render_thumbnail/1/")
    request.COOKIES.update(cookies or {})
    return SessionMiddleware(PublicCacheMiddleware(view))(request)


def test_the_public_users_answer_is_marked_and_sets_no_bypass_cookie():
    response = answer(PUBLIC)
    assert response[MARKER_HEADER] == "1"
    assert BYPASS_COOKIE not in response.cookies


def test_no_other_answer_is_marked_even_if_the_view_says_so():
    for connector in (USER, ...):
        assert MARKER_HEADER not in answer(connector, view_header=True), connector


def test_a_logged_in_user_gets_the_bypass_cookie_once_like_the_session_cookie():
    cookie = answer(USER).cookies[BYPASS_COOKIE]
    assert cookie.value == "bypass" and cookie["httponly"] and cookie["secure"] and cookie["path"] == "/"
    assert cookie["max-age"] == ""  # ends with the browser session, as the session cookie does
    assert BYPASS_COOKIE not in answer(USER, cookies={BYPASS_COOKIE: "bypass"}).cookies


def test_the_bypass_cookie_is_removed_without_a_login():
    for connector in (PUBLIC, ...):
        removed = answer(connector, cookies={BYPASS_COOKIE: "bypass"}).cookies[BYPASS_COOKIE]
        assert removed.value == "" and removed["max-age"] == 0, connector


def test_an_answer_that_never_read_the_session_is_left_alone():
    request = RequestFactory().get("/webclient/login/")
    request.COOKIES[BYPASS_COOKIE] = "bypass"
    response = SessionMiddleware(PublicCacheMiddleware(lambda r: HttpResponse(b"login page")))(request)
    assert MARKER_HEADER not in response and BYPASS_COOKIE not in response.cookies


if __name__ == "__main__":
    globals()[sys.argv[1]]()
