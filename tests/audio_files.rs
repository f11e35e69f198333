//! Decoding recordings: every supported format gives the expected samples,
//! and every kind of broken file gives a specific error naming the file.

use std::io::Write;
use std::path::{Path, PathBuf};

use proptest::prelude::*;
use rumbled::audio::{AudioError, AudioFile, ChannelMode};
use tempfile::TempDir;

fn write_wav<S: hound::Sample + Copy>(path: &Path, spec: hound::WavSpec, samples: &[S]) {
    let mut w = hound::WavWriter::create(path, spec).unwrap();
    for &s in samples {
        w.write_sample(s).unwrap();
    }
    w.finalize().unwrap();
}

fn int_spec(channels: u16, bits: u16) -> hound::WavSpec {
    hound::WavSpec {
        channels,
        sample_rate: 16_000,
        bits_per_sample: bits,
        sample_format: hound::SampleFormat::Int,
    }
}

fn read_all(file: &mut AudioFile) -> Result<Vec<f32>, AudioError> {
    let mut out = Vec::new();
    // An odd batch size exercises reads that end mid-block.
    while file.read(&mut out, 333)? > 0 {}
    Ok(out)
}

fn open_err(path: &Path, mode: ChannelMode) -> AudioError {
    match AudioFile::open(path, mode) {
        Ok(_) => panic!("{} opened", path.display()),
        Err(e) => e,
    }
}

fn assert_names_file(err: &AudioError, path: &Path) {
    let name = path.file_name().unwrap().to_str().unwrap();
    assert!(err.to_string().contains(name), "{err} does not name {name}");
}

/// A WAV header written by hand, for encodings hound will not write.
fn raw_wav(
    tag: u16,
    channels: u16,
    rate: u32,
    bits: u16,
    extensible: Option<(u16, u16)>,
    data: &[u8],
) -> Vec<u8> {
    let block_align = channels * bits / 8;
    let mut fmt = Vec::new();
    fmt.extend(tag.to_le_bytes());
    fmt.extend(channels.to_le_bytes());
    fmt.extend(rate.to_le_bytes());
    fmt.extend((rate * u32::from(block_align)).to_le_bytes());
    fmt.extend(block_align.to_le_bytes());
    fmt.extend(bits.to_le_bytes());
    if let Some((valid_bits, sub_tag)) = extensible {
        fmt.extend(22u16.to_le_bytes());
        fmt.extend(valid_bits.to_le_bytes());
        fmt.extend(0u32.to_le_bytes()); // channel mask: unspecified
        fmt.extend(sub_tag.to_le_bytes());
        // The rest of KSDATAFORMAT_SUBTYPE_PCM / _IEEE_FLOAT.
        fmt.extend([
            0x00, 0x00, 0x00, 0x00, 0x10, 0x00, 0x80, 0x00, 0x00, 0xAA, 0x00, 0x38, 0x9B, 0x71,
        ]);
    }
    let mut out = Vec::new();
    out.extend(b"RIFF");
    out.extend((4 + 8 + fmt.len() as u32 + 8 + data.len() as u32).to_le_bytes());
    out.extend(b"WAVEfmt ");
    out.extend((fmt.len() as u32).to_le_bytes());
    out.extend(fmt);
    out.extend(b"data");
    out.extend((data.len() as u32).to_le_bytes());
    out.extend(data);
    out
}

#[test]
fn integer_wavs_decode_to_full_scale() {
    let dir = TempDir::new().unwrap();
    for bits in [8u16, 16, 24, 32] {
        let full = 1i64 << (bits - 1);
        let ints: Vec<i32> = [0, full / 2, -full / 2, full - 1, -full, 1]
            .iter()
            .map(|&v| v as i32)
            .collect();
        let path = dir.path().join(format!("int{bits}.wav"));
        write_wav(&path, int_spec(1, bits), &ints);
        let mut f = AudioFile::open(&path, ChannelMode::Mix).unwrap();
        assert_eq!(
            (f.sample_rate(), f.channels(), f.total_frames()),
            (16_000, 1, Some(6))
        );
        let got = read_all(&mut f).unwrap();
        let want: Vec<f32> = ints
            .iter()
            .map(|&v| (f64::from(v) / full as f64) as f32)
            .collect();
        assert_eq!(got, want, "{bits}-bit");
    }
}

#[test]
fn float_wav_decodes_unchanged() {
    let dir = TempDir::new().unwrap();
    let path = dir.path().join("float.wav");
    let xs = [0.0f32, 0.5, -0.25, 1.0, -1.0, 1e-7];
    let spec = hound::WavSpec {
        sample_format: hound::SampleFormat::Float,
        ..int_spec(1, 32)
    };
    write_wav(&path, spec, &xs);
    let mut f = AudioFile::open(&path, ChannelMode::Mix).unwrap();
    assert_eq!(read_all(&mut f).unwrap(), xs);
}

#[test]
fn double_wavs_decode_as_written() {
    let dir = TempDir::new().unwrap();
    let xs = [0.0f64, 0.5, -0.25, 1.0, -1.0, 1e-7];
    let data: Vec<u8> = xs.iter().flat_map(|x| x.to_le_bytes()).collect();
    for (name, extensible) in [("double.wav", None), ("ext-double.wav", Some((64, 3)))] {
        let path = dir.path().join(name);
        let tag = if extensible.is_some() { 0xFFFE } else { 3 };
        std::fs::write(&path, raw_wav(tag, 1, 16_000, 64, extensible, &data)).unwrap();
        let mut f = AudioFile::open(&path, ChannelMode::Mix).unwrap();
        let want: Vec<f32> = xs.iter().map(|&x| x as f32).collect();
        assert_eq!(read_all(&mut f).unwrap(), want, "{name}");
    }
}

#[test]
fn g711_wavs_expand_per_the_standard() {
    let dir = TempDir::new().unwrap();
    // Codes and their G.711 values: silence, the smallest steps, full scale
    // of both signs.
    let mu = [
        (0xFFu8, 0i16),
        (0x7F, 0),
        (0xFE, 8),
        (0x7E, -8),
        (0x80, 32_124),
        (0x00, -32_124),
    ];
    let a = [
        (0xD5u8, 8i16),
        (0x55, -8),
        (0xAA, 32_256),
        (0x2A, -32_256),
        (0xC5, 264),
    ];
    for (name, tag, table) in [("mulaw.wav", 7, &mu[..]), ("alaw.wav", 6, &a[..])] {
        let codes: Vec<u8> = table.iter().map(|(c, _)| *c).collect();
        let path = dir.path().join(name);
        std::fs::write(&path, raw_wav(tag, 1, 8_000, 8, None, &codes)).unwrap();
        let mut f = AudioFile::open(&path, ChannelMode::Mix).unwrap();
        let want: Vec<f32> = table
            .iter()
            .map(|(_, v)| f32::from(*v) / 32_768.0)
            .collect();
        assert_eq!(read_all(&mut f).unwrap(), want, "{name}");
    }
}

#[test]
fn extensible_wavs_decode() {
    let dir = TempDir::new().unwrap();
    // 24 valid bits in 32-bit containers, left-justified as the spec says:
    // stereo frames (0.5, -0.25) and (-1, 2^-23).
    let mut data = Vec::new();
    for v in [0x40_0000i32, -0x20_0000, -0x80_0000, 1] {
        data.extend((v << 8).to_le_bytes());
    }
    let path = dir.path().join("ext24in32.wav");
    std::fs::write(&path, raw_wav(0xFFFE, 2, 48_000, 32, Some((24, 1)), &data)).unwrap();
    let mut f = AudioFile::open(&path, ChannelMode::Pick(0)).unwrap();
    assert_eq!((f.sample_rate(), f.channels()), (48_000, 2));
    assert_eq!(read_all(&mut f).unwrap(), [0.5, -1.0]);
    let mut f = AudioFile::open(&path, ChannelMode::Pick(1)).unwrap();
    assert_eq!(read_all(&mut f).unwrap(), [-0.25, 2f32.powi(-23)]);

    // Plain 16-bit PCM behind an extensible header.
    let data: Vec<u8> = [16_384i16, -32_768]
        .iter()
        .flat_map(|v| v.to_le_bytes())
        .collect();
    let path = dir.path().join("ext16.wav");
    std::fs::write(&path, raw_wav(0xFFFE, 1, 8_000, 16, Some((16, 1)), &data)).unwrap();
    let mut f = AudioFile::open(&path, ChannelMode::Mix).unwrap();
    assert_eq!(read_all(&mut f).unwrap(), [0.5, -1.0]);

    // IEEE float behind an extensible header.
    let data: Vec<u8> = [0.125f32, -0.75]
        .iter()
        .flat_map(|v| v.to_le_bytes())
        .collect();
    let path = dir.path().join("extfloat.wav");
    std::fs::write(&path, raw_wav(0xFFFE, 1, 8_000, 32, Some((32, 3)), &data)).unwrap();
    let mut f = AudioFile::open(&path, ChannelMode::Mix).unwrap();
    assert_eq!(read_all(&mut f).unwrap(), [0.125, -0.75]);
}

#[test]
fn mix_averages_and_pick_selects() {
    let dir = TempDir::new().unwrap();
    let path = dir.path().join("stereo.wav");
    // Left ramps up, right is constant.
    let frames: Vec<i16> = (0..1_000i16).flat_map(|i| [i * 16, -8_192]).collect();
    write_wav(&path, int_spec(2, 16), &frames);

    let mut f = AudioFile::open(&path, ChannelMode::Mix).unwrap();
    assert_eq!(f.path(), path);
    let mix = read_all(&mut f).unwrap();
    let mut f = AudioFile::open(&path, ChannelMode::Pick(0)).unwrap();
    let left = read_all(&mut f).unwrap();
    let mut f = AudioFile::open(&path, ChannelMode::Pick(1)).unwrap();
    let right = read_all(&mut f).unwrap();
    assert_eq!(mix.len(), 1_000);
    for i in 0..1_000 {
        assert_eq!(left[i], f32::from(i as i16 * 16) / 32_768.0);
        assert_eq!(right[i], -0.25);
        assert_eq!(mix[i], (left[i] + right[i]) / 2.0);
    }

    let err = open_err(&path, ChannelMode::Pick(2));
    assert!(
        matches!(
            err,
            AudioError::ChannelOutOfRange {
                pick: 2,
                channels: 2,
                ..
            }
        ),
        "{err:?}"
    );
    assert_names_file(&err, &path);
}

#[test]
fn read_respects_max_frames_and_signals_end() {
    let dir = TempDir::new().unwrap();
    let path = dir.path().join("short.wav");
    write_wav(&path, int_spec(1, 16), &[1i16; 10]);
    let mut f = AudioFile::open(&path, ChannelMode::Mix).unwrap();
    let mut out = vec![9.0];
    assert_eq!(f.read(&mut out, 4).unwrap(), 4);
    assert_eq!(f.read(&mut out, 4).unwrap(), 4);
    assert_eq!(f.read(&mut out, 4).unwrap(), 2);
    assert_eq!(f.read(&mut out, 4).unwrap(), 0);
    assert_eq!(f.read(&mut out, 4).unwrap(), 0);
    // Appends, never overwrites.
    assert_eq!(out.len(), 11);
    assert_eq!(out[0], 9.0);
}

/// A minimal FLAC encoder (verbatim subframes), so the tests need no tool.
/// Not `rumbled::evidence::clip::encode`: that writes only mono 16-bit
/// predicted frames, while these tests need stereo and 24-bit streams, any
/// block size, and frames whose byte offsets are known for cutting them.
mod flac {
    fn crc8(data: &[u8]) -> u8 {
        data.iter().fold(0u8, |mut crc, &b| {
            crc ^= b;
            for _ in 0..8 {
                crc = if crc & 0x80 != 0 {
                    (crc << 1) ^ 0x07
                } else {
                    crc << 1
                };
            }
            crc
        })
    }

    fn crc16(data: &[u8]) -> u16 {
        data.iter().fold(0u16, |mut crc, &b| {
            crc ^= u16::from(b) << 8;
            for _ in 0..8 {
                crc = if crc & 0x8000 != 0 {
                    (crc << 1) ^ 0x8005
                } else {
                    crc << 1
                };
            }
            crc
        })
    }

    /// `frames[i][c]`: sample of channel c at time i; bits is 16 or 24.
    pub fn encode(rate: u32, bits: u32, frames: &[Vec<i32>], block: usize) -> Vec<u8> {
        let channels = frames[0].len() as u32;
        let mut out = b"fLaC".to_vec();
        out.extend([0x80, 0, 0, 34]); // last metadata block, STREAMINFO, 34 bytes
        out.extend((block as u16).to_be_bytes()); // min block size
        out.extend((block as u16).to_be_bytes()); // max block size
        out.extend([0; 6]); // frame sizes unknown
        let packed: u64 = (u64::from(rate) << 44)
            | (u64::from(channels - 1) << 41)
            | (u64::from(bits - 1) << 36)
            | frames.len() as u64;
        out.extend(packed.to_be_bytes());
        out.extend([0; 16]); // MD5 unknown
        let size_code = match bits {
            16 => 0b100,
            24 => 0b110,
            _ => panic!("test encoder handles 16 and 24 bits"),
        };
        for (n, chunk) in frames.chunks(block).enumerate() {
            assert!(n < 128, "frame numbers are single-byte here");
            let mut f = vec![
                0xFF,
                0xF8,
                0x70,
                (((channels - 1) << 4) | (size_code << 1)) as u8,
                n as u8,
            ];
            f.extend(((chunk.len() - 1) as u16).to_be_bytes());
            f.push(crc8(&f));
            for c in 0..channels as usize {
                f.push(0x02); // VERBATIM, no wasted bits
                for s in chunk {
                    f.extend(&s[c].to_be_bytes()[(4 - bits as usize / 8)..]);
                }
            }
            let crc = crc16(&f);
            f.extend(crc.to_be_bytes());
            out.extend(f);
        }
        out
    }
}

#[test]
fn flac_decodes() {
    let dir = TempDir::new().unwrap();
    let frames: Vec<Vec<i32>> = (0..2_500)
        .map(|i| vec![i * 13 - 16_000, -(i * 7)])
        .collect();
    let path = dir.path().join("stereo16.flac");
    std::fs::write(&path, flac::encode(44_100, 16, &frames, 1_024)).unwrap();
    let mut f = AudioFile::open(&path, ChannelMode::Pick(0)).unwrap();
    assert_eq!(
        (f.sample_rate(), f.channels(), f.total_frames()),
        (44_100, 2, Some(2_500))
    );
    let left = read_all(&mut f).unwrap();
    let want: Vec<f32> = frames.iter().map(|s| s[0] as f32 / 32_768.0).collect();
    assert_eq!(left, want);
    let mut f = AudioFile::open(&path, ChannelMode::Mix).unwrap();
    let mix = read_all(&mut f).unwrap();
    let want: Vec<f32> = frames
        .iter()
        .map(|s| (s[0] as f32 / 32_768.0 + s[1] as f32 / 32_768.0) / 2.0)
        .collect();
    assert_eq!(mix, want);

    // Recognised by its magic bytes, whatever the name says.
    let frames: Vec<Vec<i32>> = [0x40_0000, -0x80_0000, 0x7F_FFFF]
        .iter()
        .map(|&v| vec![v])
        .collect();
    let path = dir.path().join("mono24.audio");
    std::fs::write(&path, flac::encode(8_000, 24, &frames, 16)).unwrap();
    let mut f = AudioFile::open(&path, ChannelMode::Mix).unwrap();
    assert_eq!(
        read_all(&mut f).unwrap(),
        [0.5, -1.0, 0x7F_FFFF as f32 / 8_388_608.0]
    );
}

#[test]
fn missing_file() {
    let dir = TempDir::new().unwrap();
    let path = dir.path().join("nowhere.wav");
    let err = open_err(&path, ChannelMode::Mix);
    assert!(matches!(err, AudioError::NotFound { .. }), "{err:?}");
    assert_names_file(&err, &path);
}

#[test]
fn empty_files() {
    let dir = TempDir::new().unwrap();
    let path = dir.path().join("zero-bytes.wav");
    std::fs::write(&path, b"").unwrap();
    let err = open_err(&path, ChannelMode::Mix);
    assert!(matches!(err, AudioError::Empty { .. }), "{err:?}");
    assert_names_file(&err, &path);

    let path = dir.path().join("no-samples.wav");
    write_wav::<i16>(&path, int_spec(1, 16), &[]);
    let err = open_err(&path, ChannelMode::Mix);
    assert!(matches!(err, AudioError::Empty { .. }), "{err:?}");
    assert_names_file(&err, &path);
}

#[test]
fn not_audio() {
    let dir = TempDir::new().unwrap();
    for (name, bytes) in [
        ("notes.wav", &b"hello, this is a text file"[..]),
        ("song.flac", b"ID3\x04\x00\x00\x00\x00"),
        ("x.wav", b"RI"),
    ] {
        let path = dir.path().join(name);
        std::fs::write(&path, bytes).unwrap();
        let err = open_err(&path, ChannelMode::Mix);
        assert!(
            matches!(err, AudioError::NotAudio { .. }),
            "{name}: {err:?}"
        );
        assert_names_file(&err, &path);
    }
}

/// ADPCM's fmt fields as encoders write them: 256-byte blocks, and a byte
/// rate that is not the sample rate times the block size.
fn adpcm_blocks(mut wav: Vec<u8>) -> Vec<u8> {
    wav[28..32].copy_from_slice(&8_110u32.to_le_bytes());
    wav[32..34].copy_from_slice(&256u16.to_le_bytes());
    wav
}

#[test]
fn unsupported_encodings() {
    let dir = TempDir::new().unwrap();
    let cases = [
        (
            "half.wav",
            raw_wav(3, 1, 16_000, 16, None, &[0; 80]),
            "16-bit float",
        ),
        (
            "ext-long.wav",
            raw_wav(0xFFFE, 1, 16_000, 64, Some((64, 1)), &[0; 80]),
            "64-bit integer",
        ),
        (
            "mp3-in-wav.wav",
            raw_wav(0x55, 1, 16_000, 16, None, &[0; 80]),
            "MPEG audio",
        ),
        (
            "adpcm.wav",
            raw_wav(2, 1, 16_000, 4, None, &[0; 80]),
            "ADPCM",
        ),
        (
            "ima-adpcm.wav",
            adpcm_blocks(raw_wav(0x11, 1, 16_000, 4, None, &[0; 512])),
            "IMA ADPCM",
        ),
    ];
    for (name, bytes, what) in cases {
        let path = dir.path().join(name);
        std::fs::write(&path, bytes).unwrap();
        let err = open_err(&path, ChannelMode::Mix);
        assert!(
            matches!(err, AudioError::UnsupportedEncoding { .. }),
            "{name}: {err:?}"
        );
        assert_names_file(&err, &path);
        assert!(err.to_string().contains(what), "{err}");
    }
}

#[test]
fn implausible_rates_and_channel_counts() {
    let dir = TempDir::new().unwrap();
    let path = dir.path().join("slow.wav");
    write_wav(
        &path,
        hound::WavSpec {
            sample_rate: 500,
            ..int_spec(1, 16)
        },
        &[0i16; 10],
    );
    let err = open_err(&path, ChannelMode::Mix);
    assert!(
        matches!(err, AudioError::UnsupportedSampleRate { rate: 500, .. }),
        "{err:?}"
    );
    assert_names_file(&err, &path);

    let path = dir.path().join("many.wav");
    std::fs::write(&path, raw_wav(1, 100, 16_000, 16, None, &[0; 400])).unwrap();
    let err = open_err(&path, ChannelMode::Mix);
    assert!(
        matches!(err, AudioError::BadChannelCount { channels: 100, .. }),
        "{err:?}"
    );
    assert_names_file(&err, &path);

    // The limit itself is fine.
    let path = dir.path().join("array.wav");
    std::fs::write(&path, raw_wav(1, 64, 384_000, 16, None, &[0; 128 * 3])).unwrap();
    let mut f = AudioFile::open(&path, ChannelMode::Pick(63)).unwrap();
    assert_eq!(read_all(&mut f).unwrap(), [0.0; 3]);
}

#[test]
fn truncated_wav_delivers_what_is_there_then_says_where() {
    let dir = TempDir::new().unwrap();
    let path = dir.path().join("battery-died.wav");
    let frames: Vec<i16> = (0..1_000i16).flat_map(|i| [i, -i]).collect();
    write_wav(&path, int_spec(2, 16), &frames);
    // Cut 2999 bytes into the 4000-byte data chunk: 749 whole frames survive.
    let len = std::fs::metadata(&path).unwrap().len();
    std::fs::OpenOptions::new()
        .write(true)
        .open(&path)
        .unwrap()
        .set_len(len - 1_001)
        .unwrap();

    let mut f = AudioFile::open(&path, ChannelMode::Pick(0)).unwrap();
    let mut out = Vec::new();
    let err = loop {
        match f.read(&mut out, 100) {
            Ok(0) => panic!("truncation not reported"),
            Ok(_) => {}
            Err(e) => break e,
        }
    };
    assert_eq!(out.len(), 749);
    assert_eq!(out[748], 748.0 / 32_768.0);
    assert!(
        matches!(err, AudioError::Truncated { frame: 749, .. }),
        "{err:?}"
    );
    assert_names_file(&err, &path);
    assert!(err.to_string().contains("749"), "{err}");
    // After the error the file reads as ended.
    assert_eq!(f.read(&mut out, 100).unwrap(), 0);
}

#[test]
fn truncated_and_corrupt_flac() {
    let dir = TempDir::new().unwrap();
    let frames: Vec<Vec<i32>> = (0..3_000).map(|i| vec![i]).collect();
    let bytes = flac::encode(16_000, 16, &frames, 1_024);

    // Cut in the middle of the second FLAC frame.
    let path = dir.path().join("cut.flac");
    let frame_bytes = 8 + 1 + 2 * 1_024 + 2;
    std::fs::write(&path, &bytes[..42 + frame_bytes + 500]).unwrap();
    let mut f = AudioFile::open(&path, ChannelMode::Mix).unwrap();
    let mut out = Vec::new();
    let err = read_all_err(&mut f, &mut out);
    assert_eq!(out.len(), 1_024);
    assert!(
        matches!(err, AudioError::Truncated { frame: 1_024, .. }),
        "{err:?}"
    );
    assert_names_file(&err, &path);

    // Cut exactly between FLAC frames: only the header's count notices.
    let path = dir.path().join("cut-clean.flac");
    std::fs::write(&path, &bytes[..42 + 2 * frame_bytes]).unwrap();
    let mut f = AudioFile::open(&path, ChannelMode::Mix).unwrap();
    let mut out = Vec::new();
    let err = read_all_err(&mut f, &mut out);
    assert_eq!(out.len(), 2_048);
    assert!(
        matches!(err, AudioError::Truncated { frame: 2_048, .. }),
        "{err:?}"
    );

    // A flipped bit in the audio fails the frame CRC.
    let path = dir.path().join("bitrot.flac");
    let mut rotten = bytes.clone();
    rotten[42 + frame_bytes + 100] ^= 0x10;
    std::fs::write(&path, rotten).unwrap();
    let mut f = AudioFile::open(&path, ChannelMode::Mix).unwrap();
    let mut out = Vec::new();
    let err = read_all_err(&mut f, &mut out);
    assert_eq!(out.len(), 1_024);
    assert!(matches!(err, AudioError::Corrupt { .. }), "{err:?}");
    assert_names_file(&err, &path);
}

fn read_all_err(f: &mut AudioFile, out: &mut Vec<f32>) -> AudioError {
    loop {
        match f.read(out, 500) {
            Ok(0) => panic!("{}: error not reported", f.path().display()),
            Ok(_) => {}
            Err(e) => return e,
        }
    }
}

#[test]
fn nan_and_inf_are_corrupt_data() {
    let dir = TempDir::new().unwrap();
    let spec = hound::WavSpec {
        sample_format: hound::SampleFormat::Float,
        ..int_spec(2, 32)
    };
    for (name, bad) in [("nan.wav", f32::NAN), ("inf.wav", f32::NEG_INFINITY)] {
        let path = dir.path().join(name);
        write_wav(&path, spec, &[0.1f32, 0.2, 0.3, 0.4, 0.5, bad, 0.7, 0.8]);
        let mut f = AudioFile::open(&path, ChannelMode::Pick(0)).unwrap();
        let mut out = Vec::new();
        let err = read_all_err(&mut f, &mut out);
        assert_eq!(out, [0.1, 0.3]);
        assert!(
            matches!(
                err,
                AudioError::NonFinite {
                    frame: 2,
                    channel: 1,
                    ..
                }
            ),
            "{err:?}"
        );
        assert_names_file(&err, &path);
    }
}

#[test]
fn malformed_headers_are_corrupt() {
    let dir = TempDir::new().unwrap();
    let mut header_only = raw_wav(1, 1, 16_000, 16, None, &[0; 10]);
    header_only.truncate(30); // inside the fmt chunk
    let mut inconsistent = raw_wav(1, 1, 16_000, 16, None, &[0; 10]);
    inconsistent[28] ^= 0xFF; // byte rate no longer matches
    // 3-byte frames cannot hold 2 channels.
    let split_frame = raw_wav(1, 2, 16_000, 12, None, &[0; 12]);
    // 11 bytes of data: not a whole number of 2-byte frames.
    let ragged = raw_wav(1, 1, 16_000, 16, None, &[0; 11]);
    let mut data_first = raw_wav(1, 1, 16_000, 16, None, &[0; 10]);
    data_first[12..16].copy_from_slice(b"data");
    for (name, bytes) in [
        ("header-cut.wav", header_only),
        ("inconsistent.wav", inconsistent),
        ("split-frame.wav", split_frame),
        ("ragged.wav", ragged),
        ("data-first.wav", data_first),
    ] {
        let path = dir.path().join(name);
        std::fs::write(&path, bytes).unwrap();
        let err = open_err(&path, ChannelMode::Mix);
        assert!(matches!(err, AudioError::Corrupt { .. }), "{name}: {err:?}");
        assert_names_file(&err, &path);
    }
}

fn fuzz_path(dir: &TempDir, bytes: &[u8]) -> PathBuf {
    let path = dir.path().join("fuzz.bin");
    let mut f = std::fs::File::create(&path).unwrap();
    f.write_all(bytes).unwrap();
    path
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]
    /// Whatever the bytes, opening and reading returns, never panics.
    #[test]
    fn arbitrary_bytes_never_panic(
        kind in 0usize..3,
        flip in proptest::collection::vec((0usize..4_096, any::<u8>()), 0..8),
        cut in 0usize..5_000,
    ) {
        let base = match kind {
            0 => raw_wav(1, 2, 16_000, 16, None, &[7; 400]),
            1 => raw_wav(0xFFFE, 1, 48_000, 32, Some((24, 1)), &[9; 400]),
            _ => flac::encode(16_000, 16, &(0..300).map(|i| vec![i]).collect::<Vec<_>>(), 128),
        };
        let mut bytes = base;
        for (at, v) in flip {
            let n = bytes.len();
            bytes[at % n] = v;
        }
        bytes.truncate(cut);
        let dir = TempDir::new().unwrap();
        let path = fuzz_path(&dir, &bytes);
        if let Ok(mut f) = AudioFile::open(&path, ChannelMode::Mix) {
            let mut out = Vec::new();
            for _ in 0..10_000 {
                match f.read(&mut out, 64) {
                    Ok(0) | Err(_) => break,
                    Ok(_) => {}
                }
            }
        }
    }
}

/// `raw_wav` with the RIFF and data sizes overwritten, as a recorder that
/// stopped before finishing the header leaves them.
fn unfinished_wav(size: u32, data: &[u8]) -> Vec<u8> {
    let mut bytes = raw_wav(1, 2, 16_000, 16, None, data);
    bytes[4..8].copy_from_slice(&size.to_le_bytes());
    bytes[40..44].copy_from_slice(&size.to_le_bytes());
    bytes
}

#[test]
fn unfinished_headers_read_to_the_end_of_the_file_and_say_so() {
    let dir = TempDir::new().unwrap();
    let frames: Vec<i16> = (0..500i16).flat_map(|i| [i, -i]).collect();
    let mut data: Vec<u8> = frames.iter().flat_map(|s| s.to_le_bytes()).collect();
    // Half a frame at the end: the recorder died mid-write.
    data.extend([1, 2]);
    for (name, size) in [("size-zero.wav", 0), ("placeholder.wav", u32::MAX)] {
        let path = dir.path().join(name);
        std::fs::write(&path, unfinished_wav(size, &data)).unwrap();
        let mut f = AudioFile::open(&path, ChannelMode::Pick(1)).unwrap();
        assert_eq!(f.total_frames(), Some(500), "{name}");
        let note = f.repaired_header().expect("a note on the repair");
        assert!(
            note.contains("never written") && note.contains("500 sample frames"),
            "{name}: {note}"
        );
        let out = read_all(&mut f).unwrap();
        assert_eq!(out.len(), 500, "{name}");
        assert_eq!(out[499], -499.0 / 32_768.0, "{name}");
    }
    // Nothing after an unfinished header: still an empty recording.
    let path = dir.path().join("nothing-recorded.wav");
    std::fs::write(&path, unfinished_wav(u32::MAX, &[])).unwrap();
    let err = open_err(&path, ChannelMode::Mix);
    assert!(matches!(err, AudioError::Empty { .. }), "{err:?}");
    // A finished header needs no note.
    let path = dir.path().join("finished.wav");
    write_wav(&path, int_spec(1, 16), &[1i16, 2, 3]);
    assert_eq!(
        AudioFile::open(&path, ChannelMode::Mix)
            .unwrap()
            .repaired_header(),
        None
    );
}

#[test]
fn chunks_around_fmt_and_data_are_skipped() {
    let dir = TempDir::new().unwrap();
    let samples: Vec<u8> = [100i16, -200, 300]
        .iter()
        .flat_map(|s| s.to_le_bytes())
        .collect();
    let plain = raw_wav(1, 1, 16_000, 16, None, &samples);
    // A fmt chunk longer than its 16 fields (18 bytes, cbSize 0), then an
    // odd-sized LIST chunk with its pad byte, as recorders write metadata.
    let mut bytes = plain[..12].to_vec();
    bytes.extend(b"fmt ");
    bytes.extend(18u32.to_le_bytes());
    bytes.extend(&plain[20..36]);
    bytes.extend(0u16.to_le_bytes());
    bytes.extend(b"LIST");
    bytes.extend(5u32.to_le_bytes());
    bytes.extend(b"INFO!\0");
    bytes.extend(&plain[36..]);
    let path = dir.path().join("with-metadata.wav");
    std::fs::write(&path, bytes).unwrap();
    let mut f = AudioFile::open(&path, ChannelMode::Mix).unwrap();
    let out = read_all(&mut f).unwrap();
    assert_eq!(out, [100.0 / 32_768.0, -200.0 / 32_768.0, 300.0 / 32_768.0]);
    assert_eq!(f.repaired_header(), None);
}

/// An RF64 (or BW64) file as recorders write them past 4 GiB: the 32-bit
/// sizes hold 0xFFFFFFFF and the real ones sit in a `ds64` chunk.
fn rf64(magic: &[u8; 4], ds64_data_size: u64, samples: &[i16]) -> Vec<u8> {
    let data: Vec<u8> = samples.iter().flat_map(|s| s.to_le_bytes()).collect();
    let plain = raw_wav(1, 1, 16_000, 16, None, &data);
    let mut out = magic.to_vec();
    out.extend(u32::MAX.to_le_bytes());
    out.extend(b"WAVEds64");
    out.extend(28u32.to_le_bytes());
    out.extend(0u64.to_le_bytes()); // RIFF size: not checked
    out.extend(ds64_data_size.to_le_bytes());
    out.extend((samples.len() as u64).to_le_bytes());
    out.extend(0u32.to_le_bytes()); // no table
    out.extend(&plain[12..40]); // fmt chunk, "data"
    out.extend(u32::MAX.to_le_bytes());
    out.extend(data);
    out
}

#[test]
fn rf64_and_bw64_take_the_data_size_from_ds64() {
    let dir = TempDir::new().unwrap();
    let samples = [1000i16, -2000, 3000, -4000];
    let want: Vec<f32> = samples.iter().map(|&s| f32::from(s) / 32_768.0).collect();
    for magic in [b"RF64", b"BW64"] {
        let name = format!("{}.wav", String::from_utf8_lossy(magic));
        let path = dir.path().join(&name);
        // ds64 says 3 samples: the fourth is after the data chunk.
        std::fs::write(&path, rf64(magic, 6, &samples)).unwrap();
        let mut f = AudioFile::open(&path, ChannelMode::Mix).unwrap();
        assert_eq!(f.total_frames(), Some(3), "{name}");
        assert_eq!(f.repaired_header(), None, "{name}");
        assert_eq!(read_all(&mut f).unwrap(), want[..3], "{name}");
    }
    // A ds64 size never filled in: read to the end, with a note.
    let path = dir.path().join("unfinished-rf64.wav");
    std::fs::write(&path, rf64(b"RF64", 0, &samples)).unwrap();
    let mut f = AudioFile::open(&path, ChannelMode::Mix).unwrap();
    assert!(f.repaired_header().is_some());
    assert_eq!(read_all(&mut f).unwrap(), want);
}
