#!/usr/bin/env python3
"""
Synthetic human-elephant-conflict soundscape generator for testing elephant-call detectors.

Written on 2026-11-29 by a separate agent from the issue's description of the acoustics and a
site description alone, without reading this repository or its other generators, so that scores
on its scenes show how the default model does on sound someone else chose (the fifth generator:
models/README.md, "1.15.0"). It shares no code with them on purpose; do not fold its helpers
into theirs.

Site: dry-zone Sri Lanka / southern India human-elephant-conflict zone -- seasonal tank
edge, scrub jungle, paddy fields and a village; mostly nocturnal crop-raiding.
Species: Asian elephant (Elephas maximus).

Usage:
  python models/conflict_soundscape.py --set calls|free --out DIR --seed S --meta METADIR

Signal path (per file):
  sources (synthesised directly at the recorder rate, band-limited: harmonic content is built
  from wavetables holding only harmonics below 0.45*fs, noise is generated at fs)
  -> propagation (spherical spreading via level, atmospheric + foliage absorption, forest
     reverberation with distance-dependent direct/reverb ratio)
  -> recorder (unit-specific high-pass, microphone response, anti-alias low-pass at 0.45 fs,
     fixed gain from the unit's sensitivity)
  -> + self-noise (white + 1/f electronics noise, SD-card write ticks on cheap units)
  -> clipping stage (only the 'hot' unit, done at 2x oversampling), DC offset, 16-bit PCM.
SNR of each call is measured on the actual signals (isolated recorded call vs. everything else
in its time-frequency box); see measure_box_snr().
"""
import argparse
import json
import os
import time

import numpy as np
import soundfile as sf
from scipy import signal
import scipy.fft as sfft

DUR = 600.0
RATES = [2000, 4000, 8000, 16000, 22050, 44100, 48000]
HEADER = ("Selection\tView\tChannel\tBegin Time (s)\tEnd Time (s)\tLow Freq (Hz)\t"
          "High Freq (Hz)\tClass\tSNR (dB)")
C_SOUND = 343.0
SPL_REF = 90.0   # amplitude 1.0 (RMS) in the acoustic domain == 90 dB SPL


# ----------------------------------------------------------------------------------------
# generic DSP helpers
# ----------------------------------------------------------------------------------------
def amp_spl(spl):
    """RMS amplitude of a sound of level `spl` dB SPL in the internal acoustic unit."""
    return 10.0 ** ((spl - SPL_REF) / 20.0)


def rms(x):
    return float(np.sqrt(np.mean(np.square(x)) + 1e-30))


def norm_rms(x):
    return x / rms(x)


def fft_filter(x, fs, resp):
    """Zero-phase filtering by a magnitude response resp(f) (f in Hz) via FFT (zero-padded).
    For long signals resp is evaluated on a fine log-spaced grid and interpolated (speed)."""
    n = len(x)
    if n > 4_000_000:
        # long signals: equivalent linear-phase FIR (frequency sampling, Hann window, ~0.7 s
        # long) applied by overlap-add -- cache-friendly and ~2x faster than one huge FFT
        L = int(2 ** np.ceil(np.log2(fs * 0.7)))
        h = np.fft.irfft(resp(np.arange(L // 2 + 1) * (fs / L)), L)
        h = (np.roll(h, L // 2) * np.hanning(L)).astype(x.dtype)
        return signal.oaconvolve(x, h)[L // 2:L // 2 + n].astype(x.dtype)
    nfft = sfft.next_fast_len(n + 64, real=True)
    X = sfft.rfft(x, nfft)
    nb = len(X)
    if nb > 50000:
        fg = np.concatenate([[0.0], np.geomspace(0.05, fs / 2.0, 6000)])
        g = np.interp(np.arange(nb) * (fs / nfft), fg, resp(fg))
    else:
        g = resp(np.arange(nb) * (fs / nfft))
    X *= g.astype(X.real.dtype)
    return sfft.irfft(X, nfft)[:n].astype(x.dtype)


def colored_noise(rng, n, fs, resp, dtype=np.float64):
    """Gaussian noise of length n with magnitude spectrum resp(f); unit RMS."""
    big = n > 2_000_000 or dtype == np.float32       # long noises in single precision (speed)
    x = rng.standard_normal(n, dtype=np.float32 if big else np.float64)
    y = fft_filter(x, fs, resp)
    return (y / np.float32(rms(y) + 1e-20)).astype(dtype)


def band_resp(lo, hi, order=2, slope_db_oct=0.0, fref=None):
    """Smooth band-pass magnitude (Butterworth-like skirts) with optional spectral tilt."""
    def r(f):
        f = np.maximum(f, 1e-3)
        g = 1.0 / np.sqrt(1.0 + (lo / f) ** (2 * order)) / np.sqrt(1.0 + (f / hi) ** (2 * order))
        if slope_db_oct:
            fr = fref or np.sqrt(lo * hi)
            g = g * (f / fr) ** (slope_db_oct / 6.0206)
        return g
    return r


def formant_resp(formants, floor=0.05):
    """Sum of resonance peaks: formants = [(F, bandwidth, gain), ...]."""
    def r(f):
        g = np.full_like(f, floor, dtype=float)
        for F, B, A in formants:
            g = g + A / (1.0 + ((f - F) / (0.5 * B)) ** 2)
        return g
    return r


def smooth_rand(rng, n, fs, rate_hz):
    """Slowly varying random track (unit std) with control points at `rate_hz`."""
    m = int(n / fs * rate_hz) + 4
    pts = rng.standard_normal(m)
    # light smoothing of the control points for a rounder curve
    pts = np.convolve(pts, [0.25, 0.5, 0.25], mode="same") * 1.6
    t = np.arange(n) * (rate_hz / fs)
    return np.interp(t, np.arange(m), pts)


def ar_env(n, fs, att, rel, shape="cos"):
    """Attack/sustain/release envelope with raised-cosine ramps."""
    e = np.ones(n)
    na = max(1, min(n // 2, int(att * fs)))
    nr = max(1, min(n - na, int(rel * fs)))
    e[:na] = 0.5 - 0.5 * np.cos(np.linspace(0, np.pi, na))
    e[n - nr:] = 0.5 + 0.5 * np.cos(np.linspace(0, np.pi, nr))
    return e


def decay_env(n, fs, tau):
    return np.exp(-np.arange(n) / (fs * tau))


def harmonic_osc(f0, fs, amps, phases=None, rng=None):
    """Band-limited harmonic oscillator by wavetable lookup.

    f0: instantaneous fundamental per sample (Hz); amps: harmonic amplitudes (k=1..K).
    Only harmonics with K*max(f0) < 0.45*fs are kept (so nothing exceeds Nyquist), with a
    raised-cosine taper over the top 15% of the allowed range."""
    f0 = np.asarray(f0, dtype=float)
    fmax = float(np.max(f0)) if len(f0) else 1.0
    kmax = int(0.45 * fs / max(fmax, 1e-3))
    K = min(len(amps), kmax)
    if K < 1:
        return np.zeros(len(f0))
    a = np.asarray(amps[:K], dtype=float).copy()
    k = np.arange(1, K + 1)
    fk = k * fmax
    lim = 0.45 * fs
    taper = np.clip((lim - fk) / (0.15 * lim), 0, 1)
    a *= 0.5 - 0.5 * np.cos(np.pi * taper)
    if phases is None:
        phases = (rng.uniform(0, 2 * np.pi, K) if rng is not None else np.zeros(K))
    tab_n = 4096 if K < 200 else 16384
    th = np.arange(tab_n) / tab_n
    table = np.zeros(tab_n)
    for i in range(K):
        if a[i] != 0:
            table += a[i] * np.sin(2 * np.pi * k[i] * th + phases[i])
    table = np.append(table, table[0])
    ph = np.cumsum(f0 / fs)
    ph -= np.floor(ph)
    idx = ph * tab_n
    i0 = idx.astype(np.int64)
    fr = idx - i0
    return table[i0] * (1 - fr) + table[i0 + 1] * fr


def add_at(track, buf, i0):
    """Add buf into track starting at sample i0 (clipped to the track)."""
    i0 = int(i0)
    a, b = max(0, i0), min(len(track), i0 + len(buf))
    if b > a:
        track[a:b] += buf[a - i0:b - i0]


def reverb_ir(rng, fs, rt60, hf_damp=0.5):
    """Diffuse forest/scrub reverberation: decaying noise, faster decay at high frequencies."""
    n = max(16, int(rt60 * fs))
    t = np.arange(n) / fs
    lo = rng.standard_normal(n) * np.exp(-6.9 * t / rt60)
    hi = rng.standard_normal(n) * np.exp(-6.9 * t / (rt60 * hf_damp))
    # split into two bands (crossover ~1 kHz, or fs/4 when lower)
    fc = min(1000.0, 0.25 * fs)
    sos = signal.butter(2, fc, fs=fs, output="sos")
    ir = signal.sosfilt(sos, lo) + (hi - signal.sosfilt(sos, hi))
    ir[: int(0.004 * fs)] *= np.linspace(0, 1, int(0.004 * fs))  # sparse start
    return ir / np.sqrt(np.sum(ir ** 2))


def absorption_resp(dist, veg_db_km):
    """Excess attenuation over `dist` m: atmospheric (~ISO 9613, warm humid) + foliage/ground."""
    dk = dist / 1000.0
    def r(f):
        fk = np.maximum(f, 0) / 1000.0
        db = dk * (4.5 * fk ** 1.3 + veg_db_km * fk ** 0.6)
        return 10 ** (-db / 20.0)
    return r


def propagate(x, fs, rng, dist, veg_db_km=8.0, rt60=None, drr_db=None):
    """Apply distance-dependent absorption and reverberation. Returns a longer buffer
    (reverb tail appended). Spreading loss is applied by the caller via the level."""
    y = fft_filter(x, fs, absorption_resp(dist, veg_db_km))
    if rt60 is None:
        rt60 = rng.uniform(0.3, 1.2)
    if drr_db is None:
        drr_db = float(np.clip(14 - 20 * np.log10(max(dist, 1) / 10.0) * 0.75
                               + rng.normal(0, 2), -6, 20))
    ir = reverb_ir(rng, fs, rt60)
    wet = signal.oaconvolve(y, ir) if len(y) > 4 * len(ir) else signal.fftconvolve(y, ir)
    out = np.zeros(len(y) + len(ir) - 1)
    out[:len(y)] += y
    out += wet * (rms(y) / (rms(wet[:len(y)]) + 1e-20)) * 10 ** (-drr_db / 20)
    return out


def place_event(track, fs, rng, dry, t0, spl_1m, dist, veg=8.0, rt60=None):
    """Scale a unit-RMS dry source to its level at `dist`, propagate and add at t0."""
    lvl = amp_spl(spl_1m - 20 * np.log10(max(dist, 1.0)))
    y = propagate(dry * lvl, fs, rng, dist, veg, rt60)
    add_at(track, y, t0 * fs)
    return len(y) / fs


# ----------------------------------------------------------------------------------------
# elephant calls (dry sources, unit RMS over the call; return buffer, active indices, params)
# ----------------------------------------------------------------------------------------
PAD = 0.3  # seconds of silence around each dry call


def _pad(x, fs):
    p = np.zeros(int(PAD * fs))
    return np.concatenate([p, x, p])


def rumble(rng, fs):
    dur = float(np.clip(rng.lognormal(np.log(3.0), 0.45), 1.0, 8.0))
    n = int(dur * fs)
    t = np.arange(n) / fs
    f0 = rng.uniform(10.0, 25.0)
    contour = rng.choice(["arched", "flat", "rising", "falling", "arched"])
    depth = rng.uniform(0.08, 0.35)
    u = t / dur
    if contour == "arched":
        pk = rng.uniform(0.3, 0.6)
        c = np.where(u < pk, np.sin(0.5 * np.pi * u / pk), np.cos(0.5 * np.pi * (u - pk) / (1 - pk)))
        ft = f0 * (1 + depth * c)
    elif contour == "flat":
        ft = f0 * (1 + 0.03 * np.sin(np.pi * u))
    elif contour == "rising":
        ft = f0 * (1 + depth * u)
    else:
        ft = f0 * (1 + depth * (1 - u))
    ft = ft * (1 + 0.015 * smooth_rand(rng, n, fs, 3.0) + 0.004 * smooth_rand(rng, n, fs, 40.0))
    fmax_h = rng.uniform(350, 900)           # harmonic stack extent
    K = int(fmax_h / f0)
    k = np.arange(1, K + 1)
    tilt = rng.uniform(1.0, 1.9)             # spectral roll-off exponent above 3rd harmonic
    amps = np.where(k <= 3, 1.0, (k / 3.0) ** (-tilt))
    amps[0] = 10 ** (-rng.uniform(6, 16) / 20)          # weak fundamental
    amps[1] = 1.0
    if K > 2:
        amps[2] = rng.uniform(0.6, 1.1)
    src = harmonic_osc(ft, fs, amps, rng=rng)
    # formants: nasal (trunk) rumbles low F1/F2, oral rumbles higher
    if rng.random() < 0.7:
        fm = [(rng.uniform(30, 55), rng.uniform(15, 30), 1.0),
              (rng.uniform(120, 220), rng.uniform(40, 80), 0.6),
              (rng.uniform(260, 420), rng.uniform(60, 120), 0.3)]
    else:
        fm = [(rng.uniform(80, 130), rng.uniform(30, 60), 1.0),
              (rng.uniform(250, 400), rng.uniform(60, 120), 0.5)]
    src = fft_filter(src, fs, formant_resp(fm, floor=0.12))
    breath = colored_noise(rng, n, fs, band_resp(20, 300, 3)) * rng.uniform(0.02, 0.08)
    src = norm_rms(src) + breath
    env = ar_env(n, fs, rng.uniform(0.15, 0.5), rng.uniform(0.3, 1.0))
    env *= 10 ** (rng.uniform(1, 3) * smooth_rand(rng, n, fs, 1.5) / 20)
    x = src * env
    return _pad(x, fs), dict(f0=round(f0, 2), contour=str(contour), duration=round(dur, 3),
                             n_harm=K, formants=[round(a[0], 1) for a in fm])


def roar(rng, fs):
    dur = rng.uniform(1.0, 3.0)
    n = int(dur * fs)
    f0 = rng.uniform(90, 250)
    ft = f0 * (1 + 0.15 * smooth_rand(rng, n, fs, 4) + 0.12 * smooth_rand(rng, n, fs, 60))
    ft = np.maximum(ft, 40)
    K = int(3500 / f0)
    amps = np.arange(1, K + 1, dtype=float) ** -0.7
    harsh = harmonic_osc(ft, fs, amps, rng=rng)
    hi = min(3200.0, 0.45 * fs)
    noise = colored_noise(rng, n, fs, band_resp(100, hi, 3))
    # pulse-modulated noise (chaotic vocal-fold vibration)
    am = 1 + 0.8 * np.sin(2 * np.pi * np.cumsum(ft * rng.uniform(0.5, 1.0)) / fs)
    src = rng.uniform(0.2, 0.5) * norm_rms(harsh) + norm_rms(noise * am)
    fm = [(rng.uniform(300, 600), 200, 1.0), (rng.uniform(900, 1500), 300, 0.8),
          (rng.uniform(2000, 2800), 400, 0.5)]
    src = fft_filter(src, fs, lambda f: formant_resp(fm, 0.2)(f) * band_resp(100, 3200, 3)(f))
    env = ar_env(n, fs, rng.uniform(0.05, 0.2), rng.uniform(0.2, 0.6))
    env *= 10 ** (3 * smooth_rand(rng, n, fs, 6) / 20)
    return _pad(norm_rms(src) * env, fs), dict(f0=round(f0, 1), duration=round(dur, 3))


def cry(rng, fs):
    chirp = rng.random() < 0.4   # Asian elephant short squeak/chirp rendered as a cry
    if chirp:
        dur = rng.uniform(0.15, 0.5)
        f0 = rng.uniform(500, 1000)
    else:
        dur = rng.uniform(0.4, 2.0)
        f0 = rng.uniform(250, 700)
    n = int(dur * fs)
    u = np.arange(n) / n
    vr, vd = rng.uniform(4, 12), rng.uniform(0.02, 0.08)
    ft = f0 * (1 + rng.uniform(-0.15, 0.25) * np.sin(np.pi * u)) \
        * (1 + vd * np.sin(2 * np.pi * vr * np.arange(n) / fs + rng.uniform(0, 6.28)))
    K = 8
    amps = 10 ** (-rng.uniform(8, 14) * np.arange(K) / 20)
    src = harmonic_osc(ft, fs, amps, rng=rng)
    src = norm_rms(src) + 0.05 * colored_noise(rng, n, fs, band_resp(f0 * 0.8, min(f0 * 4, 0.45 * fs), 2))
    env = ar_env(n, fs, rng.uniform(0.02, 0.1) * dur / 0.5, rng.uniform(0.05, 0.2) * dur / 0.5)
    return _pad(norm_rms(src) * env, fs), dict(f0=round(f0, 1), duration=round(dur, 3),
                                               vibrato_hz=round(vr, 2), chirp=bool(chirp))


def trumpet(rng, fs):
    dur = rng.uniform(0.3, 2.0)
    n = int(dur * fs)
    u = np.arange(n) / n
    f0 = rng.uniform(300, 600)
    ft = f0 * (0.85 + 0.15 * np.minimum(1, u / 0.15)) * (1 - 0.1 * np.maximum(0, u - 0.7) / 0.3)
    ft = ft * (1 + 0.03 * smooth_rand(rng, n, fs, 8) + 0.01 * smooth_rand(rng, n, fs, 80))
    K = 40
    k = np.arange(1, K + 1)
    amps = k ** (-rng.uniform(0.4, 0.8)) * (1 + 0.3 * rng.standard_normal(K)).clip(0.3)
    src = harmonic_osc(ft, fs, amps, rng=rng)
    if rng.random() < 0.4:   # subharmonic / biphonation segment
        sub = harmonic_osc(ft / 2, fs, amps * 0.3, rng=rng)
        seg = ar_env(n, fs, 0.05, 0.05) * (u > rng.uniform(0.2, 0.6))
        src = src + sub * seg
    hi = min(9000.0, 0.45 * fs)
    noise = colored_noise(rng, n, fs, band_resp(min(300, hi / 2), hi, 3, -3, 1000))
    src = norm_rms(src) + rng.uniform(0.3, 0.7) * noise
    src *= 1 + 0.25 * np.sin(2 * np.pi * rng.uniform(20, 60) * np.arange(n) / fs)   # rough AM
    env = ar_env(n, fs, rng.uniform(0.02, 0.08), rng.uniform(0.05, 0.25))
    return _pad(norm_rms(src) * env, fs), dict(f0=round(f0, 1), duration=round(dur, 3))


CALL_FUNCS = dict(rumble=rumble, roar=roar, cry=cry, trumpet=trumpet)


# ----------------------------------------------------------------------------------------
# confounders (dry sources, unit RMS) -- short events
# ----------------------------------------------------------------------------------------
def firecracker(rng, fs, big=False):
    """Bang: N-wave + decaying broadband burst. 'Elephant thunder' (big) adds a low boom."""
    n = int((1.6 if big else 0.3) * fs)
    x = np.zeros(n)
    nw = max(2, int(rng.uniform(0.001, 0.003) * fs))
    x[:nw] = np.linspace(1, -1, nw)
    burst = colored_noise(rng, n, fs, band_resp(60, 0.45 * fs, 1, -2, 1000))
    x += 0.5 * burst * decay_env(n, fs, rng.uniform(0.005, 0.03))
    if big:
        boom = colored_noise(rng, n, fs, band_resp(15, 250, 2))
        x += 0.6 * boom * decay_env(n, fs, rng.uniform(0.15, 0.4))
    return x / rms(x[: int(0.1 * fs)])   # unit RMS over the first 100 ms


def voice(rng, fs, f0, dur, vowels, shout=True):
    """Human voice (crop guard shout / chant) - source-filter model with two vowels."""
    n = int(dur * fs)
    u = np.arange(n) / n
    ft = f0 * (1 + rng.uniform(-0.1, 0.3) * np.sin(np.pi * u)) * (1 + 0.01 * smooth_rand(rng, n, fs, 6))
    amps = np.arange(1, 60, dtype=float) ** (-1.0 if shout else -1.4)
    src = harmonic_osc(ft, fs, amps, rng=rng)
    src += 0.05 * colored_noise(rng, n, fs, band_resp(300, 0.45 * fs, 2))
    a = fft_filter(src, fs, formant_resp(vowels[0], 0.03))
    b = fft_filter(src, fs, formant_resp(vowels[1], 0.03))
    w = np.clip(u * 2 - 0.3, 0, 1)
    y = a * (1 - w) + b * w
    return norm_rms(y * ar_env(n, fs, 0.05, 0.15))


VOWELS = {"a": [(750, 90, 1), (1250, 110, 0.6), (2600, 160, 0.25)],
          "o": [(500, 80, 1), (900, 100, 0.5), (2500, 160, 0.15)],
          "u": [(320, 60, 1), (800, 90, 0.3), (2300, 160, 0.1)],
          "e": [(450, 70, 1), (1900, 120, 0.5), (2600, 160, 0.3)]}


def drum_hits(rng, fs, dur):
    """Crop guards beating a drum / tin sheet: rhythmic pattern of decaying membrane + clatter."""
    n = int(dur * fs)
    x = np.zeros(n)
    rate = rng.uniform(2, 6)
    tin = rng.random() < 0.5
    fmem = rng.uniform(70, 200)
    nh = int(0.4 * fs)
    th = np.arange(nh) / fs
    t = 0.0
    while t < dur - 0.4:
        h = np.sin(2 * np.pi * fmem * th * (1 + 0.1 * np.exp(-th / 0.02))) * np.exp(-th / rng.uniform(0.05, 0.15))
        clk = colored_noise(rng, nh, fs, band_resp(500, 0.45 * fs, 1)) * np.exp(-th / 0.01)
        if tin:
            modes = rng.uniform(400, 3000, 6)
            h = 0.4 * h + sum(np.sin(2 * np.pi * m * th) for m in modes if m < 0.45 * fs) \
                * np.exp(-th / rng.uniform(0.05, 0.2)) * 0.3
        add_at(x, (h + 0.5 * clk) * rng.uniform(0.6, 1.0), t * fs)
        t += (1 / rate) * rng.choice([1, 1, 0.5, 2]) * rng.uniform(0.95, 1.05)
    return norm_rms(x)


def bell_strikes(rng, fs, dur):
    """Temple bell: inharmonic partials with long decays, struck repeatedly."""
    n = int(dur * fs)
    x = np.zeros(n)
    f1 = rng.uniform(350, 1200)
    ratios = np.array([0.5, 1.0, 1.19, 1.5, 2.0, 2.51, 2.66, 3.01, 4.1, 5.4])
    dec = rng.uniform(1.5, 5.0) * (600 / f1) ** 0.5
    nh = int(min(dur, 6) * fs)
    th = np.arange(nh) / fs
    strike = np.zeros(nh)
    for i, r in enumerate(ratios):
        f = f1 * r * rng.uniform(0.99, 1.01)
        if f < 0.45 * fs:
            strike += (0.8 ** i) * np.sin(2 * np.pi * f * th + rng.uniform(0, 6)) * np.exp(-th / (dec / r ** 0.7))
    gap = rng.uniform(1.0, 3.0)
    t = 0.0
    while t < dur - 1:
        add_at(x, strike * rng.uniform(0.7, 1.0), t * fs)
        t += gap * rng.uniform(0.9, 1.1)
    return norm_rms(x), dict(f1=round(f1, 1))


def loudspeaker_chant(rng, fs, dur):
    """Temple/mosque loudspeaker chanting: voice through a horn speaker (band-limited,
    distorted) - slow drone-like f0 with melismas, syllabic AM."""
    n = int(dur * fs)
    u = np.arange(n) / fs
    f0 = rng.uniform(110, 220)
    ft = f0 * (1 + 0.06 * smooth_rand(rng, n, fs, 0.7) + 0.02 * smooth_rand(rng, n, fs, 5))
    src = harmonic_osc(ft, fs, np.arange(1, 40, dtype=float) ** -1.1, rng=rng)
    va = fft_filter(src, fs, formant_resp(VOWELS["a"], 0.03))
    vo = fft_filter(src, fs, formant_resp(VOWELS["u"], 0.03))
    w = 0.5 + 0.5 * np.tanh(smooth_rand(rng, n, fs, 2.5))
    y = va * w + vo * (1 - w)
    syl = 0.35 + 0.65 * (0.5 + 0.5 * np.sin(2 * np.pi * rng.uniform(1.5, 4) * u + 2 * smooth_rand(rng, n, fs, 1)))
    breath = (smooth_rand(rng, n, fs, 0.15) > -1.2).astype(float)   # breath pauses
    breath = np.convolve(breath[::50], np.ones(40) / 40, "same").repeat(50)[:n]
    if len(breath) < n:
        breath = np.pad(breath, (0, n - len(breath)), mode="edge")
    y = y * syl * breath
    y = np.tanh(2.5 * y / (np.max(np.abs(y)) + 1e-9))            # horn driver distortion
    y = fft_filter(y, fs, band_resp(350, min(4000, 0.45 * fs), 3))   # horn band-limit
    return norm_rms(y), dict(f0=round(f0, 1))


def engine(rng, fs, dur, fire_hz, n_harm=40, tilt=0.9, rasp=0.3, wander=0.01, track=None):
    """Combustion engine: harmonic series of the firing rate (plus half orders), firing-
    synchronous exhaust noise. `track` optionally multiplies the firing rate over time."""
    n = int(dur * fs)
    ft = fire_hz * (1 + wander * smooth_rand(rng, n, fs, 0.5) + 0.3 * wander * smooth_rand(rng, n, fs, 10))
    if track is not None:
        ft = ft * track
    k = np.arange(1, 2 * n_harm + 1) / 2.0           # half orders (4-stroke cycle asymmetry)
    amps = k ** (-tilt) * np.where(k % 1 == 0, 1.0, rng.uniform(0.1, 0.4))
    amps *= np.exp(0.4 * rng.standard_normal(len(k)))
    x = harmonic_osc(ft / 2, fs, amps, rng=rng)     # fundamental = half firing rate
    ph = np.cumsum(ft / fs)
    pulse = (0.5 + 0.5 * np.cos(2 * np.pi * ph)) ** 6
    nz = colored_noise(rng, n, fs, band_resp(200, min(6000, 0.45 * fs), 1, -3))
    x = norm_rms(x) + rasp * norm_rms(nz * pulse)
    return norm_rms(x)


def passby(rng, fs, x_fn, dur, v, d_min, spl_1m, veg=8.0):
    """Moving source passing the recorder: Doppler (via x_fn(doppler_track)), 1/r level,
    crossfade between near and far (absorbed) versions."""
    n = int(dur * fs)
    t = np.arange(n) / fs - dur * rng.uniform(0.35, 0.65)
    pos = v * t
    r = np.sqrt(pos ** 2 + d_min ** 2)
    vr = v * pos / r
    dop = C_SOUND / (C_SOUND + vr)
    x = x_fn(dop)
    far = fft_filter(x, fs, absorption_resp(600, veg))
    w = np.clip(np.log10(r / d_min) / np.log10(600 / d_min + 1e-9), 0, 1)
    y = (x * (1 - w) + far * w) * amp_spl(spl_1m) / r
    y *= ar_env(n, fs, 2.0, 2.0)
    return y


def animal_call(rng, fs, f0, dur, n_harm, tilt, formants, contour, noise=0.05, jitter=0.01):
    """Generic harmonic animal vocalisation (cattle, buffalo, peafowl, dog howl, owl...)."""
    n = int(dur * fs)
    u = np.arange(n) / max(n, 1)
    ft = f0 * contour(u) * (1 + jitter * smooth_rand(rng, n, fs, 30))
    src = harmonic_osc(ft, fs, np.arange(1, n_harm + 1, dtype=float) ** (-tilt), rng=rng)
    src = norm_rms(src) + noise * colored_noise(rng, n, fs, band_resp(f0, min(8 * f0, 0.45 * fs), 2))
    if formants:
        src = fft_filter(src, fs, formant_resp(formants, 0.1))
    return norm_rms(src * ar_env(n, fs, min(0.08, dur / 4), min(0.15, dur / 3)))


def noisy_burst(rng, fs, dur, lo, hi, att=0.01, rel=0.05):
    n = int(dur * fs)
    hi = min(hi, 0.45 * fs)
    if hi <= lo * 1.2:
        return np.zeros(n)
    x = colored_noise(rng, n, fs, band_resp(lo, hi, 2))
    return norm_rms(x * ar_env(n, fs, att, rel))


def thunder(rng, fs, dist):
    """Thunder: optional crack + long rolling low-frequency rumble (20-300 Hz), several peaks."""
    dur = rng.uniform(3, 15)
    n = int(dur * fs)
    lo_hi = 300 if dist < 3000 else 150
    x = colored_noise(rng, n, fs, band_resp(18, lo_hi, 2, -3, 50))
    env = np.zeros(n)
    for _ in range(rng.integers(2, 6)):
        c = rng.uniform(0, 0.6) * dur
        env += rng.uniform(0.3, 1) * np.exp(-np.abs(np.arange(n) / fs - c) / rng.uniform(0.3, 2.0))
    env *= ar_env(n, fs, 0.2, dur * 0.4)
    y = x * env
    if dist < 2500:
        crack = colored_noise(rng, int(0.3 * fs), fs, band_resp(200, 0.45 * fs, 1)) * decay_env(int(0.3 * fs), fs, 0.05)
        add_at(y, crack * 2, rng.uniform(0, 0.3) * fs)
    return norm_rms(y), dur


# ----------------------------------------------------------------------------------------
# recorder units
# ----------------------------------------------------------------------------------------
UNITS = {
    # sens: dBFS for 94 dB SPL; hp: (Hz, order); self: self-noise RMS dBFS; mic: resonance
    "G1_good":      dict(sens=-16, hp=(8, 2), self=-90, pink=0.3, mic=None, dc=0.0005, clip=False, sd=False),
    "F1_fencepost": dict(sens=-24, hp=(35, 2), self=-70, pink=1.0, mic=(3000, 4), dc=0.003, clip=False, sd=True),
    "F2_lowgain":   dict(sens=-34, hp=(20, 1), self=-66, pink=1.5, mic=(2500, 3), dc=-0.006, clip=False, sd=True),
    "T1_tree":      dict(sens=-22, hp=(50, 2), self=-74, pink=0.8, mic=(4500, 5), dc=0.0015, clip=False, sd=True),
    "C1_hot":       dict(sens=0, hp=(15, 2), self=-78, pink=0.6, mic=(3500, 3), dc=0.002, clip=True, sd=False),
}


class Recorder:
    def __init__(self, name, fs):
        self.name, self.fs = name, fs
        self.p = UNITS[name]
        hp_f, hp_o = self.p["hp"]
        sos = [signal.butter(hp_o, hp_f, "highpass", fs=fs, output="sos")]
        if self.p["mic"] is not None and self.p["mic"][0] < 0.4 * fs:
            f, g = self.p["mic"]
            sos.append(_peaking_sos(f, g, 1.2, fs))
        sos.append(signal.butter(6, 0.45 * fs, fs=fs, output="sos"))   # anti-alias
        self.sos = np.vstack(sos)
        self.gain = 10 ** (self.p["sens"] / 20) / amp_spl(94)

    def linear(self, x):
        """Recorder's linear path (acoustic -> digital full-scale units)."""
        return signal.sosfilt(self.sos, x) * self.gain

    def self_noise(self, rng, n):
        fs = self.fs
        w = rng.standard_normal(n)
        pink = colored_noise(rng, n, fs, lambda f: 1 / np.sqrt(np.maximum(f, 2.0) / 2.0) * (f < 0.45 * fs))
        x = norm_rms(w + self.p["pink"] * pink * 3) * 10 ** (self.p["self"] / 20)
        x = signal.sosfilt(self.sos[-3:], x)     # ADC decimation filter also shapes self-noise
        ev = []
        if self.p["sd"]:     # faint SD-card write ticks every few seconds
            period = rng.uniform(3, 12)
            tick = np.exp(-np.arange(int(0.004 * fs)) / (0.0007 * fs)) * 10 ** ((self.p["self"] + 12) / 20)
            for t in np.arange(rng.uniform(0, period), DUR - 0.01, period):
                add_at(x, tick * np.sign(rng.standard_normal()), t * fs)
            ev.append(dict(type="sd_write_ticks", start=0.0, end=DUR, period_s=round(period, 3)))
        return x, ev

    def clip_stage(self, x):
        """Analog front-end saturation at 2x oversampling (soft knee, then rail)."""
        up = signal.resample_poly(x, 2, 1)
        k = 0.85
        a = np.abs(up)
        over = a > k
        up[over] = np.sign(up[over]) * (k + (1 - k) * np.tanh((a[over] - k) / (1 - k)))
        h = signal.firwin(255, 0.45)              # decimation filter: cut at 0.45 fs
        return signal.resample_poly(up, 1, 2, window=h)[: len(x)]


def _peaking_sos(f0, gain_db, q, fs):
    A = 10 ** (gain_db / 40)
    w0 = 2 * np.pi * f0 / fs
    al = np.sin(w0) / (2 * q)
    b = [1 + al * A, -2 * np.cos(w0), 1 - al * A]
    a = [1 + al / A, -2 * np.cos(w0), 1 - al / A]
    return np.hstack([np.array(b) / a[0], np.array(a) / a[0]])[None, :]


# ----------------------------------------------------------------------------------------
# background / confounder scene
# ----------------------------------------------------------------------------------------
def build_background(rng, fs, n, scene, hard=False):
    """Acoustic background + confounders at the microphone. Returns track and event list."""
    B = np.zeros(n)
    ev = []
    tod, weather = scene["time"], scene["weather"]
    night = tod in ("night", "dusk")
    T = n / fs

    def log(typ, t0, dur, **kw):
        ev.append(dict(type=typ, start=round(float(t0), 3), end=round(float(min(T, t0 + dur)), 3), **kw))

    # --- ambient floor (distant everything): pinkish, 22-35 dB SPL, slow level drift -----
    spl = rng.uniform(22, 35)
    amb = colored_noise(rng, n, fs, band_resp(15, 0.45 * fs, 1, -4, 200), np.float32)
    drift = 10 ** (3 * smooth_rand(rng, n // 100 + 1, fs / 100, 0.02) / 20)
    B += amb * np.repeat(drift, 100)[:n] * amp_spl(spl)
    del amb
    log("ambient_floor", 0, T, spl=round(spl, 1))

    # --- silence gaps: a mask that mutes the biotic chorus for some stretches ------------
    chorus_mask = np.ones(n // 100 + 1)
    for _ in range(rng.integers(1, 4)):
        g0, gl = rng.uniform(0, T), rng.uniform(10, 60)
        chorus_mask[int(g0 * fs / 100):int((g0 + gl) * fs / 100)] = 0.05
        log("chorus_silence_gap", g0, gl)
    chorus_mask = np.convolve(chorus_mask, np.ones(200) / 200, "same")

    def chorus_gain():
        return np.repeat(chorus_mask, 100)[:n]

    # --- wind: palm-frond rustle + microphone buffeting --------------------------------
    wind = scene["wind"]
    if wind > 0:
        gust = np.maximum(0, 0.6 + 0.5 * smooth_rand(rng, n // 100 + 1, fs / 100, 0.15)
                          + 0.3 * smooth_rand(rng, n // 100 + 1, fs / 100, 1.0))
        gust = np.minimum(np.repeat(gust, 100)[:n] * wind, 1.4)
        rustle = colored_noise(rng, n, fs, band_resp(300, 0.45 * fs, 1, -2, 2000), np.float32)
        B += rustle * gust * amp_spl(rng.uniform(38, 52))
        del rustle
        buffet = colored_noise(rng, n, fs, band_resp(2, rng.uniform(60, 150), 2, -6, 10), np.float32)
        B += buffet * gust ** 3 * amp_spl(rng.uniform(50, 66))
        del buffet, gust
        log("wind_palm_rustle_and_mic_buffeting", 0, T, strength=round(wind, 2))

    # --- rain and thunder ----------------------------------------------------------------
    if weather == "rain":
        inten = np.clip(0.5 + 0.6 * smooth_rand(rng, n // 100 + 1, fs / 100, 0.01), 0, 1.5)
        inten = np.repeat(inten, 100)[:n]
        rain = colored_noise(rng, n, fs, band_resp(400, 0.45 * fs, 1, -1, 3000), np.float32)
        B += rain * inten * amp_spl(rng.uniform(45, 62))
        del rain
        # drops on the housing: resonant clicks
        nd = int(rng.uniform(3, 20) * T)
        fring = min(rng.uniform(1500, 4000), 0.4 * fs)
        tl = np.arange(int(0.02 * fs)) / fs
        drop = np.sin(2 * np.pi * fring * tl) * np.exp(-tl / 0.003) + np.exp(-tl / 0.001)
        for t in rng.uniform(0, T, nd):
            add_at(B, drop * amp_spl(rng.uniform(45, 62)) * 2 * inten[min(n - 1, int(t * fs))], t * fs)
        log("monsoon_rain", 0, T, drops=nd)
        for _ in range(rng.integers(2, 8) if not hard else rng.integers(5, 12)):
            d = rng.uniform(800, 10000)
            x, dur = thunder(rng, fs, d)
            t0 = rng.uniform(0, T - 5)
            place_event(B, fs, rng, x, t0, rng.uniform(130, 145), d, veg=2.0, rt60=2.0)
            log("thunder", t0, dur, distance_m=round(d))
    elif weather == "storm_far" or hard:
        for _ in range(rng.integers(1, 5)):
            d = rng.uniform(3000, 15000)
            x, dur = thunder(rng, fs, d)
            t0 = rng.uniform(0, T - 5)
            place_event(B, fs, rng, x, t0, rng.uniform(130, 145), d, veg=2.0, rt60=2.0)
            log("thunder", t0, dur, distance_m=round(d))

    # --- insects: crickets (night), cicadas (day/dusk) -----------------------------------
    t_full = None
    if night:
        for _ in range(rng.integers(1, 4)):
            fc = rng.uniform(2800, 7000)
            if fc > 0.42 * fs:
                continue
            if t_full is None:
                t_full = np.arange(n) / fs
            pr = rng.uniform(15, 60)          # pulse rate
            chirp_rate = rng.uniform(0.5, 3)
            pulses = (np.sin(2 * np.pi * pr * t_full) > 0.3).astype(np.float32)
            chirps = (np.sin(2 * np.pi * chirp_rate * t_full + rng.uniform(0, 6)) > rng.uniform(-0.5, 0.3))
            x = np.sin(2 * np.pi * fc * t_full).astype(np.float32) * pulses * chirps
            x = signal.sosfilt(signal.butter(2, [0.7 * fc, min(1.3 * fc, 0.45 * fs)], "bandpass", fs=fs, output="sos"), x)
            B += norm_rms(x) * amp_spl(rng.uniform(30, 48)) * chorus_gain()
            log("cricket", 0, T, carrier_hz=round(fc), pulse_rate=round(pr, 1))
    if tod in ("day", "dusk", "dawn"):
        for _ in range(rng.integers(1, 3)):
            lo, hi = rng.uniform(3000, 5000), rng.uniform(6000, 10000)
            if lo > 0.4 * fs:
                continue
            x = colored_noise(rng, n, fs, band_resp(lo, min(hi, 0.45 * fs), 3), np.float32)
            if t_full is None:
                t_full = np.arange(n) / fs
            buzz = 0.6 + 0.4 * np.sin(2 * np.pi * rng.uniform(80, 200) * t_full)
            swell = np.clip(smooth_rand(rng, n // 100 + 1, fs / 100, 0.05), 0, None)
            B += x * buzz * np.repeat(swell, 100)[:n] * amp_spl(rng.uniform(35, 55))
            log("cicada", 0, T, band=[round(lo), round(hi)])
    t_full = None

    # --- frogs at the tank (night, more when wet) ----------------------------------------
    if night:
        nsp = rng.integers(1, 4) + (weather == "rain")
        for s in range(nsp):
            kind = rng.choice(["pulsed", "bullfrog", "tink"])
            ncallers = rng.integers(2, 8)
            for c in range(ncallers):
                d = rng.uniform(20, 300)
                if kind == "pulsed":
                    fc, nd, pr = rng.uniform(1200, 3500), rng.uniform(0.1, 0.6), rng.uniform(20, 80)
                elif kind == "bullfrog":
                    fc, nd, pr = rng.uniform(150, 400), rng.uniform(0.2, 0.6), rng.uniform(8, 25)
                else:
                    fc, nd, pr = rng.uniform(2000, 3200), 0.03, 0
                if fc > 0.4 * fs:
                    continue
                nn = int(nd * fs)
                tt = np.arange(nn) / fs
                note = np.sin(2 * np.pi * fc * tt * (1 + 0.03 * tt / nd))
                note += 0.4 * np.sin(4 * np.pi * fc * tt) * (2 * fc < 0.45 * fs)
                if pr:
                    note *= (0.5 + 0.5 * np.sin(2 * np.pi * pr * tt)) ** 2
                note *= ar_env(nn, fs, 0.005, 0.01)
                note = propagate(norm_rms(note), fs, rng, d, 10, rt60=0.4)
                lvl = amp_spl(rng.uniform(80, 95) - 20 * np.log10(d))
                period = rng.uniform(0.5, 4)
                cm = chorus_mask
                for _b in range(rng.integers(1, 4)):          # calling bouts of 20-120 s
                    bs = rng.uniform(0, T - 20)
                    for t in np.arange(bs, min(T - 1, bs + rng.uniform(20, 120)), period * rng.uniform(0.9, 1.1)):
                        if cm[min(len(cm) - 1, int(t * fs / 100))] > 0.5 and rng.random() < 0.85:
                            add_at(B, note * lvl, t * fs)
            log("frog_chorus", 0, T, kind=str(kind), callers=int(ncallers))

    # --- point events --------------------------------------------------------------------
    rate = scene["activity"]   # events per minute scale

    def n_ev(per10min):
        return rng.poisson(per10min * rate)

    # firecrackers / elephant thunder (night, chases)
    for _ in range(n_ev(4 if night else 0.5)):
        t0 = rng.uniform(0, T - 3)
        big = rng.random() < 0.35
        d = rng.uniform(250, 1500) if not scene["hot_near"] else rng.uniform(20, 400)
        series = rng.integers(1, 4) if big else rng.choice([1, 1, 2, 3, 20])
        tt = t0
        for i in range(series):
            place_event(B, fs, rng, firecracker(rng, fs, big), tt, rng.uniform(128, 140) + 6 * big, d)
            tt += rng.uniform(0.05, 0.15) if series > 5 else rng.uniform(0.5, 4)
        log("elephant_thunder_cracker" if big else "firecracker", t0, tt - t0 + 1, distance_m=round(d), count=int(series))
    # crop guards shouting
    for _ in range(n_ev(5 if night else 1.5)):
        t0 = rng.uniform(0, T - 10)
        d = rng.uniform(30, 500)
        tt = t0
        for i in range(rng.integers(1, 6)):
            f0 = rng.uniform(150, 350)
            vw = [VOWELS[v] for v in rng.choice(list(VOWELS), 2)]
            dur = rng.uniform(0.4, 1.6)
            place_event(B, fs, rng, voice(rng, fs, f0, dur, vw), tt, rng.uniform(95, 110), d)
            tt += dur + rng.uniform(0.2, 2)
        log("crop_guard_shouting", t0, tt - t0, distance_m=round(d))
    # drumming
    for _ in range(n_ev(2.5 if night else 0.5)):
        dur = rng.uniform(5, 40)
        t0 = rng.uniform(0, T - dur)
        d = rng.uniform(50, 600)
        place_event(B, fs, rng, drum_hits(rng, fs, dur), t0, rng.uniform(95, 108), d)
        log("guard_drumming", t0, dur, distance_m=round(d))
    # temple bells and loudspeaker chanting (dawn/dusk/evening; occasionally night)
    if rng.random() < (0.7 if tod in ("dawn", "dusk") else 0.25):
        dur = rng.uniform(20, 90)
        t0 = rng.uniform(0, T - dur)
        d = rng.uniform(300, 1500)
        x, p = bell_strikes(rng, fs, dur)
        place_event(B, fs, rng, x, t0, rng.uniform(100, 112), d)
        log("temple_bell", t0, dur, distance_m=round(d), **p)
    if rng.random() < (0.6 if tod in ("dawn", "dusk") else 0.25):
        dur = rng.uniform(60, 300)
        t0 = rng.uniform(0, T - dur)
        d = rng.uniform(400, 2000)
        x, p = loudspeaker_chant(rng, fs, dur)
        place_event(B, fs, rng, x, t0, rng.uniform(112, 122), d, veg=5)
        log("loudspeaker_chanting", t0, dur, distance_m=round(d), **p)
    # vehicles: tuk-tuks, motorbikes, tractor (passing on the village road)
    for _ in range(n_ev(3 if not night else 1.2)):
        kind = rng.choice(["tuktuk", "motorbike", "motorbike", "tractor"])
        if kind == "tuktuk":      # 2-stroke single / small 4-stroke: firing 35-70 Hz
            fire, v, spl, nh, tilt = rng.uniform(35, 70), rng.uniform(6, 12), rng.uniform(92, 100), 40, 0.7
        elif kind == "motorbike":
            fire, v, spl, nh, tilt = rng.uniform(22, 60), rng.uniform(8, 18), rng.uniform(92, 102), 40, 0.8
        else:                     # 2-wheel 'land master' tractor, single-cylinder diesel
            fire, v, spl, nh, tilt = rng.uniform(12, 20), rng.uniform(2, 5), rng.uniform(98, 108), 60, 0.6
        dur = float(np.clip(rng.uniform(15, 60) * (12 / v), 12, 120))
        t0 = rng.uniform(0, T - dur)
        dmin = rng.uniform(20, 300)
        acc = 1 + 0.15 * smooth_rand(rng, int(dur * fs), fs, 0.2)
        y = passby(rng, fs, lambda dop: engine(rng, fs, dur, fire, nh, tilt, 0.4, 0.02, dop * acc), dur, v, dmin, spl)
        add_at(B, y, t0 * fs)
        log(kind, t0, dur, firing_hz=round(fire, 2), closest_m=round(dmin), speed_ms=round(v, 1))
    # diesel irrigation pump: long steady low harmonic hum (hardest rumble look-alike)
    if rng.random() < (0.5 if not hard else 0.9):
        dur = rng.uniform(120, 600)
        t0 = rng.uniform(0, T - dur)
        d = rng.uniform(80, 700)
        fire = rng.uniform(11, 19)
        x = engine(rng, fs, dur, fire, 50, rng.uniform(0.5, 0.9), 0.25, 0.004)
        x *= ar_env(len(x), fs, 3, 2)
        place_event(B, fs, rng, x, t0, rng.uniform(95, 105), d)
        log("diesel_irrigation_pump", t0, dur, firing_hz=round(fire, 2), distance_m=round(d))
    # passing diesel train with horn
    if rng.random() < (0.35 if not hard else 0.8):
        dur = rng.uniform(40, 100)
        t0 = rng.uniform(0, T - dur)
        dmin = rng.uniform(200, 1500)
        fire = rng.uniform(50, 90)
        n_t = int(dur * fs)

        def train_fn(dop):
            x = engine(rng, fs, dur, fire, 30, 0.8, 0.2, 0.01, dop)
            x += 0.8 * colored_noise(rng, n_t, fs, band_resp(30, min(3000, 0.45 * fs), 2, -3, 200))
            # rail-joint clatter: pairs of bogie impacts
            clk = colored_noise(rng, int(0.03 * fs), fs, band_resp(80, min(2000, 0.45 * fs), 1)) * decay_env(int(0.03 * fs), fs, 0.008)
            for tt in np.arange(0, dur, rng.uniform(0.6, 1.2)):
                add_at(x, clk * 3, tt * fs)
                add_at(x, clk * 3, (tt + 0.12) * fs)
            # horn: 2-3 tone chord, rich harmonics, 1-3 blasts
            fh = rng.uniform(250, 450)
            for i in range(rng.integers(1, 4)):
                hb = rng.uniform(0.8, 3.0)
                hs = dur * rng.uniform(0.2, 0.45) + i * (hb + 0.5)
                nh_ = int(hb * fs)
                s0 = int(hs * fs)
                dd = dop[s0:s0 + nh_]
                if len(dd) < nh_:
                    continue
                h = sum(harmonic_osc(fh * r * dd, fs, np.arange(1, 16, dtype=float) ** -0.6, rng=rng)
                        for r in (1.0, 1.19, 1.5)[: rng.integers(2, 4)])
                add_at(x, norm_rms(h) * ar_env(nh_, fs, 0.05, 0.1) * 10, s0)
            return x
        y = passby(rng, fs, train_fn, dur, rng.uniform(12, 25), dmin, rng.uniform(110, 118), veg=5)
        add_at(B, y, t0 * fs)
        log("diesel_train_with_horn", t0, dur, firing_hz=round(fire, 1), closest_m=round(dmin))
    # electric fence energiser ticking (recorder on the fence post: close, sharp ticks)
    if scene["fence"]:
        period = rng.uniform(0.9, 1.6)
        d = rng.uniform(1, 30)
        nt = int(0.01 * fs)
        tl = np.arange(nt) / fs
        tick = colored_noise(rng, nt, fs, band_resp(300, 0.45 * fs, 1)) * np.exp(-tl / 0.0015)
        tick += 0.5 * np.sin(2 * np.pi * min(1800, 0.3 * fs) * tl) * np.exp(-tl / 0.003)
        lvl = amp_spl(rng.uniform(60, 72) - 20 * np.log10(d))
        t_on = rng.uniform(0, 100) if rng.random() < 0.5 else 0
        for t in np.arange(t_on, T - 0.02, period):
            add_at(B, tick * lvl * rng.uniform(0.9, 1.1), (t + rng.normal(0, 0.002)) * fs)
        log("electric_fence_energiser", t_on, T - t_on, period_s=round(period, 3), distance_m=round(d, 1))
    # cattle and water buffalo
    for _ in range(n_ev(3)):
        buff = rng.random() < 0.5
        f0 = rng.uniform(60, 110) if buff else rng.uniform(90, 180)
        dur = rng.uniform(0.6, 2.5)
        cont = (lambda u, a=rng.uniform(0.05, 0.3): 1 + a * np.sin(np.pi * u))
        fm = [(rng.uniform(250, 450), 120, 1.0), (rng.uniform(700, 1100), 200, 0.5), (rng.uniform(1800, 2500), 300, 0.2)]
        x = animal_call(rng, fs, f0, dur, 40, 0.9, fm, cont, noise=0.15 if buff else 0.05)
        t0 = rng.uniform(0, T - 4)
        d = rng.uniform(30, 500)
        place_event(B, fs, rng, x, t0, rng.uniform(95, 108), d)
        log("water_buffalo" if buff else "cattle", t0, dur, f0=round(f0, 1), distance_m=round(d))
    # dogs: bark bouts and occasional howls
    for _ in range(n_ev(4 if night else 2)):
        t0 = rng.uniform(0, T - 15)
        d = rng.uniform(40, 600)
        howl = rng.random() < 0.2
        tt = t0
        for i in range(rng.integers(1, 3) if howl else rng.integers(2, 15)):
            if howl:
                dur = rng.uniform(1, 3)
                x = animal_call(rng, fs, rng.uniform(400, 800), dur, 6, 1.5, None,
                                lambda u: 1 + 0.15 * np.sin(np.pi * u), noise=0.03, jitter=0.005)
            else:
                dur = rng.uniform(0.08, 0.25)
                x = animal_call(rng, fs, rng.uniform(300, 700), dur, 20, 0.8,
                                [(rng.uniform(600, 1200), 300, 1), (rng.uniform(1800, 2800), 400, 0.6)],
                                lambda u: 1 + 0.2 * np.sin(np.pi * u), noise=0.5, jitter=0.05)
            place_event(B, fs, rng, x, tt, rng.uniform(100, 112), d)
            tt += dur + rng.uniform(0.2, 1.0)
        log("dog_howl" if howl else "dog_barking", t0, tt - t0, distance_m=round(d))
    # peafowl: loud trumpet-like 'may-awe' series (dawn/dusk mostly, also at night disturbances)
    for _ in range(n_ev(5 if tod in ("dawn", "dusk") else 1.5)):
        t0 = rng.uniform(0, T - 15)
        d = rng.uniform(40, 500)
        tt = t0
        f0 = rng.uniform(450, 1000)
        for i in range(rng.integers(2, 8)):
            dur = rng.uniform(0.25, 0.55)
            x = animal_call(rng, fs, f0, dur, 12, 0.6, None,
                            lambda u: 0.8 + 0.35 * np.sin(np.pi * np.minimum(1, u * 1.3)), noise=0.1, jitter=0.01)
            place_event(B, fs, rng, x, tt, rng.uniform(100, 110), d)
            tt += dur + rng.uniform(0.6, 2.0)
        log("peafowl", t0, tt - t0, f0=round(f0, 1), distance_m=round(d))
    # langur and macaque alarm calls
    for _ in range(n_ev(1.5 if not night else 0.6)):
        t0 = rng.uniform(0, T - 10)
        d = rng.uniform(40, 400)
        mac = rng.random() < 0.5
        tt = t0
        for i in range(rng.integers(2, 10)):
            dur = rng.uniform(0.1, 0.4) if mac else rng.uniform(0.08, 0.2)
            x = noisy_burst(rng, fs, dur, 1000 if mac else 400, 5000 if mac else 2500, 0.01, 0.04)
            if mac:
                x = x + 0.7 * animal_call(rng, fs, rng.uniform(1200, 2500), dur, 4, 1.0, None,
                                          lambda u: 1 + 0.2 * np.sin(np.pi * u), 0.1)
            place_event(B, fs, rng, x, tt, rng.uniform(95, 105), d)
            tt += dur + rng.uniform(0.15, 0.8)
        log("macaque_alarm" if mac else "langur_alarm", t0, tt - t0, distance_m=round(d))
    # owls and nightjars
    if night:
        for _ in range(n_ev(3)):
            t0 = rng.uniform(0, T - 30)
            d = rng.uniform(30, 400)
            f0 = rng.uniform(200, 550)
            tt = t0
            gap = rng.uniform(0.4, 12)
            for i in range(rng.integers(2, 10)):
                dur = rng.uniform(0.12, 0.6)
                x = animal_call(rng, fs, f0, dur, 3, 2.0, None, lambda u: 1 - 0.08 * u, 0.02, 0.003)
                place_event(B, fs, rng, x, tt, rng.uniform(85, 98), d)
                tt += dur + gap * rng.uniform(0.8, 1.2)
            log("owl_hoots", t0, tt - t0, f0=round(f0, 1), distance_m=round(d))
        for _ in range(n_ev(2)):
            dur = rng.uniform(5, 60)
            t0 = rng.uniform(0, T - dur)
            d = rng.uniform(30, 300)
            fc = rng.uniform(700, 2000)
            x = np.zeros(int(dur * fs))
            note = animal_call(rng, fs, fc, 0.035, 5, 1.0, None, lambda u: 1 - 0.2 * u, 0.3)
            tt = 0
            r0 = rng.uniform(3, 8)
            while tt < dur - 0.1:
                add_at(x, note, tt * fs)
                tt += 1 / r0 * rng.uniform(0.9, 1.1)
            place_event(B, fs, rng, norm_rms(x), t0, rng.uniform(85, 95), d)
            log("nightjar", t0, dur, freq_hz=round(fc), rate=round(r0, 1), distance_m=round(d))
    return B, ev


# ----------------------------------------------------------------------------------------
# SNR measurement and boxes
# ----------------------------------------------------------------------------------------
def band_power(seg, fs, lo, hi):
    """Power of `seg` inside [lo, hi] Hz (periodogram, rectangular window, Parseval-exact)."""
    X = np.fft.rfft(seg)
    f = np.fft.rfftfreq(len(seg), 1.0 / fs)
    m = (f >= lo) & (f <= hi)
    return float(np.sum(np.abs(X[m]) ** 2)) / len(seg) ** 2


def spectral_extent(seg, fs, thr_db=30.0):
    """Frequency extent of a call: where its smoothed spectrum is within thr_db of the peak."""
    nper = min(len(seg), int(2 ** np.ceil(np.log2(fs * 0.5))))
    f, p = signal.welch(seg, fs, nperseg=nper, noverlap=nper // 2)
    p = np.convolve(p, np.ones(3) / 3, "same")
    keep = np.nonzero(p >= p.max() * 10 ** (-thr_db / 10))[0]
    lo = f[keep[0]] if len(keep) else 0.0
    hi = f[keep[-1]] if len(keep) else fs / 2
    df = f[1] - f[0]
    return max(0.0, lo - df), min(fs / 2.0, hi + df)


# ----------------------------------------------------------------------------------------
# call timeline
# ----------------------------------------------------------------------------------------
def plan_calls(rng, T):
    """Episodes of calling: rumble bouts (most), chases (trumpets/roars/cries), chirp bouts."""
    target = rng.integers(22, 46)
    calls = []
    while len(calls) < target:
        kind = rng.choice(["rumble_bout", "rumble_bout", "chase", "chase", "chirps", "social"])
        t = rng.uniform(3, T - 40)
        if kind == "rumble_bout":
            for i in range(rng.integers(2, 6)):
                calls.append(("rumble", t, kind))
                t += rng.uniform(-2.0, 12.0) if rng.random() < 0.35 else rng.uniform(3, 20)
        elif kind == "chase":
            for i in range(rng.integers(2, 6)):
                calls.append((rng.choice(["trumpet", "trumpet", "roar", "cry", "rumble"]), t, kind))
                t += rng.uniform(-0.5, 4.0)
        elif kind == "chirps":
            for i in range(rng.integers(2, 5)):
                calls.append(("cry", t, kind))
                t += rng.uniform(0.3, 2.5)
        else:
            calls.append(("rumble", t, kind))
            calls.append((rng.choice(["roar", "trumpet", "cry"]), t + rng.uniform(-1, 4), kind))
    calls = [c for c in calls if 0.5 < c[1] < T - 12][:target]
    for cls in CALL_FUNCS:          # every file holds every class at least once
        if not any(c[0] == cls for c in calls):
            calls.append((cls, rng.uniform(3, T - 40), "single"))
    return calls


# ----------------------------------------------------------------------------------------
# one file
# ----------------------------------------------------------------------------------------
def make_file(path_wav, meta_dir, fs, unit, scene, rng, with_calls, hard=False):
    t_start = time.time()
    n = int(round(DUR * fs))
    rec = Recorder(unit, fs)
    B, events = build_background(rng, fs, n, scene, hard)
    Nrec = rec.linear(B)
    del B
    sn, sev = rec.self_noise(rng, n)
    Nrec += sn
    del sn
    events += sev
    dc = rec.p["dc"] * rng.uniform(0.5, 1.5)
    Nrec += dc
    Crec = np.zeros(n)
    calls_meta = []
    if with_calls:
        veg = rng.uniform(5, 14)
        for cls, t0, episode in plan_calls(rng, DUR):
            dry, params = CALL_FUNCS[cls](rng, fs)
            # active extent of the dry call (envelope > 10% of its peak, smoothed)
            envl = np.convolve(np.abs(dry), np.ones(max(1, int(0.01 * fs))) / max(1, int(0.01 * fs)), "same")
            act = np.nonzero(envl > 0.1 * envl.max())[0]
            a0, a1 = act[0], act[-1]
            # target in-band SNR: ~30 % of calls below 0 dB, the rest 0..30 dB (trumpets louder)
            base = {"rumble": (0, 26), "roar": (0, 28), "cry": (0, 24), "trumpet": (3, 30)}[cls]
            snr_t = rng.uniform(*base) if rng.random() > 0.3 else rng.uniform(-10, 0)
            dist = 10 ** (np.interp(snr_t, [-10, 30], [np.log10(1500), np.log10(40)]) + rng.normal(0, 0.15))
            if cls == "rumble":
                dist *= 1.5
            y = propagate(dry, fs, rng, dist, veg)
            yr = rec.linear(np.concatenate([y, np.zeros(int(0.5 * fs))]))
            i0 = int(t0 * fs) - int(PAD * fs)
            b, e = int(t0 * fs) + a0 - int(PAD * fs), int(t0 * fs) + a1 - int(PAD * fs)
            b, e = max(b, 0), min(e, n)
            # frequency box from the isolated recorded call
            ys = yr[b - i0:e - i0]
            lo, hi = spectral_extent(ys, fs)
            p_call = band_power(ys, fs, lo, hi)
            p_noise = band_power(Nrec[b:e], fs, lo, hi)
            scale = np.sqrt(10 ** (snr_t / 10) * p_noise / (p_call + 1e-30))
            scale = min(scale, 1.5 / (np.max(np.abs(yr)) + 1e-12))    # no absurd levels
            yr *= scale
            add_at(Crec, yr, i0)
            snr = 10 * np.log10(band_power(yr[b - i0:e - i0], fs, lo, hi) / (p_noise + 1e-30))
            calls_meta.append(dict(cls=cls, begin=b / fs, end=e / fs, low=lo, high=hi, snr=snr,
                                   target_snr=round(float(snr_t), 2), distance_m=round(float(dist), 1),
                                   episode=str(episode), **params))
    dbg = os.environ.get("CONFLICT_DEBUG_DIR")     # optional: dump separated tracks for checks
    if dbg:
        nm = os.path.splitext(os.path.basename(path_wav))[0]
        np.save(os.path.join(dbg, nm + "_calls.npy"), Crec.astype(np.float32))
        np.save(os.path.join(dbg, nm + "_noise.npy"), Nrec.astype(np.float32))
    # mix, recorder non-linearities, quantisation
    x = Crec + Nrec
    del Crec
    clipped_frac = 0.0
    if rec.p["clip"]:
        x = rec.clip_stage(x)
        clipped_frac = float(np.mean(np.abs(x) > 0.84))
    peak = float(np.max(np.abs(x)))
    norm = 1.0
    if peak > 0.98 and not rec.p["clip"]:
        norm = 0.97 / peak     # unit's automatic level guard: scales all components equally
        x *= norm
    x = np.clip(np.round(x * 32767), -32768, 32767).astype(np.int16)
    sf.write(path_wav, x, fs, subtype="PCM_16")
    # SNR re-check on the written (dequantised) file is not separable, so the table reports
    # the separable linear-domain measure (identical up to 16-bit quantisation).
    base = os.path.splitext(path_wav)[0]
    calls_meta.sort(key=lambda c: c["begin"])
    with open(base + ".selections.txt", "w") as fh:
        fh.write(HEADER + "\n")
        for i, c in enumerate(calls_meta, 1):
            fh.write(f"{i}\tSpectrogram 1\t1\t{c['begin']:.4f}\t{c['end']:.4f}\t{c['low']:.1f}\t"
                     f"{c['high']:.1f}\t{c['cls']}\t{c['snr']:.2f}\n")
    meta = dict(file=os.path.basename(path_wav), sample_rate=fs, duration_s=DUR, recorder=unit,
                recorder_params=UNITS[unit], scene=scene, dc_offset=dc, digital_norm=norm,
                clipped_fraction=clipped_frac, n_calls=len(calls_meta),
                calls=[{k: (round(v, 4) if isinstance(v, float) else v) for k, v in c.items()} for c in calls_meta],
                confounders=events, gen_seconds=round(time.time() - t_start, 2))
    with open(os.path.join(meta_dir, os.path.basename(base) + ".json"), "w") as fh:
        json.dump(meta, fh, indent=1, default=lambda o: o.item() if hasattr(o, "item") else str(o))
    return meta


def random_scene(rng, hard=False):
    tod = rng.choice(["night", "night", "night", "night", "dusk", "dawn", "day"])
    weather = rng.choice(["dry", "dry", "rain", "storm_far"])
    return dict(time=str(tod), weather=str(weather),
                wind=float(rng.choice([0, 0.3, 0.6, 1.0, 1.4]) if not hard else rng.uniform(0.6, 1.5)),
                activity=float(rng.uniform(0.6, 1.6) * (1.4 if hard else 1.0)),
                fence=bool(rng.random() < 0.5), hot_near=False)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--set", choices=["calls", "free"], required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--seed", type=int, required=True)
    ap.add_argument("--meta", required=True)
    a = ap.parse_args()
    os.makedirs(a.out, exist_ok=True)
    os.makedirs(a.meta, exist_ok=True)
    set_id = 0 if a.set == "calls" else 1
    master = np.random.default_rng([a.seed, set_id, 5])
    units = list(UNITS)
    if a.set == "calls":
        specs = [(r, j) for r in RATES for j in range(2)]
    else:
        specs = [(RATES[i % len(RATES)], i) for i in range(12)]
    # recorder assignment: shuffled cycle so every unit (incl. the clipping one) appears
    order = [units[i % len(units)] for i in range(len(specs))]
    master.shuffle(order)
    file_seeds = master.integers(0, 2 ** 63, len(specs))
    t0 = time.time()
    for i, ((fs, j), unit, fseed) in enumerate(zip(specs, order, file_seeds)):
        rng = np.random.default_rng(int(fseed))
        hard = a.set == "free" and i % 3 == 0
        scene = random_scene(rng, hard)
        if unit == "C1_hot":
            scene["hot_near"] = True
        name = (f"calls_{i + 1:02d}_{fs}Hz_{unit}" if a.set == "calls" else f"free_{i + 1:02d}_{fs}Hz_{unit}")
        m = make_file(os.path.join(a.out, name + ".wav"), a.meta, fs, unit, scene, rng, a.set == "calls", hard)
        print(f"{name}: {m['n_calls']} calls, {len(m['confounders'])} confounder entries, "
              f"{m['gen_seconds']} s", flush=True)
    print(f"total {time.time() - t0:.1f} s")


if __name__ == "__main__":
    main()
