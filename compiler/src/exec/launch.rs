//! Running compiled kernels on the worker pool. A [`Job`] is one kernel call with everything it
//! reads and writes resolved to addresses; [`run`] executes a list of jobs (the kernels of one
//! step of every parameter of a group, when each is a single kernel) as one parallel region:
//! their work is laid end to end and cut into one contiguous share per thread, so 64 small
//! tensors cost one fork and join, not 64, and one large tensor is split as evenly. Work below
//! [`PARALLEL_MIN`] elements runs on the calling thread, where waking a worker would cost more
//! than the work.

use crate::jit::KernelFn;
use ndarray::ArrayD;

/// Elements below which a launch runs on the calling thread.
pub(super) const PARALLEL_MIN: usize = 1 << 15;

/// One kernel call: the function, the base address of every load then every store, the scalar
/// arguments, and its work: `units` elements, or rows of `period` elements when it has broadcast
/// loads.
pub(super) struct Job<T> {
    pub f: KernelFn,
    pub ptrs: Vec<*mut u8>,
    pub scalars: Vec<T>,
    pub units: usize,
    pub period: usize,
    /// Contiguous copies of loads that were not contiguous: `ptrs` point into them, so they
    /// live as long as the call.
    #[allow(dead_code)]
    pub keep: Vec<ArrayD<T>>,
}

impl<T> Job<T> {
    /// Elements per unit of work.
    fn unit(&self) -> usize {
        self.period.max(1)
    }

    /// Runs units `start..end`.
    ///
    /// # Safety
    /// Every pointer must address the elements the kernel reads or writes for these units, and
    /// no other thread may write them meanwhile.
    unsafe fn call(&self, start: usize, end: usize) {
        (self.f)(self.ptrs.as_ptr(), self.scalars.as_ptr() as *const u8, start, end, self.period);
    }
}

/// A share of the work: (job, first unit, end unit).
type Share = Vec<(usize, usize, usize)>;

/// Cuts `jobs` into `parts` shares of about equal elements, each a run of whole units (whole
/// cache lines of elements where the unit is one element).
fn shares<T>(jobs: &[Job<T>], parts: usize) -> Vec<Share> {
    let total: usize = jobs.iter().map(|j| j.units * j.unit()).sum();
    let target = total.div_ceil(parts);
    let mut out: Vec<Share> = vec![Vec::new()];
    let mut room = target;
    for (k, job) in jobs.iter().enumerate() {
        let mut start = 0;
        while start < job.units {
            if room == 0 && out.len() < parts {
                out.push(Vec::new());
                room = target;
            }
            let fit = if out.len() == parts { job.units - start } else { room.div_ceil(job.unit()) };
            // Element-wise work ends a share on a 16-element boundary (a cache line of f32).
            let mut end = (start + fit).min(job.units);
            if job.period == 0 && end < job.units {
                end = (end.div_ceil(16) * 16).min(job.units);
            }
            out.last_mut().expect("one share at least").push((k, start, end));
            room = room.saturating_sub((end - start) * job.unit());
            start = end;
        }
    }
    out
}

/// Runs every job on the calling thread.
///
/// # Safety
/// As [`run`].
pub(super) unsafe fn run_here<T>(jobs: &[Job<T>]) {
    for job in jobs {
        job.call(0, job.units);
    }
}

/// Raw job pointers handed to worker threads: each share touches only its own units.
struct Shared<'a, T>(&'a [Job<T>]);
unsafe impl<T> Send for Shared<'_, T> {}
unsafe impl<T> Sync for Shared<'_, T> {}

/// Runs every job, in parallel across the pool when the work is large enough.
///
/// # Safety
/// Each job's pointers must be valid for its units, and no two jobs may write the same memory or
/// read what another writes (the kernels of different parameters, or one kernel).
pub(super) unsafe fn run<T>(jobs: &[Job<T>]) {
    let total: usize = jobs.iter().map(|j| j.units * j.unit()).sum();
    let threads = rayon::current_num_threads();
    if total < PARALLEL_MIN || threads < 2 {
        for job in jobs {
            job.call(0, job.units);
        }
        return;
    }
    let shared = Shared(jobs);
    let shared = &shared;
    let mut shares = shares(jobs, threads);
    let mine = shares.remove(0);
    rayon::scope(|s| {
        for share in shares {
            s.spawn(move |_| {
                for (k, start, end) in share {
                    // SAFETY: shares are disjoint units of jobs that do not overlap.
                    unsafe { shared.0[k].call(start, end) };
                }
            });
        }
        // The calling thread takes the first share itself instead of waiting idle.
        for (k, start, end) in mine {
            // SAFETY: as above.
            unsafe { shared.0[k].call(start, end) };
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    unsafe extern "C" fn nothing(_: *const *mut u8, _: *const u8, _: usize, _: usize, _: usize) {}

    fn job(units: usize, period: usize) -> Job<f32> {
        Job { f: nothing, ptrs: Vec::new(), scalars: Vec::new(), units, period, keep: Vec::new() }
    }

    /// Every unit of every job lands in exactly one share, in order, and shares are balanced.
    #[test]
    fn shares_cover_every_unit_once() {
        for (jobs, parts) in [
            (vec![job(1 << 20, 0)], 2),
            ((0..64).map(|_| job(1 << 14, 0)).collect::<Vec<_>>(), 2),
            (vec![job(1000, 0), job(7, 3), job(33, 0), job(300, 512)], 3),
            (vec![job(5, 0)], 4),
        ] {
            let cut = shares(&jobs, parts);
            assert!(cut.len() <= parts);
            let mut next = vec![0; jobs.len()];
            let mut sizes = Vec::new();
            for share in &cut {
                let mut size = 0;
                for &(k, start, end) in share {
                    assert_eq!(start, next[k], "job {k} continues where it stopped");
                    assert!(end > start && end <= jobs[k].units);
                    next[k] = end;
                    size += (end - start) * jobs[k].unit();
                }
                sizes.push(size);
            }
            assert!(next.iter().zip(&jobs).all(|(n, j)| *n == j.units), "every unit is run");
            let total: usize = sizes.iter().sum();
            let biggest = *sizes.iter().max().expect("a share");
            assert!(biggest <= total.div_ceil(parts) + 512 + 16, "{sizes:?}");
        }
    }
}
