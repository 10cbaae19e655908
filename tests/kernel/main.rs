//! The kernel test binary: every group of kernel tests, run by `tests::main`.
//!
//! Run as root: `cargo xtask test` (host, strict) or `cargo xtask vm-test` (qemu).

mod attach_net;
#[path = "core.rs"]
mod co_re;
mod examples;
mod harness;
mod interp_diff;
mod loader;
mod maps;
mod mock_diff;
mod perf;
mod programs;
mod sys_bpf;
mod sys_perf;
mod tracing;

fn main() -> std::process::ExitCode {
    tests::main(&[
        ("harness", harness::TESTS),
        ("interp_diff", interp_diff::TESTS),
        ("sys_perf", sys_perf::TESTS),
        ("sys_bpf", sys_bpf::TESTS),
        ("perf", perf::TESTS),
        ("loader", loader::TESTS),
        ("programs", programs::TESTS),
        ("attach_net", attach_net::TESTS),
        ("examples", examples::TESTS),
        ("maps", maps::TESTS),
        ("mock_diff", mock_diff::TESTS),
        ("core", co_re::TESTS),
        ("tracing", tracing::TESTS),
    ])
}
