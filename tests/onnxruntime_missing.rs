//! A missing or unusable ONNX Runtime library is an error that names the
//! path and says how to get a fitting one, not a panic. (Its own test binary:
//! ONNX Runtime can be loaded only once per process.)

use std::path::Path;

use rumbled::model::{Manifest, Model, ModelOptions};

#[test]
fn a_missing_library_names_the_path_and_the_fix() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/models/ok_pool.json");
    let manifest = Manifest::load(&path).expect("manifest");
    let options = ModelOptions {
        onnxruntime: Some("/nonexistent/libonnxruntime.so.1".into()),
        threads: 1,
    };
    let err = match Model::load(manifest, &options) {
        Ok(_) => panic!("loaded without a library"),
        Err(e) => e.to_string(),
    };
    assert!(err.contains("/nonexistent/libonnxruntime.so.1"), "{err}");
    assert!(err.contains("fetch-onnxruntime.sh"), "{err}");
}
