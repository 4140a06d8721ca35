"""Cost of asking whether a process holds a recording open (`workstation.recording.mark.held_by_a_process`).

    python bench/held_scan.py [--processes 300] [--files-each 20] [--repeat 5] [--json]

On Linux the answer comes from every process's open files (/proc/<pid>/fd, their mode in /proc/<pid>/fdinfo), so
its cost grows with the processes and the files they hold. It is asked only about a file still marked open for
writing (a live or killed recording: `inspect`, `verify`, crash recovery, the ballast check of a folder scan),
never for a closed recording. This starts `--processes` sleeping processes holding `--files-each` files each beside
the machine's own, and times the question about a real recording file, for a writer (`for_writing=True`, what
`in_use_error` asks) and for any holder.

With --json the last line is one JSON object with processes, ms_for_writing, ms_any_holder.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from workstation.recording.mark import held_by_a_process  # noqa: E402

HOLDER = "import sys, time; fs = [open(sys.argv[1]) for _ in range(int(sys.argv[2]))]; time.sleep(600)"


def measure(processes: int, files_each: int, repeat: int) -> dict:
    with tempfile.TemporaryDirectory() as d:
        target = Path(d) / "recording.h5"
        target.write_bytes(b"\x89HDF\r\n\x1a\n" + bytes(4096))
        other = Path(d) / "other.txt"
        other.write_text("held by the sleeping processes")
        procs = [subprocess.Popen([sys.executable, "-c", HOLDER, str(other), str(files_each)])
                 for _ in range(processes)]
        try:
            time.sleep(1.0 + processes / 100)  # every holder has opened its files
            n = sum(name.isdigit() for name in os.listdir("/proc")) if os.path.isdir("/proc") else 0
            timings = {}
            for key, for_writing in (("ms_for_writing", True), ("ms_any_holder", False)):
                t = time.perf_counter()
                for _ in range(repeat):
                    held_by_a_process(target, for_writing=for_writing)
                timings[key] = round((time.perf_counter() - t) / repeat * 1000, 1)
        finally:
            for p in procs:
                p.kill()
            for p in procs:
                p.wait()
    return {"processes": n, **timings}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--processes", type=int, default=300)
    ap.add_argument("--files-each", type=int, default=20)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    r = measure(args.processes, args.files_each, args.repeat)
    print(f"{r['processes']} processes: {r['ms_for_writing']} ms for a writer, {r['ms_any_holder']} ms for any holder")
    if args.json:
        print(json.dumps(r))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
