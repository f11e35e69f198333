//! Field deployment: the systemd unit is valid and hardened, the install
//! script is idempotent, the Debian package carries what a station needs,
//! and ONNX Runtime runs under the unit's MemoryDenyWriteExecute.

use std::collections::BTreeMap;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::Command;

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn run(cmd: &mut Command) -> String {
    let out = cmd.output().expect("run command");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{cmd:?} failed:\n{text}");
    text
}

/// The unit with ExecStart pointing at the binary under test, so `verify`
/// can check the command exists.
fn unit_for_test(dir: &Path) -> PathBuf {
    let unit = std::fs::read_to_string(root().join("systemd/rumbled.service")).expect("unit");
    let path = dir.join("rumbled.service");
    std::fs::write(
        &path,
        unit.replace("/usr/bin/rumbled", env!("CARGO_BIN_EXE_rumbled")),
    )
    .expect("write unit");
    path
}

#[test]
fn the_unit_verifies_and_scores_at_most_1_5() {
    let dir = tempfile::tempdir().expect("tempdir");
    let unit = unit_for_test(dir.path());
    let verify = Command::new("systemd-analyze")
        .arg("verify")
        .arg(&unit)
        .output()
        .expect("systemd-analyze");
    let complaints = String::from_utf8_lossy(&verify.stderr);
    assert!(
        verify.status.success() && !complaints.contains("rumbled.service"),
        "verify: {complaints}"
    );

    let text = run(Command::new("systemd-analyze")
        .args(["security", "--offline=yes"])
        .arg(&unit));
    let score: f64 = text
        .lines()
        .find_map(|l| {
            l.split("Overall exposure level for rumbled.service: ")
                .nth(1)
        })
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no exposure score in:\n{text}"));
    assert!(score <= 1.5, "exposure {score} > 1.5:\n{text}");

    let unit_text = std::fs::read_to_string(&unit).expect("unit");
    for needed in [
        "Type=notify",
        "WatchdogSec=",
        "Restart=on-failure",
        "StateDirectory=rumbled",
        "SupplementaryGroups=audio",
        "DeviceAllow=char-alsa rw",
    ] {
        assert!(unit_text.contains(needed), "unit lacks {needed}");
    }
}

/// Every file under `dir` with its content and modification time.
fn snapshot(dir: &Path) -> BTreeMap<PathBuf, (Vec<u8>, std::time::SystemTime)> {
    let mut files = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).expect("read dir") {
            let path = entry.expect("entry").path();
            let meta = std::fs::symlink_metadata(&path).expect("metadata");
            if meta.is_dir() {
                stack.push(path);
            } else {
                let content = if meta.file_type().is_symlink() {
                    std::fs::read_link(&path)
                        .expect("link")
                        .into_os_string()
                        .into_encoded_bytes()
                } else {
                    std::fs::read(&path).expect("read")
                };
                files.insert(
                    path.strip_prefix(dir).expect("prefix").to_path_buf(),
                    (content, meta.modified().expect("mtime")),
                );
            }
        }
    }
    files
}

fn install_into(dest: &Path) -> String {
    run(Command::new("bash")
        .arg(root().join("deploy/install.sh"))
        .arg("--destdir")
        .arg(dest)
        .arg("--binary")
        .arg(env!("CARGO_BIN_EXE_rumbled")))
}

#[test]
fn install_into_a_scratch_root_is_complete_and_idempotent() {
    let dir = tempfile::tempdir().expect("tempdir");
    let dest = dir.path();
    install_into(dest);
    let first = snapshot(dest);
    let expected = [
        "usr/bin/rumbled",
        "usr/lib/rumbled/libonnxruntime.so.1",
        "usr/share/rumbled/models/rumbled-edge-ev5.onnx",
        "usr/share/rumbled/models/rumbled-edge-ev5.json",
        "usr/share/rumbled/rumbled.toml.example",
        "lib/systemd/system/rumbled.service",
        "etc/rumbled/rumbled.toml",
    ];
    for path in expected {
        assert!(
            first.contains_key(Path::new(path)),
            "{path} not installed; got {:?}",
            first.keys()
        );
    }
    install_into(dest);
    assert_eq!(snapshot(dest), first, "a second install changed files");

    // An edited config survives a reinstall; the new default lands beside it.
    let config = dest.join("etc/rumbled/rumbled.toml");
    std::fs::write(&config, "[station]\nname = \"st03\"\n").expect("edit");
    let said = install_into(dest);
    assert!(said.contains("kept your"), "{said}");
    assert_eq!(
        std::fs::read_to_string(&config).expect("config"),
        "[station]\nname = \"st03\"\n"
    );
    assert!(dest.join("etc/rumbled/rumbled.toml.dist").exists());

    // The installed binary finds the installed library and model by itself.
    let out = Command::new(dest.join("usr/bin/rumbled"))
        .args(["model", "--config"])
        .arg(&config)
        .env_remove("RUMBLED_ONNXRUNTIME")
        .output()
        .expect("run installed rumbled");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    run(Command::new("bash")
        .arg(root().join("deploy/uninstall.sh"))
        .arg("--destdir")
        .arg(dest));
    assert!(!dest.join("usr/bin/rumbled").exists());
    assert!(config.exists(), "uninstall keeps the config unless --purge");
}

#[test]
fn the_debian_package_has_the_right_contents_and_metadata() {
    let dir = tempfile::tempdir().expect("tempdir");
    let deb = run(Command::new("bash")
        .arg(root().join("deploy/build-deb.sh"))
        .arg("--binary")
        .arg(env!("CARGO_BIN_EXE_rumbled"))
        .arg("--out")
        .arg(dir.path()));
    let deb = deb.trim().lines().last().expect("deb path").to_string();
    let info = run(Command::new("dpkg-deb").args(["-I", &deb]));
    let arch = run(Command::new("dpkg").arg("--print-architecture"));
    assert!(info.contains("Package: rumbled"), "{info}");
    assert!(
        info.contains(&format!("Architecture: {}", arch.trim())),
        "{info}"
    );
    assert!(
        info.contains(&format!("Version: {}", env!("CARGO_PKG_VERSION"))),
        "{info}"
    );
    assert!(
        info.contains("postinst") && info.contains("conffiles"),
        "{info}"
    );
    let contents = run(Command::new("dpkg-deb").args(["-c", &deb]));
    for path in [
        "./usr/bin/rumbled",
        "./usr/lib/rumbled/libonnxruntime.so.1",
        "./usr/share/rumbled/models/rumbled-edge-ev5.onnx",
        "./lib/systemd/system/rumbled.service",
        "./etc/rumbled/rumbled.toml",
    ] {
        assert!(contents.contains(path), "{path} missing:\n{contents}");
    }
    let root_line = contents.lines().next().unwrap_or_default();
    assert!(
        root_line.starts_with("drwxr-xr-x"),
        "package root must be 0755: {root_line}"
    );
    let postinst = run(Command::new("dpkg-deb").args(["-I", &deb, "postinst"]));
    assert!(
        postinst.contains("adduser --system") && postinst.contains("daemon-reload"),
        "{postinst}"
    );
}

#[test]
fn onnx_runtime_works_under_memory_deny_write_execute() {
    // MemoryDenyWriteExecute= in the unit is the kernel's MDWE policy; set
    // the same policy (PR_SET_MDWE, PR_MDWE_REFUSE_EXEC_GAIN) on a replay so
    // an ONNX Runtime that needed W+X memory would fail here, not on a station.
    const PR_SET_MDWE: libc::c_int = 65;
    const PR_MDWE_REFUSE_EXEC_GAIN: libc::c_ulong = 1;
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_rumbled"));
    cmd.args(["replay", "-q"])
        .arg(root().join("models/demo/demo.wav"));
    // SAFETY: prctl is async-signal-safe and touches only the child's flags.
    unsafe {
        cmd.pre_exec(|| {
            if libc::prctl(PR_SET_MDWE, PR_MDWE_REFUSE_EXEC_GAIN, 0, 0, 0) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let out = cmd
        .output()
        .expect("kernel refused PR_SET_MDWE (needs Linux >= 6.3)");
    assert!(
        out.status.success(),
        "replay under MDWE failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn under_journald_log_lines_carry_no_timestamp_of_their_own() {
    let replay_missing = |journal: bool| {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_rumbled"));
        cmd.args(["replay", "-q", "/nonexistent/rec.wav"])
            .env_remove("RUST_LOG");
        if journal {
            cmd.env("JOURNAL_STREAM", "8:12345");
        } else {
            cmd.env_remove("JOURNAL_STREAM");
        }
        let out = cmd.output().expect("run rumbled");
        String::from_utf8_lossy(&out.stderr).into_owned()
    };
    let plain = replay_missing(false);
    let line = plain
        .lines()
        .find(|l| l.contains("rec.wav"))
        .expect("error line");
    assert!(
        line.contains("T") && line.contains("Z"),
        "terminal lines are timestamped: {line}"
    );
    let journal = replay_missing(true);
    let line = journal
        .lines()
        .find(|l| l.contains("rec.wav"))
        .expect("error line");
    assert!(
        line.trim_start().starts_with("ERROR"),
        "journald lines start with the level: {line}"
    );
    assert!(
        !line.contains('\u{1b}'),
        "no colour codes for journald: {line}"
    );
}
