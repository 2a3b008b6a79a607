//! Python's `repr(float)` in Rust.
//!
//! Python prints the shortest string that round-trips (David Gay's algorithm, mode 0), in
//! fixed notation when the decimal exponent `e` of the leading digit satisfies
//! `-4 <= e < 16`, otherwise in scientific notation with a sign and at least two exponent
//! digits (`1e-05`, `1.5e+16`). Fixed notation always shows a fractional part (`1.0`).
//! Rust's `{:e}` formatting also prints the shortest round-tripping digits, so the digits
//! are taken from it and only the layout is Python's.

use std::fmt::Write as _;

/// `{:e}` of any `f64` fits: "-1.7976931348623157e308" is 23 bytes.
#[derive(Default)]
struct StackBuf {
    buf: [u8; 32],
    len: usize,
}

impl StackBuf {
    fn as_str(&self) -> &str {
        // Only whole `&str`s are copied in, so the bytes are UTF-8.
        std::str::from_utf8(&self.buf[..self.len]).unwrap_or("")
    }
}

impl std::fmt::Write for StackBuf {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        let end = self.len + s.len();
        let dst = self.buf.get_mut(self.len..end).ok_or(std::fmt::Error)?;
        dst.copy_from_slice(s.as_bytes());
        self.len = end;
        Ok(())
    }
}

/// Appends `repr(value)` as CPython 3 writes it.
///
/// ```
/// let mut out = Vec::new();
/// perf_table::write_python_float(&mut out, 1e-05);
/// assert_eq!(out, b"1e-05");
/// ```
pub fn write_python_float(out: &mut Vec<u8>, value: f64) {
    if value.is_nan() {
        out.extend_from_slice(b"nan");
        return;
    }
    if value.is_infinite() {
        out.extend_from_slice(if value > 0.0 { b"inf" } else { b"-inf" });
        return;
    }
    // `{:e}` gives e.g. "-1.2345e-7", "0e0", "1e16": shortest round-trip digits. Formatted
    // on the stack: the tracker writes four floats per row, and two heap allocations per
    // float showed in its profile.
    let mut sci = StackBuf::default();
    if write!(sci, "{value:e}").is_err() {
        return;
    }
    let sci = sci.as_str();
    let (mantissa, exp) = sci.split_once('e').unwrap_or((sci, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    let (negative, mantissa) = match mantissa.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, mantissa),
    };
    let mut digit_buf = [0u8; 32];
    let mut n = 0;
    for d in mantissa.bytes().filter(u8::is_ascii_digit) {
        digit_buf[n] = d;
        n += 1;
    }
    let digits = &digit_buf[..n];
    if negative {
        out.push(b'-');
    }
    if (-4..16).contains(&exp) {
        if exp < 0 {
            out.extend_from_slice(b"0.");
            out.extend(std::iter::repeat_n(b'0', (-exp - 1) as usize));
            out.extend_from_slice(digits);
        } else {
            let int_len = exp as usize + 1;
            if digits.len() <= int_len {
                out.extend_from_slice(digits);
                out.extend(std::iter::repeat_n(b'0', int_len - digits.len()));
                out.extend_from_slice(b".0");
            } else {
                out.extend_from_slice(&digits[..int_len]);
                out.push(b'.');
                out.extend_from_slice(&digits[int_len..]);
            }
        }
    } else {
        out.push(digits[0]);
        if digits.len() > 1 {
            out.push(b'.');
            out.extend_from_slice(&digits[1..]);
        }
        out.push(b'e');
        out.push(if exp < 0 { b'-' } else { b'+' });
        let abs = exp.unsigned_abs();
        if abs < 10 {
            out.push(b'0');
        }
        out.extend_from_slice(itoa::Buffer::new().format(abs).as_bytes());
    }
}

#[cfg(test)]
mod tests {
    use super::write_python_float;

    fn repr(v: f64) -> String {
        let mut out = Vec::new();
        write_python_float(&mut out, v);
        String::from_utf8(out).unwrap()
    }

    #[test]
    // 3.1415926535 is a compat fixture value, not an attempt at π.
    #[allow(clippy::approx_constant)]
    fn matches_cpython_repr() {
        // Each pair was printed by CPython 3.11's repr().
        let cases: &[(f64, &str)] = &[
            (0.0, "0.0"),
            (-0.0, "-0.0"),
            (1.0, "1.0"),
            (0.01, "0.01"),
            (1e-05, "1e-05"),
            (0.0001, "0.0001"),
            (0.00012, "0.00012"),
            (123456.789, "123456.789"),
            (3.1415926535, "3.1415926535"),
            (1722449000.45, "1722449000.45"),
            (1722449999.0, "1722449999.0"),
            (100.0, "100.0"),
            (1e15, "1000000000000000.0"),
            (1e16, "1e+16"),
            (1.5e16, "1.5e+16"),
            (1.2345e-7, "1.2345e-07"),
            (1e100, "1e+100"),
            (5e-324, "5e-324"),
            (1.7976931348623157e308, "1.7976931348623157e+308"),
            (0.1 + 0.2, "0.30000000000000004"),
            (-2.5, "-2.5"),
            (f64::INFINITY, "inf"),
            (f64::NEG_INFINITY, "-inf"),
            (f64::NAN, "nan"),
        ];
        for (value, expected) in cases {
            assert_eq!(repr(*value), *expected, "repr({value:?})");
        }
    }

    proptest::proptest! {
        #[test]
        fn round_trips(bits in proptest::num::u64::ANY) {
            let v = f64::from_bits(bits);
            proptest::prop_assume!(v.is_finite());
            let s = repr(v);
            proptest::prop_assert_eq!(s.parse::<f64>().unwrap().to_bits(), v.to_bits());
        }
    }
}
