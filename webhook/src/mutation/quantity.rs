//! Kubernetes resource quantities (`50m`, `16Mi`, `1e3`), parsed with the API server's grammar so a
//! bad flag fails at startup and a bad `injector-resources` annotation is denied, instead of the API
//! server rejecting the pod the webhook patched.

use std::fmt;
use std::str::FromStr;

/// A non-negative quantity: the text as written and its value in units of 10^-9, which is the
/// API server's finest precision (finer values are rounded up, as it does).
#[derive(Clone, Debug)]
pub struct Quantity {
    text: String,
    nanos: u128,
}

impl Quantity {
    /// The quantity as written.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// The value in units of 10^-9 (saturating far above anything a cluster accepts).
    pub fn nanos(&self) -> u128 {
        self.nanos
    }

    /// For clap's `value_parser`.
    pub fn parse_flag(text: &str) -> Result<Self, String> {
        text.parse()
    }
}

impl PartialEq for Quantity {
    /// Equal values are equal quantities (`0.5` and `500m`), as the API server compares them.
    fn eq(&self, other: &Self) -> bool {
        self.nanos == other.nanos
    }
}

impl Eq for Quantity {}

impl fmt::Display for Quantity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl FromStr for Quantity {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        let invalid = || {
            format!(
                "{text:?} is not a Kubernetes quantity; write a number with an optional suffix, \
                 such as 50m, 0.5, 64Mi or 1G"
            )
        };
        let unsigned = match text.as_bytes().first() {
            Some(b'-') => {
                return Err(format!(
                    "{text:?} is negative; a quantity here must be >= 0"
                ));
            }
            Some(b'+') => &text[1..],
            Some(_) => text,
            None => return Err(invalid()),
        };
        let number_len = unsigned
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(unsigned.len());
        let (number, suffix) = unsigned.split_at(number_len);
        let (int_part, frac_part) = number.split_once('.').unwrap_or((number, ""));
        if (int_part.is_empty() && frac_part.is_empty()) || frac_part.contains('.') {
            return Err(invalid());
        }
        let (decimal_exp, binary_exp) = suffix_exponents(suffix).ok_or_else(invalid)?;
        let mut mantissa: u128 = 0;
        for digit in int_part.bytes().chain(frac_part.bytes()) {
            mantissa = mantissa
                .saturating_mul(10)
                .saturating_add(u128::from(digit - b'0'));
        }
        let frac_len = i64::try_from(frac_part.len()).map_err(|_| invalid())?;
        let scale = decimal_exp.saturating_add(9).saturating_sub(frac_len);
        let nanos = scale_value(mantissa, binary_exp, scale);
        Ok(Self {
            text: text.to_owned(),
            nanos,
        })
    }
}

/// The power of ten and the power of two (in steps of 2^10) a suffix stands for.
fn suffix_exponents(suffix: &str) -> Option<(i64, u32)> {
    let decimal = |exp| Some((exp, 0));
    match suffix {
        "" => decimal(0),
        "n" => decimal(-9),
        "u" => decimal(-6),
        "m" => decimal(-3),
        "k" => decimal(3),
        "M" => decimal(6),
        "G" => decimal(9),
        "T" => decimal(12),
        "P" => decimal(15),
        "E" => decimal(18),
        "Ki" => Some((0, 1)),
        "Mi" => Some((0, 2)),
        "Gi" => Some((0, 3)),
        "Ti" => Some((0, 4)),
        "Pi" => Some((0, 5)),
        "Ei" => Some((0, 6)),
        _ => {
            let exponent = suffix.strip_prefix(['e', 'E'])?;
            let digits = exponent.strip_prefix(['+', '-']).unwrap_or(exponent);
            if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            // Exponents this large saturate either way; clamping keeps the arithmetic finite.
            let value: i64 = digits.get(..digits.len().min(6))?.parse().ok()?;
            Some((
                if exponent.starts_with('-') {
                    -value
                } else {
                    value
                },
                0,
            ))
        }
    }
}

/// `mantissa * 1024^binary_exp * 10^scale`, rounded up to an integer, saturating.
fn scale_value(mantissa: u128, binary_exp: u32, scale: i64) -> u128 {
    let mut value = mantissa;
    for _ in 0..binary_exp {
        value = value.saturating_mul(1024);
    }
    if scale >= 0 {
        for _ in 0..scale.min(40) {
            value = value.saturating_mul(10);
        }
        value
    } else {
        let divisor = u32::try_from(-scale)
            .ok()
            .and_then(|exp| 10u128.checked_pow(exp));
        match divisor {
            Some(divisor) => value.div_ceil(divisor),
            None => u128::from(value > 0),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nanos(text: &str) -> u128 {
        text.parse::<Quantity>().unwrap().nanos()
    }

    #[test]
    fn parses_every_suffix_form() {
        assert_eq!(nanos("1"), 1_000_000_000);
        assert_eq!(nanos("50m"), 50_000_000);
        assert_eq!(nanos("0.5"), 500_000_000);
        assert_eq!(nanos(".5"), 500_000_000);
        assert_eq!(nanos("2."), 2_000_000_000);
        assert_eq!(nanos("+3"), 3_000_000_000);
        assert_eq!(nanos("16Mi"), 16 * 1024 * 1024 * 1_000_000_000);
        assert_eq!(nanos("1Ki"), 1024 * 1_000_000_000);
        assert_eq!(nanos("1k"), 1000 * 1_000_000_000);
        assert_eq!(nanos("1e3"), nanos("1k"));
        assert_eq!(nanos("1E-3"), nanos("1m"));
        assert_eq!(nanos("5n"), 5);
        assert_eq!(nanos("7u"), 7000);
        assert_eq!(nanos("1.5Gi"), 1536 * 1024 * 1024 * 1_000_000_000);
        assert_eq!(nanos("0"), 0);
    }

    #[test]
    fn equal_values_are_equal_quantities() {
        assert_eq!("0.5".parse::<Quantity>(), "500m".parse::<Quantity>());
        assert_eq!("1Gi".parse::<Quantity>(), "1024Mi".parse::<Quantity>());
        assert_ne!("1G".parse::<Quantity>(), "1Gi".parse::<Quantity>());
    }

    #[test]
    fn rounds_up_below_nano_and_saturates_huge_values() {
        assert_eq!(nanos("0.0000000001"), 1);
        assert_eq!(nanos("1e-30"), 1);
        assert_eq!(nanos("0e-30"), 0);
        assert_eq!(nanos("1e999999999"), u128::MAX);
        assert_eq!(
            nanos("99999999999999999999999999999999999999999Ei"),
            u128::MAX
        );
    }

    #[test]
    fn rejects_what_the_api_server_rejects() {
        for bad in [
            "", "m", "Mi", ".", "1..2", "1.2.3", "1MB", "1mi", "1 Mi", "1e", "1e+", "1ee3", "0x10",
            "1Mi ", "abc", "1.5.Mi", "--1",
        ] {
            let err = bad.parse::<Quantity>().unwrap_err();
            assert!(
                err.contains("is not a Kubernetes quantity") || err.contains("negative"),
                "{bad}: {err}"
            );
        }
        let err = "-1".parse::<Quantity>().unwrap_err();
        assert_eq!(err, "\"-1\" is negative; a quantity here must be >= 0");
    }

    #[test]
    fn keeps_the_text_as_written() {
        let q: Quantity = "0.5".parse().unwrap();
        assert_eq!(q.as_str(), "0.5");
        assert_eq!(q.to_string(), "0.5");
    }
}
