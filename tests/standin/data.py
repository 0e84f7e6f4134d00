"""The stand-in's data set: one project, two datasets and three images with real pixels, made at
start with numpy, and what OMERO.server's rendering engine and thumbnail service make of them
(JPEG, with Pillow). No Ice here: standin.py turns these into OMERO model objects and services.

    project 1 "Public project"  (user-1, group public-data, read-only: the public user sees it)
      dataset 1 "Public dataset"
        image 1 "cells.tif"      320 x 240, 3 channels, 5 Z, 1 T
        image 2 "timelapse.tif"  160 x 120, 2 channels, 1 Z, 4 T
    dataset 2 "Lab dataset"     (user-1, group lab: not the public user's)
        image 3 "private.tif"    200 x 200, 1 channel: its pixels differ from every public image's

Pixel ids are the image ids. Rendering follows OMERO's rules for uint8 data: each active channel's
window maps to 0..1 (linear family), optionally inverted, times its colour; the sum is clipped
(model "rgb"), or the first active channel alone in grey (model "greyscale").
"""

import dataclasses
import io

import numpy
from PIL import Image as PILImage

PUBLIC_GROUP, LAB_GROUP = 4, 3
OWNER = 2  # user-1


@dataclasses.dataclass(frozen=True)
class Container:
    id: int
    name: str
    owner: int
    group: int
    parent: int = None  # the project of a dataset


@dataclasses.dataclass(frozen=True)
class Channel:
    name: str
    color: tuple  # (r, g, b)
    emission: float  # nm


@dataclasses.dataclass
class Img:
    id: int
    name: str
    owner: int
    group: int
    dataset: int
    size_x: int
    size_y: int
    size_z: int
    size_t: int
    channels: list
    pixels: numpy.ndarray = None  # (t, c, z, y, x) uint8

    @property
    def size_c(self):
        return len(self.channels)

    def plane(self, c, z, t):
        return self.pixels[t, c, z]

    def channel_range(self, c):
        data = self.pixels[:, c]
        return float(data.min()), float(data.max())


PROJECTS = {1: Container(1, "Public project", OWNER, PUBLIC_GROUP)}
DATASETS = {
    1: Container(1, "Public dataset", OWNER, PUBLIC_GROUP, parent=1),
    2: Container(2, "Lab dataset", OWNER, LAB_GROUP),
}
RED, GREEN, BLUE, WHITE = (255, 0, 0), (0, 255, 0), (0, 0, 255), (255, 255, 255)


def _images():
    images = {
        1: Img(1, "cells.tif", OWNER, PUBLIC_GROUP, 1, 320, 240, 5, 1,
               [Channel("DAPI", BLUE, 461.0), Channel("GFP", GREEN, 509.0), Channel("mCherry", RED, 610.0)]),
        2: Img(2, "timelapse.tif", OWNER, PUBLIC_GROUP, 1, 160, 120, 1, 4,
               [Channel("GFP", GREEN, 509.0), Channel("RFP", RED, 584.0)]),
        3: Img(3, "private.tif", OWNER, LAB_GROUP, 2, 200, 200, 1, 1, [Channel("Phase", WHITE, 0.0)]),
    }  # fmt: skip
    for image in images.values():
        image.pixels = _pixels(image)
    return images


def _pixels(image):
    """Deterministic pictures: blobs that move with Z and T over a gradient, different per image
    and channel (so every image's thumbnail has its own bytes)."""
    y, x = numpy.mgrid[0 : image.size_y, 0 : image.size_x].astype(numpy.float32)
    out = numpy.zeros((image.size_t, image.size_c, image.size_z, image.size_y, image.size_x), numpy.uint8)
    for t in range(image.size_t):
        for c in range(image.size_c):
            for z in range(image.size_z):
                value = 20 + 40 * x / image.size_x + 25 * numpy.sin((y + 7 * image.id) / (9 + 3 * c))
                for blob in range(3 + image.id):
                    cx = image.size_x * ((0.2 + 0.27 * blob + 0.11 * c + 0.05 * t) % 1.0)
                    cy = image.size_y * ((0.3 + 0.19 * blob * image.id + 0.07 * z) % 1.0)
                    radius = 6 + 4 * ((blob + c + image.id) % 4)
                    value += 170 * numpy.exp(-((x - cx) ** 2 + (y - cy) ** 2) / (2 * radius**2))
                out[t, c, z] = numpy.clip(value, 0, 255).astype(numpy.uint8)
    return out


IMAGES = _images()


def readable_groups(member_of, admin, context_group):
    """The groups a user may read from: all of their groups (all groups for an admin), or the one
    the call's context names (``omero.group``; "-1" or absent: all)."""
    groups = {PUBLIC_GROUP, LAB_GROUP} if admin else set(member_of)
    if context_group not in (None, "", "-1"):
        groups &= {int(context_group)}
    return groups


@dataclasses.dataclass
class Settings:
    """A rendering definition: what the rendering engine renders with."""

    active: list
    windows: list  # [(start, end)]
    colors: list  # [(r, g, b, a)]
    inverted: list
    model: str = "rgb"
    default_z: int = 0
    default_t: int = 0
    luts: list = None

    @classmethod
    def defaults(cls, image):
        count = image.size_c
        return cls(
            active=[c < 3 for c in range(count)],
            windows=[image.channel_range(c) for c in range(count)],
            colors=[(*ch.color, 255) for ch in image.channels],
            inverted=[False] * count,
            default_z=image.size_z // 2,
            luts=[""] * count,
        )


def render(image, settings, z, t, region=None):
    """The plane (z, t) as an RGB array, with `settings`; `region` (x, y, w, h) clipped to the image."""
    x0, y0, width, height = 0, 0, image.size_x, image.size_y
    if region is not None:
        x0, y0 = max(0, region[0]), max(0, region[1])
        width = max(0, min(region[0] + region[2], image.size_x) - x0)
        height = max(0, min(region[1] + region[3], image.size_y) - y0)
    rgb = numpy.zeros((height, width, 3), numpy.float32)
    channels = [c for c in range(image.size_c) if settings.active[c]]
    if settings.model == "greyscale":
        channels = channels[:1]
    for c in channels:
        start, end = settings.windows[c]
        plane = image.plane(c, z, t)[y0 : y0 + height, x0 : x0 + width].astype(numpy.float32)
        level = numpy.clip((plane - start) / max(end - start, 1e-6), 0, 1)
        if settings.inverted[c]:
            level = 1 - level
        color = (1.0, 1.0, 1.0) if settings.model == "greyscale" else [v / 255 for v in settings.colors[c][:3]]
        rgb += level[..., None] * numpy.array(color, numpy.float32)
    return (numpy.clip(rgb, 0, 1) * 255).astype(numpy.uint8)


def jpeg(rgb, quality=0.9):
    out = io.BytesIO()
    PILImage.fromarray(rgb, "RGB").save(out, "JPEG", quality=max(1, min(95, int(quality * 100))))
    return out.getvalue()


def thumbnail(image, longest, z=None, t=None):
    """JPEG of the default plane (or z, t) with the default settings, its longest side `longest`,
    keeping the aspect ratio."""
    settings = Settings.defaults(image)
    rgb = render(image, settings, settings.default_z if z is None else z, settings.default_t if t is None else t)
    scale = longest / max(image.size_x, image.size_y)
    size = (max(1, round(image.size_x * scale)), max(1, round(image.size_y * scale)))
    small = PILImage.fromarray(rgb, "RGB").resize(size, PILImage.Resampling.BILINEAR)
    out = io.BytesIO()
    small.save(out, "JPEG", quality=85)
    return out.getvalue()
