#!/usr/bin/python3
"""End to end: λ-window sweeps run from YAML (docs/config.md, "Free-energy
sweeps") on the reference platform, and their H5MD output.

harmonic  interpolate between two harmonic restraints of water (3 atoms) to
          its own structure x0, k_A = 1 and k_B = 4 eV/Å², 10 windows
          {count: 10}, Hamiltonian exchange every 5 steps, a flat-bottom
          restraint (k = 2 eV/Å², radius 0.3 Å) about the initial centroid,
          Langevin at 300 K, 80 steps, a frame every 5 steps. With
          S = Σ|x - x0|² and W = Σ_i k/2 (|x_i - c| - R)² over |x_i - c| > R
          (c the centroid of water.xyz), all computed here from the positions
          in the file:
            dU_dlambda          = (k_B - k_A)/2 S
            potential_energy    = k_A/2 S + W + λ_window (k_B - k_A)/2 S
            reduced_potential   [t, r, l] = (k_A/2 S + W + λ_l (k_B - k_A)/2 S) / (k_B T)
          and reduced_potential[t, r, window[t, r]] = potential_energy / (k_B T);
          window is a permutation in every frame, starts as the identity, moves
          only between the neighbouring windows of the attempt's parity, and
          equals replica_state; shapes, types, units, shared step/time;
          /parameters/lambda/{lambdas, temperature}; /parameters/replica_exchange
          gains `lambda`. `distilmd demux` writes traj_g0_lambda{λ:.4f}.h5 per
          window, frame f holding the replica in that window. Restart: 40 steps, then --restart to 80 gives the same
          observables and parameters as 80 straight. MDAnalysis reads the file.
decouple  one water out of water_cluster_3 (solute [0, 1, 2]), 21k model,
          windows [0, 0.5, 1], no exchange, 20 steps: window is the identity,
          and dU_dlambda = U(all) - U(solute) - U(rest) and potential_energy =
          U(solute) + U(rest) + λ dU_dlambda, with the three energies from the
          independent PyTorch model (python/distilmd_torch.py) at the positions
          in the file, within 1e-6 eV.

Environment (CTest sets the first two): DISTILMD_BINARY, DISTILMD_SOURCE_DIR;
DISTILMD_SHARED (default $DISTILMD_SOURCE_DIR/../shared). Prints "N passed,
M failed" last; exits 1 on failure, 77 ("skipped: ...") without the shared
data or h5py. The decouple part needs torch (python3-torch) and is reported
as skipped (not failed) without it.
"""
import os
import shutil
import subprocess
import sys
import tempfile
import traceback
import warnings

from checks import Tally, locations, skip


BINARY, SOURCE, SHARED = locations()
MODEL = os.path.join(SHARED, "models", "student_21k.onnx")
WATER = os.path.join(SHARED, "molecules", "water.xyz")
CLUSTER = os.path.join(SHARED, "molecules", "water_cluster_3.xyz")
for path in (MODEL, WATER, CLUSTER):
    if not os.path.isfile(path):
        skip(f"shared data missing: {path} (set DISTILMD_SHARED)")
try:
    import numpy as np
    import h5py
except ImportError:
    skip("h5py is not installed (apt-get install python3-h5py)")

sys.path.insert(0, os.path.join(SOURCE, "python"))
import distilmd_torch as D  # noqa: E402  (the XYZ reader works without torch)

KB = 8.617333262e-5  # eV/K, as src/integrators/units.h
T = 300.0
K_A, K_B = 1.0, 4.0
WALL_K, WALL_R = 2.0, 0.3
WINDOWS, STEPS, INTERVAL, EXCHANGE_INTERVAL = 10, 80, 5, 5
N_FRAMES = STEPS // INTERVAL + 1
REL = 1e-12

HARMONIC = f"""# written by tests/python/test_fe_sweep.py
platform: reference
seed: 99
steps: {STEPS}
systems:
  - structure: ${{DISTILMD_SHARED}}/molecules/water.xyz
integrator:
  type: langevin
  timestep: 1.0
  friction: 10
  temperature: {T}
velocities:
  temperature: {T}
alchemical:
  mode: interpolate
  a:
    harmonic:
      k: {K_A}
      structure: ${{DISTILMD_SHARED}}/molecules/water.xyz
  b:
    harmonic:
      k: {K_B}
      structure: ${{DISTILMD_SHARED}}/molecules/water.xyz
  lambdas: {{count: {WINDOWS}}}
  exchange_interval: {EXCHANGE_INTERVAL}
restraint:
  k: {WALL_K}
  radius: {WALL_R}
output:
  file: traj.h5
  interval: {INTERVAL}
checkpoint:
  file: run.chk
  interval: 1000
"""

DECOUPLE_LAMBDAS = [0.0, 0.5, 1.0]
DECOUPLE = f"""# written by tests/python/test_fe_sweep.py
model: ${{DISTILMD_SHARED}}/models/student_21k.onnx
platform: reference
seed: 5
steps: 20
systems:
  - structure: ${{DISTILMD_SHARED}}/molecules/water_cluster_3.xyz
integrator: {{type: langevin, timestep: 0.5, friction: 1, temperature: {T}}}
velocities: {{temperature: {T}}}
alchemical:
  mode: decouple
  solute: [0, 1, 2]
  lambdas: {DECOUPLE_LAMBDAS}
output: {{file: traj.h5, interval: 5}}
"""

OBSERVABLES = ["window", "dU_dlambda", "reduced_potential", "potential_energy",
               "kinetic_energy", "total_energy", "temperature", "replica_state",
               "thermostat_temperature"]

_tally = Tally()
results, check, run_group = _tally.results, _tally.check, _tally.run_group


def close(a, b, rel=REL):
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    return a.shape == b.shape and bool(np.all(np.abs(a - b) <= rel * np.maximum(np.abs(a), np.abs(b)) + 1e-14))


def simulate(workdir, config, label, *extra):
    path = os.path.join(workdir, "run.yaml")
    if not os.path.isfile(path):
        with open(path, "w") as f:
            f.write(config)
    env = dict(os.environ, DISTILMD_SHARED=SHARED)
    run = subprocess.run([BINARY, "run", path, "--quiet", *extra], cwd=workdir, env=env,
                         capture_output=True, text=True, timeout=600)
    check(f"{label}: distilmd run exits 0", run.returncode == 0, run.stderr.strip())
    out = os.path.join(workdir, "traj.h5")
    return out if run.returncode == 0 and os.path.isfile(out) else None


def read(path, replicas):
    with h5py.File(path, "r") as f:
        d = {name: f[f"observables/{name}/value"][()] for name in OBSERVABLES
             if f"observables/{name}" in f}
        d["steps"] = f["particles/replica_0000/position/step"][()]
        d["position"] = np.stack([f[f"particles/replica_{r:04d}/position/value"][()]
                                  for r in range(replicas)], axis=1)  # [F, R, N, 3]
        d["parameters"] = {f"{g}/{k}": f[f"parameters/{g}/{k}"][()]
                           for g in f["parameters"] for k in f[f"parameters/{g}"]}
    return d


# ---------------------------------------------------------------------------
# harmonic A -> B

def check_structure(path):
    with h5py.File(path, "r") as f:
        step = f["particles/replica_0000/position/step"]
        for name, shape, kind, unit in (("window", (N_FRAMES, WINDOWS), "i", None),
                                        ("dU_dlambda", (N_FRAMES, WINDOWS), "f", "eV"),
                                        ("reduced_potential", (N_FRAMES, WINDOWS, WINDOWS), "f",
                                         None)):
            v = f[f"observables/{name}/value"]
            check(f"{name} shape", v.shape == shape, str(v.shape))
            check(f"{name} dtype", v.dtype.kind == kind and v.dtype.itemsize == 8, str(v.dtype))
            check(f"{name} unit", v.attrs.get("unit") == unit, repr(v.attrs.get("unit")))
            check(f"{name} shares step and time", f[f"observables/{name}/step"] == step and
                  f[f"observables/{name}/time"] == f["particles/replica_0000/position/time"])
        lam = f["parameters/lambda/lambdas"]
        check("/parameters/lambda/lambdas = k/(K-1)",
              np.array_equal(lam[()], np.arange(WINDOWS) / (WINDOWS - 1)), str(lam[()]))
        check("/parameters/lambda/temperature", np.array_equal(
            f["parameters/lambda/temperature"][()], np.full(WINDOWS, T)))
        check("/parameters/lambda/temperature unit",
              f["parameters/lambda/temperature"].attrs.get("unit") == "K")
        check("/parameters/replica_exchange/lambda = the windows' λ",
              np.array_equal(f["parameters/replica_exchange/lambda"][()], lam[()]))
        check("/parameters/replica_exchange/ladder = T",
              np.array_equal(f["parameters/replica_exchange/ladder"][()], np.full(WINDOWS, T)))


def harmonic_energies(position, lambdas):
    """U_0, ΔU, the wall energy and every atom's distance from the centre,
    from positions [F, R, N, 3]."""
    x0 = np.array(D.read_extxyz(WATER)[0]["positions"], dtype=np.float64)
    S = np.sum((position - x0) ** 2, axis=(2, 3))
    c = x0.mean(axis=0)
    d = np.linalg.norm(position - c, axis=3)
    W = np.sum(np.where(d > WALL_R, 0.5 * WALL_K * (d - WALL_R) ** 2, 0.0), axis=2)
    return 0.5 * K_A * S + W, 0.5 * (K_B - K_A) * S, W, d


def check_harmonic(t):
    lambdas = np.arange(WINDOWS) / (WINDOWS - 1)
    check("frames at steps 0, 5, ..., 80",
          np.array_equal(t["steps"], np.arange(0, STEPS + 1, INTERVAL)), str(t["steps"]))
    w = t["window"]
    check("frame 0: replica r in window r", np.array_equal(w[0], np.arange(WINDOWS)), str(w[0]))
    check("window is a permutation in every frame",
          all(sorted(row) == list(range(WINDOWS)) for row in w))
    check("window equals replica_state", np.array_equal(w, t["replica_state"]))
    for i in range(1, N_FRAMES):
        a = int(t["steps"][i]) // EXCHANGE_INTERVAL
        for r in range(WINDOWS):
            old, new = int(w[i - 1, r]), int(w[i, r])
            check(f"frame {i} replica {r}: moves at most to a neighbouring window of a pair of "
                  f"attempt {a}'s parity",
                  old == new or (abs(new - old) == 1 and min(old, new) % 2 == a % 2),
                  f"{old} -> {new}")
    check("some windows were exchanged", np.any(w != w[0]))
    u0, du, wall, d = harmonic_energies(t["position"], lambdas)
    check("the wall acts on some atoms and not on others (the check has teeth)",
          np.all(wall > 0) and np.any(d < WALL_R) and np.any(d > WALL_R))
    check("dU_dlambda = (k_B - k_A)/2 S", close(t["dU_dlambda"], du),
          f"max diff {np.max(np.abs(t['dU_dlambda'] - du)):.3e}")
    epot = u0 + lambdas[w] * du
    check("potential_energy = k_A/2 S + W + λ_window (k_B - k_A)/2 S",
          close(t["potential_energy"], epot),
          f"max diff {np.max(np.abs(t['potential_energy'] - epot)):.3e}")
    red = (u0[:, :, None] + lambdas[None, None, :] * du[:, :, None]) / (KB * T)
    check("reduced_potential[t, r, l] = (U_0 + λ_l ΔU) / kT", close(t["reduced_potential"], red),
          f"max diff {np.max(np.abs(t['reduced_potential'] - red)):.3e}")
    own = np.take_along_axis(t["reduced_potential"], w[:, :, None], axis=2)[:, :, 0]
    check("reduced_potential[t, r, window[t, r]] = potential_energy / kT",
          close(own, t["potential_energy"] / (KB * T), 1e-14))
    check("thermostat_temperature = T", np.all(t["thermostat_temperature"] == T))


def check_mdanalysis(path):
    try:
        import MDAnalysis as mda
    except ImportError:
        results["skipped"] += 1
        print("note: MDAnalysis not installed; its reading of the sweep file not checked")
        return
    u = mda.Universe.empty(3, trajectory=False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        u.load_new(path, format="H5MD")
    check("MDAnalysis: frames", u.trajectory.n_frames == N_FRAMES)
    with h5py.File(path, "r") as f:
        red = f["observables/reduced_potential/value"][()]
    for ts in u.trajectory:
        check(f"MDAnalysis frame {ts.frame}: reduced_potential row",
              np.array_equal(ts.data.get("reduced_potential"), red[ts.frame]))
    u.trajectory.close()


def check_demux(path, t, workdir):
    env = dict(os.environ, DISTILMD_SHARED=SHARED)
    run = subprocess.run([BINARY, "demux", path], cwd=workdir, env=env, capture_output=True,
                         text=True, timeout=600)
    check("demux exits 0", run.returncode == 0, run.stderr.strip())
    lambdas = np.arange(WINDOWS) / (WINDOWS - 1)
    for l in range(WINDOWS):
        out = os.path.join(os.path.dirname(path), f"traj_g0_lambda{lambdas[l]:.4f}.h5")
        check(f"demux writes {os.path.basename(out)}", os.path.isfile(out))
        if not os.path.isfile(out):
            continue
        with h5py.File(out, "r") as f:
            x = f["particles/replica_0000/position/value"][()]
            source = f["observables/source_replica/value"][()][:, 0]
        holder = np.argmax(t["window"] == l, axis=1)
        check(f"demux window {l}: source_replica is the replica in the window",
              np.array_equal(source, holder), f"{source} vs {holder}")
        check(f"demux window {l}: positions are that replica's",
              np.array_equal(x, t["position"][np.arange(N_FRAMES), holder]))


def check_restart(straight, workdir):
    if simulate(workdir, HARMONIC, "first 40 steps", "--steps", str(STEPS // 2)) is None:
        return
    path = simulate(workdir, HARMONIC, "restart to 80", "--restart",
                    os.path.join(workdir, "run.chk"))
    if path is None:
        return
    t = read(path, WINDOWS)
    for name in OBSERVABLES + ["steps", "position"]:
        check(f"restart: {name} equals the straight run's", np.array_equal(t[name], straight[name]))
    for name, value in straight["parameters"].items():
        check(f"restart: /parameters/{name} equals the straight run's",
              np.array_equal(t["parameters"].get(name), value, equal_nan=True))


# ---------------------------------------------------------------------------
# decouple

def check_decouple(workdir):
    try:
        import torch
    except ImportError:
        results["skipped"] += 1
        print("note: torch not installed; the decouple energies are not checked")
        return
    path = simulate(workdir, DECOUPLE, "decouple")
    if path is None:
        return
    K = len(DECOUPLE_LAMBDAS)
    t = read(path, K)
    check("decouple: window is the identity (no exchange)",
          np.array_equal(t["window"], np.tile(np.arange(K), (t["window"].shape[0], 1))))
    check("decouple: no replica_state without exchange", "replica_state" not in t)
    species = np.array(D.read_extxyz(CLUSTER)[0]["species"])
    model = D.StudentModel.from_onnx(MODEL, dtype=torch.float64)
    solute, rest = [0, 1, 2], list(range(3, len(species)))
    frames = []
    for x in t["position"].reshape(-1, len(species), 3):
        frames += [{"species": species, "positions": x},
                   {"species": species[solute], "positions": x[solute]},
                   {"species": species[rest], "positions": x[rest]}]
    e, _ = D.energy_and_forces(model, *D.batch_tensors(frames), len(frames))
    e = e.numpy().reshape(t["window"].shape + (3,))
    du = e[..., 0] - e[..., 1] - e[..., 2]
    epot = e[..., 1] + e[..., 2] + np.array(DECOUPLE_LAMBDAS)[None, :] * du
    check("decouple: dU_dlambda = U(all) - U(solute) - U(rest) (torch, 1e-6 eV)",
          np.max(np.abs(t["dU_dlambda"] - du)) < 1e-6,
          f"max diff {np.max(np.abs(t['dU_dlambda'] - du)):.3e}")
    check("decouple: potential_energy = U(solute) + U(rest) + λ ΔU (torch, 1e-6 eV)",
          np.max(np.abs(t["potential_energy"] - epot)) < 1e-6,
          f"max diff {np.max(np.abs(t['potential_energy'] - epot)):.3e}")
    check("decouple: the waters interact (ΔU is not 0)", np.min(np.abs(du)) > 1e-3)


def main():
    if not os.access(BINARY, os.X_OK):
        check("DISTILMD_BINARY is an executable", False, BINARY)
        return
    workdir = tempfile.mkdtemp(prefix="distilmd_fe_sweep_")
    try:
        dirs = {k: os.path.join(workdir, k) for k in ("straight", "restart", "decouple")}
        for d in dirs.values():
            os.makedirs(d)
        path = simulate(dirs["straight"], HARMONIC, "harmonic sweep, 80 steps")
        if path is not None:
            run_group("structure", check_structure, path)
            t = run_group("read", read, path, WINDOWS)
            if t is not None:
                run_group("harmonic", check_harmonic, t)
                run_group("MDAnalysis", check_mdanalysis, path)
                run_group("demux", check_demux, path, t, dirs["straight"])
                run_group("restart", check_restart, t, dirs["restart"])
        run_group("decouple", check_decouple, dirs["decouple"])
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
    print(f"{results['passed']} passed, {results['failed']} failed")
    sys.exit(1 if results["failed"] or not results["passed"] else 0)
