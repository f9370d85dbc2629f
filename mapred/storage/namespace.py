"""The namespace tree: directories and files, each file a list of blocks.  Pure: no I/O, no clock.

Every change is expressed as an *op*, a small dict of plain values
(``{"op": "mkdir", "path": ..., "mtime": ...}``).  The live NameNode validates
a request, builds its ops, has them journaled and fsynced, and only then
``apply``-s them; replay on restart calls the same ``apply`` on the same ops,
so the replayed tree is the tree that was acknowledged.  ``image()`` and
``from_image()`` are the checkpoint form.

Paths are absolute, ``/``-separated, with no empty, ``.`` or ``..``
components and no NUL: ``normalize`` is the one gate every path from the
network passes.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from mapred.errors import FileExists, FileNotFound, StorageError

MAX_PATH = 4096
MAX_NAME = 255
_FILE_MODE, _DIR_MODE = 0o644, 0o755      # HDFS's defaults (umask 022); see ``permissions``


class InvalidPath(StorageError):
    """A path that breaks the naming rules (relative, ``..``, NUL, empty component)."""


@dataclass
class FileNode:
    """A closed file: its blocks in order, each ``[block_id, length, gen, digest]``.

    ``gen`` is the block's generation stamp and ``digest`` the hash of its
    chunk checksums as the writer computed them (see ``blockstore.crc_digest``),
    so a reader can check any replica's bytes against what was written.
    Journals from before these existed hold ``[block_id, length]``.
    """

    replication: int
    block_size: int
    mtime: float
    blocks: list = field(default_factory=list)
    owner: str = ""           # the principal that wrote it ("" = none recorded: open to all)
    mode: int = 0             # permission bits (see ``permissions``; 0 = none recorded)

    @property
    def length(self) -> int:
        """The file's length: the sum of its blocks (each entry starts ``block_id, length``)."""
        return sum(b[1] for b in self.blocks)


@dataclass
class DirNode:
    """A directory: children by name, its owner and permission bits (as ``FileNode``)."""

    mtime: float = 0.0
    children: dict = field(default_factory=dict)
    owner: str = ""
    mode: int = 0


def normalize(path: str) -> str:
    """The canonical form of ``path`` (no trailing ``/``), or ``InvalidPath`` naming it."""
    if not isinstance(path, str) or not path.startswith("/"):
        raise InvalidPath(f"path {path!r} is not absolute")
    if "\x00" in path or len(path) > MAX_PATH:
        raise InvalidPath(f"path {path[:80]!r} contains NUL or is too long")
    if path == "/":
        return "/"
    parts = path[1:].rstrip("/").split("/") if path != "/" else []
    for part in parts:
        if part in ("", ".", "..") or len(part) > MAX_NAME:
            raise InvalidPath(f"path {path!r} has an empty, '.', '..' or over-long component")
    return "/" + "/".join(parts)


def split(path: str) -> tuple[str, str]:
    """``(parent, name)`` of a normalized path other than ``/``."""
    parent, _, name = path.rpartition("/")
    return parent or "/", name


def parts_of(path: str) -> list[str]:
    """A path's components; ``InvalidPath`` for a relative path or ``.``/``..`` parts."""
    return [] if path == "/" else path[1:].split("/")


class Namespace:
    """The tree.  Queries raise ``FileNotFound``/``FileExists``; ``apply`` trusts validated ops."""

    def __init__(self) -> None:
        self.root = DirNode()
        self.txid = 0  # the id of the last applied op
        self.pins: dict[str, set] = {}   # path -> tags that keep cleanup rules off it

    # -- queries -------------------------------------------------------------------------------

    def lookup(self, path: str):
        """The node at ``path`` or None."""
        node = self.root
        for part in parts_of(path):
            if not isinstance(node, DirNode):
                return None
            node = node.children.get(part)
            if node is None:
                return None
        return node

    def get(self, path: str):
        """The node at ``path``; ``FileNotFound`` if there is none."""
        node = self.lookup(path)
        if node is None:
            raise FileNotFound(f"no such file or directory: {path}")
        return node

    def get_file(self, path: str) -> FileNode:
        """The file at ``path``; ``FileNotFound`` for a directory or nothing."""
        node = self.get(path)
        if not isinstance(node, FileNode):
            raise StorageError(f"{path} is a directory, not a file")
        return node

    def status(self, path: str) -> dict:
        """The status entry (type, length, replication, times) of ``path``."""
        return self._entry(path, self.get(path))

    def listing(self, path: str) -> list[dict]:
        """The status entries of a directory's children (or of a file itself)."""
        node = self.get(path)
        if isinstance(node, FileNode):
            return [self._entry(path, node)]
        base = "" if path == "/" else path
        return [self._entry(f"{base}/{name}", child) for name, child in sorted(node.children.items())]

    @staticmethod
    def _entry(path: str, node) -> dict:
        if isinstance(node, FileNode):
            return {"path": path, "type": "file", "length": node.length, "mtime": node.mtime,
                    "replication": node.replication, "block_size": node.block_size,
                    "blocks": len(node.blocks), "owner": node.owner, "mode": node.mode}
        return {"path": path, "type": "dir", "length": 0, "mtime": node.mtime,
                "children": len(node.children), "owner": node.owner, "mode": node.mode}

    def walk_files(self, path: str):
        """Yield ``(path, FileNode)`` for every file at or under ``path``, in name order."""
        node = self.get(path)
        stack = [(path, node)]
        while stack:
            here, node = stack.pop()
            if isinstance(node, FileNode):
                yield here, node
                continue
            base = "" if here == "/" else here
            for name in sorted(node.children, reverse=True):
                stack.append((f"{base}/{name}", node.children[name]))

    def all_blocks(self):
        """Yield ``(block_id, length, path, replication)`` of every block of every file."""
        for path, node in self.walk_files("/"):
            for b in node.blocks:
                yield b[0], b[1], path, node.replication

    def all_block_entries(self):
        """Yield ``(entry, path, replication)`` of every block, ``entry`` as stored (see FileNode)."""
        for path, node in self.walk_files("/"):
            for b in node.blocks:
                yield b, path, node.replication

    # -- ops: building (validation) ----------------------------------------------------------

    def mkdir_ops(self, path: str, parents: bool, now: float, owner: str = "",
                  mode: int = 0) -> list[dict]:
        """Ops creating ``path`` (and missing parents when ``parents``), owned by ``owner``."""
        node = self.lookup(path)
        if node is not None:
            if isinstance(node, DirNode) and parents:
                return []
            raise FileExists(f"{path} already exists")
        parent, _ = split(path)
        ops = []
        pnode = self.lookup(parent)
        if pnode is None:
            if not parents:
                raise FileNotFound(f"parent directory {parent} does not exist (use -p)")
            ops = self.mkdir_ops(parent, True, now, owner, _DIR_MODE if owner else 0)
        elif isinstance(pnode, FileNode):
            raise FileExists(f"{parent} is a file, not a directory")
        op = {"op": "mkdir", "path": path, "mtime": now}
        if owner:
            op.update(owner=owner, mode=mode or _DIR_MODE)
        return ops + [op]

    def check_create(self, path: str, overwrite: bool) -> None:
        """Raise unless a file may be created at ``path``."""
        if path == "/":
            raise FileExists("/ is a directory")
        node = self.lookup(path)
        if isinstance(node, DirNode):
            raise FileExists(f"{path} is a directory")
        if node is not None and not overwrite:
            raise FileExists(f"{path} already exists (use overwrite)")
        for ancestor in _ancestors(path):
            if isinstance(self.lookup(ancestor), FileNode):
                raise FileExists(f"{ancestor} is a file, not a directory")

    def add_file_ops(self, path: str, replication: int, block_size: int, blocks: list,
                     now: float, owner: str = "", mode: int = 0) -> list[dict]:
        """Ops making ``path`` a closed file (parents created as needed), owned by ``owner``."""
        parent, _ = split(path)
        ops = [] if isinstance(self.lookup(parent), DirNode) else self.mkdir_ops(parent, True, now, owner)
        op = {"op": "add_file", "path": path, "replication": replication,
              "block_size": block_size, "mtime": now, "blocks": [list(b) for b in blocks]}
        if owner:
            op.update(owner=owner, mode=mode or _FILE_MODE)
        return ops + [op]

    def chmod_ops(self, path: str, mode: int | None, owner: str | None) -> list[dict]:
        """Ops setting ``path``'s permission bits and/or owner (None: unchanged)."""
        node = self.get(path)
        op = {"op": "chmod", "path": path}
        if mode is not None and mode != node.mode:
            op["mode"] = mode
        if owner is not None and owner != node.owner:
            op["owner"] = owner
        return [op] if len(op) > 2 else []

    def delete_ops(self, path: str, recursive: bool) -> list[dict]:
        """The journal ops that delete ``path``; refuses a non-empty directory without ``recursive``."""
        node = self.get(path)
        if path == "/":
            raise StorageError("refusing to delete /")
        if isinstance(node, DirNode) and node.children and not recursive:
            raise StorageError(f"{path} is a non-empty directory (use -r)")
        return [{"op": "delete", "path": path}]

    def rename_ops(self, src: str, dst: str, now: float) -> list[dict]:
        """POSIX-like ``mv``: into ``dst`` when it is a directory, else to ``dst``."""
        self.get(src)
        if src == "/":
            raise StorageError("cannot rename /")
        target = self.lookup(dst)
        if isinstance(target, DirNode):
            dst = ("" if dst == "/" else dst) + "/" + split(src)[1]
            target = self.lookup(dst)
        if target is not None:
            raise FileExists(f"rename target {dst} already exists")
        if dst == src or dst.startswith(src + "/"):
            raise StorageError(f"cannot move {src} into itself ({dst})")
        parent = self.lookup(split(dst)[0])
        if not isinstance(parent, DirNode):
            raise FileNotFound(f"rename target's parent {split(dst)[0]} is not a directory")
        return [{"op": "rename", "src": src, "dst": dst, "mtime": now}]

    def concat_ops(self, target: str, sources: list[str], now: float) -> list[dict]:
        """Ops appending the blocks of closed files ``sources`` to closed file ``target``, removing them."""
        self.get_file(target)
        if not sources or len(set(sources)) != len(sources) or target in sources:
            raise StorageError(f"concat onto {target} needs distinct source files other than the target")
        for src in sources:
            self.get_file(src)
        return [{"op": "concat", "target": target, "sources": list(sources), "mtime": now}]

    def setrep_ops(self, path: str, replication: int) -> list[dict]:
        """The journal ops that set the replication of every file under ``path``."""
        return [{"op": "setrep", "path": p, "replication": replication}
                for p, _ in self.walk_files(path)]

    def pin_ops(self, path: str, tag: str, on: bool) -> list[dict]:
        """Ops marking ``path`` pinned by ``tag`` (or no longer); a no-op is no op."""
        self.get(path)
        if not isinstance(tag, str) or not tag or len(tag) > MAX_NAME:
            raise StorageError(f"pin tag {tag!r} must be a non-empty string of at most {MAX_NAME}")
        if on == (tag in self.pins.get(path, ())):
            return []
        return [{"op": "pin" if on else "unpin", "path": path, "tag": tag}]

    # -- ops: applying ---------------------------------------------------------------------------

    def apply(self, op: dict) -> None:
        """Apply one validated op (live or in replay) and advance ``txid``."""
        getattr(self, "_apply_" + op["op"])(op)
        self.txid += 1

    def _apply_mkdir(self, op: dict) -> None:
        parent, name = split(op["path"])
        self.get(parent).children[name] = DirNode(mtime=op["mtime"], owner=op.get("owner", ""),
                                                  mode=op.get("mode", 0))

    def _apply_add_file(self, op: dict) -> None:
        parent, name = split(op["path"])
        pnode = self.get(parent)
        pnode.children[name] = FileNode(op["replication"], op["block_size"], op["mtime"],
                                        [list(b) for b in op["blocks"]], op.get("owner", ""),
                                        op.get("mode", 0))
        pnode.mtime = op["mtime"]

    def _apply_chmod(self, op: dict) -> None:
        node = self.get(op["path"])
        node.mode = op.get("mode", node.mode)
        node.owner = op.get("owner", node.owner)

    def _apply_delete(self, op: dict) -> None:
        parent, name = split(op["path"])
        self.get(parent).children.pop(name, None)
        for pinned in [p for p in self.pins if _at_or_under(p, op["path"])]:
            del self.pins[pinned]

    def _apply_rename(self, op: dict) -> None:
        sparent, sname = split(op["src"])
        dparent, dname = split(op["dst"])
        node = self.get(sparent).children.pop(sname)
        self.get(dparent).children[dname] = node
        self.get(dparent).mtime = op["mtime"]
        for pinned in [p for p in self.pins if _at_or_under(p, op["src"])]:   # pins move along
            self.pins[op["dst"] + pinned[len(op["src"]):]] = self.pins.pop(pinned)

    def _apply_pin(self, op: dict) -> None:
        self.pins.setdefault(op["path"], set()).add(op["tag"])

    def _apply_unpin(self, op: dict) -> None:
        tags = self.pins.get(op["path"], set())
        tags.discard(op["tag"])
        if not tags:
            self.pins.pop(op["path"], None)

    def _apply_concat(self, op: dict) -> None:
        node = self.get_file(op["target"])
        for src in op["sources"]:
            parent, name = split(src)
            node.blocks.extend(self.get(parent).children.pop(name).blocks)
        node.mtime = op["mtime"]

    def _apply_setrep(self, op: dict) -> None:
        self.get_file(op["path"]).replication = op["replication"]

    # -- checkpoint form ----------------------------------------------------------------------

    def image(self) -> dict:
        """The whole tree as plain values (msgpack-able), with the last txid."""
        image = {"txid": self.txid, "root": _dump(self.root)}
        if self.pins:
            image["pins"] = {p: sorted(tags) for p, tags in self.pins.items()}
        return image

    @classmethod
    def from_image(cls, image: dict) -> "Namespace":
        """The namespace an ``image()`` describes (a checkpoint)."""
        ns = cls()
        ns.txid = image["txid"]
        ns.root = _load(image["root"])
        ns.pins = {p: set(tags) for p, tags in image.get("pins", {}).items()}
        return ns


def _at_or_under(path: str, top: str) -> bool:
    return path == top or path.startswith(top.rstrip("/") + "/")


def _ancestors(path: str) -> list[str]:
    parts = parts_of(path)
    return ["/" + "/".join(parts[:i]) for i in range(1, len(parts))]


def _dump(node) -> dict:
    if isinstance(node, FileNode):
        fields = [node.replication, node.block_size, node.mtime, node.blocks]
        return {"f": fields + ([node.owner, node.mode] if node.owner or node.mode else [])}
    out = {"d": node.mtime, "c": {name: _dump(child) for name, child in node.children.items()}}
    if node.owner or node.mode:
        out["o"], out["m"] = node.owner, node.mode
    return out


def _load(data: dict):
    if "f" in data:        # images from before owners hold four fields
        replication, block_size, mtime, blocks, *rest = data["f"]
        owner, mode = (rest + ["", 0])[:2]
        return FileNode(replication, block_size, mtime, [list(b) for b in blocks], owner, mode)
    return DirNode(data["d"], {name: _load(child) for name, child in data["c"].items()},
                   data.get("o", ""), data.get("m", 0))
