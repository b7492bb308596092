//! Encode/decode cost of the reference session (5 keys, 213 bytes of compact JSON), with
//! `serde_json::to_string` of the same map as the in-run baseline, and the previous
//! Django-byte-identical encode (real zlib at level 6, state reused) as the baseline of the
//! encode.
//!
//! Run: `cargo bench -p sessionkit-codec --bench codec -- --quick`

use std::hint::black_box;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use criterion::{Criterion, criterion_group, criterion_main};
use flate2::{Compress, Compression, Decompress, FlushCompress, FlushDecompress};
use serde_json::{Value, json};
use sessionkit_codec::json::to_python_json;
use sessionkit_codec::key::new_session_key;
use sessionkit_codec::{SESSION_STORE_SALT, SessionCodec, SessionMap};

const NOW: i64 = 1_750_000_000;

fn payload() -> SessionMap {
    let v = json!({
        "_auth_user_id": "1234567",
        "_auth_user_backend": "django.contrib.auth.backends.ModelBackend",
        "_auth_user_hash": "705d8f9675f5d141680c20ceb39e05ad026064c3af07dc302135783e64af102a",
        "cart": [101, 202, 303],
        "theme": "dark",
    });
    match v {
        Value::Object(m) => m,
        _ => unreachable!("the payload literal is an object"),
    }
}

fn codec_benches(c: &mut Criterion) {
    let session = payload();
    let value = Value::Object(session.clone());
    let codec = SessionCodec::new(
        SESSION_STORE_SALT,
        b"django-insecure-bench-key",
        &[b"old".to_vec()],
    );
    let encoded = codec
        .encode(&session, NOW)
        .expect("the payload is storable");
    assert_eq!(
        encoded.session_json.len(),
        213,
        "the reference payload is 213 bytes of JSON"
    );
    assert!(
        encoded.session_data.starts_with('.'),
        "the reference payload compresses"
    );

    c.bench_function("serde_json::to_string (baseline)", |b| {
        b.iter(|| serde_json::to_string(black_box(&value)))
    });
    c.bench_function("to_python_json", |b| {
        b.iter(|| to_python_json(black_box(&value)))
    });
    c.bench_function("encode (json+deflate+b64+hmac)", |b| {
        b.iter(|| codec.encode(black_box(&session), NOW))
    });
    // Before: the same steps with real zlib at level 6 (byte-identical with Django), as
    // SessionCodec::encode did until issue 11: JSON, deflate with a reused state, base64, HMAC.
    let mut zlib = Compress::new(Compression::new(6), true);
    let mut zlib_out = Vec::with_capacity(512);
    c.bench_function("encode, before: zlib level 6 (baseline)", |b| {
        b.iter(|| {
            let json = to_python_json(black_box(&value)).expect("storable");
            zlib.reset();
            zlib_out.clear();
            zlib.compress_vec(json.as_bytes(), &mut zlib_out, FlushCompress::Finish)
                .expect("deflate");
            let mut payload = String::with_capacity(json.len() * 4 / 3 + 64);
            if zlib_out.len() + 1 < json.len() {
                payload.push('.');
                URL_SAFE_NO_PAD.encode_string(&zlib_out, &mut payload);
            } else {
                URL_SAFE_NO_PAD.encode_string(json.as_bytes(), &mut payload);
            }
            codec.sign_payload(&payload, NOW)
        })
    });
    c.bench_function("decode (hmac+b64+inflate+json)", |b| {
        b.iter(|| codec.decode(black_box(&encoded.session_data), None, NOW))
    });
    let old = SessionCodec::new(SESSION_STORE_SALT, b"old", &[])
        .encode(&session, NOW)
        .expect("the bench session encodes");
    c.bench_function("decode via fallback key", |b| {
        b.iter(|| codec.decode(black_box(&old.session_data), None, NOW))
    });
    c.bench_function("decode tampered (bad signature)", |b| {
        let mut bad = encoded.session_data.clone();
        bad.replace_range(5..6, if &bad[5..6] == "A" { "B" } else { "A" });
        b.iter(|| codec.decode(black_box(&bad), None, NOW))
    });
    c.bench_function("new_session_key", |b| b.iter(new_session_key));

    // The zlib step alone (real zlib, level 6, state reused with reset()), to attribute the
    // encode/decode figures: this is the part Django compatibility makes unavoidable.
    let json = encoded.session_json.clone();
    let mut deflate = Compress::new(Compression::new(6), true);
    let mut out = Vec::with_capacity(512);
    c.bench_function("zlib deflate 213 B (reused state)", |b| {
        b.iter(|| {
            deflate.reset();
            out.clear();
            deflate.compress_vec(black_box(json.as_bytes()), &mut out, FlushCompress::Finish)
        })
    });
    deflate.reset();
    out.clear();
    deflate
        .compress_vec(json.as_bytes(), &mut out, FlushCompress::Finish)
        .expect("zlib compresses into a vector that grows");
    let compressed = out.clone();
    let mut inflate = Decompress::new(true);
    let mut plain = Vec::with_capacity(512);
    c.bench_function("zlib inflate to 213 B (reused state)", |b| {
        b.iter(|| {
            inflate.reset(true);
            plain.clear();
            inflate.decompress_vec(black_box(&compressed), &mut plain, FlushDecompress::Finish)
        })
    });
}

criterion_group!(benches, codec_benches);
criterion_main!(benches);
