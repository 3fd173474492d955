//! Reading and writing single fields: ids, money, dates, decimals and enums. Every
//! error names the field's path, so a dead letter says exactly what was wrong.

use std::str::FromStr;

use ledger_core::model::{ActionKind, Bucket, Product, Reason};
use ledger_core::scoring::MerchantKind;
use ledger_core::state::NoticeKind;
use ledger_core::{Date, Money};
use rust_decimal::Decimal;

use crate::pb;
use crate::ProtoError;

/// A required id: present and non-empty.
pub(crate) fn id(field: &'static str, value: String) -> Result<String, ProtoError> {
    if value.is_empty() {
        return Err(ProtoError::MissingField(field));
    }
    Ok(value)
}

/// An optional id: unset is `None`; set but empty is not an id at all.
pub(crate) fn optional_id(field: &'static str, value: Option<String>) -> Result<Option<String>, ProtoError> {
    match value {
        Some(text) if text.is_empty() => Err(ProtoError::InvalidValue {
            field,
            value: text,
            why: "an id may not be empty; leave the field unset instead".to_string(),
        }),
        other => Ok(other),
    }
}

/// A money string the ledger wrote ("0.00" allowed). Amounts that arrive in inputs are
/// not read with this: they stay raw text for the core to judge.
pub(crate) fn money(field: &'static str, text: String) -> Result<Money, ProtoError> {
    if text.is_empty() {
        return Err(ProtoError::MissingField(field));
    }
    Money::parse_non_negative(&text).map_err(|e| invalid(field, text, e))
}

pub(crate) fn optional_money(field: &'static str, text: Option<String>) -> Result<Option<Money>, ProtoError> {
    text.map(|t| money(field, t)).transpose()
}

pub(crate) fn date(field: &'static str, text: String) -> Result<Date, ProtoError> {
    if text.is_empty() {
        return Err(ProtoError::MissingField(field));
    }
    Date::parse(&text).map_err(|e| invalid(field, text, e))
}

/// An exact decimal the ledger wrote (a score): plain decimal notation.
pub(crate) fn decimal(field: &'static str, text: String) -> Result<Decimal, ProtoError> {
    if text.is_empty() {
        return Err(ProtoError::MissingField(field));
    }
    Decimal::from_str(&text).map_err(|e| invalid(field, text, e))
}

/// A merchant figure: a decimal in plain or scientific notation, as a scenario file
/// accepts it, so that the same figures score the same way on both roads.
pub(crate) fn figure(field: &'static str, text: Option<String>) -> Result<Option<Decimal>, ProtoError> {
    let Some(text) = text else { return Ok(None) };
    match Decimal::from_str(&text).or_else(|_| Decimal::from_scientific(&text)) {
        Ok(value) => Ok(Some(value)),
        Err(e) => Err(invalid(field, text, e)),
    }
}

fn invalid(field: &'static str, value: String, why: impl ToString) -> ProtoError {
    ProtoError::InvalidValue { field, value, why: why.to_string() }
}

/// Maps a core enum to the protobuf enum of the same names and back. The protobuf
/// side's 0 (`*_UNSPECIFIED`) reads as a missing field; a number it does not know is
/// an unknown enum value.
macro_rules! enum_map {
    ($to:ident, $from:ident, $core:ident, $pb:ident, { $($c:ident = $p:ident),+ $(,)? }) => {
        pub(crate) fn $to(value: $core) -> pb::$pb {
            match value {
                $($core::$c => pb::$pb::$p,)+
            }
        }

        pub(crate) fn $from(field: &'static str, value: i32) -> Result<$core, ProtoError> {
            match pb::$pb::try_from(value) {
                $(Ok(pb::$pb::$p) => Ok($core::$c),)+
                Ok(pb::$pb::Unspecified) => Err(ProtoError::MissingField(field)),
                Err(_) => Err(ProtoError::UnknownEnum { field, value }),
            }
        }
    };
}

enum_map!(product_to, product_from, Product, Product, { Order = Order, Credit = Credit });

enum_map!(merchant_kind_to, merchant_kind_from, MerchantKind, MerchantKind, {
    Platform = Platform,
    OffPlatform = OffPlatform,
});

enum_map!(action_to, action_from, ActionKind, ActionKind, {
    MarkMalicious = MarkMalicious,
    Reinstate = Reinstate,
    WriteOff = WriteOff,
});

enum_map!(bucket_to, bucket_from, Bucket, Bucket, {
    Current = Current,
    M1 = M1,
    M2 = M2,
    M3 = M3,
    Npl = Npl,
});

enum_map!(notice_kind_to, notice_kind_from, NoticeKind, NoticeKind, {
    Overdue = LoanOverdue,
    BucketChanged = BucketChanged,
    Cured = LoanCured,
});

enum_map!(reason_to, reason_from, Reason, Reason, {
    ScoreTooLow = ScoreTooLow,
    Blacklisted = Blacklisted,
    HasOverdue = HasOverdue,
    TermOutOfRange = TermOutOfRange,
    InvalidAmount = InvalidAmount,
    OverProductMax = OverProductMax,
    OverCreditLine = OverCreditLine,
    OverTotalLimit = OverTotalLimit,
    OrderAlreadyFinanced = OrderAlreadyFinanced,
    OrderAmountExceeded = OrderAmountExceeded,
    UnknownLoan = UnknownLoan,
    UnknownBorrower = UnknownBorrower,
    NotBlacklisted = NotBlacklisted,
    Malicious = Malicious,
    StillOverdue = StillOverdue,
    NotOverdue = NotOverdue,
    IdConflict = IdConflict,
});

/// A reason that is set (in a list, or an `optional` field that is present) must be a
/// real one: 0 there is not "missing" but wrong.
pub(crate) fn set_reason_from(field: &'static str, value: i32) -> Result<Reason, ProtoError> {
    match reason_from(field, value) {
        Err(ProtoError::MissingField(_)) => Err(ProtoError::InvalidValue {
            field,
            value: pb::Reason::Unspecified.as_str_name().to_string(),
            why: "a reason that is given must be a real reason".to_string(),
        }),
        other => other,
    }
}

pub(crate) fn reason_list_from(field: &'static str, values: Vec<i32>) -> Result<Vec<Reason>, ProtoError> {
    values.into_iter().map(|v| set_reason_from(field, v)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The protobuf enum values carry SPEC's names, so a team reading the schema sees
    /// the words of the contract; and 0 is never a core value.
    #[test]
    fn enum_names_are_specs_names() {
        for r in Reason::ALL {
            assert_eq!(reason_to(r).as_str_name(), r.as_str());
            assert_eq!(reason_from("f", reason_to(r).into()), Ok(r));
        }
        for p in [Product::Order, Product::Credit] {
            assert_eq!(product_to(p).as_str_name(), p.as_str());
            assert_eq!(product_from("f", product_to(p).into()), Ok(p));
        }
        for a in ActionKind::ALL {
            assert_eq!(action_to(a).as_str_name(), a.as_str());
            assert_eq!(action_from("f", action_to(a).into()), Ok(a));
        }
        for b in Bucket::ALL {
            assert_eq!(bucket_to(b).as_str_name(), b.as_str());
            assert_eq!(bucket_from("f", bucket_to(b).into()), Ok(b));
        }
        for k in [MerchantKind::Platform, MerchantKind::OffPlatform] {
            assert_eq!(merchant_kind_to(k).as_str_name(), k.as_str());
            assert_eq!(merchant_kind_from("f", merchant_kind_to(k).into()), Ok(k));
        }
        for k in [NoticeKind::Overdue, NoticeKind::BucketChanged, NoticeKind::Cured] {
            assert_eq!(notice_kind_to(k).as_str_name(), k.as_str());
            assert_eq!(notice_kind_from("f", notice_kind_to(k).into()), Ok(k));
        }
        assert_eq!(reason_from("f", 0), Err(ProtoError::MissingField("f")));
        assert_eq!(reason_from("f", -1), Err(ProtoError::UnknownEnum { field: "f", value: -1 }));
    }
}
