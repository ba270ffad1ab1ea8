#!/usr/bin/python3
"""Writes examples/ethanol_in_water10.xyz, the starting structure of
configs/fe_decouple_ethanol.yaml: ethanol (atoms 0-8, the solute) next to the
cluster of ten waters (atoms 9-38), both from the shared molecules.

The ethanol keeps its orientation and is moved along +x from the waters'
centroid until its nearest atom is SEPARATION Å from the nearest water atom
(bisection on the shift, to 1e-9 Å). Prints the radius of the smallest sphere
about the centroid of all atoms that holds every atom (for the flat-bottom
restraint of the example).

    DISTILMD_SHARED=/path/to/shared /usr/bin/python3 examples/make_ethanol_in_water10.py
"""
import os
import sys

import numpy as np

SEPARATION = 3.5  # Å
HERE = os.path.dirname(os.path.abspath(__file__))
SHARED = os.environ.get("DISTILMD_SHARED") or os.path.join(HERE, "..", "..", "shared")


def read_xyz(path):
    with open(path) as f:
        n = int(f.readline())
        f.readline()
        rows = [f.readline().split() for _ in range(n)]
    return [r[0] for r in rows], np.array([[float(v) for v in r[1:4]] for r in rows])


def nearest(a, b):
    return np.min(np.linalg.norm(a[:, None, :] - b[None, :, :], axis=2))


def main():
    es, ex = read_xyz(os.path.join(SHARED, "molecules", "ethanol.xyz"))
    ws, wx = read_xyz(os.path.join(SHARED, "molecules", "water_cluster_10.xyz"))
    start = ex - ex.mean(axis=0) + wx.mean(axis=0)  # ethanol centred on the waters
    shifted = lambda s: start + np.array([s, 0.0, 0.0])
    lo, hi = 0.0, 1.0
    while nearest(shifted(hi), wx) < SEPARATION:
        hi *= 2
    while hi - lo > 1e-9:  # nearest() grows with the shift once the two are apart
        mid = 0.5 * (lo + hi)
        lo, hi = (mid, hi) if nearest(shifted(mid), wx) < SEPARATION else (lo, mid)
    x = np.vstack([shifted(hi), wx])
    species = es + ws
    out = os.path.join(HERE, "ethanol_in_water10.xyz")
    with open(out, "w") as f:
        f.write(f"{len(species)}\n")
        f.write('Properties=species:S:1:pos:R:3 pbc="F F F" comment="ethanol (atoms 0-8) '
                f'{SEPARATION} A from ten waters (atoms 9-38); examples/make_ethanol_in_water10.py"\n')
        for s, p in zip(species, x):
            f.write(f"{s:2s} {p[0]:16.8f} {p[1]:16.8f} {p[2]:16.8f}\n")
    c = x.mean(axis=0)
    print(f"wrote {out}: {len(species)} atoms; nearest ethanol-water distance "
          f"{nearest(x[:len(es)], x[len(es):]):.6f} A; every atom within "
          f"{np.max(np.linalg.norm(x - c, axis=1)):.3f} A of the centroid")
    return 0


if __name__ == "__main__":
    sys.exit(main())
