#!/usr/bin/env python3
"""Synthetic test soundscapes for forest-elephant call detectors.

Written on 2026-11-29 by a separate agent from the issue's description of the acoustics and a
site description alone, without reading this repository's other generators, so that scores on
its scenes show how the default model does on sound someone else chose. It shares no code with
them on purpose; do not fold its helpers into theirs.

Site: a Central African forest clearing (bai) and the rainforest around it, recorded by
cheap autonomous recorders strapped to trees (MEMS or electret microphones, 2-48 kHz).

    python models/forest_soundscape.py --set calls|free --out DIR --seed S --meta METADIR

Design in one paragraph: every sound is synthesised at an internal rate fs/k that is just
high enough for that sound's band (k integer), propagated (frequency-dependent excess
attenuation of vegetation + air), reverberated (forest tail), and upsampled to the file
rate with a polyphase anti-alias filter, so nothing ever exists above the recorder's Nyquist.
All non-elephant sound is summed into one "noise" track, elephant calls into a "call" track;
both go through the same linear recorder chain (high-pass, mic resonance, anti-alias low-pass).
Call levels are set from a drawn target SNR and then the SNR is *measured* on the final
signals (gain and DC offset applied, before clipping/quantisation). See forest_soundscape.md.
"""
import argparse
import json
import os
import sys
import time

import numpy as np
import scipy.fft
import scipy.signal as sps
import soundfile as sf

RATES = [2000, 4000, 8000, 16000, 22050, 44100, 48000]
DUR = 600.0
HEADER = ("Selection\tView\tChannel\tBegin Time (s)\tEnd Time (s)\tLow Freq (Hz)\t"
          "High Freq (Hz)\tClass\tSNR (dB)")


# =====================================================================================
# Signal primitives
# =====================================================================================
def _sos(kind, f, fs, order):
    return sps.butter(order, f, kind, fs=fs, output='sos')


def bandnoise(rng, n, fs, lo, hi, order=2):
    """White Gaussian noise band-passed to [lo, hi] (hi clipped to 0.45 fs)."""
    hi = min(hi, 0.45 * fs)
    if lo >= hi * 0.95 or n <= 0:
        return np.zeros(max(n, 0))
    x = rng.standard_normal(n)
    if lo <= 0:
        return sps.sosfilt(_sos('lowpass', hi, fs, order), x)
    if hi >= 0.449 * fs:
        return sps.sosfilt(_sos('highpass', lo, fs, order), x)
    return sps.sosfilt(_sos('bandpass', [lo, hi], fs, order), x)


def ar_env(n, fs, att, rel):
    """Raised-cosine attack / release envelope."""
    e = np.ones(n)
    na = min(n, max(1, int(att * fs)))
    e[:na] = 0.5 - 0.5 * np.cos(np.pi * np.arange(na) / na)
    nr = min(n - na, max(1, int(rel * fs)))
    if nr > 0:
        e[n - nr:] *= 0.5 + 0.5 * np.cos(np.pi * np.arange(nr) / nr)
    return e


def smooth_rand(rng, n, fs, rate):
    """Slowly varying random control signal (unit-ish std), ~rate Hz bandwidth."""
    m = max(2, int(n / fs * rate) + 2)
    pts = rng.standard_normal(m)
    return np.interp(np.linspace(0, m - 1, n), np.arange(m), pts)


def harmonics(rng, f0, fs, amp_fn, nmax=400, fmax=None):
    """Additive synthesis of a harmonic stack with instantaneous fundamental f0 (array).
    Partials fade out before min(fmax, 0.45 fs): the result is band-limited (no aliasing)."""
    ph = 2 * np.pi * np.cumsum(f0) / fs
    lim = 0.45 * fs if fmax is None else min(fmax, 0.45 * fs)
    y = np.zeros(len(f0))
    for h in range(1, nmax + 1):
        fh = h * f0
        if fh.min() >= lim:
            break
        a = amp_fn(h, fh) * np.clip((lim - fh) / (0.08 * lim), 0, 1)
        y += a * np.sin(h * ph + rng.uniform(0, 2 * np.pi))
    return y


def resonances(f, formants, floor=0.08):
    """Amplitude response of a set of (centre, bandwidth, gain) resonances."""
    g = np.full(np.shape(f), floor, dtype=float)
    for F, B, A in formants:
        g = g + A / np.sqrt(1 + ((f - F) / (B / 2)) ** 2)
    return g


def fft_filter(x, fs, gain_fn):
    """Zero-phase filtering with an arbitrary magnitude response gain_fn(f)."""
    n = len(x)
    N = scipy.fft.next_fast_len(n)
    X = np.fft.rfft(x, N)
    f = np.fft.rfftfreq(N, 1 / fs)
    return np.fft.irfft(X * gain_fn(f), N)[:n]


def damped(fs, f, tau, dur=None, rng=None):
    """Exponentially damped sinusoid (an impact / thump)."""
    dur = dur or 6 * tau
    t = np.arange(int(dur * fs)) / fs
    if f >= 0.45 * fs:
        return np.zeros(len(t))
    return np.sin(2 * np.pi * f * t) * np.exp(-t / tau)


def place(dst, src, i0, scale=1.0):
    """Add src into dst starting at sample i0 (either may stick out of the array)."""
    a, b = max(0, i0), min(len(dst), i0 + len(src))
    if b > a:
        dst[a:b] += scale * src[a - i0:b - i0]


def rms(x):
    return float(np.sqrt(np.mean(x ** 2) + 1e-30))


def uni(rng, a, b):
    return float(rng.uniform(a, b))


def logu(rng, a, b):
    return float(np.exp(rng.uniform(np.log(a), np.log(b))))


# =====================================================================================
# Propagation and reverberation
# =====================================================================================
def propagate(x, fs, dist, veg):
    """Excess attenuation in dB/m: vegetation scattering/absorption ~ f^1.3 plus air
    absorption ~ f^2. At 1 km (veg=1): ~1.5 dB at 100 Hz, ~30 dB at 1 kHz."""
    if dist <= 0:
        return x

    def g(f):
        fk = f / 1000.0
        return 10 ** (-(veg * 0.03 * fk ** 1.3 + 0.003 * fk ** 2) * dist / 20)
    return fft_filter(np.concatenate([x, np.zeros(int(0.05 * fs))]), fs, g)


def reverb(x, fs, rng, rt60, drr_db):
    """Direct path + forest reverberation tail (exponentially decaying noise, band
    150 Hz-5 kHz: foliage scatters mid/high frequencies more than low ones)."""
    n = int(rt60 * fs)
    t = np.arange(n) / fs
    tail = bandnoise(rng, n, fs, 150, 5000, 1) * np.exp(-6.91 * t / rt60)
    tail[:max(1, int(0.004 * fs))] = 0.0
    tail *= np.sqrt(10 ** (-drr_db / 10) / (np.sum(tail ** 2) + 1e-30))
    tail[0] = 1.0
    return sps.oaconvolve(x, tail)


def render(fn, P, rng, fs, band, dist=0.0, veg=1.0, rt60=0.0, drr=10.0):
    """Synthesise fn at the lowest integer sub-rate fs/k >= 2.5*band, propagate,
    reverberate and upsample to fs (polyphase FIR = proper anti-alias filtering)."""
    k = max(1, int(fs // (2.5 * band)))
    fsi = fs / k
    y = fn(rng, fsi, P)
    if dist > 0:
        y = propagate(y, fsi, dist, veg)
    if rt60 > 0:
        y = reverb(y, fsi, rng, rt60, drr)
    if k > 1:
        y = sps.resample_poly(y, k, 1)
    return y


# =====================================================================================
# Elephant calls (Loxodonta cyclotis)
# =====================================================================================
def m_rumble(rng, fs, P):
    """Harmonic rumble: f0 8-25 Hz, arched or flat contour, weak fundamental, formant
    filtering (nasal F1~40/F2~170 Hz or oral F1~130/F2~400 Hz), breathy noise."""
    n = int(P['dur'] * fs)
    u = np.arange(n) / max(n - 1, 1)
    if P['contour'] == 'arched':
        pos = P['peak_pos']
        c = 1 + P['rise'] * np.sin(np.pi * u ** (np.log(0.5) / np.log(pos)))
    else:
        c = 1 + P['drift'] * u
    f0 = P['f0'] * c * (1 + P['jitter'] * smooth_rand(rng, n, fs, 6))
    forms = P['formants']
    tilt, w1 = P['tilt'], P['h1']

    def amp(h, fh):
        a = h ** (-tilt) * resonances(fh, forms)
        return a * w1 if h == 1 else a
    y = harmonics(rng, f0, fs, amp, fmax=P['fmax'])
    br = bandnoise(rng, n, fs, 10, 300, 2)
    y += br * rms(y) / rms(br) * 10 ** (-P['noise_db'] / 20)
    env = ar_env(n, fs, P['att'], P['rel']) * (1 + 0.15 * smooth_rand(rng, n, fs, 2))
    return y * env


def m_roar(rng, fs, P):
    """Noisy broadband roar 0.1-3 kHz, pulsatile AM, weak chaotic harmonic core."""
    n = int(P['dur'] * fs)
    x = bandnoise(rng, n, fs, 100, 3000, 2)
    x = fft_filter(x, fs, lambda f: resonances(f, P['formants'], 0.3))
    f0 = P['f0'] * (1 + 0.08 * smooth_rand(rng, n, fs, 15))
    hcore = harmonics(rng, f0, fs, lambda h, fh: h ** -1.0, fmax=3000)
    x = x / rms(x) + 10 ** (-P['harm_db'] / 20) * hcore / rms(hcore)
    t = np.arange(n) / fs
    am = 1 + P['am_depth'] * np.sin(2 * np.pi * np.cumsum(P['am_rate'] * (1 + 0.2 * smooth_rand(rng, n, fs, 4))) / fs)
    arch = np.sin(np.pi * np.clip(t / P['dur'], 0, 1)) ** 0.5
    return x * am * arch * ar_env(n, fs, P['att'], P['rel'])


def m_cry(rng, fs, P):
    """Tonal cry: f0 of a few hundred Hz with vibrato, slight arch, harmonics to ~3 kHz."""
    n = int(P['dur'] * fs)
    t = np.arange(n) / fs
    u = t / P['dur']
    f0 = P['f0'] * (1 + P['arch'] * np.sin(np.pi * u)) * \
        (1 + P['vib_depth'] * np.sin(2 * np.pi * P['vib_rate'] * t + rng.uniform(0, 6.3)))
    y = harmonics(rng, f0, fs, lambda h, fh: h ** (-P['tilt']), fmax=P['fmax'])
    nz = bandnoise(rng, n, fs, 200, 3000, 2)
    y += nz * rms(y) / rms(nz) * 10 ** (-P['noise_db'] / 20)
    return y * ar_env(n, fs, P['att'], P['rel'])


def m_trumpet(rng, fs, P):
    """Trumpet: loud, f0 300-600 Hz with onset rise, brassy harmonics into kHz whose
    brightness follows loudness, strong broadband noise, optional subharmonic segment."""
    n = int(P['dur'] * fs)
    t = np.arange(n) / fs
    env = ar_env(n, fs, P['att'], P['rel']) * (1 + 0.2 * smooth_rand(rng, n, fs, 8))
    f0 = P['f0'] * (0.8 + 0.2 * np.clip(t / 0.12, 0, 1)) * (1 - P['fall'] * np.clip(t / P['dur'], 0, 1) ** 2) \
        * (1 + 0.03 * smooth_rand(rng, n, fs, 20))
    e = np.clip(env, 0, None)

    def amp(h, fh):
        return h ** (-(1.6 - 1.0 * e))
    y = harmonics(rng, f0, fs, amp, fmax=P['fmax'])
    if P['subharm']:
        sub = harmonics(rng, f0 / 2, fs, lambda h, fh: 0.3 * h ** -1.2 * (h % 2), fmax=P['fmax'])
        g = np.zeros(n)
        a, b = int(0.3 * n), int(0.7 * n)
        g[a:b] = np.hanning(b - a)
        y += sub * g
    nz = bandnoise(rng, n, fs, 300, 7000, 2)
    y += nz * rms(y) / rms(nz) * 10 ** (-P['noise_db'] / 20)
    return y * env


CALL_MODELS = {'rumble': (m_rumble, 1000.0), 'roar': (m_roar, 3500.0),
               'cry': (m_cry, 3500.0), 'trumpet': (m_trumpet, 9000.0)}


def draw_call_params(rng, cls):
    if cls == 'rumble':
        nasal = rng.random() < 0.7
        F = [(40, 25, 1.0), (170, 60, 0.6)] if nasal else [(130, 60, 1.0), (410, 120, 0.5)]
        forms = [(f * uni(rng, 0.85, 1.15), b * uni(rng, 0.7, 1.4), a) for f, b, a in F]
        return dict(dur=float(np.clip(rng.lognormal(np.log(3.5), 0.45), 1.0, 8.0)),
                    f0=uni(rng, 8, 22), contour='arched' if rng.random() < 0.6 else 'flat',
                    peak_pos=uni(rng, 0.25, 0.6), rise=uni(rng, 0.08, 0.45), drift=uni(rng, -0.15, 0.05),
                    jitter=uni(rng, 0.005, 0.02), formants=forms, nasal=bool(nasal), tilt=uni(rng, 0.6, 1.2),
                    h1=uni(rng, 0.1, 0.4), fmax=uni(rng, 350, 900), noise_db=uni(rng, 12, 25),
                    att=uni(rng, 0.2, 0.8), rel=uni(rng, 0.4, 1.5))
    if cls == 'roar':
        return dict(dur=uni(rng, 1.0, 3.0), f0=uni(rng, 120, 300), harm_db=uni(rng, 6, 15),
                    formants=[(uni(rng, 300, 700), uni(rng, 150, 400), 1.0),
                              (uni(rng, 900, 1800), uni(rng, 300, 800), 0.7)],
                    am_rate=uni(rng, 15, 45), am_depth=uni(rng, 0.3, 0.8),
                    att=uni(rng, 0.05, 0.3), rel=uni(rng, 0.2, 0.8))
    if cls == 'cry':
        return dict(dur=uni(rng, 0.5, 2.5), f0=uni(rng, 250, 600), arch=uni(rng, -0.1, 0.25),
                    vib_rate=uni(rng, 4, 12), vib_depth=uni(rng, 0.02, 0.08), tilt=uni(rng, 1.0, 2.0),
                    fmax=uni(rng, 2000, 3500), noise_db=uni(rng, 15, 30),
                    att=uni(rng, 0.05, 0.2), rel=uni(rng, 0.1, 0.5))
    return dict(dur=uni(rng, 0.3, 2.0), f0=uni(rng, 300, 600), fall=uni(rng, 0.0, 0.25),
                fmax=uni(rng, 4000, 9000), subharm=bool(rng.random() < 0.3), noise_db=uni(rng, 4, 14),
                att=uni(rng, 0.02, 0.1), rel=uni(rng, 0.05, 0.3))


# =====================================================================================
# Confounders and backgrounds of the site.  Each model: fn(rng, fs, P) -> array at fs.
# =====================================================================================
def engine(rng, fs, n, f_cyc, fire_order, amp_fire, fmax, wander, tilt=0.8):
    """Combustion engine: harmonics of the cycle frequency f_cyc (array), firing-order
    multiples emphasised (the classic low harmonic hum), plus mechanical noise."""
    f = f_cyc * (1 + wander * smooth_rand(rng, n, fs, 0.5))
    boost = rng.uniform(0.3, 1.0, 64)

    def amp(h, fh):
        a = (h ** -tilt) * (amp_fire if h % fire_order == 0 else 0.25) * boost[h % 64]
        return a
    y = harmonics(rng, f, fs, amp, fmax=fmax)
    nz = bandnoise(rng, n, fs, 30, fmax, 2)
    return y + nz * rms(y) / rms(nz) * 0.25


def passby(n, fs, tc, tw):
    t = np.arange(n) / fs
    return 1 / np.sqrt(1 + ((t - tc) / tw) ** 2)


def m_generator(rng, fs, P):
    n = int(P['dur'] * fs)
    y = engine(rng, fs, n, np.full(n, P['f_rot'] / 2), P['cyl'], 1.0, 900, 0.002)
    return y * ar_env(n, fs, 3, 3)


def m_truck(rng, fs, P):
    n = int(P['dur'] * fs)
    t = np.arange(n) / fs
    # gear changes: rpm climbs, drops at each shift
    ph = (t / P['shift_period']) % 1.0
    rpm = P['rpm'] * (0.8 + 0.35 * ph) * (1 + 0.03 * smooth_rand(rng, n, fs, 1))
    y = engine(rng, fs, n, rpm / 120, 6, 1.0, 1800, 0.01, 0.7)
    y += bandnoise(rng, n, fs, 40, 600, 1) * rms(y) * 0.5
    return y * passby(n, fs, P['dur'] / 2, P['dur'] / 6) * ar_env(n, fs, 5, 5)


def m_motorbike(rng, fs, P):
    n = int(P['dur'] * fs)
    t = np.arange(n) / fs
    rpm = P['rpm'] * (1 + 0.25 * smooth_rand(rng, n, fs, 0.3))
    v, c, d0 = P['speed'], 343.0, P['closest']
    x = v * (t - P['dur'] / 2)
    dop = 1 / (1 + (v * x / np.sqrt(x ** 2 + d0 ** 2)) / c)      # approaching -> higher pitch
    y = engine(rng, fs, n, rpm / 120 * dop, 1, 1.0, 3000, 0.01, 0.6)
    return y * passby(n, fs, P['dur'] / 2, d0 / v + 2) * ar_env(n, fs, 2, 2)


def m_chainsaw(rng, fs, P):
    n = int(P['dur'] * fs)
    # sequence of cuts (high rpm) separated by idling
    rpm = np.full(n, 2800.0)
    t = 2.0
    cuts = []
    while t < P['dur'] - 3:
        L = uni(rng, 3, 20)
        a, b = int(t * fs), int(min(t + L, P['dur'] - 1) * fs)
        rpm[a:b] = P['rpm_cut']
        cuts.append((t, t + L))
        t += L + uni(rng, 2, 15)
    rpm = sps.sosfiltfilt(_sos('lowpass', 1.5, fs, 2), rpm) * (1 + 0.02 * smooth_rand(rng, n, fs, 3))
    y = engine(rng, fs, n, rpm / 60, 1, 1.0, 5000, 0.0, 0.5)
    load = np.clip((rpm - 2800) / (P['rpm_cut'] - 2800), 0, 1)
    y += bandnoise(rng, n, fs, 1000, 6000, 2) * rms(y) * 0.6 * load
    return y * ar_env(n, fs, 1, 1)


def m_aircraft(rng, fs, P):
    n = int(P['dur'] * fs)
    t = np.arange(n) / fs
    env = passby(n, fs, P['dur'] / 2, P['dur'] / 5) ** 2 * ar_env(n, fs, 10, 10)
    if P['kind'] == 'jet':
        y = bandnoise(rng, n, fs, 30, 1500, 1)
        y = fft_filter(y, fs, lambda f: resonances(f, [(P['peak'], 300, 1.0)], 0.2))
    else:  # propeller: blade-passing harmonics with Doppler sweep
        dop = 1 + 0.08 * np.tanh(-(t - P['dur'] / 2) / (P['dur'] / 8))
        y = harmonics(rng, P['bpf'] * dop, fs, lambda h, fh: h ** -0.9, fmax=2000)
        y += bandnoise(rng, n, fs, 50, 1500, 1) * rms(y) * 0.5
    return y * env


def m_gunshot(rng, fs, P):
    n = int(P['dur'] * fs)
    y = np.zeros(n)
    for ts in P['shots']:
        m = int(0.25 * fs)
        tt = np.arange(m) / fs
        blast = bandnoise(rng, m, fs, 80, 8000, 2) * np.exp(-tt / 0.012)
        blast += damped(fs, uni(rng, 60, 150), 0.02, 0.25)[:m] * 0.5
        place(y, blast, int(ts * fs))
    return y


def m_thunder(rng, fs, P):
    n = int(P['dur'] * fs)
    t = np.arange(n) / fs
    low = bandnoise(rng, n, fs, 15, P['fhi'], 2)
    env = np.zeros(n)
    for _ in range(P['n_rolls']):
        t0 = uni(rng, 0, P['dur'] * 0.6)
        env += uni(rng, 0.3, 1.0) * np.exp(-np.clip(t - t0, 0, None) / uni(rng, 0.5, 4)) * (t >= t0)
    env = sps.sosfiltfilt(_sos('lowpass', 8, fs, 1), env)
    y = low * env * ar_env(n, fs, 0.05, 2)
    if P['crack']:
        m = int(0.4 * fs)
        cr = bandnoise(rng, m, fs, 300, 6000, 2) * np.exp(-np.arange(m) / fs / 0.08)
        place(y, cr * rms(y) * 6, 0)
    return y


def m_treefall(rng, fs, P):
    n = int(P['dur'] * fs)
    y = np.zeros(n)
    # creaking: grating FM tone train before the break
    m = int(P['creak'] * fs)
    if m > 0:
        f0 = uni(rng, 150, 500) * (1 + 0.3 * smooth_rand(rng, m, fs, 2))
        cr = harmonics(rng, f0, fs, lambda h, fh: h ** -1.0, fmax=3000)
        cr *= (smooth_rand(rng, m, fs, 15) > 0.3) * 0.3
        place(y, cr, 0)
    i = m
    k = int(2.5 * fs)
    crash = bandnoise(rng, k, fs, 100, 5000, 2) * np.exp(-np.arange(k) / fs / 0.6)
    place(y, crash, i)
    for _ in range(int(rng.integers(3, 10))):       # branch snaps
        place(y, bandnoise(rng, int(0.03 * fs), fs, 500, 6000, 2) * 3, i + int(rng.integers(0, k)))
    thud = damped(fs, uni(rng, 15, 45), uni(rng, 0.08, 0.3), 1.5) * 4
    place(y, thud, i + int(uni(rng, 0.5, 1.5) * fs))
    return y


def m_rain(rng, fs, P):
    """Rain on the canopy (hiss) + drops on leaves and on the recorder housing."""
    n = int(P['dur'] * fs)
    inten = np.clip(ar_env(n, fs, P['dur'] * 0.15, P['dur'] * 0.25)
                    * (1 + 0.3 * smooth_rand(rng, n, fs, 0.05)), 0, None)
    y = bandnoise(rng, n, fs, 400, 12000, 1) * inten
    # drop impacts (impulse train convolved with a few kernels)
    rate = P['drop_rate']
    for kern_f, tau, share in ((uni(rng, 1500, 5000), 0.002, 0.6), (uni(rng, 600, 1500), 0.004, 0.3),
                               (uni(rng, 60, 200), 0.02, 0.1)):
        cnt = rng.poisson(rate * share * P['dur'])
        idx = rng.integers(0, n, cnt)
        keep = rng.random(cnt) < inten[idx] / (inten.max() + 1e-9)
        imp = np.zeros(n)
        np.add.at(imp, idx[keep], rng.lognormal(0, 0.7, keep.sum()) * rng.choice([-1, 1], keep.sum()))
        k = damped(fs, kern_f, tau)
        if len(k) and k.any():
            y += sps.oaconvolve(imp, k)[:n] * (4 if kern_f < 300 else 1.5)
    return y


def m_wind(rng, fs, P):
    """Canopy rustle (mid band, gust-modulated) + microphone buffeting (strong, <~100 Hz,
    intermittent low-frequency bumps when gusts exceed a threshold)."""
    n = int(P['dur'] * fs)
    g = np.exp(0.6 * smooth_rand(rng, n, fs, P['gust_rate'])) * ar_env(n, fs, 10, 10)
    rustle = bandnoise(rng, n, fs, 250, 4000, 1) * g ** 1.5
    buf = bandnoise(rng, n, fs, 0, P['buf_fc'], 2)
    buf = buf / rms(buf) * np.clip(g - P['buf_thr'], 0, None) ** 2 * P['buf_gain']
    return rustle + buf


def m_insect_chorus(rng, fs, P):
    """Cicada chorus: band noise around fc, pulse-rate AM, crescendo/decrescendo."""
    n = int(P['dur'] * fs)
    t = np.arange(n) / fs
    x = bandnoise(rng, n, fs, P['fc'] - P['bw'] / 2, P['fc'] + P['bw'] / 2, 2)
    am = np.abs(np.sin(np.pi * P['pulse_rate'] * t)) ** 2
    return x * am * ar_env(n, fs, P['dur'] * 0.3, P['dur'] * 0.2) * (1 + 0.2 * smooth_rand(rng, n, fs, 0.2))


def m_crickets(rng, fs, P):
    n = int(P['dur'] * fs)
    y = np.zeros(n)
    for _ in range(P['n_ind']):
        fc = P['fc'] * uni(rng, 0.93, 1.07)
        pr, cr, npul = P['pulse_rate'] * uni(rng, 0.9, 1.1), uni(rng, 1, 4), int(rng.integers(2, 7))
        t = np.arange(n) / fs + uni(rng, 0, 10)
        gate = ((t % (1 / pr)) < 0.45 / pr) & ((t % (1 / cr)) < npul / pr)
        gate = sps.sosfilt(_sos('lowpass', min(400, 0.2 * fs), fs, 2), gate.astype(float))
        y += np.sin(2 * np.pi * fc * t) * gate * uni(rng, 0.3, 1.0)
    return y * ar_env(n, fs, 5, 5)


def m_buzz(rng, fs, P):
    """Flying insect passing the microphone: harmonic buzz ~120-280 Hz with Doppler wobble."""
    n = int(P['dur'] * fs)
    f0 = P['f0'] * (1 + 0.05 * smooth_rand(rng, n, fs, 1.5))
    y = harmonics(rng, f0, fs, lambda h, fh: h ** -0.8, fmax=4000)
    return y * ar_env(n, fs, P['dur'] * 0.4, P['dur'] * 0.4) * np.exp(0.5 * smooth_rand(rng, n, fs, 1))


def m_frogs(rng, fs, P):
    n = int(P['dur'] * fs)
    y = np.zeros(n)
    for _ in range(P['n_ind']):
        kind = ['pulse', 'tonal', 'croak'][int(rng.integers(0, 3))]
        if kind == 'croak':
            d = uni(rng, 0.1, 0.4)
            m = int(d * fs)
            f0 = np.full(m, uni(rng, 150, 450))
            c = harmonics(rng, f0, fs, lambda h, fh: h ** -0.7, fmax=3000)
            c *= (np.sin(np.pi * np.arange(m) / m) ** 0.5) * (1 + 0.8 * np.sin(2 * np.pi * uni(rng, 30, 80) * np.arange(m) / fs))
        elif kind == 'tonal':
            m = int(uni(rng, 0.03, 0.12) * fs)
            f = uni(rng, 1000, 3500)
            c = np.sin(2 * np.pi * f * (1 + 0.1 * np.arange(m) / m) * np.arange(m) / fs) * np.hanning(m) if f < 0.4 * fs else np.zeros(m)
        else:
            m = int(uni(rng, 0.2, 0.6) * fs)
            c = bandnoise(rng, m, fs, uni(rng, 500, 1200), uni(rng, 1500, 3000), 2)
            c *= np.abs(np.sin(np.pi * uni(rng, 15, 40) * np.arange(m) / fs)) ** 4
        period = uni(rng, 0.5, 6)
        t = uni(rng, 0, period)
        a = uni(rng, 0.2, 1.0) / (rms(c) + 1e-12)
        while t < P['dur']:
            place(y, c, int(t * fs), a)
            t += period * uni(rng, 0.8, 1.25)
    return y


def m_songbird(rng, fs, P):
    y = []
    for _ in range(P['n_notes']):
        d = uni(rng, 0.03, 0.2)
        m = int(d * fs)
        f = np.linspace(uni(rng, *P['frange']), uni(rng, *P['frange']), m)
        note = harmonics(rng, f, fs, lambda h, fh: 0.15 ** (h - 1), nmax=3) * np.hanning(m)
        y += [note, np.zeros(int(uni(rng, 0.02, 0.15) * fs))]
    return np.concatenate(y)


def m_tonal_series(rng, fs, P):
    """Generic harmonic note series: dove coos, turaco 'kow', hornbill honks, gorilla hoots,
    monkey booms, buffalo grunts, hog grunts (parameters differ per species)."""
    y = []
    for i in range(P['n_notes']):
        d = P['note_dur'] * uni(rng, 0.8, 1.2)
        m = int(d * fs)
        u = np.arange(m) / m
        f0 = P['f0'] * uni(rng, 0.95, 1.05) * (1 + P['sweep'] * u) * (1 + P['jit'] * smooth_rand(rng, m, fs, 30))
        note = harmonics(rng, f0, fs, lambda h, fh: h ** (-P['tilt']), fmax=P['fmax'])
        if P['noise'] > 0:
            nz = bandnoise(rng, m, fs, P['f0'] * 0.8, P['fmax'], 2)
            note += nz * rms(note) / (rms(nz) + 1e-12) * P['noise']
        y += [note * ar_env(m, fs, d * 0.2, d * 0.4), np.zeros(int(P['gap'] * uni(rng, 0.7, 1.3) * fs))]
    return np.concatenate(y)


def m_pant_hoot(rng, fs, P):
    """Chimpanzee pant-hoot: low 'hoo' intro, accelerating build-up pants, climax screams."""
    parts = []
    for _ in range(int(rng.integers(2, 5))):          # introduction
        parts.append(m_tonal_series(rng, fs, dict(n_notes=1, note_dur=0.3, f0=uni(rng, 250, 400), sweep=0.1,
                                                 jit=0.01, tilt=1.5, fmax=2000, noise=0.1, gap=0.4)))
    for i in range(int(rng.integers(6, 14))):         # build-up
        parts.append(m_tonal_series(rng, fs, dict(n_notes=1, note_dur=0.12, f0=350 + 40 * i, sweep=0.2,
                                                 jit=0.02, tilt=1.0, fmax=3000, noise=0.5, gap=0.25 - 0.01 * i)))
    for _ in range(int(rng.integers(2, 5))):          # climax screams
        parts.append(2 * m_tonal_series(rng, fs, dict(n_notes=1, note_dur=uni(rng, 0.3, 0.8), f0=uni(rng, 700, 1300),
                                                     sweep=-0.1, jit=0.03, tilt=0.8, fmax=6000, noise=0.6, gap=0.1)))
    return np.concatenate(parts)


def m_drum(rng, fs, P):
    """Chimpanzee buttress drumming / gorilla chest beats: trains of damped resonances."""
    y = np.zeros(int((P['n'] * P['ioi'] * 1.5 + 1) * fs))
    t = 0.0
    for _ in range(P['n']):
        k = damped(fs, P['f'] * uni(rng, 0.85, 1.15), P['tau'])
        k += bandnoise(rng, len(k), fs, P['f'], P['f'] * 4, 2) * np.exp(-np.arange(len(k)) / fs / (P['tau'] / 3)) * 0.3
        place(y, k, int(t * fs), uni(rng, 0.5, 1.0))
        t += P['ioi'] * uni(rng, 0.6, 1.5)
    return y


def m_pulse_train(rng, fs, P):
    """Colobus roar / leopard sawing: trains of noisy low harmonic pulses."""
    y = []
    for _ in range(P['n']):
        m = int(P['pulse'] * fs)
        f0 = np.full(m, P['f0'] * uni(rng, 0.9, 1.1))
        p = harmonics(rng, f0, fs, lambda h, fh: h ** -0.6, fmax=P['fmax'])
        p += bandnoise(rng, m, fs, 80, P['fmax'], 2) * rms(p) * 1.5
        y += [p * np.hanning(m), np.zeros(int(P['gap'] * uni(rng, 0.7, 1.3) * fs))]
    return np.concatenate(y)


def m_wingbeats(rng, fs, P):
    """Hornbill wing 'whoosh': broadband noise pulses at the wingbeat rate."""
    n = int(P['dur'] * fs)
    t = np.arange(n) / fs
    x = bandnoise(rng, n, fs, 300, 6000, 1)
    return x * np.abs(np.sin(np.pi * P['rate'] * t)) ** 3 * passby(n, fs, P['dur'] / 2, P['dur'] / 5)


# Confounder table: name -> (model, band Hz, point source?, vegetation factor,
#                            level range dB re bed, distance range m)
CONF = {
    'generator':    (m_generator, 900, True, 1.0, (-8, 18), (150, 2000)),
    'logging_truck': (m_truck, 1800, True, 1.0, (0, 25), (300, 3000)),
    'motorbike':    (m_motorbike, 3000, True, 1.0, (0, 25), (50, 1500)),
    'chainsaw':     (m_chainsaw, 5000, True, 1.0, (0, 25), (200, 2500)),
    'aircraft':     (m_aircraft, 2000, True, 0.05, (-5, 20), (3000, 10000)),
    'gunshot':      (m_gunshot, 8000, True, 1.0, (10, 40), (100, 3000)),
    'thunder':      (m_thunder, 6000, True, 0.05, (5, 35), (1000, 10000)),
    'tree_fall':    (m_treefall, 6000, True, 1.0, (5, 30), (30, 800)),
    'rain':         (m_rain, 12000, False, 0, (0, 30), (0, 0)),
    'wind':         (m_wind, 4000, False, 0, (-5, 25), (0, 0)),
    'cicada_chorus': (m_insect_chorus, 9000, False, 0, (0, 25), (0, 0)),
    'crickets':     (m_crickets, 8000, False, 0, (-5, 20), (0, 0)),
    'insect_buzz':  (m_buzz, 4000, False, 0, (0, 25), (0, 0)),
    'frog_chorus':  (m_frogs, 4000, False, 0, (-5, 20), (0, 0)),
    'songbird':     (m_songbird, 8000, True, 1.0, (-5, 20), (10, 200)),
    'dove':         (m_tonal_series, 1500, True, 1.0, (-5, 15), (10, 200)),
    'turaco':       (m_tonal_series, 4000, True, 1.0, (0, 20), (20, 300)),
    'parrot':       (m_tonal_series, 6000, True, 1.0, (0, 20), (20, 300)),
    'hornbill':     (m_tonal_series, 5000, True, 1.0, (0, 25), (20, 400)),
    'hornbill_wings': (m_wingbeats, 6000, True, 1.0, (0, 20), (5, 60)),
    'chimp_pant_hoot': (m_pant_hoot, 6000, True, 1.0, (0, 25), (50, 1000)),
    'chimp_drumming': (m_drum, 600, True, 1.0, (0, 25), (50, 1000)),
    'gorilla_chest_beat': (m_drum, 3000, True, 1.0, (0, 25), (30, 600)),
    'gorilla_hoot':  (m_tonal_series, 1500, True, 1.0, (-5, 15), (30, 600)),
    'monkey_boom':  (m_tonal_series, 800, True, 1.0, (-5, 20), (30, 500)),
    'monkey_pyow':  (m_tonal_series, 5000, True, 1.0, (0, 20), (20, 300)),
    'colobus_roar': (m_pulse_train, 2000, True, 1.0, (0, 20), (50, 800)),
    'leopard_saw':  (m_pulse_train, 1500, True, 1.0, (-5, 15), (50, 600)),
    'buffalo_grunt': (m_tonal_series, 1200, True, 1.0, (-5, 15), (20, 400)),
    'hog_grunt':    (m_tonal_series, 1500, True, 1.0, (-5, 15), (10, 200)),
}


def draw_conf_params(rng, name, scen):
    """Per-event parameters (species templates for the generic models)."""
    def series(n, d, f0, sweep, jit, tilt, fmax, noise, gap):
        return dict(n_notes=int(rng.integers(*n)), note_dur=uni(rng, *d), f0=uni(rng, *f0),
                    sweep=uni(rng, *sweep), jit=jit, tilt=tilt, fmax=fmax, noise=noise, gap=uni(rng, *gap))
    if name == 'generator':
        return dict(dur=uni(rng, 120, 600), f_rot=float(rng.choice([25.0, 30.0])) * uni(rng, 0.98, 1.02),
                    cyl=int(rng.choice([2, 3, 4])))
    if name == 'logging_truck':
        return dict(dur=uni(rng, 40, 200), rpm=uni(rng, 900, 1800), shift_period=uni(rng, 5, 15))
    if name == 'motorbike':
        return dict(dur=uni(rng, 20, 90), rpm=uni(rng, 3000, 7000), speed=uni(rng, 6, 15), closest=uni(rng, 10, 100))
    if name == 'chainsaw':
        return dict(dur=uni(rng, 30, 240), rpm_cut=uni(rng, 9000, 12500))
    if name == 'aircraft':
        return dict(dur=uni(rng, 60, 240), kind='jet' if rng.random() < 0.6 else 'propeller',
                    peak=uni(rng, 80, 500), bpf=uni(rng, 60, 110))
    if name == 'gunshot':
        shots = [0.0]
        for _ in range(int(rng.integers(0, 3))):
            shots.append(shots[-1] + uni(rng, 0.8, 15))
        return dict(dur=shots[-1] + 1.0, shots=shots)
    if name == 'thunder':
        return dict(dur=uni(rng, 5, 25), fhi=uni(rng, 120, 400), n_rolls=int(rng.integers(2, 8)),
                    crack=bool(rng.random() < 0.4))
    if name == 'tree_fall':
        return dict(dur=uni(rng, 4, 10), creak=uni(rng, 0, 3))
    if name == 'rain':
        return dict(dur=uni(rng, 60, 600), drop_rate=uni(rng, 10, 150))
    if name == 'wind':
        return dict(dur=uni(rng, 30, 600), gust_rate=uni(rng, 0.1, 0.5), buf_fc=uni(rng, 20, 100),
                    buf_thr=uni(rng, 0.8, 1.6), buf_gain=uni(rng, 2, 10))
    if name == 'cicada_chorus':
        lowc = rng.random() < 0.3
        return dict(dur=uni(rng, 20, 200), fc=uni(rng, 1200, 2500) if lowc else uni(rng, 2500, 7500),
                    bw=uni(rng, 200, 1500), pulse_rate=uni(rng, 40, 250))
    if name == 'crickets':
        return dict(dur=uni(rng, 100, 600), fc=uni(rng, 3000, 7000), pulse_rate=uni(rng, 20, 60),
                    n_ind=int(rng.integers(1, 6)))
    if name == 'insect_buzz':
        return dict(dur=uni(rng, 1, 12), f0=uni(rng, 120, 280))
    if name == 'frog_chorus':
        return dict(dur=uni(rng, 60, 600), n_ind=int(rng.integers(2, 10)))
    if name == 'songbird':
        return dict(n_notes=int(rng.integers(3, 13)), frange=(uni(rng, 1500, 3500), uni(rng, 3500, 7000)))
    if name == 'dove':
        return series((3, 12), (0.25, 0.5), (300, 600), (-0.15, 0.0), 0.005, 2.5, 1500, 0.02, (0.3, 0.8))
    if name == 'turaco':
        return series((4, 15), (0.1, 0.25), (500, 1000), (-0.1, 0.1), 0.02, 0.9, 4000, 0.3, (0.1, 0.4))
    if name == 'parrot':
        return series((1, 5), (0.1, 0.6), (1000, 3500), (-0.4, 0.4), 0.03, 2.0, 6000, 0.1, (0.2, 1.0))
    if name == 'hornbill':
        return series((3, 10), (0.3, 0.9), (250, 600), (-0.2, 0.2), 0.04, 0.6, 5000, 0.5, (0.2, 0.8))
    if name == 'hornbill_wings':
        return dict(dur=uni(rng, 2, 6), rate=uni(rng, 3, 5))
    if name == 'chimp_pant_hoot':
        return dict()
    if name == 'chimp_drumming':
        return dict(n=int(rng.integers(2, 11)), ioi=uni(rng, 0.08, 0.4), f=uni(rng, 25, 120), tau=uni(rng, 0.05, 0.15))
    if name == 'gorilla_chest_beat':
        return dict(n=int(rng.integers(6, 20)), ioi=uni(rng, 0.09, 0.14), f=uni(rng, 400, 900), tau=uni(rng, 0.01, 0.03))
    if name == 'gorilla_hoot':
        return series((3, 10), (0.2, 0.5), (120, 250), (0.0, 0.2), 0.02, 1.5, 1500, 0.1, (0.2, 0.5))
    if name == 'monkey_boom':
        return series((1, 3), (0.3, 0.8), (70, 150), (-0.2, 0.0), 0.01, 1.8, 800, 0.05, (1.0, 4.0))
    if name == 'monkey_pyow':
        return series((1, 6), (0.1, 0.3), (1500, 2500), (-0.7, -0.5), 0.02, 1.2, 5000, 0.1, (0.3, 1.2))
    if name == 'colobus_roar':
        return dict(n=int(rng.integers(15, 60)), pulse=uni(rng, 0.08, 0.15), gap=uni(rng, 0.08, 0.2),
                    f0=uni(rng, 80, 200), fmax=2000)
    if name == 'leopard_saw':
        return dict(n=int(rng.integers(5, 16)), pulse=uni(rng, 0.2, 0.4), gap=uni(rng, 0.3, 0.6),
                    f0=uni(rng, 30, 90), fmax=1500)
    if name == 'buffalo_grunt':
        return series((1, 5), (0.3, 1.5), (50, 110), (-0.2, 0.1), 0.05, 1.0, 1200, 0.8, (0.5, 2.0))
    if name == 'hog_grunt':
        return series((3, 15), (0.1, 0.3), (100, 250), (-0.2, 0.1), 0.08, 1.0, 1500, 1.0, (0.1, 0.5))
    raise KeyError(name)


# =====================================================================================
# Scenario planning
# =====================================================================================
def plan_scenario(rng, free):
    return dict(tod=str(rng.choice(['dawn', 'day', 'dusk', 'night'], p=[0.2, 0.4, 0.15, 0.25])),
                rain=bool(rng.random() < (0.5 if free else 0.35)),
                windy=bool(rng.random() < (0.6 if free else 0.4)),
                human=str(rng.choice(['none', 'low', 'high'], p=[0.3, 0.45, 0.25] if not free else [0.0, 0.5, 0.5])),
                veg=uni(rng, 0.6, 1.5), rt60=uni(rng, 0.4, 1.8))


def plan_confounders(rng, scen, free):
    """Expected number of events per 600 s for each confounder given the scenario."""
    tod, hum = scen['tod'], scen['human']
    day = tod in ('dawn', 'day')
    night = tod in ('dusk', 'night')
    h = {'none': 0.0, 'low': 0.5, 'high': 1.5}[hum]
    lam = {
        'generator': 0.35 * (h > 0) + 0.2, 'logging_truck': 0.6 * h, 'motorbike': 0.8 * h,
        'chainsaw': 0.5 * h, 'aircraft': 0.4, 'gunshot': 0.3 * h + 0.05,
        'thunder': 3.0 if scen['rain'] else 0.3, 'tree_fall': 0.25, 'rain': 1.0 if scen['rain'] else 0.0,
        'wind': 1.5 if scen['windy'] else 0.2,
        'cicada_chorus': 3.0 if day else 1.0, 'crickets': 2.0 if night else 0.5, 'insect_buzz': 3.0 if day else 0.5,
        'frog_chorus': 2.0 if night else 0.3,
        'songbird': 25.0 if day else 3.0, 'dove': 3.0 if day else 0.3, 'turaco': 1.5 if day else 0.2,
        'parrot': 4.0 if day else 1.0, 'hornbill': 2.5 if day else 0.2, 'hornbill_wings': 1.5 if day else 0.1,
        'chimp_pant_hoot': 0.8 if day else 0.2, 'chimp_drumming': 0.6 if day else 0.1,
        'gorilla_chest_beat': 0.6, 'gorilla_hoot': 0.4, 'monkey_boom': 0.8 if day else 0.1,
        'monkey_pyow': 1.5 if day else 0.1, 'colobus_roar': 0.6 if tod == 'dawn' else 0.2,
        'leopard_saw': 0.3 if night else 0.05, 'buffalo_grunt': 0.8, 'hog_grunt': 0.6,
    }
    mult = 1.6 if free else 1.0
    events = []
    for name in CONF:
        cnt = int(rng.poisson(lam[name] * mult))
        events += [name] * cnt
    if free:   # guarantee the hard low-frequency look-alikes in every call-free file
        events += [str(rng.choice(['generator', 'logging_truck', 'motorbike'])),
                   str(rng.choice(['thunder', 'wind'])),
                   str(rng.choice(['buffalo_grunt', 'monkey_boom', 'chimp_drumming', 'gorilla_hoot', 'leopard_saw']))]
    return events


def recorder_cfg(rng, fs):
    mems = bool(rng.random() < 0.5)
    return dict(mic='MEMS' if mems else 'electret',
                hp_hz=uni(rng, 10, 25) if mems else uni(rng, 3, 10), hp_order=int(rng.integers(1, 3)),
                res_hz=uni(rng, 2500, 5000), res_db=uni(rng, 2, 6) if mems else uni(rng, 0, 2),
                selfnoise_db=uni(rng, -24, -8), dc=uni(rng, -0.02, 0.02),
                target_dbfs=uni(rng, -44, -30), allow_clip=bool(rng.random() < 0.25),
                clip_frac=logu(rng, 2e-5, 2e-3))


def recorder_filter(x, fs, rec):
    """Linear recorder chain: preamp high-pass, mic resonance, anti-alias low-pass."""
    y = sps.sosfilt(_sos('highpass', rec['hp_hz'], fs, rec['hp_order']), x)
    if rec['res_hz'] < 0.38 * fs:
        g = 10 ** (rec['res_db'] / 20) - 1
        y = y + g * sps.sosfilt(_sos('bandpass', [rec['res_hz'] / 1.4, rec['res_hz'] * 1.4], fs, 1), y)
    return sps.sosfilt(_sos('lowpass', 0.45 * fs, fs, 6), y)


# =====================================================================================
# Measurement helpers
# =====================================================================================
def bandpower(x, fs, lo, hi):
    X = np.fft.rfft(x)
    f = np.fft.rfftfreq(len(x), 1 / fs)
    m = (f >= lo) & (f <= hi)
    return float(np.sum(np.abs(X[m]) ** 2) / len(x) ** 2)


def spectral_box(y, fs, q=(0.005, 0.995)):
    """Frequency extent of a call: 0.5 % .. 99.5 % cumulative-energy frequencies."""
    P = np.abs(np.fft.rfft(y)) ** 2
    f = np.fft.rfftfreq(len(y), 1 / fs)
    c = np.cumsum(P)
    c /= c[-1]
    lo = f[np.searchsorted(c, q[0])]
    hi = f[min(len(f) - 1, np.searchsorted(c, q[1]))]
    lo = max(1.0, np.floor(lo))
    hi = min(fs / 2, max(np.ceil(hi), lo + 5))
    return float(lo), float(hi)


# =====================================================================================
# One file
# =====================================================================================
def plan_calls(rng, gaps):
    """Bouts of 1-6 calls (rumble exchanges, trumpet/roar/cry sequences), some overlapping."""
    target = int(rng.integers(20, 51))
    calls = []
    tries = 0
    while len(calls) < target and tries < 500:
        tries += 1
        t = uni(rng, 2, 585)
        nb = int(rng.integers(1, 7))
        bout = []
        for _ in range(nb):
            cls = str(rng.choice(['rumble', 'roar', 'cry', 'trumpet'], p=[0.6, 0.1, 0.15, 0.15]))
            P = draw_call_params(rng, cls)
            if t + P['dur'] > 599.0:
                break
            bout.append((t, cls, P))
            prev_end = t + P['dur']
            t = prev_end - P['dur'] * uni(rng, 0.2, 0.8) if rng.random() < 0.25 else prev_end + uni(rng, 0.3, 12)
        if any(b0 < t1 + 1 and b1 > t0 - 1 for (t0, _, P) in bout for (b0, b1) in gaps
               for t1 in [t0 + P['dur']]):
            continue
        calls += bout[:target - len(calls)]
    return sorted(calls, key=lambda c: c[0])


def make_file(seed, setname, idx, fs, outdir, metadir):
    t_start = time.time()
    free = setname == 'free'
    rng = np.random.default_rng(np.random.SeedSequence([int(seed), 2 if free else 1, idx]))
    name = f"s{seed}_{setname}_{idx:02d}_{fs}Hz"
    n = int(round(DUR * fs))
    scen = plan_scenario(rng, free)
    rec = recorder_cfg(rng, fs)
    gaps = []
    if rng.random() < 0.4:
        for _ in range(int(rng.integers(1, 4))):
            g0 = uni(rng, 5, 590)
            gaps.append((g0, g0 + logu(rng, 0.05, 3.0)))

    # ---- ambient bed: brownish forest background + slow level drift (band-limited at fs)
    bed = sps.sosfilt(_sos('lowpass', uni(rng, 80, 300), fs, 1), rng.standard_normal(n))
    bed /= rms(bed)
    bed += 0.15 * sps.sosfilt(_sos('lowpass', 0.45 * fs, fs, 2), rng.standard_normal(n)) * np.sqrt(min(fs, 16000) / fs)
    bed *= np.exp(0.2 * smooth_rand(rng, n, fs, 0.01))
    noise = bed
    del bed

    # ---- confounders / backgrounds
    conf_meta = []
    for cname in plan_confounders(rng, scen, free):
        fn, band, point, vegf, lev, drange = CONF[cname]
        P = draw_conf_params(rng, cname, scen)
        dur_guess = P.get('dur', 10.0)
        t0 = uni(rng, -0.3 * dur_guess, DUR - 0.5) if dur_guess > 60 else uni(rng, 0, DUR - 1)
        dist = logu(rng, *drange) if point else 0.0
        drr = float(np.clip(12 - 10 * np.log10(max(dist, 1) / 20), -6, 12))
        y = render(fn, P, rng, fs, band, dist, scen['veg'] * vegf, scen['rt60'] if point else 0.0, drr)
        active = np.abs(y) > 1e-3 * np.max(np.abs(y)) if y.size and np.any(y) else None
        if active is None:
            continue
        level_db = uni(rng, *lev)
        y *= 10 ** (level_db / 20) / rms(y[active])
        i0 = int(round(t0 * fs))
        place(noise, y, i0)
        conf_meta.append(dict(type=cname, begin=max(0.0, t0), end=min(DUR, t0 + len(y) / fs),
                              level_db_re_bed=level_db, distance_m=dist,
                              params={k: v for k, v in P.items()}))
        del y

    # ---- recorder self-noise (white + 1/f-ish), then the linear recorder chain
    sn = rng.standard_normal(n) * 10 ** (rec['selfnoise_db'] / 20) * np.sqrt(fs / 16000)
    sn += sps.sosfilt(_sos('lowpass', 20, fs, 1), rng.standard_normal(n)) * 10 ** (rec['selfnoise_db'] / 20) * 3
    noise += sn
    del sn
    noise = recorder_filter(noise, fs, rec)

    # ---- elephant calls
    calls_track = np.zeros(n)
    call_recs = []
    if not free:
        for (t0, cls, P) in plan_calls(rng, gaps):
            fn, band = CALL_MODELS[cls]
            dmax = 1500 if cls == 'rumble' else 500
            dist = logu(rng, 20, dmax)
            target = float(np.clip(30 - 42 * np.log(dist / 20) / np.log(dmax / 20) + rng.normal(0, 5), -12, 32))
            drr = float(np.clip(12 - 10 * np.log10(dist / 20), -6, 12))
            y = render(fn, P, rng, fs, band, dist, scen['veg'], scen['rt60'], drr)
            y = recorder_filter(np.concatenate([y, np.zeros(int(fs))]), fs, rec)
            i0 = int(round(t0 * fs))
            nb = int(round(P['dur'] * fs))
            seg = y[:nb]
            lo, hi = spectral_box(seg, fs)
            pn = bandpower(noise[i0:i0 + nb], fs, lo, hi)
            pc = bandpower(seg, fs, lo, hi)
            y *= np.sqrt(10 ** (target / 10) * pn / pc)
            place(calls_track, y, i0)
            call_recs.append(dict(cls=cls, begin=t0, end=t0 + P['dur'], i0=i0, nb=nb, low=lo, high=hi,
                                  target_snr_db=target, distance_m=dist, y=y, params=P))

    # ---- gain, DC offset, measured SNR, clipping, dropouts, quantisation
    mix = calls_track + noise
    del calls_track
    gain = 10 ** (rec['target_dbfs'] / 20) / rms(mix)
    if rec['allow_clip']:   # over-driven recorder: a small fraction of samples clips
        a = np.abs(mix[::5])
        gain = 1.0 / (np.quantile(a, 1 - rec['clip_frac']) + 1e-12)
        del a
    else:                   # normal: never exceed 0.9 FS
        gain = min(gain, 0.9 / (np.abs(mix).max() + 1e-12))
    dc = rec['dc']
    noise *= gain
    noise += dc
    for c in call_recs:
        seg = gain * c['y'][:c['nb']]
        pc = bandpower(seg, fs, c['low'], c['high'])
        pn = bandpower(noise[c['i0']:c['i0'] + c['nb']], fs, c['low'], c['high'])
        c['snr_db'] = 10 * np.log10(pc / pn)
    del noise
    out = mix * gain + dc
    del mix
    if os.environ.get('GEN_DEBUG_DIR'):   # test hook: save the scaled isolated calls
        ct = np.zeros(n, dtype=np.float32)
        for c in call_recs:
            place(ct, (gain * c['y']).astype(np.float32), c['i0'])
        np.save(os.path.join(os.environ['GEN_DEBUG_DIR'], name + '_calls.npy'), ct)
        del ct
    for g0, g1 in gaps:
        out[int(g0 * fs):int(g1 * fs)] = 0.0
    clipped = float(np.mean(np.abs(out) >= 1.0))
    pcm = np.round(np.clip(out, -1.0, 32767 / 32768) * 32768).astype(np.int16)
    del out
    sf.write(os.path.join(outdir, name + '.wav'), pcm, fs, subtype='PCM_16')

    with open(os.path.join(outdir, name + '.selections.txt'), 'w') as fh:
        fh.write(HEADER + '\n')
        for i, c in enumerate(sorted(call_recs, key=lambda c: c['begin'])):
            fh.write(f"{i + 1}\tSpectrogram 1\t1\t{c['begin']:.4f}\t{c['end']:.4f}\t{c['low']:.1f}\t"
                     f"{c['high']:.1f}\t{c['cls']}\t{c['snr_db']:.2f}\n")
    meta = dict(file=name + '.wav', set=setname, seed=int(seed), index=idx, sample_rate=fs, duration_s=DUR,
                scenario=scen, recorder=rec, gain=gain, dc_offset=dc, clipped_fraction=clipped,
                silence_gaps=[dict(begin=g0, end=g1) for g0, g1 in gaps],
                calls=[dict(cls=c['cls'], begin=c['begin'], end=c['end'], low_hz=c['low'], high_hz=c['high'],
                            snr_db=c['snr_db'], target_snr_db=c['target_snr_db'], distance_m=c['distance_m'],
                            params=c['params']) for c in sorted(call_recs, key=lambda c: c['begin'])],
                confounders=sorted(conf_meta, key=lambda c: c['begin']))
    with open(os.path.join(metadir, name + '.json'), 'w') as fh:
        json.dump(meta, fh, indent=1, default=lambda o: o.item() if hasattr(o, 'item') else str(o))
    print(f"{name}: {len(call_recs)} calls, {len(conf_meta)} confounders, clipped {clipped:.5f}, "
          f"{time.time() - t_start:.1f} s", file=sys.stderr)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--set', required=True, choices=['calls', 'free'])
    ap.add_argument('--out', required=True)
    ap.add_argument('--seed', required=True, type=int)
    ap.add_argument('--meta', required=True)
    a = ap.parse_args()
    os.makedirs(a.out, exist_ok=True)
    os.makedirs(a.meta, exist_ok=True)
    if a.set == 'calls':
        jobs = [(i, RATES[i // 2]) for i in range(14)]
    else:
        jobs = [(i, RATES[i % 7]) for i in range(12)]
    for i, fs in jobs:
        make_file(a.seed, a.set, i, fs, a.out, a.meta)


if __name__ == '__main__':
    main()
