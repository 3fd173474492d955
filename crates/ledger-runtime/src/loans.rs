//! The loan index: loan id -> borrower id, from the disbursements on every partition
//! of loan.events (what Kafka Streams calls a global table). The intakes of payments
//! and write-offs, which are keyed by loan id, route them to the borrower's book with
//! it.

use std::cell::Cell;
use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use ledger_core::handler::LoanDirectory;
use ledger_core::Fact;
use ledger_kafka::rdkafka::consumer::{Consumer, StreamConsumer};
use ledger_kafka::rdkafka::{Message, Offset, TopicPartitionList};
use ledger_kafka::{topics, KafkaConfig, OffsetProbe};
use ledger_proto::{pb, FromProto};

use crate::{Result, RuntimeError};

const RECEIVE_TIMEOUT: Duration = Duration::from_secs(30);

pub struct LoanIndex {
    consumer: StreamConsumer,
    probe: OffsetProbe,
    borrowers: HashMap<String, String>,
    positions: BTreeMap<i32, i64>,
    /// Whether a lookup found no loan since the last catch-up.
    missed: Cell<bool>,
}

impl LoanIndex {
    pub fn new(kafka: &KafkaConfig) -> Result<LoanIndex> {
        let consumer = kafka.consumer("ledger-loan-index")?;
        let probe = OffsetProbe::new(kafka)?;
        let partitions = probe.topic_partitions(topics::EVENTS)?;
        let mut tpl = TopicPartitionList::new();
        for p in &partitions {
            tpl.add_partition_offset(topics::EVENTS, *p, Offset::Beginning)?;
        }
        consumer.assign(&tpl)?;
        Ok(LoanIndex {
            consumer,
            probe,
            borrowers: HashMap::new(),
            positions: partitions.iter().map(|p| (*p, 0)).collect(),
            missed: Cell::new(false),
        })
    }

    /// Whether a lookup found no loan since the last catch-up: a loan disbursed a
    /// moment ago may be on loan.events already (a known loan's borrower never changes,
    /// so only a miss needs a catch-up).
    pub fn missed(&self) -> bool {
        self.missed.get()
    }

    /// The loan index restored from the books' snapshots (each book's loans, and its
    /// position the offset its snapshot reflects); books without one are read from the
    /// beginning.
    pub async fn restored(kafka: &KafkaConfig, config: &ledger_core::ProductConfig) -> Result<LoanIndex> {
        let mut index = LoanIndex::new(kafka)?;
        let partitions: Vec<i32> = index.positions.keys().copied().collect();
        let restored = crate::snapshot::read_latest(kafka, &partitions, config).await?;
        if restored.is_empty() {
            return Ok(index);
        }
        index.consumer.assign(&crate::snapshot::assignment(&partitions, &restored)?)?;
        for (p, r) in &restored {
            for loan in r.book.loans() {
                index.borrowers.insert(loan.loan_id.clone(), loan.borrower_id.clone());
            }
            index.positions.insert(*p, r.meta.next_offset);
        }
        Ok(index)
    }

    /// Reads every disbursement loan.events holds now.
    pub async fn catch_up(&mut self) -> Result<()> {
        self.missed.set(false);
        let probe = &self.probe;
        let ends = tokio::task::block_in_place(|| probe.end_offsets(topics::EVENTS))?;
        while ends.iter().any(|(p, end)| self.positions.get(p).copied().unwrap_or(0) < *end) {
            let message = match tokio::time::timeout(RECEIVE_TIMEOUT, self.consumer.recv()).await {
                Err(_) => return Err(RuntimeError::Timeout(format!("reading {} for the loan index", topics::EVENTS))),
                Ok(Ok(message)) => message,
                Ok(Err(e)) => {
                    tracing::warn!(error = %e, "reading loan.events for the loan index");
                    tokio::time::sleep(Duration::from_millis(200)).await;
                    continue;
                }
            };
            let (partition, offset) = (message.partition(), message.offset());
            self.positions.insert(partition, offset + 1);
            let fact = ledger_proto::decode::<pb::LoanEvent>(message.payload().unwrap_or_default())
                .and_then(Fact::from_proto)
                .map_err(|e| RuntimeError::Corrupt(format!("{}: cannot read the fact: {e}", crate::source(topics::EVENTS, partition, offset))))?;
            if let Fact::ApplicationDecided(decided) = fact {
                if let Some(disbursement) = decided.disbursement {
                    self.borrowers.insert(disbursement.loan_id, decided.borrower_id);
                }
            }
        }
        Ok(())
    }
}

impl LoanDirectory for LoanIndex {
    fn borrower_of(&self, loan_id: &str) -> Option<&str> {
        let found = self.borrowers.get(loan_id).map(String::as_str);
        if found.is_none() {
            self.missed.set(true);
        }
        found
    }
}
