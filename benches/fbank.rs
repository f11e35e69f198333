//! Front-end throughput: the feature extractor and the resampler must leave
//! nearly all of an edge device's CPU to the model. Criterion reports time
//! per iteration; each benchmark also prints the speed as a multiple of real
//! time, which is the number the feature contract's budget is stated in.

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use rumbled::audio::StreamResampler;
use rumbled::dsp::{FbankConfig, StreamingFbank};

const SECONDS: usize = 60;

fn noise(n: usize) -> Vec<f32> {
    // xorshift: deterministic and dependency-free.
    let mut s = 0x9E37_79B9_7F4A_7C15u64;
    (0..n)
        .map(|_| {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            (s >> 40) as f32 / (1u64 << 23) as f32 - 1.0
        })
        .collect()
}

/// Times `run` once outside criterion and prints audio seconds per wall second.
fn report_real_time(label: &str, audio_seconds: usize, mut run: impl FnMut()) {
    run(); // warm caches and plans
    let reps = 5;
    let start = Instant::now();
    for _ in 0..reps {
        run();
    }
    let per_run = start.elapsed() / reps;
    println!(
        "{label}: {:.0}x real time ({:.2} ms per {audio_seconds} s of audio)",
        audio_seconds as f64 / per_run.as_secs_f64(),
        per_run.as_secs_f64() * 1e3
    );
}

fn fbank(c: &mut Criterion) {
    let cfg = FbankConfig::default();
    let x = noise(16_000 * SECONDS);
    let mut fb = StreamingFbank::new(&cfg).expect("default config is valid");
    let mut out = Vec::with_capacity(SECONDS * 100 * 128);
    // Pushed in 10 ms blocks, the way a live stream arrives.
    let mut run = || {
        fb.reset();
        out.clear();
        for block in x.chunks(160) {
            fb.push(block, &mut out);
        }
        black_box(&out);
    };
    report_real_time("fbank 16 kHz, 60 s noise", SECONDS, &mut run);
    let mut group = c.benchmark_group("fbank");
    group.throughput(Throughput::Elements((16_000 * SECONDS) as u64));
    group.measurement_time(Duration::from_secs(10));
    group.sample_size(20);
    group.bench_function("60s_noise_10ms_blocks", |b| b.iter(&mut run));
    group.finish();
}

fn resample(c: &mut Criterion) {
    let mut group = c.benchmark_group("resample");
    group.measurement_time(Duration::from_secs(10));
    group.sample_size(20);
    for from in [48_000u32, 4_000] {
        let x = noise(from as usize * SECONDS);
        let mut out = Vec::with_capacity(16_000 * SECONDS + 16_000);
        let mut run = || {
            let mut rs = StreamResampler::new(from, 16_000).expect("valid rates");
            out.clear();
            // 20 ms device-sized blocks.
            for block in x.chunks(from as usize / 50) {
                rs.process(block, &mut out);
            }
            rs.flush(&mut out);
            black_box(&out);
        };
        report_real_time(
            &format!("resample {from} -> 16000 Hz, 60 s"),
            SECONDS,
            &mut run,
        );
        group.throughput(Throughput::Elements(x.len() as u64));
        group.bench_function(format!("{from}_to_16000_60s"), |b| b.iter(&mut run));
    }
    group.finish();
}

criterion_group!(benches, fbank, resample);
criterion_main!(benches);
