//! The day's barrier: `open` and `close-day` send a command to every book (every
//! partition of ledger.commands); each book's writer decides it in its place among the
//! book's inputs and appends the fact. A day close is accepted only for the open
//! business date; a book that already closed it (a close that was interrupted half-way)
//! is not sent it again. Both wait until every book has the fact.

use std::time::{Duration, Instant};

use ledger_core::Date;
use ledger_kafka::rdkafka::producer::FutureProducer;
use ledger_proto::pb;

use crate::follower::Follower;
use crate::intake::send_command;
use crate::service::await_all;
use crate::{Result, RuntimeError};

/// How long `open` and `close-day` wait for the book writers.
pub const WAIT: Duration = Duration::from_secs(120);

/// Opens `date` in every book that is not open yet.
pub async fn open(follower: &mut Follower, producer: &FutureProducer, date: Date, wait: Duration) -> Result<()> {
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
    let command = pb::BookCommand { origin: String::new(), command: Some(pb::book_command::Command::Open(pb::Open { date: date.to_string() })), claims: Vec::new(), input_timestamp_ms: 0 };
    send(producer, &command, &date.to_string(), &todo).await?;
    wait_for(follower, &todo, date, wait, "open").await
}

/// Closes `date` (default: the open business date) in every book. Refuses a gap (a date
/// after the open one) and a repeated day.
pub async fn close_day(follower: &mut Follower, producer: &FutureProducer, date: Option<Date>, wait: Duration) -> Result<Date> {
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
    let command =
        pb::BookCommand { origin: String::new(), command: Some(pb::book_command::Command::DayClose(pb::DayClose { date: date.to_string() })), claims: Vec::new(), input_timestamp_ms: 0 };
    send(producer, &command, &date.to_string(), &todo).await?;
    wait_for(follower, &todo, date.next(), wait, "day close").await?;
    Ok(date)
}

/// Sends one command to each of `partitions`, together.
async fn send(producer: &FutureProducer, command: &pb::BookCommand, key: &str, partitions: &[i32]) -> Result<()> {
    let payload = ledger_proto::encode(command);
    let mut in_flight = Vec::new();
    for p in partitions {
        in_flight.push(send_command(producer, key, *p, &payload)?);
    }
    await_all(&mut in_flight).await
}

/// Waits until every book of `partitions` has `open` as its open date.
async fn wait_for(follower: &mut Follower, partitions: &[i32], open: Date, wait: Duration, what: &str) -> Result<()> {
    let deadline = Instant::now() + wait;
    loop {
        follower.catch_up_fully().await?;
        let behind: Vec<i32> =
            partitions.iter().copied().filter(|p| follower.ledger().books().get(&(*p as u32)).and_then(|b| b.open) != Some(open)).collect();
        if behind.is_empty() {
            return Ok(());
        }
        if Instant::now() > deadline {
            return Err(RuntimeError::Timeout(format!(
                "the {what} was sent but books {behind:?} did not decide it within {} s; is `loanctl up` (or `loanctl run books`) running against these brokers?",
                wait.as_secs()
            )));
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}
