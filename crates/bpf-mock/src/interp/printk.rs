//! The `bpf_trace_printk` format subset: `%d %i %u %x %X %c %s %p %%` with `l`/`ll`, flags
//! `-0+ #` and a width; `%pI4`/`%pi4` print dotted quads.

use super::memory::RunState;

/// Formats `fmt` (up to its NUL) with `args`.
pub(crate) fn format(st: &RunState, fmt: &[u8], args: &[u64]) -> Vec<u8> {
    let fmt = match fmt.iter().position(|&b| b == 0) {
        Some(n) => &fmt[..n],
        None => fmt,
    };
    let mut out = Vec::new();
    let mut args = args.iter().copied();
    let mut i = 0;
    while i < fmt.len() {
        let c = fmt[i];
        i += 1;
        if c != b'%' {
            out.push(c);
            continue;
        }
        if fmt.get(i) == Some(&b'%') {
            out.push(b'%');
            i += 1;
            continue;
        }
        let (mut left, mut zero, mut plus, mut space) = (false, false, false, false);
        while let Some(&f) = fmt.get(i) {
            match f {
                b'-' => left = true,
                b'0' => zero = true,
                b'+' => plus = true,
                b' ' => space = true,
                b'#' => {}
                _ => break,
            }
            i += 1;
        }
        let mut width = 0usize;
        while let Some(d) = fmt.get(i).filter(|d| d.is_ascii_digit()) {
            width = width * 10 + (d - b'0') as usize;
            i += 1;
        }
        let mut longs = 0;
        while fmt.get(i) == Some(&b'l') {
            longs += 1;
            i += 1;
        }
        let Some(&conv) = fmt.get(i) else { break };
        i += 1;
        let v = args.next().unwrap_or(0);
        let narrow = |v: u64| if longs == 0 { v as u32 as u64 } else { v };
        let text: Vec<u8> = match conv {
            b'd' | b'i' => {
                let s = if longs == 0 {
                    v as u32 as i32 as i64
                } else {
                    v as i64
                };
                let sign = if s >= 0 && plus {
                    "+"
                } else if s >= 0 && space {
                    " "
                } else {
                    ""
                };
                format!("{sign}{s}").into_bytes()
            }
            b'u' => narrow(v).to_string().into_bytes(),
            b'x' => format!("{:x}", narrow(v)).into_bytes(),
            b'X' => format!("{:X}", narrow(v)).into_bytes(),
            b'o' => format!("{:o}", narrow(v)).into_bytes(),
            b'c' => vec![v as u8],
            b's' => st
                .read_cstr(v, 1024)
                .unwrap_or_else(|_| b"(efault)".to_vec()),
            b'p' => match (fmt.get(i), fmt.get(i + 1)) {
                (Some(b'I' | b'i'), Some(b'4')) => {
                    i += 2;
                    match st.read_bytes(v, 4) {
                        Ok(b) => format!("{}.{}.{}.{}", b[0], b[1], b[2], b[3]).into_bytes(),
                        Err(_) => b"(efault)".to_vec(),
                    }
                }
                (Some(b'K' | b'x'), _) => {
                    i += 1;
                    format!("{v:016x}").into_bytes()
                }
                _ => format!("0x{v:x}").into_bytes(),
            },
            other => vec![b'%', other],
        };
        let pad = width.saturating_sub(text.len());
        if left {
            out.extend_from_slice(&text);
            out.extend(std::iter::repeat_n(b' ', pad));
        } else if zero && conv != b's' && conv != b'c' {
            let (sign, digits) = match text.first() {
                Some(b'-' | b'+' | b' ') => text.split_at(1),
                _ => text.split_at(0),
            };
            out.extend_from_slice(sign);
            out.extend(std::iter::repeat_n(b'0', pad));
            out.extend_from_slice(digits);
        } else {
            out.extend(std::iter::repeat_n(b' ', pad));
            out.extend_from_slice(&text);
        }
    }
    out
}
