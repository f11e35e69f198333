#!/usr/bin/env python3
"""Independent synthetic soundscape generator for testing elephant-call detectors.

Writes 10-min 16-bit mono WAVs at a recorder rate plus Raven selection tables
(NAME.selections.txt).  Everything is reproducible from --seed.

It shares no code with soundscape.py on purpose: it was written without reading it,
so that the model's scores on its scenes show what the model learnt only from how
soundscape.py makes sound. Do not fold its helpers into soundscape.py's.

Design principles (see independent_soundscape.md for the parameter ranges):
  * every source is synthesised *band-limited* at a rate sr = fs/L (L integer
    >= 1): sinusoidal components are only generated below 0.40*sr (0.42*fs when
    L == 1), noise is shaped in the frequency domain with an anti-alias taper,
    and L > 1 sources are interpolated to fs with a Kaiser FIR (>= 80 dB image
    rejection).  Nothing above the recorder's Nyquist is ever produced.
  * noise layers are generated with an absolute amplitude spectral density so
    the relative levels of layers do not depend on the sample rate.
  * elephant calls are scaled to a *target* in-band SNR; the SNR written in the
    table is then *measured* on the final mix (see band_power / measure).

SNR definition (what the table's "SNR (dB)" column is):
    SNR = 10*log10( P_call / P_bg ),
    P_x = sum of |FFT(hann * x[begin:end])|^2 over FFT bins with
          Low Freq <= f <= High Freq,
  where x = the isolated call as recorded (after propagation, reverberation,
  recorder high-pass and gain) and bg = everything else in the file at the same
  samples that is NOT an elephant call (ambient bed, wind, rain, all
  confounders, recorder self-noise and mains hum; DC offset, clipping and
  16-bit quantisation are excluded).  Other, overlapping elephant calls are not
  counted as background.  Low/High Freq are the lowest/highest frequencies at
  which the call's Welch PSD is within 30 dB of its maximum (rumbles: Low Freq
  is additionally extended down to 0.9 * the lowest F0), clipped to Nyquist.
"""
import argparse
import json
import os
import time

import numpy as np
import scipy.fft as sfft
import scipy.signal as ss
from scipy.io import wavfile
from scipy.ndimage import gaussian_filter1d

F32 = np.float32
TWO_PI = 2.0 * np.pi
DUR = 600
C_SOUND = 343.0
HEADER = ("Selection\tView\tChannel\tBegin Time (s)\tEnd Time (s)\t"
          "Low Freq (Hz)\tHigh Freq (Hz)\tClass\tSNR (dB)")


# ----------------------------------------------------------------------------
# basic helpers
# ----------------------------------------------------------------------------
def db2a(db):
    return 10.0 ** (np.asarray(db, dtype=float) / 20.0)


def ou(n, rate, tau, sigma, rng):
    """Stationary Ornstein-Uhlenbeck process (std sigma, time constant tau s)."""
    n = int(max(n, 1))
    a = np.exp(-1.0 / max(tau * rate, 1e-9))
    w = rng.standard_normal(n) * (sigma * np.sqrt(1.0 - a * a))
    w[0] = rng.standard_normal() * sigma
    return ss.lfilter([1.0], [1.0, -a], w)


def env_ar(n, sr, att, rel, pa=1.0):
    """Raised-cosine attack / release envelope (never abrupt unless att tiny)."""
    e = np.ones(n)
    na = int(max(1, min(att * sr, n // 2)))
    nr = int(max(1, min(rel * sr, n - na)))
    e[:na] = (0.5 - 0.5 * np.cos(np.pi * np.arange(na) / na)) ** pa
    e[n - nr:] *= 0.5 + 0.5 * np.cos(np.pi * (np.arange(nr) + 1) / nr)
    return e


def lor(F, fmts, base):
    """Parallel Lorentzian resonances: base + sum a/(1+((F-Fk)/(Bk/2))^2)."""
    E = np.full(np.shape(F), float(base))
    for Fk, Bk, ak in fmts:
        E = E + ak / (1.0 + ((F - Fk) / (0.5 * Bk)) ** 2)
    return E


def pick_rate(fs, fmax):
    """Synthesis rate sr = fs/L, L integer, with sr >= 2.5*fmax where possible."""
    L = max(1, int(fs // (2.5 * fmax)))
    return L, fs / L


def blim_of(L, sr):
    return (0.40 if L > 1 else 0.42) * sr


def taper_of(f, L, sr):
    """Anti-alias taper used when shaping noise at rate sr."""
    lo, hi = ((0.38, 0.44) if L > 1 else (0.42, 0.48))
    lo, hi = lo * sr, hi * sr
    g = np.ones_like(f)
    m = f > lo
    g[m] = 0.5 + 0.5 * np.cos(np.pi * np.clip((f[m] - lo) / (hi - lo), 0, 1))
    return g


def shaped_noise(n, sr, mag_fn, rng, L=1):
    """Gaussian noise whose one-sided amplitude spectral density is mag_fn(f)
    (absolute units, so RMS^2 = integral of mag^2 df, independent of sr)."""
    n0 = int(n)
    n = sfft.next_fast_len(n0, real=True)
    m = n // 2 + 1
    W = rng.standard_normal((m, 2)).view(np.complex128)[:, 0]
    f = np.arange(m) * (sr / n)
    g = np.asarray(mag_fn(f), dtype=float) * taper_of(f, L, sr)
    g[0] = 0.0
    W *= g * np.sqrt(n / 2.0 * sr / 2.0)
    return sfft.irfft(W, n, workers=1)[:n0]


def unit_noise(n, sr, mag_fn, rng, L=1):
    x = shaped_noise(n, sr, mag_fn, rng, L)
    return x / (np.sqrt(np.mean(x * x)) + 1e-30)


_FIR = {}


def upsample(x, L):
    """Integer interpolation with a Kaiser FIR: pass < 0.44 sr, stop > 0.56 sr."""
    if L == 1:
        return np.asarray(x, dtype=float)
    if L not in _FIR:
        beta = 0.1102 * (82 - 8.7)
        _FIR[L] = ss.firwin(44 * L + 1, 0.5 / L, window=('kaiser', beta))
    return ss.resample_poly(x, L, 1, window=_FIR[L])


def harm_synth(f0, sr, amp_fn, blim, rng, coherent=False, B=None, nhmax=300,
               fcap=None):
    """Band-limited harmonic series with time-varying F0 and per-harmonic
    amplitudes.  f0: per-sample F0 (Hz).  amp_fn(F, idx) gives amplitudes for
    the harmonic frequencies F (nh x ncontrol) at control sample indices idx.
    Harmonics are only generated below min(blim, fcap) (smooth 8 % taper).
    Processed in time chunks; only harmonics active in a chunk are computed
    (complex recurrence z^h, float64 phase)."""
    n = len(f0)
    if n < 2:
        return np.zeros(n)
    B = B or max(4, int(round(sr / 150)))
    nb = -(-n // B)
    idx = np.minimum(np.arange(nb + 1) * B, n - 1)
    f0c = f0[idx]
    top = blim if fcap is None else min(blim, fcap)
    nh = int(min(nhmax, top // max(np.min(f0), 0.5)))
    if nh < 1:
        return np.zeros(n)
    H = np.arange(1, nh + 1, dtype=float)[:, None]
    F = H * f0c[None, :]
    A = np.asarray(amp_fn(F, idx), dtype=float) * np.ones_like(F)
    A *= np.clip((top - F) / (0.08 * top), 0.0, 1.0)
    A[F < 0.5] = 0.0
    del F
    act = A > 1e-4 * (A.max() + 1e-30)
    fp = np.concatenate([f0, np.full(nb * B - n, f0[-1])])
    phi = np.cumsum(fp) * (TWO_PI / sr)
    th = np.zeros(nh) if coherent else rng.uniform(0, TWO_PI, nh)
    cth, sth = np.cos(th), np.sin(th)
    ramp = np.arange(B) / B
    out = np.zeros(nb * B)
    cpc = max(1, 32768 // B)
    for c0 in range(0, nb, cpc):
        c1 = min(nb, c0 + cpc)
        a_, b_ = c0 * B, c1 * B
        hs = np.nonzero(act[:, c0:c1 + 1].any(axis=1))[0]
        if len(hs) == 0:
            continue
        z1 = np.exp(1j * phi[a_:b_])
        zn = z1.copy()
        seg = np.zeros(b_ - a_)
        for h in range(hs.max() + 1):
            if act[h, c0:c1 + 1].any():
                Ah = A[h, c0:c1 + 1]
                av = (Ah[:-1, None] + np.diff(Ah)[:, None] * ramp).ravel()
                seg += av * (zn.imag * cth[h] + zn.real * sth[h])
            zn *= z1
        out[a_:b_] = seg
    return out[:n]


def tone(freq, sr, phase0=0.0):
    return np.sin(phase0 + np.cumsum(freq) * (TWO_PI / sr))


def rms(x):
    return float(np.sqrt(np.mean(np.square(x, dtype=float)))) if len(x) else 0.0


def band_edges(y, fs, thr_db=30.0, smooth_hz=0.0):
    nper = int(min(len(y), max(256, fs * 0.5)))
    f, P = ss.welch(y, fs, nperseg=nper, noverlap=nper // 2, detrend=False)
    df = f[1] - f[0]
    if smooth_hz > 0:
        k = max(1, int(round(smooth_hz / df)))
        if k > 1:
            P = np.convolve(P, np.ones(k) / k, mode='same')
    P[0] = 0.0
    ok = np.nonzero(P >= P.max() * 10 ** (-thr_db / 10))[0]
    lo = max(1.0, f[ok[0]] - df / 2)
    hi = min(fs / 2.0, f[ok[-1]] + df / 2)
    return float(lo), float(hi)


def band_power(x, fs, lo, hi):
    x = np.asarray(x, dtype=float)
    nf = sfft.next_fast_len(len(x), real=True)
    X = sfft.rfft(x * np.hanning(len(x)), nf, workers=1)
    f = np.arange(len(X)) * (fs / nf)
    m = (f >= lo) & (f <= hi)
    return float(np.sum(X[m].real ** 2 + X[m].imag ** 2)) + 1e-30


def add_seg(track, seg, start):
    """Add seg to track with seg[0] at sample `start` (may be negative)."""
    n = len(track)
    a, b = start, start + len(seg)
    sa, sb = max(a, 0), min(b, n)
    if sb > sa:
        track[sa:sb] += seg[sa - a:sb - a].astype(track.dtype, copy=False)


def U(rng, a, b):
    return float(rng.uniform(a, b))


# ----------------------------------------------------------------------------
# propagation (per source) : excess attenuation + reverberation
# ----------------------------------------------------------------------------
def att_db(f, d_km, hab):
    """Excess attenuation (dB): ground/vegetation scattering ~ f^1.5 per 100 m
    plus classical atmospheric absorption (~ f^2)."""
    veg = hab['c'] * (d_km * 10.0) * (f / 1000.0) ** 1.5
    atm = 4.5 * d_km * (f / 1000.0) ** 2
    return np.minimum(veg + atm, 120.0)


def propagate(x, sr, d_km, hab, rng, reverb=True):
    pre = int(0.2 * sr)
    t60 = hab['t60'] * U(rng, 0.8, 1.2)
    nir = int(t60 * sr) if reverb else 0
    xp = np.concatenate([np.zeros(pre), x, np.zeros(pre + nir)])
    if d_km is not None:
        nf = sfft.next_fast_len(len(xp))
        X = sfft.rfft(xp, nf, workers=1)
        f = np.arange(len(X)) * (sr / nf)
        X *= 10 ** (-att_db(f, d_km, hab) / 20)
        xp = sfft.irfft(X, nf, workers=1)[:len(xp)]
    if reverb and nir > 8:
        t = np.arange(nir) / sr
        ir = rng.standard_normal(nir) * np.exp(-6.9 * t / t60)
        pd = int(U(rng, 0.004, 0.03) * sr)
        ir[:pd] = 0.0
        a = np.exp(-TWO_PI * min(hab['rev_lp'], 0.4 * sr) / sr)
        ir = ss.lfilter([1 - a], [1, -a], ir)
        ir /= np.sqrt(np.sum(ir ** 2)) + 1e-30
        dk = max(d_km if d_km is not None else 0.1, 0.02)
        drr = hab['drr0'] - 10 * np.log10(dk / 0.05)
        xp = xp + ss.fftconvolve(xp, ir)[:len(xp)] * 10 ** (-drr / 20)
    return xp, pre


# ----------------------------------------------------------------------------
# elephant calls
# ----------------------------------------------------------------------------
def call_rumble(rng, fs, who=None):
    L, sr = pick_rate(fs, 650)
    who = who or rng.choice(['female', 'male', 'juv'], p=[.6, .15, .25])
    f0b = {'female': U(rng, 12, 18), 'male': U(rng, 8, 13), 'juv': U(rng, 17, 25)}[who]
    med = {'female': 3.5, 'male': 4.5, 'juv': 2.2}[who]
    dur = float(np.clip(med * np.exp(0.4 * rng.standard_normal()), 1.0, 8.0))
    n = int(dur * sr)
    u = np.linspace(0, 1, n)
    kind = rng.choice(['arched', 'flat', 'rising', 'falling'], p=[.45, .2, .15, .2])
    if kind == 'arched':
        p = U(rng, .25, .6)
        c = 1 + U(rng, .08, .35) * np.sin(np.pi * u ** (np.log(.5) / np.log(p)))
    elif kind == 'flat':
        c = 1 + U(rng, -.03, .03) * u
    elif kind == 'rising':
        c = 1 + U(rng, .05, .25) * u ** U(rng, .7, 1.5)
    else:
        c = 1 + U(rng, .05, .25) * (1 - u) ** U(rng, .7, 1.5)
    c *= np.exp(ou(n, sr, .15, U(rng, .003, .012), rng))
    f0 = f0b * c
    if rng.random() < .75:       # nasal rumble (trunk), long vocal tract
        fm = [(U(rng, 28, 45), U(rng, 15, 30), U(rng, 1, 3)),
              (U(rng, 110, 180), U(rng, 30, 60), U(rng, 1.5, 4)),
              (U(rng, 250, 350), U(rng, 50, 100), U(rng, .5, 1.5))]
    else:                        # oral rumble
        fm = [(U(rng, 80, 130), U(rng, 25, 50), U(rng, 1, 3)),
              (U(rng, 230, 330), U(rng, 40, 80), U(rng, 1, 3)),
              (U(rng, 420, 560), U(rng, 60, 120), U(rng, .3, 1))]
    drift = U(rng, -.08, .08)
    base, ft, gam = U(rng, .1, .3), U(rng, 20, 40), U(rng, 1.0, 1.6)
    fund = U(rng, .05, .25)

    def amp(F, idx):
        d = 1 + drift * (idx / n)[None, :]
        A = lor(F, [(a * d, b, g) for a, b, g in fm], base) * (1 + F / ft) ** -gam
        A[0] *= fund
        return A
    x = harm_synth(f0, sr, amp, blim_of(L, sr), rng, fcap=600)
    mag = lambda f: (lor(f, fm, base) * (1 + f / ft) ** -gam * (f / (f + 10)) *
                     (f < 600))
    br = unit_noise(n, sr, mag, rng, L) * rms(x) * db2a(U(rng, -28, -18))
    e = env_ar(n, sr, min(U(rng, .2, .8), .3 * dur), min(U(rng, .3, 1.5), .4 * dur))
    e *= np.linspace(1, U(rng, .6, 1.0), n) * np.exp(ou(n, sr, .1, .08, rng))
    return dict(cls='rumble', x=(x + br) * e, sr=sr, L=L, n=n,
                f0min=float(f0.min()), f0max=float(f0.max()), who=who, contour=kind)


def call_roar(rng, fs):
    L, sr = pick_rate(fs, 3500)
    dur = float(np.clip(1.7 * np.exp(.3 * rng.standard_normal()), 1.0, 3.0))
    n = int(dur * sr)
    fh, fl = U(rng, 80, 150), U(rng, 1500, 3000)
    fm = [(U(rng, 250, 600), U(rng, 150, 300), 1.0),
          (U(rng, 900, 1500), U(rng, 200, 400), U(rng, .4, 1.0)),
          (U(rng, 1800, 2600), U(rng, 300, 600), U(rng, .2, .6))]
    mag = lambda f: ((f / fh) ** 4 / (1 + (f / fh) ** 4) * lor(f, fm, .15) /
                     (1 + (f / fl) ** 2))
    x = unit_noise(n, sr, mag, rng, L)
    # pulsed structure: irregular pulse train 8-30 Hz
    pr = U(rng, 8, 30) * np.exp(ou(n, sr, .2, .15, rng))
    p = (0.5 + 0.5 * np.cos(np.cumsum(pr) * TWO_PI / sr)) ** rng.integers(1, 4)
    dep = U(rng, .2, .7)
    x *= (1 - dep) + dep * p
    if rng.random() < .6:      # chaotic harmonic/pulsed component
        f0 = U(rng, 70, 200) * np.exp(ou(n, sr, .02, .05, rng))
        h = harm_synth(f0, sr, lambda F, i: mag(F), blim_of(L, sr), rng)
        x += h / (rms(h) + 1e-30) * db2a(U(rng, -12, -3))
    e = env_ar(n, sr, U(rng, .05, .3), U(rng, .2, .6))
    e *= np.exp(ou(n, sr, .1, .35, rng))
    return dict(cls='roar', x=x * e, sr=sr, L=L, n=n)


def call_cry(rng, fs):
    L, sr = pick_rate(fs, 4000)
    f0b = U(rng, 220, 600)
    dur = float(np.clip(1.2 * np.exp(.35 * rng.standard_normal()), .5, 2.5))
    n = int(dur * sr)
    u = np.linspace(0, 1, n)
    onset = 1 - U(rng, .05, .2) * np.exp(-u / U(rng, .05, .15))
    trend = 1 + U(rng, -.2, .05) * u
    vr, vd = U(rng, 3, 9), U(rng, .01, .06)
    vib = 1 + vd * (1 + .3 * ou(n, sr, .3, 1, rng)) * np.sin(
        np.cumsum(np.full(n, vr) * np.exp(ou(n, sr, .3, .1, rng))) * TWO_PI / sr)
    f0 = f0b * onset * trend * vib * np.exp(ou(n, sr, .05, .005, rng))
    fm = [(U(rng, 500, 900), 200, U(rng, 1, 3)), (U(rng, 1300, 2100), 300, U(rng, .5, 1.5))]
    gam = U(rng, 1.5, 2.5)
    amp = lambda F, i: lor(F, fm, .3) * (F / f0b) ** -gam
    x = harm_synth(f0, sr, amp, blim_of(L, sr), rng, fcap=6000)
    br = unit_noise(n, sr, lambda f: lor(f, fm, .2) * (f > 150) / (1 + (f / 3000) ** 2),
                    rng, L)
    x += br * rms(x) * db2a(U(rng, -25, -15))
    e = env_ar(n, sr, U(rng, .05, .2), U(rng, .1, .4)) * np.exp(ou(n, sr, .08, .1, rng))
    return dict(cls='cry', x=x * e, sr=sr, L=L, n=n, f0min=float(f0.min()))


def call_trumpet(rng, fs):
    L, sr = pick_rate(fs, 9000)
    f0b = U(rng, 300, 600)
    dur = float(np.clip(.9 * np.exp(.45 * rng.standard_normal()), .3, 2.0))
    n = int(dur * sr)
    u = np.linspace(0, 1, n)
    rise = 1 - U(rng, .1, .25) * np.exp(-u / U(rng, .03, .1))
    fall = 1 - U(rng, .05, .2) * np.clip((u - .85) / .15, 0, 1) ** 2
    c = rise * fall * np.exp(ou(n, sr, .15, .03, rng))
    for _ in range(rng.integers(0, 3)):       # frequency jumps (bifurcations)
        a = U(rng, .1, .8)
        b = min(1, a + U(rng, .05, .3))
        c *= np.where((u > a) & (u < b), 1 + U(rng, -.15, .15), 1)
    c = gaussian_filter1d(c, .004 * sr)
    f0 = f0b * c * np.exp(ou(n, sr, U(rng, .003, .008), U(rng, .01, .04), rng))
    ft, gam = U(rng, 1500, 3000), U(rng, .6, 1.2)
    fm = [(U(rng, 700, 1200), 400, U(rng, 1, 3)), (U(rng, 1800, 2800), 600, U(rng, .5, 2)),
          (U(rng, 3500, 4500), 800, U(rng, .3, 1))]
    fcap = U(rng, 6000, 10000)
    env_f = lambda F: lor(F, fm, .3) * (1 + F / ft) ** -gam
    x = harm_synth(f0, sr, lambda F, i: env_f(F), blim_of(L, sr), rng, fcap=fcap)
    if rng.random() < .4:                       # subharmonic episode (f0/2)
        sub = harm_synth(f0 / 2, sr, lambda F, i: env_f(F) * ((np.arange(F.shape[0]) % 2 == 0)[:, None]),
                         blim_of(L, sr), rng, fcap=fcap)
        a = U(rng, 0, .6)
        g = np.clip((u - a) / .05, 0, 1) * np.clip((a + U(rng, .2, .5) - u) / .05, 0, 1)
        x += sub * g * db2a(U(rng, -15, -6))
    # rasp: rough AM + noise with the same spectral envelope
    am = unit_noise(n, sr, lambda f: 1 / (1 + (f / U(rng, 30, 150)) ** 4), rng, L)
    x *= 1 + U(rng, .2, .5) * am
    nz = unit_noise(n, sr, lambda f: env_f(f) * (f < fcap) * (f > 150), rng, L)
    x += nz * rms(x) * db2a(U(rng, -12, -3))
    e = env_ar(n, sr, U(rng, .005, .03), U(rng, .05, .3))
    e *= (1 + .4 * np.exp(-u / .1)) / 1.4 * np.exp(ou(n, sr, .03, .15, rng))
    return dict(cls='trumpet', x=x * e, sr=sr, L=L, n=n, f0min=float(f0.min()))


DMAX = dict(rumble=4.0, roar=1.2, cry=1.2, trumpet=1.2)   # km
CALLS = dict(rumble=call_rumble, roar=call_roar, cry=call_cry, trumpet=call_trumpet)


# ----------------------------------------------------------------------------
# confounders.  Each returns dict(x=signal at sr, sr, L, d_km (None: the
# renderer handles distance itself), reverb flag)
# ----------------------------------------------------------------------------
def engine_series(rng, sr, L, fr, ncyl, gain_t=None, r_t=None, hab=None,
                  fmax=None, harmonic_jitter=True, tilt=None):
    """Engine harmonics: 4-stroke -> series at half crank orders (fr/2).
    fr: per-sample crank rate (Hz) as *observed* (Doppler applied by caller).
    r_t: per-sample distance (m) to apply distance-dependent low-pass."""
    base = fr / 2.0
    K = int(blim_of(L, sr) // max(base.min(), 1))
    w = rng.uniform(.05, .45, K + 1) if harmonic_jitter else np.full(K + 1, .3)
    k = np.arange(K + 1)
    w[k % (2 * ncyl) == 0] = 1.0   # (not used index 0)
    w[k % ncyl == 0] = np.maximum(w[k % ncyl == 0], rng.uniform(.5, 1.0, (k % ncyl == 0).sum()))
    ft, gam = tilt or (U(rng, 60, 200), U(rng, 1.0, 1.8))
    ex = [(U(rng, 60, 400), U(rng, 30, 120), U(rng, .5, 2))]
    fmax = fmax or U(rng, 700, 1500)

    def amp(F, idx):
        A = w[1:F.shape[0] + 1, None] * lor(F, ex, 1.0) * (1 + F / ft) ** -gam
        if r_t is not None:
            r = r_t[idx][None, :]
            A = A * 10 ** (-att_db(F, r / 1000.0, hab) / 20)
        return A
    x = harm_synth(base, sr, amp, blim_of(L, sr), rng, fcap=fmax,
                   B=max(4, int(sr / 50)))
    return x


def ev_generator(rng, fs, hab, t_on, t_off):
    """Diesel/petrol generator: steady half-order harmonic series with slow
    speed wander, governor hunting, load dips, start (crank, run-up) and stop
    (coast-down glide through the 5-30 Hz range)."""
    L, sr = pick_rate(fs, 1500)
    a, b = max(t_on, 0.0), min(t_off, DUR)
    n = int((b - a) * sr)
    t = a + np.arange(n) / sr
    nom = rng.choice([25.0, 30.0, 50.0, 60.0]) * U(rng, .98, 1.02)
    ncyl = int(rng.choice([1, 2, 3, 4])) if nom < 40 else 1
    fr = nom * np.exp(ou(n, sr, 5, .003, rng))
    if rng.random() < .4:
        fr *= 1 + U(rng, .002, .008) * np.sin(TWO_PI * U(rng, .2, 1) * t)
    for tl in rng.uniform(a, b, rng.poisson((b - a) / 60)):
        fr *= 1 - U(rng, .02, .06) * np.where(t > tl, np.exp(-np.maximum(t - tl, 0) / U(rng, .5, 2)), 0)
    g = np.ones(n)
    if t_on >= 0:                         # start: crank then run-up
        tc = U(rng, .5, 2.0)
        ru = U(rng, 1, 4)
        crank = (t - t_on) < tc
        s = np.clip((t - t_on - tc) / ru, 0, 1)
        fr = np.where(crank, U(rng, 3, 5), fr * (0.35 + 0.65 * (1 - (1 - s) ** 2) *
                                                  (1 + .08 * np.sin(np.pi * s))))
        g = np.where(crank, .3 * (0.5 + 0.5 * np.cos(TWO_PI * 2 * (t - t_on))), 1)
        g *= np.clip((t - t_on) / .1, 0, 1)
    if t_off <= DUR:                      # stop: exponential coast-down
        tau = U(rng, 1, 3)
        s = np.clip(t - (t_off - 4 * tau), 0, None)
        fr = fr * np.exp(-s / tau)
        g = g * np.exp(-s / (1.5 * tau)) * np.clip((t_off - t) / .5, 0, 1)
    fr = np.maximum(fr, 2.0)
    x = engine_series(rng, sr, L, fr, ncyl)
    x /= rms(x) + 1e-30
    if rng.random() < .6:                 # alternator hum
        x += db2a(U(rng, -20, -8)) * np.sin(TWO_PI * np.cumsum(fr * (2 if nom < 40 else 1)) / sr)
    nz = unit_noise(n, sr, lambda f: (f / (f + 30)) / (1 + (f / 1500) ** 2), rng, L)
    x += nz * db2a(U(rng, -22, -12))
    return dict(x=x * g, sr=sr, L=L, d_km=U(rng, .1, 1.5), start=a, kind='generator')


def _path(rng, n, sr, kind):
    t = np.arange(n) / sr
    T = n / sr
    if kind == 'pass':
        v, d0, tc = U(rng, 5, 22), U(rng, 20, 600), U(rng, .3, .7) * T
        x = v * (t - tc)
        return np.sqrt(d0 ** 2 + x ** 2), v
    raise ValueError


def ev_vehicle_pass(rng, fs, hab):
    L, sr = pick_rate(fs, 2500)
    typ = rng.choice(['car', 'truck', 'tractor', 'motorbike'], p=[.35, .35, .15, .15])
    T = U(rng, 25, 90)
    n = int(T * sr)
    t = np.arange(n) / sr
    r, v = _path(rng, n, sr, 'pass')
    vr = np.gradient(r, 1 / sr)                      # radial velocity (away > 0)
    dop = C_SOUND / (C_SOUND + vr)
    rpm = {'car': U(rng, 1500, 3000), 'truck': U(rng, 1000, 2000),
           'tractor': U(rng, 900, 1800), 'motorbike': U(rng, 3000, 6000)}[typ]
    ncyl = {'car': 4, 'truck': 6, 'tractor': int(rng.choice([3, 4])), 'motorbike': int(rng.choice([1, 2]))}[typ]
    fr = rpm / 60 * np.exp(ou(n, sr, 3, .02, rng))
    if rng.random() < .4:                            # gear change
        tg = U(rng, .2, .8) * T
        fr *= np.where(t > tg, U(rng, .65, .8) + 0 * t, 1)
        fr = gaussian_filter1d(fr, .3 * sr)
    x = engine_series(rng, sr, L, fr * dop, ncyl, r_t=r, hab=hab)
    x = x / (rms(x) + 1e-30) * (20 / r)          # spherical spreading
    # tyre / road noise, two bands with different distance attenuation
    rn = 20 / r * (v / 15) ** 2
    for fc, q in ((400, 1.0), (1500, 1.0)):
        nz = unit_noise(n, sr, lambda f: 1 / (1 + ((f - fc) / (fc * q)) ** 2), rng, L)
        x += nz * rn * 10 ** (-att_db(fc, r / 1000, hab) / 20) * db2a(U(rng, -12, -2))
    x *= env_ar(n, sr, 2, 2)
    return dict(x=x, sr=sr, L=L, d_km=None, kind='vehicle_pass')


def ev_vehicle_idle(rng, fs, hab):
    """Vehicle arriving, idling and shutting off; or starting, idling, leaving."""
    L, sr = pick_rate(fs, 2500)
    mode = rng.choice(['arrive_stop', 'start_leave'])
    Ta, Ti, Tl = U(rng, 8, 25), U(rng, 10, 90), U(rng, 8, 25)
    T = Ta + Ti + (Tl if mode == 'start_leave' else 3.0)
    n = int(T * sr)
    t = np.arange(n) / sr
    d_idle, d_far = U(rng, 40, 500), U(rng, 600, 1500)
    idle = U(rng, 11, 15)          # crank Hz (650-900 rpm)
    drive = U(rng, 25, 45)
    ncyl = int(rng.choice([4, 6]))
    if mode == 'arrive_stop':
        s = np.clip(t / Ta, 0, 1)
        r = d_far + (d_idle - d_far) * (1 - (1 - s) ** 2)
        fr = np.where(t < Ta, drive + (idle - drive) * s ** 2, idle)
        toff = Ta + Ti
        fr = np.where(t > toff, idle * np.exp(-(t - toff) / U(rng, .2, .6)), fr)
        g = np.where(t > toff, np.exp(-(t - toff) / .4), 1.0)
        g *= np.clip(t / 3, 0, 1)
    else:
        tstart = Ta * .3
        tcr = U(rng, .6, 1.8)
        cr = (t > tstart) & (t < tstart + tcr)
        catch = t >= tstart + tcr
        fr = np.where(cr, U(rng, 3, 5), 0.5)
        flare = idle * (1 + .8 * np.exp(-np.maximum(t - tstart - tcr, 0) / .8))
        fr = np.where(catch, flare, fr)
        tdep = Ta + Ti
        s = np.clip((t - tdep) / Tl, 0, 1)
        fr = np.where(t > tdep, idle + (drive - idle) * np.sqrt(s) * (1 - .3 * (s > .5)), fr)
        r = d_idle + (d_far - d_idle) * s ** 2
        g = np.where(cr, .4, np.where(catch, 1, 0)) + 0.0
        g *= np.clip((T - t) / 3, 0, 1)
    fr = gaussian_filter1d(fr * np.exp(ou(n, sr, 2, .01, rng)), .1 * sr)
    vr = np.gradient(r, 1 / sr)
    x = engine_series(rng, sr, L, np.maximum(fr, .5) * C_SOUND / (C_SOUND + vr), ncyl, r_t=r, hab=hab)
    x = x / (rms(x) + 1e-30) * (100 / r) * g
    if mode == 'start_leave':      # starter whine during cranking
        wh = U(rng, 150, 400)
        x += .5 * np.sin(TWO_PI * np.cumsum(np.full(n, wh) * (1 + .1 * np.sin(TWO_PI * 4 * t))) / sr) * \
            cr * (100 / r)
    return dict(x=x, sr=sr, L=L, d_km=None, kind='vehicle_idle')


def ev_aircraft(rng, fs, hab):
    L, sr = pick_rate(fs, 2500)
    heli = rng.random() < .55
    T = U(rng, 40, 150)
    n = int(T * sr)
    t = np.arange(n) / sr
    v, d0, tc = (U(rng, 30, 60), U(rng, 150, 1500), U(rng, .3, .7) * T) if heli else \
        (U(rng, 50, 80), U(rng, 300, 2000), U(rng, .3, .7) * T)
    r = np.sqrt(d0 ** 2 + (v * (t - tc)) ** 2)
    dop = C_SOUND / (C_SOUND + np.gradient(r, 1 / sr))
    if heli:
        bpf = U(rng, 11, 22) * np.exp(ou(n, sr, 5, .005, rng)) * dop
        ft = U(rng, 100, 250)
        amp = lambda F, idx: (1 + F / ft) ** -1.6 * 10 ** (-att_db(F, r[idx][None, :] / 1000, hab) / 20)
        x = harm_synth(bpf, sr, amp, blim_of(L, sr), rng, coherent=True, fcap=1200)
        tail = U(rng, 50, 110) * dop
        amp2 = lambda F, idx: (1 + F / 200) ** -2 * 10 ** (-att_db(F, r[idx][None, :] / 1000, hab) / 20)
        x2 = harm_synth(tail, sr, amp2, blim_of(L, sr), rng, fcap=1500)
        x = x / (rms(x) + 1e-30) + x2 / (rms(x2) + 1e-30) * db2a(U(rng, -15, -5))
    else:
        bpf = U(rng, 70, 130) * np.exp(ou(n, sr, 5, .003, rng)) * dop
        amp = lambda F, idx: (1 + F / 300) ** -1.5 * 10 ** (-att_db(F, r[idx][None, :] / 1000, hab) / 20)
        x = harm_synth(bpf, sr, amp, blim_of(L, sr), rng, fcap=2000)
        x /= rms(x) + 1e-30
    nz = unit_noise(n, sr, lambda f: (f / (f + 20)) / (1 + (f / 400) ** 2), rng, L)
    x = x + nz * db2a(U(rng, -15, -5)) * 10 ** (-att_db(300, r / 1000, hab) / 20)
    x *= (500 / r) * env_ar(n, sr, 3, 3)
    return dict(x=x, sr=sr, L=L, d_km=None, kind='helicopter' if heli else 'propeller')


def ev_thunder(rng, fs, hab):
    L, sr = pick_rate(fs, 3000)
    dist = U(rng, 1, 15)
    T = U(rng, 4, 20)
    n = int((T + 3) * sr)
    t = np.arange(n) / sr
    fp, s = U(rng, 30, 120), U(rng, .6, 1.2)
    base = unit_noise(n, sr, lambda f: (f / fp) / (1 + (f / fp) ** 2) ** ((1 + s) / 2), rng, L)
    nr = rng.poisson(T) + 2
    on = T * .6 * rng.beta(1, 2, nr)
    on[0] = 0
    env = np.zeros(n)
    for i, o in enumerate(np.sort(on)):
        a = np.exp(.6 * rng.standard_normal()) * np.exp(-o / (T * .6))
        at, tau = U(rng, .05, .5), U(rng, .5, 3)
        tt = t - o
        env += a * np.where(tt < 0, 0, np.where(tt < at, tt / at, np.exp(-(tt - at) / tau)))
    env *= np.exp(ou(n, sr, .15, .3, rng))
    x = base * env
    if dist < 2.5 and rng.random() < .6:        # near strike: crack
        cr = unit_noise(n, sr, lambda f: 1 / (1 + (f / 3000) ** 2) * (f > 40), rng, L)
        x += cr * np.exp(-t / U(rng, .1, .4)) * np.clip(t / .005, 0, 1) * U(rng, .5, 2) * env.max()
    x *= np.clip((n / sr - t) / 2.5, 0, 1)
    return dict(x=x, sr=sr, L=L, d_km=dist, kind='thunder')


def _notes(rng, sr, L, n, notes, h2=(-20, -10)):
    """Sum of band-limited FM notes: each (t0, f_curve, env)."""
    x = np.zeros(n)
    bl = blim_of(L, sr)
    g2 = db2a(U(rng, *h2))
    for t0, f, e in notes:
        i0 = int(t0 * sr)
        m = min(len(f), n - i0)
        if m <= 4 or i0 < 0:
            continue
        f, e = f[:m], e[:m]
        ph = np.cumsum(f) * TWO_PI / sr
        y = np.sin(ph) * (f < bl) + g2 * np.sin(2 * ph + 1) * (2 * f < bl)
        x[i0:i0 + m] += y * e
    return x


def ev_bird(rng, fs, hab):
    L, sr = pick_rate(fs, 9000)
    kind = rng.choice(['chirps', 'whistle', 'trill', 'warble'])
    notes, t0 = [], 0.0
    if kind == 'chirps':
        for _ in range(rng.integers(3, 16)):
            d = U(rng, .02, .12)
            m = int(d * sr)
            f = np.linspace(U(rng, 2000, 7000), 0, m)
            f = f[0] + np.linspace(0, U(rng, -3000, 3000), m)
            notes.append((t0, np.clip(f, 500, None), env_ar(m, sr, d * .3, d * .5)))
            t0 += d + U(rng, .05, .3)
    elif kind == 'whistle':
        for _ in range(rng.integers(1, 5)):
            d = U(rng, .2, 1.2)
            m = int(d * sr)
            u = np.linspace(0, 1, m)
            f = U(rng, 1200, 4000) * (1 + U(rng, -.15, .15) * u) * (1 + .02 * np.sin(TWO_PI * 6 * u * d))
            notes.append((t0, f, env_ar(m, sr, .05, .1)))
            t0 += d + U(rng, .1, .6)
    elif kind == 'trill':
        for _ in range(rng.integers(1, 3)):
            D, rate, fc = U(rng, .5, 2.5), U(rng, 8, 30), U(rng, 2500, 7000)
            sw = U(rng, -1500, 1500)
            for k in range(int(D * rate)):
                d = .6 / rate
                m = int(d * sr)
                notes.append((t0 + k / rate, fc + np.linspace(0, sw, m), env_ar(m, sr, d * .3, d * .5)))
            t0 += D + U(rng, .3, 1)
    else:
        d = U(rng, 1, 3)
        m = int(d * sr)
        f = U(rng, 1500, 4500) * np.exp(gaussian_filter1d(rng.standard_normal(m), .03 * sr) * 8)
        e = env_ar(m, sr, .02, .05) * (gaussian_filter1d(rng.standard_normal(m), .02 * sr) > -.01)
        notes.append((0, np.clip(f, 800, 8000), gaussian_filter1d(e.astype(float), .003 * sr)))
        t0 = d
    n = int((t0 + .3) * sr)
    return dict(x=_notes(rng, sr, L, n, notes), sr=sr, L=L, d_km=U(rng, .01, .2), kind='bird')


def ev_dove(rng, fs, hab):
    L, sr = pick_rate(fs, 2000)
    f0 = U(rng, 350, 600)
    notes, t0 = [], 0.0
    for _ in range(rng.integers(3, 8)):
        d = U(rng, .2, .7)
        m = int(d * sr)
        u = np.linspace(0, 1, m)
        notes.append((t0, f0 * (1 + U(rng, -.08, .08) * u + .03 * np.sin(np.pi * u)),
                      np.sin(np.pi * u) ** 1.5))
        t0 += d + U(rng, .1, .5)
    n = int((t0 + .3) * sr)
    return dict(x=_notes(rng, sr, L, n, notes, (-18, -10)), sr=sr, L=L, d_km=U(rng, .02, .3), kind='dove')


def ev_hornbill(rng, fs, hab):
    """Ground-hornbill-like booming: low (80-160 Hz) hoots in groups of four."""
    L, sr = pick_rate(fs, 800)
    f0 = U(rng, 80, 160)
    notes, t0 = [], 0.0
    for _ in range(rng.integers(2, 7)):
        for k in range(4):
            d = U(rng, .3, .6)
            m = int(d * sr)
            u = np.linspace(0, 1, m)
            notes.append((t0, f0 * (1.1 if k % 2 else 1.0) * (1 - .05 * u), np.sin(np.pi * u) ** 2))
            t0 += d + (U(rng, .1, .3) if k % 2 == 0 else U(rng, .4, .8))
        t0 += U(rng, 1, 4)
    n = int((t0 + .3) * sr)
    x = _notes(rng, sr, L, n, notes, (-12, -6))
    return dict(x=x, sr=sr, L=L, d_km=U(rng, .2, 2), kind='hornbill')


def ev_hyena(rng, fs, hab):
    L, sr = pick_rate(fs, 3000)
    notes, t0 = [], 0.0
    for _ in range(rng.integers(3, 10)):
        d = U(rng, .8, 2)
        m = int(d * sr)
        u = np.linspace(0, 1, m)
        fa, fb = U(rng, 200, 400), U(rng, 550, 1000)
        notes.append((t0, fa + (fb - fa) * u ** U(rng, .7, 1.5), env_ar(m, sr, .1, .3)))
        t0 += d + U(rng, 2, 5)
    n = int((t0 + .3) * sr)
    return dict(x=_notes(rng, sr, L, n, notes, (-12, -4)), sr=sr, L=L, d_km=U(rng, .2, 2), kind='hyena')


def _voiced(rng, sr, L, f0, fm_fn, tilt=1.0, fcap=5000):
    """Harmonic source through time-varying formants fm_fn(idx)->list."""
    def amp(F, idx):
        return lor(F, fm_fn(idx), .02) * (1 + F / 100) ** -tilt
    return harm_synth(f0, sr, amp, blim_of(L, sr), rng, coherent=True, fcap=fcap)


def ev_lion(rng, fs, hab):
    """Lion roaring bout: moans, full roars (falling f0, noisy), grunts."""
    L, sr = pick_rate(fs, 2500)
    parts, t0 = [], 0.0
    seq = ['moan'] * rng.integers(1, 3) + ['roar'] * rng.integers(3, 9) + ['grunt'] * rng.integers(5, 15)
    for i, p in enumerate(seq):
        d = {'moan': U(rng, 1.5, 2.5), 'roar': U(rng, 1, 2), 'grunt': U(rng, .3, .6)}[p]
        parts.append((t0, p, d))
        t0 += d + {'moan': U(rng, .8, 2), 'roar': U(rng, .6, 1.5), 'grunt': U(rng, .5, 1.2) * (1 + i / 20)}[p]
    n = int((t0 + .5) * sr)
    x = np.zeros(n)
    for k, (t0, p, d) in enumerate(parts):
        m = int(d * sr)
        u = np.linspace(0, 1, m)
        f0 = {'moan': U(rng, 120, 200) * (1 + .2 * np.sin(np.pi * u)), 'roar': U(rng, 150, 250) * (1 - .35 * u),
              'grunt': U(rng, 100, 150) * (1 - .2 * u)}[p] * np.exp(ou(m, sr, .02, .03, rng))
        fm = [(U(rng, 300, 600), 200, 1), (U(rng, 1000, 1500), 300, .5)]
        y = _voiced(rng, sr, L, f0, lambda idx: fm, tilt=1.2, fcap=3000)
        nz = unit_noise(m, sr, lambda f: lor(f, fm, .1) * (f > 80), rng, L)
        y = y / (rms(y) + 1e-30) + nz * U(rng, .3, 1.0)
        lvl = {'moan': .4, 'roar': 1.0, 'grunt': .3}[p] * (1 - .5 * (p == 'grunt') * k / len(parts))
        x[int(t0 * sr):int(t0 * sr) + m] += y * env_ar(m, sr, .1 * d, .4 * d) * lvl
    return dict(x=x, sr=sr, L=L, d_km=U(rng, .3, 3), kind='lion')


def ev_crickets(rng, fs, hab, T=None):
    fc0 = U(rng, 3000, 6000)
    if fc0 > .4 * fs:
        return None
    L, sr = pick_rate(fs, fc0 * 1.15)
    T = T or U(rng, 30, 240)
    n = int(T * sr)
    t = np.arange(n) / sr
    x = np.zeros(n)
    for _ in range(rng.integers(3, 9)):
        fc = fc0 * U(rng, .97, 1.03)
        if fc > blim_of(L, sr):
            continue
        cr, np_, prt = U(rng, 1, 4), rng.integers(3, 7), U(rng, 20, 60)
        ph = (t * cr + rng.random()) % 1.0
        k = ph * cr * prt                      # pulse index inside a chirp
        gate = (k < np_) * (0.5 - 0.5 * np.cos(TWO_PI * (k % 1.0)))
        if rng.random() < .3:                  # continuous trill instead
            gate = 0.5 - 0.5 * np.cos(TWO_PI * (t * prt + rng.random()))
        x += np.sin(TWO_PI * fc * t + rng.random() * TWO_PI) * gate * U(rng, .2, 1)
    bw = U(rng, 200, 500)
    x += unit_noise(n, sr, lambda f: np.exp(-.5 * ((f - fc0) / bw) ** 2), rng, L) * rms(x) * U(rng, .2, .7)
    x *= env_ar(n, sr, 5, 5) * np.exp(ou(n, sr, 10, .3, rng))
    return dict(x=x, sr=sr, L=L, d_km=U(rng, .01, .1), kind='crickets')


def ev_cicada(rng, fs, hab):
    fc, bw = U(rng, 3000, 7000), U(rng, 500, 3000)
    if fc - bw / 2 > .4 * fs:
        return None
    L, sr = pick_rate(fs, fc + bw)
    T = U(rng, 5, 40)
    n = int(T * sr)
    u = np.linspace(0, 1, n)
    x = unit_noise(n, sr, lambda f: np.exp(-.5 * ((f - fc) / (bw / 2)) ** 2), rng, L)
    pr = U(rng, 100, 300) * (1 - .5 * np.clip((u - .8) / .2, 0, 1))
    x *= 1 - .8 * (0.5 + 0.5 * np.cos(np.cumsum(pr) * TWO_PI / sr))
    x *= np.sin(np.pi * u) ** .5
    return dict(x=x, sr=sr, L=L, d_km=U(rng, .01, .1), kind='cicada')


def ev_katydid(rng, fs, hab):
    L, sr = pick_rate(fs, 8000)
    if .45 * fs < 2000:
        return None
    trains = []
    t0 = 0.0
    for _ in range(rng.integers(2, 8)):
        D, rate = U(rng, .5, 3), U(rng, 5, 20)
        trains += [t0 + k / rate for k in range(int(D * rate))]
        t0 += D + U(rng, .5, 3)
    n = int((t0 + .2) * sr)
    imp = np.zeros(n)
    idx = (np.array(trains) * sr).astype(int)
    imp[idx[idx < n]] = np.exp(.3 * rng.standard_normal((idx < n).sum()))
    pulse = unit_noise(int(U(rng, .001, .005) * sr) + 8, sr,
                       lambda f: (f > 2000) * (f < 8000) * 1.0 + 1e-3, rng, L)
    pulse *= np.hanning(len(pulse))
    return dict(x=ss.fftconvolve(imp, pulse)[:n], sr=sr, L=L, d_km=U(rng, .01, .1), kind='katydid')


def ev_fly(rng, fs, hab):
    L, sr = pick_rate(fs, 4000)
    f0 = U(rng, 150, 250) if rng.random() < .7 else U(rng, 400, 650)
    T = U(rng, 1, 8)
    n = int(T * sr)
    u = np.linspace(0, 1, n)
    r = np.sqrt(U(rng, .05, .5) ** 2 + (U(rng, .2, 1) * (u - U(rng, .3, .7)) * T) ** 2)
    f = f0 * np.exp(ou(n, sr, .2, .04, rng)) * (1 - .02 * np.gradient(r, 1 / sr))
    x = harm_synth(f, sr, lambda F, i: (F / f0) ** -1.3, blim_of(L, sr), rng, fcap=5000)
    x *= (.1 / r) * env_ar(n, sr, .2, .2)
    return dict(x=x, sr=sr, L=L, d_km=None, kind='fly')


VOWELS = dict(a=(730, 1090, 2440), e=(530, 1840, 2480), i=(270, 2290, 3010),
              o=(570, 840, 2410), u=(300, 870, 2240))


def ev_voices(rng, fs, hab):
    """Formant-synthesised conversation (two speakers alternating)."""
    L, sr = pick_rate(fs, 4000)
    spk = [(U(rng, 90, 140), 1.0), (U(rng, 170, 250), 1.15)]
    rng.shuffle(spk)
    T, t0, utts = U(rng, 10, 60), 0.0, []
    k = 0
    while t0 < T:
        d = U(rng, .8, 4)
        utts.append((t0, d, spk[k % 2]))
        t0 += d + U(rng, .3, 2)
        k += 1
    n = int((t0 + .5) * sr)
    x = np.zeros(n)
    for t0, d, (f0s, fsc) in utts:
        m = int(d * sr)
        u = np.linspace(0, 1, m)
        nsyl = max(1, int(d * U(rng, 3, 6)))
        sid = np.minimum((u * nsyl).astype(int), nsyl - 1)
        vw = [VOWELS[v] for v in rng.choice(list(VOWELS), nsyl)]
        Fk = np.array(vw, float)[sid] * fsc                        # (m,3)
        Fk = gaussian_filter1d(Fk, .03 * sr, axis=0)
        acc = 1 + .1 * gaussian_filter1d(rng.standard_normal(nsyl)[sid], .05 * sr)
        f0 = f0s * (1 - .2 * u) * acc * np.exp(ou(m, sr, .05, .01, rng))
        sp = (u * nsyl) % 1.0
        cons = rng.random(nsyl)[sid] < .5
        voiced = np.where(cons & (sp < .3), 0.0, 1.0) * (sp < .9)
        voiced = gaussian_filter1d(voiced, .01 * sr)
        fm_fn = lambda idx: [(Fk[idx, j][None, :], (70, 90, 120)[j], (1, .6, .3)[j]) for j in range(3)]
        y = _voiced(rng, sr, L, f0, fm_fn, tilt=1.0, fcap=4000)
        y = y / (rms(y) + 1e-30) * voiced * (0.6 + 0.4 * np.sin(np.pi * sp) ** .5)
        fr = unit_noise(m, sr, lambda f: (f > 2500) * (f < 7000) * 1.0, rng, L)
        y += fr * cons * (sp < .25) * .4 * (sp > .05)
        x[int(t0 * sr):int(t0 * sr) + m] += y * env_ar(m, sr, .03, .05)
    return dict(x=x, sr=sr, L=L, d_km=U(rng, .01, .3), kind='voices')


def ev_cattle(rng, fs, hab):
    """Cattle lowing: nasal 'mm' opening to 'oo/aa', arched F0 100-300 Hz."""
    L, sr = pick_rate(fs, 3500)
    animals = [U(rng, 90, 160) if rng.random() < .8 else U(rng, 150, 300) for _ in range(rng.integers(1, 4))]
    T, t0, moos = U(rng, 5, 60), U(rng, 0, 2), []
    while t0 < T:
        moos.append((t0, animals[rng.integers(len(animals))]))
        t0 += U(rng, 2, 15)
    n = int((t0 + 4) * sr)
    x = np.zeros(n)
    for t0, f0s in moos:
        d = U(rng, .8, 3)
        m = int(d * sr)
        u = np.linspace(0, 1, m)
        pk = U(rng, .2, .4)
        f0 = f0s * (1 + U(rng, .2, .5) * np.sin(np.pi * np.clip(u / (2 * pk), 0, .5)) -
                    U(rng, .1, .3) * np.clip((u - pk) / (1 - pk), 0, 1)) * np.exp(ou(m, sr, .05, .01, rng))
        op = np.sin(np.pi * np.clip((u - .1) / .8, 0, 1)) ** .7           # mouth opening
        F1, F2, F3 = U(rng, 400, 700), U(rng, 900, 1400), U(rng, 2000, 2800)

        def fm_fn(idx, op=op, F1=F1, F2=F2, F3=F3):
            o = op[idx][None, :]
            return [(250 + (F1 - 250) * o, 100, 1.0), (F2, 150, .1 + .5 * o), (F3, 250, .05 + .3 * o)]
        y = _voiced(rng, sr, L, f0, fm_fn, tilt=U(rng, .8, 1.4))
        if rng.random() < .4:
            y *= 1 + .25 * np.sin(TWO_PI * U(rng, 30, 60) * u * d)
        x[int(t0 * sr):int(t0 * sr) + m] += y / (rms(y) + 1e-30) * env_ar(m, sr, U(rng, .1, .3), U(rng, .3, .6)) * U(rng, .5, 1)
    return dict(x=x, sr=sr, L=L, d_km=U(rng, .05, 1.0), kind='cattle')


def ev_cowbell(rng, fs, hab):
    L, sr = pick_rate(fs, 6000)
    T = U(rng, 5, 30)
    n = int(T * sr)
    f1 = U(rng, 400, 1200)
    ratios = np.array([1, U(rng, 2.1, 2.5), U(rng, 3.6, 4.2), U(rng, 5.0, 5.8)])
    tau = U(rng, .1, .6)
    m = int(4 * tau * sr)
    tt = np.arange(m) / sr
    kern = sum((1 / (i + 1)) * np.sin(TWO_PI * f1 * r * tt) * (f1 * r < blim_of(L, sr)) *
               np.exp(-tt / (tau / (1 + .5 * i))) for i, r in enumerate(ratios))
    imp = np.zeros(n)
    k = int(T * U(rng, .5, 3))
    imp[rng.integers(0, n, k)] = np.exp(.5 * rng.standard_normal(k))
    return dict(x=ss.fftconvolve(imp, kern)[:n], sr=sr, L=L, d_km=U(rng, .02, .5), kind='cowbell')


def ev_bump(rng, fs, hab):
    """Handling / mic-bump thumps: low-frequency transients."""
    L, sr = pick_rate(fs, 400)
    n = int(U(rng, .5, 4) * sr)
    x = np.zeros(n)
    for _ in range(rng.integers(1, 5)):
        i0 = rng.integers(0, max(1, n - int(.3 * sr)))
        m = int(.3 * sr)
        tt = np.arange(m) / sr
        f = U(rng, 15, 60)
        x[i0:i0 + m] += np.sin(TWO_PI * f * tt) * np.exp(-tt / U(rng, .03, .15)) * U(rng, .3, 1)
    return dict(x=x, sr=sr, L=L, d_km=None, kind='bump', reverb=False)


CONF = dict(vehicle_pass=ev_vehicle_pass, vehicle_idle=ev_vehicle_idle, aircraft=ev_aircraft,
            thunder=ev_thunder, bird=ev_bird, dove=ev_dove, hornbill=ev_hornbill, hyena=ev_hyena,
            lion=ev_lion, crickets=ev_crickets, cicada=ev_cicada, katydid=ev_katydid, fly=ev_fly,
            voices=ev_voices, cattle=ev_cattle, cowbell=ev_cowbell, bump=ev_bump)

# baseline event counts per 10 min when a type is present, presence probability,
# and the in-band prominence (dB over the bed) drawn for each event
BASE = dict(vehicle_pass=(2, .45, (3, 22)), vehicle_idle=(1, .3, (3, 22)), aircraft=(1, .3, (3, 20)),
            thunder=(2, .25, (5, 25)), bird=(10, .6, (3, 25)), dove=(3, .4, (3, 22)),
            hornbill=(1.5, .3, (3, 20)), hyena=(1.5, .3, (3, 20)), lion=(1, .25, (3, 22)),
            crickets=(1, .4, (3, 20)), cicada=(2, .35, (3, 22)), katydid=(2, .35, (3, 20)),
            fly=(3, .4, (3, 18)), voices=(1.5, .35, (3, 20)), cattle=(2, .35, (3, 25)),
            cowbell=(1, .25, (3, 20)), bump=(2, .3, (5, 25)))

THEMES = {
    'engines': dict(boost=dict(vehicle_pass=12, vehicle_idle=5, aircraft=2), generator=(1, 2),
                    prom=(10, 32), wind=[.3, .4, .2, .1], rain=.1),
    'storm': dict(boost=dict(thunder=20), prom=(10, 35), wind=[.05, .2, .45, .3], rain=.8),
    'wind': dict(boost=dict(thunder=3, aircraft=2), prom=(8, 30), wind=[0, .1, .4, .5], rain=.1, veg=(-8, 0)),
    'pastoral': dict(boost=dict(cattle=12, cowbell=6, voices=8, vehicle_pass=4, fly=6), prom=(8, 30),
                     wind=[.3, .4, .2, .1], rain=.1),
    'dawn': dict(boost=dict(bird=40, dove=12, hornbill=8, cicada=4, crickets=2), prom=(8, 30),
                 wind=[.5, .4, .1, 0], rain=0),
    'night': dict(boost=dict(crickets=4, hyena=8, lion=6, katydid=6), generator=(1, 1), prom=(8, 30),
                  wind=[.6, .3, .1, 0], rain=.1, quiet=.5),
    'aircraft': dict(boost=dict(aircraft=8, vehicle_idle=3), generator=(3, 3), prom=(10, 32),
                     wind=[.2, .4, .3, .1], rain=.1),
    'mixed_hard': dict(boost=dict(thunder=8, vehicle_pass=4, cattle=4, lion=3), generator=(2, 2),
                       prom=(10, 32), wind=[0, .2, .4, .4], rain=.3),
}
FREE_THEMES = ['engines', 'storm', 'wind', 'pastoral', 'dawn', 'night', 'aircraft', 'mixed_hard',
               'engines', 'storm', 'wind', 'mixed_hard']


# ----------------------------------------------------------------------------
# background bed: ambient + wind (mic + vegetation) + rain, with regimes
# ----------------------------------------------------------------------------
CR = 20  # control rate (Hz)


def plan_regimes(rng, theme):
    th = THEMES.get(theme, {})
    nreg = int(rng.integers(2, 6))
    b = np.concatenate([[0], np.sort(rng.uniform(0, DUR, nreg - 1)), [DUR]])
    wp = th.get('wind', [.3, .35, .25, .1])
    regs = []
    for i in range(nreg):
        wc = rng.choice(['calm', 'light', 'moderate', 'strong'], p=wp)
        wdb = {'calm': -40, 'light': U(rng, 8, 20), 'moderate': U(rng, 20, 32), 'strong': U(rng, 32, 42)}[wc]
        r = dict(t0=b[i], t1=b[i + 1], wind_db=wdb, wind=str(wc), amb_db=U(rng, -5, 5),
                 rain=(U(rng, .2, 1) if rng.random() < th.get('rain', .12) else 0.0), quiet=False)
        if rng.random() < th.get('quiet', .12):
            r.update(amb_db=U(rng, -18, -12), wind_db=-40, wind='calm', rain=0.0, quiet=True)
        regs.append(r)
    if th.get('rain', 0) >= .5 and not any(r['rain'] > 0 for r in regs):
        r = regs[int(rng.integers(len(regs)))]
        r.update(rain=U(rng, .5, 1), quiet=False, amb_db=U(rng, -5, 5))
    return regs


def reg_curve(regs, key, sm_s):
    nc = DUR * CR + 1
    tc = np.arange(nc) / CR
    v = np.zeros(nc)
    for r in regs:
        v[(tc >= r['t0']) & (tc <= r['t1'])] = r[key]
    return gaussian_filter1d(v, sm_s * CR, mode='nearest')


def ctrl_interp(c, n, sr, t0=0.0):
    return np.interp(t0 + np.arange(n) / sr, np.arange(len(c)) / CR, c).astype(F32)


def build_bed(rng, fs, regs, theme, hab):
    n = DUR * fs
    nc = DUR * CR + 1
    sm = U(rng, 5, 20)
    bed = np.zeros(n, F32)
    info = {}
    # ambient: pinkish with low-frequency plateau, slow level wander
    f1, a = U(rng, 80, 400), U(rng, .5, 1.1)
    norm = (1 + (100 / f1) ** 2) ** (-a / 2)
    lf = U(rng, 0, 1) if rng.random() < .35 else 0.0      # distant low roar (traffic/surf/river)
    flf = U(rng, 20, 80)
    amb_mag = lambda f: ((1 + (f / f1) ** 2) ** (-a / 2) / norm * (f / (f + 3.0)) +
                         lf * 3 / (1 + (f / flf) ** 2) * (f / (f + 5)))
    amb_db = reg_curve(regs, 'amb_db', sm) + ou(nc, CR, 60, 2.0, rng)
    bed += shaped_noise(n, fs, amb_mag, rng).astype(F32) * ctrl_interp(db2a(amb_db), n, fs)
    info['ambient'] = dict(f1=f1, slope=a, lowroar=lf)
    # wind at the microphone: steep low-frequency noise, gusty; brightens with gusts
    wind_db = reg_curve(regs, 'wind_db', sm)
    gust = ou(nc, CR, U(rng, 3, 12), U(rng, 3, 7), rng)
    buff = gaussian_filter1d(rng.standard_normal(nc), CR * U(rng, .1, .5))
    buff *= U(rng, 2, 5) / (buff.std() + 1e-9)
    wtot = wind_db + gust + buff * (wind_db > 0)
    L, sr = pick_rate(fs, 1000)
    nl = -(-n // L) + 64
    fc, p, f2 = U(rng, 5, 20), U(rng, 1.0, 1.6), U(rng, 300, 800)
    m1 = lambda f: (1 + (f / fc) ** 2) ** (-p / 2) / (1 + (f / f2) ** 2) * (f / (f + 1.0))
    w = shaped_noise(nl, sr, m1, rng, L) * ctrl_interp(db2a(wtot), nl, sr)
    m2 = lambda f: (1 + (f / (4 * fc)) ** 2) ** (-p / 2) / (1 + (f / (2 * f2)) ** 2) * (f / (f + 2.0))
    w += shaped_noise(nl, sr, m2, rng, L) * ctrl_interp(db2a(2 * (wtot - 40) + 30) * (wtot > 0), nl, sr)
    bed += upsample(w, L)[:n].astype(F32)
    del w
    info['wind'] = dict(fc=fc, p=p, f2=f2)
    # wind in vegetation: broadband rustle following smoothed gusts
    veg = U(rng, *THEMES.get(theme, {}).get('veg', (-22, -6)))
    rl = gaussian_filter1d(wtot, CR * 1.0)
    rdb = veg + (rl - 15) - 16 + 6 * gaussian_filter1d(rng.standard_normal(nc), CR * .05)
    rdb = np.where(wind_db > 0, rdb, -80)
    fh, fl = U(rng, 200, 500), U(rng, 3000, 8000)
    rus = lambda f: (f / fh) ** 2 / (1 + (f / fh) ** 2) / (1 + (f / fl) ** 2)
    if np.max(rdb) > -60:
        bed += shaped_noise(n, fs, rus, rng).astype(F32) * ctrl_interp(db2a(rdb), n, fs)
    info['rustle'] = dict(veg_db=veg)
    # rain: broadband hiss + drop impulses (resonant plinks, clicks, rare thuds)
    rain = reg_curve(regs, 'rain', U(rng, 10, 40))
    on = rain > .03
    if on.any():
        i0, i1 = np.nonzero(on)[0][[0, -1]]
        a0, a1 = int(i0 / CR * fs), min(n, int(i1 / CR * fs) + 1)
        m = a1 - a0
        inten = ctrl_interp(rain, m, fs, i0 / CR)
        hdb = U(rng, -16, -4) + 16 * np.log10(np.maximum(inten, 1e-4)) + 10
        fr1, fr2 = U(rng, 400, 1000), U(rng, 6000, 12000)
        hm = lambda f: ((f / fr1) ** 2 / (1 + (f / fr1) ** 2) / (1 + (f / fr2) ** 2) * .3 +
                        .05 / (1 + (f / 150) ** 2) * (f / (f + 10)))
        y = shaped_noise(m, fs, hm, rng) * db2a(hdb)
        rate = U(rng, 80, 600)
        k = rng.poisson(rate * m / fs * inten.mean())
        pos = rng.integers(0, m, k)
        keep = rng.random(k) < inten[pos] / (inten.max() + 1e-9)
        pos = pos[keep]
        amps = np.exp(.9 * rng.standard_normal(len(pos)))
        drops = np.zeros(m)
        groups = [(U(rng, 1500, 5000), U(rng, 60, 300)) for _ in range(5)] + [(None, None), (U(rng, 80, 200), 40)]
        gi = rng.choice(len(groups), len(pos), p=[.15] * 5 + [.2, .05])
        for g, (f0, bw) in enumerate(groups):
            imp = np.zeros(m)
            sel = gi == g
            imp[pos[sel]] = amps[sel]
            if f0 is None:
                drops += imp
            elif f0 < .45 * fs:
                r_ = np.exp(-np.pi * bw / fs)
                drops += ss.lfilter([1 - r_], [1, -2 * r_ * np.cos(TWO_PI * f0 / fs), r_ * r_], imp) * (3 if f0 < 300 else 1)
        drops *= rms(y) / (rms(drops) + 1e-30) * U(rng, .5, 2)
        bed[a0:a1] += (y + drops).astype(F32)
        info['rain'] = dict(t0=a0 / fs, t1=a1 / fs, drop_rate=rate)
    return bed, info


# ----------------------------------------------------------------------------
# scene assembly
# ----------------------------------------------------------------------------
def to_out(ev, fs, hab, rng, hpf):
    """Propagate (if d_km), reverberate, interpolate to fs and high-pass."""
    y, pre = propagate(ev['x'], ev['sr'], ev.get('d_km'), hab, rng, reverb=ev.get('reverb', True))
    y = upsample(y, ev['L'])
    y = ss.sosfilt(hpf, y)
    return y, pre * ev['L']


def schedule_conf(rng, kind, theme, regs):
    """List of (type, start_time) for confounder events."""
    th = THEMES.get(theme, {})
    evs = []
    for typ, (cnt, pin, prom) in BASE.items():
        boost = th.get('boost', {}).get(typ)
        if boost is not None:
            lam, pr = boost * np.exp(.2 * rng.standard_normal()), th['prom']
        elif rng.random() < (pin if kind == 'calls' else .6):
            lam, pr = cnt * np.exp(.4 * rng.standard_normal()), prom
        else:
            continue
        if typ == 'thunder' and boost is None and not any(r['rain'] > 0 for r in regs):
            lam = min(lam, 1.0)
        k = rng.poisson(lam)
        for _ in range(k):
            t = U(rng, -5, DUR - 2)
            if typ == 'thunder' and any(r['rain'] > 0 for r in regs) and rng.random() < .7:
                rr = [r for r in regs if r['rain'] > 0]
                r = rr[rng.integers(len(rr))]
                t = U(rng, r['t0'], max(r['t0'] + 1, r['t1'] - 5))
            evs.append((typ, t, U(rng, *pr)))
    if kind == 'calls' and len({e[0] for e in evs}) < 2:
        for typ in rng.choice(['bird', 'vehicle_pass', 'fly', 'cattle', 'dove', 'cicada'], 2, replace=False):
            for _ in range(rng.integers(1, 4)):
                evs.append((str(typ), U(rng, -5, DUR - 2), U(rng, *BASE[typ][2])))
    gens = []
    g = th.get('generator')
    if g is None and rng.random() < (.15 if kind == 'calls' else .3):
        g = (1, 1)
    if g is not None:
        for _ in range(rng.integers(g[0], g[1] + 1)):
            if rng.random() < .35:
                t_on, t_off = -10.0, DUR + 10.0
            else:
                t_on = U(rng, -60, DUR - 60)
                t_off = t_on + U(rng, 60, 400)
            gens.append((t_on, t_off, U(rng, *(th.get('prom', (5, 25))))))
    return evs, gens


def schedule_calls(rng):
    """Cox process: base rate + bouts, with quiet stretches; events expand to
    choruses / sequences / combinations."""
    t = np.arange(DUR) + .5
    lam = np.full(DUR, U(rng, .2, .8))
    for _ in range(rng.poisson(3) + 1):
        c, w = U(rng, 0, DUR), U(rng, 20, 90)
        lam += U(rng, 1, 4) * np.exp(-.5 * ((t - c) / w) ** 2)
    for _ in range(rng.integers(0, 3)):
        c = U(rng, 0, DUR)
        lam[np.abs(t - c) < U(rng, 30, 60)] = 0
    n_ev = rng.poisson(U(rng, 28, 44) / 1.45)
    cdf = np.cumsum(lam) / lam.sum()
    times = np.sort(np.interp(rng.random(n_ev), cdf, t))
    out = []
    for t0 in times:
        cls = rng.choice(['rumble', 'trumpet', 'roar', 'cry'], p=[.5, .18, .14, .18])
        s0 = float(np.clip(rng.normal(12.5, 8) + (3 if cls == 'trumpet' else 0), -6, 32))
        grp = []
        if cls == 'rumble':
            k = 1 if rng.random() > .3 else (2 if rng.random() < .7 else 3)
            grp = [('rumble', 0.0)] * k
        elif cls == 'trumpet':
            u = rng.random()
            grp = [('trumpet', 0.0)] + ([('trumpet', 'after')] if u < .15 else []) + \
                  ([('rumble', 'during')] if .15 <= u < .4 else [])
        elif cls == 'roar':
            grp = [('roar', 0.0)] if rng.random() < .6 else [('rumble', 0.0), ('roar', 'inside')]
        else:
            grp = [('cry', 0.0)] + [('cry', 'after')] * (int(rng.integers(1, 3)) if rng.random() < .35 else 0)
        out.append((t0, s0, grp))
    return out


def make_file(path_wav, fs, seed, kind, theme=None, clip=False, meta_dir=None):
    t_start = time.time()
    rng = np.random.default_rng(seed)
    n = DUR * fs
    hab = dict(c=U(rng, .5, 3), t60=U(rng, .15, .9), drr0=U(rng, 8, 16), rev_lp=U(rng, 1500, 5000))
    hp_fc, hp_ord = U(rng, 2, 30), int(rng.choice([1, 2]))
    hpf = ss.butter(hp_ord, hp_fc, 'highpass', fs=fs, output='sos')
    regs = plan_regimes(rng, theme)
    bed, bed_info = build_bed(rng, fs, regs, theme, hab)
    bed = ss.sosfilt(hpf, bed).astype(F32)
    bg = bed.copy()
    meta = dict(fs=fs, seed=seed, kind=kind, theme=theme, clip=clip, hab=hab,
                hpf=dict(fc=hp_fc, order=hp_ord), regimes=regs, bed=bed_info, conf=[])

    def place_conf(ev, t, prom):
        if ev is None:
            return
        y, off = to_out(ev, fs, hab, rng, hpf)
        s = int(round(t * fs)) - off
        a, b = max(s, 0), min(s + len(y), n)
        if b - a < fs * .1:
            return
        seg = y[a - s:b - s]
        lo, hi = band_edges(seg, fs, 30, 20)
        pb = band_power(bed[a:b], fs, lo, hi)
        pc = band_power(seg, fs, lo, hi)
        g = np.sqrt(10 ** (prom / 10) * pb / pc)
        add_seg(bg, (y * g).astype(F32), s)
        meta['conf'].append(dict(type=ev['kind'], t0=a / fs, t1=b / fs, lo=lo, hi=hi, prom_db=prom))

    evs, gens = schedule_conf(rng, kind, theme, regs)
    for t_on, t_off, prom in gens:
        ev = ev_generator(rng, fs, hab, t_on, t_off)
        place_conf(ev, ev['start'], prom)
    for typ, t, prom in sorted(evs, key=lambda e: e[1]):
        ev = CONF[typ](rng, fs, hab)
        if ev is not None:
            ev.setdefault('kind', typ)
        place_conf(ev, t, prom)
    bed = None  # frees the bed's memory: every confounder is placed
    # ---- recorder self-noise and mains hum, expressed in acoustic units via a
    # provisional gain G0 (from the call-free mix) so that the call SNR targets
    # are met against the *complete* background.
    if clip:
        G0 = db2a(U(rng, 2, 8)) / np.percentile(np.abs(bg), 99.5)
    else:
        G0 = db2a(U(rng, -30, -1)) / (np.max(np.abs(bg)) + 1e-30)
    self_db = U(rng, -96, -80)
    sn = shaped_noise(n, fs, lambda f: 1 + 3 * (20 / (f + 1)) ** .5, rng)
    bg += (sn * (db2a(self_db) / rms(sn) / G0)).astype(F32)
    del sn
    if rng.random() < .2:
        fm = float(rng.choice([50.0, 60.0]))
        tt = np.arange(n) / fs
        for k in range(4):
            if fm * (2 * k + 1) < .45 * fs:
                bg += (db2a(U(rng, -85, -65) - 6 * k) / G0 *
                       np.sin(TWO_PI * fm * (2 * k + 1) * tt + rng.random() * 6)).astype(F32)
        del tt
        meta['hum'] = fm
    t_bg = time.time() - t_start

    # ---- elephant calls
    calls = []
    ctrack = np.zeros(n, F32)
    if kind == 'calls':
        for t0, s0, grp in schedule_calls(rng):
            d0 = float(.06 if grp[0][0] == 'rumble' else .03) * 10 ** ((28 - s0 + rng.normal(0, 4)) / 20)
            prev = None
            for cls, when in grp:
                rc = CALLS[cls](rng, fs)
                dur = rc['n'] / rc['sr']
                if prev is None:
                    tb = t0
                elif when == 'after':
                    tb = prev[1] + U(rng, .3, 2.0)
                elif when == 'during':
                    tb = prev[0] + U(rng, 0, (prev[1] - prev[0]) + 1.0)
                elif when == 'inside':
                    tb = prev[0] + U(rng, .2, .7) * (prev[1] - prev[0])
                else:   # chorus member
                    tb = prev[0] + U(rng, .3, .8) * (prev[1] - prev[0])
                if tb < .5 or tb + dur > DUR - .5:
                    continue
                snr_t = float(np.clip(s0 + rng.normal(0, 3), -6, 32)) if prev is not None else s0
                dk = float(np.clip(d0 * (np.exp(rng.normal(0, .3)) if prev is not None else 1), .02,
                                   DMAX[cls]))
                rc['d_km'] = dk
                y, off = to_out(rc, fs, hab, rng, hpf)
                s = int(round(tb * fs))
                i0, i1 = off, off + rc['n'] * rc['L']
                lo, hi = band_edges(y[i0:i1], fs, 30, 0 if cls == 'rumble' else 20)
                if cls == 'rumble':
                    lo = max(1.0, min(lo, .9 * rc['f0min']))
                pc = band_power(y[i0:i1], fs, lo, hi)
                pb = band_power(bg[s:s + (i1 - i0)], fs, lo, hi)
                g = np.sqrt(10 ** (snr_t / 10) * pb / pc)
                y = (y * g).astype(F32)
                add_seg(ctrack, y, s - off)
                calls.append(dict(cls=cls, b=s / fs, e=(s + i1 - i0) / fs, lo=lo, hi=hi, snr_target=snr_t,
                                  d_km=dk, y=y, s=s - off, i0=i0, i1=i1,
                                  extra={k: rc[k] for k in ('f0min', 'f0max', 'who', 'contour') if k in rc}))
                prev = (tb, tb + dur)
    # ---- recorder: final gain (peak target re-applied to the full mix), DC,
    # clipping, dropouts
    mix = bg + ctrack
    if clip:
        G = G0 * np.percentile(np.abs(bg), 99.5) / np.percentile(np.abs(mix), 99.5)
    else:
        G = G0 * np.max(np.abs(bg)) / (np.max(np.abs(mix)) + 1e-30)
    del mix
    bgf = bg * F32(G)
    bg = None  # frees its memory: bgf holds it at the recorder's gain
    y = bgf + ctrack * G
    dc = U(rng, -.015, .015)
    y += F32(dc) + (ou(DUR * 2 + 1, 2, 30, .001, rng)[(np.arange(n) * 2 // fs)]).astype(F32)
    drop = []
    if rng.random() < (.2 if kind == 'calls' else .3):
        for _ in range(rng.integers(1, 4)):
            for _try in range(20):
                a = U(rng, 1, DUR - 5)
                b = a + U(rng, .2, 3)
                if all(b + 1 < c['b'] or a - 1 > c['e'] for c in calls):
                    drop.append((a, b))
                    y[int(a * fs):int(b * fs)] = 0
                    break
    q = np.clip(np.round(y * 32767.0), -32768, 32767).astype(np.int16)
    nclip = int(np.sum(np.abs(q.astype(np.int32)) >= 32767))
    # ---- measured SNR against the final background
    rows = []
    for c in sorted(calls, key=lambda c: c['b']):
        a = c['s'] + c['i0']
        b = c['s'] + c['i1']
        pc = band_power(c['y'][c['i0']:c['i1']] * G, fs, c['lo'], c['hi'])
        pb = band_power(bgf[a:b], fs, c['lo'], c['hi'])
        c['snr'] = 10 * np.log10(pc / pb)
        rows.append(c)
    wavfile.write(path_wav, fs, q)
    tab = os.path.splitext(path_wav)[0] + '.selections.txt'
    with open(tab, 'w') as fh:
        fh.write(HEADER + '\n')
        for i, c in enumerate(rows, 1):
            fh.write(f"{i}\tSpectrogram 1\t1\t{c['b']:.4f}\t{c['e']:.4f}\t{c['lo']:.1f}\t{c['hi']:.1f}\t"
                     f"{c['cls']}\t{c['snr']:.1f}\n")
    meta.update(gain_db=float(20 * np.log10(G)), self_noise_dbfs=self_db + float(20 * np.log10(G / G0)), dc=dc, dropouts=drop,
                clipped_samples=nclip, peak_dbfs=float(20 * np.log10(np.abs(q.astype(np.int32)).max() / 32768 + 1e-12)),
                t_background_s=t_bg, t_total_s=time.time() - t_start,
                calls=[dict(cls=c['cls'], begin=c['b'], end=c['e'], lo=c['lo'], hi=c['hi'], snr=float(c['snr']),
                            snr_target=c['snr_target'], d_km=c['d_km'], **c['extra']) for c in rows])
    if meta_dir:
        with open(os.path.join(meta_dir, os.path.basename(os.path.splitext(path_wav)[0]) + '.json'), 'w') as fh:
            json.dump(meta, fh, indent=1, default=lambda o: o.item() if hasattr(o, 'item') else str(o))
    return meta


RATES = [2000, 4000, 8000, 16000, 22050, 44100, 48000]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--set', choices=['calls', 'free'], required=True)
    ap.add_argument('--out', required=True)
    ap.add_argument('--seed', type=int, default=20250)
    ap.add_argument('--only', type=int, nargs='*', help='file indices to (re)generate')
    ap.add_argument('--meta', default=None, help='directory for per-file JSON metadata')
    args = ap.parse_args()
    os.makedirs(args.out, exist_ok=True)
    if args.meta:
        os.makedirs(args.meta, exist_ok=True)
    ss_ = np.random.SeedSequence([args.seed, 0 if args.set == 'calls' else 1])
    if args.set == 'calls':
        specs = [(r, None) for r in RATES for _ in range(2)]
    else:
        specs = [(RATES[i % len(RATES)], FREE_THEMES[i]) for i in range(12)]
    seeds = ss_.spawn(len(specs))
    crng = np.random.default_rng(ss_.spawn(1)[0])
    clipped = set(crng.choice(len(specs), 2, replace=False).tolist())
    for i, ((fs, theme), sq) in enumerate(zip(specs, seeds)):
        if args.only and i not in args.only:
            continue
        name = f"{args.set}_{i:02d}_{fs}Hz"
        seed = int(sq.generate_state(1)[0])
        m = make_file(os.path.join(args.out, name + '.wav'), fs, seed, args.set, theme,
                      clip=i in clipped, meta_dir=args.meta)
        cnt = {c: sum(1 for x in m['calls'] if x['cls'] == c) for c in CALLS}
        snr = [x['snr'] for x in m['calls']]
        print(f"{name}: theme={theme} clip={i in clipped} calls={cnt} "
              f"snr=[{min(snr) if snr else float('nan'):.1f},{max(snr) if snr else float('nan'):.1f}] "
              f"peak={m['peak_dbfs']:.1f}dBFS clipped={m['clipped_samples']} conf={len(m['conf'])} "
              f"t={m['t_total_s']:.1f}s", flush=True)


if __name__ == '__main__':
    main()
