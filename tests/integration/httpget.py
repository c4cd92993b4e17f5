"""get(): one HTTP GET for the shell tests' Python clients, which run it with
PYTHONPATH=tests/integration. Never raises: a client counts what came back.

Returns (status, body): the HTTP status and body, ("refused", message) when
nothing listens on the port (a server not started yet, or being replaced),
or (None, message) for any other failure (timeout, reset)."""
import urllib.error
import urllib.request


def get(url, timeout=5):
    try:
        with urllib.request.urlopen(url, timeout=timeout) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()
    except urllib.error.URLError as e:
        if isinstance(e.reason, ConnectionRefusedError):
            return "refused", str(e)
        return None, "%s: %s" % (type(e).__name__, e)
    except Exception as e:
        return None, "%s: %s" % (type(e).__name__, e)
