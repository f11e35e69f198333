#!/usr/bin/env python3
"""Synthetic elephant soundscapes with Raven ground truth (numpy/scipy/soundfile only).

CLI:
  python models/soundscape.py --seed 7 --minutes 10 --rate 16000 --out x.wav
      writes x.wav (16-bit mono at the recorder rate) and x.selections.txt
      (Raven selection table of the calls; --confounder-table also writes the
      confounder events to x.confounders.txt)
  python models/soundscape.py --seed 9 --minutes 60 --no-calls --out conf.wav
  python models/soundscape.py --preset demo --seed 3 --out models/demo/demo.wav

Library:
  from soundscape import generate, write_wav, write_raven
  sc = generate(seed=7, duration_s=600, rate=8000)
  sc.audio (float32 at sc.rate, exactly int16/32768), sc.calls, sc.confounders

Everything is a deterministic function of the arguments (numpy PCG64 seeded
with --seed). See models/README.md for the acoustics modelled.
"""
from __future__ import annotations

import argparse
import dataclasses
import math
import os
import sys
from math import gcd

import numpy as np
from scipy import signal

CLASSES = ("rumble", "roar", "cry", "trumpet")
CLASS_WEIGHTS = {"rumble": 0.45, "roar": 0.15, "cry": 0.15, "trumpet": 0.25}
CONFOUNDERS = ("wind", "rain", "thunder", "engine", "vehicle", "birds", "dove", "insects",
               "gaps", "clipping")
# Kinds a scene holds only when asked for by name (confounders=...), so that every seed's
# default scene, and with it every test set made so far, stays exactly as it was.
EXTRA_CONFOUNDERS = ("leaves", "chorus", "livestock")
ALL_CONFOUNDERS = CONFOUNDERS + EXTRA_CONFOUNDERS
# A windy day in wooded or grass country: the kinds of train.py's --day-scenes and of
# evaluate.py's --windy-day-minutes.
WINDY_DAY = ("leaves", "chorus", "wind", "birds", "insects")

# per confounder kind: (probability the kind is present in a scene,
#                       events per minute when present (lo, hi),
#                       level in dB relative to the base noise RMS (lo, hi))
SCENE = {
    "wind": (0.45, (0.3, 1.5), (0.0, 18.0)),
    "rain": (0.2, (0.1, 0.5), (0.0, 12.0)),
    "thunder": (0.2, (0.1, 0.6), (8.0, 28.0)),
    "engine": (0.35, (0.1, 0.5), (0.0, 25.0)),
    "vehicle": (0.3, (0.1, 0.8), (5.0, 25.0)),
    "birds": (0.55, (0.5, 4.0), (-5.0, 18.0)),
    "dove": (0.2, (0.2, 1.5), (-5.0, 15.0)),
    "insects": (0.4, (0.2, 1.0), (-8.0, 10.0)),
    "gaps": (0.12, (0.05, 0.3), (0.0, 0.0)),
    "clipping": (0.1, (0.0, 0.0), (0.0, 0.0)),
    "leaves": (0.4, (0.3, 1.0), (0.0, 15.0)),
    "chorus": (0.4, (0.1, 0.4), (-5.0, 12.0)),
    "livestock": (0.4, (0.1, 0.6), (-5.0, 20.0)),
}


@dataclasses.dataclass
class Call:
    cls: str
    begin: float
    end: float
    low: float
    high: float
    snr_db: float = float("nan")  # in-band SNR over [begin, end], as the recorder sees it
    distance: float = 0.0


@dataclasses.dataclass
class Event:
    kind: str
    begin: float
    end: float
    level_db: float = 0.0


@dataclasses.dataclass
class Soundscape:
    audio: np.ndarray  # float32 at `rate`, values int16 / 32768
    rate: int
    calls: list
    confounders: list
    meta: dict


# ----------------------------------------------------------------------------- helpers

def smooth_noise(n: int, sr: float, rng, rate_hz: float) -> np.ndarray:
    """Smooth random process, about unit std, with `rate_hz` random knots per second."""
    m = max(2, int(n / sr * rate_hz) + 2)
    knots = rng.standard_normal(m)
    x = np.interp(np.linspace(0.0, m - 1.0, n), np.arange(m), knots)
    return x


def envelope(n: int, sr: float, attack: float, release: float) -> np.ndarray:
    env = np.ones(n)
    na = max(1, min(n // 2, int(attack * sr)))
    nr = max(1, min(n - na, int(release * sr)))
    env[:na] = 0.5 - 0.5 * np.cos(np.pi * np.arange(na) / na)
    env[n - nr:] = 0.5 + 0.5 * np.cos(np.pi * np.arange(nr) / nr)
    return env


def sos_filter(x: np.ndarray, sr: float, lo: float | None, hi: float | None, order: int = 2):
    nyq = sr / 2
    if hi is not None and hi >= 0.98 * nyq:
        hi = None
    if lo is not None and lo <= 0.5:
        lo = None
    if lo is None and hi is None:
        return x
    if lo is not None and hi is not None:
        if lo >= hi:
            return np.zeros_like(x)
        sos = signal.butter(order, [lo, hi], btype="bandpass", fs=sr, output="sos")
    elif lo is not None:
        sos = signal.butter(order, lo, btype="highpass", fs=sr, output="sos")
    else:
        sos = signal.butter(order, hi, btype="lowpass", fs=sr, output="sos")
    return signal.sosfilt(sos, x)


def rms(x: np.ndarray) -> float:
    return float(np.sqrt(np.mean(np.square(x, dtype=np.float64)) + 1e-30))


def unit(x: np.ndarray) -> np.ndarray:
    return x / rms(x)


def band_power(x: np.ndarray, sr: float, lo: float, hi: float) -> float:
    """Mean power of x in the band [lo, hi] Hz (Parseval over an rfft)."""
    n = len(x)
    if n == 0:
        return 0.0
    spec = np.fft.rfft(x)
    f = np.fft.rfftfreq(n, 1.0 / sr)
    m = (f >= lo) & (f <= hi)
    return float(2.0 * np.sum(np.abs(spec[m]) ** 2) / n ** 2)


def harmonic_stack(f0: np.ndarray, sr: float, amp_fn, fmax: float, rng,
                   floor_db: float = -35.0):
    """Sum of harmonics k*f0(t) with amplitude amp_fn(freq_array, k), up to fmax.

    Returns (signal, lowest frequency, highest harmonic within floor_db of the
    strongest one, judged at the mean f0)."""
    n = len(f0)
    fmax = min(fmax, 0.45 * sr)
    phase = 2 * np.pi * np.cumsum(f0) / sr
    kmax = max(1, int(fmax / max(np.min(f0), 1.0)))
    out = np.zeros(n)
    fm = float(np.mean(f0))
    amps_mean = []
    for k in range(1, kmax + 1):
        fk = k * f0
        a = amp_fn(fk, k) * np.clip((fmax - fk) / (0.1 * fmax), 0.0, 1.0)
        if not np.any(a > 0):
            break
        out += a * np.sin(k * phase + rng.uniform(0, 2 * np.pi))
        amps_mean.append((k * fm, float(np.mean(a))))
    top = max(a for _, a in amps_mean) if amps_mean else 0.0
    thr = top * 10 ** (floor_db / 20)
    high = max([f for f, a in amps_mean if a >= thr], default=fm)
    return out, float(np.min(f0)), float(high)


def resample(x: np.ndarray, sr_from: int, sr_to: int) -> np.ndarray:
    """scipy.signal.resample_poly with the reduced integer ratio (what rumbled models)."""
    if sr_from == sr_to:
        return x
    g = gcd(int(sr_from), int(sr_to))
    return signal.resample_poly(x, int(sr_to) // g, int(sr_from) // g)


def distance_lp(f, fc):
    return 1.0 / (1.0 + (f / fc) ** 2)


# ----------------------------------------------------------------------------- calls

CALL_DURATION = {"rumble": (1.0, 8.0), "roar": (1.0, 3.0), "cry": (0.5, 2.5),
                 "trumpet": (0.3, 2.0)}


def synth_rumble(rng, sr, dur, distance):
    """Infrasonic harmonic stack: f0 8-25 Hz, harmonics to a few hundred Hz,
    formant-like resonances, flat/arched/rising/falling contour."""
    n = int(round(dur * sr))
    u = np.arange(n) / max(1, n - 1)
    f0b = rng.uniform(8.0, 25.0)
    shape = rng.choice(["flat", "arch", "arch", "rise", "fall"])
    depth = rng.uniform(0.05, 0.45)
    if shape == "flat":
        c = 0.05 * smooth_noise(n, sr, rng, 0.5)
    elif shape == "arch":
        c = np.sin(np.pi * u) ** rng.uniform(0.5, 2.0)
    elif shape == "rise":
        c = u
    else:
        c = 1.0 - u
    f0 = f0b * (1.0 + depth * c + 0.015 * smooth_noise(n, sr, rng, 4.0))
    f0 = np.maximum(f0, 6.0)
    fmax = rng.uniform(150.0, 600.0)
    tilt = rng.uniform(0.2, 1.0)
    nform = rng.integers(1, 4)
    centres = [rng.uniform(30, 60), rng.uniform(100, 200), rng.uniform(250, 400)][:nform]
    forms = [(fc, rng.uniform(15, 60), rng.uniform(1.5, 8.0)) for fc in centres]
    fc_dist = 1000.0 * 10 ** (-1.2 * distance)

    def amp(f, k):
        a = k ** -tilt * distance_lp(f, fc_dist)
        res = 1.0
        for c0, bw, g in forms:
            res = res + g * np.exp(-0.5 * ((f - c0) / bw) ** 2)
        return a * res

    sig, low, high = harmonic_stack(f0, sr, amp, fmax, rng)
    sig = unit(sig)
    breath = unit(sos_filter(rng.standard_normal(n), sr, 10.0, min(fmax, fc_dist * 2)))
    sig = sig + rng.uniform(0.03, 0.2) * breath
    env = envelope(n, sr, rng.uniform(0.1, 0.35) * dur, rng.uniform(0.15, 0.4) * dur)
    env *= np.clip(1.0 + 0.12 * smooth_noise(n, sr, rng, 2.0), 0.3, 2.0)
    return sig * env, low, high


def synth_roar(rng, sr, dur, distance):
    """Noisy broadband roar, 0.1-3 kHz, with chaotic voicing and rough AM."""
    n = int(round(dur * sr))
    t = np.arange(n) / sr
    lo = rng.uniform(80, 200)
    hi = rng.uniform(1500, 3500)
    noise = unit(sos_filter(rng.standard_normal(n), sr, lo, hi))
    peak = rng.uniform(300, 1000)
    noise += rng.uniform(0.5, 1.5) * unit(sos_filter(rng.standard_normal(n), sr, peak * 0.7,
                                                     peak * 1.4))
    f0 = rng.uniform(100, 300) * (1 + rng.uniform(0.05, 0.15) * smooth_noise(n, sr, rng, 20))
    f0 = np.maximum(f0, 40.0)
    tilt = rng.uniform(0.6, 1.2)
    voiced, _, _ = harmonic_stack(f0, sr, lambda f, k: k ** -tilt, hi, rng)
    sig = noise + rng.uniform(0.2, 1.0) * unit(voiced)
    fm = rng.uniform(8, 30)
    am = 1 + rng.uniform(0.2, 0.6) * np.sin(2 * np.pi * fm * t + rng.uniform(0, 6.3))
    am *= np.clip(1 + 0.2 * smooth_noise(n, sr, rng, 6), 0.2, 2)
    fc = 4000.0 * 10 ** (-0.8 * distance)
    sig = sos_filter(sig * am, sr, None, fc)
    env = envelope(n, sr, rng.uniform(0.05, 0.2), rng.uniform(0.2, 0.6))
    return sig * env, lo, min(hi, fc * 1.5)


def synth_cry(rng, sr, dur, distance):
    """Tonal cry: f0 of a few hundred Hz with vibrato and few harmonics."""
    n = int(round(dur * sr))
    t = np.arange(n) / sr
    u = t / dur
    f0b = rng.uniform(250, 600)
    contour = rng.uniform(-0.05, 0.15) * np.sin(np.pi * u) + rng.uniform(-0.15, 0.05) * u
    vib = rng.uniform(0.01, 0.05) * np.sin(2 * np.pi * rng.uniform(4, 10) * t +
                                           rng.uniform(0, 6.3))
    f0 = f0b * (1 + contour + vib + 0.005 * smooth_noise(n, sr, rng, 10))
    tilt = rng.uniform(1.0, 2.0)
    fc = 5000.0 * 10 ** (-0.8 * distance)
    sig, low, high = harmonic_stack(f0, sr, lambda f, k: k ** -tilt * distance_lp(f, fc),
                                    rng.uniform(1000, 2500), rng)
    sig = unit(sig) + 0.03 * unit(sos_filter(rng.standard_normal(n), sr, low, high))
    env = envelope(n, sr, rng.uniform(0.05, 0.2), rng.uniform(0.1, 0.4))
    env *= np.clip(1 + 0.1 * smooth_noise(n, sr, rng, 5), 0.3, 2)
    return sig * env, low, high


def synth_trumpet(rng, sr, dur, distance):
    """Loud, noisy trumpet: f0 a few hundred Hz, harmonics well into kHz."""
    n = int(round(dur * sr))
    u = np.arange(n) / max(1, n - 1)
    f0b = rng.uniform(250, 700)
    contour = rng.uniform(0.0, 0.25) * np.sin(np.pi * u) ** 0.5 - rng.uniform(0, 0.1) * u
    f0 = f0b * (1 + contour + rng.uniform(0.01, 0.04) * smooth_noise(n, sr, rng, 30))
    tilt = rng.uniform(0.3, 0.8)
    fc = 8000.0 * 10 ** (-0.9 * distance)
    fmax = rng.uniform(3000, 7000)
    sig, low, high = harmonic_stack(f0, sr, lambda f, k: k ** -tilt * distance_lp(f, fc),
                                    fmax, rng)
    noise = unit(sos_filter(rng.standard_normal(n), sr, 500, min(fmax, 0.45 * sr)))
    noise = sos_filter(noise, sr, None, fc)
    sig = unit(sig) + rng.uniform(0.2, 0.6) * noise
    env = envelope(n, sr, rng.uniform(0.02, 0.08), rng.uniform(0.05, 0.3))
    env *= np.clip(1 + 0.15 * smooth_noise(n, sr, rng, 12), 0.3, 2)
    return sig * env, low, high


SYNTH = {"rumble": synth_rumble, "roar": synth_roar, "cry": synth_cry,
         "trumpet": synth_trumpet}
# rate each source is synthesised at before it is resampled to the mixing rate
# (all its content lies below half of it; keeps long low-frequency sources cheap)
SYNTH_RATE = {"rumble": 4000, "roar": 16000, "cry": 16000, "trumpet": 16000,
              "wind": 8000, "rain": 16000, "thunder": 16000, "engine": 4000,
              "vehicle": 8000, "birds": 16000, "dove": 16000, "insects": 16000,
              "leaves": 8000, "chorus": 16000, "livestock": 16000}


def add_reverb(rng, sr, x):
    rt60 = rng.uniform(0.3, 1.5)
    L = int(rt60 * sr)
    t = np.arange(L) / sr
    ir = rng.standard_normal(L) * np.exp(-6.9 * t / rt60)
    ir /= np.sqrt(np.sum(ir ** 2))
    wet = signal.fftconvolve(x, ir)
    out = np.zeros(len(wet))
    out[:len(x)] = x
    return out + rng.uniform(0.1, 0.3) * wet


# ----------------------------------------------------------------------------- confounders

def conf_wind(rng, sr, dur):
    n = int(dur * sr)
    x = unit(sos_filter(rng.standard_normal(n), sr, None, rng.uniform(40, 400), order=2))
    x += rng.uniform(0.0, 0.3) * unit(sos_filter(rng.standard_normal(n), sr, 200, 3000))
    gust = np.exp(rng.uniform(0.4, 1.3) * smooth_noise(n, sr, rng, rng.uniform(0.1, 1.0)))
    return x * gust * envelope(n, sr, min(3.0, dur / 4), min(3.0, dur / 4))


def conf_rain(rng, sr, dur):
    n = int(dur * sr)
    x = unit(sos_filter(rng.standard_normal(n), sr, 400, 7000))
    rate = rng.uniform(20, 200)
    k = rng.poisson(rate * dur)
    imp = np.zeros(n)
    imp[rng.integers(0, n, k)] = rng.lognormal(0, 0.8, k)
    kern_t = np.arange(int(0.006 * sr)) / sr
    kern = np.sin(2 * np.pi * rng.uniform(1500, 5000) * kern_t) * np.exp(-kern_t / 0.0015)
    drops = sos_filter(signal.fftconvolve(imp, kern)[:n], sr, 800, 7500)
    x = x + rng.uniform(0.5, 2.0) * unit(drops)
    return x * envelope(n, sr, min(5.0, dur / 4), min(5.0, dur / 4))


def conf_thunder(rng, sr, dur):
    n = int(dur * sr)
    t = np.arange(n) / sr
    x = unit(sos_filter(rng.standard_normal(n), sr, None, rng.uniform(80, 300), order=2))
    env = np.zeros(n)
    for _ in range(rng.integers(1, 5)):
        t0 = rng.uniform(0, dur * 0.6)
        a = rng.uniform(0.05, 0.5)
        tau = rng.uniform(0.5, 3.0)
        e = np.where(t < t0, 0.0, np.minimum(1.0, (t - t0) / a) * np.exp(-np.maximum(0, t - t0 - a) / tau))
        env += rng.uniform(0.3, 1.0) * e
    y = x * env
    if rng.random() < 0.5:  # a near strike: broadband crack
        nc = int(rng.uniform(0.1, 0.4) * sr)
        crack = rng.standard_normal(nc) * np.exp(-np.arange(nc) / (0.08 * sr))
        y[:nc] += rng.uniform(0.5, 2.0) * crack
    return y


def conf_engine(rng, sr, dur):
    """Generator / pump / idling engine: steady low harmonic hum (rumble look-alike)."""
    n = int(dur * sr)
    if rng.random() < 0.4:
        f0b = float(rng.choice([25.0, 30.0, 50.0, 60.0])) * rng.uniform(0.98, 1.02)
    else:
        f0b = rng.uniform(12, 60)
    f0 = f0b * (1 + rng.uniform(0.001, 0.006) * smooth_noise(n, sr, rng, 0.5))
    nh = 64
    hamp = rng.lognormal(0, 0.8, nh) * np.arange(1, nh + 1) ** -rng.uniform(0.3, 1.2)
    if rng.random() < 0.5:  # odd-harmonic dominated
        hamp[1::2] *= rng.uniform(0.05, 0.5)
    sig, _, _ = harmonic_stack(f0, sr, lambda f, k: hamp[min(k, nh) - 1], rng.uniform(300, 1500),
                               rng)
    mech = unit(sos_filter(rng.standard_normal(n), sr, 50, 2000))
    y = unit(sig) + rng.uniform(0.05, 0.3) * mech
    return y * envelope(n, sr, rng.uniform(0.5, 5), rng.uniform(0.5, 5))


def conf_vehicle(rng, sr, dur):
    """A vehicle passing: engine harmonics with changing rpm and a pass-by level."""
    n = int(dur * sr)
    t = np.arange(n) / sr
    f0 = rng.uniform(15, 45) * (1 + 0.2 * smooth_noise(n, sr, rng, 0.15))
    f0 = np.maximum(f0, 8.0)
    tilt = rng.uniform(0.4, 1.2)
    sig, _, _ = harmonic_stack(f0, sr, lambda f, k: k ** -tilt, rng.uniform(400, 1200), rng)
    tyre = unit(sos_filter(rng.standard_normal(n), sr, 30, rng.uniform(800, 2500)))
    y = unit(sig) + rng.uniform(0.3, 1.0) * tyre
    tc = rng.uniform(0.3, 0.7) * dur
    w = dur / rng.uniform(3, 6)
    return y * np.exp(-0.5 * ((t - tc) / w) ** 2)


def conf_birds(rng, sr, dur):
    n = int(dur * sr)
    y = np.zeros(n)
    nchirp = max(1, rng.poisson(dur * rng.uniform(1, 6)))
    top = 0.45 * sr
    for _ in range(nchirp):
        d = rng.uniform(0.03, 0.3)
        m = int(d * sr)
        if m < 8:
            continue
        i0 = rng.integers(0, max(1, n - m))
        fa = rng.uniform(1200, min(7500, top))
        fb = min(top * 0.95, fa * rng.uniform(0.6, 1.6))
        f = np.linspace(fa, fb, m) * (1 + 0.03 * np.sin(2 * np.pi * rng.uniform(10, 60) *
                                                        np.arange(m) / sr))
        ph = 2 * np.pi * np.cumsum(f) / sr
        c = np.sin(ph)
        if 2 * max(fa, fb) < top:
            c += rng.uniform(0, 0.3) * np.sin(2 * ph)
        y[i0:i0 + m] += rng.uniform(0.3, 1.0) * c * np.hanning(m)
    return y


def conf_dove(rng, sr, dur):
    """Dove-like coos: low tonal notes of a few hundred Hz (cry look-alike)."""
    n = int(dur * sr)
    y = np.zeros(n)
    t = 0.0
    while t < dur - 0.3:
        d = rng.uniform(0.2, 0.8)
        m = int(min(d, dur - t) * sr)
        if m < 16:
            break
        f = rng.uniform(350, 700) * np.linspace(1.0, rng.uniform(0.85, 1.0), m)
        ph = 2 * np.pi * np.cumsum(f) / sr
        c = np.sin(ph) + 0.15 * np.sin(2 * ph) + 0.05 * np.sin(3 * ph)
        i0 = int(t * sr)
        y[i0:i0 + m] += c * envelope(m, sr, 0.3 * d, 0.4 * d)
        t += d + rng.uniform(0.1, 0.6)
    return y


def conf_insects(rng, sr, dur):
    n = int(dur * sr)
    t = np.arange(n) / sr
    top = 0.45 * sr
    if rng.random() < 0.5:  # cicada-like buzz
        fc = rng.uniform(3000, 7000)
        bw = rng.uniform(300, 2000)
        x = unit(sos_filter(rng.standard_normal(n), sr, fc - bw / 2, min(fc + bw / 2, top)))
        am = 0.5 + 0.5 * np.sign(np.sin(2 * np.pi * rng.uniform(30, 200) * t))
        y = x * (0.3 + am)
    else:  # cricket chirps
        f = rng.uniform(3500, 5500)
        pulse = (np.sin(2 * np.pi * rng.uniform(20, 40) * t) > 0.3).astype(float)
        chirp = (np.sin(2 * np.pi * rng.uniform(1.5, 4) * t) > 0.0).astype(float)
        y = np.sin(2 * np.pi * f * t) * pulse * chirp
        y = sos_filter(y, sr, 1000, top)
    return y * envelope(n, sr, min(2.0, dur / 4), min(2.0, dur / 4))


def conf_leaves(rng, sr, dur):
    """Wind in leaves or grass: broadband swells from 60-200 Hz up to 0.8-3 kHz, a gust
    every few seconds, each rising and falling over one to five seconds. conf_wind is the
    wind on the microphone (mostly below 400 Hz); these swells reach into the band of roars
    and rumble harmonics, and on real days they were false "roars" (models/README.md,
    "Real ambiences")."""
    n = int(dur * sr)
    x = unit(sos_filter(rng.standard_normal(n), sr, rng.uniform(60, 200),
                        rng.uniform(800, 3000), order=1))
    flutter = np.exp(rng.uniform(0.2, 0.6) * smooth_noise(n, sr, rng, rng.uniform(4, 20)))
    swells = np.full(n, rng.uniform(0.05, 0.3))  # between gusts the leaves still stir
    t = rng.uniform(-1.0, 2.0)
    while t < dur:
        width = rng.uniform(1.0, 5.0)
        i0, i1 = max(0, int(t * sr)), min(n, int((t + width) * sr))
        if i1 > i0:
            phase = (np.arange(i0, i1) / sr - t) / width
            swells[i0:i1] += rng.uniform(0.3, 1.0) * np.sin(np.pi * phase) ** 2
        t += width * rng.uniform(0.6, 2.5)
    return x * flutter * swells * envelope(n, sr, min(2.0, dur / 4), min(2.0, dur / 4))


def conf_chorus(rng, sr, dur):
    """An insect chorus: several cicadas and crickets at once (conf_insects is one), each
    singing for part of a long stretch, at 3-7 kHz; the din under real daytime wind."""
    n = int(dur * sr)
    y = np.zeros(n)
    for _ in range(rng.integers(3, 10)):
        d = dur * rng.uniform(0.3, 1.0)
        i0 = int(rng.uniform(0, dur - d) * sr)
        voice = conf_insects(rng, sr, d)[: n - i0]
        y[i0:i0 + len(voice)] += rng.uniform(0.2, 1.0) * unit(voice)
    return y


def formants(f, centres, widths, gain_db):
    """Gain of resonances (Gaussian bumps in dB) at frequencies f: a voice tract's."""
    g = np.zeros_like(f)
    for fc, bw, db in zip(centres, widths, gain_db):
        g += db * np.exp(-0.5 * ((f - fc) / bw) ** 2)
    return 10 ** (g / 20)


def bleat(rng, sr, dur):
    """A goat's or sheep's bleat: a harmonic voice of 150-700 Hz (kids and lambs the
    highest) whose quaver, a 6-25 Hz tremolo with a little vibrato, shakes it through
    most of its length, with nasal resonances near 0.5-0.9 and 1.5-2.5 kHz. It sits in
    the band of cries and trumpets; real ones were false "trumpets" (models/README.md,
    "Four generators")."""
    n = int(round(dur * sr))
    t = np.arange(n) / sr
    u = t / dur
    rate = rng.uniform(6, 25)
    quaver = np.sin(2 * np.pi * rate * t + rng.uniform(0, 6.3))
    f0 = rng.uniform(150, 700) * (1 + rng.uniform(0.0, 0.2) * np.sin(np.pi * u) ** 0.5 -
                                  rng.uniform(0.0, 0.15) * u +
                                  rng.uniform(0.005, 0.04) * quaver)
    tilt = rng.uniform(0.6, 1.3)
    res = ([rng.uniform(500, 900), rng.uniform(1500, 2500)], [150, 300],
           [rng.uniform(6, 15), rng.uniform(3, 12)])
    sig, low, high = harmonic_stack(
        f0, sr, lambda f, k: k ** -tilt * formants(f, *res), rng.uniform(3000, 6000), rng)
    sig = unit(sig) + rng.uniform(0.05, 0.3) * unit(sos_filter(rng.standard_normal(n), sr,
                                                               low, high))
    am = 1 - rng.uniform(0.3, 0.9) * 0.5 * (1 + quaver)
    return sig * am * envelope(n, sr, rng.uniform(0.03, 0.15), rng.uniform(0.05, 0.3))


def moo(rng, sr, dur):
    """Cattle's moo: an arched 90-200 Hz voice opening from a closed "m" (everything
    above 300-500 Hz muffled) to an open vowel with its first resonance at 300-700 Hz."""
    n = int(round(dur * sr))
    u = np.arange(n) / max(1, n - 1)
    f0 = rng.uniform(90, 200) * (1 + rng.uniform(0.1, 0.4) * np.sin(np.pi * u ** 0.7) +
                                 0.01 * smooth_noise(n, sr, rng, 8))
    tilt = rng.uniform(1.0, 1.6)
    res = ([rng.uniform(300, 700), rng.uniform(900, 1600)], [120, 250],
           [rng.uniform(6, 12), rng.uniform(3, 9)])
    sig, low, high = harmonic_stack(
        f0, sr, lambda f, k: k ** -tilt * formants(f, *res), rng.uniform(1500, 3000), rng)
    opening = np.clip(u / rng.uniform(0.1, 0.35), 0, 1)
    closed = sos_filter(sig, sr, None, rng.uniform(300, 500))
    sig = (1 - opening) * unit(closed) + opening * unit(sig)
    return sig * envelope(n, sr, rng.uniform(0.1, 0.3), rng.uniform(0.2, 0.6))


def conf_livestock(rng, sr, dur):
    """A herd nearby: goats or sheep bleating, now and then a cow, in bouts with pauses,
    each animal at its own distance (level)."""
    n = int(dur * sr)
    y = np.zeros(n)
    t = rng.uniform(0, 2.0)
    while t < dur - 0.5:
        if rng.random() < 0.75:
            call = bleat(rng, sr, min(rng.uniform(0.4, 1.4), dur - t))
        else:
            call = moo(rng, sr, min(rng.uniform(0.8, 3.0), dur - t))
        i0 = int(t * sr)
        call = call[: n - i0]
        y[i0:i0 + len(call)] += 10 ** (rng.uniform(-15, 0) / 20) * unit(call)
        t += len(call) / sr + rng.exponential(2.0)
    return y


CONF_SYNTH = {"wind": (conf_wind, (10, 120)), "rain": (conf_rain, (30, 180)),
              "thunder": (conf_thunder, (3, 15)), "engine": (conf_engine, (20, 180)),
              "vehicle": (conf_vehicle, (10, 60)), "birds": (conf_birds, (1, 8)),
              "dove": (conf_dove, (2, 8)), "insects": (conf_insects, (5, 60)),
              "leaves": (conf_leaves, (20, 180)), "chorus": (conf_chorus, (30, 300)),
              "livestock": (conf_livestock, (5, 90))}


def base_noise(rng, sr, n):
    """Stationary background: a random mix of white, pink and brown noise."""
    w = rng.standard_normal(n).astype(np.float32)
    pink = signal.lfilter([0.049922035, -0.095993537, 0.050612699, -0.004408786],
                          [1, -2.494956002, 2.017265875, -0.522189400], w)
    pole = math.exp(-2 * math.pi * 10.0 / sr)
    brown = signal.lfilter([1.0], [1.0, -pole], rng.standard_normal(n).astype(np.float32))
    mix = rng.dirichlet([1.0, 2.0, 2.0])
    x = mix[0] * w / rms(w) + mix[1] * pink / rms(pink) + mix[2] * brown / rms(brown)
    return (x / rms(x)).astype(np.float32)


# ----------------------------------------------------------------------------- generator

def mix_recordings(rng, bg: np.ndarray, G: int, recordings: list, rate: tuple,
                   level: tuple) -> list:
    """Add bursts of real recordings to the background bg (at G Hz), each burst one
    to three recordings in a row at one level, as a talk or a herd would come; their
    own rng, so scenes without recordings stay exactly as they were."""
    duration_s = len(bg) / G
    events = []
    for _ in range(rng.poisson(rng.uniform(*rate) * duration_s / 60.0)):
        t = rng.uniform(0, duration_s)
        lvl = rng.uniform(*level)
        for _ in range(rng.integers(1, 4)):
            x, sr = recordings[rng.integers(len(recordings))]
            i0 = int(t * G)
            if i0 >= len(bg):
                break
            y = resample(np.asarray(x, np.float64), sr, G)[: len(bg) - i0]
            if len(y) == 0 or rms(y) < 1e-6:
                break
            bg[i0:i0 + len(y)] += 10 ** (lvl / 20) * unit(y)
            events.append(Event("recording", t, t + len(y) / G, float(lvl)))
            t += len(y) / G + rng.uniform(0.2, 1.5)
    return events


def generate(seed: int = 0, duration_s: float = 600.0, rate: int = 16000,
             density: float = 3.0, snr: tuple = (-10.0, 30.0), classes=CLASSES,
             class_weights: dict | None = None, no_calls: bool = False,
             confounders=CONFOUNDERS, confounder_scale: float = 1.0,
             confounder_always: bool = False, overlap: float = 0.15,
             distance: tuple = (0.0, 1.0), reverb_prob: float = 0.3,
             level_dbfs: tuple = (-62.0, -32.0), dc_max: float = 0.02,
             schedule: list | None = None, conf_schedule: list | None = None,
             min_gap_s: float = 0.0, clipping_always: bool = False,
             recordings: list | None = None, recording_rate: tuple = (1.0, 4.0),
             recording_level: tuple = (0.0, 30.0)) -> Soundscape:
    """Generate one soundscape.

    rate: the recorder's sample rate; audio is synthesised at 16 kHz (or at the
      recorder rate when that is higher), band-limited/resampled to `rate`.
    density: mean calls per minute (Poisson); snr: in-band call SNR range (dB,
      uniform); overlap: probability that a call is moved to overlap the one
      before it; distance: range of 0 (near) .. 1 (far; high harmonics faded).
    confounders: kinds allowed in the scene (see SCENE); each is present with its
      scene probability (always if confounder_always) at a rate scaled by
      confounder_scale. schedule: explicit calls [(cls, begin, dur, snr_db)]
      instead of random ones; conf_schedule: explicit [(kind, begin, dur, level_db)].
    min_gap_s: minimum silence between random calls (0 = calls may touch/overlap).
    clipping_always: overdrive the recorder whenever "clipping" is in confounders
      (otherwise with its scene probability).
    recordings: real call-free sounds [(samples, rate)] (voices, livestock, machines:
      what synthesis does not cover) mixed in as "recording" events, recording_rate
      bursts per minute (lo, hi) of one to three consecutive recordings each, at
      recording_level dB (lo, hi) over the base noise, like the other confounders.
    """
    rng = np.random.default_rng(seed)
    G = max(16000, int(rate))
    n = int(round(duration_s * G))
    weights = dict(class_weights or CLASS_WEIGHTS)
    classes = [c for c in classes if c in CLASSES]

    # --- background scene
    bg = base_noise(np.random.default_rng([seed, 1]), G, n).astype(np.float64)
    hiss = rng.uniform(-40, -15)
    bg += 10 ** (hiss / 20) * np.random.default_rng([seed, 2]).standard_normal(n)
    events = []
    crng = np.random.default_rng([seed, 3])
    if conf_schedule is not None:
        plan = [(k, b, d, l) for k, b, d, l in conf_schedule]
    else:
        plan = []
        for kind in ALL_CONFOUNDERS:
            if kind not in confounders or kind in ("gaps", "clipping"):
                continue
            p, (rlo, rhi), (llo, lhi) = SCENE[kind]
            if not (confounder_always or crng.random() < p):
                continue
            k = crng.poisson(crng.uniform(rlo, rhi) * confounder_scale * duration_s / 60.0)
            dlo, dhi = CONF_SYNTH[kind][1]
            for _ in range(k):
                d = min(crng.uniform(dlo, dhi), duration_s)
                b = crng.uniform(0, max(0.0, duration_s - d))
                plan.append((kind, b, d, crng.uniform(llo, lhi)))
    for i, (kind, b, d, lvl) in enumerate(plan):
        erng = np.random.default_rng([seed, 4, i])
        y = resample(CONF_SYNTH[kind][0](erng, SYNTH_RATE[kind], d), SYNTH_RATE[kind], G)
        i0 = int(b * G)
        y = y[: n - i0]
        bg[i0:i0 + len(y)] += 10 ** (lvl / 20) * unit(y) * (len(y) > 0)
        events.append(Event(kind, b, b + len(y) / G, float(lvl)))
    if recordings:
        events += mix_recordings(np.random.default_rng([seed, 7]), bg, G, recordings,
                                 recording_rate, recording_level)

    # --- calls
    calls = []
    if not no_calls and classes:
        if schedule is not None:
            specs = [(c, b, d, s) for c, b, d, s in schedule]
        else:
            k = rng.poisson(density * duration_s / 60.0)
            p = np.array([weights.get(c, 0.0) for c in classes], float)
            p = p / p.sum()
            specs = []
            for _ in range(k):
                c = classes[rng.choice(len(classes), p=p)]
                lo, hi = CALL_DURATION[c]
                d = rng.uniform(lo, hi)
                specs.append([c, 0.0, d, rng.uniform(*snr)])
            starts = np.sort(rng.uniform(0.5, max(0.6, duration_s - 0.5), len(specs)))
            for j, s in enumerate(specs):
                b = float(starts[j])
                if j > 0 and rng.random() < overlap:
                    pb, pd = specs[j - 1][1], specs[j - 1][2]
                    b = pb + rng.uniform(0.0, 0.8) * pd
                elif min_gap_s > 0 and j > 0:
                    b = max(b, specs[j - 1][1] + specs[j - 1][2] + min_gap_s)
                s[1] = b
            specs = [tuple(s) for s in specs if s[1] + s[2] <= duration_s - 0.2]
        calls_sig = []
        for i, (c, b, d, s) in enumerate(specs):
            r = np.random.default_rng([seed, 5, i])
            dist = r.uniform(*distance)
            y, low, high = SYNTH[c](r, SYNTH_RATE[c], d, dist)
            y = resample(y, SYNTH_RATE[c], G)
            nd = min(len(y), int(round(d * G)))
            if r.random() < reverb_prob:
                y = add_reverb(r, G, y)
            i0 = int(round(b * G))
            seg = bg[i0:i0 + nd]
            pn = band_power(seg, G, low, high)
            pc = band_power(y[:nd], G, low, high)
            y = y * math.sqrt(pn * 10 ** (s / 10) / max(pc, 1e-30))
            calls_sig.append((i0, y))
            calls.append(Call(c, b, b + d, low, high, float(s), float(dist)))
        mix = bg.copy()
        for i0, y in calls_sig:
            y = y[: n - i0]
            mix[i0:i0 + len(y)] += y
    else:
        calls_sig = []
        mix = bg

    # --- recorder: gain, band-limit + resample, DC, clipping, dropouts, 16-bit
    rrng = np.random.default_rng([seed, 6])
    gain = 10 ** (rrng.uniform(*level_dbfs) / 20)
    # the draw comes first so that clipping_always leaves every other draw, and so
    # every existing seed's scene, unchanged
    clipping = "clipping" in confounders and (conf_schedule is None) and \
        (rrng.random() < SCENE["clipping"][0] * (3 if confounder_always else 1) or clipping_always)
    if clipping:
        gain *= 10 ** (rrng.uniform(20, 35) / 20)
    out = resample(mix * gain, G, rate)
    nyq = rate / 2
    # report each call's SNR as seen through the recorder's band
    kept = []
    for call, (i0, y) in zip(calls, calls_sig):
        hi = min(call.high, 0.9 * nyq)
        if call.low >= hi:
            continue  # nothing of this call is left below the recorder's Nyquist
        nd = int(round((call.end - call.begin) * G))
        pn = band_power(bg[i0:i0 + nd], G, call.low, hi)
        pc = band_power(y[:nd], G, call.low, hi)
        call.snr_db = float(10 * np.log10(max(pc, 1e-30) / max(pn, 1e-30)))
        call.high = float(hi)
        kept.append(call)
    calls = kept
    dc = rrng.uniform(-dc_max, dc_max) if rrng.random() < 0.5 else 0.0
    out = out + dc
    if clipping:
        events.append(Event("clipping", 0.0, duration_s, 0.0))
    out = np.clip(out, -1.0, 1.0)
    if "gaps" in confounders and conf_schedule is None and \
            (confounder_always or rrng.random() < SCENE["gaps"][0]):
        k = 1 + rrng.poisson(SCENE["gaps"][1][1] * duration_s / 60.0)
        for _ in range(k):
            d = rrng.uniform(0.5, 5.0)
            b = rrng.uniform(0, max(0.0, duration_s - d))
            if any(c.begin - 0.5 < b + d and b < c.end + 0.5 for c in calls):
                continue
            out[int(b * rate):int((b + d) * rate)] = 0.0
            events.append(Event("gaps", b, b + d, 0.0))
    q = np.clip(np.round(out * 32768.0), -32768, 32767).astype(np.int16)
    audio = q.astype(np.float32) / 32768.0
    calls.sort(key=lambda c: c.begin)
    events.sort(key=lambda e: e.begin)
    meta = dict(seed=seed, duration_s=duration_s, rate=rate, synth_rate=G, gain=gain, dc=dc,
                clipping=bool(clipping), no_calls=no_calls)
    return Soundscape(audio, int(rate), calls, events, meta)


# ----------------------------------------------------------------------------- I/O

RAVEN_COLUMNS = ["Selection", "View", "Channel", "Begin Time (s)", "End Time (s)",
                 "Low Freq (Hz)", "High Freq (Hz)", "Class", "SNR (dB)"]


def write_wav(path: str, sc: Soundscape) -> None:
    import soundfile as sf
    q = np.round(sc.audio.astype(np.float64) * 32768.0).astype(np.int16)
    sf.write(path, q, sc.rate, subtype="PCM_16")


def read_wav(path: str, channel: int = 0):
    """(float32 samples of one channel (0-based) as int16/32768, sample rate)."""
    import soundfile as sf
    x, sr = sf.read(path, dtype="int16", always_2d=True)
    if not 0 <= channel < x.shape[1]:
        raise ValueError(f"{path}: no channel {channel} (it has {x.shape[1]}, numbered from 0)")
    return x[:, channel].astype(np.float32) / 32768.0, int(sr)


def write_raven(path: str, calls) -> None:
    with open(path, "w") as f:
        f.write("\t".join(RAVEN_COLUMNS) + "\n")
        for i, c in enumerate(calls, 1):
            f.write(f"{i}\tSpectrogram 1\t1\t{c.begin:.4f}\t{c.end:.4f}\t{c.low:.1f}\t"
                    f"{c.high:.1f}\t{c.cls}\t{c.snr_db:.1f}\n")


def write_confounders(path: str, events) -> None:
    with open(path, "w") as f:
        f.write("\t".join(["Selection", "View", "Channel", "Begin Time (s)", "End Time (s)",
                           "Class", "Level (dB)"]) + "\n")
        for i, e in enumerate(events, 1):
            f.write(f"{i}\tSpectrogram 1\t1\t{e.begin:.4f}\t{e.end:.4f}\t{e.kind}\t"
                    f"{e.level_db:.1f}\n")


def raven_rows(path: str):
    """A Raven selection table -> ({column name: index}, [row fields]), one row per
    selection: Raven writes each selection once per view, so Waveform rows are dropped."""
    with open(path, encoding="utf-8-sig") as f:
        lines = [ln.rstrip("\r\n") for ln in f if ln.strip()]
    if not lines:
        return {}, []
    idx = {h.strip(): i for i, h in enumerate(lines[0].split("\t"))}
    view = idx.get("View")
    rows = [ln.split("\t") for ln in lines[1:]]
    return idx, [p for p in rows
                 if view is None or view >= len(p) or not p[view].startswith("Waveform")]


def read_raven(path: str, class_column: str | None = None):
    """Read a Raven selection table -> list of (begin, end, class or None).

    The class column is `class_column` if given, else the first of: Class, class,
    Label, label, Call Type, Annotation, Species that exists."""
    idx, rows = raven_rows(path)
    if not idx:
        return []
    cands = [class_column] if class_column else ["Class", "class", "Label", "label",
                                                 "Call Type", "Call type", "Annotation",
                                                 "Species"]
    ci = next((idx[c] for c in cands if c in idx), None)
    if class_column and ci is None:
        raise ValueError(f"{path}: no column {class_column!r} (have {list(idx)})")
    bi, ei = idx["Begin Time (s)"], idx["End Time (s)"]
    return [(float(p[bi]), float(p[ei]),
             p[ci].strip() if ci is not None and ci < len(p) else None) for p in rows]


def read_raven_snr(path: str, column: str) -> dict:
    """{(begin, end): SNR in dB} from a numeric column of a Raven table, e.g. Raven's
    own `SNR NIST Quick (dB)` measurement; an empty or non-numeric cell stops with the
    selection, so that no call is silently put in the wrong SNR band."""
    idx, rows = raven_rows(path)
    if idx and column not in idx:
        raise ValueError(f"{path}: no column {column!r} (have {list(idx)})")
    out = {}
    for n, p in enumerate(rows, 1):
        b, e = float(p[idx["Begin Time (s)"]]), float(p[idx["End Time (s)"]])
        cell = p[idx[column]].strip() if idx[column] < len(p) else ""
        try:
            out[(b, e)] = float(cell)
        except ValueError:
            where = f"selection {n} ({b:g}-{e:g} s)"
            raise ValueError(f"{path}, {where}: {column} is {cell!r}, not a number in dB") from None
    return out


# ----------------------------------------------------------------------------- CLI

def demo_schedule():
    """A minute with three clear calls of each class and a generator."""
    calls = [
        ("rumble", 1.0, 5.0, 20.0), ("trumpet", 7.5, 1.2, 12.0), ("cry", 10.0, 1.8, 12.0),
        ("roar", 13.0, 2.2, 12.0), ("rumble", 16.5, 6.5, 18.0), ("trumpet", 24.5, 0.8, 14.0),
        ("cry", 26.5, 1.5, 12.0), ("roar", 29.0, 2.5, 12.0),
        # 32-45 s: generator only (no call)
        ("rumble", 46.0, 4.0, 20.0), ("cry", 51.0, 2.0, 12.0), ("roar", 53.5, 1.8, 12.0),
        ("trumpet", 56.5, 1.5, 14.0),
    ]
    conf = [("engine", 32.0, 13.0, 15.0), ("birds", 20.0, 5.0, 5.0)]
    return calls, conf


def main(argv=None):
    ap = argparse.ArgumentParser(description="Synthetic elephant soundscapes + Raven truth")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--minutes", type=float, default=10.0)
    ap.add_argument("--seconds", type=float, help="duration in seconds (overrides --minutes)")
    ap.add_argument("--rate", type=int, default=16000, help="recorder sample rate of the WAV")
    ap.add_argument("--out", required=True, help="output WAV path")
    ap.add_argument("--selections", help="Raven table path (default <out>.selections.txt)")
    ap.add_argument("--confounder-table", action="store_true",
                    help="also write <out>.confounders.txt")
    ap.add_argument("--density", type=float, default=3.0, help="calls per minute")
    ap.add_argument("--snr", type=float, nargs=2, default=(-10.0, 30.0), metavar=("LO", "HI"),
                    help="in-band call SNR range in dB")
    ap.add_argument("--classes", default=",".join(CLASSES))
    ap.add_argument("--overlap", type=float, default=0.15)
    ap.add_argument("--distance", type=float, nargs=2, default=(0.0, 1.0))
    ap.add_argument("--no-calls", action="store_true", help="confounders only")
    ap.add_argument("--confounders", default=",".join(CONFOUNDERS),
                    help="comma list of kinds, or 'none'; also "
                    f"{', '.join(EXTRA_CONFOUNDERS)}, which are off by default")
    ap.add_argument("--confounder-scale", type=float, default=1.0,
                    help="multiplies confounder event rates")
    ap.add_argument("--confounder-always", action="store_true",
                    help="every allowed confounder kind is present (default: per-scene chance)")
    ap.add_argument("--level", type=float, nargs=2, default=(-62.0, -32.0),
                    help="background level range in dBFS")
    ap.add_argument("--preset", choices=["demo"], help="demo: fixed 60 s showcase")
    a = ap.parse_args(argv)
    dur = a.seconds if a.seconds is not None else a.minutes * 60.0
    confs = [] if a.confounders == "none" else [c for c in a.confounders.split(",") if c]
    bad = [c for c in confs if c not in ALL_CONFOUNDERS]
    if bad:
        ap.error(f"unknown confounder(s) {bad}; choose from {ALL_CONFOUNDERS}")
    classes = [c for c in a.classes.split(",") if c]
    bad = [c for c in classes if c not in CLASSES]
    if bad:
        ap.error(f"unknown class(es) {bad}; choose from {CLASSES}")
    kw = dict(seed=a.seed, duration_s=dur, rate=a.rate, density=a.density, snr=tuple(a.snr),
              classes=classes, no_calls=a.no_calls, confounders=confs,
              confounder_scale=a.confounder_scale, confounder_always=a.confounder_always,
              overlap=a.overlap, distance=tuple(a.distance), level_dbfs=tuple(a.level))
    if a.preset == "demo":
        calls, conf = demo_schedule()
        kw.update(duration_s=60.0, schedule=calls, conf_schedule=conf, distance=(0.0, 0.3),
                  reverb_prob=0.0, level_dbfs=(-40.0, -40.0), dc_max=0.0)
    sc = generate(**kw)
    out_dir = os.path.dirname(os.path.abspath(a.out))
    os.makedirs(out_dir, exist_ok=True)
    write_wav(a.out, sc)
    stem = a.out[:-4] if a.out.lower().endswith(".wav") else a.out
    sel = a.selections or stem + ".selections.txt"
    write_raven(sel, sc.calls)
    if a.confounder_table:
        write_confounders(stem + ".confounders.txt", sc.confounders)
    kinds = sorted({e.kind for e in sc.confounders})
    print(f"{a.out}: {len(sc.audio) / sc.rate:.0f} s at {sc.rate} Hz, {len(sc.calls)} calls, confounders: "
          f"{', '.join(kinds) or 'none'}; truth in {sel}", file=sys.stderr)


if __name__ == "__main__":
    main()
