"""A test stand-in for OMERO.server: one Python Ice process that is the Glacier2 router, the session
factory and the services OMERO.web calls to log a user in (see the project's login-protocol
reference) and to show the images of a small data set with real pixels (data.py): the data tree,
imgData, thumbnails, rendered planes and regions, what OMERO.iviewer asks for. Each user sees the
data of their groups only. Tests only: never a product image's command.

    python3 standin.py [--tcp-port 4063] [--ssl-port 4064] [--Ice.Trace.Protocol=1 ...]

Like OMERO.server it listens on tcp 4063 and ssl 4064, so a server list written as users write it,
`[["omero", 4064, "omero"]]` (ssl), works as well as `[["tcp://omero", 4063, "omero"]]`. The ssl
endpoint's self-signed certificate is made with openssl at start (the client does not verify it).

Users: root/omero (admin), user-1/ome (normal user), public/public-ome (a public data site's
public user, in the read-only group public-data), guest/guest (OMERO.web's version check); any
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

import data
import Glacier2_Router_ice  # noqa: F401  (the Slice-generated Glacier2 classes)
import Ice
import omero
import omero.api
import omero.model
import omero.romio
import omero.rtypes
import omero.sys
import omero_api_IAdmin_ice  # noqa: F401
import omero_API_ice  # noqa: F401
import omero_api_IConfig_ice  # noqa: F401
import omero_api_IContainer_ice  # noqa: F401
import omero_api_IPixels_ice  # noqa: F401
import omero_api_IQuery_ice  # noqa: F401
import omero_api_ISession_ice  # noqa: F401
import omero_api_ITypes_ice  # noqa: F401
import omero_api_RawPixelsStore_ice  # noqa: F401
import omero_api_RenderingEngine_ice  # noqa: F401
import omero_api_ThumbnailStore_ice  # noqa: F401
from omero import ObjectFactoryRegistrar
from omero.rtypes import rbool, rdouble, rint, rlong, rmap, rstring, rtime, unwrap

Glacier2 = sys.modules["Glacier2_Router_ice"].__dict__["_M_Glacier2"]  # not the shadowing Glacier2.py

VERSION = "5.6.14-ice36"  # a real OMERO.server version: OMERO.web checks it at every login
# The users and groups OMERO.server always has (root, guest; system, user, guest), one lab.
# name: (id, password, groups with the default group first, groups led, admin)
USERS = {
    "root": (0, "omero", [0, 1], [], True),
    "guest": (1, "guest", [2], [], False),
    "user-1": (2, "ome", [3, 4, 1], [], False),
    "public": (3, "public-ome", [4, 1], [], False),
}
GROUPS = {
    0: ("system", "rw----"), 1: ("user", "rwr---"), 2: ("guest", "rwr---"), 3: ("lab", "rwra--"),
    4: ("public-data", "rwr---"),
}  # fmt: skip
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


# --- The data set (data.py) as OMERO model objects, and the queries OMERO.web asks about it. -----

CREATED = rtime(1_700_000_000_000)  # every object's creation time (ms)
PERMISSION_KEYS = ("canAnnotate", "canDelete", "canEdit", "canLink", "canChgrp", "canChown")


class Viewer:
    """Who asks, and from which groups (the call's omero.group context): what they may read."""

    def __init__(self, user, context_group=None):
        self.name = user or "guest"
        self.id, _, member_of, _, self.admin = USERS[self.name]
        self.groups = data.readable_groups(member_of, self.admin, context_group)

    def sees(self, thing):
        return thing is not None and thing.group in self.groups

    def owns(self, thing):
        return thing.owner == self.id or self.admin


def permissions(viewer, thing):
    """The object's permissions as OMERO.server sends them to this viewer: its group's, with what
    the viewer may not do restricted (a read-only group's data is read-only for all but its owner)."""
    perms = omero.model.PermissionsI(GROUPS[thing.group][1])
    if not viewer.owns(thing):
        perms._restrictions = [True] * 6
    return perms


def permissions_map(viewer, thing):
    """A projection's ``<x>_details_permissions`` column (OMERO.server's IceMapper)."""
    perms = permissions(viewer, thing)
    values = {"perm": rstring(str(perms))}
    values.update({key: rbool(getattr(perms, key)()) for key in PERMISSION_KEYS})
    return rmap(values)


def with_details(obj, viewer, thing):
    details = obj.getDetails()
    details.setOwner(experimenter(name_of(thing.owner)))
    details.setGroup(group(thing.group))
    details.setPermissions(permissions(viewer, thing))
    event = omero.model.EventI(1, True)
    event.setTime(CREATED)
    details.setCreationEvent(event)
    return obj


def name_of(user_id):
    return next(name for name, fields in USERS.items() if fields[0] == user_id)


def project_object(viewer, project):
    obj = omero.model.ProjectI(project.id, True)
    obj.setName(rstring(project.name))
    obj.setDescription(rstring(""))
    return with_details(obj, viewer, project)


def dataset_object(viewer, dataset):
    obj = omero.model.DatasetI(dataset.id, True)
    obj.setName(rstring(dataset.name))
    obj.setDescription(rstring(""))
    return with_details(obj, viewer, dataset)


def enumeration(kind, value, ident):
    obj = getattr(omero.model, kind + "I")(ident, True)
    obj.setValue(rstring(value))
    return obj


def pixels_object(image, with_channels=False):
    pixels = omero.model.PixelsI(image.id, True)
    for name, value in (("SizeX", image.size_x), ("SizeY", image.size_y), ("SizeZ", image.size_z),
                        ("SizeC", image.size_c), ("SizeT", image.size_t)):  # fmt: skip
        getattr(pixels, "set" + name)(rint(value))
    pixels.setPixelsType(enumeration("PixelsType", "uint8", 1))
    pixels.setDimensionOrder(enumeration("DimensionOrder", "XYZCT", 1))
    micrometer = omero.model.enums.UnitsLength.MICROMETER
    pixels.setPhysicalSizeX(omero.model.LengthI(0.25, micrometer))
    pixels.setPhysicalSizeY(omero.model.LengthI(0.25, micrometer))
    pixels.setPhysicalSizeZ(omero.model.LengthI(1.0, micrometer) if image.size_z > 1 else None)
    pixels.setSha1(rstring(""))
    if with_channels:
        for index, channel in enumerate(image.channels):
            logical = omero.model.LogicalChannelI(image.id * 100 + index, True)
            logical.setName(rstring(channel.name))
            logical.setEmissionWave(omero.model.LengthI(channel.emission, omero.model.enums.UnitsLength.NANOMETER))
            stats = omero.model.StatsInfoI(image.id * 100 + index, True)
            low, high = image.channel_range(index)
            stats.setGlobalMin(rdouble(low))
            stats.setGlobalMax(rdouble(high))
            each = omero.model.ChannelI(image.id * 100 + index, True)
            each.setLogicalChannel(logical)
            each.setStatsInfo(stats)
            pixels.addChannel(each)
    else:
        pixels.unloadChannels()
    return pixels


def image_object(viewer, image, with_pixels=False):
    """An Image as the server returns it: without its pixels from a query (the gateway then asks
    IContainer.getImages, whose answer carries them)."""
    obj = omero.model.ImageI(image.id, True)
    obj.setName(rstring(image.name))
    obj.setDescription(rstring(""))
    obj.setArchived(rbool(False))
    obj.setPartial(rbool(False))
    with_details(obj, viewer, image)
    if with_pixels:
        pixels = pixels_object(image)
        pixels.setImage(omero.model.ImageI(image.id, False))
        obj.addPixels(pixels)
    else:
        obj.unloadPixels()
    return obj


def link(kind, viewer, parent, child):
    obj = getattr(omero.model, kind + "I")(parent.getId().val * 1000 + child.getId().val, True)
    obj.setParent(parent)
    obj.setChild(child)
    return obj


def in_order(things):
    return sorted(things, key=lambda thing: (thing.name.lower(), thing.id))


def parameters(params):
    """``{name: plain value}`` of a query's parameters, and its (offset, limit) if paged."""
    values = {name: unwrap(value) for name, value in ((params.map or {}) if params else {}).items()}
    page = params.theFilter if params is not None and params.theFilter is not None else None
    offset = unwrap(page.offset) if page is not None else None
    limit = unwrap(page.limit) if page is not None else None
    return values, (offset or 0, limit)


def paged(rows, page):
    offset, limit = page
    return rows[offset : offset + limit] if limit else rows[offset:]


def owned_by(query, values):
    """The owner a query filters on (`….details.owner.id = :id`), or None."""
    match = re.search(r"details\.owner\.id\s*=\s*:(\w+)", query)
    return values.get(match.group(1)) if match else None


def number_in(query, pattern):
    return int(re.search(pattern, query).group(1))


def visible(viewer, things, owner=None):
    return [t for t in things if viewer.sees(t) and (owner is None or owner == -1 or t.owner == owner)]


def orphaned_images(viewer, owner):
    return [i for i in visible(viewer, data.IMAGES.values(), owner) if i.dataset is None]


def images_in(viewer, dataset_id):
    return [i for i in visible(viewer, data.IMAGES.values()) if i.dataset == dataset_id]


def normal(query):
    """The query on one line, without spaces inside parentheses: one spelling of each."""
    return re.sub(r"\s+\)", ")", re.sub(r"\(\s+", "(", " ".join(query.split())))


def data_objects(viewer, query, params):
    """IQuery.findAllByQuery / findByQuery about the data set: a list, or None if the query is
    not about it."""
    values, page = parameters(params)
    q = normal(query)
    if re.search(r"\bfrom Image obj\b", q) and "dlink.parent.id = :did" in q:  # the JSON API's images of a dataset
        found = in_order(images_in(viewer, values["did"]))
        return [image_object(viewer, i, with_pixels="fetch obj.pixels" in q) for i in paged(found, page)]
    if re.search(r"\bfrom Image obj\b", q) and re.search(r"obj\.id ?(in \(:ids\)|= ?:id)", q):
        wanted = values.get("ids", values.get("id"))
        wanted = set(wanted) if isinstance(wanted, list) else {wanted}
        return [image_object(viewer, i) for i in in_order(visible(viewer, data.IMAGES.values())) if i.id in wanted]
    if re.search(r"\bfrom (Project|Dataset) obj\b", q):  # the JSON API's projects, datasets
        kind = re.search(r"\bfrom (Project|Dataset) obj\b", q).group(1)
        things = data.PROJECTS if kind == "Project" else data.DATASETS
        found = in_order(visible(viewer, things.values(), owned_by(q, values)))
        if kind == "Dataset" and "plink.parent.id = :pid" in q:
            found = [d for d in found if d.parent == values["pid"]]
        make = project_object if kind == "Project" else dataset_object
        return [make(viewer, t) for t in paged(found, page)]
    if q.startswith("from DatasetImageLink as c where c.child.id="):
        image = data.IMAGES.get(number_in(q, r"c\.child\.id=(\d+)"))
        if not viewer.sees(image) or image.dataset is None:
            return []
        dataset = data.DATASETS[image.dataset]
        return [link("DatasetImageLink", viewer, dataset_object(viewer, dataset), image_object(viewer, image))]
    if q.startswith("from ProjectDatasetLink as c where c.child.id="):
        dataset = data.DATASETS.get(number_in(q, r"c\.child\.id=(\d+)"))
        if not viewer.sees(dataset) or dataset.parent is None:
            return []
        project = data.PROJECTS[dataset.parent]
        return [link("ProjectDatasetLink", viewer, project_object(viewer, project), dataset_object(viewer, dataset))]
    if q.startswith("select p from Image i join i.datasetLinks"):  # the project of an image
        image = data.IMAGES.get(number_in(q, r"i\.id = (\d+)"))
        dataset = data.DATASETS.get(image.dataset) if viewer.sees(image) else None
        return [project_object(viewer, data.PROJECTS[dataset.parent])] if dataset and dataset.parent else []
    if re.search(r"\bfrom (WellSample|PlaneInfo|Roi|Screen|Plate)\b", q):  # none in this data set
        return []
    if q.startswith("select e from Experimenter e where e.id = "):
        return [experimenter(name_of(number_in(q, r"e\.id = (\d+)")))]
    return None


def data_rows(viewer, query, params):
    """IQuery.projection about the data set: rows, or None if the query is not about it."""
    values, page = parameters(params)
    q = normal(query)
    owner = owned_by(q, values)
    count = re.match(r"select count\((?:distinct )?(\w+)(?:\.id)?\) from (\w+)", q)
    if count and count.group(2) in ("Image", "Project", "Dataset", "Screen", "Plate", "Roi"):
        if count.group(2) in ("Project", "Dataset"):  # the JSON API's totals
            return [[rlong(len(data_objects(viewer, re.sub(r"^select count\([^)]*\)", "select obj", q), params)))]]
        if count.group(2) == "Image" and "dlink.parent.id = :did" in q:
            return [[rlong(len(images_in(viewer, values["did"])))]]
        if count.group(2) == "Image" and "not exists (select dilink from DatasetImageLink" in q:
            return [[rlong(len(orphaned_images(viewer, owner)))]]
        if count.group(2) == "Image":
            return None
        return [[rlong(0)]]  # no screens, plates or ROIs
    if re.match(r"select count\((fse|link)\), sum\((fse\.originalFile|link\.parent)\.size\) from", q):
        return [[rlong(0), None]]  # no imported or archived files: made at start, not imported
    if q.startswith("select ann.id, ann.ns, ann.textValue from Fileset"):
        return []
    if q.startswith("select new map(project.id as id"):
        datasets = visible(viewer, data.DATASETS.values())
        return [[rmap({"id": rlong(p.id), "name": rstring(p.name), "ownerId": rlong(p.owner),
                       "project_details_permissions": permissions_map(viewer, p),
                       "childCount": rlong(len([d for d in datasets if d.parent == p.id]))})]
                for p in paged(in_order(visible(viewer, data.PROJECTS.values(), owner)), page)]  # fmt: skip
    if q.startswith("select new map(dataset.id as id"):
        found = in_order(visible(viewer, data.DATASETS.values(), owner))
        if "plink.parent.id = :pid" in q:
            found = [d for d in found if d.parent == values["pid"]]
        elif "not exists (select pdlink from ProjectDatasetLink" in q:
            found = [d for d in found if d.parent is None]
        else:
            return None
        return [[rmap({"id": rlong(d.id), "name": rstring(d.name), "ownerId": rlong(d.owner),
                       "dataset_details_permissions": permissions_map(viewer, d),
                       "childCount": rlong(len(images_in(viewer, d.id)))})]
                for d in paged(found, page)]  # fmt: skip
    if re.match(r"select new map\((screen|plate)\.id as id", q):
        return []
    if q.startswith("select new map(image.id as id"):
        if "dlink.parent.id = :did" in q:
            found = images_in(viewer, values["did"])
        elif "not exists (select dilink from DatasetImageLink" in q:
            found = orphaned_images(viewer, owner)
        else:
            return None
        return [[rmap({"id": rlong(i.id), "archived": rbool(False), "name": rstring(i.name),
                       "ownerId": rlong(i.owner), "image_details_permissions": permissions_map(viewer, i),
                       "filesetId": None, "sizeX": rint(i.size_x), "sizeY": rint(i.size_y), "sizeT": rint(i.size_t),
                       "sizeZ": rint(i.size_z), "date": CREATED, "acqDate": None})]
                for i in paged(in_order(found), page)]  # fmt: skip
    if q.startswith("select new map(i.id as im_id, p.id as pix_id) from Pixels"):
        wanted = set(values["ids"])
        return [[rmap({"im_id": rlong(i.id), "pix_id": rlong(i.id)})]
                for i in visible(viewer, data.IMAGES.values()) if i.id in wanted]  # fmt: skip
    if q.startswith("select coalesce(powner.id, downer.id, iowner.id), pdlink.parent.id, dilink.parent.id"):
        image = data.IMAGES.get(values["iid"])
        if not viewer.sees(image):
            return []
        dataset = data.DATASETS.get(image.dataset)
        project = data.PROJECTS.get(dataset.parent) if dataset else None
        return [[rlong((project or dataset or image).owner), rlong(project.id) if project else None,
                 rlong(dataset.id) if dataset else None, rlong(len(images_in(viewer, image.dataset))),
                 rlong(image.id), rlong(image.group)]]  # fmt: skip
    if q.startswith("select image.id from Image image join image.datasetLinks dlink where dlink.parent.id = :did"):
        return [[rlong(i.id)] for i in in_order(images_in(viewer, values["did"]))]
    return None


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


def amd(servant_class):
    """For every plain method `op` of `servant_class` whose Slice operation is asynchronous (AMD),
    an `op_async` that answers with its result or its exception; then answer_unknown."""
    ours = [c for c in reversed(servant_class.__mro__) if c.__module__ == __name__]  # with mixins (Stateful)
    for name, method in {n: m for c in ours for n, m in vars(c).items()}.items():
        if name.startswith("_") or not callable(method) or not hasattr(servant_class, f"_op_{name}"):
            continue
        if hasattr(servant_class, name + "_async"):
            setattr(servant_class, name + "_async", _answering(name, method))
    return answer_unknown(servant_class)


def _answering(name, method):
    def answer(self, cb, *args):
        *args, current = args  # Ice passes the Current last, positionally
        try:
            result = method(self, *args, current=current)
        except Ice.Exception as error:
            cb.ice_exception(error)
        except Exception as error:  # a bug here: OMERO.web sees an InternalException, the log says why
            log.exception("%s failed", name)
            cb.ice_exception(omero.InternalException(message=f"stand-in: {name}: {error}"))
        else:
            try:
                cb.ice_response(result)  # an operation with a result (None: a null object)
            except Exception:
                cb.ice_response()  # a void one

    return answer


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

    def __init__(self, sessions):
        self.sessions = sessions

    def _service(self, current, name, prx):
        return prx.uncheckedCast(current.adapter.createProxy(Ice.Identity(name, "standin")))

    def _stateful(self, current, servant_class, prx):
        servant = servant_class(self.sessions.user_of(current.id.name))
        return prx.uncheckedCast(current.adapter.add(servant, Ice.Identity(str(uuid.uuid4()), "standin-stateful")))

    def getContainerService(self, current=None):
        return self._service(current, "IContainer", omero.api.IContainerPrx)

    def getTypesService(self, current=None):
        return self._service(current, "ITypes", omero.api.ITypesPrx)

    def getPixelsService(self, current=None):
        return self._service(current, "IPixels", omero.api.IPixelsPrx)

    def createRenderingEngine(self, current=None):
        return self._stateful(current, RenderingEngine, omero.api.RenderingEnginePrx)

    def createThumbnailStore(self, current=None):
        return self._stateful(current, ThumbnailStore, omero.api.ThumbnailStorePrx)

    def createRawPixelsStore(self, current=None):
        return self._stateful(current, RawPixelsStore, omero.api.RawPixelsStorePrx)

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
        "omero.pixeldata.max_projection_bytes": "268435456",  # OMERO.iviewer reads it
        "omero.pixeldata.max_tile_length": "1024",
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


@amd
class QueryService(omero.api.IQuery):
    """The data set's queries (data_objects, data_rows), then the groups' and users' (find, project)."""

    def __init__(self, sessions):
        self.sessions = sessions

    def findAllByQuery(self, query, params, current=None):
        log.info("findAllByQuery %s", " ".join(query.split()))
        found = data_objects(viewer_of(self.sessions, current), query, params)
        return find(query, params) if found is None else found

    def findByQuery(self, query, params, current=None):
        found = self.findAllByQuery(query, params, current)
        return found[0] if found else None

    def projection(self, query, params, current=None):
        log.info("projection %s", " ".join(query.split()))
        rows = data_rows(viewer_of(self.sessions, current), query, params)
        return project(query, params) if rows is None else rows


@answer_unknown
class ScriptService(omero.api.IScript):
    """A server without scripts (OMERO.figure asks for its export script and for lookup tables)."""

    def getScriptID_async(self, cb, path, current=None):
        log.info("getScriptID %s: none", path)
        cb.ice_response(-1)

    def getScripts_async(self, cb, current=None):
        cb.ice_response([])  # the right-hand panel lists the figure scripts

    def getScriptsByMimetype_async(self, cb, mimetype, current=None):
        log.info("getScriptsByMimetype %s: none", mimetype)
        cb.ice_response([])


# --- Images: the containers, types and pixels services, and the stateful ones (one servant per
# instance OMERO.web creates, removed again by its close()). -------------------------------------


def viewer_of(sessions, current):
    return Viewer(sessions.user_of(session_uuid(current)), (current.ctx or {}).get("omero.group"))


def image_for(viewer, pixels_id):
    image = data.IMAGES.get(pixels_id)
    if not viewer.sees(image):
        raise omero.SecurityViolation(message=f"Pixels:{pixels_id} is not readable")
    return image


@amd
class ContainerService(omero.api.IContainer):
    def __init__(self, sessions):
        self.sessions = sessions

    def getImages(self, rootType, rootIds, options, current=None):
        viewer = viewer_of(self.sessions, current)
        if rootType != "Image":
            raise omero.ApiUsageException(message=f"stand-in: getImages of {rootType}")
        return [
            image_object(viewer, data.IMAGES[i], with_pixels=True) for i in rootIds if viewer.sees(data.IMAGES.get(i))
        ]


@amd
class TypesService(omero.api.ITypes):
    ENUMERATIONS = {
        "RenderingModel": ["rgb", "greyscale"],
        "Family": ["linear", "polynomial", "exponential", "logarithmic"],
    }

    def allEnumerations(self, type, current=None):
        kind = type.removeprefix("omero.model.").removesuffix("I")
        return [enumeration(kind, value, i + 1) for i, value in enumerate(self.ENUMERATIONS[kind])]


@amd
class PixelsService(omero.api.IPixels):
    def retrieveAllRndSettings(self, pixId, userId, current=None):
        return []  # no saved settings of other users to offer


class Stateful:
    """One instance of a stateful service: who created it, and its close()."""

    def __init__(self, user):
        self.user = user

    def viewer(self, current):
        return Viewer(self.user, (current.ctx or {}).get("omero.group"))

    def close(self, current=None):
        current.adapter.remove(current.id)


@amd
class ThumbnailStore(Stateful, omero.api.ThumbnailStore):
    def setPixelsId(self, pixelsId, current=None):
        self.image = image_for(self.viewer(current), pixelsId)
        return True  # every user has rendering settings for every image they see

    def setRenderingDefId(self, renderingDefId, current=None):
        pass

    def getRenderingDefId(self, current=None):
        return 1000 + self.image.id

    def resetDefaults(self, current=None):
        pass

    def isInProgress(self, current=None):
        return False

    def getThumbnailByLongestSide(self, size, current=None):
        return data.thumbnail(self.image, unwrap(size) or 96)

    def getThumbnailByLongestSideDirect(self, size, current=None):
        return self.getThumbnailByLongestSide(size, current)

    def getThumbnailDirect(self, sizeX, sizeY, current=None):
        return data.thumbnail(self.image, max(unwrap(sizeX) or 96, unwrap(sizeY) or 96))

    def getThumbnailForSectionByLongestSideDirect(self, theZ, theT, size, current=None):
        return data.thumbnail(self.image, unwrap(size) or 96, theZ, theT)

    def getThumbnailByLongestSideSet(self, size, pixelsIds, current=None):
        viewer = self.viewer(current)
        return {
            i: data.thumbnail(data.IMAGES[i], unwrap(size) or 96) for i in pixelsIds if viewer.sees(data.IMAGES.get(i))
        }


@amd
class RawPixelsStore(Stateful, omero.api.RawPixelsStore):
    def setPixelsId(self, pixelsId, bypassOriginalFile, current=None):
        self.image = image_for(self.viewer(current), pixelsId)

    def getByteWidth(self, current=None):
        return 1

    def isSigned(self, current=None):
        return False


@amd
class RenderingEngine(Stateful, omero.api.RenderingEngine):
    def lookupPixels(self, pixelsId, current=None):
        self.image = image_for(self.viewer(current), pixelsId)
        self.compression = 0.85

    def lookupRenderingDef(self, pixelsId, current=None):
        return True

    def getRenderingDefId(self, current=None):
        return 1000 + self.image.id

    def load(self, current=None):
        self.current = data.Settings.defaults(self.image)  # no one saves settings here: the public user cannot

    def resetDefaultSettings(self, save, current=None):
        self.current = data.Settings.defaults(self.image)
        return 1000 + self.image.id

    def getPixels(self, current=None):
        pixels = pixels_object(self.image, with_channels=True)
        pixels.setImage(omero.model.ImageI(self.image.id, False))
        return pixels

    def getModel(self, current=None):
        return enumeration("RenderingModel", self.current.model, 1 if self.current.model == "rgb" else 2)

    def setModel(self, model, current=None):
        self.current.model = unwrap(model.getValue())

    def getDefaultZ(self, current=None):
        return self.current.default_z

    def getDefaultT(self, current=None):
        return self.current.default_t

    def setActive(self, w, active, current=None):
        self.current.active[w] = active

    def isActive(self, w, current=None):
        return self.current.active[w]

    def setChannelWindow(self, w, start, end, current=None):
        self.current.windows[w] = (start, end)

    def getChannelWindowStart(self, w, current=None):
        return self.current.windows[w][0]

    def getChannelWindowEnd(self, w, current=None):
        return self.current.windows[w][1]

    def setRGBA(self, w, red, green, blue, alpha, current=None):
        self.current.colors[w] = (red, green, blue, alpha)

    def getRGBA(self, w, current=None):
        return list(self.current.colors[w])

    def setChannelLookupTable(self, w, lookup, current=None):
        self.current.luts[w] = lookup or ""

    def getChannelLookupTable(self, w, current=None):
        return self.current.luts[w]

    def getChannelFamily(self, w, current=None):
        return enumeration("Family", "linear", 1)

    def getChannelCurveCoefficient(self, w, current=None):
        return 1.0

    def setQuantizationMap(self, w, family, coefficient, noiseReduction, current=None):
        pass  # linear only: the data set is uint8 and the viewers send linear

    def getCodomainMapContext(self, w, current=None):
        return [omero.model.ReverseIntensityContextI()] if self.current.inverted[w] else []

    def addCodomainMapToChannel(self, mapCtx, w, current=None):
        self.current.inverted[w] = True

    def removeCodomainMapFromChannel(self, mapCtx, w, current=None):
        self.current.inverted[w] = False

    def getPixelsTypeLowerBound(self, w, current=None):
        return 0.0

    def getPixelsTypeUpperBound(self, w, current=None):
        return 255.0

    def setCompressionLevel(self, percentage, current=None):
        self.compression = percentage

    def getCompressionLevel(self, current=None):
        return self.compression

    def getResolutionLevels(self, current=None):
        return 1

    def getResolutionDescriptions(self, current=None):
        return [omero.api.ResolutionDescription(self.image.size_x, self.image.size_y)]

    def getTileSize(self, current=None):
        return [min(self.image.size_x, 1024), min(self.image.size_y, 1024)]

    def setResolutionLevel(self, resolutionLevel, current=None):
        pass

    def renderCompressed(self, planeDef, current=None):
        region = planeDef.region
        box = (region.x, region.y, region.width, region.height) if region is not None else None
        if box is not None and (
            box[2] <= 0 or box[3] <= 0 or box[0] >= self.image.size_x or box[1] >= self.image.size_y
        ):
            raise omero.ApiUsageException(message=f"stand-in: region {box} outside the image")
        return data.jpeg(data.render(self.image, self.current, planeDef.z, planeDef.t, box), self.compression)


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


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tcp-port", type=int, default=4063)
    parser.add_argument("--ssl-port", type=int, default=4064)
    args, ice_args = parser.parse_known_args(argv)  # --Ice.Trace.Protocol=1 ... for debugging
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
    adapter.add(QueryService(sessions), Ice.Identity("IQuery", "standin"))
    adapter.add(ScriptService(), Ice.Identity("IScript", "standin"))
    adapter.add(ContainerService(sessions), Ice.Identity("IContainer", "standin"))
    adapter.add(TypesService(), Ice.Identity("ITypes", "standin"))
    adapter.add(PixelsService(), Ice.Identity("IPixels", "standin"))
    adapter.addServantLocator(Locator(ServiceFactory(sessions), sessions), "")
    adapter.activate()
    signal.signal(signal.SIGTERM, lambda *_: communicator.shutdown())
    log.info("OMERO.server stand-in %s listening: %s", VERSION, endpoints)
    communicator.waitForShutdown()
    communicator.destroy()


if __name__ == "__main__":
    sys.exit(main())
