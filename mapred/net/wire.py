"""Every control message of mapred, and the one way they are framed.

A message on any socket is a list of ZeroMQ frames::

    [VERSION, header, data0, data1, ...]

``VERSION`` is a fixed tag (``b"MRP1"``) so a peer speaking another protocol
is recognised at the first frame.  ``header`` is a msgpack map
``{"t": type, "rid": request id, ...fields}``.  Data (block bytes, shuffle
partitions, arrays) travel as the raw frames after the header, never inside
msgpack, so they are neither copied into nor parsed by the codec.

Each message is a frozen, keyword-only dataclass registered under its type
name with ``@message``.  ``decode`` checks the version, the type, that every
field is present with the declared type, that no unknown field is there, and
the size limits; anything wrong raises ``ProtocolError``, which receivers log
and drop.  Nothing here unpickles: msgpack of plain types only.

Sections: common replies; storage (client <-> NameNode, DataNode <->
NameNode, data transfer).  The compute engine adds its master/worker
messages in the section marked at the bottom.
"""
from __future__ import annotations

import dataclasses
import types
import typing
from dataclasses import dataclass, field
from typing import Any, Union

import msgpack

from mapred.errors import ProtocolError
from mapred.types import Split

VERSION = b"MRP1"
MAX_HEADER_BYTES = 32 * 1024 * 1024   # a full block report of ~1M blocks fits
MAX_DATA_FRAMES = 1024
MAX_FRAME_BYTES = 512 * 1024 * 1024
MAX_STR = 64 * 1024                   # any single string field
MAX_ITEMS = 4 * 1024 * 1024           # any single list or dict field

_REGISTRY: dict[str, type] = {}
_SPECS: dict[type, dict[str, Any]] = {}
_RECORDS: dict[str, type] = {}          # nested record name -> class
_RECORD_NAMES: dict[type, str] = {}


@dataclass(frozen=True, kw_only=True)
class Message:
    """Base of every message.  ``rid`` pairs a reply with its request (0 = none)."""

    TYPE: typing.ClassVar[str] = ""
    rid: int = 0


def message(name: str):
    """Register a keyword-only frozen dataclass as the message type ``name``."""

    def wrap(cls):
        if name in _REGISTRY:
            raise ValueError(f"message type {name!r} registered twice")
        cls = dataclass(frozen=True, kw_only=True)(cls)
        cls.TYPE = name
        _REGISTRY[name] = cls
        _SPECS[cls] = {f.name: typing.get_type_hints(cls)[f.name] for f in dataclasses.fields(cls)}
        return cls

    return wrap


class Record:
    """Field type meaning "any registered record"; the record's ``"r"`` tag says which.

    A layer above the wire (``task.spec``, ``runtime.plan``) defines its
    records and registers them with ``record``; a message field typed
    ``Record`` then carries them, validated field by field on decode exactly as
    a message is.  A field typed with one record class accepts only that one.
    """


def record(name: str):
    """Register a frozen dataclass as the nested record ``name`` (encoded as a map tagged ``"r"``)."""

    def wrap(cls):
        if name in _RECORDS:
            raise ValueError(f"record type {name!r} registered twice")
        _RECORDS[name] = cls
        _RECORD_NAMES[cls] = name
        _SPECS[cls] = {f.name: typing.get_type_hints(cls)[f.name] for f in dataclasses.fields(cls)}
        return cls

    return wrap


record("split")(Split)     # a map's input, in job submissions and map specs


def registered() -> dict[str, type]:
    """A copy of the type-name -> class registry (for docs and tests)."""
    return dict(_REGISTRY)


# ---------------------------------------------------------------------------------------------
# encoding and validation


def encode(msg: Message, *data) -> list:
    """The frames of ``msg`` followed by the raw ``data`` frames (bytes or buffers)."""
    spec = _SPECS.get(type(msg))
    if spec is None:
        raise ProtocolError(f"{type(msg).__name__} is not a registered message")
    header = {"t": msg.TYPE}
    for name in spec:
        header[name] = _plain(getattr(msg, name))
    return [VERSION, msgpack.packb(header, use_bin_type=True, default=_scalar), *data]


def _scalar(value):
    """User counters may hold numpy scalars: they travel as the Python number they are."""
    item = getattr(value, "item", None)
    if item is not None:
        return item()
    raise TypeError(f"cannot encode a {type(value).__name__} in a message")


def dumps(msg: Message) -> bytes:
    """``msg`` as one byte string, for a pipe (no data frames; a pipe sends those on their own)."""
    frames = encode(msg)
    return frames[0] + frames[1]


def loads(raw: bytes) -> Message:
    """The message of ``dumps``, validated like any decoded message."""
    n = len(VERSION)
    msg, _ = decode([raw[:n], raw[n:]])
    return msg


def _plain(value):
    """Str-enums travel as their string; tuples as lists (msgpack has no tuple); records as tagged maps."""
    name = _RECORD_NAMES.get(type(value))
    if name is not None:
        return {"r": name, **{f: _plain(getattr(value, f)) for f in _SPECS[type(value)]}}
    if isinstance(value, str):
        return str(value) if type(value) is not str else value
    if isinstance(value, tuple):
        return [_plain(v) for v in value]
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return value


def decode(frames) -> tuple[Message, list]:
    """``(message, data_frames)`` from received frames; ``ProtocolError`` if anything is off."""
    frames = list(frames)
    if len(frames) < 2:
        raise ProtocolError(f"message has {len(frames)} frame(s); need version and header")
    if bytes(frames[0]) != VERSION:
        raise ProtocolError(f"bad protocol version frame {bytes(frames[0])[:16]!r}")
    header_raw = bytes(frames[1])
    if len(header_raw) > MAX_HEADER_BYTES:
        raise ProtocolError(f"header of {len(header_raw)} bytes exceeds {MAX_HEADER_BYTES}")
    data = frames[2:]
    if len(data) > MAX_DATA_FRAMES:
        raise ProtocolError(f"{len(data)} data frames exceed the limit of {MAX_DATA_FRAMES}")
    for frame in data:
        if len(frame) > MAX_FRAME_BYTES:
            raise ProtocolError(f"data frame of {len(frame)} bytes exceeds {MAX_FRAME_BYTES}")
    return _build(_unpack(header_raw)), data


def _unpack(raw: bytes) -> dict:
    try:
        header = msgpack.unpackb(raw, raw=False, strict_map_key=True, max_str_len=MAX_STR,
                                 max_bin_len=MAX_HEADER_BYTES, max_array_len=MAX_ITEMS,
                                 max_map_len=MAX_ITEMS, max_ext_len=0)
    except Exception as exc:  # msgpack raises several unrelated types on garbage
        raise ProtocolError(f"header is not valid msgpack: {exc}") from None
    if not isinstance(header, dict):
        raise ProtocolError(f"header is a {type(header).__name__}, not a map")
    return header


def _build(header: dict) -> Message:
    kind = header.pop("t", None)
    cls = _REGISTRY.get(kind) if isinstance(kind, str) else None
    if cls is None:
        raise ProtocolError(f"unknown message type {kind!r}")
    return cls(**_fields(kind, cls, header))


def _fields(kind: str, cls: type, header: dict) -> dict:
    """The checked constructor arguments of a message or record ``cls`` from its decoded map."""
    spec = _SPECS[cls]
    unknown = set(header) - set(spec)
    if unknown:
        raise ProtocolError(f"{kind}: unknown field(s) {sorted(map(str, unknown))}")
    values = {}
    for name, hint in spec.items():
        if name not in header:
            if _has_default(cls, name):
                continue
            raise ProtocolError(f"{kind}: missing field {name!r}")
        values[name] = _check(kind, name, header[name], hint)
    return values


def _record(kind: str, name: str, value, hint):
    """A registered record from its tagged map; ``hint`` is ``Record`` (any) or one record class."""
    if not isinstance(value, dict):
        raise ProtocolError(f"{kind}.{name}: expected a record, got {type(value).__name__}")
    fields_ = dict(value)
    tag = fields_.pop("r", None)
    cls = _RECORDS.get(tag) if isinstance(tag, str) else None
    if cls is None or (hint is not Record and cls is not hint):
        want = "a record" if hint is Record else _RECORD_NAMES.get(hint, hint)
        raise ProtocolError(f"{kind}.{name}: record {tag!r} is not {want}")
    try:
        return cls(**_fields(f"{kind}.{name}", cls, fields_))
    except (TypeError, ValueError) as exc:   # a record's own __post_init__ check
        raise ProtocolError(f"{kind}.{name}: bad {tag}: {exc}") from None


def _has_default(cls, name: str) -> bool:
    f = cls.__dataclass_fields__[name]
    return f.default is not dataclasses.MISSING or f.default_factory is not dataclasses.MISSING


def _check(kind: str, name: str, value, hint):
    """``value`` if it matches ``hint`` (converting lists to tuples where declared)."""
    origin = typing.get_origin(hint)
    if origin in (Union, types.UnionType):
        for option in typing.get_args(hint):
            try:
                return _check(kind, name, value, option)
            except ProtocolError:
                continue
        raise ProtocolError(f"{kind}.{name}: {type(value).__name__} matches no type of {hint}")
    if hint is Record or hint in _RECORD_NAMES:
        return _record(kind, name, value, hint)
    if hint is type(None):
        if value is None:
            return None
    elif hint is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
    elif hint is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    elif hint in (str, bytes, bool):
        if isinstance(value, hint):
            return value
    elif hint is Any:
        return value
    elif origin in (list, tuple) or hint in (list, tuple):
        if isinstance(value, list):
            args = typing.get_args(hint)
            if args and args[0] is not Any:   # list[X] and tuple[X, ...]: check every item
                value = [_check(kind, name, v, args[0]) for v in value]
            return tuple(value) if (origin or hint) is tuple else value
    elif origin is dict or hint is dict:
        if isinstance(value, dict):
            return value
    else:
        raise ProtocolError(f"{kind}.{name}: unsupported declared type {hint}")
    raise ProtocolError(f"{kind}.{name}: expected {getattr(hint, '__name__', hint)}, "
                        f"got {type(value).__name__}")


# ---------------------------------------------------------------------------------------------
# common replies


@message("ok")
class Ok(Message):
    """A request succeeded; ``info`` carries small optional results (counts, flags)."""

    info: dict = field(default_factory=dict)


@message("error")
class Error(Message):
    """A request failed.  ``kind`` names an error class of ``mapred.errors``."""

    kind: str
    message: str


# ---------------------------------------------------------------------------------------------
# storage: client -> NameNode


@message("nn.mkdir")
class Mkdir(Message):
    """Create directory ``path`` (and missing ancestors with ``parents``)."""
    path: str
    parents: bool = False
    mode: int = 0              # permission bits (0: the default, 0755)
    as_user: str = ""          # from the service only: the HTTP user it acts for


@message("nn.create")
class Create(Message):
    """Begin writing ``path``; it becomes visible only at ``Complete``."""

    path: str
    overwrite: bool = False
    replication: int = 0       # 0 = the NameNode's default
    block_size: int = 0
    client_host: str = ""
    mode: int = 0              # permission bits of the file (0: the default, 0644)
    as_user: str = ""          # from the service only: the HTTP user it acts for


@message("nn.add_block")
class AddBlock(Message):
    """Commit the previous block (if any) and allocate the next one of a file being written."""

    path: str
    client_host: str = ""
    previous: list = field(default_factory=list)   # [block_id, length, [dnid, ...], digest] or []
    exclude: list[str] = field(default_factory=list)


@message("nn.bump_gen")
class BumpGeneration(Message):
    """Pipeline recovery (HDFS's ``updateBlockForPipeline``): the block being written to ``path``
    gets a new generation stamp, so a replica left by the failed pipeline is recognised as stale.
    Reply: ``BlockAllocated`` with no targets, the new stamp and a write token for it."""

    path: str
    block_id: int


@message("nn.chmod")
class SetPermission(Message):
    """Set ``path``'s permission bits (``mode``, -1: unchanged) and/or owner (``owner``, "" unchanged;
    admins only).  Only the owner or an admin may change the bits."""

    path: str
    mode: int = -1
    owner: str = ""
    as_user: str = ""


@message("nn.complete")
class Complete(Message):
    """Close ``path`` for writing; ``last`` is its final block as the writer saw it."""
    path: str
    last: list = field(default_factory=list)       # [block_id, length, [dnid, ...], digest] or []


@message("nn.abandon")
class Abandon(Message):
    """The writer gives up: forget the file being written."""

    path: str


@message("nn.list")
class GetListing(Message):
    """List the children of directory ``path`` (a file lists itself, as in HDFS)."""
    path: str
    as_user: str = ""


@message("nn.stat")
class GetStatus(Message):
    """The status entry (type, length, times, replication) of ``path``."""
    path: str
    as_user: str = ""


@message("nn.locations")
class GetLocations(Message):
    """The blocks of file ``path`` with their live replicas and read tokens."""
    path: str
    as_user: str = ""


@message("nn.delete")
class Delete(Message):
    """Delete ``path``; with ``trash`` it moves to a user's trash instead (reply info: ``trash``).

    Whose trash is the NameNode's decision, from the key the request came with: a ``user`` key's
    own name (``user`` here is ignored); an admin key (the HTTP service acting for the user it
    authenticated, or an administrator) may name ``user``; an unkeyed loopback peer is trusted
    to name it, as every local user is without keys."""

    path: str
    recursive: bool = False
    trash: bool = False
    user: str = ""
    as_user: str = ""          # from the service only: the HTTP user it acts for


@message("nn.rename")
class Rename(Message):
    """Move ``src`` to ``dst`` atomically in the namespace."""
    src: str
    dst: str
    as_user: str = ""


@message("nn.concat")
class Concat(Message):
    """Move the blocks of each closed file in ``sources`` onto the end of ``target`` (HDFS ``concat``)."""

    target: str
    sources: list[str]
    as_user: str = ""


@message("nn.setrep")
class SetReplication(Message):
    """Set the replication factor of every file under ``path``."""
    path: str
    replication: int


@message("nn.bad_replica")
class ReportBadReplica(Message):
    """A reader or a scanner found ``dnid``'s copy of ``block_id`` corrupt or missing."""

    block_id: int
    dnid: str
    reason: str = ""


@message("nn.fsck")
class Fsck(Message):
    """Check the health of every block under ``path``."""
    path: str = "/"


@message("nn.report")
class DatanodeReport(Message):
    """Ask for every DataNode's state, usage and admin state."""


@message("nn.safemode")
class SafeMode(Message):
    """Get, enter or leave the NameNode's safe mode."""
    action: str                # "get", "enter" or "leave"


@message("nn.expunge")
class Expunge(Message):
    """Checkpoint the trash and drop checkpoints past the interval (``immediate``: empty it all)."""

    user: str = ""             # "" = every user's trash
    immediate: bool = False


@message("nn.pin")
class PinPath(Message):
    """Mark ``path`` pinned by ``tag`` (``on`` false: no longer); cleanup rules never touch it."""

    path: str
    tag: str = "pinned"
    on: bool = True


@message("nn.pins")
class ListPins(Message):
    """The pins at or under ``path``: reply info ``{"pins": {path: [tag, ...]}}``."""

    path: str = "/"


@message("nn.hold")
class HoldPaths(Message):
    """``holder`` (a running job) uses ``paths`` for ``ttl`` seconds more; empty paths releases."""

    holder: str
    paths: list[str] = field(default_factory=list)
    ttl: float = 60.0


@message("nn.cleanup_run")
class CleanupRun(Message):
    """Queue a run of the retention rules now; the reply's info is ``{"run": id, "state": ...}``.

    The NameNode does the run in slices between other requests (``storage.rulerun``);
    ask ``CleanupRunStatus`` for its report."""

    dry_run: bool = False


@message("nn.cleanup_run_status")
class CleanupRunStatus(Message):
    """A run's state (``walking``, ``planning``, ``applying``, ``done``, ``failed``) and, once done, its report."""

    run: int


@message("nn.cleanup_rules")
class CleanupRules(Message):
    """Read the rules (``rules`` empty) or replace them (the rules document, as in the file)."""

    rules: dict = field(default_factory=dict)
    replace: bool = False


@message("nn.cleanup_status")
class CleanupStatus(Message):
    """Cleanup metrics: bytes and files freed by rule, last run, pins honoured, trash."""


@message("nn.decommission")
class DecommissionDatanode(Message):
    """Decommission ``datanode`` (dnid or address); ``on`` false puts it back in service."""

    datanode: str
    on: bool = True


@message("nn.balance")
class Balance(Message):
    """``start`` moving blocks until usage is within ``threshold``, ``stop``, or ``status``."""

    action: str = "status"
    threshold: float = 0.1
    bandwidth: int = 10 * 1024 * 1024      # bytes per second of block moves, all nodes together


# ---------------------------------------------------------------------------------------------
# storage: NameNode -> client replies


@message("nn.block_allocated")
class BlockAllocated(Message):
    """A new block: its pipeline, generation stamp and the write token every DataNode checks."""

    block_id: int
    targets: list              # [[dnid, addr], ...] in pipeline order
    gen: int = 0
    token: str = ""


@message("nn.listing")
class Listing(Message):
    """The reply to ``GetListing``: one status entry per child."""
    entries: list[dict]


@message("nn.status")
class FileStatus(Message):
    """The reply to ``GetStatus``."""
    entry: dict


@message("nn.located")
class Located(Message):
    """A file's blocks: ``[block_id, offset, length, [[dnid, addr, host, data_dir], ...], token,
    digest, gen]`` -- ``token`` a read token for the block, ``digest`` the hash of its chunk CRCs,
    ``gen`` its generation stamp (a replica of another stamp is stale)."""

    length: int
    blocks: list


@message("nn.fsck_result")
class FsckResult(Message):
    """The reply to ``Fsck``: counts, state and the unhealthy blocks."""
    report: dict


@message("nn.datanodes")
class Datanodes(Message):
    """The reply to ``DatanodeReport``."""
    nodes: list[dict]
    refusals: dict = field(default_factory=dict)   # reason -> count, for the service's /metrics


# ---------------------------------------------------------------------------------------------
# storage: DataNode -> NameNode


@message("dn.register")
class Register(Message):
    """A DataNode's first message: who it is, where it serves and how full it is."""
    dnid: str
    addr: str                  # tcp://ip:port of the DataNode's data socket
    host: str                  # host name, for locality
    data_dir: str              # for short-circuit reads on the same host
    capacity: int
    used: int
    remaining: int
    proof: str = ""            # hash of the DataNode's own secret: binds its id to it


@message("dn.heartbeat")
class Heartbeat(Message):
    """A DataNode's periodic liveness and usage; the reply carries its queued commands."""
    dnid: str
    capacity: int
    used: int
    remaining: int
    blocks: int
    active: int = 0
    refusals: dict = field(default_factory=dict)   # this DataNode's refusal counters


@message("dn.block_report")
class BlockReport(Message):
    """Every finalized block a DataNode holds, sent at start and then periodically."""
    dnid: str
    blocks: list               # [[block_id, length, gen], ...] (gen: the replica's stamp; 0 unknown)


@message("dn.received")
class BlockReceived(Message):
    """A DataNode finalized a replica of ``block_id`` of ``length`` bytes."""
    dnid: str
    block_id: int
    length: int
    gen: int = 0               # the replica's generation stamp (0: unknown)


@record("dn.cmd.register")
@dataclass(frozen=True)
class RegisterAgain:
    """The NameNode does not know this DataNode (restarted, or declared dead): register again."""


@record("dn.cmd.block_key")
@dataclass(frozen=True)
class BlockKey:
    """The NameNode's current block-token key (hex): the DataNode checks every block token with it."""

    key: str


@record("dn.cmd.verify")
@dataclass(frozen=True)
class VerifyBlocks:
    """Re-check these replicas against their checksums (a reader suspected them); report what is bad."""

    blocks: list[int]


@record("dn.cmd.delete")
@dataclass(frozen=True)
class DeleteBlocks:
    """Remove these block replicas (and their checksum files)."""

    blocks: list[int]


@record("dn.cmd.replicate")
@dataclass(frozen=True)
class ReplicateBlock:
    """Copy block ``block_id`` to ``targets`` (``[[dnid, addr], ...]``)."""

    block_id: int
    length: int
    targets: list[list[str]]
    token: str = ""                   # a write token for the targets


def datanode_command(cmd: dict):
    """The typed record of a NameNode core's command dict (``{"op": ...}``); ``ValueError`` if unknown."""
    op = cmd.get("op")
    if op == "register":
        return RegisterAgain()
    if op == "block_key":
        return BlockKey(key=str(cmd["key"]))
    if op == "delete":
        return DeleteBlocks(blocks=[int(b) for b in cmd["blocks"]])
    if op == "verify":
        return VerifyBlocks(blocks=[int(b) for b in cmd["blocks"]])
    if op == "replicate":
        return ReplicateBlock(block_id=int(cmd["block_id"]), length=int(cmd["length"]),
                              targets=[[str(d), str(a)] for d, a in cmd["targets"]],
                              token=str(cmd.get("token", "")))
    raise ValueError(f"unknown DataNode command {op!r}")


@message("dn.commands")
class Commands(Message):
    """Heartbeat reply: what the DataNode must do, each a ``RegisterAgain``, ``DeleteBlocks`` or
    ``ReplicateBlock`` record."""

    commands: list[RegisterAgain | BlockKey | DeleteBlocks | VerifyBlocks | ReplicateBlock]


# ---------------------------------------------------------------------------------------------
# storage: data transfer (client or DataNode -> DataNode)


@message("dt.read")
class ReadBlock(Message):
    """Client to DataNode: stream ``length`` bytes of a block from ``offset``."""
    block_id: int
    offset: int = 0
    length: int = -1           # -1 = to the end of the block
    token: str = ""            # the NameNode's read token for the block


@message("dt.data")
class BlockData(Message):
    """Reply to ReadBlock; frames: the bytes from ``offset`` (a chunk boundary at or before the
    asked offset), then the block's whole CRC list, so the reader verifies end to end."""

    block_id: int
    offset: int
    block_length: int
    chunk: int = 0
    gen: int = 0


@message("dt.packet")
class WritePacket(Message):
    """One packet of a block write; frames: data, then CRC32C of each 64 KiB chunk (uint32 LE).

    ``pipeline`` lists the DataNodes after the receiver, which forwards to the
    first of them.  ``seq`` 0 starts (or restarts) the block; ``last`` ends it.
    """

    block_id: int
    seq: int
    offset: int
    last: bool
    pipeline: list[str] = field(default_factory=list)
    stream: str = ""
    token: str = ""            # the NameNode's write token for the block


@message("dt.ack")
class PacketAck(Message):
    """A packet (and with it every earlier one) is on disk at every node of the pipeline.

    ``failed`` names downstream DataNodes (addresses) that did not answer; the
    writer restarts the block without them.  ``error`` is set when the
    receiver itself could not take the packet.
    """

    block_id: int
    seq: int
    stream: str = ""
    failed: list[str] = field(default_factory=list)
    error: str = ""


# ---------------------------------------------------------------------------------------------
# compute: master <-> worker messages go below this line (owned by the engine engineers).

# ---- compute plane (master <-> worker, client <-> master, reducer <-> shuffle server) ----------
# Owned by the distributed-execution engineer.  Job code travels as one raw data frame after the
# header of ``mc.submit`` / ``mw.assign``; nobody but the executor's ``load_job_code`` unpickles it.


@message("mw.register")
class WorkerRegister(Message):
    """A worker introduces itself; refused (``Error``) when ``version`` differs from the master's."""

    worker_id: str
    host: str
    slots: int
    memory: int
    shuffle_addr: str
    version: str
    pid: int = 0
    session: int = 0           # grows each time the worker starts over; equal = a duplicate


@message("mw.heartbeat")
class WorkerBeat(Message):
    """Liveness plus what the worker runs; ``running`` lets the master spot forgotten attempts."""

    worker_id: str
    running: list[str] = field(default_factory=list)
    progress: list = field(default_factory=list)        # [[attempt, fraction], ...]
    free: int = 0


@message("mw.done")
class AttemptDone(Message):
    """Worker to master: an attempt succeeded with this output and these counters."""
    worker_id: str
    attempt: str
    output: dict
    counters: dict
    cached: list[str] = field(default_factory=list)


@message("mw.failed")
class AttemptFail(Message):
    """``report`` is the executor's failure report, a ``task.spec.AttemptReport`` record."""

    worker_id: str
    attempt: str
    report: Record


@message("mw.assign")
class Assign(Message):
    """Run ``spec`` (a ``task.spec.MapSpec`` or ``ReduceSpec`` record); when ``with_code`` the job's
    code blob follows as one data frame."""

    job_id: str
    spec: Record
    with_code: bool = False


@message("mw.kill")
class Kill(Message):
    """Master to worker: stop the running ``attempt``."""
    attempt: str
    reason: str = ""


@message("mw.discard")
class Discard(Message):
    """Delete a losing or failed map attempt's output on the worker's disk."""

    attempt: str


@message("mw.drop_job")
class DropJob(Message):
    """The job ended: forget its code and delete its map outputs."""

    job_id: str


@message("mw.reregister")
class Reregister(Message):
    """The master does not know this worker (restarted master, or declared dead): register again."""

    reason: str = ""


@message("mw.retire")
class Retire(Message):
    """The worker was drained: it runs nothing and holds nothing a job needs; exit DECOMMISSIONED."""

    reason: str = ""


@message("mc.drain")
class DrainWorker(Message):
    """Drain ``worker`` (its id or shuffle address): no new tasks; retire once not needed.

    ``timeout`` > 0 retires it after that many seconds anyway."""

    worker: str
    timeout: float = 0.0


@message("mc.scaling")
class ScalingReport(Message):
    """An autoscaler's decision and its reason, for the master's list (``JobList.cluster["scaling"]``).

    ``action`` is ``grow`` (``count`` workers launched) or ``retire`` (``worker`` drained);
    ``policy`` is the autoscaler's settings (min/max workers, delays)."""

    action: str
    reason: str
    count: int = 0
    worker: str = ""
    workers_before: int = 0
    policy: dict = field(default_factory=dict)


@message("mc.submit")
class SubmitJob(Message):
    """A planned job: settings, splits and output decided by the client; code as a data frame."""

    job_id: str
    settings: Record                  # a ``runtime.plan.JobSettings`` record
    splits: list[Split]
    output: str
    submitter: str = ""      # the principal the job belongs to (who may see, kill and read it)


@message("mc.submitted")
class JobAccepted(Message):
    """The reply to ``SubmitJob``: the new job's id."""
    job_id: str


@message("mc.status")
class JobStatusRequest(Message):
    """Ask for one job's status (``detail``: with its tasks)."""
    job_id: str
    detail: bool = False


@message("mc.job")
class JobStatusReply(Message):
    """The reply to ``JobStatusRequest``."""
    status: dict


@message("mc.list")
class ListJobs(Message):
    """Ask for the jobs the asker may see, and the cluster's state."""


@message("mc.jobs")
class JobList(Message):
    """The reply to ``ListJobs``."""
    jobs: list[dict]
    workers: list[dict] = field(default_factory=list)   # admins only: hosts, pids, addresses
    cluster: dict = field(default_factory=dict)       # {"waiting_tasks": n}
    refusals: dict = field(default_factory=dict)        # reason -> count, for the service's /metrics


@message("mc.kill")
class KillJob(Message):
    """Kill a job (idempotent: a finished job stays as it ended)."""
    job_id: str
    reason: str = "killed by request"


@message("mc.logs")
class JobLogs(Message):
    """Ask for a job's log, or one task's."""
    job_id: str
    task: str = ""


@message("mc.log_lines")
class LogLines(Message):
    """The reply to ``JobLogs``."""
    lines: list[str]


@message("sh.read")
class ShuffleRead(Message):
    """Bytes ``offset..offset+length`` of one partition's segment of a map output run."""

    path: str
    partition: int
    offset: int = 0
    length: int = 4 * 1024 * 1024
    job_id: str = ""           # the job the output belongs to, and the job's token (docs/security.md)
    token: str = ""


@message("sh.data")
class ShuffleData(Message):
    """Reply to ShuffleRead: the bytes follow as one data frame; ``total`` is the segment length."""

    offset: int
    total: int
    compression: str = "none"


# ---- executor pipe (executor pool parent <-> executor child, task/pool.py and task/child.py) ---


@message("ex.job")
class PipeJob(Message):
    """The job's code follows as the next message on the pipe (raw bytes, unpickled only there)."""

    job_id: str


@message("ex.drop")
class PipeDrop(Message):
    """Forget a finished job's code."""

    job_id: str


@message("ex.run")
class PipeRun(Message):
    """Run one attempt: a ``task.spec.MapSpec`` or ``ReduceSpec`` record."""

    spec: Record


@message("ex.stop")
class PipeStop(Message):
    """Exit the executor loop."""


@message("ex.progress")
class PipeProgress(Message):
    """The running attempt's progress (0..1) and counters so far, about once a second."""

    attempt: str
    fraction: float
    counters: dict


@message("ex.done")
class PipeDone(Message):
    """The attempt succeeded: a ``task.spec.AttemptResult`` record."""

    attempt: str
    result: Record


@message("ex.failed")
class PipeFailed(Message):
    """The attempt failed: a ``task.spec.AttemptReport`` record."""

    attempt: str
    report: Record


# ---- parameter holder of asynchronous SGD (models.async_sgd <-> models.param_server) --------
# Arrays (weights, gradient sums) follow the header as raw float64 frames whose shapes the
# holder knows from ``ps.init``; nothing else travels outside the typed header.


@message("ps.init")
class HolderInit(Message):
    """Set the holder's weights (frames W, b), step rule and staleness bound; ``optimizer`` is
    "sgd" (plain step, then the penalty's proximal step), "adam", "adagrad" or "prox" (a plain
    step, then a per-feature L2 proximal step whose strengths follow in a third frame)."""

    shape_w: list[int]
    shape_b: list[int]
    lr: float
    alpha: float
    penalty: str
    max_staleness: int
    optimizer: str = "sgd"


@message("ps.config")
class HolderConfig(Message):
    """The learning rate for the next pass; with ``average``, accepted pushes update a running mean."""

    lr: float
    average: bool = False


@message("ps.pull")
class HolderPull(Message):
    """Ask for the current weights (a ``ps.weights`` reply)."""


@message("ps.average")
class HolderAverage(Message):
    """Ask for the running average of the weights (the current ones before averaging starts)."""


@message("ps.push")
class HolderPush(Message):
    """A gradient sum over ``n`` rows (frames gW, gb) computed at weights of version ``base``."""

    base: int
    n: int


@message("ps.stats")
class HolderStatsRequest(Message):
    """Ask for the push counts and the staleness seen."""


@message("ps.stop")
class HolderStop(Message):
    """Reply ``ok`` and exit."""


@message("ps.weights")
class HolderWeights(Message):
    """Weights W, b follow; after a push, whether it was applied and how stale it was."""

    version: int
    accepted: bool = True
    staleness: int = 0


@message("ps.stats_reply")
class HolderStats(Message):
    """Accepted and rejected pushes, the largest and mean staleness, and its histogram."""

    version: int
    accepted: int
    rejected: int
    max: int
    mean: float
    histogram: dict
