// The Node.js options the bridge runs under, wherever it is started: here for the benches, and
// written out in package.json's `start` and bin/voip-bridge.js's first line (keep the three alike).
// Semispaces of 4 MiB instead of 16: idle RSS ~147 → ~120 MiB, for a few per cent of ingest
// (more frequent, shorter scavenges). The old generation may grow to twice what a full collection
// left before the next (V8 picks up to 4× when collections are cheap): peak RSS under the ingest
// bench ~250 → ~175 MiB for ~3 % more CPU per push, with no cap to run out of — measured in
// docs/decisions.md.
export const BRIDGE_NODE_ARGS = ["--max-semi-space-size=4", "--heap-growing-percent=100"]
