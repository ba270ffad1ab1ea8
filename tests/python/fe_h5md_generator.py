#!/usr/bin/python3
"""Writes synthetic λ-window files in the layout `distilmd analyze` reads
(docs/free-energy.md), for tests before (and independently of) the
simulation: harmonic oscillators with a known free energy.

The windows interpolate linearly between U_A = k_A/2 |x|² and
U_B = k_B/2 |x|² in D dimensions:
    U_λ = (1 - λ) U_A + λ U_B = k_λ/2 |x|²,   k_λ = (1 - λ) k_A + λ k_B,
so a configuration of window λ at temperature T is x ~ Normal(0, k_B T / k_λ)
in each dimension, and
    u_l(x) = k_l |x|² / (2 k_B T_l),   dU/dλ = (k_B - k_A) |x|² / 2  (eV),
    ΔF(A -> B) = (D/2) k_B T ln(k_B / k_A)   (one temperature).

Samples are exact: independent, or an AR(1) chain per replica (phi > 0: the
statistical inefficiency of |x|² is then about (1 + phi²)/(1 - phi²), as |x|²
is quadratic in the Gaussian x). Replica r starts in window r mod K; with
`exchange`, after each frame a random set of neighbouring windows swap their
replicas (a replica's chain continues in its new window by rescaling x to the
new spring constant, which keeps it an exact sample there).

Usage as a program:
  fe_h5md_generator.py OUT.h5 [--windows K] [--frames F] [--replicas R]
      [--dims D] [--ka KA] [--kb KB] [--temperature T] [--phi PHI]
      [--exchange] [--seed S]
"""
import argparse
import math

import numpy as np

BOLTZMANN_EV_PER_K = 8.617333262e-5


def harmonic_samples(lambdas, temperatures, n_frames, n_replicas, dims=3, k_a=1.0, k_b=2.0,
                     phi=0.0, exchange=False, seed=1):
    """The datasets of a harmonic λ-window run, as a dict of numpy arrays:
    window [F, R] int64, reduced_potential [F, R, K], du_dlambda [F, R] (eV),
    plus lambdas, temperatures, time [F] (ps), step [F]."""
    rng = np.random.default_rng(seed)
    lambdas = np.asarray(lambdas, dtype=np.float64)
    temperatures = np.asarray(temperatures, dtype=np.float64)
    K = lambdas.size
    k_l = (1.0 - lambdas) * k_a + lambdas * k_b          # [K] spring constants
    kt = BOLTZMANN_EV_PER_K * temperatures              # [K] eV
    window = np.zeros((n_frames, n_replicas), dtype=np.int64)
    u = np.zeros((n_frames, n_replicas, K))
    dudl = np.zeros((n_frames, n_replicas))
    state = np.arange(n_replicas) % K
    z = rng.standard_normal((n_replicas, dims))         # unit-variance AR(1) state
    for t in range(n_frames):
        if t > 0:
            z = phi * z + math.sqrt(1.0 - phi * phi) * rng.standard_normal((n_replicas, dims))
        x = z * np.sqrt(kt[state] / k_l[state])[:, None]
        r2 = np.sum(x * x, axis=1)
        window[t] = state
        u[t] = 0.5 * r2[:, None] * k_l[None, :] / kt[None, :]
        dudl[t] = 0.5 * (k_b - k_a) * r2
        if exchange:
            for k in range(rng.integers(0, 2), K - 1, 2):
                if rng.random() < 0.5:
                    a = np.flatnonzero(state == k)
                    b = np.flatnonzero(state == k + 1)
                    state[a], state[b] = k + 1, k
    return {
        "lambdas": lambdas, "temperatures": temperatures, "window": window,
        "reduced_potential": u, "du_dlambda": dudl,
        "time": 0.01 * np.arange(n_frames), "step": 10 * np.arange(n_frames, dtype=np.int64),
    }


def write_file(path, data, with_step=True):
    """Writes `data` (as harmonic_samples returns) in the H5MD layout."""
    import h5py
    with h5py.File(path, "w") as f:
        h5md = f.create_group("h5md")
        h5md.attrs["version"] = np.array([1, 1], dtype=np.int32)
        h5md.create_group("author").attrs["name"] = "fe_h5md_generator"
        creator = h5md.create_group("creator")
        creator.attrs["name"] = "fe_h5md_generator.py"
        creator.attrs["version"] = "1"
        lam = f.create_group("parameters/lambda")
        lam.create_dataset("lambdas", data=data["lambdas"])
        lam.create_dataset("temperature", data=data["temperatures"]).attrs["unit"] = "K"
        obs = f.create_group("observables")
        series = {"window": data["window"], "reduced_potential": data["reduced_potential"],
                  "dU_dlambda": data["du_dlambda"]}
        first = None
        for name, value in series.items():
            g = obs.create_group(name)
            d = g.create_dataset("value", data=value)
            if name == "dU_dlambda":
                d.attrs["unit"] = "eV"
            if with_step:
                if first is None:
                    g.create_dataset("step", data=data["step"])
                    g.create_dataset("time", data=data["time"]).attrs["unit"] = "ps"
                    first = g
                else:
                    g["step"] = first["step"]
                    g["time"] = first["time"]


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("output")
    p.add_argument("--windows", type=int, default=11)
    p.add_argument("--frames", type=int, default=1000)
    p.add_argument("--replicas", type=int, default=0, help="default: one per window")
    p.add_argument("--dims", type=int, default=3)
    p.add_argument("--ka", type=float, default=1.0)
    p.add_argument("--kb", type=float, default=2.0)
    p.add_argument("--temperature", type=float, default=300.0)
    p.add_argument("--phi", type=float, default=0.0)
    p.add_argument("--exchange", action="store_true")
    p.add_argument("--seed", type=int, default=1)
    a = p.parse_args()
    K = a.windows
    data = harmonic_samples(np.linspace(0.0, 1.0, K), np.full(K, a.temperature), a.frames,
                            a.replicas or K, a.dims, a.ka, a.kb, a.phi, a.exchange, a.seed)
    write_file(a.output, data)
    kt = BOLTZMANN_EV_PER_K * a.temperature
    print(f"{a.output}: exact ΔF = {0.5 * a.dims * math.log(a.kb / a.ka):.6f} kT "
          f"= {0.5 * a.dims * math.log(a.kb / a.ka) * 0.0019872043 * a.temperature:.6f} kcal/mol "
          f"(kT = {kt:.6g} eV)")


if __name__ == "__main__":
    main()
