"""memfence's automatic Python integration under `memfence run`.

`memfence run` puts this directory first on PYTHONPATH when the child is a
Python program; Python imports sitecustomize at start-up. This one adds a
finder to sys.meta_path and loads nothing else: memfence itself is imported
only when the program imports a module it patches (the table below; the
patches are in memfence/auto.py). Then it runs the sitecustomize it
shadows (Debian ships one), so the program starts as it would have.

Start-up is what every Python process under `memfence run` pays, so this
file uses only sys and os, which the interpreter has loaded before it.
"""
import os
import sys

# A module the program imports -> the function of memfence.auto that
# patches it once it has run.
_HOOKS = {
    "grpc": "patch_grpc",
    "celery": "patch_celery",
    "gunicorn.workers.base": "patch_gunicorn",
    "uvicorn.config": "patch_uvicorn",
}
_HERE = os.path.dirname(os.path.abspath(__file__))
# The package this bootstrap belongs to, for programs that import memfence
# where it is not installed.
_ROOT = os.path.dirname(os.path.dirname(_HERE))


def _patch(name, module):
    import memfence.auto as auto
    getattr(auto, _HOOKS[name])(module)


class _Loader:
    """The real loader, then the patch; never breaks the program's import."""

    def __init__(self, inner, name):
        self.inner, self.name = inner, name

    def create_module(self, spec):
        return self.inner.create_module(spec)

    def exec_module(self, module):
        self.inner.exec_module(module)
        try:
            _patch(self.name, module)
        except Exception as e:
            sys.stderr.write("memfence: could not patch %s: %s\n" % (self.name, e))

    def __getattr__(self, name):
        return getattr(self.inner, name)


class MemfenceFinder:
    """Lets the other finders find a hooked module, and wraps its loader."""

    memfence_hooks = _HOOKS

    def find_spec(self, fullname, path=None, target=None):
        if fullname not in _HOOKS and fullname != "memfence":
            return None
        for finder in sys.meta_path:
            if finder is self or not hasattr(finder, "find_spec"):
                continue
            spec = finder.find_spec(fullname, path, target)
            if spec is not None:
                if fullname in _HOOKS and spec.loader is not None and \
                        hasattr(spec.loader, "exec_module"):
                    spec.loader = _Loader(spec.loader, fullname)
                return spec
        if fullname == "memfence":
            return _path_finder().find_spec(fullname, [_ROOT])
        return None


# Read before memfence is imported, so not through memfence._memfence.ENV;
# tests/integration/env_contract.sh checks the name against that table.
_AUTO_PYTHON = "MEMFENCE_AUTO_PYTHON"


def _enabled():
    return os.environ.get(_AUTO_PYTHON, "1") not in ("0", "no", "false", "off")


def _memfence_boot():
    if not _enabled() or any(isinstance(f, MemfenceFinder) for f in sys.meta_path):
        return
    # A .pth file may have imported one already.
    for name in _HOOKS:
        if name in sys.modules:
            try:
                _patch(name, sys.modules[name])
            except Exception as e:
                sys.stderr.write("memfence: could not patch %s: %s\n" % (name, e))
    sys.meta_path.insert(0, MemfenceFinder())


def _path_finder():
    # importlib.machinery's PathFinder, without importing importlib (and
    # warnings with it).
    finder = getattr(sys.modules.get("_frozen_importlib_external"), "PathFinder", None)
    if finder is None:
        import importlib.machinery
        finder = importlib.machinery.PathFinder
    return finder


def _memfence_chain():
    others = [p for p in sys.path if os.path.abspath(p or ".") != _HERE]
    spec = _path_finder().find_spec("sitecustomize", others)
    if spec is None or spec.loader is None:
        return
    # What importlib.util.module_from_spec does, without importing it.
    module = type(sys)(spec.name)
    module.__spec__, module.__loader__, module.__file__ = spec, spec.loader, spec.origin
    module.__cached__ = spec.cached
    sys.modules["sitecustomize"] = module
    spec.loader.exec_module(module)


_memfence_boot()
_memfence_chain()
