//! Python's `repr(float)` (which is also `f"{np.float64}"`), byte for byte.
//!
//! Python prints the shortest digit string that round-trips (ties to even), positional when the
//! decimal exponent is in `-4 <= e < 16` and `d.ddde±XX` otherwise, and always keeps a `.0` on
//! integral positional values. Rust's `{}` differs on all three counts, so the shortest digits
//! come from `ryu` and the layout is done here.

/// Formats `v` exactly as Python's `repr(v)` does.
pub fn repr(v: f64) -> String {
    if v.is_nan() {
        return "nan".to_owned();
    }
    if v.is_infinite() {
        return if v > 0.0 { "inf" } else { "-inf" }.to_owned();
    }
    if v == 0.0 {
        return if v.is_sign_negative() { "-0.0" } else { "0.0" }.to_owned();
    }
    let (negative, digits, point) = shortest_digits(v);
    let mut out = String::new();
    if negative {
        out.push('-');
    }
    // `point` is where the decimal point goes: value = 0.DIGITS * 10^point.
    let decpt = point;
    if -4 < decpt && decpt <= 16 {
        if decpt <= 0 {
            out.push_str("0.");
            for _ in 0..(-decpt) {
                out.push('0');
            }
            out.push_str(&digits);
        } else {
            let decpt = decpt as usize;
            if digits.len() <= decpt {
                out.push_str(&digits);
                for _ in digits.len()..decpt {
                    out.push('0');
                }
                out.push_str(".0");
            } else {
                out.push_str(&digits[..decpt]);
                out.push('.');
                out.push_str(&digits[decpt..]);
            }
        }
    } else {
        let exp = decpt - 1;
        out.push_str(&digits[..1]);
        if digits.len() > 1 {
            out.push('.');
            out.push_str(&digits[1..]);
        }
        out.push('e');
        out.push(if exp < 0 { '-' } else { '+' });
        let abs = exp.unsigned_abs();
        if abs < 10 {
            out.push('0');
        }
        out.push_str(&abs.to_string());
    }
    out
}

/// Shortest round-trip digits of a finite non-zero `v`: (sign, digits without leading or
/// trailing zeros, decimal point position such that value = 0.DIGITS × 10^point).
fn shortest_digits(v: f64) -> (bool, String, i32) {
    let mut buf = ryu::Buffer::new();
    let s = buf.format_finite(v.abs());
    let (mantissa, exp) = match s.find(['e', 'E']) {
        Some(i) => (&s[..i], s[i + 1..].parse::<i32>().unwrap_or(0)),
        None => (s, 0),
    };
    let (int_part, frac_part) = match mantissa.find('.') {
        Some(i) => (&mantissa[..i], &mantissa[i + 1..]),
        None => (mantissa, ""),
    };
    let mut digits: String = int_part.chars().chain(frac_part.chars()).collect();
    let mut point = int_part.len() as i32 + exp;
    let leading = digits.len() - digits.trim_start_matches('0').len();
    digits.drain(..leading);
    point -= leading as i32;
    let trimmed = digits.trim_end_matches('0').len();
    digits.truncate(trimmed);
    (v.is_sign_negative(), digits, point)
}

#[cfg(test)]
mod tests {
    use super::repr;

    #[test]
    fn matches_python_repr() {
        let cases: &[(f64, &str)] = &[
            (0.9533333333333334, "0.9533333333333334"),
            (0.8850000000000001, "0.8850000000000001"),
            (0.7535499999999999, "0.7535499999999999"),
            (0.905974930362117, "0.905974930362117"),
            (0.8121, "0.8121"),
            (1.0, "1.0"),
            (0.5, "0.5"),
            (100.0, "100.0"),
            (1e15, "1000000000000000.0"),
            (1e16, "1e+16"),
            (1.5e16, "1.5e+16"),
            (123456789012345680.0, "1.2345678901234568e+17"),
            (0.0001, "0.0001"),
            (0.00012, "0.00012"),
            (0.00001, "1e-05"),
            (1.5e-5, "1.5e-05"),
            (1e-100, "1e-100"),
            (5e-324, "5e-324"),
            (1.7976931348623157e308, "1.7976931348623157e+308"),
            (-2.5, "-2.5"),
            (0.0, "0.0"),
            (-0.0, "-0.0"),
            (f64::NAN, "nan"),
            (f64::INFINITY, "inf"),
            (f64::NEG_INFINITY, "-inf"),
            (0.1 + 0.2, "0.30000000000000004"),
            (1.0 / 3.0, "0.3333333333333333"),
            (2.0 / 3.0, "0.6666666666666666"),
            (123.456, "123.456"),
            (9999999999999998.0, "9999999999999998.0"),
        ];
        for &(v, want) in cases {
            assert_eq!(repr(v), want, "repr({v:e})");
        }
    }

    #[test]
    fn exact_ties_round_to_even_like_python() {
        // 3.9819107055664062 is exactly halfway at 17 digits; Python (and ryu) keep the even
        // digit where Rust's std formatting prints ...063.
        let v = 3.981_910_705_566_406_2_f64;
        assert_eq!(repr(v), "3.9819107055664062");
        assert_ne!(format!("{v:?}"), repr(v));
    }
}
