//! Replays every committed fuzz corpus file (`fuzz/corpus/<target>/`) through its target, so
//! `cargo test --workspace` keeps every input the fuzzers were seeded with or found passing.

use std::path::PathBuf;

use sessionkit_fuzz_targets::{TARGETS, replay_dir};

#[test]
fn every_corpus_file_replays_without_a_crash() {
    let corpus = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../corpus");
    for (name, target) in TARGETS {
        let count = replay_dir(&corpus.join(name), *target);
        assert!(count > 0, "the corpus of {name} is empty");
        println!("{name}: {count} corpus files replayed");
    }
}
