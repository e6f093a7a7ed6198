//! The data folder: a marker that says the folder is wisp's, the master key file,
//! the embedded database, TLS files and `bootstrap.json`.
//!
//! **Invariant:** wisp never deletes or overwrites a file here that it cannot
//! regenerate. A folder that is not wisp's is refused, not adopted.

use std::fs::{self, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use serde::{Deserialize, Serialize};

use crate::crypto::MasterKey;

const MARKER_FILE: &str = "wisp-data.json";
const MASTER_KEY_FILE: &str = "master.key";
const DATA_FORMAT: u32 = 1;

#[derive(Serialize, Deserialize)]
struct Marker {
    wisp_data_format: u32,
}

/// An opened, validated data folder.
#[derive(Debug, Clone)]
pub struct DataDir {
    root: PathBuf,
}

impl DataDir {
    /// Opens the folder, creating it (mode 0700) if it does not exist. A folder
    /// holding other files but no wisp marker is refused.
    pub fn open_or_create(path: &Path) -> anyhow::Result<Self> {
        let root = std::path::absolute(path).with_context(|| format!("invalid data folder path {}", path.display()))?;
        match fs::metadata(&root) {
            Ok(meta) if !meta.is_dir() => {
                bail!("data folder {} exists but is not a folder", root.display())
            }
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                fs::create_dir_all(&root).with_context(|| format!("cannot create data folder {}", root.display()))?;
                fs::set_permissions(&root, fs::Permissions::from_mode(0o700))
                    .with_context(|| format!("cannot restrict permissions of {}", root.display()))?;
            }
            Err(e) => {
                return Err(e).with_context(|| format!("cannot open data folder {}", root.display()));
            }
        }
        let marker = root.join(MARKER_FILE);
        match fs::read_to_string(&marker) {
            Ok(text) => {
                let parsed: Marker = serde_json::from_str(&text).map_err(|_| {
                    anyhow::anyhow!("data folder {} is corrupt: {} is not valid", root.display(), MARKER_FILE)
                })?;
                if parsed.wisp_data_format != DATA_FORMAT {
                    bail!(
                        "data folder {} has format {}, this wisp understands format {DATA_FORMAT}",
                        root.display(),
                        parsed.wisp_data_format
                    );
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let has_entries = fs::read_dir(&root)
                    .with_context(|| format!("cannot read data folder {}", root.display()))?
                    .next()
                    .is_some();
                if has_entries {
                    bail!(
                        "{} is not a wisp data folder (it has files but no {MARKER_FILE}); \
                         refusing to use it — choose an empty or new folder with --data-dir",
                        root.display()
                    );
                }
                let text = serde_json::to_string(&Marker { wisp_data_format: DATA_FORMAT })?;
                write_new_file(&marker, text.as_bytes(), 0o644)?;
            }
            Err(e) => return Err(e).with_context(|| format!("cannot read {}", marker.display())),
        }
        Ok(Self { root })
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    pub fn sqlite_path(&self) -> PathBuf {
        self.root.join("wisp.db")
    }

    pub fn tls_dir(&self) -> PathBuf {
        self.root.join("tls")
    }

    pub fn bootstrap_path(&self) -> PathBuf {
        self.root.join("bootstrap.json")
    }

    /// The master key: from `WISP_MASTER_KEY` when given, else the folder's key
    /// file, generated (mode 0600) on first use.
    pub fn master_key(&self, from_env: Option<&str>) -> anyhow::Result<MasterKey> {
        if let Some(text) = from_env {
            return MasterKey::from_base64(text).context("WISP_MASTER_KEY is invalid");
        }
        let path = self.root.join(MASTER_KEY_FILE);
        match fs::read_to_string(&path) {
            Ok(text) => {
                MasterKey::from_base64(&text).with_context(|| format!("master key file {} is corrupt", path.display()))
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let text = MasterKey::generate_base64();
                write_new_file(&path, format!("{text}\n").as_bytes(), 0o600)?;
                Ok(MasterKey::from_base64(&text)?)
            }
            Err(e) => Err(e).with_context(|| format!("cannot read master key file {}", path.display())),
        }
    }

    /// Writes the would-be `bootstrap.json` under a temporary name (mode 0600)
    /// *before* the bootstrap commits, so a full disk cannot lose the only copy
    /// of the administrator secret. [`DataDir::publish_bootstrap`] or
    /// [`DataDir::discard_bootstrap`] follow.
    pub fn stage_bootstrap(&self, contents: &[u8]) -> anyhow::Result<PathBuf> {
        let staged = self.root.join(format!("bootstrap.json.{}.pending", std::process::id()));
        let _ = fs::remove_file(&staged);
        write_new_file(&staged, contents, 0o600)?;
        Ok(staged)
    }

    /// Moves a staged file to `bootstrap.json`. A stale one from an earlier
    /// directory is kept under a new name, not overwritten.
    pub fn publish_bootstrap(&self, staged: &Path) -> anyhow::Result<PathBuf> {
        let path = self.bootstrap_path();
        if path.exists() {
            let kept = self.root.join(format!("bootstrap.json.{}.old", crate::clock::now()));
            fs::rename(&path, &kept).with_context(|| format!("cannot keep the old {}", path.display()))?;
        }
        fs::rename(staged, &path).with_context(|| format!("cannot create {}", path.display()))?;
        Ok(path)
    }

    /// Removes a staged file whose bootstrap did not happen (another process won).
    pub fn discard_bootstrap(&self, staged: &Path) {
        let _ = fs::remove_file(staged);
    }
}

/// Creates `path` with `mode` and writes `contents`; fails if it already exists.
pub fn write_new_file(path: &Path, contents: &[u8], mode: u32) -> anyhow::Result<()> {
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(path)
        .with_context(|| format!("cannot create {}", path.display()))?;
    file.write_all(contents).and_then(|()| file.sync_all()).with_context(|| format!("cannot write {}", path.display()))
}

/// Replaces a file wisp can regenerate (write to a temporary name, then rename).
pub fn replace_file(path: &Path, contents: &[u8], mode: u32) -> anyhow::Result<()> {
    let tmp = path.with_extension(format!("tmp{}", std::process::id()));
    let _ = fs::remove_file(&tmp);
    write_new_file(&tmp, contents, mode)?;
    fs::rename(&tmp, path).with_context(|| format!("cannot replace {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_new_folder_is_created_and_reopened() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("data");
        let dir = DataDir::open_or_create(&path).unwrap();
        let mode = fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o700);
        let key = dir.master_key(None).unwrap();
        let key_mode = fs::metadata(path.join(MASTER_KEY_FILE)).unwrap().permissions().mode() & 0o777;
        assert_eq!(key_mode, 0o600);
        // Reopening finds the same key.
        let again = DataDir::open_or_create(&path).unwrap().master_key(None).unwrap();
        let sealed = key.seal(b"c", b"x");
        assert_eq!(again.open(b"c", &sealed).unwrap(), b"x");
    }

    #[test]
    fn a_foreign_folder_is_refused_and_left_alone() {
        let tmp = tempfile::tempdir().unwrap();
        fs::write(tmp.path().join("notes.txt"), "mine").unwrap();
        let err = DataDir::open_or_create(tmp.path()).unwrap_err().to_string();
        assert!(err.contains("not a wisp data folder"), "{err}");
        assert_eq!(fs::read_dir(tmp.path()).unwrap().count(), 1);
    }

    #[test]
    fn corrupt_marker_and_key_file_are_reported() {
        let tmp = tempfile::tempdir().unwrap();
        fs::write(tmp.path().join(MARKER_FILE), "{").unwrap();
        assert!(DataDir::open_or_create(tmp.path()).unwrap_err().to_string().contains("corrupt"));

        let tmp = tempfile::tempdir().unwrap();
        let dir = DataDir::open_or_create(tmp.path()).unwrap();
        fs::write(tmp.path().join(MASTER_KEY_FILE), "garbage").unwrap();
        let err = format!("{:#}", dir.master_key(None).unwrap_err());
        assert!(err.contains("corrupt"), "{err}");
        assert_eq!(fs::read_to_string(tmp.path().join(MASTER_KEY_FILE)).unwrap(), "garbage");
    }

    #[test]
    fn an_old_bootstrap_file_is_kept() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = DataDir::open_or_create(tmp.path()).unwrap();
        let one = dir.stage_bootstrap(b"one").unwrap();
        dir.publish_bootstrap(&one).unwrap();
        let two = dir.stage_bootstrap(b"two").unwrap();
        dir.publish_bootstrap(&two).unwrap();
        let three = dir.stage_bootstrap(b"three").unwrap();
        dir.discard_bootstrap(&three);
        assert!(!three.exists());
        assert_eq!(fs::read_to_string(dir.bootstrap_path()).unwrap(), "two");
        let kept: Vec<_> = fs::read_dir(tmp.path())
            .unwrap()
            .filter_map(|e| e.ok())
            .filter(|e| e.file_name().to_string_lossy().ends_with(".old"))
            .collect();
        assert_eq!(kept.len(), 1);
        assert_eq!(fs::read_to_string(kept[0].path()).unwrap(), "one");
    }
}
