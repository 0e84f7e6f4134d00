"""Django middleware of a public data site: tells the nginx cache (NGINX_CACHE) which answers it may keep.

The entrypoint adds it whenever ``omero.web.public.enabled`` is true, inside Django's
SessionMiddleware. For a request whose session was used (every view that needs a login does):

- the answer was made for the public user (the session's OMERO connection is the public one):
  it carries ``X-OMERO-Web-Public: 1``. nginx stores an answer only with that header, so an answer
  made for a logged-in user is never stored, whatever its URL (nginx hides the header from clients);
- a user is logged in (a connection that is not the public one): the browser gets the cookie
  ``omero_web_cache=bypass``, and nginx answers its requests from OMERO.web, never from the cache,
  so a user sees their own rendering settings and permissions, not the public user's copy. The
  cookie is removed once the session holds no such login (log out, expiry).

Installed in the image at /opt/omero/web/defaults/python (on the virtualenv's path).
"""

MARKER_HEADER = "X-OMERO-Web-Public"
BYPASS_COOKIE = "omero_web_cache"


def _connector(session):
    connector = session.get("connector")
    return connector if isinstance(connector, dict) else None


class PublicCacheMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        session = getattr(request, "session", None)
        if session is None or not session.accessed:  # no login was looked at: nothing to say
            return response
        connector = _connector(session)
        public = bool(connector and connector.get("is_public"))
        logged_in = bool(connector) and not public
        if public:
            response[MARKER_HEADER] = "1"
        elif MARKER_HEADER in response:  # never let a view's own header through
            del response[MARKER_HEADER]
        has_cookie = BYPASS_COOKIE in request.COOKIES
        if logged_in and not has_cookie:
            self._set_cookie(response)
        elif not logged_in and has_cookie:
            from django.conf import settings

            response.delete_cookie(BYPASS_COOKIE, path=settings.SESSION_COOKIE_PATH,
                                   samesite=settings.SESSION_COOKIE_SAMESITE)  # fmt: skip
        return response

    @staticmethod
    def _set_cookie(response):
        """Like the session cookie: same path, Secure and SameSite, and the same lifetime."""
        from django.conf import settings

        age = None if settings.SESSION_EXPIRE_AT_BROWSER_CLOSE else settings.SESSION_COOKIE_AGE
        response.set_cookie(
            BYPASS_COOKIE,
            "bypass",
            max_age=age,
            path=settings.SESSION_COOKIE_PATH,
            secure=settings.SESSION_COOKIE_SECURE or None,
            httponly=True,
            samesite=settings.SESSION_COOKIE_SAMESITE,
        )
