//! MAC throughput per algorithm (aes-cmac, ISO 9797-1 algorithm 1 with DES, algorithm 3 retail
//! MAC, DES-X CBC-MAC) over 1 KiB and 16 KiB inputs.
//!
//! Run: `cargo bench -p simkit-core --bench mac -- --warm-up-time 1 --measurement-time 2`.

// Benchmark inputs are constants of the right length; a failure here is a bug to see at once.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use simkit_core::crypto::{Padding, aes_cmac, desx_cbc_mac, iso9797_1_alg1, iso9797_1_alg3};

const K16: [u8; 16] = *b"0123456789ABCDEF";
const K24: [u8; 24] = *b"0123456789ABCDEFGHIJKLMN";

fn macs(c: &mut Criterion) {
    for size in [1024usize, 16 * 1024] {
        let data: Vec<u8> = (0..size).map(|i| (i * 31) as u8).collect();
        let mut g = c.benchmark_group(format!("mac/{}KiB", size / 1024));
        g.throughput(Throughput::Bytes(size as u64));
        g.bench_function("aes-cmac", |b| {
            b.iter(|| aes_cmac(black_box(&K16), black_box(&data)).unwrap())
        });
        g.bench_function("iso9797-1-alg1-des", |b| {
            b.iter(|| {
                iso9797_1_alg1(black_box(&K16[..8]), Padding::Method2, black_box(&data)).unwrap()
            })
        });
        g.bench_function("iso9797-1-alg3-retail", |b| {
            b.iter(|| iso9797_1_alg3(black_box(&K16), Padding::Method2, black_box(&data)).unwrap())
        });
        g.bench_function("desx-cbc", |b| {
            b.iter(|| desx_cbc_mac(black_box(&K24), Padding::Method2, black_box(&data)).unwrap())
        });
        g.finish();
    }
}

criterion_group!(benches, macs);
criterion_main!(benches);
