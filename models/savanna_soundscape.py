#!/usr/bin/env python3
"""Synthetic savanna-waterhole soundscape generator for testing elephant-call detectors.

Written on 2026-11-29 by a separate agent from the issue's description of the acoustics and a
site description alone, without reading this repository's other generators, so that scores on
its scenes show how the default model does on sound someone else chose. It shares no code with
them on purpose; do not fold its helpers into theirs.

Site: an East/Southern African savanna waterhole (Kenyan conservancy / Namibian waterhole type),
recorders on posts at the waterhole and along fence lines.

  --set calls : 14 files x 600 s (two per rate 2000..48000 Hz) with elephant calls + Raven tables
  --set free  : 12 call-free files x 600 s (rates cycled) full of backgrounds and confounders

Signal path (per file; every acoustic source is synthesised band-limited at an internal rate
fi = min(fs, 8 kHz), so content reaches 3.6 kHz at most, then up-sampled to fs; above 3.2 kHz a
high-rate recorder holds only self-noise and grass hiss, see savanna_soundscape.md):
  acoustic sources (Pa units, 1.0 = 94 dB SPL) -> propagation (air absorption + ground/vegetation
  excess attenuation, distance) -> [elephant calls only: short savanna reverb] -> + recorder self-noise
  -> recorder linear chain (mic/preamp high-pass, anti-alias low-pass at 0.45 fs) -> recorder gain
  -> [cheap unit: preamp soft/hard clipping, 2x oversampled] -> DC offset -> dropouts -> 16-bit PCM.
Harmonic sources are additive and every partial is faded out before 0.45 fi; noise sources are
generated at fi, so nothing exists above Nyquist and nothing aliases.

SNR (dB) of a call = 10 log10( P_call / P_noise ), both in-band powers over the call's [Begin, End]
samples after a zero-phase Butterworth band-pass to its [Low, High] box; P_call is measured on the
isolated call as recorded (propagated, reverberated, recorder-filtered, gained), P_noise on the sum of
everything that is not an elephant call (backgrounds + confounders + self-noise), recorded the same way.
"""
import argparse
import json
import os
import time
from fractions import Fraction

import numpy as np
import soundfile as sf
from scipy import signal
from scipy.fft import irfft, next_fast_len, rfft, rfftfreq

DUR = 600.0
RATES = [2000, 4000, 8000, 16000, 22050, 44100, 48000]
HEADER = ("Selection\tView\tChannel\tBegin Time (s)\tEnd Time (s)\tLow Freq (Hz)\tHigh Freq (Hz)"
          "\tClass\tSNR (dB)")
CLASSES = ("rumble", "roar", "cry", "trumpet")


# ----------------------------------------------------------------------------------------------
# small helpers
# ----------------------------------------------------------------------------------------------
def spl(level_db):
    """dB SPL -> RMS pressure in Pa."""
    return 10.0 ** ((level_db - 94.0) / 20.0)


def rms(x):
    return float(np.sqrt(np.mean(np.square(x)))) if len(x) else 0.0


def U(rng, a, b):
    return float(rng.uniform(a, b))


def smooth_noise(rng, n, fs, rate_hz):
    """Smooth zero-mean unit-ish random process: random control points at rate_hz, interpolated."""
    m = int(np.ceil(n / fs * rate_hz)) + 4
    v = rng.standard_normal(m)
    v = np.convolve(v, np.hanning(5) / np.hanning(5).sum(), mode="same") * 1.8
    return np.interp(np.arange(n) / fs * rate_hz, np.arange(m), v)


def env_ar(n, fs, att, rel):
    """Raised-cosine attack / release envelope that is exactly 0 at both ends (audible extent = n)."""
    e = np.ones(n)
    na = max(1, min(n // 2, int(att * fs)))
    nr = max(1, min(n - na, int(rel * fs)))
    e[:na] = 0.5 - 0.5 * np.cos(np.pi * np.arange(na) / na)
    e[n - nr:] = 0.5 + 0.5 * np.cos(np.pi * np.arange(1, nr + 1) / nr)
    return e


def band_sos(fs, lo, hi, order=4):
    """Butterworth band/low/high-pass; frequencies clipped below 0.45 fs. None if band is empty."""
    top = 0.45 * fs
    if lo is not None and lo >= min(hi, top) * 0.9:
        return None
    if hi >= top:
        if lo is None:
            return None
        return signal.butter(order, lo, "highpass", fs=fs, output="sos")
    if lo is None or lo <= 0:
        return signal.butter(order, hi, "lowpass", fs=fs, output="sos")
    return signal.butter(order, [lo, hi], "bandpass", fs=fs, output="sos")


def bandnoise(rng, n, fs, lo, hi, order=4):
    """Unit-RMS Gaussian noise in [lo, hi] (generated at fs, so band-limited by construction)."""
    x = rng.standard_normal(n)
    top = 0.45 * fs
    if lo is not None and lo >= min(hi, top) * 0.9:
        return np.zeros(n)
    sos = band_sos(fs, lo, hi, order)
    if sos is not None:
        x = signal.sosfilt(sos, x)
    r = rms(x)
    return x / r if r > 0 else x


def formant_db(f, formants, ic=None):
    """Sum of Gaussian resonance bumps (dB). formants: list of (centre, bandwidth, gain_dB); a centre
    may be a per-sample array (moving formant), then ic picks the control-grid samples."""
    g = 0.0
    for F, B, G in formants:
        if ic is not None and np.ndim(F) > 0:
            F = np.asarray(F)[ic]
        g = g + G * np.exp(-0.5 * ((f - F) / B) ** 2)
    return g


def additive(fs, f0, amp_fn, rng, fmax=None, kmax=400):
    """Band-limited harmonic stack. f0: per-sample fundamental (Hz); amp_fn(k, fk) -> amplitude
    (scalar or array like fk). Partials fade to zero over the last 10 % below min(fmax, 0.45 fs).
    Amplitudes vary slowly, so they are evaluated on a ~2.5 ms control grid and interpolated."""
    lim = 0.45 * fs if fmax is None else min(fmax, 0.45 * fs)
    f0 = np.asarray(f0, float)
    n = len(f0)
    ph = 2 * np.pi * np.cumsum(f0) / fs
    out = np.zeros(n)
    fmin = float(np.min(f0))
    step = max(1, int(fs / 400))
    ic = np.arange(0, n + step, step)
    ic[-1] = n - 1
    ic = np.unique(np.minimum(ic, n - 1))
    f0c = f0[ic]
    grid = np.arange(n)
    for k in range(1, kmax + 1):
        if k * fmin >= lim:
            break
        fk = k * f0c
        a = amp_fn(k, fk, ic) * np.clip((lim - fk) / (0.1 * lim), 0.0, 1.0)
        a = np.broadcast_to(a, fk.shape)
        if not np.any(a):
            continue
        out += np.interp(grid, ic, a) * np.sin(k * ph + rng.uniform(0, 2 * np.pi))
    return out


def air_atten_db(f, d):
    """Excess attenuation (dB) over distance d (m): atmospheric absorption (~5 dB/km at 1 kHz,
    rising ~f^1.6) plus ground/grass/vegetation scattering (~3 dB/km/kHz). Spreading is in the level."""
    fk = np.asarray(f) / 1000.0
    return d / 1000.0 * (5.0 * fk ** 1.6 + 3.0 * fk)


def propagate(x, fs, d):
    """Apply distance-dependent high-frequency loss in the frequency domain."""
    n = len(x)
    nf = next_fast_len(n)
    X = rfft(x, nf)
    X *= 10 ** (-air_atten_db(rfftfreq(nf, 1 / fs), d) / 20)
    return irfft(X, nf)[:n]


def reverb(x, fs, rng, rt60, drr_db):
    """Sparse savanna reverberation (trees, banks of the waterhole): exponentially decaying noise
    IR with unit energy, mixed at the given direct-to-reverberant ratio. Output is longer by the IR."""
    L = int(rt60 * 1.1 * fs)
    t = np.arange(L) / fs
    ir = rng.standard_normal(L) * np.exp(-6.91 * t / rt60)
    ir[: int(0.005 * fs)] *= np.linspace(0, 1, int(0.005 * fs))  # reflections arrive after the direct
    ir /= np.sqrt(np.sum(ir ** 2))
    wet = signal.fftconvolve(x, ir)
    y = np.concatenate([x, np.zeros(len(wet) - len(x))])
    return y + wet * 10 ** (-drr_db / 20)


def add_at(buf, x, start):
    """Add segment x into buf at sample start (clipped to buffer)."""
    n = len(buf)
    if start >= n or start + len(x) <= 0:
        return
    a = max(0, start)
    b = min(n, start + len(x))
    buf[a:b] += x[a - start: b - start]


def render_lowrate(fs, n, fi, fn):
    """Render a low-frequency source at internal rate fi (if fs > fi) and upsample with a polyphase
    anti-imaging filter. fn(rate, nsamples) -> array. Content must stay below 0.4 fi."""
    if fs <= fi:
        return fn(fs, n)
    fr = Fraction(int(fs), int(fi))
    ni = int(np.ceil(n * fi / fs)) + 8
    y = signal.resample_poly(fn(fi, ni), fr.numerator, fr.denominator)
    if len(y) < n:
        y = np.concatenate([y, np.zeros(n - len(y))])
    return y[:n]


# ----------------------------------------------------------------------------------------------
# elephant call models (Loxodonta africana)
# ----------------------------------------------------------------------------------------------
def synth_rumble(rng, fs, kind="female"):
    """Rumble: harmonic stack on an 8-25 Hz fundamental with a weak fundamental, strong 2nd/3rd
    harmonics, nasal (trunk) or oral formants, arched/flat/falling/rising contour, slow jitter and
    shimmer, breathy noise, musth males lower and pulsated."""
    if kind == "musth":
        f0b, dur = U(rng, 9.5, 14), U(rng, 2.0, 5.5)
    elif kind == "calf":
        f0b, dur = U(rng, 19, 25), U(rng, 1.0, 3.0)
    else:
        f0b, dur = U(rng, 12, 20), U(rng, 1.5, 8.0)
    n = int(dur * fs)
    u = np.linspace(0, 1, n)
    contour = str(rng.choice(["arched", "flat", "falling", "rising"], p=[0.45, 0.3, 0.15, 0.1]))
    a = U(rng, 0.08, 0.3)
    if contour == "arched":
        f0 = f0b * (1 + a * np.sin(np.pi * u ** U(rng, 0.6, 1.6)))
    elif contour == "flat":
        f0 = f0b * (1 + U(rng, -0.05, 0.05) * (u - 0.5))
    elif contour == "falling":
        f0 = f0b * (1 + a * (1 - u) ** 1.5)
    else:
        f0 = f0b * (1 + a * 0.7 * u)
    f0 = f0 * (1 + 0.012 * smooth_noise(rng, n, fs, 3.0))
    f0 = np.minimum(f0, 27.0) if kind != "calf" else f0
    mode = "nasal" if rng.random() < 0.7 else "oral"
    if mode == "nasal":   # trunk resonances (long tract): F1 ~40 Hz, F2 ~150-190 Hz
        forms = [(U(rng, 30, 50), U(rng, 10, 18), U(rng, 6, 12)),
                 (U(rng, 130, 200), U(rng, 25, 50), U(rng, 6, 12)),
                 (U(rng, 280, 420), U(rng, 40, 80), U(rng, 2, 7))]
    else:                 # oral: higher F1/F2
        forms = [(U(rng, 80, 130), U(rng, 20, 40), U(rng, 6, 12)),
                 (U(rng, 220, 330), U(rng, 40, 70), U(rng, 4, 10))]
    d1, d3 = U(rng, -16, -6), U(rng, -4, 1)
    tilt = U(rng, 7, 13)
    hmax = U(rng, 220, 650)

    def amp(k, fk, ic):
        src = {1: d1, 2: 0.0}.get(k, d3 - tilt * np.log2(k / 3.0) if k > 3 else d3)
        roll = -24 * np.log2(np.maximum(fk / hmax, 1.0))
        return 10 ** ((src + formant_db(fk, forms) + roll) / 20)

    x = additive(fs, f0, amp, rng, fmax=min(2 * hmax, 1500))
    x *= 1 + 0.08 * smooth_noise(rng, n, fs, 6.0)                  # shimmer
    br = bandnoise(rng, n, fs, 12, min(350, 0.44 * fs), 2)         # breath / turbulence
    x = x / (rms(x) + 1e-12) + br * 10 ** (U(rng, -26, -16) / 20)
    if kind == "musth":                                             # pulsated musth rumble
        fp, m = U(rng, 1.2, 3.5), U(rng, 0.3, 0.6)
        x *= 1 - m * (0.5 + 0.5 * np.sin(2 * np.pi * fp * u * dur))
    e = env_ar(n, fs, min(U(rng, 0.2, 0.7), 0.3 * dur), min(U(rng, 0.4, 1.4), 0.4 * dur))
    x *= e * (1 - U(rng, 0, 0.3) * u)
    return x, dict(kind=kind, f0_base=round(f0b, 2), f0_max=round(float(f0.max()), 2),
                   contour=contour, mode=mode, formants=[[round(v, 1) for v in f] for f in forms],
                   fund_rel_db=round(d1, 1), tilt_db_oct=round(tilt, 1), dur=round(dur, 3))


def synth_trumpet(rng, fs):
    """Trumpet: loud, f0 300-550 Hz, rich harmonics into kHz, rough (fast random FM) and noisy."""
    dur = U(rng, 0.3, 2.0)
    n = int(dur * fs)
    u = np.linspace(0, 1, n)
    f0b = U(rng, 300, 550)
    f0 = f0b * (1 + U(rng, -0.1, 0.25) * np.sin(np.pi * u)) * (1 + 0.03 * smooth_noise(rng, n, fs, 40))
    tilt = U(rng, 2.5, 5.0)
    fmax = U(rng, 3000, 9000)
    forms = [(U(rng, 500, 900), 200, U(rng, 4, 9)), (U(rng, 1400, 2400), 400, U(rng, 4, 9)),
             (U(rng, 3000, 4500), 700, U(rng, 2, 6))]

    def amp(k, fk, ic):
        return 10 ** ((-tilt * np.log2(k) + formant_db(fk, forms)) / 20)

    x = additive(fs, f0, amp, rng, fmax=fmax)
    x *= 1 + 0.25 * smooth_noise(rng, n, fs, 60)                    # shimmer / roughness
    x = x / (rms(x) + 1e-12)
    nz = bandnoise(rng, n, fs, 250, min(fmax, 0.44 * fs), 2) * 10 ** (U(rng, -14, -5) / 20)
    x = x + nz
    x *= env_ar(n, fs, U(rng, 0.03, 0.12), U(rng, 0.05, 0.3))
    return x, dict(f0_base=round(f0b, 1), fmax=round(fmax), tilt_db_oct=round(tilt, 2), dur=round(dur, 3))


def synth_roar(rng, fs):
    """Roar: noisy, broadband ~0.1-3 kHz, rough amplitude pulsation, chaotic low voiced part."""
    dur = U(rng, 1.0, 3.0)
    n = int(dur * fs)
    u = np.linspace(0, 1, n)
    lo, hi = U(rng, 100, 250), U(rng, 1500, 3000)
    x = bandnoise(rng, n, fs, lo, hi, 3)
    for F in (U(rng, 300, 600), U(rng, 900, 1600)):
        if F < 0.4 * fs:
            x += 0.8 * bandnoise(rng, n, fs, F * 0.8, F * 1.25, 2)
    fr = U(rng, 15, 40)
    x *= 1 + 0.6 * np.sin(2 * np.pi * fr * u * dur + 3 * smooth_noise(rng, n, fs, 8))
    f0b = U(rng, 100, 250)
    f0 = f0b * (1 + 0.1 * smooth_noise(rng, n, fs, 30))
    v = additive(fs, f0, lambda k, fk, ic: 10 ** (-6 * np.log2(k) / 20), rng, fmax=hi)
    x = x / (rms(x) + 1e-12) + v / (rms(v) + 1e-12) * 10 ** (U(rng, -10, -3) / 20)
    x *= env_ar(n, fs, U(rng, 0.1, 0.4), U(rng, 0.3, 0.8)) * np.sin(np.pi * u) ** 0.3
    return x, dict(band=[round(lo), round(hi)], pulse_hz=round(fr, 1), f0_voiced=round(f0b, 1),
                   dur=round(dur, 3))


def synth_cry(rng, fs):
    """Cry: tonal, f0 a few hundred Hz, vibrato, few harmonics, slight breath noise."""
    dur = U(rng, 0.5, 2.5)
    n = int(dur * fs)
    u = np.linspace(0, 1, n)
    f0b = U(rng, 220, 600)
    fv, dv = U(rng, 5, 12), U(rng, 0.02, 0.06)
    f0 = f0b * (1 + U(rng, -0.1, 0.2) * np.sin(np.pi * u)) * (1 + dv * np.sin(2 * np.pi * fv * u * dur))
    tilt = U(rng, 7, 12)
    fc = U(rng, 700, 1300)
    x = additive(fs, f0, lambda k, fk, ic: 10 ** ((-tilt * np.log2(k) + formant_db(fk, [(fc, 300, 6)])) / 20),
                 rng, fmax=U(rng, 2500, 5000))
    x = x / (rms(x) + 1e-12) + bandnoise(rng, n, fs, 200, 3000, 2) * 10 ** (U(rng, -24, -14) / 20)
    x *= env_ar(n, fs, U(rng, 0.05, 0.2), U(rng, 0.1, 0.4))
    return x, dict(f0_base=round(f0b, 1), vibrato_hz=round(fv, 2), vibrato_depth=round(dv, 3),
                   dur=round(dur, 3))


# ----------------------------------------------------------------------------------------------
# generic sound pieces used by confounders
# ----------------------------------------------------------------------------------------------
def harm_call(rng, fs, dur, f0, tilt, forms=(), noise_db=-20, nlo=200, nhi=4000, att=0.02, rel=0.05,
              fmax=None, am=None):
    """Generic harmonic(+noise) vocalisation, unit RMS-ish body."""
    n = max(8, int(dur * fs))
    f0 = np.broadcast_to(np.asarray(f0, float), (n,)) if np.ndim(f0) == 0 else f0[:n]
    x = additive(fs, f0, lambda k, fk, ic: 10 ** ((-tilt * np.log2(k) + formant_db(fk, forms, ic)) / 20), rng,
                 fmax=fmax)
    x = x / (rms(x) + 1e-12)
    if noise_db is not None and nlo < 0.4 * fs:
        x = x + bandnoise(rng, n, fs, nlo, nhi, 2) * 10 ** (noise_db / 20)
    if am is not None:
        x = x * am
    return x * env_ar(n, fs, att, rel)


def engine(fs, n, rng, rpm, cyl, level_pa, dist, fi=2000, doppler=None, strokes=4, firing_boost=10,
           hum_max=None):
    """Reciprocating engine at internal rate fi: harmonics of the cycle rate (rpm/120 for 4-stroke),
    firing harmonics (multiples of cyl) emphasised, random other orders, per-harmonic distance loss
    (dist may be per-sample), optional Doppler factor, plus exhaust noise pulsed at the firing rate.
    rpm, dist, doppler: callables t(seconds array) -> values."""
    order_amp = {}
    hum_max = hum_max or 0.4 * min(fs, fi)

    def render(rate, m):
        t = np.arange(m) / rate
        fc = rpm(t) / (60.0 * strokes / 2.0)        # cycle frequency (half-order for 4-stroke)
        if doppler is not None:
            fc = fc * doppler(t)
        d = dist(t)
        spread = 1.0 / np.maximum(d, 1.0)

        def amp(k, fk, ic):
            if k not in order_amp:
                base = 0.0 if k % cyl == 0 else U(rng, -22, -6)
                order_amp[k] = 10 ** ((base + (firing_boost if k % cyl == 0 else 0)) / 20)
            roll = 10 ** (-6 * np.log2(np.maximum(fk / 150.0, 1.0)) / 20)
            return order_amp[k] * roll * 10 ** (-air_atten_db(fk, d[ic]) / 20)

        x = additive(rate, fc, amp, rng, fmax=hum_max)
        x *= 1 + 0.05 * smooth_noise(rng, m, rate, 2.0)
        ph = 2 * np.pi * np.cumsum(fc * cyl) / rate
        ex = bandnoise(rng, m, rate, 25, 0.4 * rate, 2) * (1 + 0.7 * np.sin(ph)) * 0.3
        y = (x / (rms(x) + 1e-12) + ex) * spread
        return y

    y = render_lowrate(fs, n, fi, render)
    # mechanical clatter above the internal band (only where fs allows it)
    if fs > fi:
        t = np.arange(n) / fs
        d = dist(t)
        hf = bandnoise(rng, n, fs, 0.4 * fi, 6000, 2) * 0.1 / np.maximum(d, 1.0) * 10 ** (
            -air_atten_db(2000, d) / 20)
        y = y + hf
    # normalise so that level_pa is the RMS at 1 m-equivalent scaling (spread already applied)
    return y * level_pa


# ----------------------------------------------------------------------------------------------
# recorder units and scene
# ----------------------------------------------------------------------------------------------
def make_unit(rng, fs, cheap):
    if cheap:
        u = dict(kind="cheap-clipping", hp_hz=U(rng, 25, 45), self_noise_db=U(rng, 30, 38),
                 fullscale_spl=U(rng, 86, 94), dc=U(rng, -0.04, 0.04))
    elif fs <= 8000:
        u = dict(kind="old-lowrate", hp_hz=U(rng, 3, 12), self_noise_db=U(rng, 28, 36),
                 fullscale_spl=U(rng, 100, 112), dc=U(rng, -0.03, 0.03))
    elif fs <= 22050:
        u = dict(kind="mid", hp_hz=U(rng, 6, 20), self_noise_db=U(rng, 22, 30),
                 fullscale_spl=U(rng, 100, 112), dc=U(rng, -0.01, 0.01))
    else:
        u = dict(kind="good-lownoise", hp_hz=U(rng, 2, 8), self_noise_db=U(rng, 14, 22),
                 fullscale_spl=U(rng, 100, 115), dc=U(rng, -0.004, 0.004))
    u["fs"] = fs
    u["clips"] = bool(cheap)
    return u


def recorder_chain(x, fs, unit):
    """Linear part of the recorder: 2nd-order high-pass (mic/preamp coupling) + elliptic anti-alias
    low-pass at 0.45 fs (pass-band edge)."""
    hp = signal.butter(2, unit["hp_hz"], "highpass", fs=fs, output="sos")
    aa = signal.ellip(6, 0.2, 70, 0.45 * fs, "lowpass", fs=fs, output="sos")
    return signal.sosfilt(aa, signal.sosfilt(hp, x))


def make_scene(rng, busy):
    wet = rng.random() < 0.4
    tod = str(rng.choice(["day", "dusk", "night", "dawn"], p=[0.45, 0.2, 0.25, 0.1]))
    return dict(season="wet" if wet else "dry", time_of_day=tod, busy=busy,
                wind_spl=U(rng, 58, 80) if tod == "day" else U(rng, 40, 65))


# ----------------------------------------------------------------------------------------------
# background / confounder construction
# ----------------------------------------------------------------------------------------------
def build_background(rng, fs, n, scene, unit, confs, busy, forbid=None):
    """Return the acoustic non-elephant signal (Pa) incl. self-noise, and fill confs metadata."""
    T = n / fs
    x = np.zeros(n)
    day = scene["time_of_day"] in ("day", "dusk", "dawn")
    wet = scene["season"] == "wet"
    rate_mult = 1.6 if busy else 1.0

    def cnt(lam):
        return int(rng.poisson(lam * rate_mult))

    def when(dur):
        return U(rng, -0.1 * dur, max(T - 0.5 * dur, 0.0))

    def log(kind, t0, dur, **kw):
        confs.append(dict(type=kind, begin=round(max(0.0, t0), 3), end=round(min(T, t0 + dur), 3), **kw))

    # --- self-noise of the recorder (white density + 1/f-ish rise for old units)
    dens = unit["self_noise_db"] - 10 * np.log10(20000.0)
    sn = rng.standard_normal(n) * spl(dens + 10 * np.log10(fs / 2))
    if unit["kind"] != "good-lownoise":
        sn += signal.sosfilt(signal.butter(1, 8, fs=fs, output="sos"), rng.standard_normal(n)) * spl(
            dens + 10 * np.log10(fs / 2)) * 8
    x += sn
    confs.append(dict(type="self_noise", begin=0, end=T, level_db_spl=round(unit["self_noise_db"], 1)))

    # --- ambient floor: distant biophony / everything far away (pinkish)
    L = U(rng, 24, 38) + (4 if wet else 0)
    amb = signal.sosfilt(signal.butter(1, 150, fs=fs, output="sos"), rng.standard_normal(n))
    amb = amb / rms(amb) + 0.3 * rng.standard_normal(n)
    x += amb / rms(amb) * spl(L)
    confs.append(dict(type="ambient_floor", begin=0, end=T, level_db_spl=round(L, 1)))

    # --- wind on the microphone: low-frequency buffeting under a gust envelope with calm gaps
    Lw = scene["wind_spl"]
    g = np.exp(U(rng, 0.5, 1.1) * smooth_noise(rng, n, fs, U(rng, 0.03, 0.15)))
    g *= np.exp(0.5 * smooth_noise(rng, n, fs, U(rng, 1.0, 4.0)))        # turbulence flutter
    calm = np.ones(n)
    for _ in range(int(rng.integers(0, 4))):                               # calm stretches ("silence")
        c0, cd = U(rng, 0, T), U(rng, 10, 60)
        calm *= 1 - 0.97 * np.exp(-0.5 * ((np.arange(n) / fs - c0) / (cd / 3)) ** 4)
        log("wind_calm", c0 - cd / 2, cd)
    g *= calm
    fcw = U(rng, 12, 45)
    buf = signal.sosfilt(signal.butter(2, fcw, fs=fs, output="sos"), rng.standard_normal(n))
    buf = buf / rms(buf) + 0.15 * bandnoise(rng, n, fs, 40, 400, 1)
    x += buf / rms(buf) * g / rms(g) * spl(Lw)
    rust = bandnoise(rng, n, fs, 400, 7000, 2) * g ** 1.5
    x += rust / rms(rust) * spl(Lw - U(rng, 22, 32))
    confs.append(dict(type="wind", begin=0, end=T, level_db_spl=round(Lw, 1), corner_hz=round(fcw, 1)))
    del buf, rust, g, calm, sn, amb

    # --- dust devils (day): strong passing whirlwind buffeting
    for _ in range(cnt(1.0 if day else 0.1)):
        dur = U(rng, 8, 40)
        m = int(dur * fs)
        e = np.sin(np.pi * np.linspace(0, 1, m)) ** 2 * np.exp(0.6 * smooth_noise(rng, m, fs, 3))
        b = signal.sosfilt(signal.butter(2, U(rng, 15, 60), fs=fs, output="sos"), rng.standard_normal(m))
        b = b / rms(b) + 0.3 * bandnoise(rng, m, fs, 300, 6000, 2)
        Ld = Lw + U(rng, 3, 14)
        t0 = when(dur)
        add_at(x, b * e / rms(e) * spl(Ld) / rms(b), int(t0 * fs))
        log("dust_devil", t0, dur, level_db_spl=round(Ld, 1))

    # --- diesel generator at the borehole / camp (steady harmonic hum, hardest look-alike)
    if rng.random() < (0.75 if busy else 0.45):
        rpm0 = float(rng.choice([1500.0, 1800.0])) * U(rng, 0.98, 1.02)
        cyl = int(rng.choice([2, 3, 4]))
        hunt_f, hunt_a = U(rng, 0.05, 0.5), U(rng, 0.002, 0.01)
        d0 = U(rng, 80, 700)
        Lg = U(rng, 38, 60)
        t_on, t_off = (0.0, T) if rng.random() < 0.6 else sorted([U(rng, 0, T), U(rng, 0, T)])
        y = engine(fs, n, rng, lambda t: rpm0 * (1 + hunt_a * np.sin(2 * np.pi * hunt_f * t)), cyl,
                   1.0, lambda t: np.full_like(t, d0))
        tt = np.arange(n) / fs
        y *= np.clip((tt - t_on) / 3, 0, 1) * np.clip((t_off - tt) / 3, 0, 1)
        x += y / (rms(y[int(t_on * fs):int(t_off * fs) + 1]) + 1e-12) * spl(Lg)
        log("diesel_generator", t_on, t_off - t_on, rpm=round(rpm0), cylinders=cyl,
            cycle_hz=round(rpm0 / 120, 2), distance_m=round(d0), level_db_spl=round(Lg, 1))
        del y, tt

    # --- borehole water pump: single-cylinder diesel (Lister type, ~6 Hz cycle) or electric motor
    if rng.random() < (0.5 if busy else 0.3):
        dur = U(rng, min(120.0, T / 2), T)
        t0 = when(dur)
        m = int(dur * fs)
        Lp = U(rng, 36, 55)
        if rng.random() < 0.5:
            rpm0 = U(rng, 600, 900)
            y = engine(fs, m, rng, lambda t: rpm0 * (1 + 0.01 * np.sin(2 * np.pi * 0.2 * t)), 1, 1.0,
                       lambda t: np.full_like(t, 60.0), firing_boost=4)
            log("diesel_pump", t0, dur, rpm=round(rpm0), cycle_hz=round(rpm0 / 120, 2), level_db_spl=round(Lp, 1))
        else:
            rot = U(rng, 47, 49.5)

            def elec(rate, mm, rot=rot):
                tt = np.arange(mm) / rate
                h = sum(a * np.sin(2 * np.pi * f * tt + rng.uniform(0, 6.3)) for f, a in
                        [(100, 1), (200, 0.5), (300, 0.25), (rot, 0.4), (2 * rot, 0.3), (50, 0.2),
                         (400, 0.1)] if f < 0.4 * rate)
                return h + 0.3 * bandnoise(rng, mm, rate, 30, 0.4 * rate, 2)
            y = render_lowrate(fs, m, 2000, elec)
            log("electric_pump", t0, dur, rotation_hz=round(rot, 2), level_db_spl=round(Lp, 1))
        y = y * env_ar(m, fs, 2, 2)
        add_at(x, y / rms(y) * spl(Lp), int(t0 * fs))

    # --- solar inverter: switching whine + 100 Hz magnetostriction hum, follows sunshine
    if day and rng.random() < 0.45:
        fsw = U(rng, 3000, 16000)
        Li = U(rng, 22, 38)
        tt = np.arange(n) / fs
        sun = 0.6 + 0.4 * np.tanh(smooth_noise(rng, n, fs, 0.02))
        y = 0.5 * np.sin(2 * np.pi * 100 * tt) + 0.2 * np.sin(2 * np.pi * 200 * tt)
        for f, a in [(fsw, 1.0), (fsw - 100, 0.3), (fsw + 100, 0.3), (2 * fsw, 0.2)]:
            if f < 0.43 * fs:
                y = y + a * np.sin(2 * np.pi * f * tt * (1 + 0.0005 * smooth_noise(rng, 1, 1, 1)[0]))
        x += y * sun * spl(Li)
        log("solar_inverter", 0, T, switching_hz=round(fsw), level_db_spl=round(Li, 1))
        del tt, y, sun

    # --- safari vehicles: drive-by or arrive-idle-leave (diesel, 4/6 cylinders)
    for _ in range(cnt(1.2 if day else 0.3)):
        cyl = int(rng.choice([4, 6]))
        Lv = U(rng, 50, 72)
        if rng.random() < 0.5:     # drive-by
            dur = U(rng, 40, 120)
            v, d0 = U(rng, 4, 14), U(rng, 20, 300)
            tc = dur / 2
            rpm0 = U(rng, 1400, 2300)
            shifts = rng.uniform(0.85, 1.15, 20)
            rpm = lambda t, r=rpm0, s=shifts: r * s[np.clip((t // 8).astype(int), 0, 19)] * (1 + 0.05 * np.sin(t))
            dist = lambda t, d0=d0, v=v, tc=tc: np.sqrt(d0 ** 2 + (v * (t - tc)) ** 2)
            dop = lambda t, d0=d0, v=v, tc=tc: 1 / (1 + v * v * (t - tc) / np.sqrt(d0 ** 2 + (v * (t - tc)) ** 2) / 343)
            mode = "drive_by"
        else:                      # idling at a sighting
            dur = U(rng, 60, 300)
            d0 = U(rng, 30, 250)
            rpm0 = U(rng, 650, 900)
            rpm = lambda t, r=rpm0: r * (1 + 0.01 * np.sin(2 * np.pi * 0.3 * t))
            dist = lambda t, d0=d0: np.full_like(t, d0)
            dop = None
            mode = "idle"
        m = int(dur * fs)
        t0 = when(dur)
        y = engine(fs, m, rng, rpm, cyl, 1.0, dist, fi=4000, doppler=dop)
        y *= env_ar(m, fs, 3, 3)
        add_at(x, y / np.max(np.abs(y) + 1e-12) * spl(Lv) * 1.4, int(t0 * fs))
        log("safari_vehicle", t0, dur, mode=mode, rpm=round(rpm0), cylinders=cyl, distance_m=round(d0),
            level_db_spl=round(Lv, 1))

    # --- tractor (3-cyl diesel, varying load, slow) - low harmonic hum ~10-20 Hz cycle
    for _ in range(cnt(0.4 if day else 0.05)):
        dur = U(rng, 100, 400)
        m = int(dur * fs)
        t0 = when(dur)
        rpm0, d0, v = U(rng, 1100, 2000), U(rng, 80, 800), U(rng, 1, 4)
        load = rng.uniform(0.9, 1.1, 60)
        y = engine(fs, m, rng, lambda t: rpm0 * load[np.clip((t // 7).astype(int), 0, 59)], 3, 1.0,
                   lambda t: np.sqrt(d0 ** 2 + (v * (t - dur / 2)) ** 2))
        Lt = U(rng, 48, 68)
        y *= env_ar(m, fs, 5, 5)
        add_at(x, y / np.max(np.abs(y) + 1e-12) * spl(Lt) * 1.4, int(t0 * fs))
        log("tractor", t0, dur, rpm=round(rpm0), distance_m=round(d0), level_db_spl=round(Lt, 1))

    # --- light aircraft flyover (2-blade prop, 4-cyl; Doppler sweep)
    for _ in range(cnt(0.35 if day else 0.05)):
        dur = U(rng, 60, 150)
        m = int(dur * fs)
        t0 = when(dur)
        rpm0, h, v = U(rng, 2200, 2700), U(rng, 250, 1500), U(rng, 45, 70)
        dist = lambda t: np.sqrt(h ** 2 + (v * (t - dur / 2)) ** 2)
        dop = lambda t: 1 / (1 + v * v * (t - dur / 2) / np.sqrt(h ** 2 + (v * (t - dur / 2)) ** 2) / 343)
        y = engine(fs, m, rng, lambda t: np.full_like(t, rpm0), 4, 1.0, dist, fi=4000, doppler=dop)
        La = U(rng, 45, 66)
        y *= env_ar(m, fs, 5, 5)
        add_at(x, y / np.max(np.abs(y) + 1e-12) * spl(La) * 1.4, int(t0 * fs))
        log("light_aircraft", t0, dur, rpm=round(rpm0), altitude_m=round(h), speed_ms=round(v, 1),
            level_db_spl=round(La, 1))

    # --- thunderstorms (wet season): distant rolling low rumble, close ones with a crack
    if wet and rng.random() < (0.9 if busy else 0.6):
        for _ in range(int(rng.integers(1, 9))):
            dur = U(rng, 4, 25)
            m = int(dur * fs)
            t0 = when(dur)
            dk = U(rng, 1, 15)
            e = np.zeros(m)
            tt = np.arange(m) / fs
            for _k in range(int(rng.integers(2, 7))):          # rolling sub-strokes
                tk = U(rng, 0, dur * 0.5)
                e += U(rng, 0.3, 1) * (tt > tk) * np.exp(-np.maximum(tt - tk, 0) / U(rng, 0.5, dur / 3))
            e *= np.clip(tt / 0.3, 0, 1)
            y = signal.sosfilt(signal.butter(2, U(rng, 60, 250), fs=fs, output="sos"), rng.standard_normal(m))
            y = y / rms(y) * e
            if dk < 3:
                k = int(U(rng, 0.05, 0.3) * fs)
                y[:k] += bandnoise(rng, k, fs, 200, 8000, 2) * 3 * np.exp(-np.arange(k) / (0.3 * k))
            y = propagate(y, fs, dk * 1000 * 0.3)
            Lt = U(rng, 50, 85) - 8 * np.log10(dk)
            add_at(x, y / np.max(np.abs(y) + 1e-12) * spl(Lt) * 1.4, int(t0 * fs))
            log("thunder", t0, dur, distance_km=round(dk, 2), level_db_spl=round(Lt, 1))

    # --- rain spells: hiss + drop impacts + hits on the recorder housing
    if wet and rng.random() < 0.5:
        dur = U(rng, 40, 400)
        m = int(dur * fs)
        t0 = when(dur)
        Lr = U(rng, 40, 62)
        e = env_ar(m, fs, U(rng, 5, 30), U(rng, 5, 30)) * np.exp(0.3 * smooth_noise(rng, m, fs, 0.1))
        y = bandnoise(rng, m, fs, 300, 12000, 2)
        drops = (rng.random(m) < U(rng, 50, 400) / fs) * rng.standard_normal(m) * 25
        for fc in (U(rng, 1500, 5000), U(rng, 800, 2500)):
            if fc < 0.4 * fs:
                y += signal.sosfilt(signal.butter(2, [fc * 0.8, fc * 1.25], "bandpass", fs=fs, output="sos"), drops)
        hits = (rng.random(m) < U(rng, 0.5, 4) / fs) * rng.standard_normal(m) * 300
        fh = U(rng, 100, 400)
        y += signal.sosfilt(signal.butter(2, [fh * 0.8, fh * 1.2], "bandpass", fs=fs, output="sos"), hits)
        add_at(x, y / rms(y) * e * spl(Lr), int(t0 * fs))
        log("rain", t0, dur, level_db_spl=round(Lr, 1))

    # --- short animal / human events -------------------------------------------------------------
    def place(kind, seg, t0, L, d, **kw):
        if len(seg) == 0:
            return
        seg = propagate(seg, fs, d)
        pk = np.max(np.abs(seg)) + 1e-12
        add_at(x, seg / pk * spl(L) * 1.4, int(t0 * fs))
        log(kind, t0, len(seg) / fs, level_db_spl=round(L, 1), distance_m=round(d), **kw)

    def bout(syll_fn, nsyl, gap):
        """Concatenate syllables with gaps into one segment."""
        parts = []
        for _ in range(nsyl):
            parts.append(syll_fn())
            parts.append(np.zeros(int(U(rng, *gap) * fs)))
        return np.concatenate(parts) if parts else np.zeros(0)

    # cattle moos (herded to the waterhole) - harmonic 80-160 Hz with moving formants
    for _ in range(cnt(6 if day else 1)):
        dur = U(rng, 0.8, 3.0)
        m = int(dur * fs)
        u = np.linspace(0, 1, m)
        f0 = U(rng, 80, 160) * (1 + 0.25 * np.sin(np.pi * u) - 0.1 * u)
        F1 = 300 + U(rng, 200, 450) * np.sin(np.pi * u)
        seg = harm_call(rng, fs, dur, f0, 6, [(F1, 150, 12), (U(rng, 1000, 1500), 300, 6)], -22, 200, 3000,
                        0.15, 0.3, fmax=4000)
        place("cattle_moo", seg, U(rng, 0, T), U(rng, 45, 72), U(rng, 30, 600), f0_hz=round(f0[0], 1))
    # goats bleating (tremulous, cry look-alike)
    for _ in range(cnt(5 if day else 0.5)):
        def bleat():
            d = U(rng, 0.4, 1.3)
            mm = int(d * fs)
            uu = np.arange(mm) / fs
            f0 = U(rng, 250, 550) * (1 + U(rng, 0.04, 0.1) * np.sin(2 * np.pi * U(rng, 6, 14) * uu))
            return harm_call(rng, fs, d, f0, 6, [(U(rng, 700, 1000), 200, 10), (U(rng, 1600, 2300), 300, 6)],
                             -18, 300, 5000, 0.05, 0.15, fmax=6000)
        place("goat_bleats", bout(bleat, int(rng.integers(1, 6)), (0.3, 3)), U(rng, 0, T), U(rng, 42, 66),
              U(rng, 20, 300))
    # herders: shouts / whistles; radios
    vowels = [(730, 1090), (270, 2290), (300, 870), (530, 1840), (570, 840)]
    for _ in range(cnt(3 if day else 0.5)):
        def syl():
            d = U(rng, 0.12, 0.45)
            F1, F2 = vowels[int(rng.integers(0, 5))]
            f0 = U(rng, 110, 320) * (1 + 0.1 * np.sin(np.pi * np.linspace(0, 1, int(d * fs))))
            return harm_call(rng, fs, d, f0, 5, [(F1, 90, 15), (F2, 150, 12), (2800, 300, 6)], -20, 1500, 6000,
                             0.02, 0.05, fmax=6000)

        if rng.random() < 0.7:
            place("human_voice", bout(syl, int(rng.integers(2, 14)), (0.05, 0.6)), U(rng, 0, T), U(rng, 45, 72),
                  U(rng, 10, 300))
        else:
            d = U(rng, 0.3, 1.2)
            mm = int(d * fs)
            f = U(rng, 1500, 3000) * (1 + U(rng, -0.2, 0.2) * np.linspace(0, 1, mm))
            seg = harm_call(rng, fs, d, f, 20, (), None, att=0.03, rel=0.08, fmax=8000)
            place("herder_whistle", seg, U(rng, 0, T), U(rng, 50, 75), U(rng, 20, 300))
    for _ in range(cnt(0.6 if day else 0.3)):
        dur = U(rng, 15, 90)
        segs = bout((lambda: harm_call(rng, fs, U(rng, 0.1, 0.35), U(rng, 90, 250), 5,
                                                     [(U(rng, 300, 800), 100, 12), (U(rng, 900, 2400), 200, 10)],
                                                     -15, 1000, 3400, 0.01, 0.03, fmax=3400)),
                    int(dur / 0.4), (0.02, 0.2))
        segs = segs + 0.05 * rng.standard_normal(len(segs))
        sos = band_sos(fs, 300, 3400, 4)
        segs = signal.sosfilt(sos, segs) if sos is not None else segs
        place("radio", segs, U(rng, 0, T), U(rng, 40, 58), U(rng, 5, 60))
    # dogs barking
    for _ in range(cnt(1.5)):
        def bark():
            d = U(rng, 0.08, 0.25)
            f0 = U(rng, 350, 900) * np.linspace(1.1, 0.85, int(d * fs))
            return harm_call(rng, fs, d, f0, 5, [(U(rng, 700, 1000), 200, 8), (U(rng, 1600, 2200), 300, 6)], -6,
                             300, 6000, 0.005, 0.05, fmax=7000)
        place("dog_barks", bout(bark, int(rng.integers(3, 16)), (0.3, 1.5)), U(rng, 0, T), U(rng, 45, 72),
              U(rng, 30, 500))
    # lions roaring (night/dawn): moans, full roars, grunt series
    for _ in range(cnt(0.2 if day else 1.5)):
        parts = []
        for _k in range(int(rng.integers(1, 4))):
            d = U(rng, 0.6, 1.2)
            parts += [harm_call(rng, fs, d, U(rng, 110, 170) * np.linspace(1.1, 0.9, int(d * fs)), 8, [(300, 150, 6)],
                                -14, 100, 1500, 0.2, 0.3, fmax=1500) * 0.4, np.zeros(int(U(rng, 1, 2) * fs))]
        for _k in range(int(rng.integers(3, 7))):
            d = U(rng, 1.0, 2.0)
            mm = int(d * fs)
            f0 = U(rng, 170, 220) * np.linspace(1.0, U(rng, 0.5, 0.7), mm)
            am = 1 + 0.3 * np.sin(2 * np.pi * U(rng, 20, 35) * np.arange(mm) / fs)
            parts += [harm_call(rng, fs, d, f0, 5, [(U(rng, 250, 400), 150, 8)], -8, 80, 2000, 0.15, 0.4,
                                fmax=2500, am=am), np.zeros(int(U(rng, 1.2, 3) * fs))]
        ng = int(rng.integers(8, 25))
        for k in range(ng):
            d = U(rng, 0.2, 0.45)
            parts += [harm_call(rng, fs, d, U(rng, 70, 120), 8, [(250, 120, 6)], -6, 60, 1200, 0.03, 0.15,
                                fmax=1500) * (1 - 0.6 * k / ng), np.zeros(int(U(rng, 0.6, 1.4) * (1 + k / ng) * fs))]
        place("lion_roar_bout", np.concatenate(parts), U(rng, 0, T), U(rng, 50, 80), U(rng, 200, 4000))
    # spotted hyena whoops
    for _ in range(cnt(0.3 if day else 1.5)):
        def whoop():
            d = U(rng, 0.8, 2.5)
            mm = int(d * fs)
            a, b = U(rng, 200, 350), U(rng, 450, 900)
            f0 = a + (b - a) * np.linspace(0, 1, mm) ** 1.5
            return harm_call(rng, fs, d, f0, 14, (), -25, 200, 2000, 0.1, 0.3, fmax=3000)
        place("hyena_whoops", bout(whoop, int(rng.integers(4, 14)), (1.5, 5)), U(rng, 0, T), U(rng, 45, 72),
              U(rng, 100, 2500))
    # zebra barks (kwa-ha) and wildebeest grunts at the waterhole
    for _ in range(cnt(2.5)):
        def zsyl():
            d = U(rng, 0.15, 0.35)
            return harm_call(rng, fs, d, U(rng, 400, 900) * np.linspace(1.1, 0.9, int(d * fs)), 6,
                             [(U(rng, 1000, 1600), 300, 6)], -6, 300, 5000, 0.02, 0.06, fmax=6000)
        place("zebra_barks", bout(zsyl, int(rng.integers(3, 11)), (0.05, 0.25)), U(rng, 0, T), U(rng, 45, 72),
              U(rng, 30, 800))
    for _ in range(cnt(2.0)):
        def grunt():
            d = U(rng, 0.25, 0.6)
            mm = int(d * fs)
            am = 1 + 0.8 * np.sin(2 * np.pi * U(rng, 18, 40) * np.arange(mm) / fs)
            return harm_call(rng, fs, d, U(rng, 70, 200), 7, [(U(rng, 300, 600), 150, 8)], -8, 60, 2000, 0.03, 0.1,
                             fmax=3000, am=am)
        place("wildebeest_grunts", bout(grunt, int(rng.integers(3, 13)), (0.2, 1.0)), U(rng, 0, T),
              U(rng, 42, 66), U(rng, 30, 600))
    # ostrich booms (breeding males; very low, elephant-rumble-like; 2 short + 1 long)
    for _ in range(cnt(0.8 if day else 0.4)):
        parts = []
        f0b = U(rng, 25, 60)
        for d in (U(rng, 0.3, 0.6), U(rng, 0.3, 0.6), U(rng, 1.2, 2.5)):
            parts += [harm_call(rng, fs, d, f0b * np.linspace(1.05, 0.95, int(d * fs)), 12, [(U(rng, 60, 120), 40, 6)],
                                -20, 20, 300, 0.1, 0.2, fmax=500), np.zeros(int(U(rng, 0.5, 1.5) * fs))]
        place("ostrich_boom", np.concatenate(parts), U(rng, 0, T), U(rng, 45, 65), U(rng, 50, 1000),
              f0_hz=round(f0b, 1))
    # doves cooing
    for _ in range(cnt(4 if day else 0.3)):
        def coo():
            d = U(rng, 0.15, 0.6)
            return harm_call(rng, fs, d, U(rng, 400, 650) * (1 + 0.05 * np.sin(np.pi * np.linspace(0, 1, int(d * fs)))),
                             15, (), None, att=0.04, rel=0.08, fmax=2500)
        place("dove_coos", bout(coo, int(rng.integers(3, 8)), (0.1, 0.4)), U(rng, 0, T), U(rng, 40, 62),
              U(rng, 10, 200))
    # weaver bird colony chatter (dense FM syllables 2-7 kHz)
    if 0.45 * fs > 2200:
        for _ in range(cnt(5 if day else 0.2)):
            dur = U(rng, 2, 15)
            m = int(dur * fs)
            seg = np.zeros(m)
            for _k in range(int(dur * U(rng, 8, 25))):
                d = U(rng, 0.02, 0.1)
                mm = int(d * fs)
                f = np.linspace(U(rng, 2000, 7000), U(rng, 2000, 7000), mm)
                s = harm_call(rng, fs, d, f, 10, (), None, att=0.005, rel=0.01, fmax=14000)
                add_at(seg, s * U(rng, 0.2, 1), int(U(rng, 0, dur - d) * fs))
            place("weaver_chatter", seg, U(rng, 0, T), U(rng, 40, 66), U(rng, 5, 100))
    # cicadas (day, dry heat): pulsed narrowband buzz
    if day and rng.random() < (0.7 if scene["season"] == "dry" else 0.4):
        for _ in range(cnt(3)):
            fc = U(rng, 3000, 8000)
            if fc * 1.15 > 0.45 * fs:
                continue
            dur = U(rng, 5, 60)
            m = int(dur * fs)
            pr = U(rng, 100, 450)
            y = bandnoise(rng, m, fs, fc * 0.85, fc * 1.15, 2) * (0.5 + 0.5 * np.sin(2 * np.pi * pr * np.arange(m) / fs)) ** 2
            y *= env_ar(m, fs, U(rng, 0.5, 3), U(rng, 0.5, 3))
            place("cicada", y, U(rng, 0, T), U(rng, 40, 65), U(rng, 3, 50), carrier_hz=round(fc), pulse_hz=round(pr))
    # frog chorus at the waterhole (night / wet): reed-frog clicks, kassina 'bloops', toad snores
    if (not day or wet) and rng.random() < 0.7:
        dur = U(rng, 60, T)
        m = int(dur * fs)
        seg = np.zeros(m)
        nind = int(rng.integers(3, 15))
        for _i in range(nind):
            sp = int(rng.integers(0, 3))
            per = U(rng, 0.4, 3.0)
            amp_i = U(rng, 0.2, 1)
            fc = [U(rng, 2500, 4000), U(rng, 500, 1000), U(rng, 300, 600)][sp]
            if fc > 0.4 * fs:
                continue
            tk = U(rng, 0, per)
            while tk < dur - 1.5:
                if sp == 0:
                    d = U(rng, 0.02, 0.06)
                    s = harm_call(rng, fs, d, fc, 20, (), None, att=0.003, rel=0.01)
                elif sp == 1:
                    d = U(rng, 0.1, 0.2)
                    s = harm_call(rng, fs, d, fc * np.linspace(0.8, 1.2, int(d * fs)), 12, (), None, att=0.01, rel=0.05)
                else:
                    d = U(rng, 0.4, 1.0)
                    mm = int(d * fs)
                    s = harm_call(rng, fs, d, fc, 8, (), -10, 200, 2000, 0.02, 0.05,
                                  am=(np.sin(2 * np.pi * U(rng, 15, 30) * np.arange(mm) / fs) > 0.3))
                add_at(seg, s * amp_i, int(tk * fs))
                tk += per * U(rng, 0.8, 1.25) + d
        place("frog_chorus", seg * env_ar(m, fs, 5, 5), U(rng, 0, T - dur), U(rng, 42, 62), U(rng, 5, 80),
              individuals=nind)
    return x


# ----------------------------------------------------------------------------------------------
# elephant call scheduling
# ----------------------------------------------------------------------------------------------
def schedule_calls(rng, T):
    """Bouts of social calling at the waterhole. Returns list of (t0, class, kind, snr_target)."""
    target = int(rng.integers(20, 51))
    out = []
    while len(out) < target:
        t0 = U(rng, 2, T - 20)
        base = U(rng, -8, 24)                       # bout-level SNR (distance of the group)
        sn = lambda: float(np.clip(base + rng.normal(0, 5), -10, 30))
        b = str(rng.choice(["greeting", "contact", "musth", "play", "distress"], p=[0.25, 0.3, 0.15, 0.15, 0.15]))
        if b == "greeting":                         # overlapping rumbles + trumpets / roars
            for _ in range(int(rng.integers(2, 6))):
                out.append((t0 + U(rng, 0, 3), "rumble", "calf" if rng.random() < 0.15 else "female", sn()))
            if rng.random() < 0.6:
                out.append((t0 + U(rng, 0, 4), "trumpet", "", sn()))
            if rng.random() < 0.3:
                out.append((t0 + U(rng, 0, 4), "roar", "", sn()))
        elif b == "contact":                        # call and answer rumbles
            t = t0
            for _ in range(int(rng.integers(2, 5))):
                out.append((t, "rumble", "female", sn()))
                t += U(rng, 3, 12)
        elif b == "musth":                          # musth male rumble series, females may answer
            t = t0
            for _ in range(int(rng.integers(1, 4))):
                out.append((t, "rumble", "musth", sn()))
                if rng.random() < 0.4:
                    out.append((t + U(rng, 1, 5), "rumble", "female", sn()))
                t += U(rng, 8, 30)
        elif b == "play":
            for _ in range(int(rng.integers(1, 4))):
                out.append((t0 + U(rng, 0, 10), "trumpet", "", sn()))
            if rng.random() < 0.5:
                out.append((t0 + U(rng, 0, 10), "rumble", "calf", sn()))
        else:                                       # distress: calf roars/cries, mothers rumble
            t = t0
            for _ in range(int(rng.integers(1, 3))):
                out.append((t, "roar", "", sn()))
                t += U(rng, 1.5, 4)
            for _ in range(int(rng.integers(1, 4))):
                out.append((t, "cry", "", sn()))
                t += U(rng, 0.8, 3)
            for _ in range(int(rng.integers(1, 3))):
                out.append((t + U(rng, 0, 2), "rumble", "female", sn()))
    out = [c for c in out if c[0] < T - 12][:50]
    return sorted(out, key=lambda c: c[0])


def snr_power(x, fs, lo, hi, b, e):
    """In-band power of x over samples [b, e) after a zero-phase 4th-order Butterworth band-pass."""
    pad = int(0.5 * fs)
    s0, s1 = max(0, b - pad), min(len(x), e + pad)
    seg = x[s0:s1]
    sos = band_sos(fs, lo, hi, 4)
    if sos is not None:
        seg = signal.sosfiltfilt(sos, seg)
    return float(np.mean(seg[b - s0:e - s0] ** 2))


def spectral_box(x, fs, thr_db=30.0):
    """Real spectral extent of the isolated recorded call: bins within thr_db of the PSD peak."""
    nper = min(len(x), int(2 ** np.ceil(np.log2(fs))))
    f, P = signal.welch(x, fs, window="blackmanharris", nperseg=nper, noverlap=nper // 2, detrend=False)
    Pdb = 10 * np.log10(P + 1e-30)
    idx = np.where(Pdb > Pdb.max() - thr_db)[0]
    df = f[1] - f[0]
    lo = max(float(f[idx[0]] - 2 * df), 2.0)
    hi = min(float(f[idx[-1]] + 2 * df), fs / 2)
    return round(lo, 1), round(hi, 1)


# ----------------------------------------------------------------------------------------------
# one file
# ----------------------------------------------------------------------------------------------
def make_file(name, set_name, fs, seed, idx, outdir, metadir, cheap):
    t_start = time.time()
    rng = np.random.default_rng([seed, 0 if set_name == "calls" else 1, idx])
    n = int(round(DUR * fs))
    T = n / fs
    unit = make_unit(rng, fs, cheap)
    scene = make_scene(rng, busy=(set_name == "free"))
    confs = []
    # Everything is synthesised at an internal rate fi = min(fs, 8 kHz) (content up to 3.6 kHz) and
    # up-sampled with a polyphase anti-imaging filter; above that only a high-frequency layer (self-noise
    # + grass/leaf rustle hiss) is added at fs. This keeps a 48 kHz file affordable on one core.
    fi = min(fs, 8000)
    up = Fraction(int(fs), int(fi))

    def to_fs(v, length=None):
        if fi == fs:
            return v
        w = signal.resample_poly(v, up.numerator, up.denominator)
        if length is not None:
            w = np.concatenate([w, np.zeros(max(0, length - len(w)))])[:length]
        return w

    noise = build_background(rng, fi, int(round(DUR * fi)), scene, unit, confs, busy=(set_name == "free"))
    noise = to_fs(noise, n)
    if fs > fi:
        dens = unit["self_noise_db"] - 10 * np.log10(20000.0)
        hf = bandnoise(rng, n, fs, 0.4 * fi, fs, 4)
        hf *= np.sqrt(spl(dens + 10 * np.log10(fs / 2 - 0.4 * fi)) ** 2 + spl(scene["wind_spl"] - 45) ** 2)
        noise += hf
        del hf
    noise = recorder_chain(noise, fs, unit)

    # ----- elephant calls
    calls = []
    call_sum = np.zeros(n)
    if set_name == "calls":
        for (t0, cls, kind, snr_t) in schedule_calls(rng, T):
            if cls == "rumble":
                x, p = synth_rumble(rng, fi, kind)
            elif cls == "trumpet":
                x, p = synth_trumpet(rng, fi)
            elif cls == "roar":
                x, p = synth_roar(rng, fi)
            else:
                x, p = synth_cry(rng, fi)
            # distance loosely follows the SNR (quiet calls are usually far), with scatter
            d = 10 ** (np.interp(snr_t, [-10, 30], [np.log10(2500), np.log10(40)]) + rng.normal(0, 0.15))
            rt60 = U(rng, 0.3, 1.2)
            drr = float(np.clip(20 - 12 * np.log10(d / 30), -3, 20))
            y = to_fs(reverb(propagate(x, fi, d), fi, rng, rt60, drr))
            x = np.zeros(int(round(len(x) * fs / fi)))          # only its length (audible extent) is needed
            pad = int(0.5 * fs)
            y = recorder_chain(np.concatenate([np.zeros(pad), y, np.zeros(pad)]), fs, unit)
            b, e = int(round(t0 * fs)), int(round(t0 * fs)) + len(x)
            if e >= n:
                continue
            lo, hi = spectral_box(y[pad:pad + len(x)], fs)
            pc = snr_power(y, fs, lo, hi, pad, pad + len(x))
            pn = snr_power(noise, fs, lo, hi, b, e)
            y *= np.sqrt(pn * 10 ** (snr_t / 10) / (pc + 1e-30))
            add_at(call_sum, y, b - pad)
            calls.append(dict(cls=cls, b=b, e=e, lo=lo, hi=hi, seg=y, seg_start=b - pad, snr_target=snr_t,
                              distance_m=round(float(d)), rt60=round(rt60, 2), drr_db=round(drr, 1), params=p))

    # ----- recorder gain (full-scale SPL), clipping, DC, dropouts
    mix = noise + call_sum
    fsl = unit["fullscale_spl"]
    gain = 1.0 / spl(fsl)
    peak = float(np.max(np.abs(mix))) * gain
    if not unit["clips"] and peak > 0.89:           # operator set gain with headroom
        gain *= 0.89 / peak
    elif unit["clips"]:                             # cheap preamp: low headroom; drive set so peaks clip
        p999 = float(np.percentile(np.abs(mix), 99.95)) * gain
        gain *= float(np.clip(1.15 / max(p999, 1e-9), 0.05, 50))
    out = mix * gain
    clip_frac = 0.0
    if unit["clips"]:                               # soft then hard preamp clipping, 2x oversampled
        o2 = signal.resample_poly(out, 2, 1)
        o2 = np.where(np.abs(o2) < 0.7, o2, np.sign(o2) * (0.7 + 0.3 * np.tanh((np.abs(o2) - 0.7) / 0.3)))
        o2 = np.clip(o2, -0.95, 0.98)               # asymmetric rails
        clip_frac = float(np.mean(np.abs(o2) >= 0.949))
        out = signal.resample_poly(o2, 1, 2)[:n]
    dc = unit["dc"]
    out = out + dc + 0.002 * abs(dc) * smooth_noise(rng, n, fs, 0.01)
    # dropouts (card-write silence gaps), never over a call
    drops = []
    for _ in range(int(rng.integers(0, 3))):
        dd = U(rng, 0.2, 3.0)
        t0 = U(rng, 0, T - dd)
        a, z = int(t0 * fs), int((t0 + dd) * fs)
        if any(not (z + fs < c["b"] or a - fs > c["e"]) for c in calls):
            continue
        out[a:z] = 0.0
        noise[a:z] = 0.0   # the recorded noise is zero there too (irrelevant to any call box)
        drops.append([round(t0, 3), round(dd, 3)])
    pcm = np.clip(np.round(out * 32767), -32768, 32767).astype(np.int16)

    # ----- final SNR measured on the recorded (gained) isolated signals
    rows = []
    gnoise = noise * gain
    for i, c in enumerate(sorted(calls, key=lambda c: c["b"])):
        seg = c["seg"] * gain
        off = c["b"] - c["seg_start"]
        pc = snr_power(seg, fs, c["lo"], c["hi"], off, off + (c["e"] - c["b"]))
        pn = snr_power(gnoise, fs, c["lo"], c["hi"], c["b"], c["e"])
        c["snr"] = round(10 * np.log10(pc / (pn + 1e-30)), 2)
        rows.append(f"{i + 1}\tSpectrogram 1\t1\t{c['b'] / fs:.4f}\t{c['e'] / fs:.4f}\t{c['lo']:.1f}\t"
                    f"{c['hi']:.1f}\t{c['cls']}\t{c['snr']:.2f}")

    os.makedirs(outdir, exist_ok=True)
    os.makedirs(metadir, exist_ok=True)
    sf.write(os.path.join(outdir, name + ".wav"), pcm, fs, subtype="PCM_16")
    with open(os.path.join(outdir, name + ".selections.txt"), "w") as f:
        f.write(HEADER + "\n" + "".join(r + "\n" for r in rows))
    meta = dict(file=name + ".wav", set=set_name, seed=seed, sample_rate=fs, duration_s=T,
                recorder={k: (round(v, 4) if isinstance(v, float) else v) for k, v in unit.items()},
                gain=gain, scene=scene, clipped_fraction=clip_frac, dropouts=drops,
                calls=[dict(selection=i + 1, cls=c["cls"], begin=round(c["b"] / fs, 4), end=round(c["e"] / fs, 4),
                            low_hz=c["lo"], high_hz=c["hi"], snr_db=c["snr"], snr_target_db=round(c["snr_target"], 2),
                            distance_m=c["distance_m"], rt60_s=c["rt60"], drr_db=c["drr_db"], params=c["params"])
                       for i, c in enumerate(sorted(calls, key=lambda c: c["b"]))],
                confounders=confs, gen_seconds=round(time.time() - t_start, 2))
    with open(os.path.join(metadir, name + ".json"), "w") as f:
        json.dump(meta, f, indent=1, default=float)
    return len(rows), time.time() - t_start


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--set", required=True, choices=["calls", "free"])
    ap.add_argument("--out", required=True)
    ap.add_argument("--seed", type=int, required=True)
    ap.add_argument("--meta", required=True)
    a = ap.parse_args()
    jobs = []
    if a.set == "calls":
        for r in RATES:
            for k, tag in enumerate("ab"):
                jobs.append((f"calls_{r:05d}Hz_{tag}", r, r == 16000 and tag == "b"))
    else:
        for i in range(12):
            r = RATES[i % 7]
            jobs.append((f"free_{i:02d}_{r:05d}Hz", r, i == 3))
    for idx, (name, r, cheap) in enumerate(jobs):
        nc, dt = make_file(name, a.set, r, a.seed, idx, a.out, a.meta, cheap)
        print(f"{name}: {nc} calls, {dt:.1f} s", flush=True)


if __name__ == "__main__":
    main()
