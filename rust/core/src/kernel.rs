//! The fused per-chunk pass: check every value (finite, within the variable's physical range),
//! normalize it and write it to its place in the batch, in one sweep over the decoded chunk.
//!
//! The inner loop is branch-free (the fault flag is OR-ed, not tested) so the compiler can
//! vectorize it; only when a slab is known to be bad is it scanned again to name the fault.

/// Shape of one sample: variables x levels x (lat*lon) values, C order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SampleLayout {
    pub variables: usize,
    pub levels: usize,
    pub plane: usize,
}

impl SampleLayout {
    pub fn len(&self) -> usize {
        self.variables * self.levels * self.plane
    }
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// The normalization of each slab in physical units: normalized = (x - mean) / scale, so
/// physical = normalized * scale + mean. The kernels apply it as an [`Affine`]; callers that
/// return to physical units read it from here, so the rule below lives in one place.
#[derive(Debug, Clone, PartialEq)]
pub struct NormStats {
    pub mean: Vec<f64>,
    pub scale: Vec<f64>,
}

impl NormStats {
    /// Raw values out (mean 0, scale 1) for `slabs` slabs.
    pub fn identity(slabs: usize) -> Self {
        NormStats { mean: vec![0.0; slabs], scale: vec![1.0; slabs] }
    }

    /// From mean/std per slab; a zero or non-finite std leaves the centred value unscaled
    /// (scale 1: a constant field normalizes to 0 rather than to inf).
    pub fn from_mean_std(mean: &[f64], std: &[f64]) -> Self {
        let scale = std.iter().map(|&s| if s.is_finite() && s > 0.0 { s } else { 1.0 }).collect();
        NormStats { mean: mean.to_vec(), scale }
    }
}

/// Affine normalization per (variable, level) slab, as the kernels apply it in f32:
/// y = (x - shift) * scale.
#[derive(Debug, Clone, PartialEq)]
pub struct Affine {
    pub shift: Vec<f32>,
    pub scale: Vec<f32>,
}

impl Affine {
    /// Identity transform for `slabs` slabs (raw values out).
    pub fn identity(slabs: usize) -> Self {
        Affine::from(&NormStats::identity(slabs))
    }

    /// From mean/std per slab, by the rule of [`NormStats::from_mean_std`].
    pub fn from_mean_std(mean: &[f64], std: &[f64]) -> Self {
        Affine::from(&NormStats::from_mean_std(mean, std))
    }
}

impl From<&NormStats> for Affine {
    fn from(n: &NormStats) -> Self {
        // The reciprocal in f64, rounded once to f32: a multiply per value, not a divide.
        Affine {
            shift: n.mean.iter().map(|&m| m as f32).collect(),
            scale: n.scale.iter().map(|&s| (1.0 / s) as f32).collect(),
        }
    }
}

/// What was wrong with a value, and where in the sample it sits.
#[derive(Debug, Clone, PartialEq)]
pub struct ValueFault {
    pub variable: usize,
    pub level: usize,
    pub offset: usize,
    pub value: f32,
    pub kind: FaultKind,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FaultKind {
    NaN,
    Inf,
    OutOfRange,
    /// A valid value whose normalized form is not a finite f32.
    Overflow,
}

/// Valid closed interval per variable; infinite bounds disable that side of the check.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ValidRange {
    pub lo: f32,
    pub hi: f32,
}

impl ValidRange {
    pub const ANY: ValidRange = ValidRange { lo: f32::NEG_INFINITY, hi: f32::INFINITY };

    /// The validity check every kernel applies to a decoded value: finite and within
    /// [lo, hi]. NaN fails both comparisons; +-Inf fails `is_finite` even with infinite bounds.
    /// Non-short-circuit `&` keeps it branch-free, so the loops that call it vectorize.
    #[inline(always)]
    pub fn admits(self, x: f32) -> bool {
        x.is_finite() & (x >= self.lo) & (x <= self.hi)
    }

    /// [`Self::admits`] for a value `x` and its normalized form `y`: an extreme valid value
    /// can overflow f32 once scaled, and the batch must hold only finite values.
    #[inline(always)]
    pub fn admits_normalized(self, x: f32, y: f32) -> bool {
        self.admits(x) & y.is_finite()
    }
}

/// Where each (variable, level) slab of a sample lies: (variable, level, value range).
fn slabs(layout: SampleLayout) -> impl Iterator<Item = (usize, usize, std::ops::Range<usize>)> {
    (0..layout.variables * layout.levels).map(move |slab| {
        let start = slab * layout.plane;
        (slab / layout.levels, slab % layout.levels, start..start + layout.plane)
    })
}

/// Check and normalize `src` (one decoded sample) into `dst` (its slot in the batch).
/// `dst` is fully written even when a fault is found; the caller discards the batch then.
pub fn verify_normalize_into(
    src: &[f32],
    dst: &mut [f32],
    layout: SampleLayout,
    affine: &Affine,
    ranges: &[ValidRange],
) -> Result<(), ValueFault> {
    debug_assert_eq!(src.len(), layout.len());
    debug_assert_eq!(dst.len(), layout.len());
    for (v, l, at) in slabs(layout) {
        let range = ranges[v];
        let slab = v * layout.levels + l;
        let (shift, scale) = (affine.shift[slab], affine.scale[slab]);
        let (s, d) = (&src[at.clone()], &mut dst[at]);
        let mut bad = false;
        for (out, &x) in d.iter_mut().zip(s) {
            let y = (x - shift) * scale;
            bad |= !range.admits_normalized(x, y);
            *out = y;
        }
        if bad {
            return Err(first_fault(s, range, v, l).unwrap_or_else(|| {
                let offset = d.iter().position(|y| !y.is_finite()).unwrap_or(0);
                ValueFault { variable: v, level: l, offset, value: s[offset], kind: FaultKind::Overflow }
            }));
        }
    }
    Ok(())
}

/// Check and normalize a decoded sample where it lies (the decompressor wrote it into its slot
/// of the batch): one read and one write per value, no second buffer. On a fault it returns
/// the (variable, level) slab at fault, whose values are then already overwritten; the caller
/// decodes the chunk again and names the fault with [`verify_normalize_into`] (the rare path).
pub fn normalize_in_place(
    buf: &mut [f32],
    layout: SampleLayout,
    affine: &Affine,
    ranges: &[ValidRange],
) -> Result<(), (usize, usize)> {
    debug_assert_eq!(buf.len(), layout.len());
    for (v, l, at) in slabs(layout) {
        let slab = v * layout.levels + l;
        if !slab_in_place(&mut buf[at], affine.shift[slab], affine.scale[slab], ranges[v]) {
            return Err((v, l));
        }
    }
    Ok(())
}

/// One slab in place; `false` when a value (or its normalized form) is invalid. Dispatches to
/// an AVX2 build of the same loop when the CPU has it (the default target is plain x86-64).
#[inline]
fn slab_in_place(d: &mut [f32], shift: f32, scale: f32, range: ValidRange) -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx2") {
            // SAFETY: the CPU supports AVX2 (checked just above).
            return unsafe { slab_in_place_avx2(d, shift, scale, range) };
        }
    }
    slab_in_place_generic(d, shift, scale, range)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn slab_in_place_avx2(d: &mut [f32], shift: f32, scale: f32, range: ValidRange) -> bool {
    slab_in_place_generic(d, shift, scale, range)
}

#[inline(always)]
fn slab_in_place_generic(d: &mut [f32], shift: f32, scale: f32, range: ValidRange) -> bool {
    // Fixed-width lanes with a lane-wise fault mask: the shape LLVM turns into packed compares.
    const LANES: usize = 16;
    let mut bad = [false; LANES];
    let mut chunks = d.chunks_exact_mut(LANES);
    for c in &mut chunks {
        for (b, y) in bad.iter_mut().zip(c.iter_mut()) {
            let x = *y;
            let z = (x - shift) * scale;
            *b |= !range.admits_normalized(x, z);
            *y = z;
        }
    }
    let mut tail_bad = false;
    for y in chunks.into_remainder() {
        let x = *y;
        let z = (x - shift) * scale;
        tail_bad |= !range.admits_normalized(x, z);
        *y = z;
    }
    !(tail_bad | bad.iter().any(|&b| b))
}

/// Unshuffle, check and normalize one decoded blosc block: `planes[k][i]` is byte `k` (little
/// endian) of value `first + i` of the sample; the values go to `dst` (`dst.len()` values,
/// the block's place in the batch). `false` when a value (or its normalized form) is invalid.
pub fn planes_normalize_into(
    first: usize,
    planes: [&[u8]; 4],
    dst: &mut [f32],
    layout: SampleLayout,
    affine: &Affine,
    ranges: &[ValidRange],
) -> bool {
    let mut ok = true;
    let mut done = 0;
    while done < dst.len() {
        // Split the block at (variable, level) slab boundaries: each piece has one affine.
        let at = first + done;
        let slab = at / layout.plane.max(1);
        let take = (layout.plane - at % layout.plane).min(dst.len() - done);
        let p = planes.map(|pl| &pl[done..done + take]);
        let range = ranges[slab / layout.levels];
        ok &= planes_slab(p, &mut dst[done..done + take], affine.shift[slab], affine.scale[slab], range);
        done += take;
    }
    ok
}

/// Unshuffle only: the raw values of one decoded blosc block (for scans and fault reports).
pub fn planes_unshuffle_into(planes: [&[u8]; 4], dst: &mut [f32]) {
    let n = dst.len();
    let (p0, p1, p2, p3) = (&planes[0][..n], &planes[1][..n], &planes[2][..n], &planes[3][..n]);
    let mut i = 0;
    #[cfg(target_arch = "x86_64")]
    while i + 16 <= n {
        // SAFETY: i + 16 <= n and every plane and `dst` hold n elements (sliced above).
        unsafe {
            let v = sse2::gather16([p0, p1, p2, p3], i);
            for (k, x) in v.into_iter().enumerate() {
                std::arch::x86_64::_mm_storeu_ps(dst.as_mut_ptr().add(i + 4 * k), x);
            }
        }
        i += 16;
    }
    for j in i..n {
        dst[j] = f32::from_bits(u32::from_le_bytes([p0[j], p1[j], p2[j], p3[j]]));
    }
}

/// One slab piece: byte planes in, checked and normalized values out. SSE2 (baseline x86-64):
/// four 16-byte loads and eight unpacks rebuild 16 values, then [`ValidRange::admits_normalized`]
/// four lanes at a time (|x| < inf, lo <= x <= hi, |z| < inf: the same comparisons, as packed
/// compares; `tests::sse_lanes_agree_with_the_scalar_check` holds them equal); the scalar loop
/// finishes the tail (and other targets).
fn planes_slab(p: [&[u8]; 4], d: &mut [f32], shift: f32, scale: f32, range: ValidRange) -> bool {
    let n = d.len();
    let (p0, p1, p2, p3) = (&p[0][..n], &p[1][..n], &p[2][..n], &p[3][..n]);
    #[cfg(not(target_arch = "x86_64"))]
    let (mut i, mut good) = (0, true);
    #[cfg(target_arch = "x86_64")]
    let (i, mut good) = {
        use std::arch::x86_64::*;
        let mut i = 0;
        // SAFETY: SSE2 is part of x86-64; every access is at i + 16 <= n on slices of length n.
        unsafe {
            let (vs, vk) = (_mm_set1_ps(shift), _mm_set1_ps(scale));
            let (lo, hi, inf) = (_mm_set1_ps(range.lo), _mm_set1_ps(range.hi), _mm_set1_ps(f32::INFINITY));
            let abs = _mm_castsi128_ps(_mm_set1_epi32(0x7fff_ffff));
            let mut ok_all = _mm_castsi128_ps(_mm_set1_epi32(-1));
            // The batch (tens of MB) does not stay in cache: non-temporal stores skip reading
            // each destination line before overwriting it. They need 16-byte alignment, which
            // every slot and block start has in practice (else: plain stores).
            let aligned = (d.as_ptr() as usize) % 16 == 0;
            while i + 16 <= n {
                let v = sse2::gather16([p0, p1, p2, p3], i);
                for (k, x) in v.into_iter().enumerate() {
                    let z = _mm_mul_ps(_mm_sub_ps(x, vs), vk);
                    let finite = _mm_and_ps(_mm_cmplt_ps(_mm_and_ps(x, abs), inf), _mm_cmplt_ps(_mm_and_ps(z, abs), inf));
                    let inside = _mm_and_ps(_mm_cmpge_ps(x, lo), _mm_cmple_ps(x, hi));
                    ok_all = _mm_and_ps(ok_all, _mm_and_ps(finite, inside));
                    if aligned {
                        _mm_stream_ps(d.as_mut_ptr().add(i + 4 * k), z);
                    } else {
                        _mm_storeu_ps(d.as_mut_ptr().add(i + 4 * k), z);
                    }
                }
                i += 16;
            }
            // Streaming stores are weakly ordered: fence before the values are handed on.
            _mm_sfence();
            (i, _mm_movemask_ps(ok_all) == 0xF)
        }
    };
    for j in i..n {
        let x = f32::from_bits(u32::from_le_bytes([p0[j], p1[j], p2[j], p3[j]]));
        let z = (x - shift) * scale;
        good &= range.admits_normalized(x, z);
        d[j] = z;
    }
    good
}

#[cfg(target_arch = "x86_64")]
mod sse2 {
    use std::arch::x86_64::*;

    /// Values i..i+16 rebuilt from four little-endian byte planes, as four 4-lane vectors.
    ///
    /// # Safety
    /// Every plane must hold at least i + 16 bytes.
    #[inline(always)]
    pub unsafe fn gather16(p: [&[u8]; 4], i: usize) -> [__m128; 4] {
        let a = _mm_loadu_si128(p[0].as_ptr().add(i).cast());
        let b = _mm_loadu_si128(p[1].as_ptr().add(i).cast());
        let c = _mm_loadu_si128(p[2].as_ptr().add(i).cast());
        let d = _mm_loadu_si128(p[3].as_ptr().add(i).cast());
        // bytes a0 b0 a1 b1 ... as 16-bit words, then words (a b)(c d) as 32-bit values.
        let (ab_lo, ab_hi) = (_mm_unpacklo_epi8(a, b), _mm_unpackhi_epi8(a, b));
        let (cd_lo, cd_hi) = (_mm_unpacklo_epi8(c, d), _mm_unpackhi_epi8(c, d));
        [
            _mm_castsi128_ps(_mm_unpacklo_epi16(ab_lo, cd_lo)),
            _mm_castsi128_ps(_mm_unpackhi_epi16(ab_lo, cd_lo)),
            _mm_castsi128_ps(_mm_unpacklo_epi16(ab_hi, cd_hi)),
            _mm_castsi128_ps(_mm_unpackhi_epi16(ab_hi, cd_hi)),
        ]
    }
}

/// Check `src` only (no output), for full-store scans.
pub fn verify_values(
    src: &[f32],
    layout: SampleLayout,
    ranges: &[ValidRange],
) -> Result<(), ValueFault> {
    for (v, l, at) in slabs(layout) {
        let (range, s) = (ranges[v], &src[at]);
        if s.iter().fold(false, |bad, &x| bad | !range.admits(x)) {
            return Err(first_fault(s, range, v, l).expect("a bad slab has a faulty value"));
        }
    }
    Ok(())
}

fn first_fault(slab: &[f32], range: ValidRange, variable: usize, level: usize) -> Option<ValueFault> {
    let offset = slab.iter().position(|&x| !range.admits(x))?;
    let value = slab[offset];
    let kind = if value.is_nan() {
        FaultKind::NaN
    } else if value.is_infinite() {
        FaultKind::Inf
    } else {
        FaultKind::OutOfRange
    };
    Some(ValueFault { variable, level, offset, value, kind })
}

#[cfg(test)]
mod tests {
    use super::*;

    const L: SampleLayout = SampleLayout { variables: 2, levels: 3, plane: 4 };

    fn sample() -> Vec<f32> {
        (0..L.len()).map(|i| i as f32).collect()
    }

    #[test]
    fn normalizes_each_slab_with_its_own_affine() {
        let src = sample();
        let affine = Affine::from_mean_std(&[1.0, 2.0, 3.0, 4.0, 5.0, 6.0], &[2.0; 6]);
        let mut dst = vec![f32::NAN; L.len()];
        verify_normalize_into(&src, &mut dst, L, &affine, &[ValidRange::ANY; 2]).unwrap();
        for (i, (&x, &y)) in src.iter().zip(&dst).enumerate() {
            let slab = i / L.plane;
            assert_eq!(y, (x - (slab as f32 + 1.0)) * 0.5, "element {i}");
        }
    }

    #[test]
    fn in_place_equals_the_two_buffer_pass_and_flags_the_bad_slab() {
        let layout = SampleLayout { variables: 2, levels: 3, plane: 37 }; // not a multiple of the lanes
        let src: Vec<f32> = (0..layout.len()).map(|i| (i as f32).sin() * 50.0).collect();
        let affine = Affine::from_mean_std(&[1.0, -2.0, 3.0, 0.5, 5.0, 6.0], &[2.0, 3.0, 0.25, 1.0, 7.0, 9.0]);
        let ranges = [ValidRange { lo: -60.0, hi: 60.0 }; 2];
        let mut two = vec![0.0; layout.len()];
        verify_normalize_into(&src, &mut two, layout, &affine, &ranges).unwrap();
        let mut one = src.clone();
        normalize_in_place(&mut one, layout, &affine, &ranges).unwrap();
        assert!(one.iter().zip(&two).all(|(a, b)| a.to_bits() == b.to_bits()));
        for (at, bad) in [(4 * 37 + 36, f32::NAN), (37 + 3, 61.0), (2, f32::NEG_INFINITY)] {
            let mut buf = src.clone();
            buf[at] = bad;
            let slab = at / 37;
            assert_eq!(normalize_in_place(&mut buf, layout, &affine, &ranges), Err((slab / 3, slab % 3)));
        }
    }

    #[test]
    fn byte_planes_unshuffle_normalize_like_the_two_buffer_pass() {
        let layout = SampleLayout { variables: 2, levels: 3, plane: 37 };
        let src: Vec<f32> = (0..layout.len()).map(|i| (i as f32).cos() * 40.0).collect();
        let affine = Affine::from_mean_std(&[1.0, -2.0, 3.0, 0.5, 5.0, 6.0], &[2.0, 3.0, 0.25, 1.0, 7.0, 9.0]);
        let ranges = [ValidRange { lo: -60.0, hi: 60.0 }; 2];
        let mut want = vec![0.0; layout.len()];
        verify_normalize_into(&src, &mut want, layout, &affine, &ranges).unwrap();
        // Blocks of 50 values (not slab-aligned), each shuffled into four byte planes.
        let mut got = vec![0.0; layout.len()];
        let mut raw = vec![0.0; layout.len()];
        for first in (0..layout.len()).step_by(50) {
            let vals = &src[first..(first + 50).min(src.len())];
            let planes: Vec<Vec<u8>> = (0..4).map(|k| vals.iter().map(|x| x.to_le_bytes()[k]).collect()).collect();
            let p = [&planes[0][..], &planes[1][..], &planes[2][..], &planes[3][..]];
            let end = first + vals.len();
            assert!(planes_normalize_into(first, p, &mut got[first..end], layout, &affine, &ranges));
            planes_unshuffle_into(p, &mut raw[first..end]);
        }
        assert!(got.iter().zip(&want).all(|(a, b)| a.to_bits() == b.to_bits()));
        assert_eq!(raw, src);
        let planes: Vec<Vec<u8>> = (0..4).map(|k| [f32::NAN, 1.0].iter().map(|x| x.to_le_bytes()[k]).collect()).collect();
        let p = [&planes[0][..], &planes[1][..], &planes[2][..], &planes[3][..]];
        assert!(!planes_normalize_into(0, p, &mut [0.0; 2], layout, &affine, &ranges));
    }

    #[test]
    fn zero_std_centres_without_scaling() {
        let affine = Affine::from_mean_std(&[1.0], &[0.0]);
        assert_eq!(affine.scale, vec![1.0]);
        assert_eq!(affine.shift, vec![1.0]);
        let stats = NormStats::from_mean_std(&[1.0, 2.0, 3.0, 4.0], &[0.0, f64::NAN, f64::INFINITY, 4.0]);
        assert_eq!(stats.scale, vec![1.0, 1.0, 1.0, 4.0]);
        assert_eq!(Affine::from(&stats).scale, vec![1.0, 1.0, 1.0, 0.25]);
    }

    #[test]
    fn sse_lanes_agree_with_the_scalar_check() {
        // One slab of 64 values (the SSE path takes 16 at a time), one special value at a time
        // in each lane position: the byte-plane kernel must refuse exactly what
        // `ValidRange::admits_normalized` refuses.
        let layout = SampleLayout { variables: 1, levels: 1, plane: 64 };
        let range = ValidRange { lo: -10.0, hi: 10.0 };
        let specials = [f32::NAN, f32::INFINITY, f32::NEG_INFINITY, -10.0, 10.0, -10.000001, 10.000001, 0.0, 5.0, -0.0];
        // std 1: the range decides; std 1e-38: values above ~3.4 overflow once scaled.
        for (k, (&bad, std)) in specials.iter().flat_map(|b| [(b, 1.0), (b, 1e-38)]).enumerate() {
            let affine = Affine::from_mean_std(&[0.0], &[std]);
            let at = (k * 7) % 64;
            let mut vals = vec![1e-39f32; 64];
            vals[at] = bad;
            let planes: Vec<Vec<u8>> = (0..4).map(|b| vals.iter().map(|x| x.to_le_bytes()[b]).collect()).collect();
            let p = [&planes[0][..], &planes[1][..], &planes[2][..], &planes[3][..]];
            let mut out = vec![0.0; 64];
            let got = planes_normalize_into(0, p, &mut out, layout, &affine, &[range]);
            let want = vals.iter().all(|&x| range.admits_normalized(x, (x - affine.shift[0]) * affine.scale[0]));
            assert_eq!(got, want, "value {bad} at {at}, std {std}");
            let mut two = vec![0.0; 64];
            assert_eq!(verify_normalize_into(&vals, &mut two, layout, &affine, &[range]).is_ok(), want, "value {bad}");
        }
    }

    #[test]
    fn nan_inf_and_range_faults_are_located_and_classified() {
        let cases = [
            (f32::NAN, ValidRange::ANY, FaultKind::NaN),
            (f32::INFINITY, ValidRange::ANY, FaultKind::Inf),
            (f32::NEG_INFINITY, ValidRange::ANY, FaultKind::Inf),
            (1e9, ValidRange { lo: -10.0, hi: 100.0 }, FaultKind::OutOfRange),
        ];
        for (bad, range, kind) in cases {
            let mut src: Vec<f32> = vec![0.5; L.len()];
            let idx = 4 * 4 + 2; // variable 1, level 1, offset 2
            src[idx] = bad;
            let mut dst = vec![0.0; L.len()];
            let ranges = [range; 2];
            let err = verify_normalize_into(&src, &mut dst, L, &Affine::identity(6), &ranges)
                .unwrap_err();
            assert_eq!((err.variable, err.level, err.offset, err.kind), (1, 1, 2, kind));
            let err2 = verify_values(&src, L, &ranges).unwrap_err();
            // Compare value bits: a derived PartialEq never holds when the value is NaN.
            let key = |f: &ValueFault| (f.variable, f.level, f.offset, f.kind, f.value.to_bits());
            assert_eq!(key(&err), key(&err2));
        }
    }

    #[test]
    fn a_value_that_overflows_when_normalized_is_refused() {
        let layout = SampleLayout { variables: 1, levels: 1, plane: 3 };
        let src = vec![1.0, 3.0e38, 2.0];
        let mut dst = vec![0.0; 3];
        let affine = Affine::from_mean_std(&[0.0], &[0.01]);
        let err = verify_normalize_into(&src, &mut dst, layout, &affine, &[ValidRange::ANY]).unwrap_err();
        assert_eq!((err.offset, err.kind), (1, FaultKind::Overflow));
    }

    #[test]
    fn range_bounds_are_inclusive() {
        let src = vec![-1.0, 1.0, 0.0, 0.5];
        let layout = SampleLayout { variables: 1, levels: 1, plane: 4 };
        let r = [ValidRange { lo: -1.0, hi: 1.0 }];
        assert!(verify_values(&src, layout, &r).is_ok());
        let r = [ValidRange { lo: -0.5, hi: 1.0 }];
        assert_eq!(verify_values(&src, layout, &r).unwrap_err().offset, 0);
    }
}
