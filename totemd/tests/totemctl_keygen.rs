//! `totemctl keygen` writes an authkey as corosync-keygen does: raw random bytes, mode 0400,
//! never over an existing key unless forced.

use std::os::unix::fs::PermissionsExt;
use std::process::Command;

fn totemctl(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_totemctl")).args(args).output().expect("run totemctl")
}

#[test]
fn keygen_writes_a_0400_key_and_refuses_to_overwrite_it() {
    let dir = std::env::temp_dir().join(format!("totemctl-keygen-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let key = dir.join("authkey");
    let path = key.to_str().unwrap();

    let out = totemctl(&["keygen", path]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let meta = std::fs::metadata(&key).unwrap();
    assert_eq!(meta.permissions().mode() & 0o777, 0o400);
    assert_eq!(meta.len(), 256);
    let first = std::fs::read(&key).unwrap();
    assert!(totemd::keyfile::load(&key).is_ok(), "the daemon reads what keygen writes");

    let again = totemctl(&["keygen", path]);
    assert_eq!(again.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&again.stderr).contains("exists"));
    assert_eq!(std::fs::read(&key).unwrap(), first, "the existing key is untouched");

    let forced = totemctl(&["keygen", "--force", "-l", "1024", path]);
    assert!(forced.status.success());
    assert_eq!(std::fs::metadata(&key).unwrap().len(), 1024);
    assert_ne!(std::fs::read(&key).unwrap()[..256], first[..], "a new random key");

    let short = totemctl(&["keygen", "--force", "-l", "16", path]);
    assert!(!short.status.success(), "keys shorter than 128 bytes are refused");
    std::fs::remove_dir_all(&dir).unwrap();
}
