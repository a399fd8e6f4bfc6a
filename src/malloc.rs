//! glibc malloc settings for a long-lived process holding many small
//! objects (the operator's caches), chosen by measurement (README, "The
//! allocator" and "What cut it"). Elsewhere (musl, other systems) these
//! do nothing.
//!
//! * Two arenas: glibc gives each thread that allocates under contention
//!   an arena of its own, up to eight per core, and memory freed in one is
//!   not reused by another. Two cut the operator's RSS by 14 % (2,000
//!   objects: 44.9 to 38.4 MiB); one was no better, and jemalloc and
//!   mimalloc were worse.
//! * A fixed mmap threshold: glibc raises it each time a large block is
//!   freed, after which the large transient buffers of a list (a page of
//!   objects or bundles) come from the heap and leave holes between the
//!   caches' small long-lived entries that the heap can never give back.
//! * A periodic trim, which returns the free pages inside the heap, not
//!   only at its top.
//!
//! `MALLOC_ARENA_MAX` and `MALLOC_MMAP_THRESHOLD_`, when set, win.

use std::time::Duration;

/// How often free heap pages are returned to the system.
const TRIM_PERIOD: Duration = Duration::from_secs(10);

/// Blocks at least this large are mapped on their own and unmapped when
/// freed.
const MMAP_THRESHOLD: i32 = 64 * 1024;

/// Sets the bounds and starts the trimming thread. Call before any other
/// thread is started.
pub fn tune() -> std::io::Result<()> {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        if std::env::var_os("MALLOC_ARENA_MAX").is_none() {
            // SAFETY: mallopt only sets a tunable of the allocator; no
            // thread but this one exists yet.
            unsafe {
                libc::mallopt(libc::M_ARENA_MAX, 2);
            }
        }
        if std::env::var_os("MALLOC_MMAP_THRESHOLD_").is_none() {
            // SAFETY: as above.
            unsafe {
                libc::mallopt(libc::M_MMAP_THRESHOLD, MMAP_THRESHOLD);
            }
        }
    }
    spawn_trim(TRIM_PERIOD)
}

/// Starts a thread that trims the heap every `period`, for the process's
/// life.
fn spawn_trim(period: Duration) -> std::io::Result<()> {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    std::thread::Builder::new()
        .name("malloc-trim".into())
        .spawn(move || {
            loop {
                std::thread::sleep(period);
                // SAFETY: malloc_trim only returns free memory to the
                // system; it takes the allocator's own locks.
                unsafe {
                    libc::malloc_trim(0);
                }
            }
        })?;
    #[cfg(not(all(target_os = "linux", target_env = "gnu")))]
    let _ = period;
    Ok(())
}
