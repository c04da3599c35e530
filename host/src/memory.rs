//! Giving back the memory that only the agent's start needed, once it is ready.
//!
//! A ready agent with 200 containers and four plugins held 14 MB of its own executable's
//! pages (docs/BENCHMARKS.md, "Steady RSS with a cold plugin cache"): every code page
//! that start-up ran (config, plugin loading, the first full sync), each pulled in with
//! its neighbours by the kernel's fault-around. They are clean page-cache pages, but they
//! count in the agent's RSS and in its pod's memory cgroup. Once ready, the agent asks the
//! kernel to reclaim them (`MADV_PAGEOUT`, Linux 5.4+); what the steady state runs comes
//! back on use (5–6 MB of it at 200 containers, with the LTO build). It also returns the
//! heap pages malloc keeps free (`malloc_trim`).

use std::path::Path;

use tracing::debug;

/// Returns start-up memory to the kernel: the executable's read-only pages and the free
/// heap. Costs a read of `/proc/self/maps` and a few system calls per CPU; blocking.
pub fn release_startup_memory() {
    trim_heap();
    let mappings = executable_read_only_mappings();
    let paged_out = on_each_cpu(|| page_out(&mappings));
    debug!(
        message = "Returned start-up memory to the kernel.",
        executable_kib = paged_out / 1024
    );
}

/// Runs `pass` once pinned to each CPU this thread may use, then restores its affinity;
/// returns the last pass's result. `MADV_PAGEOUT` drains only the calling CPU's batch of
/// pages not yet on the kernel's LRU lists, and a page still in another CPU's batch is
/// not reclaimed: in a lab with a few containers, one pass right at ready left 6.7 MB of
/// the executable resident, one pass per CPU 2.2 MB.
fn on_each_cpu(pass: impl Fn() -> usize) -> usize {
    #[cfg(target_os = "linux")]
    #[allow(unsafe_code)]
    // SAFETY: cpu_set_t is plain data, zeroed is an empty set; sched_{get,set}affinity
    // with pid 0 read and set the calling thread's own mask from/into it.
    unsafe {
        let size = std::mem::size_of::<libc::cpu_set_t>();
        let mut allowed: libc::cpu_set_t = std::mem::zeroed();
        if libc::sched_getaffinity(0, size, &mut allowed) == 0 {
            let mut last = 0;
            for cpu in 0..libc::CPU_SETSIZE as usize {
                if !libc::CPU_ISSET(cpu, &allowed) {
                    continue;
                }
                let mut one: libc::cpu_set_t = std::mem::zeroed();
                libc::CPU_SET(cpu, &mut one);
                if libc::sched_setaffinity(0, size, &one) == 0 {
                    last = pass();
                }
            }
            libc::sched_setaffinity(0, size, &allowed);
            return last;
        }
    }
    pass()
}

/// `malloc_trim(0)`: glibc hands the free pages of its arenas back.
pub fn trim_heap() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    #[allow(unsafe_code)]
    // SAFETY: malloc_trim takes a plain integer, touches only glibc's own allocator
    // state (under its locks) and is safe to call from any thread at any time.
    unsafe {
        libc::malloc_trim(0);
    }
}

/// The read-only mappings of the running executable (none when `/proc` cannot say).
fn executable_read_only_mappings() -> Vec<(usize, usize)> {
    match (
        std::fs::read_link("/proc/self/exe"),
        std::fs::read_to_string("/proc/self/maps"),
    ) {
        (Ok(exe), Ok(maps)) => read_only_mappings_of(&maps, &exe),
        _ => Vec::new(),
    }
}

/// `MADV_PAGEOUT` over each of `mappings`; returns the bytes advised. Only read-only
/// mappings are given: paging out writable ones (data, relocated data) would mean swap. A
/// kernel without `MADV_PAGEOUT` refuses it (`EINVAL`), which changes nothing.
fn page_out(mappings: &[(usize, usize)]) -> usize {
    let mut advised = 0;
    for &(start, end) in mappings {
        let len = end - start;
        #[cfg(target_os = "linux")]
        #[allow(unsafe_code)]
        // SAFETY: the range is a whole mapping of this process's own executable, read
        // from /proc/self/maps; MADV_PAGEOUT only drops clean file pages from memory
        // (they fault back in from the file), it never changes their contents.
        let ok = unsafe { libc::madvise(start as *mut libc::c_void, len, libc::MADV_PAGEOUT) } == 0;
        #[cfg(not(target_os = "linux"))]
        let ok = false;
        if ok {
            advised += len;
        }
    }
    advised
}

/// The `(start, end)` of each mapping in `maps` (`/proc/self/maps`) of file `exe` that
/// is not writable.
fn read_only_mappings_of(maps: &str, exe: &Path) -> Vec<(usize, usize)> {
    maps.lines()
        .filter_map(|line| {
            let mut fields = line.split_whitespace();
            let range = fields.next()?;
            let perms = fields.next()?;
            let path = fields.nth(3)?;
            if Path::new(path) != exe || perms.contains('w') {
                return None;
            }
            let (start, end) = range.split_once('-')?;
            let start = usize::from_str_radix(start, 16).ok()?;
            let end = usize::from_str_radix(end, 16).ok()?;
            (end > start).then_some((start, end))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_executables_read_only_mappings_are_chosen() {
        let maps = "\
5600-5700 r--p 00000000 08:01 42 /usr/bin/gannet
5700-5a00 r-xp 00100000 08:01 42 /usr/bin/gannet
5a00-5b00 rw-p 00400000 08:01 42 /usr/bin/gannet
5b00-5c00 rw-p 00000000 00:00 0 [heap]
7f00-7f10 r-xp 00000000 08:01 7 /usr/lib/libc.so.6
7f10-7f20 r-xp 00000000 08:01 9 /usr/bin/gannet-other
";
        assert_eq!(
            read_only_mappings_of(maps, Path::new("/usr/bin/gannet")),
            vec![(0x5600, 0x5700), (0x5700, 0x5a00)]
        );
    }

    #[test]
    fn the_running_executable_is_paged_out_and_keeps_working() {
        // Linux 5.4+ (pidfds already need 5.3): the advice is taken for the test binary.
        assert!(page_out(&executable_read_only_mappings()) > 0);
        // The pages come back on use: this code runs, its data reads, after the advice.
        release_startup_memory();
        assert_eq!(read_only_mappings_of("bad line\n", Path::new("/x")), vec![]);
        assert!(page_out(&executable_read_only_mappings()) > 0);
    }
}
