//! The evidence directory under a disk quota: each call's files (clip,
//! picture, description) form a group; when a new group would not fit, the
//! oldest groups are deleted first.
//!
//! Only files this module names are ever counted or deleted (stems ending
//! in a call id, see [`is_evidence_stem`]), so a directory shared with
//! anything else, the spool included, loses nothing that is not evidence.

use std::collections::VecDeque;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

/// Extensions of the files a group may hold.
const EXTENSIONS: [&str; 4] = ["wav", "flac", "png", "json"];
/// Suffix of a file being written; renamed into place when complete.
const PART: &str = "part";

/// Why a group was not stored.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The group alone is larger than the quota.
    #[error("{bytes} bytes of evidence exceed the whole quota of {max} bytes")]
    TooLarge {
        /// Size of the group.
        bytes: u64,
        /// The quota.
        max: u64,
    },
    /// The file system refused.
    #[error("{}: {source}", path.display())]
    Io {
        /// What was being created, written or listed.
        path: PathBuf,
        /// What the OS said.
        source: io::Error,
    },
}

/// One call's files, oldest groups first in the index.
#[derive(Debug)]
struct Group {
    stem: String,
    files: Vec<(PathBuf, u64)>,
}

impl Group {
    fn bytes(&self) -> u64 {
        self.files.iter().map(|(_, n)| n).sum()
    }
}

/// The evidence directory and what it holds.
#[derive(Debug)]
pub struct EvidenceStore {
    dir: PathBuf,
    max_bytes: u64,
    groups: VecDeque<Group>,
    used: u64,
    /// Whether the directory has been listed; until it has (it may not
    /// exist or be readable yet), every save tries again.
    indexed: bool,
    deleted: u64,
}

/// Whether `stem` is one the evidence writer makes: it ends in a call id,
/// `-` and 12 Crockford base32 characters.
pub fn is_evidence_stem(stem: &str) -> bool {
    let bytes = stem.as_bytes();
    let Some(code_start) = bytes.len().checked_sub(12) else {
        return false;
    };
    code_start > 0
        && bytes[code_start - 1] == b'-'
        && bytes[code_start..]
            .iter()
            .all(|b| b.is_ascii_digit() || (b.is_ascii_uppercase() && !b"ILOU".contains(b)))
}

/// The group stem of an evidence file name, and whether it is an unfinished
/// `.part` file; `None` for anything else.
fn evidence_stem(name: &str) -> Option<(&str, bool)> {
    let (rest, part) = match name.strip_suffix(PART).and_then(|r| r.strip_suffix('.')) {
        Some(rest) => (rest, true),
        None => (name, false),
    };
    let (stem, ext) = rest.rsplit_once('.')?;
    (EXTENSIONS.contains(&ext) && is_evidence_stem(stem)).then_some((stem, part))
}

impl EvidenceStore {
    /// The store in `dir`, holding at most `max_bytes` of evidence. Listing
    /// the directory may fail (not created yet, unreadable); that is tried
    /// again at each save, so this never fails.
    pub fn open(dir: &Path, max_bytes: u64) -> Self {
        let mut store = Self {
            dir: dir.to_owned(),
            max_bytes,
            groups: VecDeque::new(),
            used: 0,
            indexed: false,
            deleted: 0,
        };
        if let Err(e) = store.index() {
            tracing::error!("evidence directory unusable, will retry at the next call: {e}");
        }
        store
    }

    /// Bytes of evidence on disk, as far as the store knows.
    pub fn used_bytes(&self) -> u64 {
        self.used
    }

    /// Groups deleted to make room so far.
    pub fn deleted_groups(&self) -> u64 {
        self.deleted
    }

    /// Creates the directory if needed and lists the evidence already in it,
    /// oldest first; removes `.part` files a crash left behind.
    fn index(&mut self) -> Result<(), StoreError> {
        let io_err = |path: &Path| {
            let path = path.to_owned();
            move |source| StoreError::Io { path, source }
        };
        fs::create_dir_all(&self.dir).map_err(io_err(&self.dir))?;
        let mut found: Vec<(SystemTime, Group)> = Vec::new();
        for entry in fs::read_dir(&self.dir).map_err(io_err(&self.dir))? {
            let entry = entry.map_err(io_err(&self.dir))?;
            let name = entry.file_name();
            let Some((stem, part)) = name.to_str().and_then(evidence_stem) else {
                continue;
            };
            let path = entry.path();
            if part {
                // Best effort: a leftover that cannot be removed is only
                // wasted space, and the next start tries again.
                let _ = fs::remove_file(&path);
                continue;
            }
            let Ok(meta) = entry.metadata() else { continue };
            if !meta.is_file() {
                continue;
            }
            let modified = meta.modified().unwrap_or(SystemTime::UNIX_EPOCH);
            match found.iter_mut().find(|(_, g)| g.stem == stem) {
                Some((time, group)) => {
                    *time = (*time).max(modified);
                    group.files.push((path, meta.len()));
                }
                None => found.push((
                    modified,
                    Group {
                        stem: stem.to_owned(),
                        files: vec![(path, meta.len())],
                    },
                )),
            }
        }
        found.sort_by(|a, b| a.0.cmp(&b.0).then_with(|| a.1.stem.cmp(&b.1.stem)));
        self.groups = found.into_iter().map(|(_, g)| g).collect();
        self.used = self.groups.iter().map(Group::bytes).sum();
        self.indexed = true;
        Ok(())
    }

    /// Stores one call's files as `<stem>.<ext>`, deleting the oldest groups
    /// until they fit the quota. Each file is written under a `.part` name
    /// and renamed, so a reader never sees half a clip; on failure nothing
    /// of the group is left behind.
    pub fn save(&mut self, stem: &str, files: &[(&str, &[u8])]) -> Result<(), StoreError> {
        if !self.indexed {
            self.index()?;
        }
        let bytes: u64 = files.iter().map(|(_, data)| data.len() as u64).sum();
        if bytes > self.max_bytes {
            return Err(StoreError::TooLarge {
                bytes,
                max: self.max_bytes,
            });
        }
        // A group saved again (a replayed call) replaces the old one.
        if let Some(i) = self.groups.iter().position(|g| g.stem == stem)
            && let Some(old) = self.groups.remove(i)
        {
            self.used -= old.bytes();
        }
        while self.used + bytes > self.max_bytes {
            let Some(oldest) = self.groups.pop_front() else {
                break;
            };
            self.used -= oldest.bytes();
            self.deleted += 1;
            for (path, _) in &oldest.files {
                match fs::remove_file(path) {
                    Ok(()) => {}
                    Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                    Err(e) => tracing::warn!("cannot delete old evidence {}: {e}", path.display()),
                }
            }
        }
        let mut written = Vec::with_capacity(files.len());
        for (ext, data) in files {
            let path = self.dir.join(format!("{stem}.{ext}"));
            match write_atomically(&path, data) {
                Ok(()) => written.push((path, data.len() as u64)),
                Err(source) => {
                    for (done, _) in &written {
                        let _ = fs::remove_file(done);
                    }
                    return Err(StoreError::Io { path, source });
                }
            }
        }
        self.used += bytes;
        self.groups.push_back(Group {
            stem: stem.to_owned(),
            files: written,
        });
        Ok(())
    }
}

fn write_atomically(path: &Path, data: &[u8]) -> io::Result<()> {
    let mut part = path.as_os_str().to_owned();
    part.push(".");
    part.push(PART);
    let part = PathBuf::from(part);
    let result = fs::write(&part, data).and_then(|()| fs::rename(&part, path));
    if result.is_err() {
        let _ = fs::remove_file(&part);
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_names_ending_in_a_call_id_are_evidence() {
        assert!(is_evidence_stem(
            "20261126T210411.520Z_rumble_st03-7K2M9Q4D1XFA"
        ));
        assert!(is_evidence_stem("st-03_x-0123456789AB"));
        assert!(!is_evidence_stem("0123456789AB"), "no station");
        assert!(!is_evidence_stem("st03-7K2M9Q4D1XFa"), "lower case");
        assert!(!is_evidence_stem("st03-7K2M9Q4D1XFI"), "not Crockford");
        assert!(!is_evidence_stem("st03_7K2M9Q4D1XFA"));
        assert_eq!(
            evidence_stem("a_st-0123456789AB.wav"),
            Some(("a_st-0123456789AB", false))
        );
        assert_eq!(
            evidence_stem("a_st-0123456789AB.png.part"),
            Some(("a_st-0123456789AB", true))
        );
        assert_eq!(evidence_stem("a_st-0123456789AB.txt"), None);
        assert_eq!(evidence_stem("spool.db"), None);
    }
}
