//! Inputs: loan.applications, payments.repayments, collections.actions and the
//! control inputs. Amounts stay raw text (the core refuses a bad one with
//! INVALID_AMOUNT); only what makes a message unreadable is an error here, the same
//! things a scenario line is rejected for, so both roads treat an input alike.

use ledger_core::input::{Application, CollectionsAction, MerchantUpdate, OrderRef, RawAmount, Repayment};
use ledger_core::scoring::Merchant;
use ledger_core::Input;

use crate::field::{
    action_from, action_to, date, figure, id, merchant_kind_from, merchant_kind_to, optional_id, product_from,
    product_to,
};
use crate::pb::{self, ledger_input};
use crate::{FromProto, IntoProto, ProtoError};

impl IntoProto for Input {
    type Proto = pb::LedgerInput;

    fn into_proto(&self) -> pb::LedgerInput {
        let input = match self {
            Input::Open { date } => ledger_input::Input::Open(pb::Open { date: date.to_string() }),
            Input::Application(a) => ledger_input::Input::Application(a.into_proto()),
            Input::Repayment(r) => ledger_input::Input::Repayment(r.into_proto()),
            Input::CloseDay { date } => ledger_input::Input::DayClose(pb::DayClose { date: date.to_string() }),
            Input::Collections(c) => ledger_input::Input::CollectionsAction(c.into_proto()),
            Input::MerchantUpdate(u) => ledger_input::Input::MerchantUpdate(u.into_proto()),
        };
        pb::LedgerInput { input: Some(input) }
    }
}

impl FromProto<pb::LedgerInput> for Input {
    fn from_proto(proto: pb::LedgerInput) -> Result<Input, ProtoError> {
        match proto.input.ok_or(ProtoError::MissingField("input"))? {
            ledger_input::Input::Open(open) => Input::from_proto(open),
            ledger_input::Input::Application(a) => Input::from_proto(a),
            ledger_input::Input::Repayment(r) => Input::from_proto(r),
            ledger_input::Input::DayClose(close) => Input::from_proto(close),
            ledger_input::Input::CollectionsAction(c) => Input::from_proto(c),
            ledger_input::Input::MerchantUpdate(u) => Input::from_proto(u),
        }
    }
}

impl FromProto<pb::Open> for Input {
    fn from_proto(proto: pb::Open) -> Result<Input, ProtoError> {
        Ok(Input::Open { date: date("date", proto.date)? })
    }
}

impl FromProto<pb::DayClose> for Input {
    fn from_proto(proto: pb::DayClose) -> Result<Input, ProtoError> {
        Ok(Input::CloseDay { date: date("date", proto.date)? })
    }
}

impl FromProto<pb::LoanApplication> for Input {
    fn from_proto(proto: pb::LoanApplication) -> Result<Input, ProtoError> {
        Application::from_proto(proto).map(Input::Application)
    }
}

impl FromProto<pb::Repayment> for Input {
    fn from_proto(proto: pb::Repayment) -> Result<Input, ProtoError> {
        Repayment::from_proto(proto).map(Input::Repayment)
    }
}

impl FromProto<pb::CollectionsAction> for Input {
    fn from_proto(proto: pb::CollectionsAction) -> Result<Input, ProtoError> {
        CollectionsAction::from_proto(proto).map(Input::Collections)
    }
}

impl FromProto<pb::MerchantUpdate> for Input {
    fn from_proto(proto: pb::MerchantUpdate) -> Result<Input, ProtoError> {
        MerchantUpdate::from_proto(proto).map(Input::MerchantUpdate)
    }
}

impl IntoProto for MerchantUpdate {
    type Proto = pb::MerchantUpdate;

    fn into_proto(&self) -> pb::MerchantUpdate {
        pb::MerchantUpdate {
            update_id: self.update_id.clone(),
            borrower_id: self.borrower_id.clone(),
            merchant: Some(self.merchant.into_proto()),
        }
    }
}

impl FromProto<pb::MerchantUpdate> for MerchantUpdate {
    /// The figures are read first, as in a scenario file (SPEC section 12: validity
    /// before the id and the borrower).
    fn from_proto(proto: pb::MerchantUpdate) -> Result<MerchantUpdate, ProtoError> {
        let merchant = Merchant::from_proto(proto.merchant.ok_or(ProtoError::MissingField("merchant"))?)?;
        Ok(MerchantUpdate {
            update_id: id("update_id", proto.update_id)?,
            borrower_id: id("borrower_id", proto.borrower_id)?,
            merchant,
        })
    }
}

impl IntoProto for Application {
    type Proto = pb::LoanApplication;

    fn into_proto(&self) -> pb::LoanApplication {
        pb::LoanApplication {
            application_id: self.application_id.clone(),
            borrower_id: self.borrower_id.clone(),
            product: product_to(self.product).into(),
            amount: self.amount.text.clone(),
            currency: self.amount.currency.clone(),
            term_days: self.term_days,
            orders: self.orders.iter().map(IntoProto::into_proto).collect(),
            merchant: Some(self.merchant.into_proto()),
        }
    }
}

impl FromProto<pb::LoanApplication> for Application {
    fn from_proto(proto: pb::LoanApplication) -> Result<Application, ProtoError> {
        Ok(Application {
            application_id: id("application_id", proto.application_id)?,
            borrower_id: id("borrower_id", proto.borrower_id)?,
            product: product_from("product", proto.product)?,
            amount: RawAmount { text: proto.amount, currency: proto.currency },
            term_days: proto.term_days,
            orders: proto.orders.into_iter().map(OrderRef::from_proto).collect::<Result<_, _>>()?,
            merchant: Merchant::from_proto(proto.merchant.ok_or(ProtoError::MissingField("merchant"))?)?,
        })
    }
}

impl IntoProto for OrderRef {
    type Proto = pb::Order;

    fn into_proto(&self) -> pb::Order {
        pb::Order {
            order_id: self.order_id.clone(),
            amount: self.amount.text.clone(),
            currency: self.amount.currency.clone(),
        }
    }
}

impl FromProto<pb::Order> for OrderRef {
    fn from_proto(proto: pb::Order) -> Result<OrderRef, ProtoError> {
        Ok(OrderRef {
            order_id: id("orders.order_id", proto.order_id)?,
            amount: RawAmount { text: proto.amount, currency: proto.currency },
        })
    }
}

impl IntoProto for Merchant {
    type Proto = pb::Merchant;

    fn into_proto(&self) -> pb::Merchant {
        let text = |value: Option<rust_decimal::Decimal>| value.map(|d| d.to_string());
        pb::Merchant {
            kind: merchant_kind_to(self.kind).into(),
            annual_sales: text(self.annual_sales),
            sales_growth: text(self.sales_growth),
            orders_12m: text(self.orders_12m),
            seller_rating: text(self.seller_rating),
            active_days_90: text(self.active_days_90),
            inventory_turnover: text(self.inventory_turnover),
            debt_ratio: text(self.debt_ratio),
            positive_review_rate: text(self.positive_review_rate),
        }
    }
}

impl FromProto<pb::Merchant> for Merchant {
    fn from_proto(proto: pb::Merchant) -> Result<Merchant, ProtoError> {
        Ok(Merchant {
            kind: merchant_kind_from("merchant.kind", proto.kind)?,
            annual_sales: figure("merchant.annual_sales", proto.annual_sales)?,
            sales_growth: figure("merchant.sales_growth", proto.sales_growth)?,
            orders_12m: figure("merchant.orders_12m", proto.orders_12m)?,
            seller_rating: figure("merchant.seller_rating", proto.seller_rating)?,
            active_days_90: figure("merchant.active_days_90", proto.active_days_90)?,
            inventory_turnover: figure("merchant.inventory_turnover", proto.inventory_turnover)?,
            debt_ratio: figure("merchant.debt_ratio", proto.debt_ratio)?,
            positive_review_rate: figure("merchant.positive_review_rate", proto.positive_review_rate)?,
        })
    }
}

impl IntoProto for Repayment {
    type Proto = pb::Repayment;

    fn into_proto(&self) -> pb::Repayment {
        pb::Repayment {
            payment_id: self.payment_id.clone(),
            loan_id: self.loan_id.clone(),
            amount: self.amount.text.clone(),
            currency: self.amount.currency.clone(),
        }
    }
}

impl FromProto<pb::Repayment> for Repayment {
    fn from_proto(proto: pb::Repayment) -> Result<Repayment, ProtoError> {
        Ok(Repayment {
            payment_id: id("payment_id", proto.payment_id)?,
            loan_id: id("loan_id", proto.loan_id)?,
            amount: RawAmount { text: proto.amount, currency: proto.currency },
        })
    }
}

impl IntoProto for CollectionsAction {
    type Proto = pb::CollectionsAction;

    fn into_proto(&self) -> pb::CollectionsAction {
        pb::CollectionsAction {
            action_id: self.action_id.clone(),
            action: action_to(self.action).into(),
            borrower_id: self.borrower_id.clone(),
            loan_id: self.loan_id.clone(),
        }
    }
}

impl FromProto<pb::CollectionsAction> for CollectionsAction {
    fn from_proto(proto: pb::CollectionsAction) -> Result<CollectionsAction, ProtoError> {
        let action_id = id("action_id", proto.action_id)?;
        let action = action_from("action", proto.action)?;
        let borrower_id = optional_id("borrower_id", proto.borrower_id)?;
        let loan_id = optional_id("loan_id", proto.loan_id)?;
        // An action without its target is readable: the ledger refuses it (UNKNOWN_BORROWER
        // or UNKNOWN_LOAN), as it does in a scenario file.
        Ok(CollectionsAction { action_id, action, borrower_id, loan_id })
    }
}
