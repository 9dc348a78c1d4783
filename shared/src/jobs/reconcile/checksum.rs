//! Checksums: per block of 64 versions, a count and a sum of content
//! hashes, grouped by the stream id's CRC-32 as the ledger's query groups
//! them; the versions a stream has shown; and comparing the export's groups
//! with the ledger's.

use std::collections::{HashMap, HashSet};

/// Versions per block: small enough that few blocks differ when 0.1% of
/// events are missing, large enough that the block map stays small.
pub const BLOCK_VERSIONS: i64 = 64;

/// Count and hash sum of one block's distinct events. The content hash
/// covers the whole document, identity included, so two different sets of
/// events give equal sums with negligible probability.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(super) struct Checksum {
    pub(super) count: u64,
    pub(super) hash_sum: u128,
}

impl Checksum {
    pub(super) fn add(&mut self, hash56: u64) {
        self.count += 1;
        self.hash_sum += u128::from(hash56);
    }
}

/// The first 7 bytes of a content hash as an integer: the ledger's
/// `content_hash56` column.
pub(super) fn hash56(hash: &[u8; 32]) -> u64 {
    hash[..7]
        .iter()
        .fold(0u64, |acc, b| (acc << 8) | u64::from(*b))
}

/// A checksum group of the ledger query: a stream's CRC-32 and a block.
/// The server groups by the 4-byte CRC rather than the stream id, which its
/// temporary table stores as 256 fixed bytes: at 5 M events the grouping no
/// longer fit the caches (BENCHMARKS.md). Streams whose CRCs collide are
/// compared as one group; where that group differs, each of its streams is
/// looked at.
pub(super) type Group = (u32, i64);

/// A stream of one tenant, `(tenantId, streamId)`: the same stream id under
/// another tenant is another presentation (EVENTS.md).
pub(super) type StreamKey = (String, String);

/// The ledger query's group of a stream: [`stream_crc`] in SQL.
pub(super) const STREAM_CRC_SQL: &str = "CRC32(CONCAT(tenant_id, ' ', stream_id))";

/// MySQL's `CRC32(CONCAT(tenant_id, ' ', stream_id))` (utf8mb4 bytes, as
/// stored). The separator can make two keys one group, which only means
/// both are looked at where that group differs.
fn stream_crc((tenant, stream): &StreamKey) -> u32 {
    let mut crc = crc32fast::Hasher::new();
    crc.update(tenant.as_bytes());
    crc.update(b" ");
    crc.update(stream.as_bytes());
    crc.finalize()
}

/// One bit per version of a stream.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(super) struct VersionBits(Vec<u64>);

impl VersionBits {
    /// Sets `version`'s bit; true when it was not set.
    pub(super) fn insert(&mut self, version: i64) -> bool {
        let Ok(index) = usize::try_from(version) else {
            return false;
        };
        let word = index / 64;
        if word >= self.0.len() {
            // Versions are gapless from 1, so this grows with the stream; cap
            // absurd versions rather than allocate for them.
            if word > (1 << 26) {
                return true;
            }
            self.0.resize(word + 1, 0);
        }
        let bit = 1u64 << (index % 64);
        let first = self.0[word] & bit == 0;
        self.0[word] |= bit;
        first
    }

    pub(super) fn contains(&self, version: i64) -> bool {
        usize::try_from(version).is_ok_and(|index| {
            self.0
                .get(index / 64)
                .is_some_and(|word| word & (1u64 << (index % 64)) != 0)
        })
    }

    pub(super) fn to_bytes(&self) -> Vec<u8> {
        self.0.iter().flat_map(|w| w.to_le_bytes()).collect()
    }

    pub(super) fn from_bytes(bytes: &[u8]) -> VersionBits {
        VersionBits(
            bytes
                .chunks_exact(8)
                .map(|c| u64::from_le_bytes(c.try_into().expect("8 bytes")))
                .collect(),
        )
    }
}

/// One stream's state. Export pass: the versions seen and the export's
/// checksum per block. Details pass: the versions compared and the blocks
/// that differ (their checksums unused).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(super) struct StreamState {
    pub(super) versions: VersionBits,
    pub(super) blocks: HashMap<i64, Checksum>,
}

impl StreamState {
    pub(super) fn blocks_to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.blocks.len() * 32);
        for (block, c) in &self.blocks {
            out.extend_from_slice(&block.to_le_bytes());
            out.extend_from_slice(&c.count.to_le_bytes());
            out.extend_from_slice(&c.hash_sum.to_le_bytes());
        }
        out
    }

    pub(super) fn blocks_from_bytes(bytes: &[u8]) -> HashMap<i64, Checksum> {
        bytes
            .chunks_exact(32)
            .map(|c| {
                let int = |range: std::ops::Range<usize>| -> [u8; 8] {
                    c[range].try_into().expect("8 bytes")
                };
                let wide = |range: std::ops::Range<usize>| -> [u8; 16] {
                    c[range].try_into().expect("16 bytes")
                };
                (
                    i64::from_le_bytes(int(0..8)),
                    Checksum {
                        count: u64::from_le_bytes(int(8..16)),
                        hash_sum: u128::from_le_bytes(wide(16..32)),
                    },
                )
            })
            .collect()
    }
}

/// Compares the export's groups with the ledger's: the blocks of the
/// differing groups, by CRC.
pub(super) fn compare(
    export: &HashMap<StreamKey, StreamState>,
    ledger: &HashMap<Group, Checksum>,
) -> HashMap<u32, HashSet<i64>> {
    let mut groups: HashMap<Group, Checksum> = HashMap::new();
    for (stream, state) in export {
        let crc = stream_crc(stream);
        for (block, checksum) in &state.blocks {
            let group = groups.entry((crc, *block)).or_default();
            group.count += checksum.count;
            group.hash_sum += checksum.hash_sum;
        }
    }
    let mut differing: HashMap<u32, HashSet<i64>> = HashMap::new();
    for (group, checksum) in ledger {
        if groups.remove(group).as_ref() != Some(checksum) {
            differing.entry(group.0).or_default().insert(group.1);
        }
    }
    // What remains of the export's groups is in the export only.
    for (crc, block) in groups.into_keys() {
        differing.entry(crc).or_default().insert(block);
    }
    differing
}

/// The streams to look at in detail: each of `streams` (the export's and
/// the ledger's, repeats allowed) in a differing group, with that group's
/// blocks and no versions yet.
pub(super) fn streams_of(
    differing: &HashMap<u32, HashSet<i64>>,
    streams: impl IntoIterator<Item = StreamKey>,
) -> HashMap<StreamKey, StreamState> {
    streams
        .into_iter()
        .filter_map(|stream| {
            let blocks = differing.get(&stream_crc(&stream))?;
            let state = StreamState {
                versions: VersionBits::default(),
                blocks: blocks.iter().map(|b| (*b, Checksum::default())).collect(),
            };
            Some((stream, state))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn streams_whose_crcs_collide_are_one_group_and_both_looked_at_where_it_differs() {
        // Two ids of one length whose CRC-32s collide: CRC is affine, so they
        // still collide behind the same tenant and separator.
        assert_eq!(
            crc32fast::hash(b"prs-fswd4dyg3i"),
            crc32fast::hash(b"prs-yc3ktahsjd")
        );
        let key = |stream: &str| ("acme".to_string(), stream.to_string());
        let (a, b) = (key("prs-fswd4dyg3i"), key("prs-yc3ktahsjd"));
        assert_eq!(stream_crc(&a), stream_crc(&b));
        let export = || {
            let mut export: HashMap<StreamKey, StreamState> = HashMap::new();
            for (stream, hash) in [(&a, 5), (&b, 7)] {
                let state = export.entry(stream.clone()).or_default();
                state.versions.insert(3);
                state.blocks.entry(0).or_default().add(hash);
            }
            export
        };
        let ledger = |hash_sum: u128| {
            HashMap::from([((stream_crc(&a), 0), Checksum { count: 2, hash_sum })])
        };
        let looked_at =
            |blocks: &HashMap<u32, HashSet<i64>>| streams_of(blocks, export().into_keys());
        let blocks = compare(&export(), &ledger(12));
        let differing = looked_at(&blocks);
        assert!(differing.is_empty() && blocks.is_empty());
        let blocks = compare(&export(), &ledger(13));
        let differing = looked_at(&blocks);
        let mut streams: Vec<&StreamKey> = differing.keys().collect();
        streams.sort();
        assert_eq!(streams, [&a, &b]);
        assert!(differing
            .values()
            .all(|s| s.versions == VersionBits::default() && s.blocks.keys().eq([0].iter())));
        assert_eq!(
            blocks,
            HashMap::from([(stream_crc(&a), HashSet::from([0]))])
        );
    }

    #[test]
    fn stream_state_round_trips_through_its_stored_form() {
        let mut state = StreamState::default();
        for version in [1, 2, 64, 65, 700, 9_999] {
            assert!(state.versions.insert(version));
            state
                .blocks
                .entry(version.div_euclid(BLOCK_VERSIONS))
                .or_default()
                .add(0x00ff_ffff_ffff_ffff);
        }
        assert!(!state.versions.insert(64), "a repeat is not new");
        let stored = StreamState {
            versions: VersionBits::from_bytes(&state.versions.to_bytes()),
            blocks: StreamState::blocks_from_bytes(&state.blocks_to_bytes()),
        };
        assert_eq!(stored, state);
        assert!(stored.versions.contains(700) && !stored.versions.contains(701));
    }
}
