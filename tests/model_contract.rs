//! A model that does not fit its manifest is refused at load, with a message
//! naming the file and what is wrong.

use std::path::{Path, PathBuf};

use rumbled::model::{Manifest, Model, ModelOptions, WindowModel};

fn data(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data/models")
        .join(name)
}

fn load(name: &str) -> Result<Model, String> {
    let manifest = Manifest::load(&data(name)).map_err(|e| e.to_string())?;
    Model::load(
        manifest,
        &ModelOptions {
            onnxruntime: None,
            threads: 1,
        },
    )
    .map_err(|e| e.to_string())
}

fn refused(name: &str, onnx_file: &str, words: &[&str]) {
    let err = match load(name) {
        Ok(_) => panic!("{name} was accepted"),
        Err(e) => e,
    };
    assert!(
        err.contains(onnx_file),
        "{name}: message does not name {onnx_file}: {err}"
    );
    for w in words {
        assert!(err.contains(w), "{name}: message lacks `{w}`: {err}");
    }
}

#[test]
fn a_contract_shaped_graph_loads_and_runs() {
    let mut model = load("ok_pool.json").expect("ok_pool fits the contract");
    let frames = 40;
    let window = vec![1.0f32; frames * 128];
    let mut out = Vec::new();
    model.infer(&window, frames, &mut out).expect("inference");
    assert_eq!(out.len(), (frames / 16) * 5);
    // sigmoid(128 * 0.01 * 1.0) for every class
    let expected = 1.0 / (1.0 + (-1.28f32).exp());
    assert!(out.iter().all(|p| (p - expected).abs() < 1e-5), "{out:?}");
}

#[test]
fn wrong_input_name_is_refused() {
    refused(
        "wrong_input_name.json",
        "wrong_input_name.onnx",
        &["fbank", "features"],
    );
}

#[test]
fn wrong_mel_width_is_refused() {
    refused("wrong_mel.json", "wrong_mel.onnx", &["64", "128"]);
}

#[test]
fn wrong_class_count_is_refused() {
    refused(
        "wrong_classes.json",
        "wrong_classes.onnx",
        &["4 classes", "5 labels"],
    );
}

#[test]
fn wrong_output_rank_is_refused() {
    refused("rank2_output.json", "rank2_output.onnx", &["rank 2"]);
}

#[test]
fn a_file_that_is_not_onnx_is_refused() {
    refused("garbage.json", "garbage.onnx", &["cannot load"]);
}

#[test]
fn a_checksum_mismatch_is_refused() {
    refused(
        "bad_checksum.json",
        "ok_pool.onnx",
        &["sha256", "does not match"],
    );
}

#[test]
fn manifest_errors_name_the_field() {
    let dir = tempfile::tempdir().expect("tempdir");
    let text = std::fs::read_to_string(data("ok_pool.json")).expect("read");
    let cases = [
        ("\"schema\": 1", "\"schema\": 7", "schema"),
        (
            "\"background\": \"not-call\"",
            "\"background\": \"silence\"",
            "background",
        ),
        ("\"std\": 2.9366", "\"std\": 0.0", "features.std"),
        (
            "\"kind\": \"kaldi_fbank\"",
            "\"kind\": \"mfcc\"",
            "features.kind",
        ),
        // Recommended endpoint settings: a key rumbled does not know, a
        // value of the wrong type, and an offset above the onset.
        (
            "\"schema\": 1,",
            "\"schema\": 1, \"endpoint\": {\"onsett\": 0.6},",
            "onsett",
        ),
        (
            "\"schema\": 1,",
            "\"schema\": 1, \"endpoint\": {\"onset\": \"high\"},",
            "endpoint",
        ),
        (
            "\"schema\": 1,",
            "\"schema\": 1, \"endpoint\": {\"onset\": 0.4, \"offset\": 0.6},",
            "endpoint.offset",
        ),
        (
            "\"schema\": 1,",
            "\"schema\": 1, \"min_input_rate\": 0,",
            "min_input_rate",
        ),
    ];
    for (from, to, field) in cases {
        let path = dir.path().join("m.json");
        std::fs::write(&path, text.replace(from, to)).expect("write");
        let err = Manifest::load(&path).expect_err(field).to_string();
        assert!(
            err.contains(field) && err.contains("m.json"),
            "{field}: {err}"
        );
    }
    let path = dir.path().join("broken.json");
    std::fs::write(&path, "{ not json").expect("write");
    let err = Manifest::load(&path).expect_err("broken json").to_string();
    assert!(err.contains("broken.json"), "{err}");
}

#[test]
fn the_shipped_default_model_loads() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("models/rumbled-edge-ev5.json");
    let manifest = Manifest::load(&path).expect("default manifest");
    let model = Model::load(
        manifest,
        &ModelOptions {
            onnxruntime: None,
            threads: 1,
        },
    )
    .expect("default model loads");
    assert_eq!(model.manifest().labels[0], "not-call");
    assert_eq!(model.manifest().background_index(), Some(0));
}

#[test]
fn recordings_below_the_trained_rates_get_a_warning_naming_the_rates() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("models/rumbled-edge-ev5.json");
    let manifest = Manifest::load(&path).expect("default manifest");
    let min = manifest
        .min_input_rate
        .expect("the default model records its lowest training rate");
    assert_eq!(min, 2000, "synthetic training rates start at 2 kHz");
    assert_eq!(manifest.input_rate_warning(min), None);
    assert_eq!(manifest.input_rate_warning(48_000), None);
    let warning = manifest.input_rate_warning(1000).expect("1 kHz warns");
    assert!(
        warning.contains("1000 Hz") && warning.contains("2000 Hz"),
        "{warning}"
    );
    let no_field = Manifest {
        min_input_rate: None,
        ..manifest
    };
    assert_eq!(no_field.input_rate_warning(1000), None);
}
