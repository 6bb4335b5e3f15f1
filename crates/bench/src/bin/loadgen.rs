//! `loadgen`: the embedded endpoint against moto (see
//! `sqs_barrier_bench::loadgen`).

fn main() {
    sqs_barrier_bench::loadgen::main();
}
