//! Keeping the worker pool awake through a training loop. A training step on this machine's two
//! cores forks a handful of times (each large matrix product splits its output between the
//! workers), with single-thread kernels in between that run for tens of microseconds, long enough
//! for rayon's idle worker to fall asleep. Waking it again costs a futex wake and up to a
//! scheduler tick, every fork, every step. [`with_workers_spinning`] runs a closure while every
//! other worker of the current pool spins on the pool's queues, so each fork is picked up at
//! once; it is the OpenMP `OMP_WAIT_POLICY=active` of the training loop, and costs idle cores
//! only while the loop runs.

use std::sync::atomic::{AtomicBool, Ordering};

/// Runs `f` on the current thread while the current pool's other workers wait for work by
/// spinning instead of sleeping; returns what `f` returns. Outside a pool, or in a pool of one
/// thread, it just runs `f`. Work forked inside `f` runs exactly as it would without the
/// spinners (they only take jobs from the pool's queues), so results do not change.
pub fn with_workers_spinning<R>(f: impl FnOnce() -> R) -> R {
    let workers = rayon::current_num_threads();
    let Some(caller) = rayon::current_thread_index() else { return f() };
    if workers < 2 {
        return f();
    }
    let done = AtomicBool::new(false);
    rayon::in_place_scope(|s| {
        for _ in 1..workers {
            let done = &done;
            s.spawn(move |_| {
                // The caller may pop a spinner it spawned while it waits at a join inside `f`, or
                // at the end of the scope: spinning there would wait for itself.
                if rayon::current_thread_index() == Some(caller) {
                    return;
                }
                spin_until(done);
            });
        }
        // Set on the way out, a panic's unwinding included, so the spinners always stop and the
        // scope ends (with the panic) instead of waiting for them forever.
        let stop = StopOnDrop(&done);
        let result = f();
        drop(stop);
        result
    })
}

/// Sets its flag when dropped.
struct StopOnDrop<'a>(&'a AtomicBool);

impl Drop for StopOnDrop<'_> {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Release);
    }
}

/// Runs the pool's queued jobs as they appear until `done` is set, pausing briefly between
/// empty looks so that the look itself (a steal attempt on every other worker's deque) does not
/// contend with the workers pushing and popping there.
fn spin_until(done: &AtomicBool) {
    while !done.load(Ordering::Acquire) {
        match rayon::yield_now() {
            Some(rayon::Yield::Executed) => {}
            _ => {
                for _ in 0..32 {
                    std::hint::spin_loop();
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forks_inside_run_on_the_spinning_workers_and_the_result_comes_back() {
        let pool = rayon::ThreadPoolBuilder::new().num_threads(3).build().unwrap();
        let total = pool.install(|| {
            with_workers_spinning(|| {
                (0..200)
                    .map(|i: u64| {
                        let (a, b) = rayon::join(|| i * 2, || i + 1);
                        a + b
                    })
                    .sum::<u64>()
            })
        });
        assert_eq!(total, (0..200).map(|i| 3 * i + 1).sum::<u64>());
    }

    #[test]
    fn outside_a_pool_or_with_one_worker_it_just_runs() {
        assert_eq!(with_workers_spinning(|| 7), 7);
        let one = rayon::ThreadPoolBuilder::new().num_threads(1).build().unwrap();
        assert_eq!(one.install(|| with_workers_spinning(|| rayon::join(|| 1, || 2))), (1, 2));
    }

    #[test]
    fn a_panic_inside_stops_the_spinners_and_comes_out() {
        let pool = rayon::ThreadPoolBuilder::new().num_threads(2).build().unwrap();
        let caught = pool.install(|| {
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                with_workers_spinning(|| -> u32 { panic!("inside the loop") })
            }))
        });
        assert!(caught.is_err());
        assert_eq!(pool.install(|| with_workers_spinning(|| rayon::join(|| 1, || 2))), (1, 2), "the pool still works");
    }

    #[test]
    fn nested_use_returns() {
        let pool = rayon::ThreadPoolBuilder::new().num_threads(2).build().unwrap();
        let v = pool.install(|| with_workers_spinning(|| with_workers_spinning(|| rayon::join(|| 4, || 5))));
        assert_eq!(v, (4, 5));
    }
}
