"""The package's own log lines, in the format memfence's other lines take.

Text (the default): through the ``logging`` module, as before, so the
program's logging configuration shows them. With ``--log-format json`` (the
variable memfence run and exec pass to the program) one JSON object a line
on stderr, with the fields of the command's and the shim's lines (time,
level, msg, pid, source, and task or request when the line is about one):
a log pipeline that parses JSON cannot parse the program's own format.
The logger's level still decides whether a line is written.
"""
import json
import logging
import os
import time
import traceback

from memfence._memfence import ENV

_LEVELS = {logging.DEBUG: "debug", logging.INFO: "info", logging.WARNING: "warning",
           logging.ERROR: "error", logging.CRITICAL: "error"}
_PREFIX = "memfence: "


def json_lines():
    """Whether the lines are JSON (read at each line: a test or a fork
    may change the environment)."""
    return os.environ.get(ENV["LOG_FORMAT"], "") == "json"


def json_line(level, msg, task=None, request=None):
    """The JSON line (newline included) of msg at level ("error", ...)."""
    now = time.time()
    if msg.startswith(_PREFIX):
        msg = msg[len(_PREFIX):]
    doc = {"time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(now)) +
           ".%03dZ" % (int(now * 1000) % 1000),
           "level": level, "msg": msg, "pid": os.getpid(), "source": "python"}
    if task is not None:
        doc["task"] = str(task)
    if request is not None:
        doc["request"] = str(request)
    return json.dumps(doc, separators=(",", ":")) + "\n"


def say(logger, level, fmt, *args, task=None, request=None, exc_info=False):
    """logger.log(level, fmt, *args), or its JSON line on stderr."""
    if not json_lines():
        logger.log(level, fmt, *args, exc_info=exc_info)
        return
    if not logger.isEnabledFor(level):
        return
    msg = fmt % args if args else fmt
    if exc_info:
        msg += "\n" + traceback.format_exc().rstrip("\n")
    line = json_line(_LEVELS.get(level, "info"), msg, task, request).encode("utf-8", "replace")
    try:
        os.write(2, line)
    except OSError:
        pass  # stderr closed: nothing to tell it to
