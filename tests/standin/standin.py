"""A test stand-in for OMERO.server: one Python Ice process that is the Glacier2 router, the session
factory and the few services OMERO.web calls to log a user in (see the project's login-protocol
reference). Tests only: never a product image's command.

    python3 standin.py [--tcp-port 4063] [--ssl-port 4064] [--Ice.Trace.Protocol=1 ...]
    python3 standin.py --check      (health check: the router answers a ping on the tcp port)

Like OMERO.server it listens on tcp 4063 and ssl 4064, so a server list written as users write it,
`[["omero", 4064, "omero"]]` (ssl), works as well as `[["tcp://omero", 4063, "omero"]]`. The ssl
endpoint's self-signed certificate is made with openssl at start (the client does not verify it).

Users: root/omero (admin), user-1/ome (normal user), guest/guest (OMERO.web's version check); any
other password is refused. Sessions live in memory. Every operation it does not implement answers
Ice.OperationNotExistException and is logged as "UNKNOWN CALL", so a new call OMERO.web starts
making fails clearly instead of hanging.
"""

import argparse
import logging
import os
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid

import Glacier2_Router_ice  # noqa: F401  (the Slice-generated Glacier2 classes)
import Ice
import omero
import omero.api
import omero.model
import omero.rtypes
import omero.sys
import omero_api_IAdmin_ice  # noqa: F401
import omero_API_ice  # noqa: F401
import omero_api_IConfig_ice  # noqa: F401
import omero_api_IQuery_ice  # noqa: F401
import omero_api_ISession_ice  # noqa: F401
from omero import ObjectFactoryRegistrar
from omero.rtypes import rbool, rlong, rmap, rstring, rtime, unwrap

Glacier2 = sys.modules["Glacier2_Router_ice"].__dict__["_M_Glacier2"]  # not the shadowing Glacier2.py

VERSION = "5.6.14-ice36"  # a real OMERO.server version: OMERO.web checks it at every login
# The users and groups OMERO.server always has (root, guest; system, user, guest), one lab.
# name: (id, password, groups with the default group first, groups led, admin)
USERS = {
    "root": (0, "omero", [0, 1], [], True),
    "guest": (1, "guest", [2], [], False),
    "user-1": (2, "ome", [3, 1], [], False),
}
GROUPS = {0: ("system", "rw----"), 1: ("user", "rwr---"), 2: ("guest", "rwr---"), 3: ("lab", "rwra--")}
ROLES = omero.sys.Roles(
    rootId=0, rootName="root", systemGroupId=0, systemGroupName="system", userGroupId=1, userGroupName="user",
    guestId=1, guestName="guest", guestGroupId=2, guestGroupName="guest",
)  # fmt: skip
ADMIN_PRIVILEGES = [
    "Chgrp", "Chown", "DeleteFile", "DeleteManagedRepo", "DeleteOwned", "DeleteScriptRepo", "ModifyGroup",
    "ModifyGroupMembership", "ModifyUser", "ReadSession", "Sudo", "WriteFile", "WriteManagedRepo", "WriteOwned",
    "WriteScriptRepo",
]  # fmt: skip


def experimenter(name, with_groups=False):
    user_id, _, groups, leads, _ = USERS[name]
    person = omero.model.ExperimenterI(user_id, True)
    person.setOmeName(rstring(name))
    person.setFirstName(rstring(name.capitalize()))
    person.setLastName(rstring("Standin"))
    person.setEmail(rstring(f"{name}@example.org"))
    person.setLdap(rbool(False))
    if with_groups:
        for group_id in groups:
            person.addGroupExperimenterMap(membership(group(group_id), person, group_id in leads), False)
    return person


def group(group_id, with_members=False):
    name, permissions = GROUPS[group_id]
    team = omero.model.ExperimenterGroupI(group_id, True)
    team.setName(rstring(name))
    team.setDescription(rstring(f"{name} (stand-in)"))
    team.setLdap(rbool(False))
    team.getDetails().setPermissions(omero.model.PermissionsI(permissions))
    if with_members:
        for user in USERS:
            if group_id in USERS[user][2]:
                team.addGroupExperimenterMap(membership(team, experimenter(user), group_id in USERS[user][3]), False)
    return team


def membership(team, person, leader):
    link = omero.model.GroupExperimenterMapI()
    link.setParent(team)
    link.setChild(person)
    link.setOwner(rbool(leader))
    return link


def admin_privilege(name):
    privilege = omero.model.AdminPrivilegeI()
    privilege.setValue(rstring(name))
    return privilege


def find(query, params):
    """Groups and experimenters from the model above that match the query's conditions on ids
    (`obj.id in (:ids)`, `gem.parent.id in :ids`, `grexp.child.id = :mid`) and on names
    (`grp.name != 'user'`); everything else (projects, images ...) is empty: an empty data tree."""
    entity, alias = re.search(r"\bfrom\s+(\w+)(?:\s+as)?(?:\s+(\w+))?", query).groups()
    if entity == "ExperimenterGroup":
        found = [group(i, with_members=True) for i in GROUPS]
    elif entity == "Experimenter":
        found = [experimenter(name, with_groups=True) for name in USERS]
    else:
        return []
    values = {name: unwrap(value) for name, value in ((params.map or {}) if params else {}).items()}
    for path, name in re.findall(r"([\w.]+)\.id\s*(?:=|in)\s*\(?:(\w+)", query):
        wanted = values[name] if isinstance(values[name], list) else [values[name]]
        found = [obj for obj in found if related_ids(obj, path, alias) & set(wanted)]
    for _path, name in re.findall(r"([\w.]+)\.name\s*!=\s*'([^']*)'", query):
        found = [obj for obj in found if obj.getName().val != name]
    return found


def related_ids(obj, path, alias):
    """The ids `path` names from `obj`: its own, or across its group memberships."""
    if path == alias:
        return {obj.getId().val}
    links = obj.copyGroupExperimenterMap()
    if path.endswith(".parent"):
        return {link.getParent().getId().val for link in links}
    if path.endswith(".child"):
        return {link.getChild().getId().val for link in links}
    raise ValueError(f"stand-in cannot follow {path} in a query")


def project(query, params):
    """Rows of plain columns (`select g.id, g.name, g.details.permissions from ExperimenterGroup g`)
    of groups and experimenters; counts are 0; any other projection (the data tree's) is empty."""
    if re.match(r"\s*select\s+count\(", query, re.IGNORECASE):
        return [[rlong(0)]]
    columns = re.match(r"\s*select\s+(?:distinct\s+)?((?:\w+\.[\w.]+\s*,\s*)*\w+\.[\w.]+)\s+from\s", query)
    if not columns:
        return []
    names = [column.split(".", 1)[1] for column in re.split(r"\s*,\s*", columns.group(1))]
    return [[column_value(obj, name) for name in names] for obj in find(query, params)]


def column_value(obj, column):
    if column == "details.permissions":
        return rmap({"perm": rstring(str(obj.getDetails().getPermissions()))})
    return getattr(obj, "get" + column[0].upper() + column[1:])()


log = logging.getLogger("standin")


def answer_unknown(servant_class):
    """Make every Slice operation `servant_class` does not define answer OperationNotExistException."""
    for attribute in dir(servant_class):
        if not attribute.startswith("_op_"):
            continue
        name = attribute[4:]
        if name.startswith("ice_") or name in vars(servant_class) or name + "_async" in vars(servant_class):
            continue  # implemented here
        for method in (name, name + "_async"):
            if hasattr(servant_class, method):  # the generated skeleton's: sync or AMD
                setattr(servant_class, method, _unknown(servant_class.__name__, name, amd=method.endswith("_async")))
    return servant_class


def _unknown(interface, name, amd):
    def unknown(self, *args, **kwargs):
        log.error("UNKNOWN CALL %s.%s", interface, name)
        error = Ice.OperationNotExistException()
        if amd:
            args[0].ice_exception(error)
        else:
            raise error

    return unknown


class Sessions:
    """OMERO sessions: uuid -> user name. (A Glacier2 session needs no state here: the OMERO
    session outlives it, as OMERO.web's detachOnDestroy asks.)"""

    def __init__(self):
        self.lock = threading.Lock()
        self.users = {}

    def user_of(self, session_uuid):
        with self.lock:
            return self.users.get(session_uuid)


@answer_unknown
class Router(Glacier2.Router):
    def __init__(self, sessions):
        self.sessions = sessions

    def getClientProxy(self, current=None):
        return None  # the client then sends everything to this endpoint: one adapter serves all

    def getServerProxy(self, current=None):
        return current.adapter.createProxy(Ice.stringToIdentity("standin/server"))

    def addProxies(self, proxies, current=None):
        return []

    def getCategoryForClient(self, current=None):
        return str(uuid.uuid4())

    def getSessionTimeout(self, current=None):
        return 600

    def getACMTimeout(self, current=None):
        return 600

    def refreshSession_async(self, cb, current=None):
        cb.ice_response()

    def createSession_async(self, cb, user, password, current=None):
        sessions = self.sessions
        with sessions.lock:
            if user == password and user in sessions.users:  # joining an existing session by uuid
                session_uuid = user
            elif user in USERS and USERS[user][1] == password:
                session_uuid = str(uuid.uuid4())
                sessions.users[session_uuid] = user
            else:
                log.info("login refused for %r", user)
                cb.ice_exception(Glacier2.PermissionDeniedException("Password check failed"))
                return
            # omero.ip: the user's address as OMERO.web reports it (its last X-Forwarded-For entry).
            ip = (current.ctx or {}).get("omero.ip")
            log.info("session %s for %s from %s", session_uuid[:8], sessions.users[session_uuid], ip)
        identity = Ice.Identity(session_uuid, "")
        cb.ice_response(Glacier2.SessionPrx.uncheckedCast(current.adapter.createProxy(identity)))

    def createSessionFromSecureConnection_async(self, cb, current=None):
        cb.ice_exception(Glacier2.PermissionDeniedException("only user name and password"))

    def destroySession(self, current=None):
        pass


@answer_unknown
class ServiceFactory(omero.api.ServiceFactory):
    """One servant for every session: the identity's name is the session uuid."""

    def _service(self, current, name, prx):
        return prx.uncheckedCast(current.adapter.createProxy(Ice.Identity(name, "standin")))

    def getSessionService(self, current=None):
        return self._service(current, "ISession", omero.api.ISessionPrx)

    def getConfigService(self, current=None):
        return self._service(current, "IConfig", omero.api.IConfigPrx)

    def getAdminService(self, current=None):
        return self._service(current, "IAdmin", omero.api.IAdminPrx)

    def getQueryService(self, current=None):
        return self._service(current, "IQuery", omero.api.IQueryPrx)

    def getScriptService(self, current=None):
        return self._service(current, "IScript", omero.api.IScriptPrx)

    def setCallback(self, callback, current=None):
        pass

    def detachOnDestroy(self, current=None):
        pass

    def closeOnDestroy(self, current=None):
        pass

    def keepAlive(self, proxy, current=None):
        return True

    def keepAllAlive(self, proxies, current=None):
        return []

    def destroy(self, current=None):
        pass


def session_uuid(current):
    """The OMERO session of the call: omero.client puts it in every call's context."""
    return current.ctx.get("omero.session.uuid")


@answer_unknown
class SessionService(omero.api.ISession):
    def __init__(self, sessions):
        self.sessions = sessions

    def getSession_async(self, cb, sessionUuid, current=None):
        user = self.sessions.user_of(sessionUuid)
        if user is None:
            cb.ice_exception(omero.RemovedSessionException("no such session"))
            return
        session = omero.model.SessionI()
        session.setUuid(rstring(sessionUuid))
        session.setTimeToIdle(rlong(600000))
        session.setTimeToLive(rlong(0))
        session.setStarted(rtime(int(time.time() * 1000)))
        session.setUserAgent(rstring("OMERO.web"))
        cb.ice_response(session)

    def closeSession_async(self, cb, session, current=None):
        with self.sessions.lock:
            self.sessions.users.pop(session.getUuid().val, None)
        cb.ice_response(0)


@answer_unknown
class ConfigService(omero.api.IConfig):
    VALUES = {
        "omero.version": VERSION,
        "omero.upgrades.url": "",  # no upgrade check from OMERO.web
        "omero.router.insecure": "",
        "omero.mail.config": "false",
        "omero.pixeldata.max_plane_width": "3192",  # OMERO.server's defaults (OMERO.figure reads them)
        "omero.pixeldata.max_plane_height": "3192",
    }

    def getConfigValue_async(self, cb, key, current=None):
        cb.ice_response(self.VALUES.get(key, ""))

    def getConfigValues_async(self, cb, keyRegex, current=None):
        cb.ice_response({})

    def getClientConfigValues_async(self, cb, current=None):
        cb.ice_response({})

    def getClientConfigDefaults_async(self, cb, current=None):
        cb.ice_response({})

    def getVersion_async(self, cb, current=None):
        cb.ice_response(VERSION)


@answer_unknown
class AdminService(omero.api.IAdmin):
    def __init__(self, sessions):
        self.sessions = sessions

    def _user(self, current):
        return self.sessions.user_of(session_uuid(current)) or "guest"

    def getEventContext_async(self, cb, current=None):
        name = self._user(current)
        user_id, _, groups, leads, admin = USERS[name]
        context = omero.sys.EventContext()
        context.shareId = -1
        context.sessionId = 1
        context.sessionUuid = session_uuid(current)
        context.userId = user_id
        context.userName = name
        context.groupId = groups[0]
        context.groupName = GROUPS[groups[0]][0]
        context.isAdmin = admin
        context.eventId = -1
        context.eventType = "User"
        context.memberOfGroups = groups
        context.leaderOfGroups = leads
        context.adminPrivileges = ADMIN_PRIVILEGES if admin else []
        context.groupPermissions = omero.model.PermissionsI(GROUPS[groups[0]][1])
        cb.ice_response(context)

    def getSecurityRoles_async(self, cb, current=None):
        cb.ice_response(ROLES)

    def getCurrentAdminPrivileges_async(self, cb, current=None):
        privileges = ADMIN_PRIVILEGES if USERS[self._user(current)][4] else []
        cb.ice_response([admin_privilege(name) for name in privileges])


@answer_unknown
class QueryService(omero.api.IQuery):
    def findAllByQuery_async(self, cb, query, params, current=None):
        log.info("findAllByQuery %s", " ".join(query.split()))
        cb.ice_response(find(query, params))

    def findByQuery_async(self, cb, query, params, current=None):
        log.info("findByQuery %s", " ".join(query.split()))
        found = find(query, params)
        cb.ice_response(found[0] if found else None)

    def projection_async(self, cb, query, params, current=None):
        log.info("projection %s", " ".join(query.split()))
        cb.ice_response(project(query, params))


@answer_unknown
class ScriptService(omero.api.IScript):
    """A server without scripts (OMERO.figure asks for its export script and for lookup tables)."""

    def getScriptID_async(self, cb, path, current=None):
        log.info("getScriptID %s: none", path)
        cb.ice_response(-1)

    def getScriptsByMimetype_async(self, cb, mimetype, current=None):
        log.info("getScriptsByMimetype %s: none", mimetype)
        cb.ice_response([])


class Locator(Ice.ServantLocator):
    """Every session uuid is served by the one ServiceFactory servant."""

    def __init__(self, factory, sessions):
        self.factory, self.sessions = factory, sessions

    def locate(self, current):
        if self.sessions.user_of(current.id.name) is not None:
            return self.factory, None
        return None, None

    def finished(self, current, servant, cookie):
        pass

    def deactivate(self, category):
        pass


def self_signed_certificate(directory):
    """A throw-away certificate for the ssl endpoint; returns (certificate, key) paths."""
    cert, key = os.path.join(directory, "standin.crt"), os.path.join(directory, "standin.key")
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
         "-days", "30", "-subj", "/CN=omero", "-keyout", key, "-out", cert],
        check=True, capture_output=True,
    )  # fmt: skip
    return cert, key


def check(port):
    """Exit 0 when the router answers a ping on the tcp port (the container's health check)."""
    communicator = Ice.initialize(["--Ice.Override.Timeout=2000"])
    try:
        communicator.stringToProxy(f"OMERO.Glacier2/router:tcp -h 127.0.0.1 -p {port}").ice_ping()
    finally:
        communicator.destroy()


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tcp-port", type=int, default=4063)
    parser.add_argument("--ssl-port", type=int, default=4064)
    parser.add_argument("--check", action="store_true", help="health check, then exit")
    args, ice_args = parser.parse_known_args(argv)  # --Ice.Trace.Protocol=1 ... for debugging
    if args.check:
        return check(args.tcp_port)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s standin %(levelname)s %(message)s", stream=sys.stdout)
    data = Ice.InitializationData()
    data.properties = Ice.createProperties(ice_args)
    data.properties.setProperty("Ice.ThreadPool.Server.SizeMax", "16")
    endpoints = f"tcp -p {args.tcp_port}"
    if args.ssl_port:
        cert, key = self_signed_certificate(tempfile.mkdtemp(prefix="standin-"))
        for name, value in {
            "Ice.Plugin.IceSSL": "IceSSL:createIceSSL",
            "IceSSL.CertFile": cert,
            "IceSSL.KeyFile": key,
            "IceSSL.VerifyPeer": "0",  # OMERO clients present no certificate
        }.items():
            data.properties.setProperty(name, value)
        endpoints += f":ssl -p {args.ssl_port}"
    communicator = Ice.initialize(data)
    ObjectFactoryRegistrar.registerObjectFactory(communicator)  # model classes and rtypes in requests,
    for factory in omero.rtypes.ObjectFactories.values():  # as omero.client registers them
        factory.register(communicator)
    sessions = Sessions()
    adapter = communicator.createObjectAdapterWithEndpoints("standin", endpoints)
    adapter.add(Router(sessions), Ice.stringToIdentity("OMERO.Glacier2/router"))
    adapter.add(SessionService(sessions), Ice.Identity("ISession", "standin"))
    adapter.add(ConfigService(), Ice.Identity("IConfig", "standin"))
    adapter.add(AdminService(sessions), Ice.Identity("IAdmin", "standin"))
    adapter.add(QueryService(), Ice.Identity("IQuery", "standin"))
    adapter.add(ScriptService(), Ice.Identity("IScript", "standin"))
    adapter.addServantLocator(Locator(ServiceFactory(), sessions), "")
    adapter.activate()
    signal.signal(signal.SIGTERM, lambda *_: communicator.shutdown())
    log.info("OMERO.server stand-in %s listening: %s", VERSION, endpoints)
    communicator.waitForShutdown()
    communicator.destroy()


if __name__ == "__main__":
    sys.exit(main())
