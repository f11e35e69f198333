//! Audio input: decoding recordings and bringing any recorder's sample rate
//! to the model's, as mono f32.

pub mod capture;
pub mod file;
pub mod level;
pub mod resample;
pub mod source;

use std::path::PathBuf;

use thiserror::Error;

pub use file::{AudioFile, ChannelMode};
pub use level::ClipMeter;
pub use resample::StreamResampler;

/// Why audio could not be read or converted. Every file error names the file
/// and says what the user can do, because these messages end up in front of
/// field technicians, not developers.
#[derive(Debug, Error)]
pub enum AudioError {
    /// The path does not exist.
    #[error("{}: no such file; check the path (and the [input] section of the config)", path.display())]
    NotFound {
        /// The file that was asked for.
        path: PathBuf,
    },

    /// The operating system refused to read the file.
    #[error("{}: cannot read: {source}; check permissions and that it is a regular file", path.display())]
    Io {
        /// The file being read.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },

    /// The file has no audio at all (0 bytes, or a header with no samples).
    #[error("{}: {what}; the recording was probably interrupted, copy it from the recorder again", path.display())]
    Empty {
        /// The file.
        path: PathBuf,
        /// Which kind of empty.
        what: &'static str,
    },

    /// Neither a WAV nor a FLAC file, judged by its first bytes.
    #[error(
        "{}: not a WAV or FLAC file (it starts with {magic}); convert it, e.g. `ffmpeg -i IN -c:a pcm_s16le OUT.wav`",
        path.display()
    )]
    NotAudio {
        /// The file.
        path: PathBuf,
        /// The first bytes, printed for diagnosis.
        magic: String,
    },

    /// A WAV/FLAC encoding this decoder does not handle.
    #[error(
        "{}: unsupported encoding: {encoding}; convert it to 16- or 24-bit PCM WAV or FLAC (e.g. `ffmpeg -i IN -c:a pcm_s16le OUT.wav`)",
        path.display()
    )]
    UnsupportedEncoding {
        /// The file.
        path: PathBuf,
        /// The encoding found.
        encoding: String,
    },

    /// A sample rate outside what any recorder produces (1 kHz .. 384 kHz).
    #[error("{}: sample rate {rate} Hz is outside 1000..=384000 Hz; the header is probably corrupt", path.display())]
    UnsupportedSampleRate {
        /// The file.
        path: PathBuf,
        /// The rate in the header.
        rate: u32,
    },

    /// A channel count that is zero or implausibly large.
    #[error("{}: {channels} channels is outside 1..=64; the header is probably corrupt", path.display())]
    BadChannelCount {
        /// The file.
        path: PathBuf,
        /// The count in the header.
        channels: u32,
    },

    /// The configured channel does not exist in this file.
    #[error(
        "{}: channel {pick} requested but the file has {channels} channel(s) (numbered from 0); pick another channel or use mix",
        path.display()
    )]
    ChannelOutOfRange {
        /// The file.
        path: PathBuf,
        /// The 0-based channel asked for.
        pick: usize,
        /// How many the file has.
        channels: u16,
    },

    /// The header or stream structure is malformed.
    #[error("{}: corrupt {format} data: {detail}; re-export or re-copy the file", path.display())]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// "WAV" or "FLAC".
        format: &'static str,
        /// The decoder's description.
        detail: String,
    },

    /// The data ends before the header says it should. Every complete frame
    /// before `frame` has been delivered.
    #[error(
        "{}: file ends early at sample frame {frame} ({detail}); it is truncated, the samples before that were read; re-copy it from the recorder",
        path.display()
    )]
    Truncated {
        /// The file.
        path: PathBuf,
        /// Per-channel sample index where data stopped.
        frame: u64,
        /// The decoder's description.
        detail: String,
    },

    /// A float sample is NaN or infinite: the data is corrupt. Every frame
    /// before `frame` has been delivered.
    #[error(
        "{}: sample {frame} (channel {channel}) is {value}; the data is corrupt, re-export the file",
        path.display()
    )]
    NonFinite {
        /// The file.
        path: PathBuf,
        /// Per-channel sample index of the bad value.
        frame: u64,
        /// Channel of the bad value (0-based).
        channel: u16,
        /// The value, as text (NaN, inf, -inf).
        value: String,
    },

    /// A sample-rate conversion that cannot be set up.
    #[error("cannot resample {from_hz} Hz to {to_hz} Hz: {reason}")]
    Resample {
        /// Input rate.
        from_hz: u32,
        /// Output rate.
        to_hz: u32,
        /// What went wrong.
        reason: String,
    },
}
