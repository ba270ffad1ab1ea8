"""What the Python test scripts share: skipping (exit 77, which CTest reports
as skipped) and a tally of named checks whose summary line, printed last, is
"N passed, M failed"."""
import os
import sys
import traceback


def skip(why):
    print(f"skipped: {why}")
    sys.exit(77)


def locations():
    """(binary, source, shared) from the environment CTest sets: the built
    distilmd (skips without it), the source tree, and the shared data folder
    (DISTILMD_SHARED, default SOURCE/../shared), as absolute paths."""
    binary = os.environ.get("DISTILMD_BINARY", "")
    if not binary:
        skip("DISTILMD_BINARY is not set (CTest sets it to the built distilmd)")
    source = os.environ.get("DISTILMD_SOURCE_DIR",
                            os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
    shared = os.path.abspath(os.environ.get("DISTILMD_SHARED") or os.path.join(source, "..", "shared"))
    return binary, source, shared


class Tally:
    def __init__(self):
        self.results = {"passed": 0, "failed": 0, "skipped": 0}

    def check(self, name, condition, detail=""):
        if condition:
            self.results["passed"] += 1
        else:
            self.results["failed"] += 1
            print(f"FAIL {name}" + (f": {detail}" if detail else ""))

    def run_group(self, name, function, *args):
        """Runs a group of checks; an exception counts as one failure."""
        try:
            return function(*args)
        except Exception:
            self.results["failed"] += 1
            print(f"FAIL {name}: exception\n{traceback.format_exc()}")
            return None
