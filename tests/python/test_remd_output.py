#!/usr/bin/python3
"""End to end: the output of a replica-exchange run and `distilmd demux`.

A YAML configuration (docs/config.md) runs temperature replica exchange of
water with the 21k student model on the reference platform: a geometric
ladder of 4 rungs from 300 to 600 K, 2 independent groups (8 replicas),
Langevin dynamics, an exchange attempt every 5 steps, 60 steps, a frame every
5 steps (so every frame after the first follows exactly one attempt) with
positions and velocities. Then:

  per frame   /observables/replica_state: within each group every row is a
              permutation of the rungs 0..3, frame 0 is the start (replica
              first+k in rung k), and from one frame to the next only
              neighbouring rungs of the attempt's parity swap (attempt a
              tries the pairs (k, k+1) with k = a mod 2);
              /observables/thermostat_temperature = ladder[first + rung].
  statistics  /parameters/replica_exchange: the ladder is 300 K * 2^(k/3);
              group_first, group_size; attempts of pair k = the number of
              attempts a = 1..12 with a = k (mod 2); and, recounted from the
              replica_state series alone, accepts (swaps between frames),
              occupancy (frames after an attempt spent in each rung; rows sum
              to 12), round trips (lowest -> highest -> lowest rung);
              acceptance = accepts / attempts, NaN without attempts.
  MDAnalysis  reads the run's file (replica_state and thermostat_temperature
              in ts.data).
  demux       `distilmd demux` writes PREFIX_g{G}_T{T:.2f}K.h5 for every group
              and rung; frame f of each is the input's frame f of the replica
              that held that rung: positions, energies and temperature equal
              (exactly), velocities and times equal within two roundings
              (the writer's unit conversion back and forth: |d| <= (2u + u^2)|x|,
              u = 2^-53), species and masses the group's, source_replica the
              replica, thermostat_temperature the rung's; MDAnalysis reads each
              file. A trajectory without replica exchange, a replica_state row
              that is not a permutation and a missing group_size are refused
              with messages naming the file and the dataset.
  restart     30 steps with a checkpoint, then --restart to 60: the
              replica_state series, every position and the final
              /parameters/replica_exchange equal the straight 60-step run's.

Environment (CTest sets the first two): DISTILMD_BINARY, the built distilmd;
DISTILMD_SOURCE_DIR; DISTILMD_SHARED, the shared data (default
$DISTILMD_SOURCE_DIR/../shared). Prints "N passed, M failed" last; exits 1 on
failure, 77 ("skipped: ...") without the shared data, h5py or MDAnalysis.
"""
import glob
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
for path in (MODEL, WATER):
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

STEPS, INTERVAL, EXCHANGE_INTERVAL, TIMESTEP_FS = 60, 5, 5, 0.5
T_MIN, T_MAX, RUNGS, GROUPS = 300.0, 600.0, 4, 2
N_REPLICAS = RUNGS * GROUPS
N_FRAMES = STEPS // INTERVAL + 1
N_ATTEMPTS = STEPS // EXCHANGE_INTERVAL  # attempts a = 1 .. 12, at steps 5 a
U = 2.0 ** -53  # unit roundoff of float64
TWO_ROUNDINGS = 2 * U + U * U

CONFIG = f"""# written by tests/python/test_remd_output.py
model: ${{DISTILMD_SHARED}}/models/student_21k.onnx
platform: reference
seed: 4242
steps: {STEPS}

systems:
  - structure: ${{DISTILMD_SHARED}}/molecules/water.xyz
    ladder: {{min: {T_MIN}, max: {T_MAX}, count: {RUNGS}}}
    groups: {GROUPS}

integrator:
  type: langevin
  timestep: {TIMESTEP_FS}
  friction: 1.0

replica_exchange:
  interval: {EXCHANGE_INTERVAL}

velocities:
  temperature: 300

output:
  file: traj.h5
  interval: {INTERVAL}
  fields: [position, velocity]

checkpoint:
  file: run.chk
  interval: 1000
"""

EXCHANGE = "parameters/replica_exchange"
EXCHANGE_DATASETS = ["ladder", "group_first", "group_size", "attempts", "accepts",
                     "acceptance", "round_trips", "occupancy"]

_tally = Tally()
results, check, run_group = _tally.results, _tally.check, _tally.run_group


def run_distilmd(workdir, *args):
    env = dict(os.environ, DISTILMD_SHARED=SHARED)
    return subprocess.run([BINARY, *args], cwd=workdir, env=env, capture_output=True, text=True,
                          timeout=600)


def simulate(workdir, label, *extra_args):
    """`distilmd run` in workdir (the config written there); the trajectory path or None."""
    config = os.path.join(workdir, "run.yaml")
    if not os.path.isfile(config):
        with open(config, "w") as f:
            f.write(CONFIG)
    run = run_distilmd(workdir, "run", config, "--quiet", *extra_args)
    check(f"{label}: distilmd run exits 0", run.returncode == 0, run.stderr.strip())
    path = os.path.join(workdir, "traj.h5")
    return path if run.returncode == 0 and os.path.isfile(path) else None


def groups():
    """(first replica, size) of every exchange group, from the configuration."""
    return [(g * RUNGS, RUNGS) for g in range(GROUPS)]


# ---------------------------------------------------------------------------
# The run's file.

class Run:
    """What h5py reads from a replica-exchange trajectory."""

    def __init__(self, path):
        with h5py.File(path, "r") as f:
            self.steps = f["particles/replica_0000/position/step"][()]
            self.time = f["particles/replica_0000/position/time"][()]
            self.state = f["observables/replica_state/value"][()]
            self.thermostat = f["observables/thermostat_temperature/value"][()]
            self.observables = {name: f[f"observables/{name}/value"][()] for name in
                                ("potential_energy", "kinetic_energy", "temperature")}
            self.position = [f[f"particles/replica_{r:04d}/position/value"][()]
                             for r in range(N_REPLICAS)]
            self.velocity = [f[f"particles/replica_{r:04d}/velocity/value"][()]
                             for r in range(N_REPLICAS)]
            self.species = [f[f"particles/replica_{r:04d}/species"][()] for r in range(N_REPLICAS)]
            self.mass = [f[f"particles/replica_{r:04d}/mass"][()] for r in range(N_REPLICAS)]
            self.exchange = {name: f[f"{EXCHANGE}/{name}"][()] for name in EXCHANGE_DATASETS}


def check_structure(path):
    with h5py.File(path, "r") as f:
        shared_step = f["particles/replica_0000/position/step"]
        for name, kind, unit in (("replica_state", "i", None),
                                 ("thermostat_temperature", "f", "K")):
            e = f[f"observables/{name}"]
            check(f"{name} shape", e["value"].shape == (N_FRAMES, N_REPLICAS),
                  str(e["value"].shape))
            check(f"{name} dtype", e["value"].dtype.kind == kind and e["value"].dtype.itemsize == 8,
                  str(e["value"].dtype))
            check(f"{name} unit", e["value"].attrs.get("unit") == unit,
                  repr(e["value"].attrs.get("unit")))
            check(f"{name} shares step and time", e["step"] == shared_step and
                  e["time"] == f["particles/replica_0000/position/time"])
        check("no time-independent data in /observables",
              all(isinstance(f[f"observables/{k}"], h5py.Group) and "value" in f[f"observables/{k}"]
                  for k in f["observables"]), str(list(f["observables"])))
        check("/parameters/replica_exchange datasets",
              sorted(f[EXCHANGE]) == sorted(EXCHANGE_DATASETS), str(list(f[EXCHANGE])))
        check("ladder unit K", f[f"{EXCHANGE}/ladder"].attrs.get("unit") == "K")
        for name in EXCHANGE_DATASETS:
            want = (N_REPLICAS, RUNGS) if name == "occupancy" else (
                (GROUPS,) if name.startswith("group_") else (N_REPLICAS,))
            check(f"{name} shape", f[f"{EXCHANGE}/{name}"].shape == want,
                  str(f[f"{EXCHANGE}/{name}"].shape))
            kind = "f" if name in ("ladder", "acceptance") else "i"
            check(f"{name} dtype", f[f"{EXCHANGE}/{name}"].dtype.kind == kind)


def check_states(t):
    check("frames at steps 0, 5, ..., 60",
          np.array_equal(t.steps, np.arange(0, STEPS + 1, INTERVAL)), str(t.steps))
    ladder = t.exchange["ladder"]
    for first, size in groups():
        for k in range(size):
            want = T_MIN * (T_MAX / T_MIN) ** (k / (size - 1))
            check(f"ladder[{first + k}] = 300 K * 2^({k}/3)",
                  abs(ladder[first + k] - want) <= 1e-12 * want,
                  f"{ladder[first + k]!r} vs {want!r}")
    check("group_first", list(t.exchange["group_first"]) == [f for f, _ in groups()])
    check("group_size", list(t.exchange["group_size"]) == [s for _, s in groups()])
    moved = 0
    for first, size in groups():
        block = t.state[:, first:first + size]
        check(f"group at {first}: frame 0 is the start (replica first + k in rung k)",
              list(block[0]) == list(range(size)), str(block[0]))
        for i in range(N_FRAMES):
            check(f"group at {first} frame {i}: rungs are a permutation of 0..{size - 1}",
                  sorted(block[i]) == list(range(size)), str(block[i]))
        for i in range(1, N_FRAMES):
            a = int(t.steps[i]) // EXCHANGE_INTERVAL  # the attempt just before frame i
            for r in range(size):
                old, new = int(block[i - 1, r]), int(block[i, r])
                pair = min(old, new)
                check(f"frame {i} replica {first + r}: moves at most to the neighbouring rung of "
                      f"a pair of attempt {a}'s parity",
                      old == new or (abs(new - old) == 1 and pair % 2 == a % 2),
                      f"rung {old} -> {new}")
                moved += old != new
        for i in range(N_FRAMES):
            for r in range(first, first + size):
                want = ladder[first + t.state[i, r]]
                check(f"frame {i} replica {r}: thermostat_temperature = ladder[rung]",
                      t.thermostat[i, r] == want, f"{t.thermostat[i, r]!r} vs {want!r}")
    check("some swaps were accepted", moved > 0)


def recount_statistics(t):
    """attempts, accepts, occupancy, round_trips from the state series alone."""
    attempts = np.zeros(N_REPLICAS, dtype=np.int64)
    accepts = np.zeros(N_REPLICAS, dtype=np.int64)
    occupancy = np.zeros((N_REPLICAS, RUNGS), dtype=np.int64)
    trips = np.zeros(N_REPLICAS, dtype=np.int64)
    for first, size in groups():
        for k in range(size - 1):
            attempts[first + k] = sum(1 for a in range(1, N_ATTEMPTS + 1) if a % 2 == k % 2)
        last_end = [0] * size
        for i in range(1, N_FRAMES):
            before, after = t.state[i - 1, first:first + size], t.state[i, first:first + size]
            for r in range(size):
                if after[r] == before[r] + 1:  # this replica went up: pair (before, before + 1)
                    accepts[first + before[r]] += 1
                occupancy[first + r, after[r]] += 1
                if after[r] == 0:
                    trips[first + r] += last_end[r] == 1
                    last_end[r] = -1
                elif after[r] == size - 1 and last_end[r] == -1:
                    last_end[r] = 1
    return attempts, accepts, occupancy, trips


def check_statistics(t):
    x = t.exchange
    attempts, accepts, occupancy, trips = recount_statistics(t)
    check("attempts of pair (k, k+1) = attempts with a = k (mod 2)",
          np.array_equal(x["attempts"], attempts), f"{x['attempts']} vs {attempts}")
    check("0 <= accepts <= attempts", np.all(x["accepts"] >= 0) and
          np.all(x["accepts"] <= x["attempts"]), f"{x['accepts']} / {x['attempts']}")
    check("accepts = swaps seen between frames", np.array_equal(x["accepts"], accepts),
          f"{x['accepts']} vs {accepts}")
    with np.errstate(invalid="ignore", divide="ignore"):
        acceptance = np.where(attempts > 0, accepts / np.maximum(attempts, 1), np.nan)
    check("acceptance = accepts / attempts, NaN without attempts",
          np.array_equal(x["acceptance"], acceptance, equal_nan=True),
          f"{x['acceptance']} vs {acceptance}")
    check("occupancy rows sum to the number of attempts",
          np.all(x["occupancy"].sum(axis=1) == N_ATTEMPTS), str(x["occupancy"].sum(axis=1)))
    check("occupancy = frames after an attempt spent in each rung",
          np.array_equal(x["occupancy"], occupancy), f"{x['occupancy']} vs {occupancy}")
    check("round trips = lowest -> highest -> lowest in the state series",
          np.array_equal(x["round_trips"], trips), f"{x['round_trips']} vs {trips}")
    print(f"acceptance {x['acceptance']}, round trips {x['round_trips']}")


def check_mdanalysis_run(path, t):
    u = mda.Universe.empty(len(t.species[0]), trajectory=False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        u.load_new(path, format="H5MD")
    check("MDAnalysis: run frames", u.trajectory.n_frames == N_FRAMES, str(u.trajectory.n_frames))
    for ts in u.trajectory:
        i = ts.frame
        check(f"MDAnalysis run frame {i}: replica_state",
              np.array_equal(ts.data.get("replica_state"), t.state[i]))
        check(f"MDAnalysis run frame {i}: thermostat_temperature",
              np.array_equal(ts.data.get("thermostat_temperature"), t.thermostat[i]))
        check(f"MDAnalysis run frame {i}: positions",
              np.array_equal(ts.positions, t.position[0][i].astype(np.float32)))
    u.trajectory.close()


# ---------------------------------------------------------------------------
# demux

def within_two_roundings(a, b):
    a, b = np.asarray(a), np.asarray(b)
    return a.shape == b.shape and bool(np.all(np.abs(a - b) <= TWO_ROUNDINGS * np.abs(b)))


def check_demux_file(path, t, g, k):
    first, size = groups()[g]
    holders = []
    for i in range(N_FRAMES):
        holder = [r for r in range(first, first + size) if t.state[i, r] == k]
        holders.append(holder[0] if len(holder) == 1 else -1)
    label = os.path.basename(path)
    with h5py.File(path, "r") as f:
        check(f"{label}: one particles group", list(f["particles"]) == ["replica_0000"],
              str(list(f["particles"])))
        p = f["particles/replica_0000"]
        check(f"{label}: species", np.array_equal(p["species"][()], t.species[first]))
        check(f"{label}: masses", np.array_equal(p["mass"][()], t.mass[first]))
        check(f"{label}: steps", np.array_equal(p["position/step"][()], t.steps))
        check(f"{label}: times", within_two_roundings(p["position/time"][()], t.time))
        position, velocity = p["position/value"][()], p["velocity/value"][()]
        check(f"{label}: frames", position.shape[0] == N_FRAMES, str(position.shape))
        source = f["observables/source_replica/value"][()]
        thermostat = f["observables/thermostat_temperature/value"][()]
        obs = {name: f[f"observables/{name}/value"][()] for name in t.observables}
        total = f["observables/total_energy/value"][()]
        for i, r in enumerate(holders):
            check(f"{label} frame {i}: one replica holds the rung", r >= 0)
            if r < 0 or i >= position.shape[0]:
                continue
            check(f"{label} frame {i}: positions are replica {r}'s",
                  np.array_equal(position[i], t.position[r][i]))
            check(f"{label} frame {i}: velocities are replica {r}'s (two roundings)",
                  within_two_roundings(velocity[i], t.velocity[r][i]))
            check(f"{label} frame {i}: source_replica", source[i, 0] == r, str(source[i]))
            check(f"{label} frame {i}: thermostat_temperature = ladder",
                  thermostat[i, 0] == t.exchange["ladder"][first + k] == t.thermostat[i, r])
            for name, values in obs.items():
                check(f"{label} frame {i}: {name} is replica {r}'s",
                      values[i, 0] == t.observables[name][i, r])
            check(f"{label} frame {i}: total = potential + kinetic",
                  total[i, 0] == obs["potential_energy"][i, 0] + obs["kinetic_energy"][i, 0])
    u = mda.Universe.empty(len(t.species[first]), trajectory=False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        u.load_new(path, format="H5MD")
    check(f"MDAnalysis {label}: frames", u.trajectory.n_frames == N_FRAMES)
    for ts in u.trajectory:
        i, r = ts.frame, holders[ts.frame]
        check(f"MDAnalysis {label} frame {i}: positions",
              np.array_equal(ts.positions, t.position[r][i].astype(np.float32)))
        check(f"MDAnalysis {label} frame {i}: source_replica",
              np.array_equal(ts.data.get("source_replica"), [r]))
    u.trajectory.close()


def check_demux(path, t, workdir):
    run = run_distilmd(workdir, "demux", path)
    check("distilmd demux exits 0", run.returncode == 0, run.stderr.strip())
    expected = {}
    for g, (first, size) in enumerate(groups()):
        for k in range(size):
            name = f"traj_g{g}_T{t.exchange['ladder'][first + k]:.2f}K.h5"
            expected[name] = (g, k)
    found = sorted(os.path.basename(p) for p in glob.glob(os.path.join(workdir, "traj_g*.h5")))
    check("demux file names", found == sorted(expected), f"{found} vs {sorted(expected)}")
    check("demux names are PREFIX_g0_T300.00K.h5 ...", "traj_g0_T300.00K.h5" in found and
          "traj_g1_T600.00K.h5" in found, str(found))
    for name, (g, k) in sorted(expected.items()):
        if name in found:
            run_group(f"demux {name}", check_demux_file, os.path.join(workdir, name), t, g, k)

    prefix = os.path.join(workdir, "other", "rung")
    os.makedirs(os.path.dirname(prefix))
    run = run_distilmd(workdir, "demux", path, "--output-prefix", prefix)
    check("demux --output-prefix exits 0", run.returncode == 0, run.stderr.strip())
    check("demux --output-prefix names", len(glob.glob(prefix + "_g*_T*K.h5")) == len(expected))

    plain = os.path.join(workdir, "traj_g0_T300.00K.h5")
    run = run_distilmd(workdir, "demux", plain)
    check("demux of a trajectory without replica exchange fails",
          run.returncode == 1 and "not a replica-exchange trajectory" in run.stderr
          and plain in run.stderr, run.stderr.strip())
    broken = os.path.join(workdir, "broken.h5")
    shutil.copy(path, broken)
    with h5py.File(broken, "r+") as f:
        f["observables/replica_state/value"][3, 0] = f["observables/replica_state/value"][3, 1]
    run = run_distilmd(workdir, "demux", broken)
    check("demux of a replica_state that is not a permutation fails, naming file, dataset, frame",
          run.returncode == 1 and broken in run.stderr and
          "/observables/replica_state/value: at frame 3" in run.stderr, run.stderr.strip())
    shutil.copy(path, broken)
    with h5py.File(broken, "r+") as f:
        del f[f"{EXCHANGE}/group_size"]
    run = run_distilmd(workdir, "demux", broken)
    check("demux without group_size fails, naming file and dataset",
          run.returncode == 1 and broken in run.stderr and
          f"/{EXCHANGE}/group_size is missing" in run.stderr, run.stderr.strip())
    run = run_distilmd(workdir, "demux", "--help")
    check("demux --help", run.returncode == 0 and "--output-prefix" in run.stdout)


# ---------------------------------------------------------------------------
# restart

def check_restart(straight, workdir):
    first = simulate(workdir, "first 30 steps", "--steps", str(STEPS // 2))
    if first is None:
        return
    restarted = simulate(workdir, "restart to 60 steps", "--restart",
                         os.path.join(workdir, "run.chk"))
    if restarted is None:
        return
    t = Run(restarted)
    check("restart: steps", np.array_equal(t.steps, straight.steps), str(t.steps))
    check("restart: replica_state series equals the straight run's",
          np.array_equal(t.state, straight.state))
    check("restart: thermostat_temperature equals the straight run's",
          np.array_equal(t.thermostat, straight.thermostat))
    for r in range(N_REPLICAS):
        check(f"restart: replica {r} positions equal the straight run's",
              np.array_equal(t.position[r], straight.position[r]))
    for name in EXCHANGE_DATASETS:
        check(f"restart: /{EXCHANGE}/{name} equals the straight run's",
              np.array_equal(t.exchange[name], straight.exchange[name], equal_nan=True),
              f"{t.exchange[name]} vs {straight.exchange[name]}")


# ---------------------------------------------------------------------------

def main():
    if not os.access(BINARY, os.X_OK):
        check("DISTILMD_BINARY is an executable", False, BINARY)
        return
    workdir = tempfile.mkdtemp(prefix="distilmd_remd_output_")
    try:
        straight_dir = os.path.join(workdir, "straight")
        restart_dir = os.path.join(workdir, "restart")
        os.makedirs(straight_dir)
        os.makedirs(restart_dir)
        path = simulate(straight_dir, "straight 60 steps")
        if path is None:
            return
        run_group("structure", check_structure, path)
        t = run_group("read", Run, path)
        if t is None:
            return
        run_group("states", check_states, t)
        run_group("statistics", check_statistics, t)
        run_group("MDAnalysis", check_mdanalysis_run, path, t)
        run_group("demux", check_demux, path, t, straight_dir)
        run_group("restart", check_restart, t, restart_dir)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
    print(f"{results['passed']} passed, {results['failed']} failed")
    sys.exit(1 if results["failed"] or not results["passed"] else 0)
