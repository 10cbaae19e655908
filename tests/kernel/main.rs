//! The kernel test binary.
fn main() {}
