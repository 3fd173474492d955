//! Snapshots of the books on ledger.snapshots (proto/loan/v1/snapshots.proto says the
//! layout): the book writer writes one of each book it owns now and then; a reader of
//! loan.events that starts restores each book it follows from its latest snapshot and
//! folds only the facts after it.
//!
//! A snapshot is a cache of the log, never the truth: one that cannot be found, read
//! or used (another fold version or configuration, a chunk compacted away under the
//! reader) is passed over with a warning, and the book is folded from offset 0. A
//! snapshot holds the book's own fold only, which every reader derives the same way
//! at the same offset, so it does not matter which writer wrote it.

use std::collections::BTreeMap;
use std::time::Duration;

use ledger_core::state::Book;
use ledger_core::ProductConfig;
use ledger_kafka::rdkafka::consumer::{Consumer, StreamConsumer};
use ledger_kafka::rdkafka::producer::{DeliveryFuture, FutureProducer};
use ledger_kafka::rdkafka::{Message, Offset, TopicPartitionList};
use ledger_kafka::{topics, KafkaConfig, OffsetProbe};
use ledger_proto::pb::{self, snapshot_record::Record};
use ledger_proto::snapshot::{decode_snapshot, encode_snapshot, SnapshotMeta};

use crate::{Result, RuntimeError};

/// The largest chunk of a snapshot: half of Apache Kafka's default largest message
/// (`message.max.bytes`, 1 MiB), so that no broker, topic or client setting need change
/// for a book of any size.
pub const CHUNK_BYTES: usize = 512 * 1024;

/// How long a reader waits for a record of ledger.snapshots the end offsets promised.
const RECEIVE_TIMEOUT: Duration = Duration::from_secs(30);

/// A book restored from its snapshot.
pub struct Restored {
    pub book: Book,
    pub meta: SnapshotMeta,
    /// When it was taken, in milliseconds since the Unix epoch.
    pub taken_at_ms: i64,
    /// The slot it is in: the next snapshot of the book goes to the other.
    pub slot: Slot,
}

/// The two slots a book's snapshots alternate between.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Slot {
    A,
    B,
}

impl Slot {
    fn name(self) -> &'static str {
        match self {
            Slot::A => "a",
            Slot::B => "b",
        }
    }

    fn parse(name: &str) -> Option<Slot> {
        [Slot::A, Slot::B].into_iter().find(|s| s.name() == name)
    }

    pub fn other(self) -> Slot {
        match self {
            Slot::A => Slot::B,
            Slot::B => Slot::A,
        }
    }
}

/// The assignment of `partitions` of loan.events that starts each restored book at the
/// offset its snapshot reflects and every other one at the beginning.
pub(crate) fn assignment(partitions: &[i32], restored: &BTreeMap<i32, Restored>) -> Result<TopicPartitionList> {
    let mut tpl = TopicPartitionList::new();
    for p in partitions {
        let at = restored.get(p).map_or(Offset::Beginning, |r| Offset::Offset(r.meta.next_offset));
        tpl.add_partition_offset(topics::EVENTS, *p, at)?;
    }
    Ok(tpl)
}

/// The chunks of `bytes`, each at most [`CHUNK_BYTES`] (one empty chunk for no bytes).
fn chunks(bytes: &[u8]) -> Vec<&[u8]> {
    if bytes.is_empty() {
        return vec![bytes];
    }
    bytes.chunks(CHUNK_BYTES).collect()
}

/// A snapshot to write: a book as it stands at `meta.next_offset`, whose fact just
/// before that offset has `last_event_id`.
pub struct Taken {
    pub book: Book,
    pub meta: SnapshotMeta,
    pub last_event_id: String,
    /// When it was taken (cloned), in milliseconds since the Unix epoch.
    pub taken_at_ms: i64,
}

/// Writes a snapshot to `slot`, then its pointer, awaiting every acknowledgement; the
/// encoding is done off the async threads. Returns the snapshot's size in bytes.
pub async fn write(producer: &FutureProducer, taken: Taken, config: std::sync::Arc<ProductConfig>, slot: Slot) -> Result<usize> {
    let Taken { book, meta, last_event_id, taken_at_ms } = taken;
    let partition = meta.book as i32;
    let id = format!("{}-{}", meta.book, meta.next_offset);
    let (book_number, next_offset) = (meta.book, meta.next_offset);
    let bytes = tokio::task::spawn_blocking(move || encode_snapshot(&book, &meta, &config))
        .await
        .map_err(|e| RuntimeError::Refused(format!("encoding a snapshot: {e}")))?;
    let parts = chunks(&bytes);
    let count = parts.len() as u32;
    let mut in_flight: Vec<DeliveryFuture> = Vec::with_capacity(parts.len());
    for (index, data) in parts.into_iter().enumerate() {
        let record = pb::SnapshotRecord {
            record: Some(Record::Chunk(pb::SnapshotChunk { snapshot_id: id.clone(), index: index as u32, count, data: data.to_vec() })),
        };
        let key = format!("{book_number}/{}/{index}", slot.name());
        in_flight.push(ledger_kafka::enqueue(producer, topics::SNAPSHOTS, Some(partition), &key, &ledger_proto::encode(&record))?);
        crate::metrics::produced(topics::SNAPSHOTS);
    }
    let (mut first, mut last) = (i64::MAX, i64::MIN);
    for delivery in in_flight {
        let delivered = delivered(delivery).await?;
        first = first.min(delivered);
        last = last.max(delivered);
    }
    let pointer = pb::SnapshotRecord {
        record: Some(Record::Pointer(pb::SnapshotPointer {
            snapshot_id: id,
            book: book_number,
            next_offset,
            first_chunk_offset: first,
            last_chunk_offset: last,
            chunks: count,
            taken_at_ms,
            slot: slot.name().to_string(),
            last_event_id,
        })),
    };
    let key = format!("{book_number}/latest");
    delivered(ledger_kafka::enqueue(producer, topics::SNAPSHOTS, Some(partition), &key, &ledger_proto::encode(&pointer))?).await?;
    crate::metrics::produced(topics::SNAPSHOTS);
    Ok(bytes.len())
}

async fn delivered(delivery: DeliveryFuture) -> Result<i64> {
    let delivered = delivery
        .await
        .map_err(|_| RuntimeError::Refused("delivery cancelled: the producer was dropped".into()))?
        .map_err(|(e, _)| e)?;
    Ok(delivered.offset)
}

/// Reads the latest snapshot of each of `books` (partitions of loan.events) that this
/// ledger can use. A book without one is missing from the answer, and is folded from
/// offset 0; so is every book when ledger.snapshots does not exist (a ledger created
/// before snapshots: `loanctl topics create` adds it).
pub async fn read_latest(kafka: &KafkaConfig, books: &[i32], config: &ProductConfig) -> Result<BTreeMap<i32, Restored>> {
    let probe = OffsetProbe::new(kafka)?;
    let events_end = tokio::task::block_in_place(|| probe.end_offsets(topics::EVENTS))?;
    let ends = match tokio::task::block_in_place(|| probe.end_offsets(topics::SNAPSHOTS)) {
        Ok(ends) => ends,
        Err(error) => {
            tracing::warn!(%error, "no snapshots to start from (run `loanctl topics create` to add {}): folding loan.events from the beginning", topics::SNAPSHOTS);
            return Ok(BTreeMap::new());
        }
    };
    // The books are read at once, each with a consumer of its own: a read is a few
    // round trips (seek, fetch the pointer, the last fact, the chunks), mostly waiting.
    let config = std::sync::Arc::new(config.clone());
    let mut reads = tokio::task::JoinSet::new();
    for book in books.iter().copied() {
        let end = ends.get(&book).copied().unwrap_or(0);
        if end == 0 {
            crate::metrics::restore("none");
            continue;
        }
        let events_end = events_end.get(&book).copied().unwrap_or(0);
        let (consumer, config) = (kafka.consumer("ledger-snapshot-reader")?, config.clone());
        reads.spawn(async move { (book, read_book(&consumer, book, end, events_end, &config).await) });
    }
    let mut restored = BTreeMap::new();
    while let Some(read) = reads.join_next().await {
        let (book, read) = read.map_err(|e| RuntimeError::Refused(format!("reading a snapshot: {e}")))?;
        match read {
            Ok(Some(r)) => {
                crate::metrics::restore("restored");
                crate::metrics::snapshot_taken(book, r.taken_at_ms);
                restored.insert(book, r);
            }
            Ok(None) => crate::metrics::restore("passed_over"),
            Err(why) => {
                crate::metrics::restore("passed_over");
                tracing::warn!(book, %why, "the book's snapshot is passed over: folding its facts from the beginning");
            }
        }
    }
    Ok(restored)
}

type SharedRead = std::sync::Arc<tokio::sync::OnceCell<std::result::Result<(Book, SnapshotMeta), String>>>;

/// The read of snapshot `id` of `book` that this process's readers share while one of
/// them holds it (kept weakly: once every reader has its copy, the memory is freed).
fn shared(book: i32, id: &str) -> SharedRead {
    static READS: std::sync::LazyLock<std::sync::Mutex<std::collections::HashMap<(i32, String), std::sync::Weak<tokio::sync::OnceCell<std::result::Result<(Book, SnapshotMeta), String>>>>>> =
        std::sync::LazyLock::new(Default::default);
    let mut reads = READS.lock().expect("snapshot reads lock");
    reads.retain(|_, read| read.strong_count() > 0);
    let key = (book, id.to_string());
    if let Some(read) = reads.get(&key).and_then(std::sync::Weak::upgrade) {
        return read;
    }
    let read = SharedRead::default();
    reads.insert(key, std::sync::Arc::downgrade(&read));
    read
}

/// One book's latest snapshot: the pointer in the last record of its partition, then
/// the chunks it names. `Ok(None)`: the last record is no pointer (a writer stopped
/// half way); `Err`: why the snapshot cannot be used.
async fn read_book(
    consumer: &StreamConsumer,
    book: i32,
    end: i64,
    events_end: i64,
    config: &ProductConfig,
) -> std::result::Result<Option<Restored>, String> {
    let read_at = |topic: &str, offset: i64| -> std::result::Result<(), String> {
        let mut tpl = TopicPartitionList::new();
        tpl.add_partition_offset(topic, book, Offset::Offset(offset)).map_err(|e| e.to_string())?;
        consumer.assign(&tpl).map_err(|e| e.to_string())
    };
    // The next record of `topic` (one prefetched from the topic read before is passed).
    let next_of = |topic: &'static str| async move {
        loop {
            match tokio::time::timeout(RECEIVE_TIMEOUT, consumer.recv()).await {
                Err(_) => return Err(format!("no record of {topic} came within {RECEIVE_TIMEOUT:?}")),
                Ok(Err(e)) => return Err(e.to_string()),
                Ok(Ok(m)) if m.topic() == topic => return Ok((m.offset(), m.payload().map(<[u8]>::to_vec))),
                Ok(Ok(_)) => continue,
            }
        }
    };
    let next = || next_of(topics::SNAPSHOTS);
    let decode = |payload: Option<Vec<u8>>| -> std::result::Result<Option<Record>, String> {
        let Some(payload) = payload else { return Ok(None) }; // a tombstone
        ledger_proto::decode::<pb::SnapshotRecord>(&payload).map(|r| r.record).map_err(|e| e.to_string())
    };
    let read = |offset: i64| read_at(topics::SNAPSHOTS, offset);
    read(end - 1)?;
    let (_, payload) = next().await?;
    let Some(Record::Pointer(pointer)) = decode(payload)? else {
        tracing::info!(book, "the last record of the book's snapshots is no pointer (a snapshot was being written): folding from the beginning");
        return Ok(None);
    };
    let Some(slot) = Slot::parse(&pointer.slot) else {
        return Err(format!("the pointer names no slot ({:?})", pointer.slot));
    };
    // The snapshot must be of this loan.events: its last fact is where it says.
    if pointer.next_offset > events_end {
        return Err(format!(
            "it reflects loan.events up to offset {}, but the partition ends at {events_end}: the snapshots are of another log",
            pointer.next_offset
        ));
    }
    if pointer.next_offset > 0 {
        read_at(topics::EVENTS, pointer.next_offset - 1)?;
        let (_, payload) = next_of(topics::EVENTS).await?;
        let event_id = payload
            .and_then(|p| ledger_proto::decode::<pb::LoanEvent>(&p).ok())
            .map(|e| e.event_id)
            .unwrap_or_default();
        if event_id != pointer.last_event_id {
            return Err(format!(
                "the fact at offset {} is {event_id:?} on loan.events but {:?} in the snapshot: the snapshots are of another log",
                pointer.next_offset - 1,
                pointer.last_event_id
            ));
        }
    }
    // The readers of one process that start together (in `up`: the book writer, the
    // loan indexes, the publishers, the projector) read and decode each snapshot once.
    let shared = shared(book, &pointer.snapshot_id);
    let got = shared
        .get_or_init(|| async {
            read(pointer.first_chunk_offset)?;
            let mut bytes = Vec::new();
            let mut index = 0;
            while index < pointer.chunks {
                let (offset, payload) = next().await?;
                if offset > pointer.last_chunk_offset {
                    return Err(format!("chunk {index} of {} is missing (compacted away by a newer snapshot)", pointer.snapshot_id));
                }
                let Some(Record::Chunk(chunk)) = decode(payload)? else { continue };
                if chunk.snapshot_id != pointer.snapshot_id {
                    continue; // another book's or snapshot's record between the chunks
                }
                if chunk.index != index || chunk.count != pointer.chunks {
                    return Err(format!("chunk {} of {} where chunk {index} was due", chunk.index, pointer.snapshot_id));
                }
                bytes.extend_from_slice(&chunk.data);
                index += 1;
            }
            let (book_state, meta) = tokio::task::block_in_place(|| decode_snapshot(&bytes, config)).map_err(|e| e.to_string())?;
            if meta.book != book as u32 || meta.next_offset != pointer.next_offset {
                return Err(format!("the snapshot says book {} at {}, its pointer book {book} at {}", meta.book, meta.next_offset, pointer.next_offset));
            }
            Ok((book_state, meta))
        })
        .await;
    let (book_state, meta) = match got {
        Ok((book_state, meta)) => (book_state.clone(), meta.clone()),
        Err(why) => return Err(why.clone()),
    };
    Ok(Some(Restored { book: book_state, meta, taken_at_ms: pointer.taken_at_ms, slot }))
}
