//! What fraudwall does to its own process: the allocator policy, giving up root once its
//! sockets are bound, the signals that stop it, and reading the message of a caught panic.

use tracing::{info, warn};

/// Process-wide allocator policy. The binary allocates with jemalloc (`main.rs`): measured on
/// 5,000 cold names of the test hierarchy, glibc's malloc grew the resident set by 2.9–3.7 KB per
/// cached name, most of it fragmentation between its per-thread arenas, where jemalloc grew it by
/// 0.77 KB, as much as Unbound (0.76 KB). jemalloc's background thread gives pages that stay
/// unused back to the kernel after its decay time (10 s), so the peak of a list compile does not
/// stay resident either.
pub fn tune_allocator() {
    let on = true;
    // SAFETY: mallctl with a valid NUL-terminated name and a pointer to a bool of the given
    // size; failure (e.g. in a test binary on another allocator) only leaves the default.
    unsafe {
        tikv_jemalloc_sys::mallctl(
            c"background_thread".as_ptr(),
            std::ptr::null_mut(),
            std::ptr::null_mut(),
            (&raw const on).cast_mut().cast(),
            std::mem::size_of::<bool>(),
        );
    }
}

/// Gives memory freed by a burst of work (a list pass parses and sorts whole lists) back to the
/// kernel now, instead of carrying its peak until the decay time.
pub fn release_memory() {
    // SAFETY: "arena.4096.purge" (4096 = MALLCTL_ARENAS_ALL) takes no input and no output;
    // malloc_trim only returns free memory of glibc's arenas (what C code allocated).
    unsafe {
        tikv_jemalloc_sys::mallctl(
            c"arena.4096.purge".as_ptr(),
            std::ptr::null_mut(),
            std::ptr::null_mut(),
            std::ptr::null_mut(),
            0,
        );
        libc::malloc_trim(0);
    }
}

/// Why root could not be given up.
#[derive(Debug, thiserror::Error)]
pub enum PrivilegeError {
    #[error("server.user: no user {0:?} on this system")]
    NoUser(String),
    #[error("server.group: no group {0:?} on this system")]
    NoGroup(String),
    #[error("cannot switch to user {user} (uid {uid}, gid {gid}): {source}")]
    Switch {
        user: String,
        uid: u32,
        gid: u32,
        source: std::io::Error,
    },
}

/// Started as root: switches the whole process (every thread) to `user` and `group` (default:
/// the user's own group), dropping supplementary groups, once every socket is bound. Started as
/// anyone else there is nothing to give up. Root without a configured user is warned about.
pub fn drop_privileges(user: Option<&str>, group: Option<&str>) -> Result<(), PrivilegeError> {
    // SAFETY: plain getters.
    if unsafe { libc::geteuid() } != 0 {
        return Ok(());
    }
    let Some(user) = user else {
        warn!(
            "running as root: set server.user to an unprivileged user, which fraudwall switches \
             to once its sockets are bound"
        );
        return Ok(());
    };
    let (uid, user_gid) = lookup_user(user)?;
    let gid = match group {
        Some(g) => lookup_group(g)?,
        None => user_gid,
    };
    let fail = |source| PrivilegeError::Switch {
        user: user.to_string(),
        uid,
        gid,
        source,
    };
    // SAFETY: setgroups/setgid/setuid with plain values. glibc applies setgid and setuid to
    // every thread of the process (the runtime's threads already run).
    unsafe {
        if libc::setgroups(0, std::ptr::null()) != 0 {
            return Err(fail(std::io::Error::last_os_error()));
        }
        if libc::setgid(gid) != 0 {
            return Err(fail(std::io::Error::last_os_error()));
        }
        if libc::setuid(uid) != 0 {
            return Err(fail(std::io::Error::last_os_error()));
        }
        // Root must be gone for good.
        if libc::setuid(0) == 0 || libc::geteuid() == 0 {
            return Err(fail(std::io::Error::other("root could be regained")));
        }
    }
    info!("switched to user {user} (uid {uid}, gid {gid})");
    Ok(())
}

fn lookup_user(name: &str) -> Result<(u32, u32), PrivilegeError> {
    let cname = std::ffi::CString::new(name).map_err(|_| PrivilegeError::NoUser(name.into()))?;
    let mut buf = vec![0u8; 16 * 1024];
    // SAFETY: passwd is plain old data filled in by getpwnam_r from `buf`, which outlives it.
    let mut pw: libc::passwd = unsafe { std::mem::zeroed() };
    let mut found: *mut libc::passwd = std::ptr::null_mut();
    // SAFETY: all pointers are valid for the call; buf's length is passed.
    let rc = unsafe {
        libc::getpwnam_r(
            cname.as_ptr(),
            &mut pw,
            buf.as_mut_ptr().cast(),
            buf.len(),
            &mut found,
        )
    };
    if rc != 0 || found.is_null() {
        return Err(PrivilegeError::NoUser(name.into()));
    }
    Ok((pw.pw_uid, pw.pw_gid))
}

fn lookup_group(name: &str) -> Result<u32, PrivilegeError> {
    let cname = std::ffi::CString::new(name).map_err(|_| PrivilegeError::NoGroup(name.into()))?;
    let mut buf = vec![0u8; 16 * 1024];
    // SAFETY: as in lookup_user.
    let mut gr: libc::group = unsafe { std::mem::zeroed() };
    let mut found: *mut libc::group = std::ptr::null_mut();
    // SAFETY: all pointers are valid for the call; buf's length is passed.
    let rc = unsafe {
        libc::getgrnam_r(
            cname.as_ptr(),
            &mut gr,
            buf.as_mut_ptr().cast(),
            buf.len(),
            &mut found,
        )
    };
    if rc != 0 || found.is_null() {
        return Err(PrivilegeError::NoGroup(name.into()));
    }
    Ok(gr.gr_gid)
}

/// Completes at SIGINT or SIGTERM; a second signal while draining exits at once.
pub async fn shutdown_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = match signal(SignalKind::terminate()) {
        Ok(s) => s,
        Err(e) => {
            warn!(error = %e, "cannot listen for SIGTERM");
            let _ = tokio::signal::ctrl_c().await;
            return;
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => info!("SIGINT received"),
        _ = term.recv() => info!("SIGTERM received"),
    }
    tokio::spawn(async {
        let _ = tokio::signal::ctrl_c().await;
        std::process::exit(130);
    });
}

/// The message of a caught panic, for the log line that reports it.
pub fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = panic.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = panic.downcast_ref::<String>() {
        s.clone()
    } else {
        "no message".to_string()
    }
}
