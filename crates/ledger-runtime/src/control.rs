//! The day's barrier: `open` and `close-day` append a fact to every partition of
//! loan.events. A day close is accepted only for the open business date; a partition
//! that already closed it (a close that was interrupted half-way) is not closed twice.

use ledger_core::{Date, Fact};
use ledger_kafka::rdkafka::producer::{FutureProducer, FutureRecord};
use ledger_kafka::topics;

use crate::follower::Follower;
use crate::{Result, RuntimeError};

/// Appends `Opened { date }` to every partition that is not open yet.
pub async fn open(follower: &mut Follower, producer: &FutureProducer, date: Date) -> Result<()> {
    follower.catch_up_fully().await?;
    let mut todo = Vec::new();
    for p in follower.partitions() {
        match follower.ledger().books().get(&(p as u32)).and_then(|b| b.open) {
            None => todo.push(p),
            Some(open) => {
                return Err(RuntimeError::Refused(format!("the ledger is already open (partition {p} is at {open})")));
            }
        }
    }
    append(producer, &Fact::Opened { date }, &todo).await?;
    follower.catch_up_fully().await
}

/// Appends `DayClosed { date }` to every partition; `date` defaults to the open business
/// date. Refuses a gap (a date after the open one) and a repeated day.
pub async fn close_day(follower: &mut Follower, producer: &FutureProducer, date: Option<Date>) -> Result<Date> {
    follower.catch_up_fully().await?;
    let open_dates: Vec<(i32, Option<Date>)> = follower
        .partitions()
        .into_iter()
        .map(|p| (p, follower.ledger().books().get(&(p as u32)).and_then(|b| b.open)))
        .collect();
    let business = follower
        .ledger()
        .business_date()
        .ok_or_else(|| RuntimeError::Refused("the ledger is not open yet: run `loanctl open --date YYYY-MM-DD` first".into()))?;
    let date = date.unwrap_or(business);
    let mut todo = Vec::new();
    for (p, open) in open_dates {
        match open {
            Some(open) if open == date => todo.push(p),
            Some(open) if open == date.next() => {} // closed already by an interrupted run
            Some(open) => {
                return Err(RuntimeError::Refused(format!(
                    "cannot close {date}: the open business date is {open} (partition {p}); days close one after the other, once"
                )))
            }
            None => return Err(RuntimeError::Refused(format!("partition {p} of loan.events was never opened"))),
        }
    }
    if todo.is_empty() {
        return Err(RuntimeError::Refused(format!("{date} is already closed")));
    }
    append(producer, &Fact::DayClosed { date }, &todo).await?;
    follower.catch_up_fully().await?;
    Ok(date)
}

async fn append(producer: &FutureProducer, fact: &Fact, partitions: &[i32]) -> Result<()> {
    // One record per partition, sent together; each partition's copy has its own id.
    let mut deliveries = Vec::new();
    for p in partitions {
        let event = ledger_proto::loan_event(fact, format!("{}@{p}", fact.key()), String::new());
        let payload = ledger_proto::encode(&event);
        let key = fact.key();
        let record: FutureRecord<'_, str, [u8]> =
            FutureRecord::to(topics::EVENTS).partition(*p).key(key.as_str()).payload(payload.as_slice());
        deliveries.push(producer.send_result(record).map_err(|(e, _)| e)?);
    }
    for delivery in deliveries {
        delivery
            .await
            .map_err(|_| RuntimeError::Refused("delivery cancelled".into()))?
            .map_err(|(e, _)| e)?;
    }
    Ok(())
}
