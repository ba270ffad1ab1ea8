#!/usr/bin/env python3
"""NVE energy conservation with the student model: drift and fluctuation.

Runs `distilmd run` with velocity Verlet (copies of each molecule, each with
its own Maxwell-Boltzmann velocities at 300 K) and fits the total energy of
every replica over time:
    drift        = slope of a least-squares line, in eV per ns per atom
    fluctuation  = standard deviation of E_tot about that line, in meV
Reported as mean +- standard error over the copies, for each time step given,
so that integration error (shrinks as dt^2) can be told apart from the
model's cutoff discontinuity (does not shrink with dt).

    bench/nve_drift.py --binary build/distilmd [--platform cuda] [--ps 50]
                       [--timesteps 0.5,0.25] [--molecules benzene,aspirin]
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile

import numpy as np

try:
    import h5py
except ImportError:
    sys.exit("nve_drift.py needs h5py (apt-get install python3-h5py)")

HERE = os.path.dirname(os.path.abspath(__file__))

CONFIG = """model: {shared}/models/student_{model}.onnx
platform: {platform}
seed: {seed}
steps: {steps}
systems:
{systems}
integrator:
  type: verlet
  timestep: {dt}
velocities:
  temperature: 300
output:
  file: {out}
  interval: {interval}
"""


def run(args, shared, tmp, dt):
    steps = int(round(args.ps * 1000 / dt))
    interval = max(1, int(round(args.sample_fs / dt)))
    out = os.path.join(tmp, f"nve_{dt}.h5")
    systems = "".join(f"  - structure: {shared}/molecules/{m}.xyz\n    copies: {args.copies}\n"
                      for m in args.molecules.split(","))
    cfg = os.path.join(tmp, f"nve_{dt}.yaml")
    with open(cfg, "w") as f:
        f.write(CONFIG.format(shared=shared, model=args.model, platform=args.platform, seed=args.seed,
                              steps=steps, systems=systems, dt=dt, out=out, interval=interval))
    subprocess.run([args.binary, "run", cfg, "--quiet"], check=True)
    with h5py.File(out, "r") as f:
        t_ps = f["observables/total_energy/time"][:]
        E = f["observables/total_energy/value"][:]  # [frames, replicas]
        natoms = [f[f"particles/replica_{r:04d}/species"].shape[0] for r in range(E.shape[1])]
    return t_ps, E, natoms


def analyse(t_ps, E, natoms, copies, molecules):
    rows = []
    for k, name in enumerate(molecules):
        drifts, flucts = [], []
        for r in range(k * copies, (k + 1) * copies):
            slope, icept = np.polyfit(t_ps, E[:, r], 1)
            resid = E[:, r] - (slope * t_ps + icept)
            drifts.append(slope * 1000 / natoms[r])  # eV/ps -> eV/ns, per atom
            flucts.append(1000 * resid.std())
        d, fl = np.array(drifts), np.array(flucts)
        rows.append(dict(molecule=name, atoms=natoms[k * copies], drift_eV_per_ns_atom=d.mean(),
                         drift_sem=d.std(ddof=1) / np.sqrt(len(d)), abs_drift=np.abs(d).mean(),
                         fluctuation_meV=fl.mean(), fluctuation_sem=fl.std(ddof=1) / np.sqrt(len(fl))))
    return rows


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--binary", default=os.path.join(HERE, "..", "build", "distilmd"))
    ap.add_argument("--platform", default="cuda")
    ap.add_argument("--model", default="427k")
    ap.add_argument("--molecules", default="benzene,aspirin")
    ap.add_argument("--copies", type=int, default=16)
    ap.add_argument("--ps", type=float, default=50.0, help="simulated time per run")
    ap.add_argument("--timesteps", default="0.5,0.25")
    ap.add_argument("--sample-fs", type=float, default=10.0)
    ap.add_argument("--seed", type=int, default=11)
    ap.add_argument("--json")
    args = ap.parse_args()
    shared = os.path.abspath(os.environ.get("DISTILMD_SHARED", os.path.join(HERE, "..", "..", "shared")))
    molecules = args.molecules.split(",")
    results = []
    print(f"NVE, model {args.model}, platform {args.platform}, {args.ps} ps per run, "
          f"{args.copies} copies per molecule (300 K Maxwell-Boltzmann start)")
    print(f"{'dt (fs)':>8} {'molecule':10} {'atoms':>5} {'drift (eV/ns/atom)':>24} "
          f"{'mean |drift|':>13} {'fluctuation (meV)':>20}")
    with tempfile.TemporaryDirectory() as tmp:
        for dt in [float(x) for x in args.timesteps.split(",")]:
            t_ps, E, natoms = run(args, shared, tmp, dt)
            for row in analyse(t_ps, E, natoms, args.copies, molecules):
                row["dt_fs"] = dt
                results.append(row)
                print(f"{dt:8.3f} {row['molecule']:10} {row['atoms']:5d} "
                      f"{row['drift_eV_per_ns_atom']:+14.5f} +- {row['drift_sem']:.5f} "
                      f"{row['abs_drift']:13.5f} {row['fluctuation_meV']:12.3f} +- {row['fluctuation_sem']:.3f}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=1)


if __name__ == "__main__":
    main()
