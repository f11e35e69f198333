//! Wires the stages together: samples -> resampler -> fbank -> windows ->
//! model -> stitched frame probabilities -> endpointer -> call events.
//!
//! [`Detector`] is the whole chain for one stream and knows nothing about
//! where samples come from or where events go; `replay` (batch, as fast as
//! the CPU allows) and the live daemon drive the same type, so what a station
//! detects is what a replay of its recording detects.

use std::time::{Duration, Instant};

use crate::audio::{AudioError, StreamResampler};
use crate::detect::{CallEvent, EndpointConfig, EndpointError, Endpointer};
use crate::dsp::StreamingFbank;
use crate::model::{Manifest, ModelError, WindowModel, Windower, WindowerConfig};

/// Errors building or running a [`Detector`].
#[derive(Debug, thiserror::Error)]
pub enum PipelineError {
    /// The model failed.
    #[error(transparent)]
    Model(#[from] ModelError),
    /// The resampler could not be built for this rate.
    #[error(transparent)]
    Audio(#[from] AudioError),
    /// The endpointing rules are invalid or do not fit the model.
    #[error(transparent)]
    Endpoint(#[from] EndpointError),
    /// A setting does not fit the model.
    #[error("{0}")]
    Setup(String),
}

/// Settings of one detector, drawn from the config and the manifest.
#[derive(Debug, Clone)]
pub struct DetectorConfig {
    /// Sample rate of the samples pushed in.
    pub input_rate: u32,
    /// Linear gain applied to input samples.
    pub gain: f32,
    /// Window advance in output frames.
    pub hop_frames: usize,
    /// Weight windows towards their centre when averaging.
    pub centre_weighted: bool,
    /// Endpointing rules.
    pub endpoint: EndpointConfig,
}

/// Where the time went, per stage, for benchmarks and stats.
#[derive(Debug, Clone, Copy, Default)]
pub struct StageTimes {
    /// Gain and resampling.
    pub resample: Duration,
    /// Fbank features.
    pub fbank: Duration,
    /// Windowing, inference and stitching.
    pub model: Duration,
    /// Endpointing.
    pub endpoint: Duration,
}

/// What one push produced.
#[derive(Debug, Default)]
pub struct DetectorOutput {
    /// Index of the first output frame in `probs`.
    pub first_frame: u64,
    /// Final per-frame probabilities, `classes` values per frame.
    pub probs: Vec<f32>,
    /// Call events, in order.
    pub events: Vec<CallEvent>,
}

impl DetectorOutput {
    /// Empties the output for reuse without giving back its memory.
    pub fn clear(&mut self) {
        self.probs.clear();
        self.events.clear();
    }
}

/// The detection chain for one stream.
pub struct Detector {
    gain: f32,
    resampler: StreamResampler,
    fbank: StreamingFbank,
    windower: Windower,
    endpointer: Endpointer,
    classes: usize,
    scaled: Vec<f32>,
    resampled: Vec<f32>,
    features: Vec<f32>,
    provisional: Vec<f32>,
    samples_in: u64,
    times: StageTimes,
}

impl Detector {
    /// Builds the chain for a model described by `manifest`.
    pub fn new(manifest: &Manifest, cfg: &DetectorConfig) -> Result<Self, PipelineError> {
        let fbank = StreamingFbank::new(&manifest.fbank_config())
            .map_err(|e| PipelineError::Setup(format!("model {}: {e}", manifest.path.display())))?;
        let window_cfg = WindowerConfig {
            window_frames: manifest.window_frames,
            hop_outputs: cfg.hop_frames,
            frames_per_output: manifest.output.frames_per_output,
            num_bins: manifest.features.num_mel_bins,
            mean: manifest.features.mean,
            std: manifest.features.std,
            centre_weighted: cfg.centre_weighted,
        };
        let classes = manifest.labels.len();
        let windower = Windower::new(window_cfg, classes)
            .map_err(|e| PipelineError::Setup(format!("model.hop_frames: {e}")))?;
        let endpointer = Endpointer::new(
            &cfg.endpoint,
            &manifest.labels,
            manifest.background_index(),
            manifest.output_frame_seconds(),
        )?;
        Ok(Detector {
            gain: cfg.gain,
            resampler: StreamResampler::new(cfg.input_rate, manifest.sample_rate)?,
            fbank,
            windower,
            endpointer,
            classes,
            scaled: Vec::new(),
            resampled: Vec::new(),
            features: Vec::new(),
            provisional: Vec::new(),
            samples_in: 0,
            times: StageTimes::default(),
        })
    }

    /// Number of classes per frame.
    pub fn classes(&self) -> usize {
        self.classes
    }

    /// Input samples consumed so far.
    pub fn samples_in(&self) -> u64 {
        self.samples_in
    }

    /// Output frames finalised so far.
    pub fn frames_out(&self) -> u64 {
        self.windower.frames_out()
    }

    /// Inference windows run so far (the scheduled ones).
    pub fn windows_run(&self) -> u64 {
        self.windower.windows_run()
    }

    /// Fbank frames (10 ms each) computed so far.
    pub fn fbank_frames(&self) -> u64 {
        self.windower.frames_in()
    }

    /// The events the endpointer would add if the frames that are not final
    /// yet were final as they stand now: an early view of calls still being
    /// decided, for alarms that cannot wait until every window covering a
    /// frame has run (a window's length, 10 s for the default model). With
    /// `model`, one extra window ending at the newest audio is run for this
    /// view (see [`Windower::provisional`]). Neither the detector's state nor
    /// its final output changes.
    pub fn preview<M: WindowModel + ?Sized>(
        &mut self,
        model: Option<&mut M>,
        events: &mut Vec<CallEvent>,
    ) -> Result<(), PipelineError> {
        self.provisional.clear();
        self.windower.provisional(model, &mut self.provisional)?;
        let mut endpointer = self.endpointer.clone();
        for frame in self.provisional.chunks_exact(self.classes) {
            endpointer.push(frame, events);
        }
        Ok(())
    }

    /// Calls currently open in the endpointer.
    pub fn open_calls(&self) -> usize {
        self.endpointer.open_calls()
    }

    /// Cumulative time per stage.
    pub fn stage_times(&self) -> StageTimes {
        self.times
    }

    /// Applies new endpointing rules to future frames (live reload).
    pub fn set_endpoint_config(&mut self, cfg: &EndpointConfig) -> Result<(), EndpointError> {
        self.endpointer.set_config(cfg)
    }

    /// Feeds samples at the input rate; appends what became final to `out`.
    pub fn push<M: WindowModel + ?Sized>(
        &mut self,
        samples: &[f32],
        model: &mut M,
        out: &mut DetectorOutput,
    ) -> Result<(), PipelineError> {
        self.samples_in += samples.len() as u64;
        let t0 = Instant::now();
        self.resampled.clear();
        if self.gain == 1.0 {
            self.resampler.process(samples, &mut self.resampled);
        } else {
            let gain = self.gain;
            self.scaled.clear();
            self.scaled.extend(samples.iter().map(|s| s * gain));
            self.resampler.process(&self.scaled, &mut self.resampled);
        }
        self.times.resample += t0.elapsed();
        self.features_to_events(model, out, false)
    }

    /// End of stream: flushes every stage, closes open calls.
    pub fn finish<M: WindowModel + ?Sized>(
        &mut self,
        model: &mut M,
        out: &mut DetectorOutput,
    ) -> Result<(), PipelineError> {
        let t0 = Instant::now();
        self.resampled.clear();
        self.resampler.flush(&mut self.resampled);
        self.times.resample += t0.elapsed();
        self.features_to_events(model, out, true)
    }

    fn features_to_events<M: WindowModel + ?Sized>(
        &mut self,
        model: &mut M,
        out: &mut DetectorOutput,
        last: bool,
    ) -> Result<(), PipelineError> {
        let t1 = Instant::now();
        self.features.clear();
        self.fbank.push(&self.resampled, &mut self.features);
        let t2 = Instant::now();
        let before = out.probs.len();
        if out.probs.is_empty() {
            out.first_frame = self.windower.frames_out();
        }
        self.windower.push(&self.features, model, &mut out.probs)?;
        if last {
            self.windower.finish(model, &mut out.probs)?;
        }
        let t3 = Instant::now();
        for frame in out.probs[before..].chunks_exact(self.classes) {
            self.endpointer.push(frame, &mut out.events);
        }
        if last {
            self.endpointer.finish(&mut out.events);
        }
        self.times.fbank += t2 - t1;
        self.times.model += t3 - t2;
        self.times.endpoint += t3.elapsed();
        Ok(())
    }
}
