"""Run `main.py ARGS` with a signal sent to itself at one chosen line: the first call of the function named by
$INJECT_AT (e.g. SQLAlchemy's `_deactivate_from_connection`, inside a commit) once $INJECT_AFTER (a function name;
default: when the SIGTERM handler is set) has been called. A test then sees what a signal arriving exactly there
does, which a loaded machine does now and then (tenth session: a SIGTERM in SQLAlchemy's commit gave "an internal
error"). Prints "INJECTED <function> in <file>" on stderr when it sent the signal, so a test knows it did."""

from __future__ import annotations

import os
import runpy
import signal
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
AT, AFTER = os.environ["INJECT_AT"], os.environ.get("INJECT_AFTER", "")
SIGNUM = int(os.environ.get("INJECT_SIGNAL", str(int(signal.SIGTERM))))
armed = {"after": not AFTER, "handler": SIGNUM == signal.SIGINT, "done": False}  # Ctrl+C's is Python's own


def tracer(frame, event, _arg):  # noqa: ANN001, ANN201 - sys.settrace's hook
    if event != "call" or armed["done"]:
        return None
    name = frame.f_code.co_name
    if name == AFTER:
        armed["after"] = True
    elif name == AT and armed["after"] and armed["handler"]:
        armed["done"] = True
        print(f"INJECTED {name} in {frame.f_code.co_filename}", file=sys.stderr, flush=True)
        os.kill(os.getpid(), SIGNUM)  # its handler runs at the next line of this thread: inside `name`
    return None


_set = signal.signal


def _noting(signum, handler, *rest):  # noqa: ANN001, ANN202 - signal.signal's own signature
    if signum == SIGNUM and callable(handler):
        armed["handler"] = True
    return _set(signum, handler, *rest)


signal.signal = _noting
sys.setprofile(None)
sys.settrace(tracer)
sys.argv = [str(ROOT / "main.py"), *sys.argv[1:]]
runpy.run_path(str(ROOT / "main.py"), run_name="__main__")
