"""Plugins enabled by OMERO_WEB_PLUGINS, on real containers: routed, their static files answered by
nginx (at the root and under /omero), shown in the webclient, logged in against the stand-in;
OMERO_WEB_PLUGINS=none; the official standalone image's default file mounted unchanged, and a site's
reduced copy of it replacing the standalone image's default set."""

import os
import re
from urllib.parse import urljoin, urlsplit

import pytest
import requests

from contract import NGINX_PORT, WEB_PORT
from docker_helpers import STANDALONE_IMAGE, USERS, WEB_IMAGE, Container, Stack, WebUser, docker
from official_standalone import MOUNTED_AS, OFFICIAL_APPS, OFFICIAL_FILE, REDUCED_APPS, REDUCED_FILE

CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")  # Debian's; playwright never downloads a browser

# name: (index page, main script, stylesheet), from each plugin's urls.py and templates.
PLUGINS = {
    "figure": ("/figure/", "omero_figure/assets/index-BLC7TerA.js", "omero_figure/assets/index-tIN4FyR7.css"),
    "iviewer": ("/iviewer/", "omero_iviewer/main.js", "omero_iviewer/css/app.css"),
    "parade": ("/parade/", "omero_parade/js/bundle.js", "omero_parade/css/parade.css"),
    "mapr": ("/mapr/anyvalue/", "mapr/javascript/ome.mapr.js", "mapr/css/ome.mapr.css"),
    "fpbioimage": ("/fpbioimage/viewer/1/", "fpbioimage/openwith.js", None),
    "autotag": ("/omero_autotag/get_items/", "omero_autotag/js/bundle.min.js", None),
    "tagsearch": (
        "/omero_tagsearch/", "tagsearch/3rd-party/chosen/chosen.jquery.js", "tagsearch/css/webtagging_search.css"
    ),
    "gallery": ("/gallery/", "gallery/model.js", "gallery/css/idr.css"),
}  # fmt: skip
# Pages the stand-in can serve to a logged-in user (fpbioimage shows an image, autotag has no page).
LOGGED_IN_PAGES = ("figure", "iviewer", "parade", "mapr", "tagsearch", "gallery")


@pytest.fixture(scope="module", params=["", "/omero"], ids=["root", "prefix"])
def plugged(request):
    """The compose stack with every plugin, against the stand-in; at the root and under /omero."""
    env = {"OMERO_WEB_PLUGINS": "all", "OMERO_WEB_PREFIX": request.param}
    running = Stack("plugins" + request.param.replace("/", "-"), env=env, standin=True).up()
    running.prefix = request.param
    yield running
    running.down()


def test_every_plugin_page_is_routed_and_asks_for_a_login(plugged):
    for name, (page, _, _) in PLUGINS.items():
        answer = requests.get(plugged.url + plugged.prefix + page, timeout=10, allow_redirects=False)
        assert answer.status_code == 302, (name, answer.status_code, answer.text[:300])
        assert answer.headers["Location"].startswith(plugged.prefix + "/webclient/login/"), name


def test_plugin_scripts_and_stylesheets_come_from_nginx(plugged):
    files = [f for _, script, style in PLUGINS.values() for f in (script, style) if f]
    before = plugged.logs("web")
    for path in files:
        answer = requests.get(f"{plugged.url}{plugged.prefix}/static/{path}", timeout=10)
        assert answer.status_code == 200, path
        kind = "css" if path.endswith(".css") else "javascript"
        assert kind in answer.headers["Content-Type"], (path, answer.headers["Content-Type"])
        assert "max-age=31536000" in answer.headers["Cache-Control"], path
        assert len(answer.content) > 100, path
    # Not gunicorn: none of these requests reached the web container.
    after = plugged.logs("web")[len(before) :]
    assert not [f for f in files if os.path.basename(f) in after], after[-2000:]


def test_logged_in_pages_of_the_plugins(plugged):
    user = WebUser(plugged.url, prefix=plugged.prefix)
    user.login("root")
    for name in LOGGED_IN_PAGES:
        page = PLUGINS[name][0]
        answer = user.get(page)
        assert answer.status_code == 200, (name, answer.status_code, answer.text[-1500:])
        assert "<html" in answer.text.lower(), name
        # Every static file the page names is there, under the prefix, from nginx.
        for url in set(re.findall(r'(?:href|src)="([^"]*/static/[^"]+\.\w+)(?:\?[^"]*)?"', answer.text)):
            assert url.startswith(plugged.prefix + "/static/"), (name, url)
            assert requests.get(urljoin(plugged.url, url), timeout=10).status_code == 200, (name, url)


def test_webclient_shows_the_enabled_plugins(plugged):
    user = WebUser(plugged.url, prefix=plugged.prefix)
    user.login("root")
    page = user.get("/webclient/")
    assert page.status_code == 200
    text = page.text
    # Top links: figure, mapr and tagsearch, with their URLs under the prefix.
    for label, url in (("Figure", "/figure/"), ("Any Value", "/mapr/anyvalue/"), ("Tag Search", "/omero_tagsearch/")):
        assert re.search(rf'href="{re.escape(plugged.prefix + url)}"[^>]*>\s*{label}\s*<', text), label
    # Centre panels: parade and autotag (their templates are included in the page).
    assert "omero_parade" in text and "auto_tag_panel" in text
    # "Open with": the list the page loads, with the plugins' scripts under the prefix.
    options = user.get("/webgateway/open_with/").json()["open_with_options"]
    by_id = {option["id"]: option for option in options}
    assert [by_id[i]["label"] for i in ("omero_iviewer", "omero_figure", "omero_fpbioimage")] == [
        "OMERO.iviewer",
        "OMERO.figure",
        "FPBioimage",
    ]
    for plugin, script in (
        ("omero_iviewer", "omero_iviewer/openwith.js"),
        ("omero_fpbioimage", "fpbioimage/openwith.js"),
    ):
        assert by_id[plugin]["script_url"] == f"{plugged.prefix}/static/{script}"
        assert requests.get(plugged.url + by_id[plugin]["script_url"], timeout=10).status_code == 200
    assert by_id["omero_iviewer"]["url"] == f"{plugged.prefix}/iviewer/"


def test_none_leaves_the_core_alone():
    web = Container(WEB_IMAGE, env={"OMERO_WEB_PLUGINS": "none"})
    try:
        web.wait_http("/webclient/login/")
        assert requests.get(web.url + "/figure/", timeout=10, allow_redirects=False).status_code == 404
        checked = docker("run", "--rm", "-e", "OMERO_WEB_PLUGINS=none", WEB_IMAGE, "check").stdout
        assert "omero.web.apps" not in checked and "omero.web.viewer.view" not in checked
        assert checked == docker("run", "--rm", WEB_IMAGE, "check").stdout
    finally:
        web.remove()


def apps_of(checked):
    return re.search(r"^omero\.web\.apps=(.*?)    #", checked, re.M).group(1)


@pytest.mark.parametrize("image", [WEB_IMAGE, STANDALONE_IMAGE])
def test_the_official_standalone_file_mounted_unchanged(image):
    """A site switching from the official omero-web-standalone image keeps its default file."""
    mount = ["-v", f"{OFFICIAL_FILE}:/opt/omero/web/config/{MOUNTED_AS}:ro"]
    checked = docker("run", "--rm", *mount, image, "check").stdout
    assert apps_of(checked) == '["' + '", "'.join(OFFICIAL_APPS) + '"]'
    port = NGINX_PORT if image == STANDALONE_IMAGE else WEB_PORT
    web = Container(image, port=port, docker_args=mount)
    try:
        web.wait_http("/webclient/login/")
        for name in ("figure", "iviewer", "mapr", "parade", "tagsearch"):
            page = PLUGINS[name][0]
            answer = requests.get(web.url + page, timeout=10, allow_redirects=False)
            assert answer.status_code == 302, (name, answer.status_code)
        assert "Traceback" not in web.logs() and "ERROR" not in web.logs()
    finally:
        web.remove()


def test_standalone_enables_the_official_set_by_default():
    checked = docker("run", "--rm", STANDALONE_IMAGE, "check").stdout
    assert apps_of(checked) == '["' + '", "'.join(OFFICIAL_APPS) + '"]'


def test_a_sites_reduced_default_webapps_file_replaces_the_standalone_set():
    """A site switching from the official standalone image mounts its own 01-default-webapps.omero
    with only figure and iviewer: exactly those are enabled, as in the official image; the plugins
    it removed are not routed. OMERO_WEB_PLUGINS set explicitly still adds its presets."""
    mount = ["-v", f"{REDUCED_FILE}:/opt/omero/web/config/{MOUNTED_AS}:ro"]
    checked = docker("run", "--rm", *mount, STANDALONE_IMAGE, "check").stdout
    assert apps_of(checked) == '["' + '", "'.join(REDUCED_APPS) + '"]' == '["omero_figure", "omero_iviewer"]'
    added = docker("run", "--rm", "-e", "OMERO_WEB_PLUGINS=parade", *mount, STANDALONE_IMAGE, "check").stdout
    assert apps_of(added) == '["omero_parade", "omero_figure", "omero_iviewer"]'
    web = Container(STANDALONE_IMAGE, port=NGINX_PORT, docker_args=mount)
    try:
        web.wait_http("/webclient/login/")
        for name in ("figure", "iviewer", "mapr", "parade", "tagsearch"):
            answer = requests.get(web.url + PLUGINS[name][0], timeout=10, allow_redirects=False)
            expected = 302 if name in ("figure", "iviewer") else 404
            assert answer.status_code == expected, (name, answer.status_code)
        assert "Traceback" not in web.logs() and "ERROR" not in web.logs()
    finally:
        web.remove()


def test_a_real_browser_logs_in_and_opens_a_plugin_page(plugged):
    """Debian's chromium, headless: the login page, then the login form straight into OMERO.figure;
    every request the browser makes must succeed and no script may fail. The only request leaving
    this machine is the login page's look-up of OMERO.insight releases on GitHub: no DNS here, so the
    test answers it with an empty list (on a site with Internet access, GitHub does)."""
    from playwright.sync_api import sync_playwright

    failed, errors = [], []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        try:
            page = browser.new_page()
            page.set_default_timeout(30_000)
            page.on("requestfailed", lambda r: failed.append(f"{r.method} {r.url}: {r.failure}"))
            page.on("response", lambda r: r.status >= 400 and failed.append(f"{r.request.method} {r.url}: {r.status}"))
            page.on("pageerror", lambda error: errors.append(str(error)))
            outside = []
            page.route(
                lambda url: not url.startswith(plugged.url),
                lambda route: outside.append(route.request.url) or route.fulfill(json=[]),
            )
            figure = plugged.prefix + PLUGINS["figure"][0]
            page.goto(f"{plugged.url}{plugged.prefix}/webclient/login/?url={figure}", wait_until="networkidle")
            assert page.title() == "OMERO.web - Login"
            page.fill("#id_username", "root")
            page.fill("#id_password", USERS["root"])
            page.click("input[type=submit]")
            page.wait_for_url(plugged.url + figure, wait_until="networkidle")
            assert "OMERO.figure" in page.title()
            requests_made = page.evaluate("performance.getEntriesByType('resource').length")
        finally:
            browser.close()
    assert failed == [] and errors == [], (failed, errors)
    assert {urlsplit(url).netloc for url in outside} <= {"api.github.com"}, outside
    assert requests_made > 5  # the page's own scripts and styles were loaded
