"""A job command for the worker-process tests: ``python pidjob.py FILE MODE``.

Appends ``<its pid> <its child's pid>`` to FILE, then:
``wait`` runs ``sleep 300`` as a child and waits for it (a long job with a grandchild);
``leave`` starts ``sleep 300`` in the background and exits at once (a job that leaves a
process behind). The tests read FILE to find the processes and check them with psutil.
"""

from __future__ import annotations

import os
import subprocess
import sys


def main() -> None:
    path, mode = sys.argv[1], sys.argv[2]
    child = subprocess.Popen(["sleep", "300"])
    with open(path, "a") as out:
        out.write(f"{os.getpid()} {child.pid}\n")
    if mode == "wait":
        child.wait()


if __name__ == "__main__":
    main()
