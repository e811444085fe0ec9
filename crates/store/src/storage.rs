//! The storage seam: every byte the store writes or reads goes through
//! [`Storage`], so tests can fail writes and syncs on a countdown and check
//! that nothing acknowledged is lost. [`OsStorage`] is the real file system.

use std::fmt::Debug;
use std::fs::{self, File, OpenOptions};
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// A file the store reads and writes at offsets.
#[allow(clippy::len_without_is_empty)]
pub trait StorageFile: Send + Sync + Debug {
    fn len(&self) -> io::Result<u64>;
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<()>;
    fn write_at(&self, offset: u64, data: &[u8]) -> io::Result<()>;
    fn set_len(&self, len: u64) -> io::Result<()>;
    /// Makes every write so far durable.
    fn sync(&self) -> io::Result<()>;
}

/// Where store files live.
pub trait Storage: Send + Sync + Debug + 'static {
    fn open(&self, path: &Path, create: bool) -> io::Result<Arc<dyn StorageFile>>;
    /// Opens (creating) a file that is only written in whole, page-aligned
    /// pages from page-aligned memory, bypassing the page cache where the
    /// file system allows it (O_DIRECT). Defaults to `open`.
    fn open_direct(&self, path: &Path) -> io::Result<Arc<dyn StorageFile>> {
        self.open(path, true)
    }
    fn remove(&self, path: &Path) -> io::Result<()>;
    /// Names of the entries in `dir` (not recursive).
    fn list(&self, dir: &Path) -> io::Result<Vec<PathBuf>>;
    /// Makes creations and removals in `dir` durable.
    fn sync_dir(&self, dir: &Path) -> io::Result<()>;
}

/// The real file system.
#[derive(Debug, Default, Clone, Copy)]
pub struct OsStorage;

#[derive(Debug)]
struct OsFile(File);

impl StorageFile for OsFile {
    fn len(&self) -> io::Result<u64> {
        Ok(self.0.metadata()?.len())
    }
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<()> {
        self.0.read_exact_at(buf, offset)
    }
    fn write_at(&self, offset: u64, data: &[u8]) -> io::Result<()> {
        self.0.write_all_at(data, offset)
    }
    fn set_len(&self, len: u64) -> io::Result<()> {
        self.0.set_len(len)
    }
    fn sync(&self) -> io::Result<()> {
        self.0.sync_data()
    }
}

impl Storage for OsStorage {
    fn open(&self, path: &Path, create: bool) -> io::Result<Arc<dyn StorageFile>> {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(create)
            .truncate(false)
            .open(path)?;
        Ok(Arc::new(OsFile(file)))
    }
    fn open_direct(&self, path: &Path) -> io::Result<Arc<dyn StorageFile>> {
        use std::os::unix::fs::OpenOptionsExt;
        let mut opts = OpenOptions::new();
        opts.read(true).write(true).create(true).truncate(false);
        match opts.clone().custom_flags(libc::O_DIRECT).open(path) {
            Ok(file) => Ok(Arc::new(OsFile(file))),
            // tmpfs and some others refuse O_DIRECT: fall back to the page cache
            Err(e) if e.raw_os_error() == Some(libc::EINVAL) => Ok(Arc::new(OsFile(opts.open(path)?))),
            Err(e) => Err(e),
        }
    }
    fn remove(&self, path: &Path) -> io::Result<()> {
        fs::remove_file(path)
    }
    fn list(&self, dir: &Path) -> io::Result<Vec<PathBuf>> {
        fs::read_dir(dir)?.map(|e| e.map(|e| e.path())).collect()
    }
    fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        File::open(dir)?.sync_all()
    }
}

/// Lets redb write its index through the seam.
#[derive(Debug)]
pub(crate) struct RedbBackend(pub(crate) Arc<dyn StorageFile>);

impl redb::StorageBackend for RedbBackend {
    fn len(&self) -> Result<u64, io::Error> {
        self.0.len()
    }
    fn read(&self, offset: u64, out: &mut [u8]) -> Result<(), io::Error> {
        self.0.read_at(offset, out)
    }
    fn set_len(&self, len: u64) -> Result<(), io::Error> {
        self.0.set_len(len)
    }
    fn sync_data(&self) -> Result<(), io::Error> {
        self.0.sync()
    }
    fn write(&self, offset: u64, data: &[u8]) -> Result<(), io::Error> {
        self.0.write_at(offset, data)
    }
}

/// An exclusive advisory lock on the store directory, held while open, so a
/// daemon and a CLI never write the same store at once.
#[derive(Debug)]
pub(crate) struct DirLock(#[allow(dead_code)] File);

impl DirLock {
    pub(crate) fn acquire(path: &Path) -> io::Result<DirLock> {
        use std::os::fd::AsRawFd;
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(path)?;
        // SAFETY: flock on a valid, owned descriptor; no memory is shared.
        let rc = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
        if rc != 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(DirLock(file))
    }
}
