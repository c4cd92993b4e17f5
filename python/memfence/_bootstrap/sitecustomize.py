"""memfence's automatic Python integration (see memfence/auto.py).

`memfence run` puts this directory first on PYTHONPATH when the child is a
Python program; Python imports sitecustomize at start-up. This one enables
the integration, then runs the sitecustomize it shadows (Debian ships one),
so the program starts exactly as it would have, plus memfence.
"""
import os
import sys


def _memfence_boot():
    here = os.path.dirname(os.path.abspath(__file__))
    root = os.path.dirname(os.path.dirname(here))
    try:
        import memfence.auto
    except ImportError:
        if root not in sys.path:
            sys.path.append(root)
        try:
            import memfence.auto
        except Exception as e:
            sys.stderr.write("memfence: automatic Python integration unavailable: %s\n" % e)
            return here
    try:
        memfence.auto.enable()
    except Exception as e:
        sys.stderr.write("memfence: automatic Python integration failed: %s\n" % e)
    return here


def _memfence_chain(here):
    import importlib.machinery
    import importlib.util

    others = [p for p in sys.path if os.path.abspath(p or ".") != here]
    spec = importlib.machinery.PathFinder.find_spec("sitecustomize", others)
    if spec is None or spec.loader is None:
        return
    module = importlib.util.module_from_spec(spec)
    sys.modules["sitecustomize"] = module
    spec.loader.exec_module(module)


_memfence_chain(_memfence_boot())
