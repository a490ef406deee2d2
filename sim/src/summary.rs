//! Readable one-line summaries of Totem packets, for trace lines only (decoding costs time, so
//! the hot path never calls this).

use bytes::Bytes;
use totem::wire::{Packet, WireRingId};

fn ring(r: Option<WireRingId>) -> String {
    r.map_or_else(|| "?".to_string(), |r| format!("{}.{}", r.representative, r.seq))
}

/// A summary of the datagram's contents, e.g. `token ring 1.8 seq 12 aru 10 rtr [11]`.
pub fn summarize(datagram: &Bytes) -> String {
    match Packet::decode(datagram.clone()) {
        Err(e) => format!("undecodable ({e})"),
        Ok(Packet::Mcast(m)) => {
            let inner = match &m.recovered {
                Some(old) => {
                    format!(" recovering ring {} seq {} from n{}", ring(old.ring_id), old.seq, old.sender)
                }
                None => format!(" {} fragments{}", m.fragments.len(), if m.safe { " safe" } else { "" }),
            };
            format!("mcast ring {} seq {} from n{}{inner}", ring(m.ring_id), m.seq, m.sender)
        }
        Ok(Packet::Token(t)) => format!(
            "token ring {} token_seq {} seq {} aru {} aru_owner {} rtr {:?} fcc {} backlog {}{}{}",
            ring(t.ring_id),
            t.token_seq,
            t.seq,
            t.aru,
            t.aru_owner,
            t.rtr,
            t.fcc,
            t.backlog,
            if t.retrans_flg { " retrans_flg" } else { "" },
            if t.recovery_done { " recovery_done" } else { "" }
        ),
        Ok(Packet::Join(j)) => {
            format!(
                "join from n{} proc {:?} fail {:?} ring_seq {}",
                j.sender, j.proc_set, j.fail_set, j.ring_seq
            )
        }
        Ok(Packet::CommitToken(c)) => {
            let entries: Vec<String> = c
                .entries
                .iter()
                .map(|e| {
                    if e.filled {
                        format!("{}:{}/{}/{}", ring(e.old_ring_id), e.aru, e.high_seq, e.high_delivered)
                    } else {
                        "-".into()
                    }
                })
                .collect();
            format!(
                "commit_token ring {} members {:?} rotation {} index {} entries [{}]",
                ring(c.ring_id),
                c.members,
                c.rotation,
                c.index,
                entries.join(" ")
            )
        }
        Ok(Packet::MergeDetect(n)) => format!("merge_detect from n{} ring {}", n.sender, ring(n.ring_id)),
        Ok(Packet::TokenHoldCancel(n)) => {
            format!("token_hold_cancel from n{} ring {}", n.sender, ring(n.ring_id))
        }
        Ok(Packet::Leave(n)) => format!("leave from n{} ring {}", n.sender, ring(n.ring_id)),
    }
}
