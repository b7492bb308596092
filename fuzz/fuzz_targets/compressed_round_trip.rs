#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| sessionkit_fuzz_targets::compressed_round_trip(data));
