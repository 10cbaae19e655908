//! `BPF_PROG_TEST_RUN`: run a loaded program on given input, without attaching it.

use std::time::Duration;

use bpf_sys::prog::{self, TestRunAttr};

use crate::error::ProgramError;
use crate::program::KernelProgram;

/// The input of a test run.
///
/// ```no_run
/// # use bpf_attach::{KernelProgram, TestRun};
/// # fn f(p: &KernelProgram) -> Result<(), bpf_attach::ProgramError> {
/// let packet = [0u8; 64];
/// let out = p.test_run(&TestRun::with_data(&packet).repeat(100))?;
/// println!("returned {} in {:?} on average", out.return_value, out.duration);
/// # Ok(()) }
/// ```
#[derive(Debug, Clone, Default)]
pub struct TestRun<'a> {
    /// Packet or input data.
    pub data: &'a [u8],
    /// The context (`__sk_buff`, `xdp_md`...) to run with; empty for the kernel's default.
    pub context: &'a [u8],
    /// Bytes of output data to make room for (0: as much as the input, plus 256 for programs
    /// that grow the packet).
    pub data_out_size: Option<usize>,
    /// Bytes of output context to make room for (0: none).
    pub context_out_size: usize,
    /// Runs; the duration is their average (0 counts as 1).
    pub repeat: u32,
    /// `BPF_F_TEST_*` flags.
    pub flags: u32,
    /// The CPU to run on, with `BPF_F_TEST_RUN_ON_CPU`.
    pub cpu: u32,
}

impl<'a> TestRun<'a> {
    /// A run on this data.
    pub fn with_data(data: &'a [u8]) -> Self {
        TestRun {
            data,
            ..TestRun::default()
        }
    }

    /// Runs this many times.
    pub fn repeat(mut self, repeat: u32) -> Self {
        self.repeat = repeat;
        self
    }

    /// Runs with this context.
    pub fn context(mut self, context: &'a [u8], out_size: usize) -> Self {
        self.context = context;
        self.context_out_size = out_size;
        self
    }
}

/// What a test run gave.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TestRunOutput {
    /// The program's return value (`XDP_PASS`, a socket filter's length...).
    pub return_value: u32,
    /// The average duration of one run.
    pub duration: Duration,
    /// The data after the run (cut to the buffer when the kernel had more:
    /// [`TestRunOutput::data_size`] says how much).
    pub data: Vec<u8>,
    /// The size of the output data as the kernel reported it.
    pub data_size: usize,
    /// The context after the run.
    pub context: Vec<u8>,
}

impl KernelProgram {
    /// Runs the loaded program on `run`'s input (`BPF_PROG_TEST_RUN`).
    #[doc(alias = "BPF_PROG_TEST_RUN")]
    #[doc(alias = "BPF_PROG_RUN")]
    pub fn test_run(&self, run: &TestRun<'_>) -> Result<TestRunOutput, ProgramError> {
        let fd = self.require_fd("test-run")?;
        let mut data_out = vec![0u8; run.data_out_size.unwrap_or(run.data.len() + 256)];
        let mut ctx_out = vec![0u8; run.context_out_size];
        let mut attr = TestRunAttr {
            data_in: run.data,
            data_out: (!data_out.is_empty()).then_some(&mut data_out[..]),
            ctx_in: run.context,
            ctx_out: (!ctx_out.is_empty()).then_some(&mut ctx_out[..]),
            repeat: run.repeat,
            flags: run.flags,
            cpu: run.cpu,
            batch_size: 0,
        };
        let r = prog::test_run(fd, &mut attr).map_err(|source| ProgramError::TestRun {
            program: self.name().to_string(),
            source,
        })?;
        let data_size = r.data_size_out as usize;
        data_out.truncate(data_size);
        ctx_out.truncate(r.ctx_size_out as usize);
        Ok(TestRunOutput {
            return_value: r.retval,
            duration: Duration::from_nanos(u64::from(r.duration_ns)),
            data: data_out,
            data_size,
            context: ctx_out,
        })
    }
}
