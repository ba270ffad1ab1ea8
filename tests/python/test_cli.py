#!/usr/bin/env python3
"""The `distilmd` command as a user meets it: `eval` reproduces the golden
energies and forces of every shared molecule with each model (frames in input
order), and bad input gives a clear error (file, line, what was expected) and
a non-zero exit status, never a crash."""
import os
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "python"))
try:
    from distilmd_torch import read_extxyz  # noqa: E402
except ImportError as e:  # numpy
    print(f"skipped: {e}")
    sys.exit(77)

from checks import Tally, locations, skip  # noqa: E402

tally = Tally()


def check(ok, what):
    tally.check(what, ok)


binary, src, shared = locations()
if not os.path.isdir(os.path.join(shared, "models")):
    skip(f"shared data not found at {shared} (set DISTILMD_SHARED)")


def run(*args):
    p = subprocess.run([binary, *args], capture_output=True, text=True)
    check(p.returncode >= 0, f"{args}: killed by signal {-p.returncode}")
    return p


with tempfile.TemporaryDirectory() as tmp:
    # golden data through the command line, all three models
    for size in ("427k", "77k", "21k"):
        ref = os.path.join(shared, "reference", f"student_{size}.extxyz")
        out = os.path.join(tmp, f"eval_{size}.extxyz")
        p = run("eval", "--platform", "reference", "--model",
                os.path.join(shared, "models", f"student_{size}.onnx"), "--output", out, ref)
        check(p.returncode == 0, f"eval {size}: {p.stderr}")
        if p.returncode:
            continue
        golden, got = read_extxyz(ref), read_extxyz(out)
        check(len(golden) == len(got) == 26, f"{size}: 26 frames in, 26 out")
        for g, e in zip(golden, got):
            check(g["info"].get("name") == e["info"].get("name"), f"{size}: frame order")
            check(abs(g["energy"] - e["energy"]) < 1e-6, f"{size} {g['info'].get('name')}: energy")
            check(abs(g["forces"] - e["forces"]).max() < 1e-6, f"{size} {g['info'].get('name')}: forces")

    # bad input: exit status 1 or 2, a message naming the culprit
    def write(name, text):
        path = os.path.join(tmp, name)
        with open(path, "w") as f:
            f.write(text)
        return path

    model = os.path.join(shared, "models", "student_21k.onnx")
    water = os.path.join(shared, "molecules", "water.xyz")
    cases = [
        (["eval", "--model", write("bad.onnx", "hello\n"), water], 1, ["bad.onnx", "not an ONNX model"]),
        (["eval", "--model", model, write("bad.xyz", "3\n\nO 0 0 0\nH 0 0 x\nH 1 0 0\n")], 1,
         ["bad.xyz:4", "pos z", "expected a number"]),
        (["eval", "--model", model, write("short.xyz", "3\n\nO 0 0 0\n")], 1, ["short.xyz", "expected 3"]),
        (["eval", "--model", model, write("el.xyz", "1\n\nXx 0 0 0\n")], 1, ["el.xyz:3", "Xx"]),
        (["eval", "--model", model, os.path.join(tmp, "missing.xyz")], 1, ["missing.xyz", "cannot open"]),
        (["eval", "--model", os.path.join(tmp, "missing.onnx"), water], 1, ["missing.onnx"]),
        (["eval", "--model", model, "--platform", "gpu", water], 1, ["unknown platform 'gpu'"]),
        (["eval", "--model", model, "--output", os.path.join(tmp, "no", "dir.xyz"), water], 1,
         ["no/dir.xyz", "cannot open for writing"]),
        (["eval", water], 2, ["--model FILE is required"]),
        (["frobnicate"], 2, ["unknown command 'frobnicate'"]),
        (["run", write("typo.yaml", "model: x\nstesp: 3\n")], 1, ["typo.yaml"]),
    ]
    for args, status, words in cases:
        p = run(*args)
        check(p.returncode == status, f"{args}: exit {p.returncode}, expected {status}; {p.stderr}")
        for w in words:
            check(w in p.stderr, f"{args}: '{w}' not in: {p.stderr.strip()}")

print(f"{tally.results['passed']} passed, {tally.results['failed']} failed")
sys.exit(1 if tally.results["failed"] else 0)
