//! Report rows of the elementwise family (issue 7): masked arithmetic on a
//! `MaskedArray`, in place and into a new array.

use crate::bw::{data, fmt_t, pool, row, table_header, zeros, Base};
use crate::{header, Ctx};
use maskops::reference::elementwise::{self as r, RefRhs};
use maskops::{BinaryOp, Mask, MaskPolicy, MaskedArray, UnaryOp};

/// Rows at 2^24 (the reference at 2^20).
const N: usize = 1 << 24;
const NREF: usize = 1 << 20;

pub fn run(ctx: &Ctx) {
    let p1 = pool(1);
    let p2 = pool(2);

    header("elementwise: masked arithmetic on MaskedArray<f32>, 2^24, density 0.9, one thread");
    let base = p1.install(|| Base::measure(ctx));
    base.print();
    let m = Mask::random(N, 0.1, 41);
    let mut a = MaskedArray::new(data(N, 42, -2.0, 2.0), m.clone()).unwrap();
    let b = MaskedArray::new(data(N, 43, -2.0, 2.0), m).unwrap();
    let mut out = zeros(N);
    let mr = Mask::random(NREF, 0.1, 41);
    let (ar, br) = (a.values()[..NREF].to_vec(), b.values()[..NREF].to_vec());
    let (ar, br) = (&ar[..], &br[..]);

    println!(
        "in place: x = x * s on kept entries; bytes = x read + x written + mask = 8.125 B/elem"
    );
    table_header("scale");
    let mut k = 0u32;
    // alternate x2 and x0.5: repeated runs stay exact and finite
    let mut scale = |a: &mut MaskedArray<f32>| {
        k ^= 1;
        a.mul_scalar_assign(if k == 1 { 2.0 } else { 0.5 })
    };
    let t = p1.install(|| ctx.time(|| scale(&mut a)));
    let tref = p1.install(|| ctx.time(|| r::unary(UnaryOp::MulScalar(2.0), ar, &mr).unwrap()));
    let vs_ref = (tref / NREF as f64) / (t / N as f64);
    row(
        "mul_scalar_assign",
        "2^24",
        t,
        N as f64,
        8.125,
        base.scale,
        base.read,
        Some(vs_ref),
    );

    println!("into a new array: out = a + b (same masks); bytes = a + b read, out written, mask read = 12.125 B/elem");
    table_header("triad");
    let t = p1.install(|| {
        ctx.time(|| {
            a.binary_into(BinaryOp::Add, &b, MaskPolicy::Match, &mut out)
                .unwrap()
        })
    });
    let tref = p1.install(|| {
        ctx.time(|| {
            r::binary(
                BinaryOp::Add,
                ar,
                &mr,
                RefRhs::Masked(br, &mr, MaskPolicy::Match),
                1,
                NREF,
            )
            .unwrap()
        })
    });
    let vs_ref = (tref / NREF as f64) / (t / N as f64);
    row(
        "add, into caller's buffer",
        "2^24",
        t,
        N as f64,
        12.125,
        base.triad,
        base.read,
        Some(vs_ref),
    );
    let t = p1.install(|| ctx.time(|| a.add(&b).unwrap()));
    let vs_ref = (tref / NREF as f64) / (t / N as f64);
    row(
        "add, allocating (a.add(&b))",
        "2^24",
        t,
        N as f64,
        12.125,
        base.triad,
        base.read,
        Some(vs_ref),
    );
    println!("(\"vs scale\"/\"vs triad\"/\"vs read\": GB/s over the baseline's GB/s, same run; \"vs ref\": reference time per element at 2^20 over this time per element at 2^24; the allocating add also pays for a fresh 64 MiB output and its page faults)");

    let t1 = p1.install(|| ctx.time_with(true, || scale(&mut a)));
    let t2 = p2.install(|| ctx.time_with(true, || scale(&mut a)));
    println!(
        "mul_scalar_assign, wall clock: 1 thread {} ({:.1} GB/s), 2 threads {} ({:.1} GB/s), speedup {:.2}x (parallel from {} elements)",
        fmt_t(t1),
        N as f64 * 8.125 / t1 / 1e9,
        fmt_t(t2),
        N as f64 * 8.125 / t2 / 1e9,
        t1 / t2,
        maskops::backend::threshold(maskops::backend::Threshold::Elementwise)
    );
}
