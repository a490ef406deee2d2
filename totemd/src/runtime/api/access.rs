//! Who may use the local API: root, the daemon's own user, and the users and groups of the
//! `uidgid` sections (corosync.conf(5)), checked against each peer's socket credentials.

use std::collections::BTreeSet;
use std::os::unix::fs::MetadataExt;

use crate::config::UidGid;

/// The users and groups allowed besides root.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Access {
    /// The daemon's effective user (a daemon run by a user serves that user).
    own_uid: u32,
    uids: BTreeSet<u32>,
    gids: BTreeSet<u32>,
}

impl Access {
    /// Resolves the `uidgid` entries (names through /etc/passwd and /etc/group, or numbers);
    /// an entry that names nobody is logged and ignored.
    pub fn from_config(entries: &[UidGid]) -> Access {
        let own_uid = std::fs::metadata("/proc/self").map(|m| m.uid()).unwrap_or(0);
        let passwd = std::fs::read_to_string("/etc/passwd").unwrap_or_default();
        let group = std::fs::read_to_string("/etc/group").unwrap_or_default();
        let mut access = Access { own_uid, ..Access::default() };
        for entry in entries {
            let (name, table, set, what) = match entry {
                UidGid::Uid(n) => (n, &passwd, &mut access.uids, "user"),
                UidGid::Gid(n) => (n, &group, &mut access.gids, "group"),
            };
            match resolve(name, table) {
                Some(id) => {
                    set.insert(id);
                }
                None => tracing::warn!("uidgid: no {what} named {name:?}; entry ignored"),
            }
        }
        access
    }

    /// Grants for unit tests, without reading /etc/passwd or /etc/group.
    #[cfg(test)]
    pub(in crate::runtime) fn for_tests(uids: BTreeSet<u32>, gids: BTreeSet<u32>) -> Access {
        Access { own_uid: 0, uids, gids }
    }

    /// The granted users (`uidgid { uid: }`).
    pub fn uids(&self) -> &BTreeSet<u32> {
        &self.uids
    }

    /// The granted groups (`uidgid { gid: }`): besides root, they may write confdb keys.
    pub fn gids(&self) -> &BTreeSet<u32> {
        &self.gids
    }

    /// Whether anyone but root and the daemon's user is granted (the socket is then world-connectable).
    pub fn grants_others(&self) -> bool {
        !self.uids.is_empty() || !self.gids.is_empty()
    }

    /// Whether a peer with these credentials may connect; `Err` says why not.
    pub fn check(&self, uid: u32, gid: u32) -> Result<(), String> {
        if uid == 0 || uid == self.own_uid || self.uids.contains(&uid) || self.gids.contains(&gid) {
            Ok(())
        } else {
            Err(format!(
                "uid {uid} (gid {gid}) may not use totemd: grant it with uidgid {{ uid: NAME }} or {{ gid: NAME }} in corosync.conf"
            ))
        }
    }
}

/// A number, or the id of `name` in a passwd- or group-format table (`name:x:id:...`).
fn resolve(name: &str, table: &str) -> Option<u32> {
    if let Ok(id) = name.parse() {
        return Some(id);
    }
    table.lines().find_map(|line| {
        let mut fields = line.split(':');
        (fields.next() == Some(name)).then(|| fields.nth(1).and_then(|id| id.parse().ok())).flatten()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_resolve_through_the_tables_and_numbers_stand_for_themselves() {
        let passwd = "root:x:0:0:root:/root:/bin/bash\nhacluster:x:189:189::/home/hacluster:/sbin/nologin\n";
        assert_eq!(resolve("hacluster", passwd), Some(189));
        assert_eq!(resolve("1234", passwd), Some(1234));
        assert_eq!(resolve("nobody-here", passwd), None);
        assert_eq!(resolve("haclient", "haclient:x:190:\n"), Some(190));
    }

    #[test]
    fn root_the_daemons_user_and_granted_ids_pass_everyone_else_is_told_why_not() {
        let access = Access { own_uid: 1000, uids: BTreeSet::from([189]), gids: BTreeSet::from([190]) };
        assert!(access.check(0, 0).is_ok());
        assert!(access.check(1000, 1000).is_ok());
        assert!(access.check(189, 5).is_ok());
        assert!(access.check(7, 190).is_ok());
        let err = access.check(1001, 1001).unwrap_err();
        assert!(err.contains("uid 1001") && err.contains("uidgid"), "{err}");
        assert!(access.grants_others());
        assert!(!Access { own_uid: 0, ..Access::default() }.grants_others());
    }
}
