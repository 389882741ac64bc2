#!/bin/bash -eu
# Builds every cargo-fuzz target of natsim for ClusterFuzzLite / OSS-Fuzz (which provide cargo
# fuzz and the sanitizer flags) and ships each target's committed seeds as its seed corpus.
cd "$SRC/natsim"
cargo fuzz build -O
for target in $(cargo fuzz list); do
    cp "fuzz/target/x86_64-unknown-linux-gnu/release/$target" "$OUT/"
    if [ -d "fuzz/corpus/$target" ]; then
        (cd "fuzz/corpus/$target" && zip -q -r "$OUT/${target}_seed_corpus.zip" .)
    fi
done
