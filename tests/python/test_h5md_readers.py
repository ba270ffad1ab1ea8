#!/usr/bin/python3
"""H5MD files written by the engine (src/io/h5md.c), read by other programs.

The fixture program (tests/unit/h5md_fixture.c, path in $DISTILMD_H5MD_FIXTURE)
writes two trajectories through a simulated restart (create, 5 frames, close,
reopen with h5md_open_append at frame 3's step, 2 new frames) and the numbers it
gave the writer, in the engine's units, to expected.json. This script checks:

  h5py        the H5MD 1.1 structure and metadata, attribute types (fixed-length
              strings for H5MD metadata, variable-length for units), units,
              dtypes, shapes, chunking, and every value exactly: positions,
              energies, temperatures as given; velocity [A/ps] = velocity
              [A/fs] * 1000; force [kJ/(mol A)] = force [eV/A] * e N_A / 1000
              (SI values of e and N_A); time [ps] = time [fs] / 1000;
              total_energy = potential + kinetic; observables as flat series
              with one column per replica; one step and one time dataset in
              the file, hard-linked into every element; the dropped frame is
              gone.
  MDAnalysis  reading the files as they are (no unit registration, no patched
              reader), with convert_units True and False: positions,
              velocities and forces of every frame (stored by MDAnalysis as
              float32, so compared with the float32-rounded expected values,
              exactly), times, steps, and every replica's energies and
              temperature from ts.data. MDAnalysis reads the first particles
              group only: every other replica is read through a small view
              file whose only particles group is an external link to it.

Prints a final line "N passed, M failed"; exits 1 on failure, 77 ("skipped: ...")
when h5py, MDAnalysis or the fixture program are missing.
"""
import json
import os
import shutil
import subprocess
import sys
import tempfile
import traceback

from checks import Tally, skip
import warnings




FIXTURE = os.environ.get("DISTILMD_H5MD_FIXTURE", "")
if not FIXTURE or not os.access(FIXTURE, os.X_OK):
    skip("the fixture program is missing (set DISTILMD_H5MD_FIXTURE to the built "
         "h5md_fixture; CTest does)")
try:
    import numpy as np
    import h5py
except ImportError:
    skip("h5py is not installed (apt-get install python3-h5py)")
try:
    import MDAnalysis as mda
except ImportError:
    skip("MDAnalysis is not installed (apt-get install python3-mdanalysis)")

SERIES_UNITS = {"position": "Angstrom", "velocity": "Angstrom ps-1",
                "force": "kJ mol-1 Angstrom-1"}
OBSERVABLE_UNITS = {"potential_energy": "eV", "kinetic_energy": "eV", "total_energy": "eV",
                    "temperature": "K"}
SHARED = "particles/replica_0000/position"  # owner of the one step and time dataset

# 1 eV in kJ/mol: e N_A / 1000 with the exact SI (CODATA 2018) values
EV_IN_KJ_PER_MOL = 1.602176634e-19 * 6.02214076e23 / 1000.0

_tally = Tally()
results, check, run_group = _tally.results, _tally.check, _tally.run_group


# ---------------------------------------------------------------------------
# Expected values, from what the fixture gave the writer.

class Expected:
    def __init__(self, path):
        with open(path) as f:
            data = json.load(f)
        self.author = data["author"]
        self.n_atoms = data["n_atoms"]
        self.species = np.array(data["species"])
        self.masses = np.array(data["masses"], dtype=np.float64)
        frames = data["frames"]
        self.steps = np.array([f["step"] for f in frames], dtype=np.int64)
        self.time_ps = np.array([f["time_fs"] for f in frames]) / 1000.0
        n_total = sum(self.n_atoms)

        def per_atom(key):
            return np.array([f[key] for f in frames], dtype=np.float64).reshape(-1, n_total, 3)

        self.positions = per_atom("positions")
        self.velocities_per_ps = per_atom("velocities") * 1000.0
        self.forces_kj = per_atom("forces") * EV_IN_KJ_PER_MOL
        # [frame][replica]
        pe = np.array([f["potential_energy"] for f in frames])
        ke = np.array([f["kinetic_energy"] for f in frames])
        self.observables = {"potential_energy": pe, "kinetic_energy": ke,
                            "total_energy": pe + ke,
                            "temperature": np.array([f["temperature"] for f in frames])}
        self.first_atom = np.concatenate([[0], np.cumsum(self.n_atoms)[:-1]])

    def atoms(self, array, replica):
        start = self.first_atom[replica]
        return array[:, start:start + self.n_atoms[replica], :]


def exactly_equal(a, b):
    a, b = np.asarray(a), np.asarray(b)
    return a.shape == b.shape and np.array_equal(a, b)


def first_difference(a, b):
    a, b = np.asarray(a), np.asarray(b)
    if a.shape != b.shape:
        return f"shape {a.shape} vs {b.shape}"
    index = np.argwhere(a != b)
    if len(index) == 0:
        return ""
    i = tuple(index[0])
    return f"{len(index)} values differ, first at {i}: {a[i]!r} vs {b[i]!r}"


# ---------------------------------------------------------------------------
# h5py

def fixed_string(value):
    """A fixed-length string attribute reads as numpy bytes in h5py."""
    return isinstance(value, (bytes, np.bytes_))


def check_unit(name, obj, unit):
    value = obj.attrs.get("unit")
    check(f"{name} unit is a variable-length string", isinstance(value, str), repr(value))
    check(f"{name} unit", value == unit, f"{value!r} != {unit!r}")


def check_time_series(f, group_path, expected_value, unit, expected):
    group = f[group_path]
    n_frames = len(expected.steps)
    step, time, value = group["step"], group["time"], group["value"]
    check(f"{group_path}/step dtype", step.dtype == np.int64, str(step.dtype))
    check(f"{group_path}/time dtype", time.dtype == np.float64, str(time.dtype))
    check(f"{group_path}/value dtype", value.dtype == np.float64, str(value.dtype))
    for d in (step, time, value):
        check(f"{d.name} extendable along frames", d.maxshape[0] is None, str(d.maxshape))
        check(f"{d.name} chunked along frames", d.chunks is not None and
              d.chunks[1:] == d.shape[1:], str(d.chunks))
    # one step and one time dataset per file: the same HDF5 object everywhere
    check(f"{group_path}/step is {SHARED}/step", step == f[f"{SHARED}/step"])
    check(f"{group_path}/time is {SHARED}/time", time == f[f"{SHARED}/time"])
    check(f"{group_path}/value shape", value.shape == expected_value.shape,
          f"{value.shape} != {expected_value.shape}")
    check(f"{group_path}/step values", exactly_equal(step[()], expected.steps),
          first_difference(step[()], expected.steps))
    check(f"{group_path}/time values [ps]", exactly_equal(time[()], expected.time_ps),
          first_difference(time[()], expected.time_ps))
    check(f"{group_path}/value values", exactly_equal(value[()], expected_value),
          first_difference(value[()], expected_value))
    check(f"{group_path} frame count", len(step) == n_frames and len(time) == n_frames)
    check_unit(f"{group_path}/time", time, "ps")
    check_unit(f"{group_path}/value", value, unit)


def count_datasets(f):
    """Datasets of the file, each counted once however many links lead to it
    (h5py's visititems visits an object once)."""
    found = []
    f.visititems(lambda name, obj: found.append(name) if isinstance(obj, h5py.Dataset) else None)
    return len(found)


def check_with_h5py(path, expected, with_force):
    with h5py.File(path, "r") as f:
        h5md = f["h5md"]
        version = h5md.attrs["version"]
        check("h5md version", list(version) == [1, 1] and version.dtype.kind == "i",
              repr(version))
        author = h5md["author"].attrs["name"]
        check("author name is a fixed-length string", fixed_string(author), repr(author))
        check("author name", author == expected.author.encode(), repr(author))
        creator = h5md["creator"].attrs
        check("creator name", fixed_string(creator["name"]) and creator["name"] == b"distilmd",
              repr(creator["name"]))
        check("creator version", fixed_string(creator["version"]) and len(creator["version"]) > 0,
              repr(creator.get("version")))

        n_replicas = len(expected.n_atoms)
        check("replica groups", sorted(f["particles"].keys()) ==
              [f"replica_{r:04d}" for r in range(n_replicas)], str(list(f["particles"].keys())))
        check("observables: flat, one element per observable",
              sorted(f["observables"].keys()) == sorted(OBSERVABLE_UNITS),
              str(list(f["observables"].keys())))

        per_replica = 3 if with_force else 2
        n_elements = n_replicas * per_replica + len(OBSERVABLE_UNITS)
        for name in ("step", "time"):
            links = h5py.h5o.get_info(f[f"{SHARED}/{name}"].id).rc
            check(f"{SHARED}/{name} hard-linked into every element", links == n_elements,
                  f"{links} links, {n_elements} elements")
        # species and mass per replica, one value per element, one step, one time
        datasets = count_datasets(f)
        check("datasets in the file", datasets == 2 * n_replicas + n_elements + 2,
              f"{datasets} != {2 * n_replicas + n_elements + 2}")

        for r in range(n_replicas):
            particles = f[f"particles/replica_{r:04d}"]
            box = particles["box"].attrs
            check(f"replica {r} box dimension", int(box["dimension"]) == 3, repr(box["dimension"]))
            boundary = box["boundary"]
            check(f"replica {r} box boundary", boundary.dtype.kind == "S" and
                  list(boundary) == [b"none"] * 3, repr(boundary))
            start, n = expected.first_atom[r], expected.n_atoms[r]
            check(f"replica {r} species", exactly_equal(particles["species"][()],
                                                        expected.species[start:start + n]))
            check(f"replica {r} mass", exactly_equal(particles["mass"][()],
                                                     expected.masses[start:start + n]))
            check_unit(f"replica {r} mass", particles["mass"], "amu")
            check(f"replica {r} has force group", ("force" in particles) == with_force)

            values = {"position": expected.positions, "velocity": expected.velocities_per_ps,
                      "force": expected.forces_kj}
            for name, unit in SERIES_UNITS.items():
                if name == "force" and not with_force:
                    continue
                check_time_series(f, f"particles/replica_{r:04d}/{name}",
                                  expected.atoms(values[name], r), unit, expected)
        for name, unit in OBSERVABLE_UNITS.items():
            check_time_series(f, f"observables/{name}", expected.observables[name], unit,
                              expected)


# ---------------------------------------------------------------------------
# MDAnalysis

def replica_view(path, replica, view_path):
    """A small H5MD file through which MDAnalysis (which reads the first
    particles group only) reads replica `replica` of `path`: a copy of /h5md
    and external links to the replica's particles group and to /observables."""
    path = os.path.abspath(path)
    group = f"/particles/replica_{replica:04d}"
    with h5py.File(path, "r") as source, h5py.File(view_path, "w") as view:
        source.copy("h5md", view)
        view[group] = h5py.ExternalLink(path, group)
        view["observables"] = h5py.ExternalLink(path, "/observables")
    return view_path


def load(path, n_atoms, convert_units):
    u = mda.Universe.empty(n_atoms, trajectory=False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "no dt information": time comes from the file
        u.load_new(path, format="H5MD", convert_units=convert_units)
    return u


def check_with_mdanalysis(path, replica, expected, with_force, convert_units):
    label = (f"MDAnalysis {os.path.basename(path)} replica {replica} "
             f"convert_units={convert_units}")
    u = load(path, expected.n_atoms[replica], convert_units)
    trajectory = u.trajectory
    check(f"{label}: frame count", trajectory.n_frames == len(expected.steps),
          f"{trajectory.n_frames} != {len(expected.steps)}")
    check(f"{label}: has velocities", trajectory.has_velocities)
    check(f"{label}: has forces", trajectory.has_forces == with_force)
    units = trajectory.units
    check(f"{label}: units", units["length"] == "Angstrom" and units["time"] == "ps" and
          units["velocity"] == "Angstrom/ps" and
          units["force"] == ("kJ/(mol*Angstrom)" if with_force else None), repr(units))

    # MDAnalysis's own units are those of the file: converting changes nothing
    positions = expected.atoms(expected.positions, replica).astype(np.float32)
    velocities = expected.atoms(expected.velocities_per_ps, replica).astype(np.float32)
    forces = expected.atoms(expected.forces_kj, replica).astype(np.float32)
    for ts in trajectory:
        i = ts.frame
        check(f"{label}: frame {i} positions", exactly_equal(ts.positions, positions[i]),
              first_difference(ts.positions, positions[i]))
        check(f"{label}: frame {i} velocities", exactly_equal(ts.velocities, velocities[i]),
              first_difference(ts.velocities, velocities[i]))
        if with_force:
            check(f"{label}: frame {i} forces [kJ/(mol A)]", exactly_equal(ts.forces, forces[i]),
                  first_difference(ts.forces, forces[i]))
        check(f"{label}: frame {i} time [ps]", ts.time == expected.time_ps[i],
              f"{ts.time!r} != {expected.time_ps[i]!r}")
        check(f"{label}: frame {i} step", ts.data.get("step") == expected.steps[i],
              repr(ts.data.get("step")))
        for name in OBSERVABLE_UNITS:
            row = ts.data.get(name)
            check(f"{label}: frame {i} {name} of every replica",
                  row is not None and exactly_equal(row, expected.observables[name][i]),
                  repr(row))
    trajectory.close()


# ---------------------------------------------------------------------------

def main():
    workdir = tempfile.mkdtemp(prefix="distilmd_h5md_readers_")
    try:
        run = subprocess.run([FIXTURE, workdir], capture_output=True, text=True)
        check("fixture runs", run.returncode == 0, run.stderr.strip())
        if run.returncode != 0:
            return
        expected = Expected(os.path.join(workdir, "expected.json"))
        with_forces = os.path.join(workdir, "traj.h5md")
        without_forces = os.path.join(workdir, "traj_nf.h5md")
        run_group("h5py, with forces", check_with_h5py, with_forces, expected, True)
        run_group("h5py, without forces", check_with_h5py, without_forces, expected, False)
        print(f"MDAnalysis {mda.__version__}, h5py {h5py.__version__}")
        for path, with_force in ((with_forces, True), (without_forces, False)):
            for convert_units in (True, False):
                run_group(f"MDAnalysis {path} convert_units={convert_units}",
                          check_with_mdanalysis, path, 0, expected, with_force, convert_units)
            for replica in range(len(expected.n_atoms)):
                view = os.path.join(workdir, f"view_{replica}_{os.path.basename(path)}")
                run_group(f"MDAnalysis {path} replica {replica} through a view",
                          lambda: check_with_mdanalysis(replica_view(path, replica, view),
                                                        replica, expected, with_force, True))
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
    print(f"{results['passed']} passed, {results['failed']} failed")
    sys.exit(1 if results["failed"] or not results["passed"] else 0)
