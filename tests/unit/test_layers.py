"""The folder says the layer: no module imports against the layers, no import cycle, a pure core.

Every module of ``mapred/`` and ``models/`` is parsed and *every* import in it
is collected, deferred ones inside functions too.  An import may reach its own
layer or any below it; reaching above fails the test, and so does any cycle
of imports between modules.

The one sanctioned late binding is the package face: ``Job.run`` calls
``mapred.run`` (imported inside the method), because the runtime stands far
above ``job.py``.  ``mapred/__init__`` is lazy, so that import loads nothing
new; such imports must be deferred and listed in ``LATE_BINDINGS``.
"""
import ast
import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

# bottom up; a module belongs to the entry naming it most precisely (a name, or a prefix ending in ".")
LAYERS = [
    ("base", ["mapred.types", "mapred.errors", "mapred.version", "mapred.progress"]),
    ("user", ["mapred.config", "mapred.job", "mapred.combiners", "mapred.core", "mapred.core."]),
    ("security", ["mapred.security", "mapred.security."]),   # keys and tokens: the transport checks them
    ("net", ["mapred.net", "mapred.net."]),
    ("storage", ["mapred.storage", "mapred.storage."]),
    ("io", ["mapred.io", "mapred.io.", "mapred.formats", "mapred.formats."]),
    ("shuffle", ["mapred.shuffle", "mapred.shuffle.", "mapred.taskcontext"]),
    ("task", ["mapred.task", "mapred.task.", "mapred.reference", "mapred.runners", "mapred.runners."]),
    ("runtime", ["mapred.worker", "mapred.runtime", "mapred.runtime.", "mapred.jobfile",
                 "mapred.runners.spark"]),    # runs JobPlans on Spark, as the local runner does on a pool
    ("master", ["mapred.master", "mapred.testing"]),
    ("service", ["mapred.service", "mapred.service."]),
    ("face", ["mapred"]),
    ("apps", ["mapred.cli", "mapred.cli.", "mapred.__main__", "models", "models."]),
]

# (importer, imported): deferred imports of the package face from below it, each with its reason
LATE_BINDINGS = {
    ("mapred.job", "mapred"): "Job.run / Pipeline.run delegate to mapred.run, which loads the runtime",
}

PURE_CORE_FORBIDDEN = ("zmq", "psutil", "subprocess", "numpy")


def layer_of(module: str) -> int:
    """The layer of ``module``: the entry naming it most precisely (an exact name beats a prefix)."""
    best = None
    for i, (_, names) in enumerate(LAYERS):
        for name in names:
            if module == name or (name.endswith(".") and module.startswith(name)):
                score = len(name) + (1000 if module == name else 0)
                if best is None or score > best[0]:
                    best = (score, i)
    if best is None:
        raise AssertionError(f"{module} belongs to no layer: add it to LAYERS in {__file__}")
    return best[1]


def all_modules() -> dict:
    """module name -> file path, for every module of mapred/ and models/."""
    out = {}
    for top in ("mapred", "models"):
        for dirpath, _, files in os.walk(os.path.join(ROOT, top)):
            for f in files:
                if f.endswith(".py"):
                    rel = os.path.relpath(os.path.join(dirpath, f), ROOT)[:-3].replace(os.sep, ".")
                    out[rel[: -len(".__init__")] if rel.endswith(".__init__") else rel] = os.path.join(dirpath, f)
    return out


def imports_of(module: str, path: str, known: dict) -> list:
    """``(imported module, line, deferred)`` for every import in the file, resolved to our modules."""
    tree = ast.parse(open(path, encoding="utf-8").read(), path)
    package = module if path.endswith("__init__.py") else module.rpartition(".")[0]
    top_level = {id(n) for n in tree.body}
    found = []

    def add(name, node):
        while name and name not in known:       # "mapred.io.fs.get_fs" -> "mapred.io.fs"
            name = name.rpartition(".")[0]
        if name and name != module:
            found.append((name, node.lineno, id(node) not in top_level))

    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                add(alias.name, node)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")
                base = ".".join(parts[: len(parts) - node.level + 1] + ([base] if base else []))
            for alias in node.names:
                sub = f"{base}.{alias.name}"
                add(sub if sub in known else base, node)
    return [f for f in found if f[0].split(".")[0] in ("mapred", "models")]


@pytest.fixture(scope="module")
def graph():
    known = all_modules()
    return {m: imports_of(m, p, known) for m, p in known.items()}


def test_every_module_has_a_layer(graph):
    for module in graph:
        layer_of(module)


def test_no_import_runs_against_the_layers(graph):
    bad = []
    for module, imports in graph.items():
        for target, line, deferred in imports:
            if layer_of(target) <= layer_of(module):
                continue
            if (module, target) in LATE_BINDINGS and deferred:
                continue
            bad.append(f"{module}:{line} ({LAYERS[layer_of(module)][0]}) imports {target} "
                       f"({LAYERS[layer_of(target)][0]}){' (deferred)' if deferred else ''}")
    assert not bad, "imports against the layers:\n" + "\n".join(bad)


def test_late_bindings_are_still_needed(graph):
    """A listed exception that no longer exists must leave the list."""
    present = {(m, t) for m, imps in graph.items() for t, _, _ in imps}
    assert set(LATE_BINDINGS) <= present, set(LATE_BINDINGS) - present


def test_no_import_cycles(graph):
    edges = {m: {t for t, _, _ in imps if (m, t) not in LATE_BINDINGS} for m, imps in graph.items()}
    index, low, stack, on, cycles = {}, {}, [], set(), []

    def visit(v):   # Tarjan's strongly connected components
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in edges.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                cycles.append(sorted(comp))

    sys.setrecursionlimit(10000)
    for v in edges:
        if v not in index:
            visit(v)
    assert not cycles, f"import cycles: {cycles}"


def _loaded_by(statement: str) -> set:
    out = subprocess.run([sys.executable, "-c", f"{statement}\nimport sys\nprint('\\n'.join(sys.modules))"],
                         capture_output=True, text=True, cwd=ROOT, check=True,
                         env={**os.environ, "PYTHONPATH": ROOT})
    return set(out.stdout.split())


def test_core_imports_no_io_in_a_fresh_interpreter():
    loaded = _loaded_by("import mapred.core.scheduler, mapred.core.events, mapred.core.actions")
    assert not [m for m in PURE_CORE_FORBIDDEN if m in loaded], sorted(loaded & set(PURE_CORE_FORBIDDEN))
    ours = {m for m in loaded if m == "mapred" or m.startswith("mapred.")}
    allowed = {"mapred", "mapred.version", "mapred.types", "mapred.core"}
    assert ours - allowed <= {m for m in ours if m.startswith("mapred.core.")}, sorted(ours - allowed)


def test_import_mapred_is_lazy_and_an_executor_loads_no_master_side_code():
    assert {m for m in _loaded_by("import mapred") if m.startswith("mapred.")} == {"mapred.version"}
    loaded = _loaded_by("import mapred.task.child, mapred.task.attempt")
    for name in ("zmq", "psutil", "mapred.runtime", "mapred.core", "mapred.master", "mapred.task.pool",
                 "mapred.storage", "mapred.job"):
        assert not {m for m in loaded if m == name or m.startswith(name + ".")}, f"an executor loads {name}"


def test_models_use_only_the_public_api(graph):
    """``models/`` is written as a user would write it: the package face, ``mapred.errors``,
    ``mapred.version``, and the block store's client API (``mapred.storage``, docs/storage.md)."""
    public = {"mapred", "mapred.errors", "mapred.version", "mapred.storage", "mapred.storage.client",
              "mapred.storage.fs"}
    # the one exception: the model routes are a router module of `mapred serve` (docs/service.md),
    # so they plug into the service's auth, errors and page as every router module does
    plugins = {"models.serving.http"}
    bad = [f"{m}:{line} imports {t}" for m, imps in graph.items()
           if (m == "models" or m.startswith("models.")) and m not in plugins
           for t, line, _ in imps if t.startswith("mapred") and t not in public]
    assert not bad, "models/ reaching past the public API:\n" + "\n".join(bad)


def test_handler_tables_refuse_a_handler_for_no_message():
    """A renamed message must fail when the daemon is built, not turn into a silent "unknown" later."""
    from mapred.core.dispatch import handler_table

    class Ping:
        pass

    class Daemon:
        def _on_Ping(self, msg):
            return "pong"

        def _on_Pnig(self, msg):   # the handler a rename left behind
            return "lost"

    with pytest.raises(TypeError, match="_on_Pnig"):
        handler_table(Daemon(), "_on_", [Ping])
    del Daemon._on_Pnig
    table = handler_table(Daemon(), "_on_", [Ping])
    assert table[Ping](Ping()) == "pong"


def test_every_master_and_namenode_handler_names_a_wire_message():
    from mapred.core.dispatch import handler_table
    from mapred.master import Master
    from mapred.net import wire
    from mapred.storage.namenode import NameNode

    master = handler_table(Master.__new__(Master), "_on_", wire.registered().values())
    assert wire.SubmitJob in master and wire.WorkerBeat in master
    nn = handler_table(NameNode.__new__(NameNode), "_h_", wire.registered().values(),
                       lambda cls: cls.TYPE.replace(".", "_"))
    assert wire.Mkdir in nn and wire.Register in nn
