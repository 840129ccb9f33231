//! Money, rates, currencies and the discount formula.
//!
//! Amounts are `rust_decimal::Decimal` with at most two decimal places (the minor unit 0.01),
//! parsed from a strict decimal grammar so that `"1e3"`, `" 5"` or `"+5"` never sneak in, and
//! always written back in one canonical form (`"1234.50"`). Floats never appear. The discount
//! proceeds are computed in exact integer arithmetic and rounded half-even once, at the end.

use rust_decimal::Decimal;
#[cfg(test)]
use rust_decimal::RoundingStrategy;

/// The largest amount the ledger accepts, 999,999,999,999,999.99 (mantissa 10^17 - 1 at scale
/// 2). Far above any real invoice, far below the point where sums of many amounts could
/// overflow a `Decimal`. Obligor totals are held under it too (see `machine::credit_limit`).
pub const AMOUNT_MAX: Decimal = Decimal::from_parts(1_569_325_055, 23_283_064, 0, false, 2);

/// Most decimal places accepted in a rate (`0.04250000`).
pub const RATE_SCALE_MAX: u32 = 8;

/// Milliseconds in a day, for the discount's whole days.
pub const DAY_MS: u64 = 86_400_000;

/// Why a money value was refused. The caller adds which field it was.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MoneyError {
    /// Not of the form `digits[.digits]`.
    #[error("not a plain decimal number")]
    NotDecimal,
    /// More than two decimal places.
    #[error("more than two decimal places")]
    TooManyDecimals,
    /// Zero where a positive amount is required.
    #[error("must be greater than zero")]
    NotPositive,
    /// Above [`AMOUNT_MAX`].
    #[error("above the maximum amount")]
    TooLarge,
    /// A rate outside [0, 1] or with more than [`RATE_SCALE_MAX`] decimal places.
    #[error("rate must be between 0 and 1 with at most 8 decimal places")]
    BadRate,
    /// Not a three-letter upper-case ISO 4217 code.
    #[error("currency must be a three-letter ISO 4217 code")]
    BadCurrency,
}

/// Checks the plain decimal grammar `[0-9]{1,20}(\.[0-9]{1,10})?` and parses it. A leading sign,
/// exponent, whitespace or empty part is refused, so the grammar alone rules out negatives.
fn parse_plain_decimal(text: &str) -> Result<Decimal, MoneyError> {
    let (whole, fraction) = match text.split_once('.') {
        Some((whole, fraction)) => (whole, Some(fraction)),
        None => (text, None),
    };
    let digits = |part: &str, max: usize| {
        !part.is_empty() && part.len() <= max && part.bytes().all(|b| b.is_ascii_digit())
    };
    if !digits(whole, 20) || !fraction.is_none_or(|f| digits(f, 10)) {
        return Err(MoneyError::NotDecimal);
    }
    Decimal::from_str_exact(text).map_err(|_| MoneyError::NotDecimal)
}

/// Parses an amount: non-negative, at most two decimal places (trailing zeros beyond are
/// accepted: `"1.500"` is one and a half), at most [`AMOUNT_MAX`]. Returns it with scale 2.
pub fn parse_amount(text: &str) -> Result<Decimal, MoneyError> {
    let value = parse_plain_decimal(text)?;
    if value.normalize().scale() > 2 {
        return Err(MoneyError::TooManyDecimals);
    }
    if value > AMOUNT_MAX {
        return Err(MoneyError::TooLarge);
    }
    Ok(with_scale_2(value))
}

/// [`parse_amount`], and the amount must be greater than zero.
pub fn parse_positive_amount(text: &str) -> Result<Decimal, MoneyError> {
    let value = parse_amount(text)?;
    if value.is_zero() {
        return Err(MoneyError::NotPositive);
    }
    Ok(value)
}

/// Parses an annual rate: a plain decimal in [0, 1] with at most [`RATE_SCALE_MAX`] places.
pub fn parse_rate(text: &str) -> Result<Decimal, MoneyError> {
    let value = parse_plain_decimal(text).map_err(|_| MoneyError::BadRate)?;
    if value.normalize().scale() > RATE_SCALE_MAX || value > Decimal::ONE {
        return Err(MoneyError::BadRate);
    }
    Ok(value.normalize())
}

/// Checks an ISO 4217 code's form: three upper-case ASCII letters. The ledger does not keep the
/// ISO list (codes are added over the years); the registrar's onboarding decides which are used.
pub fn check_currency(code: &str) -> Result<(), MoneyError> {
    if code.len() == 3 && code.bytes().all(|b| b.is_ascii_uppercase()) {
        Ok(())
    } else {
        Err(MoneyError::BadCurrency)
    }
}

/// The canonical text of an amount: always two decimal places.
pub fn format_amount(value: Decimal) -> String {
    with_scale_2(value).to_string()
}

fn with_scale_2(value: Decimal) -> Decimal {
    let mut value = value;
    value.rescale(2);
    value
}

/// Whole days from `now_ms` to `maturity_ms`, rounded down; zero if maturity is not ahead.
pub fn whole_days(now_ms: u64, maturity_ms: u64) -> u64 {
    maturity_ms.saturating_sub(now_ms) / DAY_MS
}

/// The discount proceeds `face x (1 - annual_rate x days / 360)`, rounded half-even to 0.01.
///
/// Computed exactly: with `face` in minor units `F` and `rate = m / 10^s`, the proceeds in minor
/// units are `F x (360 x 10^s - m x days) / (360 x 10^s)`, one integer division whose remainder
/// decides the half-even rounding. No intermediate result is rounded. Returns `None` when the
/// proceeds would not be positive (a rate and tenor that eat the whole face value).
pub fn discount_proceeds(face: Decimal, annual_rate: Decimal, days: u64) -> Option<Decimal> {
    let face_minor = with_scale_2(face).mantissa();
    let rate = annual_rate.normalize();
    let rate_mantissa = rate.mantissa();
    let rate_scale = 10i128.pow(rate.scale());
    let denominator = 360 * rate_scale;
    let numerator =
        face_minor.checked_mul(denominator - rate_mantissa.checked_mul(i128::from(days))?)?;
    if numerator <= 0 {
        return None;
    }
    let quotient = numerator / denominator;
    let remainder = numerator % denominator;
    let rounded = match (2 * remainder).cmp(&denominator) {
        std::cmp::Ordering::Less => quotient,
        std::cmp::Ordering::Greater => quotient + 1,
        std::cmp::Ordering::Equal => quotient + (quotient & 1),
    };
    if rounded <= 0 {
        return None;
    }
    Some(Decimal::from_i128_with_scale(rounded, 2))
}

/// The same formula through `Decimal` division with an explicit half-even rounding; used by the
/// tests as an independent check of [`discount_proceeds`].
#[cfg(test)]
fn discount_proceeds_decimal(face: Decimal, annual_rate: Decimal, days: u64) -> Decimal {
    let factor = Decimal::ONE - annual_rate * Decimal::from(days) / Decimal::from(360);
    (face * factor).round_dp_with_strategy(2, RoundingStrategy::MidpointNearestEven)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::str::FromStr;

    fn d(text: &str) -> Decimal {
        Decimal::from_str(text).unwrap()
    }

    // Goal: the amount grammar accepts plain decimals with up to two places and nothing else.
    #[test]
    fn amount_grammar() {
        assert_eq!(parse_amount("0").unwrap().to_string(), "0.00");
        assert_eq!(parse_amount("12.5").unwrap().to_string(), "12.50");
        assert_eq!(parse_amount("12.50").unwrap().to_string(), "12.50");
        assert_eq!(parse_amount("1.500").unwrap().to_string(), "1.50");
        assert_eq!(parse_amount("1.505"), Err(MoneyError::TooManyDecimals));
        assert_eq!(parse_amount("0.001"), Err(MoneyError::TooManyDecimals));
        for bad in ["", "-1", "+1", "1e3", " 1", "1 ", "1.", ".5", "1,00", "0x10", "NaN", "1..2"] {
            assert_eq!(parse_amount(bad), Err(MoneyError::NotDecimal), "{bad:?}");
        }
        assert_eq!(parse_positive_amount("0.00"), Err(MoneyError::NotPositive));
        assert_eq!(parse_positive_amount("0.01").unwrap(), d("0.01"));
    }

    // Goal: the maximum is exactly 10^15 - 0.01, and one cent more is refused.
    #[test]
    fn amount_maximum() {
        assert_eq!(AMOUNT_MAX, d("999999999999999.99"));
        assert_eq!(parse_amount("999999999999999.99").unwrap(), AMOUNT_MAX);
        assert_eq!(parse_amount("1000000000000000"), Err(MoneyError::TooLarge));
    }

    // Goal: rates are in [0, 1] with at most eight places.
    #[test]
    fn rate_grammar() {
        assert_eq!(parse_rate("0.0425").unwrap(), d("0.0425"));
        assert_eq!(parse_rate("1").unwrap(), Decimal::ONE);
        assert_eq!(parse_rate("0").unwrap(), Decimal::ZERO);
        assert_eq!(parse_rate("0.123456789"), Err(MoneyError::BadRate));
        assert_eq!(parse_rate("1.01"), Err(MoneyError::BadRate));
        assert_eq!(parse_rate("-0.1"), Err(MoneyError::BadRate));
    }

    // Goal: currency codes are three upper-case letters.
    #[test]
    fn currency_form() {
        assert_eq!(check_currency("EUR"), Ok(()));
        for bad in ["eur", "EU", "EURO", "E1R", ""] {
            assert_eq!(check_currency(bad), Err(MoneyError::BadCurrency), "{bad:?}");
        }
    }

    // Goal: the discount formula on worked examples, including exact ties at half a cent.
    #[test]
    fn discount_worked_examples() {
        // 1,000,000.00 at 4.25% for 90 days: 1,000,000 x (1 - 0.0425 x 90/360) = 989,375.00.
        assert_eq!(discount_proceeds(d("1000000.00"), d("0.0425"), 90), Some(d("989375.00")));
        // 10.00 at 18% for 1 day: 10 x (1 - 0.18/360) = 9.995 exactly, a tie: half-even gives
        // 10.00 (the even neighbour of 9.99 and 10.00 is 10.00).
        assert_eq!(discount_proceeds(d("10.00"), d("0.18"), 1), Some(d("10.00")));
        // 10.00 at 54% for 1 day: 10 x (1 - 0.54/360) = 9.985 exactly, a tie that rounds down
        // to the even 9.98.
        assert_eq!(discount_proceeds(d("10.00"), d("0.54"), 1), Some(d("9.98")));
        // 100.00 at 5% for 30 days: 100 x (1 - 0.05 x 30/360) = 99.58333... -> 99.58.
        assert_eq!(discount_proceeds(d("100.00"), d("0.05"), 30), Some(d("99.58")));
        // 100.00 at 5% for 31 days: 99.569444... -> 99.57.
        assert_eq!(discount_proceeds(d("100.00"), d("0.05"), 31), Some(d("99.57")));
        // Zero days or a zero rate: no discount at all.
        assert_eq!(discount_proceeds(d("123.45"), d("0.07"), 0), Some(d("123.45")));
        assert_eq!(discount_proceeds(d("123.45"), d("0"), 200), Some(d("123.45")));
        // A rate and tenor that consume the whole face value give no positive proceeds.
        assert_eq!(discount_proceeds(d("100.00"), d("1"), 360), None);
        assert_eq!(discount_proceeds(d("100.00"), d("1"), 400), None);
    }

    // Goal: the exact integer formula agrees with a Decimal computation over a grid of inputs.
    #[test]
    fn discount_matches_decimal_reference() {
        for face in ["0.01", "0.99", "10.00", "1234.57", "999999.99"] {
            for rate in ["0", "0.0001", "0.0425", "0.18", "0.12345678", "0.5"] {
                for days in [0u64, 1, 7, 30, 89, 90, 180, 365] {
                    let (face, rate) = (d(face), d(rate));
                    let exact = discount_proceeds(face, rate, days);
                    let reference = discount_proceeds_decimal(face, rate, days);
                    if reference > Decimal::ZERO {
                        assert_eq!(exact, Some(reference), "{face} {rate} {days}");
                    } else {
                        assert_eq!(exact, None, "{face} {rate} {days}");
                    }
                }
            }
        }
    }

    // Goal: whole days round down and never go negative.
    #[test]
    fn whole_days_round_down() {
        assert_eq!(whole_days(0, DAY_MS - 1), 0);
        assert_eq!(whole_days(0, DAY_MS), 1);
        assert_eq!(whole_days(5, 3), 0);
        assert_eq!(whole_days(1000, 1000 + 90 * DAY_MS + 5), 90);
    }
}
