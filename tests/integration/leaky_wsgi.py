"""A WSGI app for the pre-fork recycling tests: the first gunicorn worker to
serve a request takes the leak (its pid in the file LEAKER_FILE names) and
keeps LEAK_MIB MiB (default 1) of each of its requests; the others keep
nothing. Answers "PID CALLS_KEPT"."""
import os

LEAKER = os.environ["LEAKER_FILE"]
MIB = int(os.environ.get("LEAK_MIB", "1"))
kept = []
me = None


def app(environ, start_response):
    global me
    if me is None:
        try:
            fd = os.open(LEAKER, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            os.write(fd, b"%d\n" % os.getpid())
            os.close(fd)
            me = True
        except FileExistsError:
            me = False
    if me:
        kept.append(b"x" * (MIB << 20))
    body = b"%d %d\n" % (os.getpid(), len(kept))
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
    return [body]
