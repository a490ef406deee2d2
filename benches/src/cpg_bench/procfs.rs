//! What Linux's `/proc` tells about a daemon: resident memory and CPU time used.

use std::time::Duration;

/// Linux's `USER_HZ` when `getconf CLK_TCK` cannot be asked: 100 on every architecture
/// Linux runs on today.
const USER_HZ_DEFAULT: u64 = 100;

/// Resident memory of process `pid` in KiB (`VmRSS` of `/proc/PID/status`); `None` if the
/// process is gone or this is not Linux.
pub fn rss_kib(pid: u32) -> Option<u64> {
    parse_vm_rss(&std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?)
}

/// CPU time (user + system) process `pid` has used so far (`utime` + `stime` of
/// `/proc/PID/stat`, all its threads).
pub fn cpu_time(pid: u32, user_hz: u64) -> Option<Duration> {
    let ticks = parse_stat_ticks(&std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?)?;
    Some(Duration::from_secs_f64(ticks as f64 / user_hz.max(1) as f64))
}

/// Clock ticks per second of `/proc/PID/stat` (`getconf CLK_TCK`, else 100).
pub fn user_hz() -> u64 {
    std::process::Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.trim().parse().ok())
        .filter(|&hz| hz > 0)
        .unwrap_or(USER_HZ_DEFAULT)
}

/// The `VmRSS:   1234 kB` value of a `/proc/PID/status` text, in KiB.
pub fn parse_vm_rss(status: &str) -> Option<u64> {
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    line["VmRSS:".len()..].split_whitespace().next()?.parse().ok()
}

/// `utime + stime` (fields 14 and 15, in clock ticks) of a `/proc/PID/stat` line. The
/// command name (field 2) is in parentheses and may hold spaces and parentheses itself, so
/// fields are counted from the last `)`.
pub fn parse_stat_ticks(stat: &str) -> Option<u64> {
    let (_, rest) = stat.rsplit_once(')')?;
    // `rest` starts with field 3 (state): utime is field 14, index 11 here.
    let mut fields = rest.split_whitespace().skip(11);
    let utime: u64 = fields.next()?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    Some(utime + stime)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vm_rss_is_read_in_kib() {
        let status = "Name:\ttotemd\nVmPeak:\t  99999 kB\nVmRSS:\t    7340 kB\nThreads:\t3\n";
        assert_eq!(parse_vm_rss(status), Some(7340));
        assert_eq!(parse_vm_rss("Name:\tkthreadd\n"), None);
    }

    #[test]
    fn stat_ticks_count_fields_after_the_command_name() {
        let stat = "4242 (tot emd) (x)) S 1 4242 4242 0 -1 4194560 900 0 0 0 1234 56 0 0 20 0 3 0 \
                    100 200000 1800 18446744073709551615";
        assert_eq!(parse_stat_ticks(stat), Some(1234 + 56));
        assert_eq!(parse_stat_ticks("4242 (totemd) S 1"), None);
    }

    #[test]
    fn own_process_is_readable() {
        let me = std::process::id();
        assert!(rss_kib(me).is_some_and(|kib| kib > 0));
        assert!(cpu_time(me, user_hz()).is_some());
    }
}
