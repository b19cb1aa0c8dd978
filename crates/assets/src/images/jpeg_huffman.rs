//! Lossless re-coding of a baseline JPEG with optimal Huffman tables, as `jpegtran -optimize` does:
//! the entropy-coded data is decoded to its Huffman symbols and extra bits (not to pixels; the DCT
//! coefficients are untouched), the symbols are counted, optimal length-limited tables are built
//! (ITU T.81 Annex K.2, as libjpeg's `jpeg_gen_optimal_table`), and the same symbols are written again
//! with them. Cameras, phones and most encoders without `-optimize` write the example tables of
//! Annex K, which this typically shrinks by 5–15 %.
//!
//! No crate does this in safe Rust (see ARCHITECTURE.md, Decisions). Scope, everything else is
//! `None`: 8-bit baseline or extended sequential Huffman frames (SOF0/SOF1) with one scan (all
//! components interleaved, or a single grey component); restart intervals kept; every segment before
//! and after the scan kept byte for byte (APPn metadata, ICC profiles, and trailers after EOI such as
//! a phone's motion-photo video), except the DHT segments, replaced by one with the new tables.
//! The caller checks that the result decodes to the same pixels.

/// The bytes of `jpeg` re-coded with optimal Huffman tables; `None` when it is not a JPEG this
/// handles or does not parse.
pub fn optimize(jpeg: &[u8]) -> Option<Vec<u8>> {
    let parsed = parse(jpeg)?;
    // Twice through the scan, so that memory stays the output's: counting, then writing.
    let mut freq = vec![[0u64; 256]; 8];
    let end = decode_scan(jpeg, &parsed, &mut |t| {
        if let Some(t) = t {
            freq[usize::from(t.table)][usize::from(t.symbol)] += 1;
        }
    })?;
    encode(jpeg, &parsed, &freq, end)
}

#[derive(Clone, Copy, Default)]
struct Component {
    id: u8,
    h: usize,
    v: usize,
}

/// A decoding Huffman table: for each code length, the first code and the index of its first symbol.
#[derive(Clone, Default)]
struct Table {
    /// Codes of length `l` are `first[l] .. first[l] + count[l]`.
    first: [u32; 17],
    count: [u32; 17],
    /// Index into `symbols` of the first code of length `l`.
    offset: [usize; 17],
    symbols: Vec<u8>,
}

impl Table {
    fn new(counts: &[u8; 16], symbols: &[u8]) -> Option<Table> {
        let mut t = Table {
            symbols: symbols.to_vec(),
            ..Default::default()
        };
        let mut code = 0u32;
        let mut at = 0usize;
        for l in 1..=16 {
            let n = u32::from(counts[l - 1]);
            t.first[l] = code;
            t.count[l] = n;
            t.offset[l] = at;
            code += n;
            at += n as usize;
            if code > (1 << l) {
                return None;
            }
            code <<= 1;
        }
        (at == symbols.len()).then_some(t)
    }
}

/// What the segments before the scan say.
struct Parsed {
    width: usize,
    height: usize,
    components: Vec<Component>,
    restart_interval: usize,
    /// Huffman tables in force at the scan: DC 0–3, then AC 0–3.
    tables: Vec<Option<Table>>,
    /// Offset of the SOS marker, of the entropy-coded data, and the scan's (component index, DC
    /// table, AC table).
    sos: usize,
    data: usize,
    scan: Vec<(usize, usize, usize)>,
    /// Byte ranges of the DHT segments (marker included) before the scan.
    dht: Vec<std::ops::Range<usize>>,
}

fn u16_at(b: &[u8], at: usize) -> Option<usize> {
    Some(usize::from(u16::from_be_bytes([
        *b.get(at)?,
        *b.get(at + 1)?,
    ])))
}

fn parse(b: &[u8]) -> Option<Parsed> {
    if !b.starts_with(&[0xFF, 0xD8]) {
        return None;
    }
    let mut at = 2;
    let mut frame: Option<(usize, usize, Vec<Component>)> = None;
    let mut tables: Vec<Option<Table>> = vec![None; 8];
    let mut restart_interval = 0;
    let mut dht = Vec::new();
    loop {
        if *b.get(at)? != 0xFF {
            return None;
        }
        let start = at;
        while *b.get(at)? == 0xFF {
            at += 1;
        }
        let marker = *b.get(at)?;
        at += 1;
        if matches!(marker, 0xD8 | 0xD9 | 0x01 | 0xD0..=0xD7) {
            // No segment before a scan is one of these.
            return None;
        }
        let len = u16_at(b, at)?;
        if len < 2 {
            return None;
        }
        let seg = b.get(at + 2..at + len)?;
        match marker {
            0xC0 | 0xC1 => {
                if *seg.first()? != 8 || frame.is_some() {
                    return None;
                }
                let height = u16_at(seg, 1)?;
                let width = u16_at(seg, 3)?;
                let n = usize::from(*seg.get(5)?);
                if width == 0 || height == 0 || !(1..=4).contains(&n) {
                    return None;
                }
                let mut components = Vec::with_capacity(n);
                for k in 0..n {
                    let c = seg.get(6 + 3 * k..9 + 3 * k)?;
                    let (h, v) = (usize::from(c[1] >> 4), usize::from(c[1] & 15));
                    if !(1..=4).contains(&h) || !(1..=4).contains(&v) {
                        return None;
                    }
                    components.push(Component { id: c[0], h, v });
                }
                frame = Some((width, height, components));
            }
            // Progressive, lossless, arithmetic or hierarchical frames.
            0xC2 | 0xC3 | 0xC5..=0xC7 | 0xC9..=0xCB | 0xCD..=0xCF => return None,
            0xC4 => {
                let mut p = 0;
                while p < seg.len() {
                    let tc_th = *seg.get(p)?;
                    let (class, id) = (usize::from(tc_th >> 4), usize::from(tc_th & 15));
                    if class > 1 || id > 3 {
                        return None;
                    }
                    let counts: [u8; 16] = seg.get(p + 1..p + 17)?.try_into().ok()?;
                    let n: usize = counts.iter().map(|&c| usize::from(c)).sum();
                    let symbols = seg.get(p + 17..p + 17 + n)?;
                    tables[class * 4 + id] = Some(Table::new(&counts, symbols)?);
                    p += 17 + n;
                }
                dht.push(start..at + len);
            }
            0xDD => restart_interval = u16_at(seg, 0)?,
            0xDA => {
                let (width, height, components) = frame?;
                let ns = usize::from(*seg.first()?);
                if ns == 0
                    || (ns > 1 && ns != components.len())
                    || (ns == 1 && components.len() != 1)
                {
                    // A multi-scan file (one component per scan, or a subset): not handled.
                    return None;
                }
                let mut scan = Vec::with_capacity(ns);
                for k in 0..ns {
                    let cs = *seg.get(1 + 2 * k)?;
                    let t = *seg.get(2 + 2 * k)?;
                    let ci = components.iter().position(|c| c.id == cs)?;
                    let (td, ta) = (usize::from(t >> 4), usize::from(t & 15));
                    if td > 3 || ta > 3 || tables[td].is_none() || tables[4 + ta].is_none() {
                        return None;
                    }
                    scan.push((ci, td, 4 + ta));
                }
                let rest = seg.get(1 + 2 * ns..1 + 2 * ns + 3)?;
                if rest != [0, 63, 0] {
                    return None;
                }
                return Some(Parsed {
                    width,
                    height,
                    components,
                    restart_interval,
                    tables,
                    sos: start,
                    data: at + len,
                    scan,
                    dht,
                });
            }
            _ => {}
        }
        at += len;
    }
}

/// One Huffman-coded symbol and the extra bits after it; `table` 0–3 DC, 4–7 AC.
#[derive(Clone, Copy)]
struct Token {
    table: u8,
    symbol: u8,
    nbits: u8,
    bits: u16,
}

struct BitReader<'a> {
    b: &'a [u8],
    at: usize,
    acc: u32,
    n: u32,
}

impl BitReader<'_> {
    /// The next byte of entropy-coded data (0xFF00 read as 0xFF); `None` at a marker or the end.
    fn byte(&mut self) -> Option<u8> {
        let x = *self.b.get(self.at)?;
        if x == 0xFF {
            if *self.b.get(self.at + 1)? != 0 {
                return None;
            }
            self.at += 2;
        } else {
            self.at += 1;
        }
        Some(x)
    }

    fn bit(&mut self) -> Option<u32> {
        if self.n == 0 {
            self.acc = u32::from(self.byte()?);
            self.n = 8;
        }
        self.n -= 1;
        Some((self.acc >> self.n) & 1)
    }

    fn bits(&mut self, n: u8) -> Option<u16> {
        let mut v = 0u32;
        for _ in 0..n {
            v = (v << 1) | self.bit()?;
        }
        Some(v as u16)
    }

    fn symbol(&mut self, t: &Table) -> Option<u8> {
        let mut code = 0u32;
        for l in 1..=16 {
            code = (code << 1) | self.bit()?;
            if code >= t.first[l] && code < t.first[l] + t.count[l] {
                return t
                    .symbols
                    .get(t.offset[l] + (code - t.first[l]) as usize)
                    .copied();
            }
        }
        None
    }

    /// At a restart: the rest of the byte is padding, then `FF Dn`.
    fn restart(&mut self) -> Option<()> {
        self.n = 0;
        let (a, m) = (*self.b.get(self.at)?, *self.b.get(self.at + 1)?);
        if a != 0xFF || !(0xD0..=0xD7).contains(&m) {
            return None;
        }
        self.at += 2;
        Some(())
    }
}

/// Decodes the scan's symbols in order into `emit` (`None` where a restart marker is); returns where
/// the entropy-coded data (and its restart markers) ends: the next marker.
fn decode_scan(b: &[u8], p: &Parsed, emit: &mut dyn FnMut(Option<Token>)) -> Option<usize> {
    let hmax = p.components.iter().map(|c| c.h).max()?;
    let vmax = p.components.iter().map(|c| c.v).max()?;
    // Blocks per MCU for each scan component, and the MCU count.
    let (per_mcu, mcus): (Vec<usize>, usize) = if p.scan.len() == 1 {
        let c = p.components[p.scan[0].0];
        let w = (p.width * c.h).div_ceil(hmax).div_ceil(8);
        let h = (p.height * c.v).div_ceil(vmax).div_ceil(8);
        (vec![1], w * h)
    } else {
        let w = p.width.div_ceil(8 * hmax);
        let h = p.height.div_ceil(8 * vmax);
        (
            p.scan
                .iter()
                .map(|&(ci, _, _)| p.components[ci].h * p.components[ci].v)
                .collect(),
            w * h,
        )
    };
    let mut r = BitReader {
        b,
        at: p.data,
        acc: 0,
        n: 0,
    };
    let table = |i: usize| p.tables[i].as_ref();
    for m in 0..mcus {
        if p.restart_interval > 0 && m > 0 && m % p.restart_interval == 0 {
            r.restart()?;
            emit(None);
        }
        for (k, &(_, td, ta)) in p.scan.iter().enumerate() {
            for _ in 0..per_mcu[k] {
                let dc = table(td)?;
                let s = r.symbol(dc)?;
                if s > 11 {
                    return None;
                }
                emit(Some(Token {
                    table: td as u8,
                    symbol: s,
                    nbits: s,
                    bits: r.bits(s)?,
                }));
                let ac = table(ta)?;
                let mut i = 1;
                while i < 64 {
                    let rs = r.symbol(ac)?;
                    let (run, size) = (usize::from(rs >> 4), rs & 15);
                    if size == 0 && run != 15 {
                        emit(Some(Token {
                            table: ta as u8,
                            symbol: rs,
                            nbits: 0,
                            bits: 0,
                        }));
                        break;
                    }
                    // `run` zeros and one coefficient (ZRL: 16 zeros).
                    i += run + 1;
                    if i > 64 || size > 10 {
                        return None;
                    }
                    emit(Some(Token {
                        table: ta as u8,
                        symbol: rs,
                        nbits: size,
                        bits: r.bits(size)?,
                    }));
                }
            }
        }
    }
    // The rest of the last byte is padding; then the next marker.
    let mut end = r.at;
    while b.get(end) == Some(&0xFF) && b.get(end + 1) == Some(&0xFF) {
        end += 1;
    }
    if b.get(end) != Some(&0xFF)
        || b.get(end + 1)
            .is_none_or(|&m| m == 0 || (0xD0..=0xD7).contains(&m))
    {
        return None;
    }
    Some(end)
}

/// Optimal code lengths (at most 16 bits, none all ones) for symbol frequencies, as the `BITS` and
/// `HUFFVAL` lists of a DHT (Annex K.2, with libjpeg's reserved code point).
fn optimal_table(freq: &[u64; 256]) -> Option<([u8; 16], Vec<u8>)> {
    let mut f = [0u64; 257];
    f[..256].copy_from_slice(freq);
    f[256] = 1; // the reserved all-ones code
    let mut codesize = [0usize; 257];
    let mut others = [usize::MAX; 257];
    loop {
        // The two least frequent (ties: the larger index first for c1, as libjpeg).
        let mut c1 = usize::MAX;
        let mut v = u64::MAX;
        for (i, &x) in f.iter().enumerate() {
            if x != 0 && x <= v {
                v = x;
                c1 = i;
            }
        }
        let mut c2 = usize::MAX;
        v = u64::MAX;
        for (i, &x) in f.iter().enumerate() {
            if x != 0 && x <= v && i != c1 {
                v = x;
                c2 = i;
            }
        }
        if c2 == usize::MAX {
            break;
        }
        f[c1] += f[c2];
        f[c2] = 0;
        codesize[c1] += 1;
        let mut c = c1;
        while others[c] != usize::MAX {
            c = others[c];
            codesize[c] += 1;
        }
        others[c] = c2;
        codesize[c2] += 1;
        let mut c = c2;
        while others[c] != usize::MAX {
            c = others[c];
            codesize[c] += 1;
        }
    }
    let mut bits = [0usize; 33];
    for &s in codesize.iter().filter(|&&s| s > 0) {
        // Deeper than 32 takes frequencies no JPEG has (libjpeg gives up too).
        *bits.get_mut(s)? += 1;
    }
    // Limit to 16 bits (Annex K.3's Adjust_BITS).
    let mut i = 32;
    while i > 16 {
        while bits[i] > 0 {
            let mut j = i - 2;
            while bits[j] == 0 {
                j -= 1;
            }
            bits[i] -= 2;
            bits[i - 1] += 1;
            bits[j + 1] += 2;
            bits[j] -= 1;
        }
        i -= 1;
    }
    // Remove the reserved code point from the longest length.
    let mut i = 16;
    while bits[i] == 0 {
        i -= 1;
    }
    bits[i] -= 1;
    let mut counts = [0u8; 16];
    for l in 1..=16 {
        counts[l - 1] = bits[l] as u8;
    }
    // Symbols by code length, then by value.
    let mut symbols = Vec::new();
    for l in 1..=32 {
        for (s, &cs) in codesize.iter().enumerate().take(256) {
            if cs == l {
                symbols.push(s as u8);
            }
        }
    }
    Some((counts, symbols))
}

/// The canonical codes of a table: (code, length) per symbol.
fn codes(counts: &[u8; 16], symbols: &[u8]) -> [(u32, u8); 256] {
    let mut out = [(0u32, 0u8); 256];
    let mut code = 0u32;
    let mut at = 0;
    for l in 1..=16u8 {
        for _ in 0..counts[usize::from(l) - 1] {
            out[usize::from(symbols[at])] = (code, l);
            code += 1;
            at += 1;
        }
        code <<= 1;
    }
    out
}

struct BitWriter {
    out: Vec<u8>,
    acc: u64,
    n: u32,
}

impl BitWriter {
    fn put(&mut self, value: u32, len: u8) {
        self.acc = (self.acc << len) | u64::from(value & ((1u32 << len) - 1));
        self.n += u32::from(len);
        while self.n >= 8 {
            self.n -= 8;
            let byte = (self.acc >> self.n) as u8;
            self.out.push(byte);
            if byte == 0xFF {
                self.out.push(0);
            }
        }
    }

    /// Pads the last byte with ones.
    fn flush(&mut self) {
        if self.n > 0 {
            let pad = 8 - self.n as u8;
            self.put((1 << pad) - 1, pad);
        }
    }
}

fn encode(b: &[u8], p: &Parsed, freq: &[[u64; 256]], end: usize) -> Option<Vec<u8>> {
    let used: Vec<usize> = (0..8).filter(|&i| freq[i].iter().any(|&f| f > 0)).collect();
    let mut dht = vec![0xFF, 0xC4, 0, 0];
    let mut code_of = vec![[(0u32, 0u8); 256]; 8];
    for &i in &used {
        let (counts, symbols) = optimal_table(&freq[i])?;
        dht.push(((i / 4) << 4 | (i % 4)) as u8);
        dht.extend_from_slice(&counts);
        dht.extend_from_slice(&symbols);
        code_of[i] = codes(&counts, &symbols);
    }
    let len = u16::try_from(dht.len() - 2).ok()?;
    dht[2..4].copy_from_slice(&len.to_be_bytes());

    let mut out = Vec::with_capacity(b.len());
    // Segments before the scan, without their DHTs; the new DHT just before the SOS.
    let mut at = 0;
    for r in &p.dht {
        out.extend_from_slice(&b[at..r.start]);
        at = r.end;
    }
    out.extend_from_slice(&b[at..p.sos]);
    out.extend_from_slice(&dht);
    out.extend_from_slice(&b[p.sos..p.data]);
    let mut w = BitWriter { out, acc: 0, n: 0 };
    let mut rst = 0u8;
    let mut missing = false;
    decode_scan(b, p, &mut |t| match t {
        Some(t) => {
            let (code, l) = code_of[usize::from(t.table)][usize::from(t.symbol)];
            if l == 0 {
                missing = true;
                return;
            }
            w.put(code, l);
            if t.nbits > 0 {
                w.put(u32::from(t.bits), t.nbits);
            }
        }
        None => {
            w.flush();
            w.out.extend_from_slice(&[0xFF, 0xD0 + rst]);
            rst = (rst + 1) % 8;
        }
    })?;
    if missing {
        return None;
    }
    w.flush();
    let mut out = w.out;
    // EOI and whatever follows it, as they were.
    out.extend_from_slice(&b[end..]);
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A photo-like test image: gradients with texture.
    fn pixels(w: usize, h: usize, channels: usize) -> Vec<u8> {
        let mut seed = 1u32;
        let mut out = Vec::with_capacity(w * h * channels);
        for y in 0..h {
            for x in 0..w {
                for c in 0..channels {
                    seed = seed.wrapping_mul(1_103_515_245).wrapping_add(12_345);
                    let noise = (seed >> 28) as usize;
                    out.push(((x * 255 / w + y * 97 / h + c * 60 + noise) % 256) as u8);
                }
            }
        }
        out
    }

    /// A JPEG with the example tables of Annex K (what cameras write), through jpeg-encoder.
    fn standard_jpeg(
        w: u16,
        h: u16,
        ct: jpeg_encoder::ColorType,
        sampling: jpeg_encoder::SamplingFactor,
        restart: u16,
    ) -> Vec<u8> {
        let channels = match ct {
            jpeg_encoder::ColorType::Luma => 1,
            _ => 3,
        };
        let px = pixels(usize::from(w), usize::from(h), channels);
        let mut out = Vec::new();
        let mut enc = jpeg_encoder::Encoder::new(&mut out, 85);
        enc.set_sampling_factor(sampling);
        if restart > 0 {
            enc.set_restart_interval(restart);
        }
        enc.encode(&px, w, h, ct).unwrap();
        out
    }

    fn decoded(jpeg: &[u8]) -> Vec<u8> {
        let mut d = jpeg_decoder::Decoder::new(std::io::Cursor::new(jpeg));
        d.decode().unwrap()
    }

    #[test]
    fn recoding_keeps_every_pixel_and_shrinks_example_tables() {
        use jpeg_encoder::{ColorType as C, SamplingFactor as S};
        for (w, h, ct, s, restart) in [
            (257, 131, C::Rgb, S::F_2_2, 0),
            (257, 131, C::Rgb, S::F_1_1, 0),
            (200, 100, C::Rgb, S::F_2_1, 3),
            (64, 64, C::Luma, S::F_1_1, 0),
            (97, 33, C::Luma, S::F_1_1, 2),
        ] {
            let src = standard_jpeg(w, h, ct, s, restart);
            let out = optimize(&src).unwrap_or_else(|| panic!("{w}x{h} {s:?} rst {restart}"));
            assert_eq!(decoded(&out), decoded(&src), "{w}x{h} {s:?} rst {restart}");
            assert!(
                out.len() < src.len(),
                "{w}x{h} {s:?}: {} -> {}",
                src.len(),
                out.len()
            );
            // Idempotent: the optimal tables are optimal.
            let again = optimize(&out).unwrap();
            assert!(again.len() <= out.len());
            assert_eq!(decoded(&again), decoded(&src));
        }
    }

    #[test]
    fn segments_around_the_scan_are_kept() {
        let src = standard_jpeg(
            80,
            40,
            jpeg_encoder::ColorType::Rgb,
            jpeg_encoder::SamplingFactor::F_2_2,
            0,
        );
        // A COM segment before the frame, and a trailer after EOI (a motion photo's video, say).
        let mut with = src[..2].to_vec();
        with.extend_from_slice(b"\xFF\xFE\x00\x07hello");
        with.extend_from_slice(&src[2..]);
        with.extend_from_slice(b"TRAILER");
        let out = optimize(&with).unwrap();
        assert!(out.windows(9).any(|w| w == b"\xFF\xFE\x00\x07hello"));
        assert!(out.ends_with(b"\xFF\xD9TRAILER"));
        assert_eq!(decoded(&out), decoded(&src));
    }

    #[test]
    fn what_it_does_not_handle_is_none_not_a_panic() {
        let src = standard_jpeg(
            64,
            48,
            jpeg_encoder::ColorType::Rgb,
            jpeg_encoder::SamplingFactor::F_2_2,
            0,
        );
        // Progressive.
        let mut prog = Vec::new();
        let mut enc = jpeg_encoder::Encoder::new(&mut prog, 85);
        enc.set_progressive(true);
        enc.encode(&pixels(64, 48, 3), 64, 48, jpeg_encoder::ColorType::Rgb)
            .unwrap();
        assert!(optimize(&prog).is_none());
        // Cut anywhere, or bytes flipped: never a panic; a result, if any, is checked by the caller.
        for cut in (0..src.len()).step_by(7) {
            let _ = optimize(&src[..cut]);
        }
        for i in (2..src.len()).step_by(5) {
            let mut b = src.clone();
            b[i] ^= 0x5A;
            let _ = optimize(&b);
        }
        assert!(optimize(b"not a jpeg").is_none());
        // Random damage (a fixed seed): never a panic, and whatever comes back re-codes to itself
        // (the same symbols give the same tables). Pixel equality is for intact files (above).
        let rounds: usize = std::env::var("JPEG_FUZZ_ROUNDS")
            .ok()
            .and_then(|r| r.parse().ok())
            .unwrap_or(300);
        let mut seed = 99u32;
        let mut next = || {
            seed = seed.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
            seed as usize
        };
        let restart = standard_jpeg(
            40,
            24,
            jpeg_encoder::ColorType::Rgb,
            jpeg_encoder::SamplingFactor::F_2_1,
            2,
        );
        for r in 0..rounds {
            let mut b = if r % 2 == 0 {
                src.clone()
            } else {
                restart.clone()
            };
            for _ in 0..1 + next() % 3 {
                let i = 2 + next() % (b.len() - 2);
                b[i] = next() as u8;
            }
            if let Some(out) = optimize(&b) {
                assert_eq!(optimize(&out).as_deref(), Some(&out[..]), "round {r}");
                // libjpeg decodes these as it decodes the damaged input; jpeg-decoder's error
                // recovery sometimes does not, so the build's pixel check keeps the original then.
            }
        }
    }
}
