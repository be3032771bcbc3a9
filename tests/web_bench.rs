//! Browser benchmark (not a test of speed): detection + alignment of one 640x480 photo on WebGPU and on the
//! CPU path inside headless Chromium. Run with:
//!   WASM_BINDGEN_TEST_TIMEOUT=600 CHROMEDRIVER=/usr/bin/chromedriver cargo test --release --target wasm32-unknown-unknown --test web_bench -- --nocapture
//! The native counterpart is `facepatch bench`.
#![cfg(target_arch = "wasm32")]

mod common;
use facepatch::face::{decode_image, DetectOptions};
use facepatch::models::MOBILEFACENET;
use facepatch::pipeline::Pipeline;
use wasm_bindgen_test::{console_log, wasm_bindgen_test, wasm_bindgen_test_configure};

wasm_bindgen_test_configure!(run_in_browser);

const PHOTO: &[u8] = include_bytes!("data/photos/bench_640x480.jpg");
const ITERATIONS: usize = 3;

#[wasm_bindgen_test]
async fn bench_detect_align_640x480() {
    let img = decode_image(PHOTO).unwrap();
    for gpu in [true, false] {
        let ctx = if gpu { Some(common::gpu().await) } else { None };
        let pipe = Pipeline::new(&MOBILEFACENET, ctx, DetectOptions::default()).unwrap();
        let mut times = Vec::new();
        for i in 0..=ITERATIONS {
            let t = js_sys::Date::now();
            let faces = pipe.detect(&img).await.unwrap();
            let _aligned = pipe.align(&img, &faces[0]).await.unwrap();
            if i > 0 {
                times.push(js_sys::Date::now() - t);
            }
        }
        times.sort_by(f64::total_cmp);
        console_log!(
            "bench: {} in Chromium: 640x480 detect + align median {:.0} ms over {} runs",
            if gpu { "WebGPU" } else { "CPU (wasm)" },
            times[times.len() / 2],
            times.len()
        );
    }
}
