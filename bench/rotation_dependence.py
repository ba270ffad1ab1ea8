#!/usr/bin/env python3
"""How much the trained models' energies depend on orientation.

The mixing matrices of the student models act on the Cartesian index of the
vector features and are not multiples of the identity, so E(R x) != E(x).
This script rotates molecules at random (fixed seed), evaluates every copy with
`distilmd eval` (reference platform, float64) and prints the spread of E.

    bench/rotation_dependence.py [--binary build/distilmd] [--rotations 64]
"""
import argparse
import os
import subprocess
import sys
import tempfile

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "python"))
from distilmd_torch import read_extxyz, write_extxyz  # noqa: E402


def random_rotation(rng):
    q = rng.normal(size=4)
    w, x, y, z = q / np.linalg.norm(q)
    return np.array([[1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)],
                     [2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)],
                     [2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)]])


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--binary", default=os.path.join(HERE, "..", "build", "distilmd"))
    ap.add_argument("--rotations", type=int, default=64)
    ap.add_argument("--molecules", default="water,ethanol,benzene,aspirin,caffeine")
    args = ap.parse_args()
    shared = os.environ.get("DISTILMD_SHARED", os.path.join(HERE, "..", "..", "shared"))
    rng = np.random.default_rng(2026)
    print(f"{'model':6} {'molecule':10} {'atoms':>5} {'std E (meV)':>12} {'max-min E (meV)':>16}")
    with tempfile.TemporaryDirectory() as tmp:
        for model in ("427k", "77k", "21k"):
            for name in args.molecules.split(","):
                mol = read_extxyz(os.path.join(shared, "molecules", name + ".xyz"))[0]
                x = np.asarray(mol["positions"])
                x = x - x.mean(axis=0)
                frames = [dict(mol, positions=x @ random_rotation(rng).T) for _ in range(args.rotations)]
                inp, out = os.path.join(tmp, "in.extxyz"), os.path.join(tmp, "out.extxyz")
                write_extxyz(inp, frames)
                subprocess.run([args.binary, "eval", "--platform", "reference", "--model",
                                os.path.join(shared, "models", f"student_{model}.onnx"),
                                "--output", out, inp], check=True, stderr=subprocess.DEVNULL)
                E = np.array([f["energy"] for f in read_extxyz(out)])
                print(f"{model:6} {name:10} {len(x):5d} {1e3 * E.std():12.1f} {1e3 * (E.max() - E.min()):16.1f}")


if __name__ == "__main__":
    main()
