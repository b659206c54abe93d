//! Whether a process is still running, for files and rows a killed process left behind.

/// True when `pid` names a live process (one we may not signal counts as live).
pub(crate) fn pid_exists(pid: i64) -> bool {
    let Ok(pid) = libc::pid_t::try_from(pid) else { return false };
    // SAFETY: signal 0 only checks that the process exists and may be signalled.
    unsafe { libc::kill(pid, 0) == 0 || std::io::Error::last_os_error().raw_os_error() == Some(libc::EPERM) }
}
