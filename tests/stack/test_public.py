"""A public data site (OMERO_WEB_PUBLIC_USER): anonymous visitors browse as the public user of the
OMERO.server stand-in, under a prefix (OMERO.web matches its URL filter against the path with the
prefix), and see the stand-in's public images (tests/standin/data.py): the data tree, thumbnails,
imgData, rendered planes, OMERO.iviewer in a real browser. The private image, what the filter keeps
out and webadmin stay behind the login; real users still log in and see their own data."""

import io
import os
import re

import pytest
from PIL import Image

from docker_helpers import PUBLIC_PREFIX as PREFIX
from docker_helpers import USERS, WebUser, assert_logged_in, public_site

CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")  # Debian's; playwright never downloads a browser
PUBLIC_IMAGES = {1: ("cells.tif", 320, 240, 3), 2: ("timelapse.tif", 160, 120, 2)}  # id: name, size X, Y, C
PRIVATE_IMAGE = 3  # in the lab group: not the public user's


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    stack = public_site("public", tmp_path_factory.mktemp("public")).up()
    yield stack
    stack.down()


def test_an_anonymous_visitor_browses_as_the_public_user(site):
    visitor = WebUser(site.url, prefix=PREFIX)
    home = visitor.get("/webclient/")
    assert home.status_code == 200, (home.status_code, home.headers.get("Location"), home.text[:300])
    assert 'id="public_login_button"' in home.text  # the public user's page: "Login" instead of a user menu
    assert re.search(r"WEBCLIENT\.active_group_id = 4\b", home.text)  # the stand-in's public-data group
    assert visitor.session_id, "the visitor's public session has no cookie"
    # Its session is the public user's, in Redis like any other: the JSON API answers it too.
    projects = visitor.get("/api/v0/m/projects/")
    assert projects.status_code == 200, projects.text[:300]
    assert [p["Name"] for p in projects.json()["data"]] == ["Public project"]
    assert " for public " in site.logs("omero")


def test_the_public_data_tree_thumbnails_and_rendered_planes(site):
    visitor = WebUser(site.url, prefix=PREFIX)
    tree = visitor.get("/webclient/api/containers/?id=-1&page=0&group=4").json()
    assert [p["name"] for p in tree["projects"]] == ["Public project"]
    datasets = visitor.get("/webclient/api/datasets/?id=1&page=0&group=4").json()["datasets"]
    assert [d["name"] for d in datasets] == ["Public dataset"]
    images = visitor.get("/webclient/api/images/?id=1&page=1&sizeXYZ=true&date=true&group=4").json()["images"]
    assert {i["id"]: (i["name"], i["sizeX"], i["sizeY"]) for i in images} == {
        k: v[:3] for k, v in PUBLIC_IMAGES.items()
    }
    for image_id, (name, size_x, size_y, size_c) in PUBLIC_IMAGES.items():
        thumbnail = visitor.get(f"/webgateway/render_thumbnail/{image_id}/")
        assert (thumbnail.status_code, thumbnail.headers["Content-Type"]) == (200, "image/jpeg"), image_id
        assert max(Image.open(io.BytesIO(thumbnail.content)).size) == 96
        info = visitor.get(f"/webgateway/imgData/{image_id}/").json()
        assert (info["meta"]["imageName"], info["size"]["width"], info["size"]["height"]) == (name, size_x, size_y)
        assert len(info["channels"]) == size_c and info["perms"]["canEdit"] is False
        plane = visitor.get(f"/webgateway/render_image/{image_id}/0/0/")
        assert plane.status_code == 200 and Image.open(io.BytesIO(plane.content)).size == (size_x, size_y)
    region = visitor.get("/webgateway/render_image_region/1/2/0/?region=300,200,64,64&c=1|0:255$0000FF&m=c")
    assert Image.open(io.BytesIO(region.content)).size == (20, 40)  # clipped to the image, as OMERO.server does
    batch = visitor.get("/webgateway/get_thumbnails/?id=1&id=2&id=3").json()
    assert batch["1"].startswith("data:image/jpeg;base64,") and batch["2"].startswith("data:image/jpeg;base64,")
    assert not batch["3"]  # the private image: no thumbnail


def test_the_private_image_stays_private(site):
    visitor = WebUser(site.url, prefix=PREFIX)
    private = PRIVATE_IMAGE
    for path in (f"/webgateway/render_thumbnail/{private}/", f"/webgateway/imgData/{private}/",
                 f"/webgateway/render_image/{private}/0/0/", f"/iviewer/image_data/{private}/"):  # fmt: skip
        answer = visitor.get(path)
        assert answer.status_code != 200 or "image/jpeg" not in answer.headers.get("Content-Type", ""), path
        assert answer.status_code != 200 or "private.tif" not in answer.text, path
    owner = WebUser(site.url, prefix=PREFIX)
    assert owner.login("user-1").status_code == 302
    mine = owner.get(f"/webgateway/render_thumbnail/{PRIVATE_IMAGE}/")
    assert (mine.status_code, mine.headers["Content-Type"]) == (200, "image/jpeg")


@pytest.mark.parametrize(
    "path",
    [
        "/webadmin/",  # administration
        "/webgateway/archived_files/download/1/",  # original files
        "/webclient/script_ui/1/",  # scripts
        "/webgateway/copyImgRDef/?fromid=1",  # changes the session's rendering settings through a GET
    ],
)
def test_what_the_filter_keeps_out_asks_for_a_login(site, path):
    answer = WebUser(site.url, prefix=PREFIX).get(path)
    assert answer.status_code == 302, (path, answer.status_code, answer.text[:200])
    assert answer.headers["Location"].startswith(f"{PREFIX}/webclient/login/"), answer.headers["Location"]


def test_the_public_user_cannot_post(site):
    """omero.web.public.get_only: a POST from an anonymous visitor (with a valid CSRF token) is
    not served as the public user: it is sent to the login page."""
    visitor = WebUser(site.url, prefix=PREFIX)
    new_project = {"folder_type": "project", "name": "not public"}
    answer = visitor.post_form("/webclient/action/addnewcontainer/", new_project, form="/webclient/login/")
    assert answer.status_code == 302, (answer.status_code, answer.text[:200])
    assert answer.headers["Location"].startswith(f"{PREFIX}/webclient/login/")


def test_users_still_log_in(site):
    user = WebUser(site.url, prefix=PREFIX)
    assert user.login("user-1").status_code == 302
    assert assert_logged_in(user, PREFIX)["omeName"] == "user-1"
    home = user.get("/webclient/")
    assert 'id="public_login_button"' not in home.text
    assert re.search(r"WEBCLIENT\.active_group_id = 3\b", home.text)  # user-1's own group


def test_a_real_browser_views_a_public_image_anonymously(site, tmp_path):
    """Debian's chromium, headless, with no login: OMERO.iviewer opens the public image 1 and draws
    its pixels (the stand-in's coloured blobs: many strongly coloured pixels in the screenshot,
    which the viewer's grey interface has none of). Every request succeeds but the viewer's probe
    for OMERO's image-region microservice, which this site does not run."""
    from playwright.sync_api import sync_playwright

    failed, errors, rendered = [], [], []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        try:
            page = browser.new_page(viewport={"width": 1200, "height": 800})
            page.set_default_timeout(30_000)
            page.on("requestfailed", lambda r: failed.append(f"{r.method} {r.url}: {r.failure}"))
            page.on("response", lambda r: r.status >= 400 and failed.append(f"{r.request.method} {r.url}: {r.status}"))
            page.on("response", lambda r: "/webgateway/render_image/1/" in r.url and rendered.append(r.status))
            page.on("pageerror", lambda error: errors.append(str(error)))
            page.goto(f"{site.url}{PREFIX}/iviewer/?images=1", wait_until="networkidle")
            page.wait_for_selector("canvas")
            page.wait_for_timeout(1000)  # the canvas is drawn once the plane has arrived
            shot = Image.open(io.BytesIO(page.screenshot(path=str(tmp_path / "iviewer.png")))).convert("RGB")
        finally:
            browser.close()
    failed = [f for f in failed if "/omero_ms_image_region/" not in f]
    assert failed == [] and errors == [], (failed, errors)
    assert rendered and set(rendered) == {200}, rendered
    colourful = sum(1 for r, g, b in shot.get_flattened_data() if max(r, g, b) - min(r, g, b) > 100)
    assert colourful > 2000, f"{colourful} strongly coloured pixels in the viewer (screenshot: {tmp_path}/iviewer.png)"


# --- The nginx cache of the public images (NGINX_CACHE=on) ---------------------------------------
# Each test asks for URLs no other test asks for (a thumbnail size, a region), so that it sees the
# cache's first answer to them.


def cached(user, path):
    """GET `path`; the answer and nginx's X-Cache-Status (HIT, MISS, BYPASS ...)."""
    answer = user.get(path)
    return answer, answer.headers.get("X-Cache-Status")


def test_the_cache_answers_every_visitor_with_the_public_users_images(site):
    first, second = WebUser(site.url, prefix=PREFIX), WebUser(site.url, prefix=PREFIX)
    first.get("/webclient/")  # a visitor with a public session, and one without any
    for path in ("/webgateway/render_thumbnail/1/80/", "/webgateway/render_image_region/1/1/0/?tile=0,0,0,128,128",
                 "/webclient/imgData/2/", "/iviewer/image_data/2/", "/api/v0/m/images/?dataset=1"):  # fmt: skip
        answer, status = cached(first, f"{path}{'&' if '?' in path else '?'}_=1700000000001")
        assert (answer.status_code, status) == (200, "MISS"), (path, answer.status_code, status)
        again, status = cached(second, f"{path}{'&' if '?' in path else '?'}_=1700000000002")  # jQuery's cache-buster
        assert (again.status_code, status) == (200, "HIT"), (path, again.status_code, status)
        assert again.content == answer.content, path
        assert "Set-Cookie" not in again.headers and "X-OMERO-Web-Public" not in again.headers, again.headers
    assert second.session_id is None  # a cached answer hands out no session


def test_the_cache_never_stores_or_serves_a_logged_in_users_answer(site):
    """The leak test: the owner of the private image 3 fetches its thumbnail, with and without
    the cookie that keeps logged-in users off the cache; then anonymous visitors and a public
    session ask for the same URLs: never the private bytes, never from the cache. A public image
    asked for first by the logged-in user is not stored either."""
    owner = WebUser(site.url, prefix=PREFIX)
    assert owner.login("user-1").status_code == 302
    assert owner.http.cookies.get("omero_web_cache") == "bypass"
    private_paths = (f"/webgateway/render_thumbnail/{PRIVATE_IMAGE}/", f"/webgateway/imgData/{PRIVATE_IMAGE}/",
                     f"/webgateway/render_image/{PRIVATE_IMAGE}/0/0/")  # fmt: skip
    private = {}
    for path in private_paths:
        answer, status = cached(owner, path)
        assert (answer.status_code, status) == (200, "BYPASS"), (path, answer.status_code, status)
        private[path] = answer.content
    # The same login without the bypass cookie (a browser that dropped it): answered by OMERO.web
    # as the owner, and not stored.
    owner.http.cookies.pop("omero_web_cache")
    for path in private_paths:
        answer, status = cached(owner, path)
        assert (answer.status_code, status, answer.content) == (200, "MISS", private[path]), path
    answer, status = cached(owner, "/webgateway/render_thumbnail/2/72/")  # a public image, as the owner
    assert (answer.status_code, status) == (200, "MISS")
    visitor, public_session = WebUser(site.url, prefix=PREFIX), WebUser(site.url, prefix=PREFIX)
    assert public_session.get("/webclient/").status_code == 200
    for user in (visitor, public_session, visitor):
        for path in private_paths:
            answer, status = cached(user, path)
            assert status in ("MISS", None) and answer.content != private[path], (path, answer.status_code, status)
            assert answer.status_code != 200 or "private.tif" not in answer.text, path
    answer, status = cached(visitor, "/webgateway/render_thumbnail/2/72/")
    assert (answer.status_code, status) == (200, "MISS"), "the owner's answer was stored"
    assert cached(public_session, "/webgateway/render_thumbnail/2/72/")[1] == "HIT"
    # Logging in through the URL is never answered from the cache.
    with_password = f"/webgateway/render_thumbnail/{PRIVATE_IMAGE}/?username=user-1&password={USERS['user-1']}"
    assert cached(WebUser(site.url, prefix=PREFIX), with_password)[1] == "BYPASS"
    # Nothing of image 3 on disk.
    keys = site.exec(site.ids("nginx")[0], "sh", "-c", "grep -rah '^KEY: ' /var/cache/omero-web-nginx || true").stdout
    assert "/webgateway/render_thumbnail/2/72/" in keys
    assert not re.search(rf"/{PRIVATE_IMAGE}/", keys), keys
    # Any page outside the cache gives the cookie back; logging out removes it.
    assert owner.get("/webclient/").status_code == 200 and owner.http.cookies.get("omero_web_cache") == "bypass"
    owner.logout()
    assert owner.http.cookies.get("omero_web_cache") is None, owner.set_cookies


def test_the_cache_is_purged_by_key(site):
    visitor = WebUser(site.url, prefix=PREFIX)
    path = "/webgateway/render_thumbnail/1/88/"
    assert [cached(visitor, path)[1] for _ in range(2)] == ["MISS", "HIT"]
    nginx = site.ids("nginx")[0]
    purge = site.exec(nginx, "omero-web-nginx", "cache-purge", "render_thumbnail/1/88/")
    assert purge.returncode == 0 and "removed 1 cached answers" in purge.stderr, purge.stderr
    assert cached(visitor, path)[1] == "MISS"
    purge = site.exec(nginx, "omero-web-nginx", "cache-purge")
    assert purge.returncode == 0 and "removed 0 cached" not in purge.stderr, purge.stderr
    assert cached(visitor, path)[1] == "MISS"


def test_the_cache_answers_while_omero_web_is_away(site):
    """OMERO.web stopped: cached images are still served (stale if they have expired), everything
    else gets the maintenance page."""
    visitor = WebUser(site.url, prefix=PREFIX)
    cached_path = "/webgateway/render_thumbnail/2/90/"
    assert [cached(visitor, cached_path)[1] for _ in range(2)] == ["MISS", "HIT"]
    site.compose("stop", "web")
    try:
        site.wait_status(f"{PREFIX}/webclient/login/", 503, timeout=30)
        answer, status = cached(visitor, cached_path)
        assert (answer.status_code, status) in ((200, "HIT"), (200, "STALE")), (answer.status_code, status)
        assert visitor.get("/webgateway/render_thumbnail/2/91/").status_code == 503  # never cached
    finally:
        site.compose("start", "web")
    site.wait_status(f"{PREFIX}/webclient/login/", 200, timeout=90)
    assert visitor.get("/webgateway/render_thumbnail/2/91/").status_code == 200
