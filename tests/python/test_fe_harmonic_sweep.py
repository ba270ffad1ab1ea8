#!/usr/bin/env python3
"""A λ sweep with a known answer, end to end: `distilmd run` of the harmonic
interpolation example (configs/fe_harmonic.yaml: 3 atoms, k_A = 1 -> k_B = 4
eV/Å², 12 windows, Hamiltonian exchange) on the reference platform, then
`distilmd analyze`. Exact: ΔF = (3N/2) kT ln(k_B/k_A). BAR and MBAR must
agree with it within 3σ; TI within 3σ of the trapezoid rule applied to the
exact integrand <dU/dλ>_λ = (3N/2) kT (k_B - k_A)/k_λ, k_λ = (1-λ)k_A + λk_B
(its discretisation error is known, so it is not mistaken for noise); and σ
must shrink as 1/sqrt(run length): 4x the steps, half the σ (ratio 1.5-2.7).
Prints "N passed, M failed"; exits 77 ("skipped: ...") without the binary or
the shared data."""
import json
import math
import os
import subprocess
import sys
import tempfile

from checks import Tally, locations, skip

tally = Tally()


def check(ok, what):
    """Prints every passed check with its numbers; the tally prints failures."""
    if ok:
        print("ok   " + what)
    tally.check(what, ok)


binary, src, shared = locations()
if not os.path.isdir(os.path.join(shared, "molecules")):
    skip(f"shared data not found at {shared} (set DISTILMD_SHARED)")

N_ATOMS, KA, KB, WINDOWS = 3, 1.0, 4.0, 12
exact = 1.5 * N_ATOMS * math.log(KB / KA)  # kT


def exact_trapezoid():
    lam = [k / (WINDOWS - 1) for k in range(WINDOWS)]
    g = [1.5 * N_ATOMS * (KB - KA) / ((1 - l) * KA + l * KB) for l in lam]  # <dU/dλ>/kT
    return sum((lam[k + 1] - lam[k]) * (g[k] + g[k + 1]) / 2 for k in range(WINDOWS - 1))


def sweep(tmp, steps):
    with open(os.path.join(src, "configs", "fe_harmonic.yaml")) as f:
        text = f.read()
    out, chk = os.path.join(tmp, f"fe_{steps}.h5"), os.path.join(tmp, f"fe_{steps}.chk")
    text = text.replace("file: fe_harmonic.h5", f"file: {out}").replace("file: fe_harmonic.chk", f"file: {chk}")
    cfg = os.path.join(tmp, f"fe_{steps}.yaml")
    with open(cfg, "w") as f:
        f.write(text)
    env = dict(os.environ, DISTILMD_SHARED=shared)
    subprocess.run([binary, "run", cfg, "--platform", "reference", "--steps", str(steps), "--quiet"],
                   check=True, env=env, capture_output=True)
    js = os.path.join(tmp, f"fe_{steps}.json")
    subprocess.run([binary, "analyze", out, "--discard-ps", "10", "--json", js], check=True,
                   capture_output=True)
    with open(js) as f:
        return json.load(f)


with tempfile.TemporaryDirectory() as tmp:
    short, long = sweep(tmp, 50000), sweep(tmp, 200000)
    ti_exact = exact_trapezoid()
    print(f"exact ΔF = {exact:.5f} kT; trapezoid of the exact integrand = {ti_exact:.5f} kT")
    for name, res in (("50 ps", short), ("200 ps", long)):
        for method, truth in (("ti", ti_exact), ("bar", exact), ("mbar", exact)):
            r = res[method]
            dev = r["delta_f_kt"] - truth
            check(r["available"] and abs(dev) < 3 * r["sigma_kt"],
                  f"{name} {method.upper()}: {r['delta_f_kt']:.5f} ± {r['sigma_kt']:.5f} kT "
                  f"({dev / r['sigma_kt']:+.2f}σ from {truth:.5f})")
    for method in ("ti", "bar", "mbar"):
        ratio = short[method]["sigma_kt"] / long[method]["sigma_kt"]
        check(1.5 < ratio < 2.7, f"{method.upper()}: σ(50 ps)/σ(200 ps) = {ratio:.2f} (1/sqrt(4) law: 2)")

print(f"{tally.results['passed']} passed, {tally.results['failed']} failed")
sys.exit(1 if tally.results["failed"] else 0)
