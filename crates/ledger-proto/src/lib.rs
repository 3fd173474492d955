//! ledger-proto: the loan ledger's wire contract (`proto/loan/v1`, SPEC section 9) and
//! the conversions between it and ledger-core's types.
//!
//! Protobuf types stay in this crate ([`pb`]); everything else works with ledger-core's
//! types and converts at the edge:
//!
//! - [`IntoProto`] is infallible: every core value has a protobuf form.
//! - [`FromProto`] is fallible: a message from outside may lack a required field, carry
//!   an enum value this build does not know, or hold text that is not a date, amount
//!   or number where the ledger itself writes one ([`ProtoError`]). Such a message is
//!   unreadable and goes to a dead-letter topic.
//!
//! Amounts in *inputs* are not parsed here: they stay as the text that arrived
//! ([`ledger_core::input::RawAmount`]), because an invalid amount is not unreadable: it
//! must reach the core to be refused with INVALID_AMOUNT, as a fact.
//!
//! | message | topic | Rust side |
//! |---|---|---|
//! | [`pb::LoanApplication`] | loan.applications | [`ledger_core::input::Application`], [`Input`] |
//! | [`pb::Repayment`] | payments.repayments | [`ledger_core::input::Repayment`], [`Input`] |
//! | [`pb::CollectionsAction`] | collections.actions | [`ledger_core::input::CollectionsAction`], [`Input`] |
//! | [`pb::MerchantUpdate`] | merchant.updates | [`ledger_core::input::MerchantUpdate`], [`Input`] |
//! | [`pb::Open`], [`pb::DayClose`], [`pb::LedgerInput`] | (control, any input) | [`Input`] |
//! | [`pb::LoanEvent`] | loan.events | [`Fact`] |
//! | [`pb::AccrualPosting`] | loan.accruals | [`ledger_core::state::Accrual`] |
//! | [`pb::CollectionsNotice`] | loan.overdue | [`ledger_core::state::OverdueNotice`], `Derived::AutoBlacklisted`, [`ledger_core::state::RiskWarning`], [`ledger_core::state::LoanRecalled`] |
//! | [`pb::RepaymentReceipt`] | loan.receipts | [`ledger_core::state::PaymentRecord`] |
//! | [`pb::SnapshotRecord`], [`pb::BookSnapshot`] | ledger.snapshots | [`ledger_core::state::Book`] ([`snapshot`]) |
//! | (the original bytes, reason in headers) | `<input topic>.dlq` | (none) |
//!
//! [`Input`]: ledger_core::Input
//! [`Fact`]: ledger_core::Fact

mod fact;
mod field;
mod input;
mod output;
pub mod snapshot;

pub use fact::loan_event;
pub use output::{duplicate_receipt, Output};

/// The generated types of protobuf package `loan.v1` (proto/loan/v1/*.proto).
#[allow(clippy::all, clippy::pedantic, missing_docs)]
pub mod pb {
    include!(concat!(env!("OUT_DIR"), "/loan.v1.rs"));
}

/// Why a protobuf message could not be read as a ledger value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProtoError {
    /// A required field is unset, empty, or an enum left at 0 (`*_UNSPECIFIED`). The
    /// name is the field's path in the message, e.g. `"merchant.kind"`.
    #[error("missing field: {0}")]
    MissingField(&'static str),
    /// An enum field holds a number this build does not know (a newer sender, or junk).
    #[error("unknown value {value} in enum field {field}")]
    UnknownEnum { field: &'static str, value: i32 },
    /// A field holds a value of the wrong form (a date, amount or number that does not
    /// parse, an empty id where a set one must be non-empty, ...).
    #[error("invalid value {value:?} in field {field}: {why}")]
    InvalidValue { field: &'static str, value: String, why: String },
    /// The bytes are not a protobuf encoding of the expected message.
    #[error("cannot decode protobuf message: {0}")]
    Decode(#[from] prost::DecodeError),
}

/// A ledger-core value that has one protobuf form. Infallible: every value the core
/// can hold can be written.
pub trait IntoProto {
    type Proto;
    fn into_proto(&self) -> Self::Proto;
}

/// A ledger-core value read from protobuf message `P`. Fallible, see [`ProtoError`].
/// One Rust type may be read from several messages (an [`ledger_core::Input`] from any
/// input message), so the message is a type parameter, inferred from the argument.
pub trait FromProto<P>: Sized {
    fn from_proto(proto: P) -> Result<Self, ProtoError>;
}

/// The protobuf encoding of a message.
pub fn encode<M: prost::Message>(message: &M) -> Vec<u8> {
    message.encode_to_vec()
}

/// Decodes a message from its protobuf encoding. Unknown fields are skipped (a newer
/// sender may add some); required ones are checked by [`FromProto`], not here.
pub fn decode<M: prost::Message + Default>(bytes: &[u8]) -> Result<M, ProtoError> {
    Ok(M::decode(bytes)?)
}

/// Converts a core value and encodes it: `encode(&value.into_proto())`.
pub fn to_bytes<T>(value: &T) -> Vec<u8>
where
    T: IntoProto,
    T::Proto: prost::Message,
{
    encode(&value.into_proto())
}

/// Reads a message of an input topic (`kind`'s message, then `from_proto`): the one
/// decoder the intakes, the book writer and the bad-input corpus share.
pub fn decode_input(kind: ledger_core::handler::InputKind, bytes: &[u8]) -> Result<ledger_core::Input, ProtoError> {
    use ledger_core::handler::InputKind;
    match kind {
        InputKind::Application => from_bytes::<pb::LoanApplication, _>(bytes),
        InputKind::Repayment => from_bytes::<pb::Repayment, _>(bytes),
        InputKind::Collections => from_bytes::<pb::CollectionsAction, _>(bytes),
        InputKind::MerchantUpdate => from_bytes::<pb::MerchantUpdate, _>(bytes),
    }
}

/// Decodes message `P` and reads it as a core value, e.g.
/// `from_bytes::<pb::Repayment, Input>(payload)`.
pub fn from_bytes<P, T>(bytes: &[u8]) -> Result<T, ProtoError>
where
    P: prost::Message + Default,
    T: FromProto<P>,
{
    T::from_proto(decode::<P>(bytes)?)
}
