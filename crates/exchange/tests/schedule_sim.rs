//! The multi-source scheduler on a virtual clock: one follower, providers
//! of very different speeds and latencies, each serving its requests one
//! after another at its own rate. The fetch should take close to the ideal
//! time (all bytes over the sum of the rates).

use shoal_exchange::schedule::{Config, Item, Scheduler};
use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::time::{Duration, Instant};

/// xorshift64*, deterministic.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
}

#[derive(Clone, Copy)]
struct Provider {
    rate: f64, // bytes/s
    latency: Duration,
    /// Stops sending anything from this time on (a stalled peer).
    dies_at: Option<Duration>,
}

#[derive(PartialEq, Eq, PartialOrd, Ord)]
enum Ev {
    /// bytes of an item from a provider (Complete when the item ends)
    Bytes {
        peer: usize,
        bytes: u64,
        item: Option<u64>,
        /// the last bytes of a request
        last: bool,
    },
    Tick,
}

struct Outcome {
    elapsed: Duration,
    ideal: Duration,
    duplicated: u64,
    stalled: Vec<usize>,
    /// Bytes delivered (duplicates included) over the payload.
    overhead: f64,
}

fn simulate(providers: &[Provider], items: &[u64], seed: u64) -> Outcome {
    let t0 = Instant::now();
    let mut s: Scheduler<usize, u64> = Scheduler::new(Config::default());
    s.push(
        items
            .iter()
            .enumerate()
            .map(|(i, &size)| Item { key: i as u64, size }),
    );
    for p in 0..providers.len() {
        s.add_peer(p, t0);
    }
    // (time, seq, event): seq keeps equal times in insertion order
    let mut events: BinaryHeap<Reverse<(Duration, u64, Ev)>> = BinaryHeap::new();
    let mut seq = 0u64;
    let mut busy_until = vec![Duration::ZERO; providers.len()];
    let mut done = vec![false; items.len()];
    let mut stalled = Vec::new();
    let mut rng = Rng(seed);
    events.push(Reverse((Duration::ZERO, 0, Ev::Tick)));
    let mut now = Duration::ZERO;
    let mut delivered = 0u64;
    let step = Duration::from_millis(50);
    loop {
        // hand out work: each request is served after the peer's earlier ones
        while let Some((p, keys)) = s.next(t0 + now) {
            let pr = providers[p];
            let jitter = Duration::from_micros(rng.next() % 2000);
            let mut t = (now + pr.latency * 2 + jitter).max(busy_until[p]);
            let n = keys.len();
            for (i, k) in keys.into_iter().enumerate() {
                let mut left = items[k as usize];
                while left > 0 {
                    let chunk = left.min((pr.rate * step.as_secs_f64()).max(1.0) as u64);
                    t += Duration::from_secs_f64(chunk as f64 / pr.rate);
                    left -= chunk;
                    if pr.dies_at.is_some_and(|d| t >= d) {
                        break;
                    }
                    seq += 1;
                    let item = (left == 0).then_some(k);
                    let last = left == 0 && i + 1 == n;
                    events.push(Reverse((
                        t,
                        seq,
                        Ev::Bytes {
                            peer: p,
                            bytes: chunk,
                            item,
                            last,
                        },
                    )));
                }
            }
            busy_until[p] = t;
        }
        if s.is_done() {
            break;
        }
        let Some(Reverse((t, _, ev))) = events.pop() else {
            panic!("work left ({} in flight) and nothing will happen", s.in_flight());
        };
        assert!(t < Duration::from_secs(3600), "the simulated fetch never ends");
        now = t;
        match ev {
            Ev::Bytes {
                peer,
                bytes,
                item,
                last,
            } => {
                delivered += bytes;
                s.progress(peer, bytes, t0 + now);
                if last {
                    s.request_ended(peer);
                }
                if let Some(k) = item {
                    if !done[k as usize] {
                        done[k as usize] = true;
                        s.complete(k);
                    }
                }
            }
            Ev::Tick => {
                stalled.extend(s.tick(t0 + now));
                seq += 1;
                events.push(Reverse((now + Duration::from_millis(500), seq, Ev::Tick)));
            }
        }
    }
    assert!(done.iter().all(|d| *d), "every item arrived");
    let total: u64 = items.iter().sum();
    let rates: f64 = providers
        .iter()
        .enumerate()
        .filter(|(i, _)| !stalled.contains(i))
        .map(|(_, p)| p.rate)
        .sum();
    Outcome {
        elapsed: now,
        ideal: Duration::from_secs_f64(total as f64 / rates),
        duplicated: s.duplicated,
        stalled,
        overhead: delivered as f64 / total as f64,
    }
}

/// Sizes spread log-uniformly from 1 KiB to 4 MiB (subtrees of a package tree).
fn items(n: usize, seed: u64) -> Vec<u64> {
    let mut rng = Rng(seed);
    (0..n)
        .map(|_| 2f64.powf(10.0 + 12.0 * rng.unit()) as u64)
        .collect()
}

fn mbit(m: f64) -> f64 {
    m * 125_000.0
}

fn eight_providers() -> Vec<Provider> {
    [
        (2.0, 80),
        (5.0, 60),
        (10.0, 5),
        (20.0, 40),
        (50.0, 20),
        (100.0, 10),
        (200.0, 30),
        (400.0, 2),
    ]
    .iter()
    .map(|&(m, ms)| Provider {
        rate: mbit(m),
        latency: Duration::from_millis(ms),
        dies_at: None,
    })
    .collect()
}

#[test]
fn eight_providers_of_very_different_speeds_finish_close_to_the_ideal() {
    for seed in [1, 2, 3] {
        let o = simulate(&eight_providers(), &items(4000, seed), seed);
        let ratio = o.elapsed.as_secs_f64() / o.ideal.as_secs_f64();
        eprintln!(
            "seed {seed}: {:.2} s vs ideal {:.2} s = {ratio:.3}, {} duplicated, {:.3} bytes/payload",
            o.elapsed.as_secs_f64(),
            o.ideal.as_secs_f64(),
            o.duplicated,
            o.overhead
        );
        assert!(ratio <= 1.15, "seed {seed}: {ratio:.3} of the ideal");
        assert!(
            o.overhead <= 1.03,
            "seed {seed}: {:.3} bytes per payload byte",
            o.overhead
        );
    }
}

#[test]
fn a_provider_that_stalls_is_dropped_and_its_work_reassigned() {
    let mut ps = eight_providers();
    ps[7].dies_at = Some(Duration::from_secs(3)); // the fastest one stops answering
    let o = simulate(&ps, &items(3000, 9), 9);
    assert_eq!(o.stalled, vec![7]);
    let ratio = o.elapsed.as_secs_f64() / o.ideal.as_secs_f64();
    eprintln!(
        "stalled: {:.2} s vs ideal without it {:.2} s",
        o.elapsed.as_secs_f64(),
        o.ideal.as_secs_f64()
    );
    // the stall costs the detection time, not the peer's share of the work
    assert!(o.elapsed <= o.ideal + Duration::from_secs(12), "{ratio:.3}");
}

#[test]
fn one_provider_is_used_back_to_back() {
    let p = [Provider {
        rate: mbit(800.0),
        latency: Duration::from_millis(1),
        dies_at: None,
    }];
    let o = simulate(&p, &items(2000, 4), 4);
    assert_eq!(o.duplicated, 0);
    assert!(o.elapsed.as_secs_f64() <= o.ideal.as_secs_f64() * 1.05);
}

#[test]
fn schedules_are_deterministic() {
    let a = simulate(&eight_providers(), &items(500, 5), 5);
    let b = simulate(&eight_providers(), &items(500, 5), 5);
    assert_eq!((a.elapsed, a.duplicated), (b.elapsed, b.duplicated));
}
