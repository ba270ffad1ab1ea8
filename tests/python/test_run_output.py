#!/usr/bin/python3
"""End to end: `distilmd run CONFIG` writes an H5MD trajectory that h5py and
MDAnalysis read, and whose energies and forces are the model's.

A YAML configuration (docs/config.md) runs 20 steps of Langevin dynamics at
300 K on the reference platform with the 21k student model: two copies of
water and one of ethanol (3 replicas), a frame every 5 steps with positions,
velocities and forces. Then:

  h5py        structure and units; 5 frames at steps 0, 5, ..., 20 and times
              step * 0.5 fs; species from the XYZ files; masses the standard
              atomic weights; frame 0 positions are the XYZ files'.
  MDAnalysis  every replica (replica_0000 directly, the others through a view
              file whose particles group is an external link): positions,
              velocities and forces equal h5py's (as float32), times, steps
              and energies.
  energies    the frames' positions of every replica go to an XYZ file that
              `distilmd eval --platform reference` evaluates: its energies
              equal the file's potential_energy within 1e-9 eV, its forces
              [eV/A] times e N_A / 1000 equal the file's forces [kJ/(mol A)]
              within 1e-6 (in eV/A); kinetic_energy equals 1/2 sum m v^2 from
              the file's masses and velocities within 1e-9 relative (CODATA
              2018 amu and e); total_energy = potential + kinetic; temperature
              = 2 E_kin / (3 N k_B) (Langevin without centre-of-mass removal
              keeps all 3N degrees of freedom).

Environment (CTest sets the first two): DISTILMD_BINARY, the built distilmd;
DISTILMD_SOURCE_DIR; DISTILMD_SHARED, the shared data (default
$DISTILMD_SOURCE_DIR/../shared). Prints "N passed, M failed" last; exits 1 on
failure, 77 ("skipped: ...") without the shared data, h5py or MDAnalysis.
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
SYSTEMS = [("water", 2), ("ethanol", 1)]  # structure, copies
for path in [MODEL] + [os.path.join(SHARED, "molecules", f"{s}.xyz") for s, _ in SYSTEMS]:
    if not os.path.isfile(path):
        skip(f"shared data missing: {path} (set DISTILMD_SHARED)")
try:
    import numpy as np
    import h5py
except ImportError:
    skip("h5py is not installed (apt-get install python3-h5py)")
try:
    import MDAnalysis as mda
except ImportError:
    skip("MDAnalysis is not installed (apt-get install python3-mdanalysis)")

STEPS, INTERVAL, TIMESTEP_FS = 20, 5, 0.5
FRAME_STEPS = np.arange(0, STEPS + 1, INTERVAL, dtype=np.int64)

# Exact SI (CODATA 2018) values and the CODATA 2018 atomic mass constant
ELEMENTARY_CHARGE = 1.602176634e-19  # C
AVOGADRO = 6.02214076e23  # 1/mol
BOLTZMANN_EV_PER_K = 1.380649e-23 / ELEMENTARY_CHARGE
AMU_KG = 1.66053906660e-27
EV_IN_KJ_PER_MOL = ELEMENTARY_CHARGE * AVOGADRO / 1000.0
# 1 amu (A/fs)^2 in eV
AMU_A2_PER_FS2_IN_EV = AMU_KG * 1e10 / ELEMENTARY_CHARGE

ATOMIC_NUMBER = {"H": 1, "C": 6, "N": 7, "O": 8, "F": 9, "S": 16, "Cl": 17}
SYMBOL = {z: s for s, z in ATOMIC_NUMBER.items()}
STANDARD_ATOMIC_WEIGHT = {1: 1.008, 6: 12.011, 7: 14.007, 8: 15.999, 9: 18.998, 16: 32.06,
                          17: 35.45}

UNITS = {"position": "Angstrom", "velocity": "Angstrom ps-1", "force": "kJ mol-1 Angstrom-1"}
OBSERVABLE_UNITS = {"potential_energy": "eV", "kinetic_energy": "eV", "total_energy": "eV",
                    "temperature": "K"}

_tally = Tally()
results, check, run_group = _tally.results, _tally.check, _tally.run_group


def largest_difference(a, b):
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if a.shape != b.shape:
        return float("inf")
    return float(np.max(np.abs(a - b))) if a.size else 0.0


# ---------------------------------------------------------------------------
# Input: the structures, read here (not by the engine).

def read_xyz_frames(path):
    """All frames of an XYZ / extended XYZ file: [(comment, symbols, columns)],
    columns a float array of every column after the symbol."""
    frames = []
    with open(path) as f:
        lines = f.read().splitlines()
    i = 0
    while i < len(lines) and lines[i].strip():
        n = int(lines[i])
        comment = lines[i + 1]
        rows = [line.split() for line in lines[i + 2:i + 2 + n]]
        frames.append((comment, [r[0] for r in rows],
                       np.array([[float(x) for x in r[1:]] for r in rows])))
        i += 2 + n
    return frames


def replicas_from_input():
    """[(species, positions)] per replica, in the run's replica order."""
    replicas = []
    for name, copies in SYSTEMS:
        _, symbols, columns = read_xyz_frames(os.path.join(SHARED, "molecules", f"{name}.xyz"))[0]
        species = np.array([ATOMIC_NUMBER[s] for s in symbols])
        replicas += [(species, columns[:, :3])] * copies
    return replicas


# ---------------------------------------------------------------------------
# The run.

CONFIG = f"""# written by tests/python/test_run_output.py
model: ${{DISTILMD_SHARED}}/models/student_21k.onnx
platform: reference
seed: 2718
steps: {STEPS}

systems:
  - structure: ${{DISTILMD_SHARED}}/molecules/water.xyz
    copies: 2
  - structure: ${{DISTILMD_SHARED}}/molecules/ethanol.xyz

integrator:
  type: langevin
  timestep: {TIMESTEP_FS}
  friction: 1.0
  temperature: 300

velocities:
  temperature: 300

output:
  file: traj.h5
  interval: {INTERVAL}
  fields: [position, velocity, force]
"""


def run_distilmd(workdir):
    config = os.path.join(workdir, "run.yaml")
    with open(config, "w") as f:
        f.write(CONFIG)
    env = dict(os.environ, DISTILMD_SHARED=SHARED)
    run = subprocess.run([BINARY, "run", config, "--quiet"], cwd=workdir, env=env,
                         capture_output=True, text=True, timeout=600)
    check("distilmd run exits 0", run.returncode == 0, run.stderr.strip())
    check("distilmd run reports 20 steps on the reference platform",
          f"{STEPS} steps on the reference platform" in run.stderr, run.stderr.strip())
    path = os.path.join(workdir, "traj.h5")
    check("trajectory written", os.path.isfile(path))
    return path if run.returncode == 0 and os.path.isfile(path) else None


# ---------------------------------------------------------------------------
# h5py: structure, units, values.

class Trajectory:
    """What h5py reads, per replica."""

    def __init__(self, f, n_replicas):
        self.n_replicas = n_replicas
        self.species, self.masses, self.position, self.velocity, self.force = [], [], [], [], []
        for r in range(n_replicas):
            g = f[f"particles/replica_{r:04d}"]
            self.species.append(g["species"][()])
            self.masses.append(g["mass"][()])
            self.position.append(g["position/value"][()])
            self.velocity.append(g["velocity/value"][()])
            self.force.append(g["force/value"][()])
        self.steps = f["particles/replica_0000/position/step"][()]
        self.time = f["particles/replica_0000/position/time"][()]
        self.observables = {name: f[f"observables/{name}/value"][()] for name in OBSERVABLE_UNITS}


def check_with_h5py(path, replicas):
    n_replicas = len(replicas)
    with h5py.File(path, "r") as f:
        check("h5md version 1.1", list(f["h5md"].attrs["version"]) == [1, 1])
        check("creator distilmd", f["h5md/creator"].attrs["name"] == b"distilmd")
        check("author present", len(f["h5md/author"].attrs["name"]) > 0)
        check("particles groups", sorted(f["particles"]) ==
              [f"replica_{r:04d}" for r in range(n_replicas)], str(list(f["particles"])))
        check("observables", sorted(f["observables"]) == sorted(OBSERVABLE_UNITS),
              str(list(f["observables"])))
        shared_step = f["particles/replica_0000/position/step"]
        for r, (species, _) in enumerate(replicas):
            g = f[f"particles/replica_{r:04d}"]
            n = len(species)
            check(f"replica {r} box", int(g["box"].attrs["dimension"]) == 3 and
                  list(g["box"].attrs["boundary"]) == [b"none"] * 3)
            check(f"replica {r} species", np.array_equal(g["species"][()], species),
                  f"{g['species'][()]} != {species}")
            mass = g["mass"][()]
            weights = np.array([STANDARD_ATOMIC_WEIGHT[z] for z in species])
            check(f"replica {r} masses are standard atomic weights",
                  mass.shape == (n,) and largest_difference(mass, weights) < 0.01, str(mass))
            check(f"replica {r} mass unit", g["mass"].attrs.get("unit") == "amu")
            for name, unit in UNITS.items():
                e = g[name]
                check(f"replica {r} {name} shape", e["value"].shape == (len(FRAME_STEPS), n, 3),
                      str(e["value"].shape))
                check(f"replica {r} {name} unit", e["value"].attrs.get("unit") == unit,
                      repr(e["value"].attrs.get("unit")))
                check(f"replica {r} {name} time unit", e["time"].attrs.get("unit") == "ps")
                check(f"replica {r} {name} shares step and time",
                      e["step"] == shared_step and
                      e["time"] == f["particles/replica_0000/position/time"])
        for name, unit in OBSERVABLE_UNITS.items():
            e = f[f"observables/{name}"]
            check(f"{name} shape", e["value"].shape == (len(FRAME_STEPS), n_replicas),
                  str(e["value"].shape))
            check(f"{name} unit", e["value"].attrs.get("unit") == unit,
                  repr(e["value"].attrs.get("unit")))
            check(f"{name} shares step", e["step"] == shared_step)
        t = Trajectory(f, n_replicas)
    check("steps 0, 5, ..., 20", np.array_equal(t.steps, FRAME_STEPS), str(t.steps))
    check("times [ps] = step * 0.5 fs / 1000",
          np.array_equal(t.time, FRAME_STEPS * TIMESTEP_FS / 1000.0), str(t.time))
    for r, (_, positions) in enumerate(replicas):
        check(f"replica {r} frame 0 positions are the structure's",
              np.array_equal(t.position[r][0], positions),
              f"largest difference {largest_difference(t.position[r][0], positions)}")
        moved = largest_difference(t.position[r][-1], t.position[r][0])
        check(f"replica {r} moved", moved > 1e-4, f"{moved}")
    return t


# ---------------------------------------------------------------------------
# MDAnalysis: every replica, compared with h5py.

def replica_view(path, replica, view_path):
    """A small H5MD file through which MDAnalysis (which reads the first
    particles group only) reads replica `replica` of `path`."""
    group = f"/particles/replica_{replica:04d}"
    with h5py.File(path, "r") as source, h5py.File(view_path, "w") as view:
        source.copy("h5md", view)
        view[group] = h5py.ExternalLink(os.path.abspath(path), group)
        view["observables"] = h5py.ExternalLink(os.path.abspath(path), "/observables")
    return view_path


def check_with_mdanalysis(path, t, workdir):
    print(f"MDAnalysis {mda.__version__}, h5py {h5py.__version__}")
    for r in range(t.n_replicas):
        source = path if r == 0 else replica_view(path, r, os.path.join(workdir, f"view{r}.h5"))
        u = mda.Universe.empty(len(t.species[r]), trajectory=False)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # "no dt information": times come from the file
            u.load_new(source, format="H5MD")
        trajectory = u.trajectory
        label = f"MDAnalysis replica {r}"
        check(f"{label}: frames", trajectory.n_frames == len(FRAME_STEPS), str(trajectory.n_frames))
        check(f"{label}: force unit", trajectory.units.get("force") == "kJ/(mol*Angstrom)",
              repr(trajectory.units))
        for ts in trajectory:
            i = ts.frame
            for what, ours, theirs in (("positions", t.position, ts.positions),
                                       ("velocities", t.velocity, ts.velocities),
                                       ("forces", t.force, ts.forces)):
                want = ours[r][i].astype(np.float32)
                check(f"{label} frame {i} {what}", np.array_equal(theirs, want),
                      f"largest difference {largest_difference(theirs, want)}")
            check(f"{label} frame {i} time", ts.time == t.time[i], f"{ts.time} != {t.time[i]}")
            check(f"{label} frame {i} step", ts.data.get("step") == t.steps[i])
            for name in OBSERVABLE_UNITS:
                check(f"{label} frame {i} {name}",
                      np.array_equal(ts.data.get(name), t.observables[name][i]))
        trajectory.close()


# ---------------------------------------------------------------------------
# Energies and forces against the engine's own model (`distilmd eval`).

def write_xyz(path, t):
    """Every frame of every replica, frame-major, positions with 17 digits."""
    with open(path, "w") as f:
        for i in range(len(t.steps)):
            for r in range(t.n_replicas):
                f.write(f"{len(t.species[r])}\nframe {i} replica {r}\n")
                for z, x in zip(t.species[r], t.position[r][i]):
                    f.write(f"{SYMBOL[int(z)]} {x[0]!r} {x[1]!r} {x[2]!r}\n")


def energy_of(comment):
    for token in comment.split():
        if token.startswith("energy="):
            return float(token[len("energy="):])
    raise ValueError(f"no energy= in '{comment}'")


def check_against_eval(t, workdir):
    positions = os.path.join(workdir, "frames.xyz")
    evaluated = os.path.join(workdir, "frames_eval.xyz")
    write_xyz(positions, t)
    run = subprocess.run([BINARY, "eval", "--model", MODEL, "--platform", "reference",
                          "--output", evaluated, positions], capture_output=True, text=True,
                         timeout=600)
    check("distilmd eval exits 0", run.returncode == 0, run.stderr.strip())
    if run.returncode != 0:
        return
    frames = read_xyz_frames(evaluated)
    check("eval frame count", len(frames) == len(t.steps) * t.n_replicas, str(len(frames)))
    worst_energy, worst_force = 0.0, 0.0
    for k, (comment, symbols, columns) in enumerate(frames):
        i, r = divmod(k, t.n_replicas)
        check(f"eval frame {k} atoms", [ATOMIC_NUMBER[s] for s in symbols] == list(t.species[r]))
        energy = energy_of(comment)
        file_energy = t.observables["potential_energy"][i, r]
        worst_energy = max(worst_energy, abs(energy - file_energy))
        check(f"frame {i} replica {r}: potential energy = eval's within 1e-9 eV",
              abs(energy - file_energy) <= 1e-9, f"{file_energy!r} vs {energy!r}")
        forces_ev = columns[:, 3:6]
        file_forces_ev = t.force[r][i] / EV_IN_KJ_PER_MOL
        d = largest_difference(file_forces_ev, forces_ev)
        worst_force = max(worst_force, d)
        check(f"frame {i} replica {r}: forces = eval's within 1e-6 eV/A", d <= 1e-6, f"{d}")
        # and the other way round: eval's forces in the file's unit
        d_kj = largest_difference(t.force[r][i], forces_ev * EV_IN_KJ_PER_MOL)
        check(f"frame {i} replica {r}: forces [kJ/(mol A)] = eval's x e N_A / 1000",
              d_kj <= 1e-6 * EV_IN_KJ_PER_MOL, f"{d_kj}")
    print(f"largest |E_file - E_eval| = {worst_energy:.3g} eV, "
          f"largest |F_file - F_eval| = {worst_force:.3g} eV/A")


def check_kinetic_and_total(t):
    for r in range(t.n_replicas):
        m = t.masses[r]
        for i in range(len(t.steps)):
            v_per_fs = t.velocity[r][i] / 1000.0  # file: A/ps
            kinetic = 0.5 * np.sum(m[:, None] * v_per_fs ** 2) * AMU_A2_PER_FS2_IN_EV
            file_kinetic = t.observables["kinetic_energy"][i, r]
            rel = abs(file_kinetic - kinetic) / kinetic
            check(f"frame {i} replica {r}: kinetic energy = 1/2 sum m v^2 within 1e-9",
                  rel <= 1e-9, f"{file_kinetic!r} vs {kinetic!r} (relative {rel:.3g})")
            pe = t.observables["potential_energy"][i, r]
            check(f"frame {i} replica {r}: total = potential + kinetic",
                  t.observables["total_energy"][i, r] == pe + file_kinetic)
            temperature = 2.0 * file_kinetic / (3 * len(m) * BOLTZMANN_EV_PER_K)
            file_temperature = t.observables["temperature"][i, r]
            check(f"frame {i} replica {r}: temperature = 2 E_kin / (3 N k_B)",
                  abs(file_temperature - temperature) <= 1e-9 * temperature,
                  f"{file_temperature!r} vs {temperature!r}")


# ---------------------------------------------------------------------------

def main():
    if not os.access(BINARY, os.X_OK):
        check("DISTILMD_BINARY is an executable", False, BINARY)
        return
    workdir = tempfile.mkdtemp(prefix="distilmd_run_output_")
    try:
        path = run_distilmd(workdir)
        if path is None:
            return
        replicas = replicas_from_input()
        t = run_group("h5py", check_with_h5py, path, replicas)
        if t is None:
            return
        run_group("MDAnalysis", check_with_mdanalysis, path, t, workdir)
        run_group("eval", check_against_eval, t, workdir)
        run_group("kinetic and total energy", check_kinetic_and_total, t)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
    print(f"{results['passed']} passed, {results['failed']} failed")
    sys.exit(1 if results["failed"] or not results["passed"] else 0)
