//! Where a keyed record lands: Kafka's default partitioner, murmur2(key) mod N, as the
//! Java client (`BuiltInPartitioner`) and librdkafka's `murmur2_random` compute it.
//! The ledger's producers use it (a producer invariant in [`crate::KafkaConfig`]), so
//! that a borrower's facts and the inputs other teams key by borrower id share a
//! partition number.

/// Kafka's murmur2 hash (`org.apache.kafka.common.utils.Utils.murmur2`).
pub fn murmur2(data: &[u8]) -> i32 {
    const SEED: u32 = 0x9747_b28c;
    const M: u32 = 0x5bd1_e995;
    const R: u32 = 24;
    // Kafka hashes the length as a Java int; a key is far shorter than 2 GiB.
    let length = u32::try_from(data.len()).expect("a record key shorter than 4 GiB");
    let mut h = SEED ^ length;
    let mut chunks = data.chunks_exact(4);
    for chunk in &mut chunks {
        let mut k = u32::from_le_bytes([chunk[0], chunk[1], chunk[2], chunk[3]]);
        k = k.wrapping_mul(M);
        k ^= k >> R;
        k = k.wrapping_mul(M);
        h = h.wrapping_mul(M);
        h ^= k;
    }
    let rest = chunks.remainder();
    if !rest.is_empty() {
        // Java's switch falls through from the third byte to the first, then multiplies once.
        for (i, byte) in rest.iter().enumerate().rev() {
            h ^= u32::from(*byte) << (8 * i);
        }
        h = h.wrapping_mul(M);
    }
    h ^= h >> 13;
    h = h.wrapping_mul(M);
    h ^= h >> 15;
    i32::from_ne_bytes(h.to_ne_bytes())
}

/// The partition Kafka's default partitioner gives `key` among `partitions`:
/// `toPositive(murmur2(key)) % partitions`.
pub fn partition_for_key(key: &[u8], partitions: i32) -> i32 {
    assert!(partitions > 0, "a topic has at least one partition");
    (murmur2(key) & 0x7fff_ffff) % partitions
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Values printed by the Java client itself (kafka-clients 4.1.1,
    /// `Utils.murmur2(s.getBytes("UTF-8"))` and `toPositive(..) % 3`), the first ones
    /// also in Kafka's own UtilsTest.
    #[test]
    fn agrees_with_the_java_client() {
        let cases = [
            ("21", -973_932_308, 0),
            ("foobar", -790_332_482, 0),
            ("a-little-bit-long-string", -985_981_536, 2),
            ("abc", 479_470_107, 0),
            ("B1", -1_555_396_420, 1),
            ("M00001", 970_704_668, 2),
            ("APP0000001", 705_639_515, 2),
        ];
        for (key, hash, partition) in cases {
            assert_eq!(murmur2(key.as_bytes()), hash, "murmur2({key:?})");
            assert_eq!(partition_for_key(key.as_bytes(), 3), partition, "partition of {key:?}");
        }
    }
}
