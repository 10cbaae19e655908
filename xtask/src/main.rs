//! `cargo xtask`: the project's automation, one module per subcommand.
//!
//! Kept small on purpose (house style): plain argument parsing, no workspace library crates.

mod bench;
mod build_bpf;
mod codegen;
mod debian;
mod demo;
mod setup;
mod test;
mod util;
mod vm_test;

use std::process::ExitCode;

const USAGE: &str = "\
usage: cargo xtask <command> [options]

commands:
  setup              install the Debian packages the project needs (only what is missing)
  build-bpf          compile bpf-progs/*.c with clang into target/bpf/
  codegen [--check]  regenerate crates/bpf-sys/src/uapi.rs and enums.rs (--check: fail on drift)
  test               setup, build-bpf, unit tests, kernel tests (strict), VM tests
  vm-test [--kernel 5.10|6.1|6.12|all]
                     run the kernel tests inside a Debian kernel under qemu (default 6.1)
  demo               build, load and attach the example programs in a private namespace
  bench              run the benchmarks and write docs/benchmarks.md
";

/// The result every subcommand returns: an error is a message for a person.
pub type Result<T = ()> = std::result::Result<T, String>;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some((cmd, rest)) = args.split_first() else {
        eprint!("{USAGE}");
        return ExitCode::from(2);
    };
    let result = match cmd.as_str() {
        "setup" => setup::run(rest),
        "build-bpf" => build_bpf::run(rest),
        "codegen" => codegen::run(rest),
        "test" => test::run(rest),
        "vm-test" => vm_test::run(rest),
        "demo" => demo::run(rest),
        "bench" => bench::run(rest),
        "-h" | "--help" | "help" => {
            print!("{USAGE}");
            Ok(())
        }
        other => Err(format!("unknown command `{other}`\n{USAGE}")),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(msg) => {
            eprintln!("xtask {cmd}: {msg}");
            ExitCode::FAILURE
        }
    }
}
