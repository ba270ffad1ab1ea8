"""Cross-check of the C engine against the independent PyTorch model on random
geometries (not the golden ones): shared molecules perturbed by 0.1 Å Gaussian
noise, random H/C/N/O clusters and an atom without neighbours, for each of the three models, float64.

Runs  $DISTILMD_BINARY eval --model MODEL --platform P --output OUT.extxyz IN.xyz
which must write one extended-XYZ frame per input frame, in input order, with
energy= in the comment line and Properties=species:S:1:pos:R:3:forces:R:3.
Inputs: one multi-frame extended XYZ file and one multi-frame plain XYZ file.
  platform reference (float64): energy within 1e-6 eV, forces within 1e-6 eV/Å;
  platform cuda (float32), only where torch sees a GPU: within 1e-4 eV and
  1e-4 eV/Å, the float32 accuracy student-model.md states.

Prints "N passed, M failed"; exit 0, 1 on any failure, 77 (skipped) without
the binary, torch or the shared data."""

import os
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(REPO, "python"))

SKIP = 77
# platform -> (energy tolerance eV, force tolerance eV/Å)
TOLERANCES = {"reference": (1e-6, 1e-6), "cuda": (1e-4, 1e-4)}
MODELS = ("427k", "77k", "21k")
SEED = 20240611
N_PERTURBED = 12
NOISE = 0.1         # Å, Gaussian, per coordinate
CLUSTERS = (6, 9, 13)  # atoms per random cluster
BOX = 4.0           # Å
MIN_DISTANCE = 0.8  # Å
TIMEOUT = 600       # s per engine run


def skip(why):
    print("skipped: %s" % why)
    sys.exit(SKIP)


def shared_dir():
    env = os.environ.get("DISTILMD_SHARED")
    if env:
        return env
    src = os.environ.get("DISTILMD_SOURCE_DIR")
    return os.path.join(src if src else REPO, "..", "shared")


BINARY = os.environ.get("DISTILMD_BINARY", "")
if not BINARY:
    skip("DISTILMD_BINARY is not set (CTest sets it to the built distilmd)")
if not (os.path.isfile(BINARY) and os.access(BINARY, os.X_OK)):
    skip("DISTILMD_BINARY=%s is not an executable file" % BINARY)

try:
    import numpy as np
    import torch
except ImportError as exc:
    skip("torch/numpy not importable by %s (%s)" % (sys.executable, exc))

import distilmd_torch as D  # noqa: E402

SHARED = shared_dir()
if not os.path.isdir(os.path.join(SHARED, "models")) or \
        not os.path.isdir(os.path.join(SHARED, "molecules")):
    skip("shared data not found at %s (set DISTILMD_SHARED to the shared/ folder)" % SHARED)

results = {"passed": 0, "failed": 0}


def report(ok, what):
    results["passed" if ok else "failed"] += 1
    print("%s %s" % ("ok  " if ok else "FAIL", what))


# --------------------------------------------------------------------------
# Random geometries

def perturbed_molecules(rng):
    """N_PERTURBED shared molecules (a seeded choice) with Gaussian noise."""
    folder = os.path.join(SHARED, "molecules")
    names = sorted(f for f in os.listdir(folder) if f.endswith(".xyz"))
    chosen = rng.choice(len(names), size=min(N_PERTURBED, len(names)), replace=False)
    frames = []
    for k in sorted(chosen):
        fr = D.read_extxyz(os.path.join(folder, names[k]))[0]
        x = fr["positions"] + rng.normal(0.0, NOISE, size=fr["positions"].shape)
        frames.append({"species": fr["species"], "positions": x,
                       "name": names[k][:-4] + "_noisy"})
    return frames


def random_cluster(rng, n_atoms, tag):
    """n_atoms of H/C/N/O uniform in a BOX^3 cube, pairwise >= MIN_DISTANCE
    (rejection sampling, atom by atom)."""
    x = []
    while len(x) < n_atoms:
        p = rng.uniform(0.0, BOX, size=3)
        if all(np.linalg.norm(p - q) >= MIN_DISTANCE for q in x):
            x.append(p)
    species = rng.choice([1, 6, 7, 8], size=n_atoms)
    return {"species": species, "positions": np.array(x), "name": "cluster_%s" % tag}


def with_isolated_atom(rng):
    """A perturbed water plus an N atom 7 Å away: an atom without edges, whose
    vector features stay exactly 0 (the |v| = 0 derivative must be taken as 0)."""
    x = np.array([[0.0, 0.0, 0.1193], [0.0, 0.7632, -0.4770], [0.0, -0.7632, -0.4770],
                  [7.0, 0.0, 0.0]]) + rng.normal(0.0, NOISE, size=(4, 3))
    return {"species": np.array([8, 1, 1, 7]), "positions": x, "name": "isolated_atom"}


def write_plain_xyz(path, frames):
    """Plain XYZ: count, free comment, "symbol x y z" lines."""
    with open(path, "w") as f:
        for fr in frames:
            f.write("%d\n%s\n" % (len(fr["species"]), fr["name"]))
            for z, p in zip(fr["species"], fr["positions"]):
                f.write("%-2s %20.12f %20.12f %20.12f\n" % (D.ELEMENTS[int(z)], p[0], p[1], p[2]))


# --------------------------------------------------------------------------

def run_engine(model_path, platform, inp, out):
    cmd = [BINARY, "eval", "--model", model_path, "--platform", platform, "--output", out, inp]
    try:
        proc = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                              timeout=TIMEOUT, universal_newlines=True)
    except subprocess.TimeoutExpired:
        return False, "timed out after %d s: %s" % (TIMEOUT, " ".join(cmd))
    if proc.returncode != 0:
        return False, "exit %d: %s\n%s" % (proc.returncode, " ".join(cmd), proc.stdout[-4000:])
    return True, ""


def compare_file(name, model, model_path, platform, inp, workdir):
    """Engine on `inp` vs float64 torch on the same (as written) geometries."""
    energy_tol, force_tol = TOLERANCES[platform]
    label = "%s %s %s" % (name, platform, os.path.basename(inp))
    out = os.path.join(workdir, "%s_%s_%s.out.extxyz" % (name, platform, os.path.basename(inp)))
    ok, why = run_engine(model_path, platform, inp, out)
    report(ok, "%s: engine runs%s" % (label, "" if ok else "\n    " + why))
    if not ok:
        return
    expected = D.read_extxyz(inp)  # the geometries exactly as the engine read them
    try:
        got = D.read_extxyz(out)
    except Exception as exc:  # a malformed output file is a failure, not a crash
        report(False, "%s: output %s is not readable extended XYZ: %s" % (label, out, exc))
        return
    ok = len(got) == len(expected)
    report(ok, "%s: %d output frames for %d inputs" % (label, len(got), len(expected)))
    if not ok:
        return
    for k, (want, have) in enumerate(zip(expected, got)):
        what = "%s frame %d (%d atoms)" % (label, k, len(want["species"]))
        if list(have["species"]) != list(want["species"]) or \
                np.max(np.abs(have["positions"] - want["positions"])) > 1e-6:
            report(False, "%s: species/positions differ from the input (frame order?)" % what)
            continue
        if have["energy"] is None or have["forces"] is None:
            report(False, "%s: no energy= or no forces column" % what)
            continue
        species, positions, mol_index = D.batch_tensors([want])
        e, f = D.energy_and_forces(model, species, positions, mol_index, 1)
        de = abs(have["energy"] - float(e[0]))
        df = float(np.max(np.abs(have["forces"] - f.numpy())))
        report(de <= energy_tol and df <= force_tol,
               "%s: |dE| %.2e eV, max |dF| %.2e eV/A (engine E %.9f, torch E %.9f)"
               % (what, de, df, have["energy"], float(e[0])))


def main():
    platforms = ["reference"]
    if torch.cuda.is_available():
        platforms.append("cuda")
    else:
        print("note: no GPU visible to torch; the cuda platform is not checked")
    rng = np.random.default_rng(SEED)
    frames = perturbed_molecules(rng)
    clusters = [random_cluster(rng, n, k) for k, n in enumerate(CLUSTERS)]
    frames.append(with_isolated_atom(rng))
    with tempfile.TemporaryDirectory(prefix="distilmd_engine_vs_torch_") as tmp:
        ext_path = os.path.join(tmp, "random.extxyz")
        xyz_path = os.path.join(tmp, "clusters.xyz")
        D.write_extxyz(ext_path, frames + clusters[:1])
        write_plain_xyz(xyz_path, clusters[1:])
        for name in MODELS:
            model_path = os.path.join(SHARED, "models", "student_%s.onnx" % name)
            model = D.StudentModel.from_onnx(model_path, dtype=torch.float64)
            for platform in platforms:
                for inp in (ext_path, xyz_path):
                    compare_file(name, model, model_path, platform, inp, tmp)
    print("%d passed, %d failed" % (results["passed"], results["failed"]))
    return 1 if results["failed"] else 0


if __name__ == "__main__":
    sys.exit(main())
