//! Segment files: the bytes of the log's segments, appended to plain files under
//! `<store>/segments/`, read back with positioned reads.
//!
//! Why not sled values (layout 2): sled 0.34 keeps every page it has read resident in the
//! process, whatever its `cache_capacity` (docs/storage.md, "Memory"), so a process that read the
//! log once (every `Store::open` does, to rebuild the indexes) held the whole log in memory —
//! about 1 GiB for 1.3 million events. File bytes read with `pread` live in the OS page cache,
//! which the kernel reclaims; the process keeps only what it decodes.
//!
//! Commit protocol (the order is what makes it crash-safe):
//! 1. the batch's segments are written at the tail of the current file and `fdatasync`ed;
//! 2. their locators (`S ‖ first seq` → file, offset, length) go into sled with the head and
//!    the outbox, in one atomic batch, and sled is flushed.
//!
//! A locator therefore only ever points at bytes already on disk. Bytes written past the last
//! locator (a crash between 1 and 2) are uncommitted: at open the tail file is cut back to the
//! end of its last locator and files numbered after it (a crash right after a roll) are removed.

use std::fs::{self, File, OpenOptions};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, PoisonError, RwLock};

use crate::error::StoreError;

/// Name of the directory holding the segment files, inside the store directory.
pub(crate) const SEGMENT_DIR: &str = "segments";

/// A new file is started when the current one would grow past this many bytes.
pub(crate) const FILE_TARGET_BYTES: u64 = 256 << 20;

/// Tag byte of an encoded locator (a layout-2 segment value starts with a seq's high byte and is
/// always longer than [`LOCATOR_LEN`], so the two cannot be confused).
const LOCATOR_TAG: u8 = b'F';

/// Encoded length of a [`Locator`]: tag ‖ file u32 BE ‖ offset u64 BE ‖ len u32 BE.
pub(crate) const LOCATOR_LEN: usize = 17;

/// Where one segment's bytes are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Locator {
    pub(crate) file: u32,
    pub(crate) offset: u64,
    pub(crate) len: u32,
}

impl Locator {
    pub(crate) fn encode(&self) -> [u8; LOCATOR_LEN] {
        let mut v = [0u8; LOCATOR_LEN];
        v[0] = LOCATOR_TAG;
        v[1..5].copy_from_slice(&self.file.to_be_bytes());
        v[5..13].copy_from_slice(&self.offset.to_be_bytes());
        v[13..17].copy_from_slice(&self.len.to_be_bytes());
        v
    }

    /// `None` if `v` is not an encoded locator (e.g. a layout-2 segment value).
    pub(crate) fn decode(v: &[u8]) -> Option<Locator> {
        if v.len() != LOCATOR_LEN || v[0] != LOCATOR_TAG {
            return None;
        }
        Some(Locator {
            file: u32::from_be_bytes(v[1..5].try_into().ok()?),
            offset: u64::from_be_bytes(v[5..13].try_into().ok()?),
            len: u32::from_be_bytes(v[13..17].try_into().ok()?),
        })
    }

    pub(crate) fn end(&self) -> u64 {
        self.offset + u64::from(self.len)
    }
}

/// Where the next segment bytes go: the current file and its committed end. Owned by the
/// store's writer (under its mutex).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Tail {
    pub(crate) file: u32,
    pub(crate) end: u64,
}

/// The open segment files, shared by readers and the writer.
#[derive(Debug)]
pub(crate) struct SegmentFiles {
    dir: PathBuf,
    /// Indexed by file number; files are numbered from 0 without gaps.
    files: RwLock<Vec<Arc<File>>>,
}

fn io_err(path: &Path, what: &str, source: std::io::Error) -> StoreError {
    StoreError::Io {
        path: path.to_path_buf(),
        what: what.to_owned(),
        source,
    }
}

fn file_name(dir: &Path, n: u32) -> PathBuf {
    dir.join(format!("{n:08}.seg"))
}

impl SegmentFiles {
    /// Opens the segment directory of the store at `store_dir`, given the committed tail (the
    /// highest file any locator names and the end of its last locator; `None` when no locator
    /// exists). Cuts uncommitted bytes off the tail file and removes files after it.
    pub(crate) fn open(store_dir: &Path, tail: Option<Tail>) -> Result<(SegmentFiles, Tail), StoreError> {
        let dir = store_dir.join(SEGMENT_DIR);
        fs::create_dir_all(&dir).map_err(|e| io_err(&dir, "create the segment directory", e))?;
        let tail = tail.unwrap_or(Tail { file: 0, end: 0 });
        // Files after the tail hold nothing committed (a roll whose batch never committed).
        let entries = fs::read_dir(&dir).map_err(|e| io_err(&dir, "list the segment directory", e))?;
        for entry in entries {
            let entry = entry.map_err(|e| io_err(&dir, "list the segment directory", e))?;
            let name = entry.file_name();
            let number = name
                .to_str()
                .and_then(|n| n.strip_suffix(".seg"))
                .and_then(|n| n.parse::<u32>().ok());
            if let Some(n) = number {
                if n > tail.file {
                    let path = entry.path();
                    fs::remove_file(&path).map_err(|e| io_err(&path, "remove an uncommitted segment file", e))?;
                }
            }
        }
        let mut files = Vec::with_capacity(tail.file as usize + 1);
        for n in 0..=tail.file {
            let path = file_name(&dir, n);
            let is_tail = n == tail.file;
            let file = OpenOptions::new()
                .read(true)
                .write(true)
                .create(is_tail)
                .truncate(false)
                .open(&path)
                .map_err(|e| io_err(&path, "open a segment file", e))?;
            if is_tail {
                let len = file.metadata().map_err(|e| io_err(&path, "stat a segment file", e))?.len();
                if len > tail.end {
                    file.set_len(tail.end)
                        .map_err(|e| io_err(&path, "cut uncommitted bytes off a segment file", e))?;
                    file.sync_all().map_err(|e| io_err(&path, "sync a segment file", e))?;
                }
            }
            files.push(Arc::new(file));
        }
        sync_dir(&dir)?;
        Ok((
            SegmentFiles {
                dir,
                files: RwLock::new(files),
            },
            tail,
        ))
    }

    fn file(&self, n: u32) -> Option<Arc<File>> {
        let files = self.files.read().unwrap_or_else(PoisonError::into_inner);
        files.get(n as usize).cloned()
    }

    /// Reads the bytes of one segment. A locator past the end of its file (lost or cut bytes) is
    /// [`StoreError::Corrupt`], naming `first` (the segment's first seq).
    pub(crate) fn read(&self, first: u64, loc: Locator) -> Result<Vec<u8>, StoreError> {
        let Some(file) = self.file(loc.file) else {
            return Err(StoreError::corrupt(
                format!("log segment starting at seq {first}"),
                format!("its file {} is missing", file_name(&self.dir, loc.file).display()),
            ));
        };
        let mut buf = vec![0u8; loc.len as usize];
        match file.read_exact_at(&mut buf, loc.offset) {
            Ok(()) => Ok(buf),
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => Err(StoreError::corrupt(
                format!("log segment starting at seq {first}"),
                format!(
                    "bytes {}..{} of {} are past the end of the file",
                    loc.offset,
                    loc.end(),
                    file_name(&self.dir, loc.file).display()
                ),
            )),
            Err(e) => Err(io_err(&file_name(&self.dir, loc.file), "read a segment", e)),
        }
    }

    /// The bytes of a segment that its file still holds (all of them, or those before the file
    /// ends); empty when the file is missing or unreadable. For verify, to check the records
    /// before a cut.
    pub(crate) fn read_available(&self, loc: Locator) -> Vec<u8> {
        let Some(file) = self.file(loc.file) else {
            return Vec::new();
        };
        let len = file.metadata().map_or(0, |m| m.len());
        let end = loc.end().min(len);
        let mut buf = vec![0u8; end.saturating_sub(loc.offset) as usize];
        match file.read_exact_at(&mut buf, loc.offset) {
            Ok(()) => buf,
            Err(_) => Vec::new(),
        }
    }

    /// Reads `len` bytes at `offset` of file `n` (one frame the index located).
    pub(crate) fn read_at(&self, n: u32, offset: u64, len: u32) -> Result<Vec<u8>, StoreError> {
        let file = self
            .file(n)
            .ok_or_else(|| StoreError::corrupt("segment files", format!("file {n} is not open")))?;
        let mut buf = vec![0u8; len as usize];
        file.read_exact_at(&mut buf, offset)
            .map_err(|e| io_err(&file_name(&self.dir, n), "read a frame", e))?;
        Ok(buf)
    }

    /// The directory of the segment files.
    pub(crate) fn dir(&self) -> &Path {
        &self.dir
    }

    /// A new scratch file for the index, in the segment directory (so on the store's disk, not a
    /// tmpfs that would take memory). See [`scratch_in`].
    pub(crate) fn scratch_file(&self) -> Result<File, StoreError> {
        scratch_in(&self.dir)
    }

    /// Writes `bytes` (one or more segments back to back) at the tail, rolling to a new file
    /// first if the current one would pass [`FILE_TARGET_BYTES`], and syncs them. Returns where
    /// they went; the caller commits locators inside that range, then advances its tail with
    /// [`Tail`] `{ file, end: offset + len }`.
    pub(crate) fn append(&self, tail: Tail, bytes: &[u8]) -> Result<(u32, u64), StoreError> {
        let (n, offset) = if tail.end > 0 && tail.end + bytes.len() as u64 > FILE_TARGET_BYTES {
            let n = tail.file + 1;
            let path = file_name(&self.dir, n);
            let file = create_new(&path, "create a segment file")?;
            sync_dir(&self.dir)?;
            let mut files = self.files.write().unwrap_or_else(PoisonError::into_inner);
            files.truncate(n as usize);
            files.push(Arc::new(file));
            (n, 0)
        } else {
            (tail.file, tail.end)
        };
        let path = file_name(&self.dir, n);
        let file = self
            .file(n)
            .ok_or_else(|| StoreError::corrupt("segment files", format!("file {n} is not open")))?;
        file.write_all_at(bytes, offset)
            .map_err(|e| io_err(&path, "write a segment", e))?;
        file.sync_data().map_err(|e| io_err(&path, "sync a segment file", e))?;
        Ok((n, offset))
    }

    /// The path of segment file `n` (for messages and the tamper helpers' tests).
    pub(crate) fn path(&self, n: u32) -> PathBuf {
        file_name(&self.dir, n)
    }
}

/// A new read-write file in `dir`, unlinked at once: it lives while it is open and leaves
/// nothing behind, whatever way the process ends.
pub(crate) fn scratch_in(dir: &Path) -> Result<File, StoreError> {
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let path = dir.join(format!("index-{}-{n}.scratch", std::process::id()));
    let file = create_new(&path, "create an index scratch file")?;
    fs::remove_file(&path).map_err(|e| io_err(&path, "unlink an index scratch file", e))?;
    Ok(file)
}

/// Creates (or empties) `path` for reading and writing.
fn create_new(path: &Path, what: &str) -> Result<File, StoreError> {
    OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(true)
        .open(path)
        .map_err(|e| io_err(path, what, e))
}

/// Makes a created or removed file name durable.
fn sync_dir(dir: &Path) -> Result<(), StoreError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| io_err(dir, "sync the segment directory", e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locators_round_trip_and_segment_values_are_not_locators() {
        let loc = Locator {
            file: 3,
            offset: 1 << 33,
            len: 65_000,
        };
        assert_eq!(Locator::decode(&loc.encode()), Some(loc));
        assert_eq!(loc.end(), (1 << 33) + 65_000);
        // A layout-2 segment value: frame header of seq 1, longer than a locator.
        let mut seg = 1u64.to_be_bytes().to_vec();
        seg.extend_from_slice(&[0u8; 90]);
        assert_eq!(Locator::decode(&seg), None);
        assert_eq!(Locator::decode(&seg[..LOCATOR_LEN]), None);
    }

    #[test]
    fn open_cuts_uncommitted_bytes_and_removes_later_files() {
        let dir = tempfile::TempDir::new().expect("tempdir");
        let (files, tail) = SegmentFiles::open(dir.path(), None).expect("open");
        let (n, off) = files.append(tail, b"committed").expect("append");
        assert_eq!((n, off), (0, 0));
        let (n2, off2) = files.append(Tail { file: 0, end: 9 }, b"uncommitted").expect("append");
        assert_eq!((n2, off2), (0, 9));
        fs::write(files.path(1), b"orphan").expect("orphan file");
        drop(files);
        let (files, _) = SegmentFiles::open(dir.path(), Some(Tail { file: 0, end: 9 })).expect("reopen");
        assert!(!files.path(1).exists());
        let loc = Locator { file: 0, offset: 0, len: 9 };
        assert_eq!(files.read(1, loc).expect("read"), b"committed");
        let past = Locator { file: 0, offset: 5, len: 9 };
        let err = files.read(7, past).expect_err("past the end");
        assert!(err.to_string().contains("seq 7"), "{err}");
    }

    #[test]
    fn a_full_file_rolls_to_the_next() {
        let dir = tempfile::TempDir::new().expect("tempdir");
        let (files, _) = SegmentFiles::open(dir.path(), None).expect("open");
        let near_full = Tail {
            file: 0,
            end: FILE_TARGET_BYTES - 2,
        };
        let (n, off) = files.append(near_full, b"abc").expect("append");
        assert_eq!((n, off), (1, 0));
        assert_eq!(files.read(1, Locator { file: 1, offset: 0, len: 3 }).expect("read"), b"abc");
    }
}
