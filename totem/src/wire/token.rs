//! The ordering token (Totem paper, section 3).

use prost::Message;

use super::WireRingId;

/// The regular token. Only its holder multicasts; it carries the ring's ordering state.
#[derive(Clone, PartialEq, Message)]
pub struct Token {
    /// The ring.
    #[prost(message, optional, tag = "1")]
    pub ring_id: Option<WireRingId>,
    /// Incremented on every forward; lets a node drop duplicate or retransmitted tokens.
    #[prost(uint64, tag = "2")]
    pub token_seq: u64,
    /// Highest seq assigned in the ring.
    #[prost(uint64, tag = "3")]
    pub seq: u64,
    /// Lowest `my_aru` of the ring, as far as the token knows.
    #[prost(uint64, tag = "4")]
    pub aru: u64,
    /// Node that lowered `aru` (0 = none).
    #[prost(uint32, tag = "5")]
    pub aru_owner: u32,
    /// Retransmit requests: seqs of this ring someone is missing.
    #[prost(uint64, repeated, tag = "6")]
    pub rtr: Vec<u64>,
    /// Flow control count: packets multicast in the last rotation.
    #[prost(uint32, tag = "7")]
    pub fcc: u32,
    /// Packets waiting to be sent ring-wide (sum of backlogs).
    #[prost(uint32, tag = "8")]
    pub backlog: u32,
    /// Recovery: someone still has old-ring packets to re-send.
    #[prost(bool, tag = "9")]
    pub retrans_flg: bool,
    /// Recovery is complete; every member goes operational on receipt.
    #[prost(bool, tag = "10")]
    pub recovery_done: bool,
}
