//! Recorded audio files (WAV, FLAC) as a stream of mono f32 samples.
//!
//! Field recordings arrive in whatever format the recorder wrote, sometimes
//! cut short by a dead battery. Decoding is incremental (files can be hours
//! long), every error names the file and says what to do, and a truncated
//! file still yields every complete sample before the damage.

use std::fs::File;
use std::io::{self, BufReader, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use super::AudioError;

/// Lowest accepted sample rate; below this the header is surely corrupt.
const MIN_RATE: u32 = 1_000;
/// Highest accepted sample rate (the fastest ultrasonic recorders).
const MAX_RATE: u32 = 384_000;
/// More channels than any recorder array we know of: a corrupt header.
const MAX_CHANNELS: u32 = 64;

/// How multi-channel recordings become the single channel the model sees.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChannelMode {
    /// Mean of all channels.
    Mix,
    /// One channel, 0-based (e.g. the microphone facing the forest).
    Pick(usize),
}

/// An open recording, decoded on demand into mono f32 samples.
pub struct AudioFile {
    path: PathBuf,
    sample_rate: u32,
    channels: u16,
    total_frames: Option<u64>,
    mode: ChannelMode,
    decoder: Decoder,
    /// Per-channel frames delivered so far: the position errors report.
    frames_read: u64,
    /// An error met after some samples were decoded; reported on the next
    /// call so those samples are delivered first.
    deferred: Option<AudioError>,
    finished: bool,
    /// One interleaved frame, reused to avoid per-call allocation.
    frame: Vec<f32>,
    /// What was wrong with the header and how it was read anyway.
    repaired: Option<String>,
}

enum Decoder {
    /// The header is walked and the data chunk decoded here, so that
    /// 24-in-32-bit containers are read left-justified, as the WAVE spec
    /// says, truncation is exact, and a header the recorder never finished
    /// still leads to its samples.
    Wav {
        data: BufReader<File>,
        encoding: PcmEncoding,
        bytes_left: u64,
        /// One interleaved frame of raw bytes.
        raw: Vec<u8>,
    },
    Flac {
        reader: Box<claxon::FlacReader<File>>,
        scale: f32,
        /// Buffer claxon decodes blocks into, recycled between blocks.
        block_buf: Vec<i32>,
        /// Current block, interleaved, and how many frames of it are used.
        block: Vec<i32>,
        block_frames: usize,
        block_pos: usize,
    },
}

/// Sample containers of the WAV data chunk. Integer samples are scaled by
/// their container's full scale, which is right whatever the number of valid
/// bits, because valid bits are the most significant ones.
#[derive(Debug, Clone, Copy)]
enum PcmEncoding {
    U8,
    I16,
    I24,
    I32,
    F32,
    /// What numpy/scipy and MATLAB write for float64 arrays.
    F64,
    /// G.711 companded 8-bit (telephony and some loggers).
    MuLaw,
    ALaw,
}

impl PcmEncoding {
    fn container_bytes(self) -> usize {
        match self {
            Self::U8 | Self::MuLaw | Self::ALaw => 1,
            Self::I16 => 2,
            Self::I24 => 3,
            Self::I32 | Self::F32 => 4,
            Self::F64 => 8,
        }
    }

    fn decode(self, b: &[u8]) -> f32 {
        const I32_FULL_SCALE: f32 = 2_147_483_648.0;
        match self {
            Self::U8 => (f32::from(b[0]) - 128.0) / 128.0,
            Self::I16 => f32::from(i16::from_le_bytes([b[0], b[1]])) / 32_768.0,
            // As the top three bytes of an i32, so the sign comes for free.
            Self::I24 => i32::from_le_bytes([0, b[0], b[1], b[2]]) as f32 / I32_FULL_SCALE,
            Self::I32 => i32::from_le_bytes([b[0], b[1], b[2], b[3]]) as f32 / I32_FULL_SCALE,
            Self::F32 => f32::from_le_bytes([b[0], b[1], b[2], b[3]]),
            Self::F64 => {
                f64::from_le_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]]) as f32
            }
            Self::MuLaw => f32::from(mu_law(b[0])) / 32_768.0,
            Self::ALaw => f32::from(a_law(b[0])) / 32_768.0,
        }
    }
}

/// ITU-T G.711 µ-law expansion to 16-bit linear (largest magnitude 32124).
fn mu_law(byte: u8) -> i16 {
    let u = !byte;
    let exponent = (u >> 4) & 0x07;
    let mantissa = i16::from(u & 0x0F);
    let magnitude = (((mantissa << 3) + 0x84) << exponent) - 0x84;
    if u & 0x80 != 0 { -magnitude } else { magnitude }
}

/// ITU-T G.711 A-law expansion to 16-bit linear (largest magnitude 32256).
fn a_law(byte: u8) -> i16 {
    let a = byte ^ 0x55;
    let exponent = (a >> 4) & 0x07;
    let mantissa = i16::from(a & 0x0F);
    let magnitude = match exponent {
        0 => (mantissa << 4) + 8,
        e => ((mantissa << 4) + 0x108) << (e - 1),
    };
    // In A-law a set sign bit means positive.
    if a & 0x80 != 0 { magnitude } else { -magnitude }
}

/// What the `fmt ` chunk of a WAV file says.
struct WavFormat {
    tag: u16,
    channels: u16,
    rate: u32,
    byte_rate: u32,
    block_align: u16,
    bits: u16,
    /// First two bytes of the WAVE_FORMAT_EXTENSIBLE sub-format GUID, which
    /// is the format tag of the actual encoding.
    sub_tag: Option<u16>,
    valid_bits: Option<u16>,
}

impl AudioFile {
    /// Opens a WAV or FLAC file (recognised by its first bytes) and checks
    /// that it can be decoded, so that configuration mistakes surface at
    /// start-up rather than mid-stream.
    pub fn open(path: &Path, channels: ChannelMode) -> Result<Self, AudioError> {
        let io_err = |source: io::Error| {
            if source.kind() == io::ErrorKind::NotFound {
                AudioError::NotFound {
                    path: path.to_owned(),
                }
            } else {
                AudioError::Io {
                    path: path.to_owned(),
                    source,
                }
            }
        };
        let mut file = File::open(path).map_err(io_err)?;
        let mut magic = Vec::with_capacity(12);
        (&mut file)
            .take(12)
            .read_to_end(&mut magic)
            .map_err(io_err)?;
        file.seek(SeekFrom::Start(0)).map_err(io_err)?;

        let mut repaired = None;
        let (decoder, sample_rate, n_channels, total_frames) = if magic.is_empty() {
            return Err(AudioError::Empty {
                path: path.to_owned(),
                what: "the file is empty (0 bytes)",
            });
        } else if magic.starts_with(b"fLaC") {
            open_flac(path, file)?
        } else if matches!(magic.get(..4), Some(b"RIFF" | b"RF64" | b"BW64"))
            && magic.get(8..12) == Some(b"WAVE")
        {
            let (opened, note) = open_wav(path, file)?;
            repaired = note;
            opened
        } else if magic.starts_with(b"RIFF") && magic.len() < 12 {
            return Err(corrupt(path, "WAV", "the RIFF header is cut short"));
        } else {
            return Err(AudioError::NotAudio {
                path: path.to_owned(),
                magic: describe_magic(&magic),
            });
        };

        if let ChannelMode::Pick(pick) = channels
            && pick >= usize::from(n_channels)
        {
            return Err(AudioError::ChannelOutOfRange {
                path: path.to_owned(),
                pick,
                channels: n_channels,
            });
        }
        Ok(Self {
            path: path.to_owned(),
            sample_rate,
            channels: n_channels,
            total_frames,
            mode: channels,
            decoder,
            frames_read: 0,
            deferred: None,
            finished: false,
            frame: vec![0.0; usize::from(n_channels)],
            repaired,
        })
    }

    /// What was wrong with the header, when the file could be read anyway
    /// (a WAV whose recorder stopped before writing the data size): worth a
    /// warning, since the samples' end is then only where the file ends.
    pub fn repaired_header(&self) -> Option<&str> {
        self.repaired.as_deref()
    }

    /// The file's own rate; the pipeline resamples from it.
    pub fn sample_rate(&self) -> u32 {
        self.sample_rate
    }

    /// Channels in the file (before mixing or picking).
    pub fn channels(&self) -> u16 {
        self.channels
    }

    /// Per-channel frames the header announces, if it does, for progress bars.
    pub fn total_frames(&self) -> Option<u64> {
        self.total_frames
    }

    /// The file, for messages and event sources.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Appends up to `max_frames` mono f32 samples (integer formats in
    /// [-1, 1); float files as stored) and returns how many; 0 means end of
    /// file. A decoding error is returned after the samples before it have
    /// been delivered; after an error the file reads as ended.
    pub fn read(&mut self, out: &mut Vec<f32>, max_frames: usize) -> Result<usize, AudioError> {
        if let Some(err) = self.deferred.take() {
            self.finished = true;
            return Err(err);
        }
        if self.finished {
            return Ok(0);
        }
        let mut delivered = 0;
        while delivered < max_frames {
            match self.next_frame() {
                Ok(true) => {
                    out.push(match self.mode {
                        ChannelMode::Mix => {
                            self.frame.iter().sum::<f32>() / self.frame.len() as f32
                        }
                        ChannelMode::Pick(c) => self.frame[c],
                    });
                    delivered += 1;
                    self.frames_read += 1;
                }
                Ok(false) => {
                    self.finished = true;
                    break;
                }
                Err(err) if delivered == 0 => {
                    self.finished = true;
                    return Err(err);
                }
                Err(err) => {
                    self.deferred = Some(err);
                    break;
                }
            }
        }
        Ok(delivered)
    }

    /// Decodes one interleaved frame into `self.frame`; `Ok(false)` at a clean
    /// end of file.
    fn next_frame(&mut self) -> Result<bool, AudioError> {
        let frame_idx = self.frames_read;
        let Self {
            path,
            decoder,
            frame,
            total_frames,
            ..
        } = self;
        let truncated = |detail: &str| AudioError::Truncated {
            path: path.clone(),
            frame: frame_idx,
            detail: detail.to_owned(),
        };
        match decoder {
            Decoder::Wav {
                data,
                encoding,
                bytes_left,
                raw,
            } => {
                if *bytes_left == 0 {
                    return Ok(false);
                }
                let got = read_up_to(data, raw).map_err(|source| AudioError::Io {
                    path: path.clone(),
                    source,
                })?;
                if got < raw.len() {
                    let total = total_frames.unwrap_or(0);
                    return Err(truncated(&format!(
                        "the data chunk announces {total} sample frames"
                    )));
                }
                // open_wav checked that the data is a whole number of frames.
                *bytes_left = bytes_left.saturating_sub(raw.len() as u64);
                let width = encoding.container_bytes();
                for (dst, bytes) in frame.iter_mut().zip(raw.chunks_exact(width)) {
                    *dst = encoding.decode(bytes);
                }
            }
            Decoder::Flac {
                reader,
                scale,
                block_buf,
                block,
                block_frames,
                block_pos,
            } => {
                if *block_pos == *block_frames {
                    let buf = std::mem::take(block_buf);
                    match reader.blocks().read_next_or_eof(buf) {
                        Ok(Some(decoded)) => {
                            let n_ch = decoded.channels() as usize;
                            if n_ch != frame.len() {
                                return Err(corrupt(
                                    path,
                                    "FLAC",
                                    &format!(
                                        "block at sample frame {frame_idx} has {n_ch} channels, the header says {}",
                                        frame.len()
                                    ),
                                ));
                            }
                            *block_frames = decoded.duration() as usize;
                            block.clear();
                            for i in 0..decoded.duration() {
                                block.extend((0..n_ch as u32).map(|c| decoded.sample(c, i)));
                            }
                            *block_buf = decoded.into_buffer();
                            *block_pos = 0;
                        }
                        Ok(None) => {
                            return match *total_frames {
                                Some(total) if frame_idx < total => Err(truncated(&format!(
                                    "the header announces {total} sample frames"
                                ))),
                                _ => Ok(false),
                            };
                        }
                        Err(claxon::Error::IoError(e)) => {
                            return Err(truncated(&e.to_string()));
                        }
                        Err(e) => {
                            return Err(corrupt(
                                path,
                                "FLAC",
                                &format!("at sample frame {frame_idx}: {e}"),
                            ));
                        }
                    }
                    if *block_frames == 0 {
                        return Ok(false);
                    }
                }
                let n_ch = frame.len();
                let start = *block_pos * n_ch;
                for (dst, &src) in frame.iter_mut().zip(&block[start..start + n_ch]) {
                    *dst = src as f32 * *scale;
                }
                *block_pos += 1;
            }
        }
        if let Some(channel) = frame.iter().position(|v| !v.is_finite()) {
            return Err(AudioError::NonFinite {
                path: path.clone(),
                frame: frame_idx,
                channel: u16::try_from(channel).unwrap_or(u16::MAX),
                value: frame[channel].to_string(),
            });
        }
        Ok(true)
    }
}

fn corrupt(path: &Path, format: &'static str, detail: &str) -> AudioError {
    AudioError::Corrupt {
        path: path.to_owned(),
        format,
        detail: detail.to_owned(),
    }
}

/// The first bytes as text a user can paste into a search engine.
fn describe_magic(magic: &[u8]) -> String {
    let shown: String = magic
        .iter()
        .take(8)
        .flat_map(|b| b.escape_ascii())
        .map(char::from)
        .collect();
    format!("\"{shown}\"")
}

fn check_rate_and_channels(path: &Path, rate: u32, channels: u32) -> Result<(), AudioError> {
    if !(1..=MAX_CHANNELS).contains(&channels) {
        return Err(AudioError::BadChannelCount {
            path: path.to_owned(),
            channels,
        });
    }
    if !(MIN_RATE..=MAX_RATE).contains(&rate) {
        return Err(AudioError::UnsupportedSampleRate {
            path: path.to_owned(),
            rate,
        });
    }
    Ok(())
}

type Opened = (Decoder, u32, u16, Option<u64>);

/// A WAV file's decoder, and what was wrong with its header when it could
/// be read anyway.
fn open_wav(path: &Path, file: File) -> Result<(Opened, Option<String>), AudioError> {
    let io_err = |source: io::Error| AudioError::Io {
        path: path.to_owned(),
        source,
    };
    let file_len = file.metadata().map_err(io_err)?.len();
    let mut reader = BufReader::new(file);
    let (fmt, size) = read_wav_header(path, &mut reader)?;
    check_rate_and_channels(path, fmt.rate, u32::from(fmt.channels))?;
    let tag = match (fmt.tag, fmt.sub_tag) {
        (0xFFFE, Some(sub)) => sub,
        (tag, _) => tag,
    };
    // Only uncompressed and G.711 frames have this layout; compressed
    // encodings (ADPCM, MPEG) have their own and are refused by name below.
    if matches!(tag, 1 | 3 | 6 | 7) {
        check_frame_layout(path, &fmt)?;
    }
    let container = fmt.block_align.checked_div(fmt.channels).unwrap_or(0);
    let bits = fmt.valid_bits.filter(|&b| b > 0).unwrap_or(fmt.bits);
    let encoding = match (tag, container) {
        (1, 1..=4) if (1..=container * 8).contains(&bits) => match container {
            1 => PcmEncoding::U8,
            2 => PcmEncoding::I16,
            3 => PcmEncoding::I24,
            _ => PcmEncoding::I32,
        },
        (3, 4) if bits == 32 => PcmEncoding::F32,
        (3, 8) if bits == 64 => PcmEncoding::F64,
        (6, 1) if bits == 8 => PcmEncoding::ALaw,
        (7, 1) if bits == 8 => PcmEncoding::MuLaw,
        (1, _) => {
            return Err(unsupported(
                path,
                format!("{bits}-bit integer PCM in {container}-byte containers"),
            ));
        }
        (3, _) => return Err(unsupported(path, format!("{bits}-bit float"))),
        (tag, _) => return Err(unsupported(path, wav_encoding_name(tag))),
    };

    let block = u64::from(container) * u64::from(fmt.channels);
    let data_start = reader.stream_position().map_err(io_err)?;
    let (data_bytes, repaired) =
        data_extent(path, size, file_len.saturating_sub(data_start), block)?;
    let frames = data_bytes / block;
    Ok((
        (
            Decoder::Wav {
                bytes_left: data_bytes,
                data: reader,
                encoding,
                raw: vec![0; block as usize],
            },
            fmt.rate,
            fmt.channels,
            Some(frames),
        ),
        repaired,
    ))
}

/// The fmt chunk's sizes must agree with each other; when they do not, the
/// header is damaged and even the sample rate cannot be trusted.
fn check_frame_layout(path: &Path, fmt: &WavFormat) -> Result<(), AudioError> {
    let per_second = u64::from(fmt.rate) * u64::from(fmt.block_align);
    let detail = if !fmt.block_align.is_multiple_of(fmt.channels) {
        format!(
            "the fmt chunk's {}-byte sample frames do not divide into {} channels",
            fmt.block_align, fmt.channels
        )
    } else if u64::from(fmt.byte_rate) != per_second {
        format!(
            "the fmt chunk says {} bytes per second, but {} Hz x {}-byte frames is {per_second}",
            fmt.byte_rate, fmt.rate, fmt.block_align
        )
    } else {
        return Ok(());
    };
    Err(corrupt(path, "WAV", &detail))
}

/// Bytes of sample data to read, from the data chunk's size and the bytes
/// that follow the header. Recorders write the size last, after the
/// samples: one that lost power, or a writer that streamed, leaves it
/// unwritten. Then the samples run to the end of the file, which is read
/// (whole frames only) with a note saying so, rather than discarding a
/// recording that is all there. A declared size beyond the end of the file
/// is a file cut short, reported when reading reaches it.
fn data_extent(
    path: &Path,
    size: DataSize,
    after_header: u64,
    block: u64,
) -> Result<(u64, Option<String>), AudioError> {
    let placeholder = match size {
        DataSize::Declared(bytes) if !bytes.is_multiple_of(block) => {
            return Err(corrupt(
                path,
                "WAV",
                &format!(
                    "the data chunk's {bytes} bytes are not a whole number of \
                     {block}-byte sample frames"
                ),
            ));
        }
        DataSize::Declared(bytes) => return Ok((bytes, None)),
        DataSize::Unwritten(placeholder) => placeholder,
    };
    let whole = after_header - after_header % block;
    if whole == 0 {
        return Err(AudioError::Empty {
            path: path.to_owned(),
            what: "the WAV header announces no samples",
        });
    }
    let note = format!(
        "the WAV header's data size was never written (it reads {placeholder:#x}), as when a \
         recorder stops mid-file; reading the {} sample frames up to the end of the file",
        whole / block
    );
    Ok((whole, Some(note)))
}

/// Like `read_exact`, but says how much was read when the data runs out, so
/// truncation can be reported at the right sample.
fn read_up_to(r: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match r.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(filled)
}

fn unsupported(path: &Path, encoding: String) -> AudioError {
    AudioError::UnsupportedEncoding {
        path: path.to_owned(),
        encoding,
    }
}

fn wav_encoding_name(tag: u16) -> String {
    match tag {
        0x0002 => "Microsoft ADPCM".into(),
        0x0006 => "A-law".into(),
        0x0007 => "µ-law".into(),
        0x0011 => "IMA ADPCM".into(),
        0x0050 | 0x0055 => "MPEG audio".into(),
        _ => format!("WAV format tag 0x{tag:04x}"),
    }
}

/// An I/O error while reading the header: running out of bytes means the
/// header is cut short (`detail` says where), anything else is I/O.
fn header_error(path: &Path, e: io::Error, detail: &str) -> AudioError {
    if e.kind() == io::ErrorKind::UnexpectedEof {
        corrupt(path, "WAV", detail)
    } else {
        AudioError::Io {
            path: path.to_owned(),
            source: e,
        }
    }
}

/// The size of the data chunk, as the header gives it.
#[derive(Debug, Clone, Copy)]
enum DataSize {
    /// Bytes, from the data chunk or, in RF64 / BW64 files over 4 GiB, from
    /// their `ds64` chunk.
    Declared(u64),
    /// The 32-bit size field still holds what writers put there before the
    /// samples are written (0 or 0xFFFFFFFF).
    Unwritten(u32),
}

/// Walks the RIFF chunks, parses `fmt ` (and `ds64`) and stops at the first
/// byte of the data chunk; returns the format and the data size.
fn read_wav_header(
    path: &Path,
    r: &mut BufReader<File>,
) -> Result<(WavFormat, DataSize), AudioError> {
    const BEFORE_FMT: &str = "the header ends before the fmt chunk is complete";
    const BEFORE_DATA: &str = "the header is cut short before the data chunk";
    let mut riff = [0u8; 12];
    r.read_exact(&mut riff)
        .map_err(|e| header_error(path, e, BEFORE_FMT))?;
    let mut format = None;
    let mut ds64_data = None;
    loop {
        let missing = if format.is_none() {
            BEFORE_FMT
        } else {
            BEFORE_DATA
        };
        let cut_short = |e| header_error(path, e, missing);
        let mut header = [0u8; 8];
        r.read_exact(&mut header).map_err(cut_short)?;
        let len = u32::from_le_bytes([header[4], header[5], header[6], header[7]]);
        // RIFF chunks are padded to even length.
        let padded = i64::from(len) + i64::from(len & 1);
        match &header[..4] {
            b"fmt " if format.is_none() => {
                if len < 16 {
                    return Err(corrupt(path, "WAV", &format!("fmt chunk of {len} bytes")));
                }
                let mut body = vec![0u8; len.min(40) as usize];
                r.read_exact(&mut body).map_err(cut_short)?;
                format = Some(parse_fmt(&body));
                r.seek_relative(padded - body.len() as i64)
                    .map_err(cut_short)?;
            }
            b"ds64" => {
                // riff size, data size, sample count (u64 each), then a table.
                if len < 24 {
                    return Err(corrupt(path, "WAV", &format!("ds64 chunk of {len} bytes")));
                }
                let mut body = [0u8; 24];
                r.read_exact(&mut body).map_err(cut_short)?;
                let mut data = [0u8; 8];
                data.copy_from_slice(&body[8..16]);
                ds64_data = Some(u64::from_le_bytes(data));
                r.seek_relative(padded - 24).map_err(cut_short)?;
            }
            b"data" => {
                let size = match (len, ds64_data) {
                    (u32::MAX, Some(big)) if big > 0 => DataSize::Declared(big),
                    (0 | u32::MAX, _) => DataSize::Unwritten(len),
                    _ => DataSize::Declared(u64::from(len)),
                };
                return match format {
                    Some(format) => Ok((format, size)),
                    None => Err(corrupt(
                        path,
                        "WAV",
                        "the data chunk comes before the fmt chunk",
                    )),
                };
            }
            _ => r.seek_relative(padded).map_err(cut_short)?,
        }
    }
}

/// The fields of a `fmt ` chunk body of at least 16 bytes.
fn parse_fmt(body: &[u8]) -> WavFormat {
    let u16_at = |i: usize| body.get(i..i + 2).map(|b| u16::from_le_bytes([b[0], b[1]]));
    let u32_at = |i: usize| {
        body.get(i..i + 4)
            .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    };
    // Bounds are guaranteed by the caller for the first 16 bytes.
    let tag = u16_at(0).unwrap_or(0);
    let extensible = tag == 0xFFFE && body.len() >= 40;
    WavFormat {
        tag,
        channels: u16_at(2).unwrap_or(0),
        rate: u32_at(4).unwrap_or(0),
        byte_rate: u32_at(8).unwrap_or(0),
        block_align: u16_at(12).unwrap_or(0),
        bits: u16_at(14).unwrap_or(0),
        sub_tag: if extensible { u16_at(24) } else { None },
        valid_bits: if extensible { u16_at(18) } else { None },
    }
}

fn open_flac(path: &Path, file: File) -> Result<Opened, AudioError> {
    let reader = claxon::FlacReader::new(file).map_err(|e| match e {
        claxon::Error::IoError(e) if e.kind() == io::ErrorKind::UnexpectedEof => {
            corrupt(path, "FLAC", "the metadata is cut short")
        }
        claxon::Error::IoError(source) => AudioError::Io {
            path: path.to_owned(),
            source,
        },
        claxon::Error::Unsupported(what) => unsupported(path, format!("FLAC with {what}")),
        claxon::Error::FormatError(what) => corrupt(path, "FLAC", what),
    })?;
    let info = reader.streaminfo();
    check_rate_and_channels(path, info.sample_rate, info.channels)?;
    if info.samples == Some(0) {
        return Err(AudioError::Empty {
            path: path.to_owned(),
            what: "the FLAC header announces no samples",
        });
    }
    if !(4..=32).contains(&info.bits_per_sample) {
        return Err(unsupported(
            path,
            format!("{}-bit FLAC", info.bits_per_sample),
        ));
    }
    let scale = 1.0 / (1u64 << (info.bits_per_sample - 1)) as f32;
    let channels = u16::try_from(info.channels).unwrap_or(u16::MAX);
    Ok((
        Decoder::Flac {
            reader: Box::new(reader),
            scale,
            block_buf: Vec::new(),
            block: Vec::new(),
            block_frames: 0,
            block_pos: 0,
        },
        info.sample_rate,
        channels,
        info.samples,
    ))
}
