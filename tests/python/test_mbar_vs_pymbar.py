#!/usr/bin/python3
"""`distilmd analyze` against pymbar (Debian python3-pymbar 3.1; pymbar 4's
names are used when present) on the same samples.

Files of harmonic λ windows (fe_h5md_generator.py: exact samples of
U_λ = k_λ/2 |x|², written in the layout of docs/free-energy.md) are analysed
with `distilmd analyze --json`, and the numbers are recomputed with pymbar
from the datasets of the same file:

  MBAR     every ΔF_ij within 1e-6 kT, every δΔF_ij within 1e-4 relative
           (pymbar's default 'svd-ew' covariance), the overlap matrix within
           1e-6;
  BAR      each neighbouring pair's ΔF within 1e-6 kT and σ within 1e-4
           relative (pymbar's BAR, uncertainty_method 'BAR');
  g        each window's statistical inefficiency of dU/dλ equals
           timeseries.statisticalInefficiency of the window's series (1e-9);
  subsampling  by default BAR and MBAR use, per window, the samples at
           subsampleCorrelatedData(series, g); pymbar on exactly those agrees
           as above, and the counts match;
  TI       the trapezoid of the window means of dU/dλ / kT (numpy).

Configurations: (a) 4 windows, replicas exchanged between neighbours,
independent samples, --all-samples; (b) 6 windows, AR(1)-correlated samples
(g about 4-5), default subsampling, --discard-frames; (b') correlated with
exchange: TI's σ from the per-frame TI integrand (its g and block averages,
recomputed with numpy and pymbar's g) and the subsampling strides
max(g_k, g_A); (c) 3 windows at
different temperatures, 2 replicas per window (no TI, no kcal/mol);
(d) poor overlap: the warning is printed. Bad arguments and files are refused.

Environment: DISTILMD_BINARY, the built distilmd (CTest sets it). Prints
"N passed, M failed" last; exits 1 on failure, 77 ("skipped: ...") without
pymbar, h5py or the binary.
"""
import json
import os
import subprocess
import sys
import tempfile
import traceback


def skip(why):
    print(f"skipped: {why}")
    sys.exit(77)


try:
    import numpy as np
except ImportError:
    skip("numpy is not installed (apt-get install python3-numpy)")


BINARY = os.environ.get("DISTILMD_BINARY", "")
if not BINARY or not os.path.exists(BINARY):
    skip("DISTILMD_BINARY is not set to the built distilmd")
try:
    import h5py  # noqa: F401
except ImportError:
    skip("h5py is not installed (apt-get install python3-h5py)")
try:
    import pymbar
    from pymbar import timeseries
except ImportError:
    skip("pymbar is not installed (apt-get install python3-pymbar)")

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import fe_h5md_generator as gen  # noqa: E402

DF_TOL = 1e-6          # kT
SIGMA_RTOL = 1e-4
OVERLAP_TOL = 1e-6

# ---------------------------------------------------------------------------
# pymbar 3 and 4


def pymbar_mbar(u_kn, n_k):
    """ΔF_ij, δΔF_ij and the overlap matrix from pymbar's MBAR."""
    m = pymbar.MBAR(u_kn, n_k)
    if hasattr(m, "compute_free_energy_differences"):  # pymbar 4
        r = m.compute_free_energy_differences()
        o = m.compute_overlap()["matrix"]
    else:
        r = m.getFreeEnergyDifferences(return_dict=True)
        o = m.computeOverlap(return_dict=True)["matrix"]
    return np.asarray(r["Delta_f"]), np.asarray(r["dDelta_f"]), np.asarray(o)


def pymbar_bar(w_f, w_r):
    if hasattr(pymbar, "other_estimators"):  # pymbar 4
        r = pymbar.other_estimators.bar(w_f, w_r)
    else:
        r = pymbar.BAR(w_f, w_r, return_dict=True)
    return float(r["Delta_f"]), float(r["dDelta_f"])


def pymbar_g(series):
    if hasattr(timeseries, "statistical_inefficiency"):
        return float(timeseries.statistical_inefficiency(series))
    return float(timeseries.statisticalInefficiency(series))


def pymbar_subsample(series, g):
    if hasattr(timeseries, "subsample_correlated_data"):
        return list(timeseries.subsample_correlated_data(series, g=g))
    return list(timeseries.subsampleCorrelatedData(series, g=g))


# ---------------------------------------------------------------------------
# helpers

def analyze(path, *args, expect_rc=0):
    out = path + ".json"
    p = subprocess.run([BINARY, "analyze", path, "--json", out, *args], capture_output=True,
                       text=True)
    if p.returncode != expect_rc:
        raise AssertionError(f"distilmd analyze {path} {' '.join(args)}: exit {p.returncode}, "
                             f"expected {expect_rc}\n{p.stdout}\n{p.stderr}")
    result = json.load(open(out)) if p.returncode == 0 else None
    return result, p.stdout, p.stderr


def close(name, got, want, atol=0.0, rtol=0.0):
    got, want = np.asarray(got, dtype=float), np.asarray(want, dtype=float)
    bad = np.abs(got - want) > atol + rtol * np.abs(want)
    if np.any(bad):
        i = np.unravel_index(np.argmax(np.abs(got - want) - rtol * np.abs(want)), got.shape)
        raise AssertionError(f"{name}: {got[i]!r} vs pymbar {want[i]!r} at {i} "
                             f"(atol {atol}, rtol {rtol})")
    return float(np.max(np.abs(got - want))) if got.size else 0.0


def window_series(data, k, first_frame=0):
    """Window k's samples in (frame, replica) order: their (t, r) and the
    dU/dλ series (one replica per window: one value per frame)."""
    w = data["window"][first_frame:]
    t, r = np.nonzero(w == k)
    return t + first_frame, r


def samples_of(data, used):
    """u_kn [K, N] and N_k from per-window (t, r) lists."""
    K = data["lambdas"].size
    cols = [data["reduced_potential"][t, r, :] for (t, r) in used]
    u_kn = np.concatenate([c.T for c in cols], axis=1)
    n_k = np.array([len(t) for (t, r) in used])
    assert u_kn.shape[0] == K
    return u_kn, n_k


def compare_with_pymbar(result, data, used, report):
    """MBAR, overlap and BAR of the JSON against pymbar on the samples `used`."""
    K = data["lambdas"].size
    u_kn, n_k = samples_of(data, used)
    assert [w["n_used"] for w in result["windows"]] == list(n_k), \
        f"n_used {[w['n_used'] for w in result['windows']]} vs {list(n_k)}"
    df, ddf, overlap = pymbar_mbar(u_kn, n_k)
    e1 = close("MBAR ΔF_ij", result["mbar_delta_f_kt"], df, atol=DF_TOL)
    e2 = close("MBAR δΔF_ij", result["mbar_sigma_kt"], ddf, atol=1e-12, rtol=SIGMA_RTOL)
    e3 = close("overlap", result["overlap"], overlap, atol=OVERLAP_TOL)
    close("MBAR ΔF", result["mbar"]["delta_f_kt"], df[0, K - 1], atol=DF_TOL)
    close("MBAR σ", result["mbar"]["sigma_kt"], ddf[0, K - 1], rtol=SIGMA_RTOL)
    rel = np.max(np.abs(np.asarray(result["mbar_sigma_kt"]) - ddf)[ddf > 0] / ddf[ddf > 0])
    report.append(f"MBAR: max |ΔF - pymbar| {e1:.1e} kT, max rel δΔF {rel:.1e}, "
                  f"overlap {e3:.1e}")
    worst_df = worst_sigma = 0.0
    u = data["reduced_potential"]
    for k in range(K - 1):
        (ta, ra), (tb, rb) = used[k], used[k + 1]
        w_f = u[ta, ra, k + 1] - u[ta, ra, k]
        w_r = u[tb, rb, k] - u[tb, rb, k + 1]
        d, s = pymbar_bar(w_f, w_r)
        pair = result["pairs"][k]
        worst_df = max(worst_df, close(f"BAR ΔF {k}-{k + 1}", pair["bar_delta_f_kt"], d,
                                       atol=DF_TOL))
        close(f"BAR σ {k}-{k + 1}", pair["bar_sigma_kt"], s, rtol=SIGMA_RTOL)
        worst_sigma = max(worst_sigma, abs(pair["bar_sigma_kt"] - s) / s)
    report.append(f"BAR: max |ΔF - pymbar| {worst_df:.1e} kT, max rel σ {worst_sigma:.1e}")
    close("BAR total", result["bar"]["delta_f_kt"],
          sum(p["bar_delta_f_kt"] for p in result["pairs"]), atol=1e-12)


# ---------------------------------------------------------------------------
# the checks

def check_exchange_all_samples(tmp, report):
    K, F = 4, 150
    data = gen.harmonic_samples(np.linspace(0, 1, K), np.full(K, 300.0), F, K, dims=3,
                                k_a=1.0, k_b=2.5, exchange=True, seed=11)
    assert len({tuple(row) for row in data["window"]}) > 1, "no exchange happened"
    path = os.path.join(tmp, "a.h5")
    gen.write_file(path, data)
    result, _, _ = analyze(path, "--all-samples")
    used = [window_series(data, k) for k in range(K)]
    compare_with_pymbar(result, data, used, report)
    kt = gen.BOLTZMANN_EV_PER_K * 300.0
    means = np.array([data["du_dlambda"][t, r].mean() for (t, r) in used]) / kt
    lam = data["lambdas"]
    ti = float(np.sum(0.5 * (means[1:] + means[:-1]) * np.diff(lam)))
    close("TI", result["ti"]["delta_f_kt"], ti, atol=1e-12)
    close("kcal/mol", result["mbar"]["delta_f_kcal_per_mol"],
          result["mbar"]["delta_f_kt"] * 0.0019872043 * 300.0, rtol=1e-12)
    for k, (t, r) in enumerate(used):
        g = pymbar_g(data["du_dlambda"][t, r])
        close(f"g window {k}", result["windows"][k]["g"], g, rtol=1e-9)


def check_correlated_subsampled(tmp, report):
    K, F, discard = 6, 400, 25
    data = gen.harmonic_samples(np.linspace(0, 1, K), np.full(K, 300.0), F, K, dims=2,
                                k_a=2.0, k_b=5.0, phi=0.8, seed=23)
    path = os.path.join(tmp, "b.h5")
    gen.write_file(path, data)
    result, _, _ = analyze(path, "--discard-frames", str(discard))
    assert result["first_frame"] == discard and result["n_frames"] == F - discard
    used, gs = [], []
    for k in range(K):
        t, r = window_series(data, k, discard)
        series = data["du_dlambda"][t, r]
        g = pymbar_g(series)
        close(f"g window {k}", result["windows"][k]["g"], g, rtol=1e-9)
        gs.append(g)
        assert result["windows"][k]["stride"] == result["windows"][k]["g"]  # no exchange
        idx = pymbar_subsample(series, result["windows"][k]["g"])
        used.append((t[idx], r[idx]))
    assert max(gs) > 1.5, f"g {gs}: the samples are not correlated"
    report.append("g per window " + " ".join(f"{g:.2f}" for g in gs))
    compare_with_pymbar(result, data, used, report)


def check_exchange_subsampled(tmp, report):
    """Correlated samples with exchange: TI's σ from the per-frame integrand
    A_t = sum_k w_k dU/dλ_k(t) / kT (its g and blocks), and subsampling
    strides max(g_k, g_A)."""
    K, F = 5, 600
    data = gen.harmonic_samples(np.linspace(0, 1, K), np.full(K, 300.0), F, K, dims=3,
                                k_a=1.0, k_b=3.0, phi=0.7, exchange=True, seed=31)
    path = os.path.join(tmp, "x.h5")
    gen.write_file(path, data)
    result, _, _ = analyze(path)
    assert result["exchange"] and result["frame_series"]
    kt = gen.BOLTZMANN_EV_PER_K * 300.0
    lam = data["lambdas"]
    w = np.zeros(K)
    w[:-1] += 0.5 * np.diff(lam)
    w[1:] += 0.5 * np.diff(lam)
    order = np.argsort(data["window"], axis=1, kind="stable")
    s = np.take_along_axis(data["du_dlambda"], order, axis=1) / kt   # [F, K] by window
    a = s @ w
    g_a = pymbar_g(a)
    close("g of A_t", result["g_frames"], g_a, rtol=1e-9)
    close("TI", result["ti"]["delta_f_kt"], a.mean(), atol=1e-12)
    close("TI σ", result["ti"]["sigma_kt"], np.sqrt(a.var(ddof=1) * g_a / F), rtol=1e-9)
    nb = result["n_blocks"]
    b = F // nb
    means = a[F - nb * b:].reshape(nb, b).mean(axis=1)
    close("TI block σ", result["ti_block"]["sigma_kt"], means.std(ddof=1) / np.sqrt(nb),
          rtol=1e-9)
    used = []
    for k in range(K):
        t, r = window_series(data, k)
        series = data["du_dlambda"][t, r]
        g = pymbar_g(series)
        close(f"g window {k}", result["windows"][k]["g"], g, rtol=1e-9)
        close(f"stride window {k}", result["windows"][k]["stride"], max(g, g_a), rtol=1e-9)
        idx = pymbar_subsample(series, result["windows"][k]["stride"])
        used.append((t[idx], r[idx]))
    report.append(f"g_A {g_a:.2f}, window g " +
                  " ".join(f"{w['g']:.2f}" for w in result["windows"]))
    compare_with_pymbar(result, data, used, report)


def check_temperatures(tmp, report):
    K, F = 3, 120
    temps = np.array([300.0, 320.0, 340.0])
    data = gen.harmonic_samples(np.linspace(0, 1, K), temps, F, 2 * K, dims=3, k_a=1.0,
                                k_b=1.5, exchange=True, seed=5)
    path = os.path.join(tmp, "c.h5")
    gen.write_file(path, data)
    result, out, _ = analyze(path, "--all-samples")
    assert not result["single_temperature"] and not result["ti"]["available"]
    assert result["mbar"]["delta_f_kcal_per_mol"] is None
    assert "different temperatures" in out
    assert all(w["n_series"] == 2 for w in result["windows"])
    used = [window_series(data, k) for k in range(K)]
    compare_with_pymbar(result, data, used, report)


def check_poor_overlap(tmp, report):
    K = 3
    data = gen.harmonic_samples(np.array([0.0, 0.5, 1.0]), np.full(K, 300.0), 200, K, dims=30,
                                k_a=1.0, k_b=400.0, seed=3)
    path = os.path.join(tmp, "d.h5")
    gen.write_file(path, data)
    result, out, _ = analyze(path)
    assert result["poor_overlap_pairs"] >= 1, result["pairs"]
    assert "warning: poor overlap between windows 0 and 1" in out, out
    report.append("poor overlap: " + [l for l in out.splitlines() if l.startswith("warning")][0])


def check_refusals(tmp, report):
    data = gen.harmonic_samples(np.linspace(0, 1, 3), np.full(3, 300.0), 10, 3, seed=1)
    path = os.path.join(tmp, "e.h5")
    gen.write_file(path, data)
    for args in (["--discard-frames", "-1"], ["--discard-frames", "2", "--discard-ps", "1"],
                 ["--blocks", "1"], ["--bogus"]):
        p = subprocess.run([BINARY, "analyze", path, *args], capture_output=True, text=True)
        assert p.returncode == 2, (args, p.returncode, p.stderr)
    p = subprocess.run([BINARY, "analyze", path, "--discard-frames", "10"], capture_output=True,
                       text=True)
    assert p.returncode == 1 and path in p.stderr and "leaves none" in p.stderr, p.stderr
    with h5py.File(path, "a") as f:
        del f["observables/dU_dlambda/value"]
    p = subprocess.run([BINARY, "analyze", path], capture_output=True, text=True)
    assert p.returncode == 1 and path in p.stderr and \
        "/observables/dU_dlambda/value" in p.stderr, p.stderr
    report.append("refused: " + p.stderr.strip())


def main():
    checks = [check_exchange_all_samples, check_correlated_subsampled, check_exchange_subsampled,
              check_temperatures,
              check_poor_overlap, check_refusals]
    passed = failed = 0
    with tempfile.TemporaryDirectory() as tmp:
        for check in checks:
            report = []
            try:
                check(tmp, report)
                passed += 1
                print(f"PASS {check.__name__}")
            except Exception:
                failed += 1
                print(f"FAIL {check.__name__}")
                traceback.print_exc()
            for line in report:
                print(f"     {line}")
    print(f"{passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
