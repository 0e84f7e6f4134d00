#!/opt/omero/web/venv/bin/python
"""Entrypoint of the omero-web image.

On every start it gathers the OMERO.web configuration (lowest precedence first):

1. baked defaults: ``/opt/omero/web/defaults/*.omero`` (from ``omeroweb/`` in the repository),
   then the plugin presets ``OMERO_WEB_PLUGINS`` names (``defaults/plugins/<name>.omero``; unset:
   the image's ``OMERO_WEB_DEFAULT_PLUGINS``, unless a site mounts ``01-default-webapps.omero``);
2. user files: ``/opt/omero/web/config/*.omero`` (lexical order), lines like ``config set KEY VALUE``;
3. shortcuts: ``OMEROHOST`` (+ ``OMEROPORT``), ``OMERO_WEB_PREFIX``;
4. ``CONFIG_<property>`` (``.`` -> ``_``, ``_`` -> ``__``) and ``CONFIG_<property>_FILE``.

Every variable is declared in ``defaults/environment.toml`` (``omeroweb/environment.toml``), the
image's environment contract. ``configure`` (gather, resolve, validate) is the one configure step:
``main``, ``collectstatic`` and the unit tests all call it.

It validates the result against omero-web's own settings definitions, rewrites
``$OMERODIR/etc/grid/config.xml`` from scratch in this one process through omero-py's
config API, and finally ``exec``s the command: ``web`` (gunicorn, the default), ``check``
(print the effective configuration, secrets redacted), ``clearsessions``, or anything else.
``collectstatic`` is for image builds: it links the static files of OMERO.web and of every
plugin with a preset into ``omero.web.static_root``.

Everything above ``main`` is pure logic with no side effects at import time, so it can be
unit-tested without Docker.
"""

import dataclasses
import difflib
import glob
import importlib
import importlib.util
import json
import os
import pkgutil
import re
import secrets
import shlex
import shutil
import subprocess
import sys
import tempfile
import urllib.parse

# --- Names: the image's paths; its variables are declared in omeroweb/environment.toml. --------

WEB_HOME = "/opt/omero/web"
DEFAULT_OMERODIR = WEB_HOME + "/OMERO.web"
DEFAULTS_DIR = WEB_HOME + "/defaults"  # baked: 00-defaults.omero, environment.toml, gunicorn.conf.py
USER_CONFIG_DIR = WEB_HOME + "/config"  # mounted by users: *.omero
GUNICORN_CONFIG = DEFAULTS_DIR + "/gunicorn.conf.py"
SUPERVISORD_CONFIG = DEFAULTS_DIR + "/supervisord.conf"  # omero-web-standalone only
PRESETS_SUBDIR = "plugins"  # under DEFAULTS_DIR: one preset per plugin, <name>.omero (from omeroweb/plugins/)
CONTRACT_FILE = "environment.toml"  # under DEFAULTS_DIR: every variable, from omeroweb/environment.toml
PUBLIC_FILE = "public.toml"  # under DEFAULTS_DIR: the public user's default URL filter (omeroweb/public.toml)
# The official omero-web-standalone image's plugin file: mounted by a site, it replaces the image's
# default plugin set (OMERO_WEB_DEFAULT_PLUGINS), as in the official image.
OFFICIAL_WEBAPPS_FILE = "01-default-webapps.omero"

ENV_PREFIX = "CONFIG_"
FILE_SUFFIX = "_FILE"
# The variables the code below handles by name (each one is declared in environment.toml).
ENV_OMEROHOST = "OMEROHOST"
ENV_OMEROPORT = "OMEROPORT"
ENV_PREFIX_SHORTCUT = "OMERO_WEB_PREFIX"
ENV_PUBLIC_URL = "OMERO_WEB_PUBLIC_URL"
ENV_REDIS_URL = "REDIS_URL"
ENV_REDIS_PASSWORD = "REDIS_PASSWORD"
ENV_PUBLIC_USER = "OMERO_WEB_PUBLIC_USER"
ENV_PUBLIC_PASSWORD = "OMERO_WEB_PUBLIC_PASSWORD"
ENV_REDIS_WATCH = "OMERO_WEB_REDIS_WATCH_URL"  # set by the entrypoint for gunicorn.conf.py only
ENV_PLUGINS = "OMERO_WEB_PLUGINS"  # comma-separated preset names, "all" or "none"
ENV_DEFAULT_PLUGINS = "OMERO_WEB_DEFAULT_PLUGINS"  # the image's set when OMERO_WEB_PLUGINS is unset
ENV_OMERODIR = "OMERODIR"
ENV_DEFAULTS_DIR = "OMERO_WEB_DEFAULTS_DIR"
ENV_CONFIG_DIR = "OMERO_WEB_CONFIG_DIR"
HANDLED_VARIABLES = (
    ENV_OMEROHOST, ENV_OMEROPORT, ENV_PREFIX_SHORTCUT, ENV_PUBLIC_URL, ENV_REDIS_URL, ENV_REDIS_PASSWORD,
    ENV_PUBLIC_USER, ENV_PUBLIC_PASSWORD, ENV_REDIS_WATCH, ENV_PLUGINS, ENV_DEFAULT_PLUGINS, ENV_OMERODIR,
    ENV_DEFAULTS_DIR, ENV_CONFIG_DIR,
)  # fmt: skip
# Names checked against the contract: a misspelled one is pointed out (CONFIG_* are checked as keys).
CHECKED_NAMES = re.compile(r"(OMERO|REDIS_)\w*")

KEY_PREFIX = "omero.web.prefix"
KEY_STATIC_URL = "omero.web.static_url"
KEY_SERVER_LIST = "omero.web.server_list"
KEY_SECRET_KEY = "omero.web.secret_key"
KEY_APP_HOST = "omero.web.application_server.host"
KEY_APP_PORT = "omero.web.application_server.port"
KEY_APPS = "omero.web.apps"
KEY_MIDDLEWARE = "omero.web.middleware"
KEY_CACHES = "omero.web.caches"
KEY_SESSION_ENGINE = "omero.web.session_engine"
KEY_CORS_WHITELIST = "omero.web.cors_origin_whitelist"
KEY_CORS_ALLOW_ALL = "omero.web.cors_origin_allow_all"
KEY_PUBLIC_ENABLED = "omero.web.public.enabled"
KEY_PUBLIC_USER = "omero.web.public.user"
KEY_PUBLIC_URL_FILTER = "omero.web.public.url_filter"

# CORS as the OMERO documentation enables it: the app, and middleware around Django's.
CORS_APP = "corsheaders"
CORS_MIDDLEWARE = (
    {"index": 0.5, "class": "corsheaders.middleware.CorsMiddleware"},
    {"index": 10, "class": "corsheaders.middleware.CorsPostCsrfMiddleware"},
)
# A public site: the middleware that tells the nginx cache which answers were made for the public
# user (omeroweb/public_cache.py), inside Django's SessionMiddleware (index 3).
PUBLIC_CACHE_MIDDLEWARE = {"index": 3.5, "class": "public_cache.PublicCacheMiddleware"}
# Lists where a second identical entry is always a mistake (Django refuses a duplicate app); a
# preset and a site's own .omero file may both add the same entry.
UNIQUE_LIST_KEYS = (
    KEY_APPS,
    KEY_MIDDLEWARE,
    "omero.web.open_with",
    "omero.web.ui.top_links",
    "omero.web.ui.center_plugins",
    "omero.web.ui.right_plugins",
)
CACHE_SESSION_ENGINES = ("django.contrib.sessions.backends.cache", "django.contrib.sessions.backends.cached_db")

# Keys whose upstream meaning includes the empty string (everything else: empty = mistake).
EMPTY_ALLOWED = {
    "omero.web.upgrades.url",  # "" disables the upgrade check
    "omero.web.top_logo",
    "omero.web.top_logo_link",
    "omero.web.root_application",
    "omero.web.login.client_downloads_base",
}
# Keys whose values may hold credentials (connection URLs in caches/databases included).
SECRET_KEYS = {KEY_SECRET_KEY, "omero.web.caches", "omero.web.databases"}
BOOLEAN_WORDS = {"true": True, "t": True, "1": True, "false": False, "f": False, "0": False}
REDACTED = "********"


class ConfigError(Exception):
    """Invalid configuration: one human-readable message per problem."""

    def __init__(self, problems):
        self.problems = list(problems)
        super().__init__("\n".join(self.problems))


@dataclasses.dataclass(frozen=True)
class Op:
    """One configuration instruction, remembered with where it came from."""

    action: str  # "set", "unset", "append", "append-unique", "remove"
    key: str
    value: str = None
    source: str = ""
    secret: bool = False  # read from a *_FILE: never print it


@dataclasses.dataclass(frozen=True)
class Entry:
    value: str
    source: str
    secret: bool = False


@dataclasses.dataclass(frozen=True)
class Setting:
    """One omero-web setting definition: Django name, raw default, parser, description; for a
    plugin's setting, the plugin's app and whether it has no usable default (must be set)."""

    django_name: str
    default: object
    parser: object
    description: str = ""
    app: str = ""
    required: bool = False


@dataclasses.dataclass(frozen=True)
class Variable:
    """One variable of the environment contract (omeroweb/environment.toml)."""

    name: str
    container: str  # "web", "nginx" or "compose": who reads it
    meaning: str = ""
    default: str = ""
    drives: tuple = ()
    file: bool = False  # NAME_FILE is accepted too
    secret: bool = False
    compose: str = ""  # "pass", "set", "env_file" or "" (not in compose's environment)
    chart: object = ()  # the chart values that set it, or "set"


def load_contract(path):
    """``{container: {name: Variable}}`` from the contract file; a broken file is a ConfigError."""
    import tomllib

    try:
        with open(path, "rb") as handle:
            tables = tomllib.load(handle)
        contract = {}
        for container, variables in tables.items():
            contract[container] = {}
            for name, fields in variables.items():
                fields = {k: tuple(v) if isinstance(v, list) else v for k, v in fields.items()}
                contract[container][name] = Variable(name, container, **fields)
        return contract
    except (OSError, tomllib.TOMLDecodeError, TypeError, AttributeError) as error:
        raise ConfigError([f"{path}: cannot read the image's environment contract: {error}."]) from None


def contract_default(contract, name):
    return contract["web"][name].default


def unknown_variables(environ, contract):
    """Warnings for OMERO*/REDIS_* variables no container reads (a typo such as OMERO_WEB_PLUGIN):
    they would be ignored silently otherwise. Warnings, not errors: compose's env_file passes the
    whole .env, whose other lines are compose's or nginx's own."""
    known = {name for variables in contract.values() for name in variables if "<" not in name}
    known |= {v.name + FILE_SUFFIX for v in contract.get("web", {}).values() if v.file}
    warnings = []
    for name in sorted(environ):
        if name in known or not CHECKED_NAMES.fullmatch(name):
            continue
        close = difflib.get_close_matches(name, known, n=1, cutoff=0.75)
        hint = f" Did you mean {close[0]}?" if close else ""
        warnings.append(f"{name} is not a variable of these images, so it changes nothing.{hint}")
    return warnings


# --- Names of environment variables <-> OMERO property keys. --------------------------------


def env_to_key(name):
    """``omero_web_secret__key`` -> ``omero.web.secret_key`` (the official image's rule)."""
    return "_".join(part.replace("_", ".") for part in name.split("__"))


def key_to_env(key):
    """``omero.web.secret_key`` -> ``CONFIG_omero_web_secret__key``."""
    return ENV_PREFIX + key.replace("_", "__").replace(".", "_")


# --- Reading .omero files and properties files. ----------------------------------------------


def parse_properties(text, source):
    """``key=value`` lines as read by ``omero config load`` (``#`` comments, ``\\`` continues)."""
    ops, pending = [], ""
    for number, raw in enumerate(text.splitlines(), 1):
        line = (pending + raw).strip() if pending else raw.strip()
        pending = ""
        if not line or line.startswith("#"):
            continue
        if line.endswith("\\"):
            pending = line[:-1]
            continue
        key, _, value = line.partition("=")
        if not key:
            raise ConfigError([f"{source} line {number}: '{raw.strip()}' has no key before '='."])
        ops.append(Op("set", key.strip(), value, f"{source} line {number}"))
    return ops


def parse_omero_file(text, source, read_text):
    """Parse a ``.omero`` file: one ``omero`` CLI command per line, as ``omero load`` runs them.

    Supported: ``config set [-f FILE] KEY [VALUE]``, ``config append [--set] KEY VALUE``,
    ``config remove KEY VALUE`` and ``config load FILE...`` (relative paths are relative to
    the ``.omero`` file). ``read_text(path)`` reads the files these lines refer to.
    """
    ops, problems = [], []
    base = os.path.dirname(source)
    for number, raw in enumerate(text.splitlines(), 1):
        where = f"{source} line {number}"
        try:
            words = shlex.split(raw, comments=True)
        except ValueError as error:
            problems.append(f"{where}: cannot parse '{raw.strip()}': {error} (unbalanced quotes?).")
            continue
        if not words:
            continue
        if words[0] == "omero":
            words = words[1:]
        try:
            ops.extend(_config_command(words, where, base, read_text))
        except ConfigError as error:
            problems.extend(error.problems)
    if problems:
        raise ConfigError(problems)
    return ops


def _config_command(words, where, base, read_text):
    supported = "config set, config append, config remove or config load"
    if len(words) < 2 or words[0] != "config" or words[1] not in ("set", "append", "remove", "load"):
        raise ConfigError([f"{where}: '{shlex.join(words)}' is not supported here; use {supported}."])
    command = words[1]
    cut = words.index("--") if "--" in words else len(words)  # after "--", everything is positional
    options = [w for w in words[2:cut] if w.startswith("-")]
    args = [w for w in words[2:cut] if not w.startswith("-")] + words[cut + 1 :]
    if command == "set" and ("-f" in options or "--file" in options):
        # config set -f FILE KEY: the file name is the first positional argument.
        if len(args) != 2:
            raise ConfigError([f"{where}: expected 'config set -f FILE KEY'."])
        path = os.path.join(base, args[0])
        return [Op("set", args[1], _read(read_text, path, where).rstrip(), where, secret=True)]
    allowed = {"set": set(), "append": {"--set"}, "remove": set(), "load": {"-q"}}[command]
    unknown = [o for o in options if o not in allowed and o != "--report"]
    if unknown:
        raise ConfigError([f"{where}: option {' '.join(unknown)} is not supported for config {command}."])
    if command == "load":
        if not args:
            raise ConfigError([f"{where}: 'config load' needs a file name."])
        ops = []
        for name in args:
            path = os.path.join(base, name)
            ops.extend(parse_properties(_read(read_text, path, where), path))
        return ops
    if command == "set":
        if len(args) == 1:
            return [Op("unset", args[0], None, where)]
        if len(args) == 2:
            return [Op("set", args[0], args[1], where)]
        raise ConfigError([f"{where}: expected 'config set KEY VALUE' (quote values containing spaces)."])
    if len(args) != 2:
        raise ConfigError([f"{where}: expected 'config {command} KEY VALUE' (quote the JSON value)."])
    action = "append-unique" if (command == "append" and "--set" in options) else command
    return [Op(action, args[0], args[1], where)]


def _read(read_text, path, where):
    try:
        return read_text(path)
    except OSError as error:
        raise ConfigError([f"{where}: cannot read {path}: {error.strerror or error}."]) from None


# --- Environment variables. -----------------------------------------------------------------


def env_ops(environ, read_text, contract):
    """Operations from the environment: the shortcuts first, then ``CONFIG_*`` (sorted)."""
    ops, problems = [], []
    host = environ.get(ENV_OMEROHOST, "").strip()
    port = environ.get(ENV_OMEROPORT, "").strip()
    default_port = contract_default(contract, ENV_OMEROPORT)
    if host:
        if not port:
            port = default_port
        if not port.isdigit() or not 0 < int(port) < 65536:
            problems.append(f"{ENV_OMEROPORT}='{port}' is not a TCP port number (1-65535), e.g. {default_port}.")
        else:
            value = json.dumps([[host, int(port), "omero"]])
            ops.append(Op("set", KEY_SERVER_LIST, value, ENV_OMEROHOST))
    elif port:
        problems.append(f"{ENV_OMEROPORT} is set but {ENV_OMEROHOST} is not; set both, or neither.")
    if ENV_PREFIX_SHORTCUT in environ:
        prefix = environ[ENV_PREFIX_SHORTCUT].strip()
        if prefix and prefix != "/":
            ops.append(Op("set", KEY_PREFIX, prefix, ENV_PREFIX_SHORTCUT))
            ops.append(Op("set", KEY_STATIC_URL, prefix.rstrip("/") + "/static/", ENV_PREFIX_SHORTCUT))
    public_url = environ.get(ENV_PUBLIC_URL, "").strip()
    if public_url:
        ops.extend(_collect(problems, public_url_ops, public_url))
    ops.extend(public_user_ops(environ, read_text, problems))
    # Empty means unset for the shortcuts (compose passes empty strings for unset variables).
    declared = [contract["web"][name] for name in (ENV_REDIS_URL, ENV_REDIS_PASSWORD)]
    redis_names = {v.name for v in declared} | {v.name + FILE_SUFFIX for v in declared if v.file}
    redis_env = {k: v for k, v in environ.items() if k in redis_names and v.strip()}
    redis = _value_or_file(redis_env, ENV_REDIS_URL, read_text, problems)
    password = _value_or_file(redis_env, ENV_REDIS_PASSWORD, read_text, problems)
    if password and not redis:
        problems.append(f"{password[1]} is set but {ENV_REDIS_URL} is not; set {ENV_REDIS_URL} too, or neither.")
    elif redis:
        url, source, secret = redis
        if password:
            url = _collect(problems, redis_url_with_password, url, source, password[0], password[1])
            source, secret = f"{source} + {password[1]}", True
        if url:
            ops.extend(_collect(problems, redis_ops, url, source, secret))

    names = {n.removesuffix(FILE_SUFFIX) for n in environ if n.startswith(ENV_PREFIX)} - {ENV_PREFIX}
    for name in sorted(names):
        found = _value_or_file(environ, name, read_text, problems)
        if found:
            value, source, secret = found
            ops.append(Op("set", env_to_key(name[len(ENV_PREFIX) :]), value, source, secret))
    if problems:
        raise ConfigError(problems)
    return ops


def _value_or_file(environ, name, read_text, problems):
    """``(value, source, secret)`` from NAME, or from the file named by NAME_FILE; None if neither."""
    file_name = name + FILE_SUFFIX
    if name in environ and file_name in environ:
        problems.append(f"Both {name} and {file_name} are set; keep only one of them.")
        return None
    if file_name not in environ:
        return (environ[name], name, False) if name in environ else None
    try:
        return read_text(environ[file_name]).rstrip(), file_name, True
    except OSError as error:
        problems.append(
            f"{file_name}: cannot read the file '{environ[file_name]}' ({error.strerror or error}); "
            "mount it into the container or fix the path."
        )
        return None


def _collect(problems, make_ops, *args):
    try:
        return make_ops(*args)
    except ConfigError as error:
        problems.extend(error.problems)
        return []


def public_url_ops(url, source=ENV_PUBLIC_URL):
    """The public address users type: trust its origin for CSRF; if https, trust the proxy's
    ``X-Forwarded-Proto`` and mark cookies Secure. CONFIG_* variables still override each key."""
    parts = urllib.parse.urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname or parts.query or parts.fragment:
        raise ConfigError([f"{source}='{url}' is not a public URL; expected e.g. https://omero.example.org"])
    origin = f"{parts.scheme}://{parts.netloc.lower()}"
    ops = [Op("append-unique", "omero.web.csrf_trusted_origins", json.dumps(origin), source)]
    if parts.scheme == "https":
        ops += [
            Op("set", "omero.web.secure_proxy_ssl_header", '["HTTP_X_FORWARDED_PROTO", "https"]', source),
            Op("set", "omero.web.session_cookie_secure", "true", source),
            Op("set", "omero.web.csrf_cookie_secure", "true", source),
        ]
    return ops


def public_user_ops(environ, read_text, problems):
    """OMERO_WEB_PUBLIC_USER: the public user, on, with its password (required), GET requests only;
    the URL filter follows from the prefix once the configuration is resolved (public_filter_ops).
    Empty means unset (compose passes empty strings). CONFIG_* variables still override each key."""
    user, before = environ.get(ENV_PUBLIC_USER, "").strip(), len(problems)
    names = (ENV_PUBLIC_PASSWORD, ENV_PUBLIC_PASSWORD + FILE_SUFFIX)
    given = {k: v for k, v in environ.items() if k in names and v.strip()}
    password = _value_or_file(given, ENV_PUBLIC_PASSWORD, read_text, problems)
    if not user:
        if password:
            problems.append(
                f"{password[1]} is set but {ENV_PUBLIC_USER} is not; set the public user's name too, or neither."
            )
        return []
    if not password:
        if len(problems) == before:  # not already "cannot read the file"
            problems.append(
                f"{ENV_PUBLIC_USER}={user} needs the user's password: set {ENV_PUBLIC_PASSWORD}_FILE to a file holding "
                f"it (a Docker or Kubernetes secret), or {ENV_PUBLIC_PASSWORD}."
            )
        return []
    value, source, _ = password
    return [
        Op("set", KEY_PUBLIC_ENABLED, "true", ENV_PUBLIC_USER),
        Op("set", KEY_PUBLIC_USER, user, ENV_PUBLIC_USER),
        Op("set", "omero.web.public.password", value, source, secret=True),
        Op("set", "omero.web.public.get_only", "true", ENV_PUBLIC_USER),
    ]


def public_filter_ops(config, paths):
    """The default URL filter of a public user set by OMERO_WEB_PUBLIC_USER, under the effective
    prefix (OMERO.web matches the path with it): ``^<prefix>/(<path>|...)``, from public.toml.
    A filter set anywhere else (a file, a CONFIG_ variable) is kept as it is."""
    user = config.get(KEY_PUBLIC_USER)
    if user is None or user.source != ENV_PUBLIC_USER or KEY_PUBLIC_URL_FILTER in config:
        return []
    prefix = config[KEY_PREFIX].value.strip().rstrip("/") if KEY_PREFIX in config else ""
    if prefix and not prefix.startswith("/"):
        prefix = "/" + prefix
    value = f"^{re.escape(prefix)}/({'|'.join(paths)})"
    return [Op("set", KEY_PUBLIC_URL_FILTER, value, f"{ENV_PUBLIC_USER} (omeroweb/{PUBLIC_FILE})")]


def public_cache_ops(config):
    """Public mode on, by any source: the middleware that marks the public user's answers for the
    nginx cache (only answers so marked are ever stored) and keeps logged-in users off it."""
    enabled = config.get(KEY_PUBLIC_ENABLED)
    if not (enabled and BOOLEAN_WORDS.get(enabled.value.strip().lower())):
        return []
    source = f"public mode on ({enabled.source})"
    return [Op("append-unique", KEY_MIDDLEWARE, json.dumps(PUBLIC_CACHE_MIDDLEWARE), source)]


def load_public_paths(path):
    """The path patterns of public.toml; a broken file is a ConfigError."""
    import tomllib

    try:
        with open(path, "rb") as handle:
            paths = tomllib.load(handle)["paths"]
        for pattern in paths:
            re.compile(pattern)
        return tuple(paths)
    except (OSError, tomllib.TOMLDecodeError, KeyError, TypeError, re.error) as error:
        raise ConfigError([f"{path}: cannot read the image's public URL filter: {error}."]) from None


def redis_url_with_password(url, source, password, password_source):
    """The URL with the password in it, percent-encoded (any character works); a password the URL
    already carries is a conflict, not something to override silently."""
    parts = urllib.parse.urlsplit(url)
    if parts.password is not None:
        raise ConfigError([f"{password_source} is set but {source} already has a password; keep only one of them."])
    if parts.scheme == "unix":
        query = urllib.parse.parse_qsl(parts.query) + [("password", password)]
        return urllib.parse.urlunsplit(parts._replace(query=urllib.parse.urlencode(query)))
    user = urllib.parse.quote(urllib.parse.unquote(parts.username), safe="") if parts.username else ""
    host = parts.netloc.rpartition("@")[2]
    return urllib.parse.urlunsplit(parts._replace(netloc=f"{user}:{urllib.parse.quote(password, safe='')}@{host}"))


def redis_ops(url, source=ENV_REDIS_URL, secret=False):
    """Sessions and cache in Redis, switched together (a cache session engine without a real
    cache loses every login). Short socket timeouts, so a lost Redis cannot hang requests."""
    parts = urllib.parse.urlsplit(url)
    if parts.scheme not in ("redis", "rediss", "unix") or not (parts.hostname or parts.path):
        raise ConfigError([f"{source} is not a Redis URL; expected e.g. redis://redis:6379/0 (or rediss://, unix://)."])
    cache = {
        "BACKEND": "django_redis.cache.RedisCache",
        "LOCATION": url,
        "OPTIONS": {"SOCKET_CONNECT_TIMEOUT": 2, "SOCKET_TIMEOUT": 2},
    }
    return [
        Op("set", KEY_CACHES, json.dumps({"default": cache}), source, secret=secret),
        Op("set", KEY_SESSION_ENGINE, CACHE_SESSION_ENGINES[0], source),
    ]


def cors_ops(config):
    """Setting a CORS origin list (or allow-all) is enough: add the app and both middleware entries."""
    whitelist, allow_all = config.get(KEY_CORS_WHITELIST), config.get(KEY_CORS_ALLOW_ALL)
    enabled = bool(_json_or_none(whitelist)) or bool(allow_all and BOOLEAN_WORDS.get(allow_all.value.strip().lower()))
    if not enabled:
        return []
    source = f"CORS enabled by {(whitelist or allow_all).source}"
    return [Op("append-unique", KEY_APPS, json.dumps(CORS_APP), source)] + [
        Op("append-unique", KEY_MIDDLEWARE, json.dumps(entry), source) for entry in CORS_MIDDLEWARE
    ]


# --- Plugins: OMERO_WEB_PLUGINS picks preset .omero files. --------------------------------------


def list_presets(defaults_dir):
    """``{name: path}`` of the plugin presets, ``<defaults_dir>/plugins/<name>.omero``."""
    files = list_omero_files(os.path.join(defaults_dir, PRESETS_SUBDIR))
    return {os.path.basename(path).removesuffix(".omero"): path for path in files}


def baked_files(defaults_dir, plugins, source=ENV_PLUGINS):
    """The image's own .omero files in the order they apply: the defaults, then the presets that
    ``plugins`` (an ``OMERO_WEB_PLUGINS`` value, read from ``source``) picks."""
    return list_omero_files(defaults_dir) + select_presets(plugins, list_presets(defaults_dir), source)


def plugins_value(environ, user_files, contract):
    """``(value, source)`` of the plugin set: ``OMERO_WEB_PLUGINS`` if set; else the image's
    default set (``OMERO_WEB_DEFAULT_PLUGINS``), unless the site mounts its own
    ``01-default-webapps.omero``, which then replaces that set, as in the official standalone
    image (the mount replaces its baked file): the plugins enabled are exactly the file's."""
    explicit = environ.get(ENV_PLUGINS, "").strip()
    if explicit:
        return explicit, ENV_PLUGINS
    if any(os.path.basename(path) == OFFICIAL_WEBAPPS_FILE for path in user_files):
        return "none", OFFICIAL_WEBAPPS_FILE
    default = environ.get(ENV_DEFAULT_PLUGINS, "").strip() or contract_default(contract, ENV_DEFAULT_PLUGINS)
    return default, ENV_DEFAULT_PLUGINS


def select_presets(value, presets, source=ENV_PLUGINS):
    """The preset files ``OMERO_WEB_PLUGINS`` names, in the order given: short names
    (``iviewer``; ``omero-iviewer`` and ``omero_iviewer`` work too), ``all`` or ``none``."""
    words = [w.lower() for w in re.split(r"[,\s]+", value) if w]
    names = list(dict.fromkeys(re.sub(r"^omero[-_]", "", w) for w in words))
    valid = ", ".join(sorted(presets)) + ", all or none"
    if len(names) > 1 and {"all", "none"} & set(names):
        raise ConfigError([f"{source}='{value}': use all or none alone, or a list of plugins ({valid})."])
    if names in ([], ["none"]):
        return []
    if names == ["all"]:
        return [presets[name] for name in sorted(presets)]
    problems = []
    for name in names:
        if name not in presets:
            close = difflib.get_close_matches(name, presets, n=1, cutoff=0.6)
            hint = f" Did you mean {close[0]}?" if close else ""
            problems.append(f"{source}: '{name}' is not a plugin of this image.{hint} Choose from {valid}.")
    if problems:
        raise ConfigError(problems)
    return [presets[name] for name in names]


# --- Turning operations into one configuration. -----------------------------------------------


def apply_ops(ops, schema, config=None):
    """Replay the operations in order (on top of ``config``) and return ``{key: Entry}``."""
    config, problems = dict(config or {}), []
    for op in ops:
        if op.action == "set":
            config[op.key] = Entry(op.value, op.source, op.secret)
        elif op.action == "unset":
            config.pop(op.key, None)
        else:
            try:
                current = _current_list(config, op, schema)
                item = json.loads(op.value)
            except (ConfigError, ValueError) as error:
                problems.append(f"{op.source}: config {op.action} {op.key}: {_message(error)}")
                continue
            if op.action == "remove":
                if item not in current:
                    problems.append(f"{op.source}: {op.value} is not in {op.key}, nothing to remove.")
                    continue
                current.remove(item)
            elif op.action == "append" or item not in current:
                current.append(item)
            config[op.key] = Entry(json.dumps(current), op.source)
    if problems:
        raise ConfigError(problems)
    return config


def _current_list(config, op, schema):
    if op.key in config:
        try:
            value = json.loads(config[op.key].value)
        except ValueError:
            raise ConfigError([f"the current value (from {config[op.key].source}) is not JSON"]) from None
    elif op.key.startswith("omero.web."):
        value = schema.default_value(op.key) if op.key in schema.settings else []
    else:
        value = []
    if not isinstance(value, list):
        raise ConfigError([f"{op.key} is not a list"])
    return value


def _message(error):
    return "; ".join(error.problems) if isinstance(error, ConfigError) else str(error)


def normalise(config):
    """Fix what upstream accepts but breaks: a prefix with a trailing slash, a bare "/", the same
    entry twice in a list such as ``omero.web.apps``."""
    config = dict(config)
    for key in UNIQUE_LIST_KEYS:
        items = _json_or_none(config.get(key))
        if isinstance(items, list):
            unique = [item for n, item in enumerate(items) if item not in items[:n]]
            if len(unique) < len(items):
                config[key] = dataclasses.replace(config[key], value=json.dumps(unique))
    if KEY_PREFIX in config:
        entry = config[KEY_PREFIX]
        prefix = entry.value.strip().rstrip("/")
        if prefix:
            config[KEY_PREFIX] = dataclasses.replace(entry, value=prefix)
        else:
            del config[KEY_PREFIX]
    return config


# --- Validation. ----------------------------------------------------------------------------


@dataclasses.dataclass
class Schema:
    """omero-web's settings definitions (key -> Setting), plus the installed-module test."""

    settings: dict
    module_exists: object = lambda name: importlib.util.find_spec(name) is not None

    def default_value(self, key):
        """The default as ``omero config append`` extends it: the raw JSON (a plugin's parser
        may turn a JSON list into something else, e.g. omero.web.mapr.config into a dict)."""
        setting = self.settings[key]
        if isinstance(setting.default, str):
            try:
                return json.loads(setting.default)
            except ValueError:
                pass
        return setting.parser(setting.default)


def parser_name(parser):
    return getattr(parser, "__name__", type(parser).__name__)


PARSER_HINTS = {
    "parse_boolean": "true or false",
    "loads": "valid JSON",
    "int": "a whole number",
    "leave_none_unset_int": "a whole number",
    "check_timezone": "a time zone name such as Europe/London",
    "compile": "a regular expression",
}


def validate(config, schema):
    """Return a list of problems (empty if the configuration is valid)."""
    problems = []
    for key in sorted(config):
        entry = config[key]
        problems.extend(_check_entry(key, entry, schema))
    problems.extend(_check_product_rules(config, schema))
    for key in sorted(k for k, setting in schema.settings.items() if setting.required and k not in config):
        app = schema.settings[key].app
        problems.append(f"{app} needs {key}, which has no default: set {key_to_env(key)} (or a .omero file line).")
    return problems


def _check_entry(key, entry, schema):
    where = entry.source
    setting = schema.settings.get(key)
    if setting is None:
        if key.startswith("omero.web."):
            close = difflib.get_close_matches(key, schema.settings, n=1, cutoff=0.6)
            hint = f" Did you mean {close[0]} ({key_to_env(close[0])})?" if close else ""
            return [f"{where}: {key} is not an OMERO.web setting.{hint}"]
        return []
    shown = _shown(key, entry)
    if entry.value.strip() == "" and key not in EMPTY_ALLOWED:
        return [
            f"{where}: {key} is set to an empty value, which is not the same as unset. "
            "Remove the variable (or the line) to use the default, or give a value."
        ]
    name = parser_name(setting.parser)
    if name == "parse_boolean" and entry.value.strip().lower() not in BOOLEAN_WORDS:
        return [f"{where}: {key}={shown} is not a boolean; use true or false."]
    try:
        parsed = setting.parser(entry.value)
    except Exception as error:  # upstream parsers raise ValueError, KeyError, re.error ...
        hint = PARSER_HINTS.get(name, "a valid value")
        detail = _scrub(str(error), entry.value) if not _is_secret(key, entry) else ""
        detail = f" ({detail})" if detail else ""
        example = _example(setting)
        return [f"{where}: {key}={shown} is invalid{detail}. Expected {hint}{example}."]
    if name == "loads":
        expected = _json_type(setting)
        if expected is not None and not isinstance(parsed, expected):
            kind = "a JSON list" if expected is list else "a JSON object"
            return [f"{where}: {key} must be {kind}{_example(setting)}."]
    return []


def _json_type(setting):
    try:
        default = json.loads(setting.default) if isinstance(setting.default, str) else setting.default
    except ValueError:
        return None
    return type(default) if isinstance(default, (list, dict)) else None


def _example(setting):
    if parser_name(setting.parser) != "loads" or not isinstance(setting.default, str):
        return ""
    if len(setting.default) > 80:
        return ""
    return f", e.g. {setting.default}"


def _is_secret(key, entry):
    return entry.secret or key in SECRET_KEYS or "password" in key


def _shown(key, entry):
    if _is_secret(key, entry):
        return REDACTED
    value = entry.value if len(entry.value) <= 80 else entry.value[:77] + "..."
    return repr(value)


def _scrub(text, value):
    return text.replace(value, "<value>") if value.strip() else text


def _check_product_rules(config, schema):
    """Rules of this image on top of upstream's parsers."""
    problems = []
    get = config.get
    if get(KEY_PREFIX) and not get(KEY_PREFIX).value.startswith("/"):
        e = get(KEY_PREFIX)
        problems.append(f"{e.source}: the prefix '{e.value}' must start with '/', e.g. /omero.")
    if get(KEY_SERVER_LIST):
        problems.extend(_check_server_list(get(KEY_SERVER_LIST)))
    server = get("omero.web.application_server")
    if server and server.value.strip() != "wsgi-tcp":
        problems.append(
            f"{server.source}: omero.web.application_server={server.value!r} is not supported: this "
            "image runs gunicorn (wsgi-tcp). Remove the setting."
        )
    for key, low, high in (
        ("omero.web.application_server.port", 1, 65535),
        ("omero.web.wsgi_workers", 1, None),
        ("omero.web.wsgi_threads", 1, None),
        ("omero.web.wsgi_timeout", 1, None),
    ):
        e = get(key)
        if e and e.value.strip().lstrip("-").isdigit():
            number = int(e.value)
            if number < low or (high is not None and number > high):
                limit = f"between {low} and {high}" if high else f"at least {low}"
                problems.append(f"{e.source}: {key}={number} must be {limit}.")
    worker = get("omero.web.wsgi_worker_class")
    if worker and worker.value.strip() not in ("sync", "gevent"):
        problems.append(f"{worker.source}: omero.web.wsgi_worker_class must be sync or gevent.")
    elif worker and worker.value.strip() == "gevent" and not schema.module_exists("gevent"):
        problems.append(
            f"{worker.source}: omero.web.wsgi_worker_class=gevent needs the gevent package, which is "
            "not installed in this image; use sync (the default) or build a derived image with gevent."
        )
    problems.extend(_check_cors_origins(get(KEY_CORS_WHITELIST)))
    problems.extend(_check_session_store(config, schema))
    apps = get(KEY_APPS)
    if apps:
        names = _json_or_none(apps)
        for name in names if isinstance(names, list) else []:
            if not isinstance(name, str) or not schema.module_exists(name):
                problems.append(
                    f"{apps.source}: omero.web.apps lists {name!r}, which is not installed in this "
                    "image. Build a derived image that pip-installs the plugin, or remove it."
                )
    return problems


def _json_or_none(entry):
    """An entry's JSON value; None if there is no entry or it is not JSON (the parser check says so)."""
    try:
        return json.loads(entry.value) if entry else None
    except ValueError:
        return None


def _check_cors_origins(entry):
    origins = _json_or_none(entry)
    problems = []
    for origin in origins if isinstance(origins, list) else []:
        if not (isinstance(origin, str) and re.fullmatch(r"https?://[^/\s]+", origin)):
            bare = str(origin).split("://")[-1].strip("/")
            problems.append(
                f"{entry.source}: CORS origin {origin!r} never matches: write the scheme and no path, "
                f"e.g. https://{bare}"
            )
    return problems


def _check_session_store(config, schema):
    engine = config.get(KEY_SESSION_ENGINE)
    if not engine or engine.value.strip() not in CACHE_SESSION_ENGINES:
        return []
    try:
        caches = json.loads(effective(config, schema, KEY_CACHES))
        backend = caches.get("default", {}).get("BACKEND", "")
    except (ValueError, AttributeError):
        return []  # reported by the parser check
    if "DummyCache" not in backend:
        return []
    return [
        f"{engine.source}: omero.web.session_engine={engine.value.strip()} keeps sessions in the cache, but "
        "omero.web.caches is Django's DummyCache, which stores nothing: every login would be lost. "
        f"Set {ENV_REDIS_URL} (or omero.web.caches) as well."
    ]


def _check_server_list(entry):
    servers = _json_or_none(entry)
    if servers is None:
        return []
    example = '[["omero.example.org", 4064, "omero"]]'
    good = (
        isinstance(servers, list)
        and servers
        and all(
            isinstance(s, list)
            and len(s) in (2, 3)
            and isinstance(s[0], str)
            and s[0]
            and isinstance(s[1], int)
            and 0 < s[1] < 65536
            and (len(s) == 2 or isinstance(s[2], str))
            for s in servers
        )
    )
    if good:
        return []
    return [f"{entry.source}: omero.web.server_list must be a list of [host, port, name] lists, e.g. {example}."]


# --- Putting it together. -------------------------------------------------------------------


def list_omero_files(directory):
    return sorted(glob.glob(os.path.join(directory, "*.omero")))


def read_text(path):
    with open(path, encoding="utf-8") as handle:
        return handle.read()


def gather_ops(environ, omero_files, contract, read_text=read_text):
    """All operations in precedence order: files (defaults, then user), then the environment."""
    ops, problems = [], []
    for path in omero_files:
        try:
            ops.extend(parse_omero_file(read_text(path), path, read_text))
        except ConfigError as error:
            problems.extend(error.problems)
        except OSError as error:
            problems.append(f"{path}: cannot read it ({error.strerror or error}).")
    try:
        ops.extend(env_ops(environ, read_text, contract))
    except ConfigError as error:
        problems.extend(error.problems)
    if problems:
        raise ConfigError(problems)
    return ops


def resolve(ops, schema, public_paths=()):
    """Apply, normalise and validate. Returns ``{key: Entry}`` or raises ConfigError."""
    config = apply_ops(ops, schema)
    derived = cors_ops(config) + public_filter_ops(config, public_paths) + public_cache_ops(config)
    config = normalise(apply_ops(derived, schema, config))
    problems = validate(config, schema)
    if problems:
        raise ConfigError(problems)
    for key in (KEY_APP_HOST, KEY_APP_PORT):  # always written: the healthcheck reads the address
        config.setdefault(key, Entry(effective(config, schema, key), "omero-web's default"))
    return config


@dataclasses.dataclass(frozen=True)
class Configured:
    config: dict  # {key: Entry}, valid
    schema: "Schema"
    warnings: list  # for the log: variables that change nothing


def configure(environ, build=False):
    """The configure step of every start, and of ``collectstatic`` at build time (``build``):
    gather the operations in precedence order, load the settings definitions of the apps they
    enable, resolve and validate. Reads files, writes nothing; raises ConfigError.

    At build time the configuration is the defaults plus every preset (no site files), with a
    throw-away value for each plugin setting a site must set."""
    defaults_dir = environ.get(ENV_DEFAULTS_DIR, DEFAULTS_DIR)
    contract = load_contract(os.path.join(defaults_dir, CONTRACT_FILE))
    if build:
        files = baked_files(defaults_dir, "all")
    else:
        user_files = list_omero_files(environ.get(ENV_CONFIG_DIR, USER_CONFIG_DIR))
        files = baked_files(defaults_dir, *plugins_value(environ, user_files, contract)) + user_files
    ops = gather_ops(environ, files, contract)
    schema = load_schema(plugin_apps(ops))
    if build:
        ops = build_time_ops(ops, schema)
    public_paths = load_public_paths(os.path.join(defaults_dir, PUBLIC_FILE))
    return Configured(resolve(ops, schema, public_paths), schema, unknown_variables(environ, contract))


def build_time_ops(ops, schema):
    """For ``collectstatic`` at build time: a throw-away value for each plugin setting the site
    must set (the first of a few words its parser accepts), so that Django can load the plugin."""
    configured = {op.key for op in ops}
    extra = []
    for key, setting in sorted(schema.settings.items()):
        if setting.required and key not in configured:
            value = next((v for v in ("placeholder", "1", "true", "[]", "{}") if _parses(setting.parser, v)), None)
            if value is not None:
                extra.append(Op("set", key, value, "collectstatic (build time only)"))
    return ops + extra


def plugin_apps(ops):
    """The plugin names in ``omero.web.apps``, so their settings are known before validating."""
    try:
        apps = _json_or_none(apply_ops([op for op in ops if op.key == KEY_APPS], Schema({})).get(KEY_APPS))
    except ConfigError:
        return []  # reported when the configuration is validated
    return [a for a in apps if isinstance(a, str)] if isinstance(apps, list) else []


def render_config(config):
    """``key=value   # source`` lines, secrets redacted."""
    lines = []
    for key in sorted(config):
        entry = config[key]
        value = REDACTED if _is_secret(key, entry) else entry.value
        lines.append(f"{key}={value}    # {entry.source}")
    return "\n".join(lines)


def effective(config, schema, key):
    """The value omero-web will use: the configured one, else upstream's default."""
    if key in config:
        return config[key].value
    default = schema.settings[key].default
    return default if isinstance(default, str) else json.dumps(default)


def gunicorn_argv(config, schema, extra=()):
    """The gunicorn command line ``omero web start`` would build, plus our config file.

    ``extra`` (arguments given after ``web``) comes last, so it wins over ``omero.web.wsgi_args``.
    """
    value = lambda key: effective(config, schema, key)  # noqa: E731
    argv = [
        "gunicorn",
        "--config",
        GUNICORN_CONFIG,
        "--bind",
        f"{value('omero.web.application_server.host')}:{value('omero.web.application_server.port')}",
        "--workers",
        value("omero.web.wsgi_workers"),
        "--timeout",
        value("omero.web.wsgi_timeout"),
        "--max-requests",
        value("omero.web.application_server.max_requests"),
    ]
    if value("omero.web.wsgi_worker_class") == "gevent":
        argv += ["--worker-class", "gevent", "--worker-connections", value("omero.web.wsgi_worker_connections")]
    else:  # "sync": gunicorn's threaded worker, the one that keeps nginx's connections open
        argv += ["--worker-class", "gthread", "--threads", value("omero.web.wsgi_threads")]
    if "omero.web.wsgi_args" in config:
        argv += shlex.split(config["omero.web.wsgi_args"].value)
    return argv + list(extra) + ["omeroweb.wsgi:application"]


def gunicorn_environ(config, environ):
    """gunicorn's environment: ``SCRIPT_NAME`` = the prefix, as ``omero web start`` exports it,
    and the Redis URL of the cache, which gunicorn.conf.py watches to log outages."""
    env = dict(environ)
    env.pop("SCRIPT_NAME", None)
    env.pop(ENV_REDIS_WATCH, None)
    if KEY_PREFIX in config:
        env["SCRIPT_NAME"] = config[KEY_PREFIX].value
    redis = redis_location(config)
    if redis:
        env[ENV_REDIS_WATCH] = redis
    return env


def redis_location(config):
    """The Redis URL of the default cache, if it is a Redis cache (django-redis or Django's own)."""
    try:
        cache = json.loads(config[KEY_CACHES].value)["default"] if KEY_CACHES in config else {}
    except (ValueError, KeyError, TypeError):
        return None
    location = cache.get("LOCATION") if "redis" in str(cache.get("BACKEND", "")).lower() else None
    location = location[0] if isinstance(location, list) and location else location
    return location if isinstance(location, str) else None


# --- Side effects: loading upstream definitions, writing files, exec. ----------------------------


def load_schema(apps=()):
    """Import omero-web's settings definitions (upstream is the source of truth).

    ``omeroweb.settings`` reads ``$OMERODIR`` at import time; it is pointed at an empty
    scratch directory so the import sees only defaults and writes nothing that matters.
    Each app in ``omero.web.apps`` adds the ``*SETTINGS_MAPPING(S)`` of its settings
    modules (``<app>.settings``, ``<app>.*_settings``), as its own code defines them.
    """
    saved = {name: os.environ.get(name) for name in ("OMERODIR", "DJANGO_SETTINGS_MODULE")}
    with tempfile.TemporaryDirectory(prefix="omero-web-schema-") as scratch:
        os.environ["OMERODIR"] = scratch
        os.environ.setdefault("DJANGO_SETTINGS_MODULE", "omeroweb.settings")  # plugins read django.conf
        try:
            settings = importlib.import_module("omeroweb.settings")
            api = importlib.import_module("omeroweb.api.api_settings")
            modules = [
                (settings, "INTERNAL_SETTINGS_MAPPING"),
                (settings, "CUSTOM_SETTINGS_MAPPINGS"),
                (settings, "DEVELOPMENT_SETTINGS_MAPPINGS"),
                (api, "API_SETTINGS_MAPPING"),
            ]
            plugins = _plugin_settings(settings, apps)
        finally:
            for name, value in saved.items():
                if value is None:
                    os.environ.pop(name, None)
                else:
                    os.environ[name] = value
    table = {}
    for module, name in modules:
        for key, values in getattr(module, name, {}).items():
            table[key] = Setting(*values[:4])
    for key, values in getattr(settings, "DEPRECATED_SETTINGS_MAPPINGS", {}).items():
        table.setdefault(key, Setting(*values[:4]))  # still accepted; upstream warns about them
    for app, mapping in plugins:
        for key, values in mapping.items():
            table.setdefault(key, Setting(*values[:4], app=app, required=not _parses(values[2], values[1])))
    return Schema(table)


def _plugin_settings(settings, apps):
    """``[(app, mapping)]`` from the apps' settings modules. Imported with upstream's
    ``process_custom_settings`` made lenient, so a plugin setting that has no usable default
    (one the site must set) is reported by ``validate`` instead of failing the import."""
    strict = settings.process_custom_settings

    def lenient(module, name="CUSTOM_SETTINGS_MAPPINGS", deprecated=None):
        for values in getattr(module, name, {}).values():
            try:
                value = values[2](values[1])
            except Exception:  # no usable default: validate() names the setting
                value = values[1]
            setattr(module, values[0], value)

    found, problems = [], []
    settings.process_custom_settings = lenient
    try:
        for app in apps:
            spec = importlib.util.find_spec(app) if app.isidentifier() else None
            paths = spec.submodule_search_locations if spec else None
            for info in pkgutil.iter_modules(paths or []):
                if info.name != "settings" and not info.name.endswith("_settings"):
                    continue
                try:
                    module = importlib.import_module(f"{app}.{info.name}")
                except Exception as error:  # a plugin's import-time code can raise anything
                    problems.append(f"{app}: cannot load its settings module {app}.{info.name}: {error}")
                    continue
                for name, mapping in vars(module).items():
                    if name.endswith(("SETTINGS_MAPPING", "SETTINGS_MAPPINGS")) and isinstance(mapping, dict):
                        found.append((app, mapping))
    finally:
        settings.process_custom_settings = strict
    if problems:
        raise ConfigError(problems)
    return found


def _parses(parser, value):
    try:
        parser(value)
        return True
    except Exception:
        return False


def write_config(omerodir, config):
    """Rewrite ``$OMERODIR/etc/grid/config.xml`` from scratch, in this process."""
    from omero.config import ConfigXml

    grid = os.path.join(omerodir, "etc", "grid")
    os.makedirs(grid, exist_ok=True)
    path = os.path.join(grid, "config.xml")
    for stale in (path, path + ".lock"):
        if os.path.exists(stale):
            os.remove(stale)
    old_umask = os.umask(0o077)  # it may hold the secret key
    try:
        xml = ConfigXml(path)
        try:
            for key in sorted(config):
                xml[key] = config[key].value
        finally:
            xml.close()
    finally:
        os.umask(old_umask)
    return path


def write_start_files(omerodir, config):
    """What a start leaves on disk: config.xml, the generated secret key if none is set, no stale pid."""
    write_config(omerodir, config)
    ensure_secret_key(omerodir, config)
    remove_stale_pid(omerodir)


def ensure_secret_key(omerodir, config):
    """Without an explicit key, keep one generated key in the var volume (shared by workers)."""
    if KEY_SECRET_KEY in config:
        return None
    path = os.path.join(omerodir, "var", "django_secret_key")
    os.makedirs(os.path.dirname(path), exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return path
    with os.fdopen(fd, "w") as handle:
        handle.write(secrets.token_urlsafe(48))
    return path


def collect_static(environ):
    """Image builds (ours and derived ones): link the static files of OMERO.web and of every plugin
    with a preset into ``omero.web.static_root``, as symbolic links to the installed packages (no
    second copy). The configuration is the image's defaults plus every preset, written to a scratch
    ``OMERODIR`` that is removed afterwards: the image keeps no config.xml or secret key."""
    config = configure(environ, build=True).config
    scratch = tempfile.mkdtemp(prefix="omero-web-collectstatic-")
    try:
        write_config(scratch, config)
        env = dict(environ, OMERODIR=scratch, DJANGO_SETTINGS_MODULE="omeroweb.settings")
        argv = ["django-admin", "collectstatic", "--noinput", "--link", "--verbosity", "0"]
        return subprocess.run(argv, env=env).returncode
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def remove_stale_pid(omerodir):
    """A ``django.pid`` left by ``omero web start`` (e.g. the official image's var volume)."""
    path = os.path.join(omerodir, "var", "django.pid")
    if os.path.exists(path):
        os.remove(path)


def read_written_config(omerodir):
    """The properties entrypoint.py wrote to config.xml (its active block), stdlib only."""
    import xml.etree.ElementTree as ElementTree

    root = ElementTree.parse(os.path.join(omerodir, "etc", "grid", "config.xml")).getroot()
    block = next(p for p in root.iter("properties") if p.get("id") == "__ACTIVE__")
    return {p.get("name"): p.get("value") for p in block.iter("property")}


def health_url(written):
    """The cheapest page that proves Django answers: ``<prefix>/webgateway/``."""
    return f"http://127.0.0.1:{written[KEY_APP_PORT]}{written.get(KEY_PREFIX, '')}/webgateway/"


def healthcheck(omerodir, timeout=4):
    import urllib.request

    try:
        with urllib.request.urlopen(health_url(read_written_config(omerodir)), timeout=timeout) as answer:
            return 0 if answer.status == 200 else 1
    except Exception as error:  # any failure means unhealthy
        print(f"unhealthy: {error}", file=sys.stderr)
        return 1


USAGE = """usage: entrypoint.py [web | check | clearsessions | COMMAND...]
  web            run OMERO.web with gunicorn (omero.web.application_server.port) (default)
  check          validate the configuration and print it (secrets redacted)
  clearsessions  remove expired sessions (Django's clearsessions)
  collectstatic  image builds: link every installed plugin's static files into static_root
  healthcheck    exit 0 if gunicorn answers <prefix>/webgateway/ (used by HEALTHCHECK)
  standalone     supervisord running gunicorn and nginx (omero-web-standalone image)
  COMMAND...     anything else is run as given, e.g. bash
"""


def main(argv, environ=os.environ):
    command = argv[1:] or ["web"]
    if command[0] in ("-h", "--help", "help"):
        print(USAGE)
        return 0
    omerodir = environ.get(ENV_OMERODIR, DEFAULT_OMERODIR)
    if command[0] == "healthcheck":
        return healthcheck(omerodir)
    managed = command[0] in ("web", "check", "clearsessions", "standalone", "collectstatic")
    config = schema = None
    try:
        if command[0] == "collectstatic":
            return collect_static(environ)
        configured = configure(environ)
        config, schema = configured.config, configured.schema
        for warning in configured.warnings:
            print(f"WARNING: {warning}", file=sys.stderr)
    except ConfigError as error:
        print("ERROR: invalid OMERO.web configuration, nothing was started:", file=sys.stderr)
        for problem in error.problems:
            print(f"  - {problem}", file=sys.stderr)
        if managed:
            return 2
        print("WARNING: running the command anyway, without an OMERO.web configuration.", file=sys.stderr)

    if config is not None:
        try:
            write_start_files(omerodir, config)
        except OSError as error:
            print(
                f"ERROR: cannot write {error.filename} ({error.strerror}). {omerodir}/etc/grid and "
                f"{omerodir}/var must be writable by uid {os.getuid()}: with a read-only root filesystem, "
                "mount a tmpfs on etc/grid and a volume on var.",
                file=sys.stderr,
            )
            return 2

    if command[0] == "check":
        print(render_config(config))
        print("# gunicorn: " + shlex.join(gunicorn_argv(config, schema)))
        return 0
    if command[0] == "web":
        argv, env = gunicorn_argv(config, schema, command[1:]), gunicorn_environ(config, environ)
    elif command[0] == "standalone":
        argv, env = ["supervisord", "-c", SUPERVISORD_CONFIG, *command[1:]], environ
    elif command[0] == "clearsessions":
        argv, env = ["django-admin", "clearsessions", "--settings=omeroweb.settings", *command[1:]], environ
    else:
        argv, env = command, environ
    sys.stdout.flush()
    os.execvpe(argv[0], argv, env)
    return 0  # not reached (exec replaces this process)


if __name__ == "__main__":
    sys.exit(main(sys.argv))
