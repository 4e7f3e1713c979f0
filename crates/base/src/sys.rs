//! The few calls into the operating system that the standard library does not offer, each
//! behind a safe function. This is the only module of the workspace allowed `unsafe`.
#![allow(unsafe_code)]

use std::fs::File;
use std::os::fd::AsRawFd;

/// Whether a process with this id exists (one we may not signal counts as existing).
pub fn process_alive(pid: u32) -> bool {
    let Ok(pid) = libc::pid_t::try_from(pid) else { return false };
    // SAFETY: kill with signal 0 only checks for existence and permission.
    let rc = unsafe { libc::kill(pid, 0) };
    rc == 0 || std::io::Error::last_os_error().raw_os_error() == Some(libc::EPERM)
}

/// A signal drscript sends to a process it started.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Signal {
    /// SIGINT: stop as after Ctrl-C (PostgreSQL's fast shutdown).
    Interrupt,
    /// SIGTERM: stop.
    Terminate,
    /// SIGKILL: end at once, as a crash or an operator's `kill -9` would.
    Kill,
}

/// Sends `signal` to the process `pid`; false when there is no such process (or no permission).
pub fn signal(pid: u32, signal: Signal) -> bool {
    let Ok(pid) = libc::pid_t::try_from(pid) else { return false };
    let signal = match signal {
        Signal::Interrupt => libc::SIGINT,
        Signal::Terminate => libc::SIGTERM,
        Signal::Kill => libc::SIGKILL,
    };
    // SAFETY: kill has no memory preconditions.
    unsafe { libc::kill(pid, signal) == 0 }
}

/// Whether this process runs as root.
pub fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

/// The effective user id of this process.
pub fn uid() -> u32 {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() }
}

/// Takes an exclusive `flock` on `file`, waiting for it; released when the file is closed.
pub fn lock_exclusive(file: &File) -> std::io::Result<()> {
    // SAFETY: flock on a descriptor that `file` keeps open for the whole call.
    if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

/// Makes the empty `out` share `input`'s extents (FICLONE: Btrfs, XFS, bcachefs); false where
/// the filesystem cannot.
#[cfg(target_os = "linux")]
pub fn reflink(input: &File, out: &File) -> bool {
    // SAFETY: both descriptors are open for the whole call; FICLONE takes the source fd.
    unsafe { libc::ioctl(out.as_raw_fd(), libc::FICLONE, input.as_raw_fd()) == 0 }
}

/// One `copy_file_range` of at most `len` bytes from `input`'s position to `out`'s (both
/// advance): the bytes copied, 0 at the end of `input`.
#[cfg(target_os = "linux")]
pub fn copy_file_range(input: &File, out: &File, len: usize) -> std::io::Result<usize> {
    // SAFETY: null offsets use and advance the descriptors' own file positions; both stay open.
    let n = unsafe {
        libc::copy_file_range(input.as_raw_fd(), std::ptr::null_mut(), out.as_raw_fd(), std::ptr::null_mut(), len, 0)
    };
    if n < 0 { Err(std::io::Error::last_os_error()) } else { Ok(n as usize) }
}

/// Bytes an unprivileged process can still write on the filesystem holding `path` (`statvfs`:
/// available blocks × fragment size).
#[cfg(unix)]
pub fn free_bytes(path: &std::path::Path) -> std::io::Result<u64> {
    use std::os::unix::ffi::OsStrExt;
    let c = std::ffi::CString::new(path.as_os_str().as_bytes())
        .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e))?;
    let mut st = std::mem::MaybeUninit::<libc::statvfs>::uninit();
    // SAFETY: `c` is a NUL-terminated path alive for the call; `st` is written by a successful
    // call before it is read.
    if unsafe { libc::statvfs(c.as_ptr(), st.as_mut_ptr()) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: statvfs returned 0, so it filled `st`.
    let st = unsafe { st.assume_init() };
    #[allow(clippy::unnecessary_cast)] // the field types differ between platforms
    Ok(st.f_bavail as u64 * st.f_frsize as u64)
}
