"""What the Python test scripts share: skipping (exit 77, which CTest reports
as skipped) and a tally of named checks whose summary line, printed last, is
"N passed, M failed"."""
import sys
import traceback


def skip(why):
    print(f"skipped: {why}")
    sys.exit(77)


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
