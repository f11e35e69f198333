#!/usr/bin/env python3
"""Synthetic test-audio generator for elephant-call detectors.

Site: riverine floodplain, northern Botswana (Chobe river front / Linyanti).
Written independently; see riverine_soundscape.md for the sound models and signal path.

Usage:
  python models/riverine_soundscape.py --set calls|free --out DIR --seed S --meta METADIR

Signal path per file
  background/confounder track (scene units, 1.0 = full scale at 0 dB gain)
      + recorder self-noise  -> recorder filter (analogue HP + anti-alias LP) = N
  each elephant call: source model at a working rate -> propagation (distance,
      frequency dependent absorption) -> reverberation -> resampled to file rate
      -> same recorder filter -> scaled to a drawn in-band SNR against N -> sum C
  file = gain * (N + C) + DC offset -> clipping (digital-gain unit) -> 16-bit PCM
SNR column = 10 log10( P_call / P_noise ), both measured on the recorded,
  isolated signals (Hann-windowed FFT power inside [Low, High] Hz over [Begin, End]).
"""
import argparse
import json
import os
import time
from fractions import Fraction

import numpy as np
import soundfile as sf
from scipy import signal, fft as sfft

RATES = [2000, 4000, 8000, 16000, 22050, 44100, 48000]
DUR = float(os.environ.get("GEN_DEBUG_DUR", 600.0))   # debug override only
HEADER = ("Selection\tView\tChannel\tBegin Time (s)\tEnd Time (s)\tLow Freq (Hz)"
          "\tHigh Freq (Hz)\tClass\tSNR (dB)")


# ----------------------------------------------------------------------------
# generic DSP helpers
# ----------------------------------------------------------------------------
def dbl(x):
    """dB -> linear amplitude."""
    return 10.0 ** (x / 20.0)


def resamp(x, fs_in, fs_out):
    """Band-limited polyphase resampling (no aliasing)."""
    if fs_in == fs_out:
        return x
    fr = Fraction(int(fs_out), int(fs_in))
    return signal.resample_poly(x, fr.numerator, fr.denominator)


def shaped_noise(rng, n, fs, psd):
    """Gaussian noise of length n with power spectrum psd(f) (FFT shaping),
    normalised to unit RMS. Discrete at fs, hence band-limited by construction."""
    m = sfft.next_fast_len(n, real=True)
    w = rng.standard_normal(m).astype(np.float32)
    X = sfft.rfft(w)
    f = np.fft.rfftfreq(m, 1.0 / fs)
    X *= np.sqrt(psd(f)).astype(np.float32)
    x = sfft.irfft(X, m)[:n].astype(np.float32)
    return x / (np.std(x) + 1e-20)


def slow_proc(rng, n, fs, rate, smooth):
    """Smooth random process (zero-mean, unit std) sampled at fs, with
    correlation time ~ smooth seconds; built on a coarse grid then interpolated."""
    k = max(1, int(smooth * rate))
    m = max(int(n / fs * rate) + 8, 2 * k + 9)
    w = rng.standard_normal(m)
    w = np.convolve(w, np.hanning(2 * k + 1), mode="same")
    w = (w - w.mean()) / (w.std() + 1e-12)
    t = np.arange(n) / fs
    return np.interp(t, np.arange(m) / rate, w).astype(np.float32)


def env_ar(n, fs, att, rel):
    """Raised-cosine attack / release envelope."""
    e = np.ones(n)
    na = max(1, min(n // 2, int(att * fs)))
    nr = max(1, min(n - na, int(rel * fs)))
    e[:na] = 0.5 - 0.5 * np.cos(np.pi * np.arange(na) / na)
    e[n - nr:] = 0.5 + 0.5 * np.cos(np.pi * np.arange(nr) / nr)
    return e


def formant_gain(f, formants):
    """Sum of Lorentzian resonances: formants = [(F, B, gain_lin), ...]."""
    g = np.ones_like(f, dtype=float) * 0.3
    for F, B, G in formants:
        g = g + G / (1.0 + ((f - F) / (0.5 * B)) ** 2)
    return g


def harmonic(rng, fs, f0, amp_of, lim=None, kmax=400):
    """Additive harmonic synthesis with per-sample f0 track. Harmonics are
    tapered to zero before min(lim, 0.45 fs): band-limited, no aliasing."""
    top = 0.45 * fs if lim is None else min(lim, 0.45 * fs)
    ph = 2 * np.pi * np.cumsum(f0) / fs
    out = np.zeros(len(f0))
    taper = max(0.04 * top, 5.0)
    for k in range(1, kmax + 1):
        fk = k * f0
        if fk.min() >= top:
            break
        a = amp_of(k, fk) * np.clip((top - fk) / taper, 0, 1)
        out += a * np.sin(k * ph + rng.uniform(0, 2 * np.pi))
    return out


def bandpass(x, fs, lo, hi, order=2):
    """Butterworth band/low/high-pass with edges clipped to Nyquist."""
    hi = min(hi, 0.45 * fs)
    if lo is not None and lo >= hi * 0.9:
        return x * 0.0
    if lo is None or lo <= 0:
        sos = signal.butter(order, hi, "lowpass", fs=fs, output="sos")
    elif hi >= 0.449 * fs:
        sos = signal.butter(order, lo, "highpass", fs=fs, output="sos")
    else:
        sos = signal.butter(order, [lo, hi], "bandpass", fs=fs, output="sos")
    return signal.sosfilt(sos, x)


def absorption_db(f, d):
    """Excess attenuation (dB) over distance d (m): air absorption (~5 dB/km at
    1 kHz, ~f^1.5) plus vegetation/ground scattering (~15 dB/km at 1 kHz, ~f^0.8)."""
    fk = np.maximum(f, 0) / 1000.0
    return d * (0.005 * fk ** 1.5 + 0.015 * fk ** 0.8)


def propagate(x, fs, d):
    """Zero-phase frequency-dependent attenuation for distance d (levels are set
    separately; spreading loss is absorbed into the level draw)."""
    n = len(x)
    m = sfft.next_fast_len(n + int(0.05 * fs), real=True)
    X = sfft.rfft(x, m)
    f = np.fft.rfftfreq(m, 1.0 / fs)
    X *= 10 ** (-absorption_db(f, d) / 20)
    return sfft.irfft(X, m)[:n]


def reverb(rng, x, fs, rt, wet):
    """Diffuse exponentially decaying tail (woodland / riverbank reflections)."""
    L = int(rt * fs)
    t = np.arange(L) / fs
    h = rng.standard_normal(L) * np.exp(-6.9 * t / rt)
    h = bandpass(h, fs, None, 2500.0, 1)
    h /= np.sqrt(np.sum(h ** 2)) + 1e-20
    y = np.zeros(len(x) + L)
    y[:len(x)] += np.sqrt(1 - wet) * x
    y[:len(x) + L - 1] += np.sqrt(wet) * signal.fftconvolve(x, h)
    return y


def loud_rms(x, fs):
    """RMS of the loudest 10% of 50-ms frames (level of an intermittent event)."""
    fl = max(1, int(0.05 * fs))
    m = len(x) // fl
    if m < 1:
        return np.sqrt(np.mean(x ** 2)) + 1e-20
    p = np.mean(x[:m * fl].reshape(m, fl) ** 2, axis=1)
    k = max(1, m // 10)
    return np.sqrt(np.mean(np.sort(p)[-k:])) + 1e-20


def place(track, x, i0):
    i0 = int(i0)
    a, b = max(0, i0), min(len(track), i0 + len(x))
    if b > a:
        track[a:b] += x[a - i0:b - i0].astype(track.dtype)


# ----------------------------------------------------------------------------
# elephant calls  (each returns source waveform at working rate ws, params)
# ----------------------------------------------------------------------------
def rumble(rng, ws):
    dur = rng.uniform(1.2, 7.5)
    n = int(dur * ws)
    u = np.linspace(0, 1, n)
    fb = rng.uniform(10, 22)
    shape = rng.choice(["arched", "flat", "falling", "rising"], p=[.45, .3, .15, .1])
    a = rng.uniform(0.1, 0.45)
    if shape == "arched":
        c = 1 + a * np.sin(np.pi * u) ** rng.uniform(0.7, 2.0)
    elif shape == "flat":
        c = 1 + 0.05 * (u - 0.5)
    elif shape == "falling":
        c = 1 + a * (1 - u) ** 1.5
    else:
        c = 1 + 0.6 * a * u
    f0 = fb * c * (1 + 0.012 * slow_proc(rng, n, ws, 30, 0.15))
    # vocal tract: nasal rumbles (F1~40, F2~170 Hz) or oral (F1~130, F2~400 Hz)
    if rng.random() < 0.6:
        fm = [(rng.uniform(30, 50), rng.uniform(15, 30), dbl(rng.uniform(6, 12))),
              (rng.uniform(140, 200), rng.uniform(40, 80), dbl(rng.uniform(3, 9)))]
        kind = "nasal"
    else:
        fm = [(rng.uniform(100, 150), rng.uniform(40, 70), dbl(rng.uniform(6, 12))),
              (rng.uniform(350, 450), rng.uniform(80, 140), dbl(rng.uniform(3, 8)))]
        kind = "oral"
    h1 = dbl(rng.uniform(-14, -4))            # weak fundamental
    h3 = dbl(rng.uniform(-3, 1))
    slope = rng.uniform(-9, -5)              # dB/oct above H3
    fmax = rng.uniform(350, 650)

    def amp(k, fk):
        base = h1 if k == 1 else (1.0 if k == 2 else (h3 if k == 3 else h3 * dbl(slope * np.log2(k / 3))))
        return base * formant_gain(fk, fm)
    x = harmonic(rng, ws, f0, amp, lim=fmax)
    # breathy noise through the same resonances
    br = shaped_noise(rng, n, ws, lambda f: formant_gain(f, fm) ** 2 / (1 + (f / 150) ** 2))
    x = x / (np.std(x) + 1e-20) + dbl(rng.uniform(-30, -18)) * br
    x *= env_ar(n, ws, rng.uniform(0.15, 0.6), rng.uniform(0.3, 1.0))
    x *= 1 + 0.08 * slow_proc(rng, n, ws, 30, 0.3)
    return x, dict(f0_base=round(fb, 2), contour=str(shape), tract=kind,
                   formants=[round(F, 1) for F, _, _ in fm], duration=round(dur, 3),
                   h1_db=round(20 * np.log10(h1), 1), slope_db_oct=round(slope, 1))


def roar(rng, ws):
    dur = rng.uniform(1.0, 3.0)
    n = int(dur * ws)
    fb = rng.uniform(80, 250)
    f0 = fb * np.exp(0.08 * slow_proc(rng, n, ws, 200, 0.02))   # chaotic f0
    fm = [(rng.uniform(300, 500), 200, 3.0), (rng.uniform(900, 1400), 400, 2.0),
          (rng.uniform(1800, 2600), 600, 1.0)]
    harm = harmonic(rng, ws, f0, lambda k, fk: formant_gain(fk, fm) / k ** 0.7, lim=3500)
    lo, hi = rng.uniform(90, 150), rng.uniform(2500, 3500)
    nz = shaped_noise(rng, n, ws, lambda f: formant_gain(f, fm) ** 2 *
                      ((f > lo) & (f < hi)) / (1 + (f / 1500) ** 2))
    x = 0.6 * harm / (np.std(harm) + 1e-20) + nz
    t = np.arange(n) / ws
    x *= 1 + 0.35 * np.sin(2 * np.pi * rng.uniform(15, 30) * t)   # pulsatile roughness
    x *= env_ar(n, ws, rng.uniform(0.1, 0.3), rng.uniform(0.3, 0.7))
    return x, dict(f0_base=round(fb, 1), band=[round(lo), round(hi)], duration=round(dur, 3))


def cry(rng, ws):
    dur = rng.uniform(0.5, 2.5)
    n = int(dur * ws)
    t = np.arange(n) / ws
    u = t / dur
    fb = rng.uniform(200, 550)
    vr, vd = rng.uniform(4, 10), rng.uniform(0.02, 0.08)
    f0 = fb * (1 + 0.15 * np.sin(np.pi * u) * rng.uniform(-1, 1)) * (1 + vd * np.sin(2 * np.pi * vr * t))
    slope = rng.uniform(-10, -6)
    x = harmonic(rng, ws, f0, lambda k, fk: dbl(slope * np.log2(k)), lim=4000)
    x = x / (np.std(x) + 1e-20) + dbl(-22) * shaped_noise(rng, n, ws, lambda f: (f > 200) / (1 + (f / 2000) ** 2))
    x *= env_ar(n, ws, rng.uniform(0.05, 0.2), rng.uniform(0.1, 0.4))
    return x, dict(f0_base=round(fb, 1), vibrato_hz=round(vr, 2), vibrato_depth=round(vd, 3),
                   duration=round(dur, 3))


def trumpet(rng, ws):
    dur = rng.uniform(0.3, 2.0)
    n = int(dur * ws)
    t = np.arange(n) / ws
    u = t / dur
    fb = rng.uniform(350, 650)
    f0 = fb * (0.85 + 0.15 * np.minimum(1, u / 0.15)) * (1 - 0.12 * np.maximum(0, u - 0.8) / 0.2)
    f0 = f0 * np.exp(0.03 * slow_proc(rng, n, ws, 300, 0.01))
    slope = rng.uniform(-6, -2.5)
    x = harmonic(rng, ws, f0, lambda k, fk: dbl(slope * np.log2(k)) * (1 + 0.5 * (fk > 1000)), lim=9000)
    # subharmonic regime (nonlinear phenomenon) for part of the call
    if rng.random() < 0.5:
        sub = harmonic(rng, ws, f0 / 2, lambda k, fk: 0.4 * dbl(slope * np.log2(k)) * (k % 2), lim=5000)
        m = np.zeros(n)
        a, b = sorted(rng.uniform(0.2, 0.9, 2))
        m[int(a * n):int(b * n)] = 1
        x = x + sub * signal.oaconvolve(m, np.hanning(int(0.02 * ws) + 1) / (0.01 * ws + 0.5), "same")
    x = x / (np.std(x) + 1e-20)
    x += dbl(rng.uniform(-12, -5)) * shaped_noise(rng, n, ws, lambda f: (f > 300) / (1 + (f / 4000) ** 2))
    x *= env_ar(n, ws, rng.uniform(0.02, 0.08), rng.uniform(0.05, 0.25))
    return x, dict(f0_base=round(fb, 1), slope_db_oct=round(slope, 1), duration=round(dur, 3))


CALLS = dict(rumble=rumble, roar=roar, cry=cry, trumpet=trumpet)


# ----------------------------------------------------------------------------
# confounders: each returns (waveform at fs, params); level is set by caller
# ----------------------------------------------------------------------------
def _tonal(rng, fs, dur, f0fun, slope, formants=None, lim=None, noise_db=-15, nlo=50, nhi=3000,
           att=0.05, rel=0.1):
    n = max(8, int(dur * fs))
    u = np.linspace(0, 1, n)
    f0 = f0fun(u)
    fm = formants or []
    x = harmonic(rng, fs, f0, lambda k, fk: dbl(slope * np.log2(k)) * formant_gain(fk, fm), lim=lim)
    x = x / (np.std(x) + 1e-20)
    if noise_db is not None:
        x += dbl(noise_db) * shaped_noise(rng, n, fs, lambda f: ((f > nlo) & (f < nhi)) * formant_gain(f, fm) ** 2)
    return x * env_ar(n, fs, att, rel)


def _bout(fs, parts):
    """Concatenate (offset_s, waveform) parts into one array."""
    end = max(int(o * fs) + len(w) for o, w in parts)
    y = np.zeros(end)
    for o, w in parts:
        y[int(o * fs):int(o * fs) + len(w)] += w
    return y


def hippo(rng, fs):
    kind = rng.choice(["laugh", "grunts", "groan"], p=[0.45, 0.35, 0.2])
    parts, t = [], 0.0
    if kind == "laugh":          # wheeze followed by a series of honks
        w = rng.uniform(0.8, 2.0)
        nz = shaped_noise(rng, int(w * fs), fs, lambda f: ((f > 200) & (f < 2500)) * 1.0)
        parts.append((0, nz * env_ar(len(nz), fs, 0.3, 0.3) * 0.4))
        t = w + 0.1
        nh = rng.integers(4, 13)
        gap = rng.uniform(0.35, 0.7)
        fb = rng.uniform(60, 140)
        fm = [(rng.uniform(200, 320), 120, 4.0), (rng.uniform(550, 800), 250, 2.0)]
        for i in range(nh):
            d = rng.uniform(0.2, 0.45)
            f = fb * rng.uniform(0.9, 1.1)
            parts.append((t, _tonal(rng, fs, d, lambda u: f * (1.1 - 0.2 * u), -4, fm, 2500, -8, 80, 2000,
                                    0.03, 0.1) * (1 - 0.5 * i / nh)))
            t += d + gap * (1 + 0.08 * i)
        p = dict(f0=round(fb, 1), honks=int(nh))
    elif kind == "grunts":       # low pulsed grunts, rumble-like
        ng = rng.integers(2, 8)
        fb = rng.uniform(22, 60)
        for i in range(ng):
            d = rng.uniform(0.3, 1.4)
            f = fb * rng.uniform(0.9, 1.1)
            parts.append((t, _tonal(rng, fs, d, lambda u: f * (1 + 0.1 * np.sin(np.pi * u)), -6,
                                    [(rng.uniform(80, 160), 60, 4.0)], 900, -14, 20, 600, 0.08, 0.2)))
            t += d + rng.uniform(0.3, 1.5)
        p = dict(f0=round(fb, 1), grunts=int(ng))
    else:                        # long low tonal groan, closest rumble look-alike
        d = rng.uniform(1.0, 3.5)
        fb = rng.uniform(15, 38)
        parts.append((0, _tonal(rng, fs, d, lambda u: fb * (1 + 0.15 * np.sin(np.pi * u)), -5,
                                [(rng.uniform(60, 120), 50, 4.0)], 700, -16, 10, 500, 0.3, 0.5)))
        p = dict(f0=round(fb, 1), duration=round(d, 2))
    p["kind"] = str(kind)
    return _bout(fs, parts), p


def lion(rng, fs):
    parts, t = [], 0.0
    nm = rng.integers(1, 3)
    nr = rng.integers(3, 8)
    ng = rng.integers(8, 22)
    fm = [(rng.uniform(250, 400), 150, 3.0), (rng.uniform(700, 1000), 300, 1.5)]
    for i in range(nm + nr):
        full = i >= nm
        d = rng.uniform(1.0, 2.0) if full else rng.uniform(0.6, 1.2)
        pk = rng.uniform(150, 210) if full else rng.uniform(80, 120)
        w = _tonal(rng, fs, d, lambda u: 50 + (pk - 50) * np.sin(np.pi * (0.2 + 0.7 * u)) ** 1.5, -5, fm, 2000,
                   -6 if full else -10, 40, 1500, 0.15, 0.3)
        parts.append((t, w * (1.0 if full else 0.4)))
        t += d + rng.uniform(0.5, 1.2)
    gi = rng.uniform(0.7, 1.1)
    for i in range(ng):
        d = rng.uniform(0.2, 0.4)
        f = rng.uniform(50, 90)
        parts.append((t, _tonal(rng, fs, d, lambda u: f * (1.2 - 0.4 * u), -5, fm, 1500, -8, 30, 1000, 0.03, 0.1)
                      * 0.6 * (1 - 0.7 * i / ng)))
        t += d + gi * (1 + 0.05 * i)
    return _bout(fs, parts), dict(moans=int(nm), roars=int(nr), grunts=int(ng))


def hyena(rng, fs):
    parts, t = [], 0.0
    nw = rng.integers(3, 12)
    lo, hi = rng.uniform(150, 300), rng.uniform(450, 900)
    for i in range(nw):
        d = rng.uniform(0.8, 2.5)
        up = rng.random() < 0.8
        parts.append((t, _tonal(rng, fs, d, (lambda u: lo + (hi - lo) * u ** 1.3) if up else
                                (lambda u: hi - (hi - lo) * u), -9, None, 3000, -25, 100, 2000, 0.1, 0.3)))
        t += d + rng.uniform(2, 8)
    return _bout(fs, parts), dict(whoops=int(nw), f_start=round(lo), f_end=round(hi))


def bovid(rng, fs):
    """Buffalo / cattle lowing and buffalo grunts."""
    parts, t = [], 0.0
    n = rng.integers(1, 5)
    grunt = rng.random() < 0.4
    for i in range(n):
        if grunt:
            d, fb = rng.uniform(0.3, 0.8), rng.uniform(40, 80)
        else:
            d, fb = rng.uniform(1.0, 3.0), rng.uniform(70, 160)
        fm = [(rng.uniform(250, 400), 150, 3.0), (rng.uniform(700, 1100), 300, 2.0)]
        parts.append((t, _tonal(rng, fs, d, lambda u: fb * (0.9 + 0.2 * np.sin(np.pi * u)), -6, fm, 3000, -15,
                                60, 2000, 0.1, 0.3)))
        t += d + rng.uniform(1, 6)
    return _bout(fs, parts), dict(kind="grunt" if grunt else "low", n=int(n))


def baboon(rng, fs):
    parts, t = [], 0.0
    n = rng.integers(1, 8)
    fb = rng.uniform(350, 700)
    for i in range(n):
        wa = _tonal(rng, fs, 0.1, lambda u: fb * (0.7 + 0.5 * u), -5, None, 4000, -8, 200, 4000, 0.01, 0.03)
        hoo = _tonal(rng, fs, rng.uniform(0.2, 0.35), lambda u: fb * (1.1 - 0.3 * u), -7, None, 4000, -12, 200,
                     4000, 0.02, 0.08)
        parts += [(t, wa), (t + 0.12, hoo)]
        t += rng.uniform(1.0, 5.0)
    return _bout(fs, parts), dict(barks=int(n), f0=round(fb))


def fish_eagle(rng, fs):
    parts = []
    f = rng.uniform(1300, 2000)
    parts.append((0, _tonal(rng, fs, rng.uniform(0.5, 0.8), lambda u: f * (1 - 0.15 * u), -12, None, 8000, None,
                            att=0.05, rel=0.1)))
    t = 0.9
    for i in range(rng.integers(3, 7)):
        parts.append((t, _tonal(rng, fs, 0.15, lambda u: f * 0.9 * (1 - 0.25 * u), -12, None, 8000, None,
                                att=0.01, rel=0.05)))
        t += rng.uniform(0.22, 0.3)
    return _bout(fs, parts), dict(f=round(f))


def hadeda(rng, fs):
    parts, t = [], 0.0
    fb = rng.uniform(500, 900)
    n = rng.integers(3, 8)
    for i in range(n):
        d = rng.uniform(0.25, 0.5)
        parts.append((t, _tonal(rng, fs, d, lambda u: fb * (1 + 0.2 * np.sin(np.pi * u)), -3, None, 6000, -4,
                                400, 5000, 0.02, 0.1)))
        t += d + rng.uniform(0.1, 0.4)
    return _bout(fs, parts), dict(f0=round(fb), notes=int(n))


def songbird(rng, fs):
    parts, t = [], 0.0
    for i in range(rng.integers(3, 15)):
        d = rng.uniform(0.04, 0.2)
        a, b = rng.uniform(2000, 7000, 2)
        parts.append((t, _tonal(rng, fs, d, lambda u: a + (b - a) * u, -15, None, 12000, None,
                                att=0.01, rel=0.02)))
        t += d + rng.uniform(0.03, 0.3)
    return _bout(fs, parts), dict()


def bullfrog(rng, fs):
    parts, t = [], 0.0
    fb = rng.uniform(150, 260)
    for i in range(rng.integers(1, 6)):
        d = rng.uniform(0.3, 0.7)
        parts.append((t, _tonal(rng, fs, d, lambda u: fb * (0.85 + 0.3 * np.sin(np.pi * u)), -6,
                                [(rng.uniform(300, 500), 200, 3.0)], 2000, -14, 80, 1500, 0.05, 0.15)))
        t += d + rng.uniform(1.0, 4.0)
    return _bout(fs, parts), dict(f0=round(fb))


def thunder(rng, fs, d):
    """Rolling thunder: low-passed noise with several decaying bursts; near
    strokes start with a crack."""
    dur = rng.uniform(4, 20)
    n = int(dur * fs)
    fc = 200 * (1000 / max(d, 500)) ** 0.5
    x = shaped_noise(rng, n, fs, lambda f: 1 / (1 + (f / fc) ** 2.5) / (1 + (3 / (f + 0.1)) ** 2))
    e = np.zeros(n)
    t = np.arange(n) / fs
    for k in range(rng.integers(2, 7)):
        t0 = rng.uniform(0, 0.6 * dur)
        e += rng.uniform(0.3, 1.0) * (t >= t0) * np.exp(-np.maximum(t - t0, 0) / rng.uniform(0.5, 3.0))
    e *= np.minimum(1, t / 0.3)
    x = x * e
    if d < 1500:
        cr = shaped_noise(rng, int(0.3 * fs), fs, lambda f: (f > 300) / (1 + (f / 4000) ** 2))
        x[:len(cr)] += 0.8 * cr * np.exp(-np.arange(len(cr)) / (0.05 * fs))
    return x, dict(distance_m=round(d), duration=round(dur, 2))


def engine_hum(rng, fs, dur, f_fire, f_var, half_order, noise_lo, noise_hi, noise_db, lim=2000):
    """Harmonic engine/propeller sound: firing frequency f_fire(t) (array) with
    harmonics, half-order component, plus broadband mechanical noise."""
    n = len(f_fire)
    # harmonic part synthesised at a low working rate, then band-limited resampling
    ws = min(fs, 4000 if lim > 1500 else 2000)
    fw = resamp(f_fire, fs, ws)[: int(n * ws / fs)] if ws != fs else f_fire
    amps = rng.uniform(-12, 0, 60)
    amps[0] = 0

    def amp(k, fk):
        return dbl(amps[k - 1] - 3 * np.log2(k)) if k <= 60 else 0.0
    x = harmonic(rng, ws, fw, amp, lim=lim)
    if half_order:
        x += dbl(rng.uniform(-12, -4)) * harmonic(rng, ws, fw / 2, lambda k, fk: (k % 2) * dbl(-6 * np.log2(k)),
                                                  lim=lim)
    x = resamp(x / (np.std(x) + 1e-20), ws, fs)
    x = np.pad(x, (0, max(0, n - len(x))))[:n]
    x *= 1 + 0.05 * slow_proc(rng, n, fs, 20, 0.1)
    x += dbl(noise_db) * shaped_noise(rng, n, fs, lambda f: ((f > noise_lo) & (f < noise_hi)) /
                                      (1 + (f / 800) ** 2) + 1e-9)
    return x


def pass_by(rng, fs, dur, d0, v, c=343.0):
    """Distance r(t) and Doppler factor for a straight pass, closest at mid-time."""
    t = np.arange(int(dur * fs)) / fs - dur / 2
    r = np.sqrt(d0 ** 2 + (v * t) ** 2)
    vr = v * v * t / r                      # radial velocity (positive = receding)
    return r, c / (c + vr)


def vehicle(rng, fs):
    """Safari vehicle: drives in on sand, idles (engine running while watching
    game), drives off. 4-cyl diesel: firing = rpm/30 Hz (idle 23-30 Hz)."""
    t_in, t_idle, t_out = rng.uniform(15, 60), rng.uniform(30, 240), rng.uniform(15, 60)
    n = int((t_in + t_idle + t_out) * fs)
    t = np.arange(n) / fs
    rpm_idle = rng.uniform(700, 900)
    rpm_drive = rng.uniform(1400, 2400)
    tc = np.arange(int(n / fs * 50) + 2) / 50.0          # control-rate (50 Hz) rpm schedule
    rc = np.where((tc < t_in) | (tc > t_in + t_idle), rpm_drive, rpm_idle)
    rc = rc * (1 + 0.08 * slow_proc(rng, len(tc), 50, 5, 2.0) * (rc > rpm_idle))   # gear/throttle changes
    rc = np.convolve(np.pad(rc, 25, mode="edge"), np.ones(50) / 50, "same")[25:-25]
    rpm = np.interp(t, tc, rc)
    x = engine_hum(rng, fs, 0, rpm / 30.0, 0, True, 80, 1500, -8, lim=1500)
    # tyre/sand noise only when moving; level with distance
    mc = ((tc < t_in) | (tc > t_in + t_idle)).astype(float)                 # moving flag, 1 s ramps
    mc = np.convolve(np.pad(mc, 25, mode="edge"), np.ones(50) / 50, "same")[25:-25]
    move = np.interp(t, tc, mc)
    x += move * dbl(-4) * shaped_noise(rng, n, fs, lambda f: ((f > 60) & (f < 2500)) / (1 + (f / 500) ** 2))
    d_near = rng.uniform(30, 400)
    dist = np.where(t < t_in, d_near + 8 * (t_in - t), np.where(t > t_in + t_idle, d_near + 8 * (t - t_in - t_idle),
                                                               d_near))
    x *= d_near / dist
    return x, dict(rpm_idle=round(rpm_idle), rpm_drive=round(rpm_drive), idle_s=round(t_idle, 1),
                   d_near_m=round(d_near))


def boat(rng, fs):
    tourist = rng.random() < 0.5
    dur = rng.uniform(40, 200)
    v = rng.uniform(3, 6) if tourist else rng.uniform(6, 14)
    r, dop = pass_by(rng, fs, dur, rng.uniform(30, 400), v)
    n = len(r)
    if tourist:     # 4-stroke outboard cruising: firing = rpm/60*cyl/2
        rpm, cyl = rng.uniform(1500, 3000), 4
        ff = rpm / 60 * cyl / 2
    else:           # 2-stroke outboard: firing = rpm/60*cyl
        rpm, cyl = rng.uniform(3500, 5500), 2
        ff = rpm / 60 * cyl
    f = ff * dop * (1 + 0.01 * slow_proc(rng, n, fs, 5, 1.0))
    x = engine_hum(rng, fs, 0, f, 0, tourist, 150, 4000, -4, lim=2500)
    x *= r.min() / r
    return x, dict(tourist=bool(tourist), rpm=round(rpm), firing_hz=round(ff, 1), duration=round(dur, 1))


def aircraft(rng, fs):
    dur = rng.uniform(50, 120)
    h = rng.uniform(300, 1200)
    r, dop = pass_by(rng, fs, dur, h, rng.uniform(45, 65))
    rpm = rng.uniform(2300, 2700)
    bpf = rpm / 60 * 2                       # 2-blade propeller
    x = engine_hum(rng, fs, 0, bpf * dop, 0, False, 50, 2500, -6, lim=1500)
    x *= (h / r) ** 1.3                      # spreading + extra absorption at long range
    return x, dict(bpf_hz=round(bpf, 1), altitude_m=round(h), duration=round(dur, 1))


def splashes(rng, fs):
    """Animals wading / crossing: sequences of broadband splash bursts."""
    parts, t = [], 0.0
    for i in range(rng.integers(5, 40)):
        d = rng.uniform(0.1, 0.6)
        nz = shaped_noise(rng, int(d * fs), fs, lambda f: ((f > 80) & (f < 5000)) / (1 + (f / 700) ** 1.5))
        parts.append((t, nz * np.exp(-np.arange(len(nz)) / (rng.uniform(0.05, 0.2) * fs)) * rng.uniform(0.3, 1)))
        t += rng.uniform(0.3, 2.0)
    return _bout(fs, parts), dict()


# ----------------------------------------------------------------------------
# continuous backgrounds (full length)
# ----------------------------------------------------------------------------
def ambient(rng, n, fs, level_db):
    """Distant soundscape floor: pink-to-red spectrum with a mid bump."""
    beta = rng.uniform(1.0, 1.6)
    x = shaped_noise(rng, n, fs, lambda f: 1 / (f + 15) ** beta + 3e-4 / (1 + ((f - 2500) / 2000) ** 2))
    return x * dbl(level_db) * (1 + 0.15 * slow_proc(rng, n, fs, 2, 20))


def wind(rng, n, fs, strength_db, reeds_db):
    """Gusty wind: microphone buffeting (low-frequency, ~1/f^2) driven by a gust
    process (amplitude ~ speed^2) plus broadband reed/leaf rustle (~speed^1.5).
    The buffeting (negligible above ~500 Hz) is made at <= 2 kHz and resampled."""
    ws = min(fs, 2000)
    m = int(n * ws / fs) + 1
    g = np.exp(0.35 * np.clip(slow_proc(rng, m, ws, 5, rng.uniform(3, 12)), -3, 3))   # bounded gusts
    g = g / (1 + np.exp(-4 * (slow_proc(rng, m, ws, 2, 30) - rng.uniform(-1.5, 0.3))))   # calm spells
    fc = rng.uniform(5, 20)
    buf = shaped_noise(rng, m, ws, lambda f: 1 / (1 + (f / fc) ** 2) ** 1.1 / (1 + (1.0 / (f + 0.05)) ** 2))
    buf = resamp(buf * g ** 2, ws, fs)
    buf = np.pad(buf, (0, max(0, n - len(buf))))[:n]
    gf = np.interp(np.arange(n) / fs, np.arange(m) / ws, g).astype(np.float32)
    rus = shaped_noise(rng, n, fs, lambda f: ((f > 300) / (1 + (f / 5000) ** 2)))
    fl = 1 + 0.4 * slow_proc(rng, n, fs, 40, 0.1)
    return dbl(strength_db) * buf / 2 + dbl(reeds_db) * rus * gf ** 1.5 * fl / 2


def rain(rng, n, fs, i0, i1, level_db):
    """Rain shower between samples i0..i1: drop impulses (Poisson, heavy-tailed
    sizes) ringing at 1-6 kHz + hiss, and occasional low thumps on the housing."""
    m = i1 - i0
    t = np.arange(m) / fs
    e = np.sin(np.pi * t / t[-1]) ** 0.5 * (1 + 0.3 * slow_proc(rng, m, fs, 2, 10))
    rate = rng.uniform(200, 2000)
    k = rng.poisson(rate * m / fs)
    imp = np.zeros(m, np.float32)
    idx = rng.integers(0, m, k)
    np.add.at(imp, idx, (rng.pareto(2.5, k) + 0.2) * rng.choice([-1, 1], k))
    x = bandpass(imp, fs, 1000, 6000, 2) + 0.3 * bandpass(imp, fs, 200, 1000, 1)
    x /= np.std(x) + 1e-20
    x += 0.5 * shaped_noise(rng, m, fs, lambda f: (f > 500) / (1 + (f / 6000) ** 2))
    thumps = np.zeros(m, np.float32)
    kt = rng.poisson(2 * m / fs)
    thumps[rng.integers(0, m, kt)] = rng.uniform(2, 10, kt)
    x += bandpass(thumps, fs, 20, 150, 2)
    y = np.zeros(n, np.float32)
    y[i0:i1] = x * e * dbl(level_db)
    return y


def frogs(rng, n, fs, level_db):
    """Painted reed frog chorus (bell-like 2.5-4 kHz notes) by pitch groups."""
    y = np.zeros(n, np.float32)
    if fs < 6000:
        return y
    for g in range(4):
        f = rng.uniform(2500, 3900)
        L = int(rng.uniform(0.03, 0.07) * fs)
        tt = np.arange(L) / fs
        note = np.sin(2 * np.pi * f * (tt + 0.5 * 0.15 * tt ** 2 / tt[-1])) * np.exp(-tt / (0.3 * tt[-1]))
        note *= np.minimum(1, tt / 0.003)
        rate = rng.uniform(2, 12)
        k = rng.poisson(rate * n / fs)
        imp = np.zeros(n, np.float32)
        on = (slow_proc(rng, n, fs, 1, 20) > -0.5)
        idx = rng.integers(0, n, k)
        np.add.at(imp, idx, rng.uniform(0.2, 1, k) * on[idx])
        y += signal.oaconvolve(imp, note.astype(np.float32))[:n]
    return y / (loud_rms(y, fs)) * dbl(level_db)


def insects(rng, n, fs, level_db, cicada):
    """Cricket trills (3.5-6 kHz carrier pulsed 20-60 Hz) or cicada buzz."""
    y = np.zeros(n, np.float32)
    t = np.arange(n, dtype=np.float64) / fs
    for i in range(rng.integers(1, 4)):
        fc = rng.uniform(3500, 6000) if not cicada else rng.uniform(4000, 9000)
        if fc > 0.42 * fs:
            continue
        pr = rng.uniform(20, 60) if not cicada else rng.uniform(100, 250)
        am = np.clip(np.sin(2 * np.pi * pr * t + rng.uniform(0, 6)) * 2, 0, 1) ** 2
        car = np.sin(2 * np.pi * fc * t + 0.3 * np.sin(2 * np.pi * 7 * t)) if not cicada else \
            bandpass(rng.standard_normal(n).astype(np.float32), fs, fc * 0.7, fc * 1.3, 2)
        sw = 1 / (1 + np.exp(-6 * (slow_proc(rng, n, fs, 1, rng.uniform(5, 40)) - rng.uniform(-0.5, 0.8))))
        y += (car * am * sw * rng.uniform(0.3, 1)).astype(np.float32)
    if not np.any(y):
        return y
    return y / loud_rms(y, fs) * dbl(level_db)


def lapping(rng, n, fs, level_db):
    """Water lapping at the bank: low burbles modulated by wavelets (0.5-2 s).
    Synthesised at a low working rate (content < 1.5 kHz) and resampled."""
    ws = min(fs, 4000)
    m = int(n * ws / fs) + 1
    x = shaped_noise(rng, m, ws, lambda f: ((f > 40) & (f < 1500)) / (1 + (f / 250) ** 2))
    per = rng.uniform(0.5, 2.0)
    t = np.arange(m) / ws
    x = x * np.clip(np.sin(2 * np.pi * t / per + 2 * slow_proc(rng, m, ws, 4, 3)), 0, 1) ** 3
    x = resamp(x, ws, fs)
    return np.pad(x, (0, max(0, n - len(x))))[:n] * dbl(level_db)


def generator_hum(rng, n, fs, level_db):
    """Village diesel generator a few km away: 1500 rpm 4-cyl -> 50 Hz firing with
    half orders, far-field low-passed, propagation fading of several dB.
    Synthesised at 2 kHz (content < 400 Hz) and resampled to fs."""
    ws = 2000
    m = int(n * ws / fs) + 1
    rpm = rng.uniform(1450, 1550)
    f = np.full(m, rpm / 30.0) * (1 + 0.004 * slow_proc(rng, m, ws, 2, 5))
    x = engine_hum(rng, ws, 0, f, 0, True, 50, 800, -12, lim=600)
    x = bandpass(x, ws, None, rng.uniform(150, 350), 2)
    x = x / np.std(x) * dbl(4 * slow_proc(rng, m, ws, 1, 30))
    x = resamp(x, ws, fs)
    x = np.pad(x, (0, max(0, n - len(x))))[:n]
    return x * dbl(level_db), dict(rpm=round(rpm), firing_hz=round(rpm / 30, 2))


# ----------------------------------------------------------------------------
# recorder units
# ----------------------------------------------------------------------------
def make_unit(rng, kind):
    if kind == "memsA":     # cheap MEMS logger with analogue HP 20-40 Hz
        return dict(kind=kind, hp_hz=round(rng.uniform(20, 40), 1), hp_order=2,
                    self_noise_db_hz=round(rng.uniform(-104, -98), 1), flicker_hz=round(rng.uniform(50, 200)),
                    gain_db=round(rng.uniform(0, 8), 1), dc=round(rng.uniform(-0.01, 0.01), 4), clip=False)
    if kind == "memsB":     # cheap MEMS logger, low HP, digital gain that clips
        return dict(kind=kind, hp_hz=round(rng.uniform(8, 15), 1), hp_order=1,
                    self_noise_db_hz=round(rng.uniform(-104, -97), 1), flicker_hz=round(rng.uniform(50, 300)),
                    gain_db=round(rng.uniform(14, 24), 1), dc=round(rng.uniform(-0.02, 0.02), 4), clip=True)
    return dict(kind=kind, hp_hz=round(rng.uniform(4, 6), 1), hp_order=1,         # good unit, reaches 5 Hz
                self_noise_db_hz=round(rng.uniform(-118, -112), 1), flicker_hz=round(rng.uniform(5, 20)),
                gain_db=round(rng.uniform(0, 6), 1), dc=round(rng.uniform(-0.002, 0.002), 4), clip=False)


def unit_sos(u, fs):
    hp = signal.butter(u["hp_order"], u["hp_hz"], "highpass", fs=fs, output="sos")
    aa = signal.butter(6, 0.45 * fs, "lowpass", fs=fs, output="sos")    # anti-alias roll-off
    return np.vstack([hp, aa])


def self_noise(rng, u, n, fs):
    dens = dbl(u["self_noise_db_hz"])
    fk = u["flicker_hz"]
    x = shaped_noise(rng, n, fs, lambda f: 1 + fk / (f + 1.0))
    # scale: white part has density dens -> rms = dens*sqrt(fs/2) (approx, flicker adds)
    return x * dens * np.sqrt(fs / 2.0) * np.sqrt(np.mean(1 + fk / (np.fft.rfftfreq(4096, 1 / fs) + 1.0)))


def clip_bandlimited(y, fs):
    """Hard clipping done on 4x oversampled regions, then decimated, so that the
    clipping harmonics do not alias; returns clipped signal and clipped fraction."""
    over = np.abs(y) > 1.0
    frac = float(np.mean(over))
    if frac == 0:
        return y, 0.0
    idx = np.flatnonzero(over)
    pad = int(0.05 * fs)
    starts = [idx[0]]
    ends = []
    for a, b in zip(idx[:-1], idx[1:]):
        if b - a > 4 * pad:
            ends.append(a)
            starts.append(b)
    ends.append(idx[-1])
    for a, b in zip(starts, ends):
        a0, b0 = max(0, a - 2 * pad), min(len(y), b + 2 * pad)
        seg = signal.resample_poly(y[a0:b0], 4, 1)
        seg = np.clip(seg, -1.0, 1.0)
        seg = signal.resample_poly(seg, 1, 4)[:b0 - a0]
        w = np.ones(b0 - a0)                      # cross-fade at the region edges
        r = min(pad, (b0 - a0) // 4)
        w[:r] = np.linspace(0, 1, r)
        w[len(w) - r:] = np.linspace(1, 0, r)
        y[a0:b0] = w * seg + (1 - w) * y[a0:b0]
    return y, frac


# ----------------------------------------------------------------------------
# scene building
# ----------------------------------------------------------------------------
def build_background(rng, n, fs, free, force):
    """Background + confounder track in scene units. Returns (x, events, scene)."""
    dur = n / fs
    tod = rng.choice(["morning", "midday", "afternoon", "dusk", "night"])
    storm = (tod in ("afternoon", "dusk") and rng.random() < 0.5) or "storm" in force
    night = tod in ("dusk", "night")
    scene = dict(time_of_day=str(tod), storm=bool(storm))
    ev = []
    x = np.zeros(n, np.float32)
    amb = rng.uniform(-62, -48)
    x += ambient(rng, n, fs, amb).astype(np.float32)
    ev.append(dict(type="ambient_floor", begin=0, end=dur, level_db=round(amb, 1)))
    wstr = rng.uniform(-45, -20) if (storm or "wind" in force or rng.random() < 0.6) else None
    if wstr is not None:
        if "wind" in force:
            wstr = rng.uniform(-28, -15)
        rd = wstr - rng.uniform(8, 20)
        x += wind(rng, n, fs, wstr, rd).astype(np.float32)
        ev.append(dict(type="wind", begin=0, end=dur, buffet_db=round(wstr, 1), reeds_db=round(rd, 1)))
    if rng.random() < 0.5 or "lapping" in force:
        lv = rng.uniform(-62, -45)
        x += lapping(rng, n, fs, lv).astype(np.float32)
        ev.append(dict(type="water_lapping", begin=0, end=dur, level_db=round(lv, 1)))
    if night and rng.random() < 0.8:
        lv = rng.uniform(-50, -30)
        x += frogs(rng, n, fs, lv)
        ev.append(dict(type="painted_reed_frog_chorus", begin=0, end=dur, level_db=round(lv, 1)))
    if rng.random() < 0.7:
        cic = not night and rng.random() < 0.6
        lv = rng.uniform(-55, -30)
        x += insects(rng, n, fs, lv, cic)
        ev.append(dict(type="cicadas" if cic else "crickets", begin=0, end=dur, level_db=round(lv, 1)))
    if (night and rng.random() < 0.5) or "generator" in force:
        lv = rng.uniform(-58, -40)
        g, p = generator_hum(rng, n, fs, lv)
        x += g.astype(np.float32)
        ev.append(dict(type="village_generator", begin=0, end=dur, level_db=round(lv, 1), **p))
    if storm:
        a = rng.uniform(0, dur * 0.5)
        b = min(dur, a + rng.uniform(120, 500))
        lv = rng.uniform(-45, -22)
        x += rain(rng, n, fs, int(a * fs), int(b * fs), lv)
        ev.append(dict(type="rain", begin=round(a, 2), end=round(b, 2), level_db=round(lv, 1)))

    # discrete events: (name, function, expected count per 10 min, level range dB)
    k = 1.6 if free else 1.0
    table = [
        ("hippo", hippo, (3 if night else 1.5), (-38, -12)),
        ("lion", lion, (1.2 if night else 0.1), (-40, -15)),
        ("hyena", hyena, (1.2 if night else 0.1), (-45, -20)),
        ("buffalo_cattle", bovid, 1.0, (-45, -22)),
        ("baboon", baboon, (0.2 if night else 1.5), (-42, -18)),
        ("fish_eagle", fish_eagle, (0.1 if night else 1.5), (-42, -20)),
        ("hadeda_ibis", hadeda, (0.3 if night else 1.5), (-38, -15)),
        ("songbird", songbird, (0.5 if night else 4.0), (-50, -28)),
        ("bullfrog", bullfrog, (1.5 if night else 0.3), (-48, -28)),
        ("splashes", splashes, 1.0, (-45, -22)),
        ("boat", boat, (0.2 if night else 1.2), (-45, -18)),
        ("safari_vehicle", vehicle, (0.2 if night else 1.0), (-42, -14)),
        ("aircraft", aircraft, (0.0 if night else 0.5), (-48, -25)),
    ]
    for name, fn, lam, (l0, l1) in table:
        cnt = rng.poisson(lam * k * dur / 600)
        if name in force:
            cnt = max(cnt, 1 + int(rng.integers(0, 2)))
        for _ in range(cnt):
            y, p = fn(rng, fs)
            dist = rng.uniform(50, 1500)
            if name not in ("boat", "safari_vehicle", "aircraft"):
                y = propagate(y, fs, dist * 0.5)
                p["distance_m"] = round(dist)
            lv = rng.uniform(l0, l1)
            y = y / loud_rms(y, fs) * dbl(lv)
            t0 = rng.uniform(-0.2 * len(y) / fs, dur - 0.5)
            place(x, y, t0 * fs)
            ev.append(dict(type=name, begin=round(max(0, t0), 3), end=round(min(dur, t0 + len(y) / fs), 3),
                           level_db=round(lv, 1), **p))
    if storm:
        for _ in range(rng.integers(1, 6)):
            d = rng.uniform(800, 12000)
            y, p = thunder(rng, fs, d)
            lv = rng.uniform(-35, -12) - 10 * np.log10(d / 800)
            y = y / loud_rms(y, fs) * dbl(lv)
            t0 = rng.uniform(0, dur - 2)
            place(x, y, t0 * fs)
            ev.append(dict(type="thunder", begin=round(t0, 3), end=round(min(dur, t0 + len(y) / fs), 3),
                           level_db=round(lv, 1), **p))
    # silence gaps: a few quiet spells where everything but the floor drops away
    for _ in range(rng.integers(0, 3)):
        a = rng.uniform(0, dur - 30)
        L = rng.uniform(10, 40)
        i0, i1 = int(a * fs), int(min(dur, a + L) * fs)
        w = np.ones(i1 - i0, np.float32) * 0.05
        r = min(int(2 * fs), (i1 - i0) // 3)
        w[:r] = np.linspace(1, 0.05, r)
        w[len(w) - r:] = np.linspace(0.05, 1, r)
        x[i0:i1] *= w
        ev.append(dict(type="quiet_spell", begin=round(a, 2), end=round(min(dur, a + L), 2)))
    return x, ev, scene


def band_power(seg, fs, lo, hi):
    w = np.hanning(len(seg))
    m = sfft.next_fast_len(len(seg), real=True)
    X = np.abs(sfft.rfft(seg * w, m)) ** 2
    f = np.fft.rfftfreq(m, 1.0 / fs)
    return float(np.sum(X[(f >= lo) & (f <= hi)])) / len(seg)


def spectral_box(seg, fs, cls):
    """Real spectral extent of the isolated recorded call: frequencies where the
    smoothed power spectrum is within 30 dB of its peak."""
    w = np.hanning(len(seg))
    m = sfft.next_fast_len(len(seg), real=True)
    P = np.abs(sfft.rfft(seg * w, m)) ** 2
    f = np.fft.rfftfreq(m, 1.0 / fs)
    sm_hz = 3.0 if cls == "rumble" else 30.0
    k = max(1, int(sm_hz / (f[1] - f[0])))
    Ps = np.convolve(P, np.ones(k) / k, "same")
    Ps[f < 2] = 0
    thr = Ps.max() * 1e-3
    good = np.flatnonzero(Ps > thr)
    lo, hi = f[good[0]], f[good[-1]]
    return float(max(1.0, np.floor(lo))), float(min(fs / 2.0, np.ceil(hi)))


def make_file(seed, set_name, idx, fs, unit_kind, force, with_calls):
    rng = np.random.default_rng([seed, 1 if set_name == "calls" else 2, idx])
    n = int(DUR * fs)
    u = make_unit(rng, unit_kind)
    sos = unit_sos(u, fs)
    bg, events, scene = build_background(rng, n, fs, not with_calls, force)
    bg += self_noise(rng, u, n, fs).astype(np.float32)
    N = signal.sosfilt(sos, bg).astype(np.float32)
    del bg
    C = np.zeros(n, np.float32)
    calls = []
    if with_calls:
        ncall = int(rng.integers(20, 51))
        eps = [(rng.uniform(30, DUR - 30), rng.uniform(20, 90)) for _ in range(rng.integers(2, 5))]
        todo = []
        while len(todo) < ncall:
            cls = rng.choice(["rumble", "roar", "cry", "trumpet"], p=[0.6, 0.12, 0.14, 0.14])
            if rng.random() < 0.15:
                t0 = rng.uniform(1, DUR - 10)
            else:
                c, s = eps[rng.integers(len(eps))]
                t0 = float(np.clip(rng.normal(c, s), 1, DUR - 10))
            todo.append((str(cls), t0))
            if cls == "rumble" and rng.random() < 0.3 and len(todo) < ncall:   # answering rumble (overlap)
                todo.append(("rumble", t0 + rng.uniform(0.3, 3.0)))
        for cls, t0 in todo:
            ws = min(fs, 2000) if cls == "rumble" else fs
            src, p = CALLS[cls](rng, ws)
            snr_t = rng.uniform(-10, 0) if rng.random() < 0.3 else rng.uniform(0, 30)
            # distance follows the intended SNR (far calls lose their high harmonics)
            dist = 10 ** (np.log10(25) + (30 - snr_t) / 40 * np.log10(2500 / 25) + rng.normal(0, 0.15))
            y = propagate(src, ws, dist)
            rt = rng.uniform(0.3, 1.2)
            wet = float(np.clip(0.05 + 0.35 * np.log10(dist / 20) / 2.0, 0.05, 0.5))
            y = reverb(rng, y, ws, rt, wet)
            y = resamp(y, ws, fs)
            L = int(len(src) * fs / ws)                     # source extent at fs
            y = signal.sosfilt(sos, np.concatenate([y, np.zeros(int(0.1 * fs))]))
            i0 = int(round(t0 * fs))
            if i0 + L > n:
                continue
            seg = y[:L]
            lo, hi = spectral_box(seg, fs, cls)
            pn = band_power(N[i0:i0 + L].astype(np.float64), fs, lo, hi)
            pc = band_power(seg, fs, lo, hi)
            y *= np.sqrt(pn * 10 ** (snr_t / 10) / (pc + 1e-30))
            place(C, y, i0)
            calls.append(dict(cls=cls, i0=i0, L=L, lo=lo, hi=hi, y=y.astype(np.float32), dist=dist,
                              rt60=rt, wet=wet, params=p))
    # recorder gain, keep non-clipping units below full scale (auto-level)
    g = dbl(u["gain_db"])
    pk = float(np.max(np.abs(N + C))) * g + abs(u["dc"])
    if not u["clip"] and pk > 0.95:
        g *= 0.95 / pk
    if u["clip"]:       # digital gain clips loud near sounds, but limit to a few %
        q = np.quantile(np.abs(N + C), 0.995) * g
        if q > 1.0:
            g /= q
    mix = (N + C).astype(np.float64) * g + u["dc"]
    frac = 0.0
    if u["clip"]:
        mix, frac = clip_bandlimited(mix, fs)
    mix += rng.uniform(-0.5, 0.5, n) / 32768 + rng.uniform(-0.5, 0.5, n) / 32768   # TPDF dither
    mix = np.clip(mix, -1.0, 32767 / 32768)
    u["applied_gain_db"] = round(20 * np.log10(g), 2)
    u["clipped_fraction"] = frac
    # SNR measured on the isolated recorded call vs everything else (gain cancels)
    rows, cmeta = [], []
    calls.sort(key=lambda c: c["i0"])
    for j, c in enumerate(calls):
        i0, L = c["i0"], c["L"]
        pc = band_power(g * c["y"][:L].astype(np.float64), fs, c["lo"], c["hi"])
        pn = band_power(g * N[i0:i0 + L].astype(np.float64), fs, c["lo"], c["hi"])
        snr = 10 * np.log10(pc / pn)
        b, e = i0 / fs, (i0 + L) / fs
        rows.append(f"{j + 1}\tSpectrogram 1\t1\t{b:.4f}\t{e:.4f}\t{c['lo']:.1f}\t{c['hi']:.1f}\t{c['cls']}\t{snr:.2f}")
        cmeta.append(dict(selection=j + 1, cls=c["cls"], begin=round(b, 4), end=round(e, 4), low_hz=c["lo"],
                          high_hz=c["hi"], snr_db=round(snr, 2), distance_m=round(c["dist"], 1),
                          rt60_s=round(c["rt60"], 2), reverb_wet=round(c["wet"], 3), **c["params"]))
    return mix, rows, dict(fs=fs, duration_s=DUR, set=set_name, unit=u, scene=scene, calls=cmeta,
                           confounders=events)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--set", choices=["calls", "free"], required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--seed", type=int, required=True)
    ap.add_argument("--meta", required=True)
    a = ap.parse_args()
    os.makedirs(a.out, exist_ok=True)
    os.makedirs(a.meta, exist_ok=True)
    jobs = []
    units = ["memsA", "memsB", "good"]
    if a.set == "calls":
        for r, fs in enumerate(RATES):
            for k in range(2):
                i = 2 * r + k
                jobs.append((i, f"calls_{fs}_{k + 1}", fs, units[(i + r) % 3], []))
    else:
        hard = [["safari_vehicle", "generator"], ["hippo", "wind"], ["storm", "hippo"], ["boat", "aircraft"],
                ["lion", "hippo", "generator"], ["safari_vehicle", "wind"], ["storm", "buffalo_cattle"],
                ["hippo", "lapping", "splashes"], ["boat", "safari_vehicle"], ["generator", "lion", "hyena"],
                ["storm", "wind", "aircraft"], ["hippo", "baboon", "safari_vehicle"]]
        for i in range(12):
            fs = RATES[i % 7]
            jobs.append((i, f"free_{i + 1:02d}_{fs}", fs, units[i % 3], hard[i]))
    for i, name, fs, uk, force in jobs:
        t = time.time()
        mix, rows, meta = make_file(a.seed, a.set, i, fs, uk, force, a.set == "calls")
        sf.write(os.path.join(a.out, name + ".wav"), mix, fs, subtype="PCM_16")
        with open(os.path.join(a.out, name + ".selections.txt"), "w") as fh:
            fh.write(HEADER + "\n" + "".join(r + "\n" for r in rows))
        meta.update(file=name + ".wav", seed=a.seed, force=force)
        with open(os.path.join(a.meta, name + ".json"), "w") as fh:
            json.dump(meta, fh, indent=1, default=float)
        print(f"{name}: {len(rows)} calls, {time.time() - t:.1f}s", flush=True)


if __name__ == "__main__":
    main()
