#!/bin/sh
# Regenerates crates/model/src/generated from models/ and fails when the result differs from
# what is committed, so generated code can never drift from the generator or the models.
set -eu
cd "$(dirname "$0")/.."
cargo run --quiet -p carapace-codegen
if ! git diff --exit-code -- crates/model/src/generated; then
    echo "crates/model/src/generated is stale: run 'cargo run -p carapace-codegen' and commit" >&2
    exit 1
fi
untracked=$(git ls-files --others --exclude-standard -- crates/model/src/generated)
if [ -n "$untracked" ]; then
    echo "uncommitted generated files: $untracked" >&2
    exit 1
fi
