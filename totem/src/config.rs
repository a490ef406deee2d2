//! Protocol options, named and defaulted as in corosync.conf's `totem` section (corosync.conf(5)).

use std::time::Duration;

/// Options of the Totem protocol. Field names follow corosync.conf so a config maps 1:1.
#[derive(Clone, Debug, PartialEq)]
pub struct TotemConfig {
    /// `token`: time without a token before it is declared lost (corosync default 3000 ms).
    pub token: Duration,
    /// `token_retransmits_before_loss_const`: token retransmits before loss (default 4).
    pub token_retransmits_before_loss_const: u32,
    /// `hold`: how long an idle representative holds the token before passing it (default 180 ms;
    /// never more than 0.8 × the token retransmit interval, see [`TotemConfig::effective_hold`]).
    pub hold: Duration,
    /// `join`: interval between join messages while gathering (default 50 ms).
    pub join: Duration,
    /// `consensus`: time to reach consensus in gather before failing the silent (default 1.2 × token).
    pub consensus: Duration,
    /// `merge`: interval at which an idle representative looks for other rings (default 200 ms).
    pub merge: Duration,
    /// `downcheck`: interval at which a down network interface is checked again (default 1000 ms).
    /// Accepted for corosync.conf compatibility; interface checks belong to the link layer of
    /// the daemon, the engine does not use it.
    pub downcheck: Duration,
    /// `fail_recv_const`: rotations with a stuck aru before its owner is declared failed (default 2500).
    pub fail_recv_const: u32,
    /// `seqno_unchanged_const`: idle rotations before the representative starts to hold the
    /// token (default 30, as corosync). Fewer save CPU on a lightly loaded ring (3: 61 instead
    /// of 176 µs of daemon CPU a message at 5000 msgs/s on two nodes) but cost latency: every
    /// burst then finds both daemons asleep (p50 289 instead of 203 µs, p99 2.5 instead of
    /// 1.0 ms on two virtual 2-core hosts).
    pub seqno_unchanged_const: u32,
    /// `miss_count_const`: token visits on which a message must be found missing before its
    /// retransmission is requested, giving late multicasts time to arrive (default 5).
    pub miss_count_const: u32,
    /// `window_size`: messages (packets) all nodes together may send in one token rotation
    /// (default 400; corosync's is 50).
    ///
    /// corosync 3 hands knet Totem packets of up to 64 KiB, which knet cuts to the path MTU, so
    /// its 50 packets a rotation carry up to about 3 MiB. Packets of `netmtu` (the engine's
    /// default, and after loss) carry about 600 kB a rotation with the defaults here, 128
    /// packets (180 kB) a visit; with [`packet_max`](Self::packet_max) more.
    pub window_size: u32,
    /// `max_messages`: messages (packets) one node may send per token visit (default 128;
    /// corosync's is 17, see [`window_size`](Self::window_size)).
    pub max_messages: u32,
    /// `send_join`: upper bound of a random delay before sending a join, 0 = none (default 0).
    pub send_join: Duration,
    /// `netmtu`: largest datagram the engine emits, in bytes (default 1500).
    pub netmtu: usize,
    /// Largest packet the engine builds while the ring sees no loss, in bytes; 0 (the
    /// default) = `netmtu`. For a transport that cuts a packet into datagrams of `netmtu`
    /// and joins them again, as totemd's link layer does (and knet does for corosync, whose
    /// Totem packets are up to 64 KiB): fewer, larger packets cost less per byte. A packet
    /// is lost with any of its datagrams, so once a token asks for a retransmission the
    /// engine packs to `netmtu` again, until [`LOSS_QUIET`] passes with no request.
    pub packet_max: usize,
    /// Largest application message accepted by [`crate::Srp::submit`] (default 1 MiB).
    pub message_size_max: usize,
    /// Bytes of application messages that may wait to be sent before `submit` says try again
    /// (default 16 MiB).
    pub send_queue_bytes_max: usize,
    /// Entries carried in a token's retransmit request list (default 64).
    pub rtr_max: usize,
}

/// How long the engine packs to `netmtu` after a token asked for a retransmission, when
/// [`TotemConfig::packet_max`] allows larger packets.
pub const LOSS_QUIET: Duration = Duration::from_secs(2);

/// Upper bound of [`TotemConfig::packet_max`]: a packet, with room for a recovery header and
/// a transport's own framing, stays within one UDP datagram's worth of bytes.
pub const PACKET_MAX_LIMIT: usize = 60 * 1024;

/// Bytes of a datagram taken by the packet header, crc and the packed message framing, kept
/// free when packing messages up to `netmtu`. Also covers the transport's own overhead
/// (IP + UDP headers, authentication) so a packet fits a link MTU of `netmtu`.
pub const PACKET_OVERHEAD: usize = 160;

impl Default for TotemConfig {
    fn default() -> Self {
        let token = Duration::from_millis(3000);
        TotemConfig {
            token,
            token_retransmits_before_loss_const: 4,
            hold: Duration::from_millis(180),
            join: Duration::from_millis(50),
            consensus: token.mul_f64(1.2),
            merge: Duration::from_millis(200),
            downcheck: Duration::from_millis(1000),
            fail_recv_const: 2500,
            seqno_unchanged_const: 30,
            miss_count_const: 5,
            window_size: 400,
            max_messages: 128,
            send_join: Duration::ZERO,
            netmtu: 1500,
            packet_max: 0,
            message_size_max: 1 << 20,
            send_queue_bytes_max: 16 << 20,
            rtr_max: 64,
        }
    }
}

impl TotemConfig {
    /// A config with `token` set and `consensus` derived from it as corosync does (1.2 × token).
    pub fn with_token(token: Duration) -> Self {
        TotemConfig { token, consensus: token.mul_f64(1.2), ..TotemConfig::default() }
    }

    /// `token_retransmit`: time after passing the token with no sign of it before sending it
    /// again; corosync derives it as token / (token_retransmits_before_loss_const + 0.2).
    pub fn token_retransmit(&self) -> Duration {
        self.token.div_f64(f64::from(self.token_retransmits_before_loss_const) + 0.2)
    }

    /// The hold actually used: `hold`, capped below the token retransmit interval so that the
    /// previous node never re-sends a token the representative merely holds.
    pub fn effective_hold(&self) -> Duration {
        self.hold.min(self.token_retransmit().mul_f64(0.8))
    }

    /// Payload bytes available in one datagram for packed application messages.
    pub fn packet_payload_max(&self) -> usize {
        self.netmtu.saturating_sub(PACKET_OVERHEAD).max(256)
    }

    /// Payload bytes available in one packet while no loss is seen ([`packet_max`](Self::packet_max)).
    pub fn large_packet_payload_max(&self) -> usize {
        self.packet_payload_max().max(self.packet_max.saturating_sub(PACKET_OVERHEAD))
    }

    /// Checks the options against each other; returns a description of the first problem.
    pub fn validate(&self) -> Result<(), String> {
        if self.token.is_zero() {
            return Err("token must be greater than 0".into());
        }
        if self.consensus < self.token {
            return Err(format!(
                "consensus ({} ms) must be at least token ({} ms)",
                self.consensus.as_millis(),
                self.token.as_millis()
            ));
        }
        if self.join.is_zero() || self.merge.is_zero() || self.downcheck.is_zero() {
            return Err("join, merge and downcheck must be greater than 0".into());
        }
        if self.window_size == 0 || self.max_messages == 0 {
            return Err("window_size and max_messages must be greater than 0".into());
        }
        if self.max_messages > self.window_size {
            return Err("max_messages must not exceed window_size".into());
        }
        if self.netmtu < PACKET_OVERHEAD + 256 {
            return Err(format!("netmtu must be at least {}", PACKET_OVERHEAD + 256));
        }
        if self.packet_max != 0 && !(self.netmtu..=PACKET_MAX_LIMIT).contains(&self.packet_max) {
            return Err(format!(
                "packet_max ({}) must be 0 or from netmtu ({}) to {PACKET_MAX_LIMIT}",
                self.packet_max, self.netmtu
            ));
        }
        if self.token_retransmits_before_loss_const == 0 || self.fail_recv_const == 0 {
            return Err("token_retransmits_before_loss_const and fail_recv_const must be at least 1".into());
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn packet_max_is_0_or_between_netmtu_and_the_limit() {
        let mut c = TotemConfig::default();
        assert_eq!(c.large_packet_payload_max(), c.packet_payload_max());
        for ok in [0, 1500, 16 * 1024, PACKET_MAX_LIMIT] {
            c.packet_max = ok;
            assert_eq!(c.validate(), Ok(()), "{ok}");
        }
        c.packet_max = 16 * 1024;
        assert_eq!(c.large_packet_payload_max(), 16 * 1024 - PACKET_OVERHEAD);
        for bad in [1, 1499, PACKET_MAX_LIMIT + 1] {
            c.packet_max = bad;
            assert!(c.validate().unwrap_err().contains("packet_max"), "{bad}");
        }
    }
}
