"""The NameNode process: a thin ROUTER loop around ``Namesystem``.

Receive, decode (a bad message is logged and dropped), step the core, reply.
Namespace changes are journaled and fsynced inside the core's ``log`` hook
before the reply goes out.  A tick every ``TICK`` seconds drives liveness,
leases, replication and checkpoints.  The loop never dies on a request: a
``StorageError`` becomes an ``Error`` reply naming the problem, anything else
is logged with its traceback and answered as an internal error.

Who may say what (docs/security.md): DataNode messages are taken only from a
peer whose key has the ``datanode`` role (when the cluster has keys), and
only over the connection that registered that DataNode id with its proof (the
hash of a secret the DataNode keeps in its data directory); the first
registration binds the id, kept in ``name/datanodes.json``, so an impostor
with a live DataNode's id is refused.  Every refusal is logged and counted
(``refusals`` in the ``nn.report`` reply).
"""
from __future__ import annotations

import dataclasses
import json
import logging
import os
import secrets
import signal
import time

import zmq

from mapred.core.dispatch import handler_table
from mapred.net import wire
from mapred.errors import ConfigError, MapredError, PermissionDenied, ProtocolError, StorageError
from mapred.net.transport import (
    bind, make_socket, recv_peer, say_if_unkeyed, send, stop_authenticator, zap_refusals)
from mapred.security import tokens
from mapred.security.policy import LEGACY, may_act_as
from mapred.security.principals import Role
from mapred.security.refusals import Refusals
from mapred.storage import cleanup, trash
from mapred.storage import permissions as perm
from mapred.storage.housekeeping import Housekeeper
from mapred.storage.journal import Journal
from mapred.storage.namespace import DirNode, normalize
from mapred.storage.rulerun import RunQueue
from mapred.storage.namesystem import (
    BlockReportReceived,
    DatanodeRegistered,
    HeartbeatReceived,
    Namesystem,
    ReplicaCorrupt,
    ReplicaReceived,
    ReplicaSuspected,
    Settings,
    Tick,
)

log = logging.getLogger("mapred.namenode")
TICK = 0.25
SERVE_BETWEEN_SLICES = 64     # requests answered (if waiting) before each slice of a rule run


class NameNode:
    """Owns the journal, the core and the ROUTER socket."""

    def __init__(self, data_dir: str, settings: Settings, host: str = "127.0.0.1", port: int = 0,
                 secret: str | None = None, checkpoint_every: int = 10000,
                 cleanup_rules: str = "") -> None:
        self.data_dir = os.path.abspath(data_dir)
        self.journal = Journal(os.path.join(self.data_dir, "name"), checkpoint_every)
        ns = self.journal.load()
        self.core = Namesystem(ns, settings, log=self.journal.append,
                               token_key=_load_key(os.path.join(self.data_dir, "name", "block.key")))
        self.refusals = Refusals("NameNode", log)
        self._bindings_path = os.path.join(self.data_dir, "name", "datanodes.json")
        self.bound: dict[str, list] = _load_json(self._bindings_path)   # dnid -> [principal, proof]
        self.routes: dict[str, bytes] = {}                              # dnid -> its connection
        self.dn_refusals: dict[str, dict] = {}                          # dnid -> its counters
        self.rules_file = cleanup_rules or os.path.join(self.data_dir, "name", "cleanup-rules.json")
        rules = cleanup.load_file(self.rules_file) if os.path.exists(self.rules_file) else None
        if cleanup_rules and rules is None:
            raise ConfigError(f"cleanup rules file {cleanup_rules} does not exist")
        self.keeper = Housekeeper(self.core, rules, now=time.time())
        self._handlers = handler_table(self, "_h_", wire.registered().values(),
                                       lambda cls: cls.TYPE.replace(".", "_"))
        self.runs = RunQueue(self.keeper)        # rule runs, done in slices between requests
        self._load_leaving()
        self.ctx = zmq.Context()
        self.sock = make_socket(self.ctx, zmq.ROUTER, secret=secret)
        self.port = bind(self.sock, host, port)
        self.addr = f"tcp://{host}:{self.port}"
        self.running = True
        log.info("NameNode at %s, %d files' blocks known, safe mode %s", self.addr,
                 len(self.core.bmap.blocks), self.core.safemode)
        say_if_unkeyed("the NameNode")

    def serve(self) -> None:
        """Run until ``stop()`` (or SIGTERM/SIGINT in the CLI)."""
        next_tick = 0.0
        try:
            while self.running:
                now = time.monotonic()
                if now >= next_tick:
                    self._tick(now)
                    next_tick = now + TICK
                if not self.runs.busy:
                    self._serve_one(max(0.0, next_tick - time.monotonic()))
                    continue
                # a rule run is under way: answer what waits, then do one slice of the run
                for _ in range(SERVE_BETWEEN_SLICES):
                    if not self._serve_one(0.0):
                        break
                self.runs.step(time.time())
        finally:
            self.close()

    def _tick(self, now: float) -> None:
        self.core.handle(Tick(time.time()))
        try:
            self.keeper.tick(time.time(), start_run=self._start_due_run)
        except MapredError as exc:
            log.warning("housekeeping: %s", exc)
        except OSError:
            raise           # a journal failure: the serve loop's caller stops the NameNode
        except Exception:   # noqa: BLE001 - a bug in housekeeping must not take the NameNode down
            log.exception("housekeeping failed; the next tick tries again")
        if self.journal.due():   # files being written are not journaled, so any moment will do
            self.journal.checkpoint(self.core.ns)
            log.info("checkpoint at txid %d", self.core.ns.txid)

    def _start_due_run(self, now: float) -> dict:
        """The interval's automatic run, queued (skipped while another run is under way)."""
        if self.runs.busy:
            log.info("cleanup: the interval's run skipped, a run is still under way")
            return {"skipped": True}
        return self.runs.start(now).describe()

    def _serve_one(self, timeout: float) -> bool:
        """Answer one request if one arrives within ``timeout``; whether anything came."""
        try:
            got = recv_peer(self.sock, timeout, routed=True)
        except ProtocolError as exc:
            self.refusals.refuse("a peer", "bad_message", str(exc))
            return True
        if got is None:
            return False
        route, msg, _, peer = got
        self.route, self.peer = bytes(route[-1]) if route else b"", peer
        reply = self._dispatch(msg)
        send(self.sock, _with_rid(reply, msg.rid), route=route)
        return True

    def _dispatch(self, msg: wire.Message) -> wire.Message:
        handler = self._handlers.get(type(msg))
        if handler is None:
            return wire.Error(kind="ProtocolError", message=f"the NameNode does not serve {msg.TYPE}")
        if msg.TYPE.startswith("dn.") and not may_act_as(self.peer, Role.DATANODE):
            why = self.refusals.refuse(self.peer, "wrong_role", f"{msg.TYPE} needs a datanode key")
            return wire.Error(kind="PermissionDenied", message=why)
        try:
            return handler(msg) or wire.Ok()
        except PermissionDenied as exc:
            self.refusals.refuse(self._who(), "permission_denied", str(exc))
            return wire.Error(kind="PermissionDenied", message=str(exc))
        except MapredError as exc:
            return wire.Error(kind=type(exc).__name__, message=str(exc))
        except OSError:
            log.exception("journal failure; stopping so that nothing unacknowledged is served")
            self.running = False
            return wire.Error(kind="StorageError", message="NameNode journal failure")
        except Exception as exc:  # a bug must not take the NameNode down
            log.exception("internal error on %s", msg.TYPE)
            return wire.Error(kind="MapredError", message=f"internal NameNode error: {exc}")

    # -- client requests -------------------------------------------------------------------------

    # -- who may do what to which path (``permissions``) --------------------------------------

    def _caller(self, m) -> perm.Caller:
        return perm.Caller.of(self.peer, getattr(m, "as_user", ""))

    def _is_admin(self) -> bool:
        return self.peer is None or self.peer == LEGACY or self.peer.role is Role.ADMIN

    def _require_admin(self, what: str) -> None:
        if not self._is_admin():
            raise PermissionDenied(f"permission denied: {what} needs an admin key ({self._who()})")

    def _owner_in(self, caller: perm.Caller, path: str) -> str:
        """The owner a new path gets: the caller, or for a node the owner of the directory above."""
        parent = path
        while parent != "/":
            parent = parent.rsplit("/", 1)[0] or "/"
            node = self.core.ns.lookup(parent)
            if node is not None:
                return perm.owner_for(caller, node)
        return perm.owner_for(caller, self.core.ns.root)

    def _check_lease(self, caller: perm.Caller, path: str) -> None:
        """Only the writer (or a super-user) adds to, completes or abandons a file being written."""
        uc = self.core.writing.get(normalize(path))
        if uc is not None and uc.owner and not caller.superuser and caller.name != uc.owner:
            raise PermissionDenied(f"permission denied: {path} is being written by {uc.owner}")

    # -- client requests -------------------------------------------------------------------------

    def _h_nn_mkdir(self, m: wire.Mkdir):
        caller, path = self._caller(m), normalize(m.path)
        perm.check_create(self.core.ns, caller, path)
        self.core.mkdir(path, m.parents, time.time(), self._owner_in(caller, path),
                        perm.check_mode(m.mode))

    def _h_nn_chmod(self, m: wire.SetPermission):
        caller, path = self._caller(m), normalize(m.path)
        perm.check_owner(self.core.ns, caller, path, "change the permissions of")
        if m.owner:
            self._require_admin(f"giving {path} to {m.owner}")
        self.core.chmod(path, None if m.mode < 0 else perm.check_mode(m.mode), m.owner or None)

    def _h_nn_create(self, m: wire.Create):
        caller, path = self._caller(m), normalize(m.path)
        perm.check_create(self.core.ns, caller, path)
        uc = self.core.create(path, m.overwrite, m.replication, m.block_size, m.client_host,
                              time.time(), self._owner_in(caller, path), perm.check_mode(m.mode))
        return wire.Ok(info={"block_size": uc.block_size, "replication": uc.replication})

    def _h_nn_add_block(self, m: wire.AddBlock):
        _check_previous(m.previous)
        self._check_lease(self._caller(m), m.path)
        block_id = self._new_block_id()
        now = time.time()
        targets = self.core.add_block(m.path, m.previous, m.exclude, m.client_host, block_id, now)
        gen, token = self.core.token(block_id, tokens.WRITE, now)
        return wire.BlockAllocated(block_id=block_id, targets=[list(t) for t in targets],
                                   gen=gen, token=token)

    def _h_nn_bump_gen(self, m: wire.BumpGeneration):
        self._check_lease(self._caller(m), m.path)
        gen, token = self.core.bump_gen(m.path, m.block_id, time.time())
        log.info("block %d of %s: pipeline recovery, generation stamp now %d", m.block_id, m.path, gen)
        return wire.BlockAllocated(block_id=m.block_id, targets=[], gen=gen, token=token)

    def _h_nn_complete(self, m: wire.Complete):
        _check_previous(m.last)
        self._check_lease(self._caller(m), m.path)
        self.core.complete(m.path, m.last, time.time())

    def _h_nn_abandon(self, m: wire.Abandon):
        self._check_lease(self._caller(m), m.path)
        self.core.abandon(m.path)

    def _h_nn_list(self, m: wire.GetListing):
        perm.check(self.core.ns, self._caller(m), normalize(m.path), perm.READ, "list")
        return wire.Listing(entries=self.core.listing(m.path))

    def _h_nn_stat(self, m: wire.GetStatus):
        perm.check_traverse(self.core.ns, self._caller(m), normalize(m.path))
        return wire.FileStatus(entry=self.core.status(m.path))

    def _h_nn_locations(self, m: wire.GetLocations):
        perm.check(self.core.ns, self._caller(m), normalize(m.path), perm.READ, "read")
        length, blocks = self.core.locations(m.path, time.time())
        return wire.Located(length=length, blocks=blocks)

    def _h_nn_delete(self, m: wire.Delete):
        caller, path = self._caller(m), normalize(m.path)
        perm.check_remove(self.core.ns, caller, path, m.recursive)
        if not m.trash:
            user = trash.SYSTEM_USER
        else:                       # nobody fills another's trash
            user = self._trash_owner(m.user) if caller.superuser else caller.name
        owner = user if self.peer is not None and m.trash else ""   # the trash dirs are the user's
        where = self.core.remove(path, m.recursive, user, m.trash, time.time(), owner=owner)
        if where:
            log.info("moved %s to the trash of %s at %s", m.path, user, where)
        return wire.Ok(info={"trash": where})

    def _trash_owner(self, claimed: str) -> str:
        """Whose trash a deletion goes to: the key's own name unless it may act for others.

        A ``user`` key gets its own trash whatever it claims; an admin key (the
        HTTP service, acting for the user it authenticated) may name the user;
        an unkeyed loopback peer is trusted as every local user is without keys.
        """
        peer = self.peer
        if peer is None or peer == LEGACY or peer.role in (Role.ADMIN, Role.SERVICE):
            return claimed or (peer.name if peer is not None and peer != LEGACY else trash.SYSTEM_USER)
        if claimed and claimed != peer.name:
            log.info("rm by %s named %s's trash; it goes to %s's own", peer.name, claimed, peer.name)
        return peer.name

    def _h_nn_expunge(self, m: wire.Expunge):
        return wire.Ok(info=self.keeper.empty_trash(time.time(), m.immediate, m.user))

    def _h_nn_pin(self, m: wire.PinPath):
        self.core.pin(m.path, m.tag, m.on)

    def _h_nn_pins(self, m: wire.ListPins):
        top = normalize(m.path)
        under = top.rstrip("/") + "/"
        return wire.Ok(info={"pins": {p: sorted(tags) for p, tags in sorted(self.core.ns.pins.items())
                                      if p == top or p.startswith(under)}})

    def _h_nn_hold(self, m: wire.HoldPaths):
        self.keeper.hold(m.holder, list(m.paths), m.ttl, time.time())

    def _admin_only(self, what: str):
        """None if the peer may change the store's housekeeping (admin key, legacy secret, unkeyed)."""
        peer = self.peer
        if peer is None or peer == LEGACY or peer.role is Role.ADMIN:
            return None
        why = self.refusals.refuse(peer, "not_admin", what)
        return wire.Error(kind="PermissionDenied", message=why)

    def _h_nn_cleanup_run(self, m: wire.CleanupRun):
        refused = self._admin_only("cleanup runs need an admin key")
        if refused is not None:
            return refused
        if not m.dry_run:
            self.core._writable()      # refuse now, not after the walk, in safe mode
        return wire.Ok(info=self.runs.start(time.time(), dry_run=m.dry_run).describe())

    def _h_nn_cleanup_run_status(self, m: wire.CleanupRunStatus):
        run = self.runs.get(m.run)
        if run is None:
            raise StorageError(f"no cleanup run {m.run} (the last {len(self.runs.finished)} "
                               "finished runs are kept)")
        return wire.Ok(info=run.describe())

    def _h_nn_cleanup_rules(self, m: wire.CleanupRules):
        refused = self._admin_only("replacing cleanup rules needs an admin key") if m.replace else None
        if refused is not None:
            return refused
        if m.replace:
            rules = cleanup.parse_rules(m.rules)
            cleanup.save_file(self.rules_file, rules)
            self.keeper.set_rules(rules, time.time())
            log.info("cleanup rules replaced (%d rules), saved to %s", len(rules.rules), self.rules_file)
        return wire.Ok(info=self.keeper.describe_rules())

    def _h_nn_cleanup_status(self, m: wire.CleanupStatus):
        return wire.Ok(info=self.keeper.status(time.time()))

    def _h_nn_rename(self, m: wire.Rename):
        caller, src, dst = self._caller(m), normalize(m.src), normalize(m.dst)
        perm.check_remove(self.core.ns, caller, src, recursive=False)
        if isinstance(self.core.ns.lookup(dst), DirNode):     # into a directory, as mv does
            dst = f"{dst.rstrip('/')}/{src.rsplit('/', 1)[1]}"
        perm.check_create(self.core.ns, caller, dst)
        self.core.rename(m.src, m.dst, time.time())

    def _h_nn_concat(self, m: wire.Concat):
        caller = self._caller(m)
        perm.check(self.core.ns, caller, normalize(m.target), perm.WRITE, "append to")
        for src in m.sources:
            perm.check_remove(self.core.ns, caller, normalize(src), recursive=False)
        self.core.concat(m.target, m.sources, time.time())

    def _h_nn_setrep(self, m: wire.SetReplication):
        perm.check(self.core.ns, self._caller(m), normalize(m.path), perm.WRITE, "set the replication of")
        return wire.Ok(info={"files": self.core.set_replication(m.path, m.replication)})

    def _h_nn_bad_replica(self, m: wire.ReportBadReplica):
        """The DataNode's word on its own copy condemns it; anyone else's only asks for a re-check."""
        own = self._is_bound(m.dnid)
        log.warning("replica of block %d on %s reported bad by %s: %s", m.block_id, m.dnid,
                    "that DataNode" if own else f"a reader ({self.peer or 'unkeyed'})", m.reason)
        event = ReplicaCorrupt if own else ReplicaSuspected
        self.core.handle(event(m.block_id, m.dnid))

    def _h_nn_fsck(self, m: wire.Fsck):
        return wire.FsckResult(report=self.core.fsck(m.path))

    def _h_nn_report(self, m: wire.DatanodeReport):
        now = time.time()
        nodes = self.core.datanode_report()
        for node in nodes:
            node["last_heartbeat_s"] = round(now - node.pop("last_seen"), 3)
            node["refusals"] = self.dn_refusals.get(node["dnid"], {})
        return wire.Datanodes(nodes=nodes, refusals={**self.refusals.counts(), **zap_refusals(self.ctx)})

    def _h_nn_decommission(self, m: wire.DecommissionDatanode):
        self._require_admin("decommissioning a DataNode")
        dnid = self.core.decommission(m.datanode, m.on)
        self._save_leaving()
        log.info("DataNode %s: %s", dnid, "decommissioning" if m.on else "back in service")
        return wire.Ok(info={"dnid": dnid, "admin_state": self.core.bmap.nodes[dnid].admin.value})

    def _h_nn_balance(self, m: wire.Balance):
        if m.action != "status":
            self._require_admin("balancing")
        if m.action == "start":
            return wire.Ok(info=self.core.start_balance(m.threshold, m.bandwidth))
        if m.action == "stop":
            if self.core.balancing:
                self.core.balancing["running"] = False
        elif m.action != "status":
            raise StorageError(f"unknown balance action {m.action!r} (start, stop, status)")
        return wire.Ok(info=self.core.balance_status())

    def _save_leaving(self) -> None:
        """The decommission list survives a NameNode restart (HDFS keeps it in an exclude file)."""
        path = os.path.join(self.data_dir, "name", "decommission.json")
        tmp = path + ".tmp"
        with open(tmp, "w") as f:
            json.dump(sorted(self.core.leaving), f)
        os.replace(tmp, path)

    def _load_leaving(self) -> None:
        path = os.path.join(self.data_dir, "name", "decommission.json")
        if os.path.exists(path):
            with open(path) as f:
                self.core.leaving = {str(d) for d in json.load(f)}

    def _h_nn_safemode(self, m: wire.SafeMode):
        if m.action != "get":
            self._require_admin(f"safemode {m.action}")
        return wire.Ok(info={"safemode": self.core.set_safemode(m.action)})

    # -- DataNode messages -----------------------------------------------------------------------

    def _h_dn_register(self, m: wire.Register):
        who = self.peer.name if self.peer is not None else ""
        claim = [who, m.proof]
        bound = self.bound.get(m.dnid)
        if not m.proof:
            why = self.refusals.refuse(self._who(), "no_proof", f"registration of {m.dnid}")
            return wire.Error(kind="PermissionDenied", message=why)
        if bound is not None and list(bound) != claim:
            why = self.refusals.refuse(self._who(), "datanode_id_taken",
                                       f"{m.dnid} belongs to another DataNode")
            return wire.Error(kind="PermissionDenied", message=why)
        if bound is None:
            self.bound[m.dnid] = claim
            _save_json(self._bindings_path, self.bound)
        self.routes[m.dnid] = self.route
        log.info("DataNode %s registered from %s", m.dnid, m.addr)
        self.core.handle(DatanodeRegistered(m.dnid, m.addr, m.host, m.data_dir, m.capacity,
                                            m.used, m.remaining, time.time()))
        return _commands([{"op": "block_key", "key": self.core.token_key.hex()}])

    def _is_bound(self, dnid: str) -> bool:
        """Whether this message came over the connection that registered ``dnid``."""
        return bool(self.route) and self.routes.get(dnid) == self.route

    def _who(self) -> str:
        return str(self.peer) if self.peer is not None else f"connection {self.route.hex()}"

    def _unbound(self, dnid: str, what: str) -> wire.Commands:
        """A DataNode message over a connection that did not register ``dnid``: register first."""
        self.refusals.refuse(self._who(), "unregistered_connection", f"{what} for {dnid}")
        return _commands([{"op": "register"}])

    def _h_dn_heartbeat(self, m: wire.Heartbeat):
        if not self._is_bound(m.dnid):
            return self._unbound(m.dnid, "heartbeat")
        self.dn_refusals[m.dnid] = {str(k): int(v) for k, v in list(m.refusals.items())[:64]
                                    if isinstance(v, int)}
        commands = self.core.handle(HeartbeatReceived(m.dnid, m.capacity, m.used, m.remaining,
                                                      time.time()))
        return _commands(commands)

    def _h_dn_block_report(self, m: wire.BlockReport):
        if not self._is_bound(m.dnid):
            return self._unbound(m.dnid, "block report")
        try:
            rows = [(int(r[0]), int(r[1]), int(r[2]) if len(r) > 2 else 0) for r in m.blocks]
        except (TypeError, ValueError, IndexError):
            raise ProtocolError(f"block report from {m.dnid} is not a list of "
                                "[id, length, gen]") from None
        blocks = {b: n for b, n, _ in rows}
        gens = {b: g for b, _, g in rows if g}
        return _commands(self.core.handle(BlockReportReceived(m.dnid, blocks, time.time(), gens)))

    def _h_dn_received(self, m: wire.BlockReceived):
        if not self._is_bound(m.dnid):
            return self._unbound(m.dnid, "received block")
        return _commands(self.core.handle(ReplicaReceived(m.dnid, m.block_id, m.length, time.time(),
                                                          m.gen)))

    # -- plumbing --------------------------------------------------------------------------------

    def _new_block_id(self) -> int:
        while True:
            block_id = secrets.randbits(62) + 1
            if block_id not in self.core.bmap.blocks:
                return block_id

    def stop(self, *_):
        """Ask the loop to end (a signal handler)."""
        self.running = False

    def close(self) -> None:
        """Close the journal, the socket and the ZeroMQ context."""
        self.journal.close()
        self.sock.close(0)
        stop_authenticator(self.ctx)
        self.ctx.term()


def _check_previous(previous: list) -> None:
    """``[block_id, length, [dnid, ...](, digest)]`` or empty; anything else is a protocol error."""
    if not previous:
        return
    ok = (len(previous) in (3, 4) and isinstance(previous[0], int) and isinstance(previous[1], int)
          and previous[1] >= 0 and isinstance(previous[2], list)
          and all(isinstance(d, str) for d in previous[2])
          and (len(previous) == 3 or (isinstance(previous[3], str) and len(previous[3]) <= 128)))
    if not ok:
        raise ProtocolError(f"bad block description {previous!r:.200}")


def _load_key(path: str) -> bytes:
    """The NameNode's block-token key, made once and kept (mode 0600) so tokens outlive a restart."""
    try:
        with open(path, "rb") as f:
            key = f.read()
        if len(key) == 32:
            return key
    except FileNotFoundError:
        pass
    key = tokens.new_key()
    os.makedirs(os.path.dirname(path), exist_ok=True)
    fd = os.open(path + ".tmp", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(key)
    os.replace(path + ".tmp", path)
    return key


def _load_json(path: str) -> dict:
    try:
        with open(path) as f:
            data = json.load(f)
        return data if isinstance(data, dict) else {}
    except (FileNotFoundError, ValueError):
        return {}


def _save_json(path: str, data: dict) -> None:
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        json.dump(data, f)
    os.replace(tmp, path)


def _with_rid(reply: wire.Message, rid: int) -> wire.Message:
    return dataclasses.replace(reply, rid=rid)


def run(data_dir: str, host: str, port: int, settings: Settings, ready_file: str = "",
        checkpoint_every: int = 10000, cleanup_rules: str = "") -> None:
    """Start a NameNode and serve until SIGTERM/SIGINT."""
    node = NameNode(data_dir, settings, host, port, checkpoint_every=checkpoint_every,
                    cleanup_rules=cleanup_rules)
    signal.signal(signal.SIGTERM, node.stop)
    signal.signal(signal.SIGINT, node.stop)
    if ready_file:
        _write_ready(ready_file, node.addr)
    node.serve()


def _write_ready(path: str, addr: str) -> None:
    """Atomically publish our address so a harness can poll for it."""
    tmp = f"{path}.{os.getpid()}.tmp"
    with open(tmp, "w") as f:
        f.write(addr + "\n")
    os.replace(tmp, path)


def _commands(commands: list) -> wire.Commands:
    """The core's command dicts as the typed records a DataNode receives."""
    return wire.Commands(commands=[wire.datanode_command(c) for c in commands])
