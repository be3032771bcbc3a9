//! Every WGSL kernel against its CPU twin, on awkward shapes (odd sizes, channel counts not
//! divisible by 4, 1x1 spatial, batches), natively on lavapipe and in headless Chromium.
//! A few cases also pin the CPU twin itself to hand-computed values.

mod common;
use common::*;
use facepatch::engine::{LoadOptions, Model};
use serde_json::{json, Value};

#[cfg(target_arch = "wasm32")]
wasm_bindgen_test::wasm_bindgen_test_configure!(run_in_browser);

fn opts(batch: usize) -> LoadOptions {
    LoadOptions {
        batch,
        ..Default::default()
    }
}

struct Conv {
    n: usize,
    h: usize,
    w: usize,
    cin: usize,
    cout: usize,
    k: [usize; 2],
    stride: [usize; 2],
    pad: [usize; 4],
    groups: usize,
    act: &'static str,
    bias: bool,
}

async fn conv_case(what: &str, c: Conv, seed: u64) {
    let mut rng = Rng::new(seed);
    let wshape = vec![c.cout, c.k[0], c.k[1], c.cin / c.groups];
    let mut tensors = vec![("w", wshape.clone(), rng.vec(wshape.iter().product()))];
    if c.bias {
        tensors.push(("b", vec![c.cout], rng.vec(c.cout)));
    }
    let activation: Value = match c.act {
        "prelu" => {
            tensors.push(("alpha", vec![c.cout], rng.vec(c.cout).iter().map(|v| v * 3.0).collect()));
            json!({"prelu": "alpha"})
        }
        "leaky_relu" => json!({"leaky_relu": 0.1}),
        other => json!(other),
    };
    let node = json!({
        "op": "conv2d", "input": "x", "output": "y", "weight": "w",
        "bias": if c.bias { json!("b") } else { Value::Null },
        "kernel": c.k, "stride": c.stride, "pad": c.pad, "groups": c.groups,
        "out_channels": c.cout, "activation": activation,
    });
    let graph = f32_graph(c.h, c.w, c.cin, vec![node], &["y"]);
    let input = rng.vec(c.n * c.h * c.w * c.cin);
    gpu_matches_cpu(what, &graph, &safetensors_bytes(&tensors), opts(c.n), &input).await;
}

both! {
    fn conv_3x3_odd_sizes_relu() {
        conv_case("conv 3x3", Conv { n: 1, h: 7, w: 5, cin: 3, cout: 5, k: [3, 3], stride: [1, 1],
            pad: [1, 1, 1, 1], groups: 1, act: "relu", bias: true }, 1).await;
    }
}

both! {
    fn conv_stride2_same_padding_bottom_right() {
        // TFLite SAME at stride 2 on an even input pads only bottom and right.
        conv_case("conv s2 same", Conv { n: 2, h: 10, w: 9, cin: 7, cout: 6, k: [3, 3], stride: [2, 2],
            pad: [0, 0, 1, 1], groups: 1, act: "prelu", bias: true }, 2).await;
    }
}

both! {
    fn conv_grouped_leaky() {
        conv_case("conv groups 3", Conv { n: 1, h: 6, w: 11, cin: 9, cout: 6, k: [3, 2], stride: [1, 2],
            pad: [2, 0, 1, 1], groups: 3, act: "leaky_relu", bias: false }, 3).await;
    }
}

both! {
    // Output channels in fours per group: the executor runs conv2d_x4 / depthwise_x4 (four channels per invocation).
    fn conv_four_channels_per_invocation() {
        conv_case("conv x4", Conv { n: 2, h: 9, w: 7, cin: 5, cout: 12, k: [3, 3], stride: [2, 1],
            pad: [0, 1, 1, 1], groups: 1, act: "prelu", bias: true }, 7).await;
        conv_case("conv x4 groups 2", Conv { n: 1, h: 5, w: 13, cin: 6, cout: 8, k: [1, 3], stride: [1, 2],
            pad: [0, 1, 0, 1], groups: 2, act: "relu", bias: false }, 8).await;
        conv_case("conv x4 1x1", Conv { n: 1, h: 1, w: 1, cin: 37, cout: 4, k: [1, 1], stride: [1, 1],
            pad: [0, 0, 0, 0], groups: 1, act: "leaky_relu", bias: true }, 9).await;
        // Depthwise with channels in fours: depthwise_x4.
        conv_case("depthwise x4", Conv { n: 2, h: 11, w: 6, cin: 12, cout: 12, k: [3, 3], stride: [2, 2],
            pad: [0, 0, 1, 1], groups: 12, act: "prelu", bias: true }, 10).await;
        conv_case("depthwise x4 7x7", Conv { n: 1, h: 7, w: 7, cin: 8, cout: 8, k: [7, 7], stride: [1, 1],
            pad: [0, 0, 0, 0], groups: 8, act: "none", bias: false }, 11).await;
    }
}

both! {
    fn conv_depthwise_prelu_13_channels() {
        conv_case("depthwise", Conv { n: 1, h: 9, w: 9, cin: 13, cout: 13, k: [3, 3], stride: [2, 2],
            pad: [1, 1, 1, 1], groups: 13, act: "prelu", bias: true }, 4).await;
    }
}

both! {
    fn conv_1x1_spatial_and_global_depthwise() {
        conv_case("1x1 on 1x1", Conv { n: 3, h: 1, w: 1, cin: 37, cout: 11, k: [1, 1], stride: [1, 1],
            pad: [0, 0, 0, 0], groups: 1, act: "none", bias: true }, 5).await;
        conv_case("7x7 valid depthwise", Conv { n: 2, h: 7, w: 7, cin: 10, cout: 10, k: [7, 7], stride: [1, 1],
            pad: [0, 0, 0, 0], groups: 10, act: "none", bias: true }, 6).await;
    }
}

both! {
    fn conv_batch_norm_is_folded_exactly() {
        // conv + BN through the engine equals BN applied by hand to the conv without it.
        let mut rng = Rng::new(7);
        let (h, w, cin, cout) = (5, 6, 3, 5);
        let wv = rng.vec(cout * 9 * cin);
        let bv = rng.vec(cout);
        let gamma: Vec<f32> = rng.vec(cout).iter().map(|v| v + 1.5).collect();
        let beta = rng.vec(cout);
        let mean = rng.vec(cout);
        let var: Vec<f32> = rng.vec(cout).iter().map(|v| v.abs() + 0.5).collect();
        let conv = |bn: bool| json!({
            "op": "conv2d", "input": "x", "output": "y", "weight": "w", "bias": "b",
            "kernel": [3, 3], "stride": [1, 1], "pad": [1, 1, 1, 1], "groups": 1, "out_channels": cout,
            "batch_norm": if bn { json!({"gamma": "g", "beta": "be", "mean": "m", "var": "v", "eps": 1e-3}) } else { Value::Null },
        });
        let plain = safetensors_bytes(&[("w", vec![cout, 3, 3, cin], wv.clone()), ("b", vec![cout], bv.clone())]);
        let with_bn = safetensors_bytes(&[
            ("w", vec![cout, 3, 3, cin], wv), ("b", vec![cout], bv),
            ("g", vec![cout], gamma.clone()), ("be", vec![cout], beta.clone()),
            ("m", vec![cout], mean.clone()), ("v", vec![cout], var.clone()),
        ]);
        let input = rng.vec(h * w * cin);
        let raw = Model::load(&f32_graph(h, w, cin, vec![conv(false)], &["y"]), &plain, opts(1), None).unwrap()
            .run_f32(&input).await.unwrap();
        let folded = gpu_matches_cpu("bn", &f32_graph(h, w, cin, vec![conv(true)], &["y"]), &with_bn, opts(1), &input).await;
        for (i, (r, f)) in raw[0].data.iter().zip(&folded[0].data).enumerate() {
            let c = i % cout;
            let want = (r - mean[c]) / (var[c] + 1e-3).sqrt() * gamma[c] + beta[c];
            assert!((want - f).abs() <= 1e-4 * (1.0 + want.abs()), "element {i}: {want} vs {f}");
        }
    }
}

both! {
    fn conv_cpu_twin_hand_values() {
        // A 3x3 all-ones kernel with zero padding sums each 3x3 neighbourhood.
        let graph = f32_graph(3, 3, 1, vec![json!({
            "op": "conv2d", "input": "x", "output": "y", "weight": "w", "bias": null,
            "kernel": [3, 3], "stride": [1, 1], "pad": [1, 1, 1, 1], "groups": 1, "out_channels": 1})], &["y"]);
        let weights = safetensors_bytes(&[("w", vec![1, 3, 3, 1], vec![1.0; 9])]);
        let input: Vec<f32> = (1..=9).map(|v| v as f32).collect();
        let out = gpu_matches_cpu("ones", &graph, &weights, opts(1), &input).await;
        assert_eq!(out[0].data, vec![12.0, 21.0, 16.0, 27.0, 45.0, 33.0, 24.0, 39.0, 28.0]);
    }
}

both! {
    fn add_with_prelu_and_concat_three_inputs() {
        let mut rng = Rng::new(8);
        let (h, w, c) = (5, 3, 7);
        let nodes = vec![
            json!({"op": "conv2d", "input": "x", "output": "a", "weight": "w1", "bias": null, "kernel": [1, 1],
                   "stride": [1, 1], "pad": [0, 0, 0, 0], "groups": 1, "out_channels": c}),
            json!({"op": "add", "inputs": ["x", "a"], "output": "s", "activation": {"prelu": "alpha"}}),
            json!({"op": "conv2d", "input": "x", "output": "b", "weight": "w2", "bias": null, "kernel": [1, 1],
                   "stride": [1, 1], "pad": [0, 0, 0, 0], "groups": 1, "out_channels": 1}),
            json!({"op": "concat", "inputs": ["s", "b", "x"], "output": "cat"}),
        ];
        let weights = safetensors_bytes(&[
            ("w1", vec![c, 1, 1, c], rng.vec(c * c)),
            ("alpha", vec![c], rng.vec(c)),
            ("w2", vec![1, 1, 1, c], rng.vec(c)),
        ]);
        let input = rng.vec(2 * h * w * c);
        let out = gpu_matches_cpu("add+concat", &f32_graph(h, w, c, nodes, &["s", "cat"]), &weights, opts(2), &input).await;
        assert_eq!(out[1].shape, [2, h, w, 2 * c + 1]);
        // The concat's last block is the input itself.
        assert_eq!(out[1].data[c + 1..2 * c + 1], input[0..c]);
    }
}

both! {
    fn upsample_nearest_scale_and_like() {
        let mut rng = Rng::new(9);
        let (h, w, c) = (9, 7, 5);
        let nodes = vec![
            json!({"op": "conv2d", "input": "x", "output": "d", "weight": "w", "bias": null, "kernel": [3, 3],
                   "stride": [2, 2], "pad": [1, 1, 1, 1], "groups": c, "out_channels": c}),
            json!({"op": "upsample_nearest", "input": "d", "output": "u2", "scale": 2}),
            json!({"op": "upsample_nearest", "input": "d", "output": "like", "like": "x"}),
        ];
        let weights = safetensors_bytes(&[("w", vec![c, 3, 3, 1], rng.vec(c * 9))]);
        let input = rng.vec(h * w * c);
        let out = gpu_matches_cpu("upsample", &f32_graph(h, w, c, nodes, &["d", "u2", "like"]), &weights, opts(1), &input).await;
        assert_eq!(out[1].shape, [1, 10, 8, c]);
        assert_eq!(out[2].shape, [1, h, w, c]);
        // Output (8, 6) of the 9x7 map reads source (floor(8*5/9), floor(6*4/7)) = (4, 3).
        let d = &out[0].data;
        let src = (4 * 4 + 3) * c;
        assert_eq!(out[2].data[(8 * w + 6) * c..(8 * w + 6) * c + c], d[src..src + c]);
    }
}

both! {
    fn avg_pool_global_mean_linear_l2() {
        let mut rng = Rng::new(10);
        let (h, w, c) = (7, 6, 5);
        let nodes = vec![
            json!({"op": "avg_pool", "input": "x", "output": "p", "kernel": [3, 3], "stride": [2, 2], "pad": [1, 1, 1, 1]}),
            json!({"op": "global_mean", "input": "x", "output": "m"}),
            json!({"op": "linear", "input": "p", "output": "fc", "weight": "fw", "bias": "fb", "out_features": 11}),
            json!({"op": "l2_normalize", "input": "x", "output": "n", "eps": 1e-12}),
        ];
        let k = 4 * 3 * c;
        let weights = safetensors_bytes(&[("fw", vec![11, k], rng.vec(11 * k)), ("fb", vec![11], rng.vec(11))]);
        let input = rng.vec(3 * h * w * c);
        let out = gpu_matches_cpu("pool/mean/linear/l2", &f32_graph(h, w, c, nodes, &["p", "m", "fc", "n"]), &weights, opts(3), &input).await;
        assert_eq!(out[0].shape, [3, 4, 3, c]);
        // Top-left pooled value: mean of the 2x2 in-bounds taps only.
        let want = (input[0] + input[c] + input[w * c] + input[w * c + c]) / 4.0;
        assert!((out[0].data[0] - want).abs() < 1e-6);
        let mean0: f32 = (0..h * w).map(|i| input[i * c]).sum::<f32>() / (h * w) as f32;
        assert!((out[1].data[0] - mean0).abs() < 1e-6);
        let norm: f32 = out[3].data[..c].iter().map(|v| v * v).sum::<f32>().sqrt();
        assert!((norm - 1.0).abs() < 1e-5);
    }
}

both! {
    fn prep_rgba_to_normalised_rgb_and_bgr() {
        let mut rng = Rng::new(11);
        let (h, w) = (13, 7);
        for order in ["rgb", "bgr"] {
            let graph = json!({
                "format": "facepatch-graph", "version": 1, "name": "prep",
                "input": {"name": "image", "height": h, "width": w, "order": order,
                          "mean": [127.5, 100.0, 3.0], "scale": [0.0078125, 0.5, 2.0]},
                "outputs": ["image"], "nodes": []
            }).to_string();
            let weights = safetensors_bytes(&[]);
            let pixels = rng.bytes(2 * h * w * 4);
            let cpu = Model::load(&graph, &weights, opts(2), None).unwrap();
            let gpu = Model::load(&graph, &weights, opts(2), Some(gpu().await)).unwrap();
            let c = cpu.run_rgba(&pixels).await.unwrap();
            let g = gpu.run_rgba(&pixels).await.unwrap();
            assert_close(order, &g[0], &c[0]);
            let first = if order == "rgb" { pixels[0] } else { pixels[2] };
            assert_eq!(c[0].data[0], (first as f32 - 127.5) * 0.0078125);
            assert_eq!(c[0].data[2], ((if order == "rgb" { pixels[2] } else { pixels[0] }) as f32 - 3.0) * 2.0);
        }
    }
}

both! {
    fn buffers_are_reused_without_corrupting_live_tensors() {
        // A long chain with a skip connection from the start: reuse must keep the skip alive.
        let mut rng = Rng::new(12);
        let (h, w, c) = (6, 5, 6);
        let mut nodes = Vec::new();
        let mut tensors = Vec::new();
        let mut prev = "x".to_string();
        let names: Vec<String> = (0..8).map(|i| format!("w{i}")).collect();
        for (i, name) in names.iter().enumerate() {
            let out = format!("t{i}");
            nodes.push(json!({"op": "conv2d", "input": prev, "output": out, "weight": name, "bias": null,
                "kernel": [3, 3], "stride": [1, 1], "pad": [1, 1, 1, 1], "groups": 1, "out_channels": c,
                "activation": "relu"}));
            tensors.push((name.as_str(), vec![c, 3, 3, c], rng.vec(c * 9 * c).iter().map(|v| v * 0.3).collect()));
            prev = out;
        }
        nodes.push(json!({"op": "add", "inputs": [prev, "t0"], "output": "y"}));
        let input = rng.vec(h * w * c);
        gpu_matches_cpu("chain", &f32_graph(h, w, c, nodes, &["y", "t3"]), &safetensors_bytes(&tensors), opts(1), &input).await;
    }
}

both! {
    fn warp_kernel_matches_cpu_twin_on_awkward_shapes() {
        use facepatch::engine::ops::warp::{self, WarpParams};
        let ctx = gpu().await;
        let mut rng = Rng::new(21);
        for (w, h, ow, oh, m) in [
            (37u32, 23u32, 112u32, 112u32, [0.31f32, -0.12, 3.7, 0.12, 0.31, -2.2]),
            (5, 3, 9, 7, [0.5, 0.0, -0.25, 0.0, 0.5, -0.25]),
            (64, 64, 13, 1, [4.9, 0.0, 0.0, 0.0, 4.9, 10.0]),
            (1, 1, 3, 3, [1.0, 0.0, -1.0, 0.0, 1.0, -1.0]),
        ] {
            let src = rng.bytes((w * h * 4) as usize);
            let p = WarpParams { src_w: w, src_h: h, out_w: ow, out_h: oh, m, _pad: [0.0; 2] };
            let mut cpu = vec![0u8; (ow * oh * 4) as usize];
            warp::cpu(&p, &src, &mut cpu);
            let gpu = ctx.warp(&p, &src).await.unwrap();
            // Same formula; a fused multiply-add may move a value across a rounding boundary.
            let worst = cpu.iter().zip(&gpu).map(|(a, b)| (*a as i32 - *b as i32).abs()).max().unwrap();
            let differing = cpu.iter().zip(&gpu).filter(|(a, b)| a != b).count();
            assert!(worst <= 1 && differing * 200 <= cpu.len(), "{w}x{h}->{ow}x{oh}: max diff {worst}, {differing} differ");
        }
    }
}
