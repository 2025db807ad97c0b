//! The one rule for every file the core opens: it is a regular file of the store.
//!
//! A directory, FIFO, socket or device in place of a chunk or a metadata file is refused
//! before it is read (a FIFO opened for reading would block until a writer came; a device
//! could stream forever), and the file is opened with `O_NONBLOCK` and checked again with
//! `fstat`, so a swap between the two checks cannot make the open wait either. Symbolic links
//! are followed only when the file they resolve to lies inside the store's real root (the root
//! itself may be a link: it is resolved once, when the store opens); a link leading outside,
//! a dangling link and a link loop are refused. docs/store-format.md states the policy.

use std::fs::{File, Metadata, OpenOptions};
use std::io::{self, ErrorKind};
use std::path::{Path, PathBuf};

/// Why a path of the store cannot be read as one of its files.
#[derive(Debug)]
pub enum FileFault {
    /// Nothing there (or a parent is not a directory).
    Missing,
    /// Something other than a regular file in its place ("a directory", "a FIFO", ...).
    NotRegular(&'static str),
    /// A symbolic link resolving outside the store root (the real path it leads to).
    Outside(PathBuf),
    Io(io::Error),
}

impl FileFault {
    /// The reason, as error messages state it.
    pub fn reason(&self) -> String {
        match self {
            FileFault::Missing => "missing".into(),
            FileFault::NotRegular(what) => format!("not a regular file ({what})"),
            FileFault::Outside(to) => {
                format!("a symbolic link leading outside the store (to {}), refused", to.display())
            }
            FileFault::Io(e) => format!("unreadable ({e})"),
        }
    }
}

fn from_io(e: io::Error) -> FileFault {
    match e.kind() {
        ErrorKind::NotFound => FileFault::Missing,
        _ => match e.raw_os_error() {
            Some(libc::ENOTDIR) => FileFault::Missing,
            Some(libc::ELOOP) => FileFault::NotRegular("a symbolic link loop"),
            // A socket or a device without a driver refuses open(); stat() caught them first.
            Some(libc::ENXIO) | Some(libc::ENODEV) => FileFault::NotRegular("a special file"),
            _ => FileFault::Io(e),
        },
    }
}

fn kind(meta: &Metadata) -> Result<(), FileFault> {
    use std::os::unix::fs::FileTypeExt;
    let t = meta.file_type();
    if t.is_file() {
        return Ok(());
    }
    Err(FileFault::NotRegular(if t.is_dir() {
        "a directory"
    } else if t.is_fifo() {
        "a FIFO"
    } else if t.is_socket() {
        "a socket"
    } else if t.is_char_device() {
        "a character device"
    } else if t.is_block_device() {
        "a block device"
    } else {
        "a special file"
    }))
}

/// The real (symlink-free) path of a store root, against which files are confined.
pub fn real_root(root: &Path) -> io::Result<PathBuf> {
    std::fs::canonicalize(root)
}

fn confined(real_root: &Path, real: PathBuf) -> Result<(), FileFault> {
    if real.starts_with(real_root) {
        Ok(())
    } else {
        Err(FileFault::Outside(real))
    }
}

/// Check, without opening it, that `path` is a regular file inside the store (for files a
/// library opens itself: zarrs reads metadata and the chunks of other codec chains).
pub fn check_regular(real_root: &Path, path: &Path) -> Result<(), FileFault> {
    kind(&std::fs::metadata(path).map_err(from_io)?)?;
    confined(real_root, std::fs::canonicalize(path).map_err(from_io)?)
}

/// Open `path` for reading if it is a regular file inside the store; never blocks on it.
pub fn open_regular(real_root: &Path, path: &Path) -> Result<File, FileFault> {
    use std::os::unix::fs::OpenOptionsExt;
    // stat first: a device or FIFO is refused without being opened at all.
    kind(&std::fs::metadata(path).map_err(from_io)?)?;
    let file = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY | libc::O_CLOEXEC)
        .open(path)
        .map_err(from_io)?;
    kind(&file.metadata().map_err(from_io)?)?; // fstat: what was opened, whatever the path holds now
    confined(real_root, real_path(&file, path)?)?;
    Ok(file)
}

/// The real path of an open file: one readlink of /proc/self/fd/N on Linux (what was opened,
/// not what the path holds now), else the path resolved.
fn real_path(file: &File, path: &Path) -> Result<PathBuf, FileFault> {
    #[cfg(target_os = "linux")]
    {
        use std::os::fd::AsRawFd;
        if let Ok(p) = std::fs::read_link(format!("/proc/self/fd/{}", file.as_raw_fd())) {
            return Ok(p);
        }
    }
    let _ = file;
    std::fs::canonicalize(path).map_err(from_io)
}

/// Read a whole (small) regular file of the store, e.g. an array's zarr.json.
pub fn read_regular(real_root: &Path, path: &Path) -> Result<Vec<u8>, FileFault> {
    use std::io::Read;
    let mut file = open_regular(real_root, path)?;
    let mut out = Vec::new();
    file.read_to_end(&mut out).map_err(from_io)?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    fn tree() -> (tempfile::TempDir, PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("s.zarr");
        std::fs::create_dir_all(root.join("sub")).unwrap();
        std::fs::write(root.join("sub/f"), b"x").unwrap();
        std::fs::write(dir.path().join("outside"), b"y").unwrap();
        (dir, root)
    }

    fn fifo(path: &Path) {
        let c = std::ffi::CString::new(path.as_os_str().as_encoded_bytes()).unwrap();
        // SAFETY: a valid NUL-terminated path.
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
    }

    #[test]
    fn regular_files_and_links_inside_are_read() {
        let (_d, root) = tree();
        let real = real_root(&root).unwrap();
        assert_eq!(read_regular(&real, &root.join("sub/f")).unwrap(), b"x");
        symlink("sub/f", root.join("link")).unwrap();
        assert_eq!(read_regular(&real, &root.join("link")).unwrap(), b"x");
        check_regular(&real, &root.join("link")).unwrap();
        // the root itself may be a link
        let alias = root.parent().unwrap().join("alias.zarr");
        symlink(&root, &alias).unwrap();
        let real_alias = real_root(&alias).unwrap();
        assert_eq!(read_regular(&real_alias, &alias.join("sub/f")).unwrap(), b"x");
    }

    #[test]
    fn everything_else_is_refused_at_once() {
        let (d, root) = tree();
        let real = real_root(&root).unwrap();
        let reason = |p: &Path| open_regular(&real, p).unwrap_err().reason();
        assert_eq!(reason(&root.join("sub")), "not a regular file (a directory)");
        fifo(&root.join("pipe"));
        assert_eq!(reason(&root.join("pipe")), "not a regular file (a FIFO)"); // returns: no writer awaited
        assert_eq!(check_regular(&real, &root.join("pipe")).unwrap_err().reason(), "not a regular file (a FIFO)");
        let _sock = std::os::unix::net::UnixListener::bind(root.join("sock")).unwrap();
        assert_eq!(reason(&root.join("sock")), "not a regular file (a socket)");
        symlink("/dev/zero", root.join("dev")).unwrap();
        assert_eq!(reason(&root.join("dev")), "not a regular file (a character device)");
        symlink(d.path().join("outside"), root.join("out")).unwrap();
        assert!(reason(&root.join("out")).starts_with("a symbolic link leading outside the store"));
        assert!(check_regular(&real, &root.join("out")).unwrap_err().reason().contains("outside the store"));
        symlink("loop", root.join("loop")).unwrap();
        assert_eq!(reason(&root.join("loop")), "not a regular file (a symbolic link loop)");
        symlink("nowhere", root.join("dangling")).unwrap();
        assert!(matches!(open_regular(&real, &root.join("dangling")), Err(FileFault::Missing)));
        assert!(matches!(open_regular(&real, &root.join("sub/f/x")), Err(FileFault::Missing)));
    }
}
