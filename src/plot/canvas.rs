//! An RGB raster with the few drawing operations the plots need, and its
//! PNG encoding. Everything clips at the edges, so callers can draw marks
//! that fall partly outside the image without checking.

use std::collections::HashMap;

use font8x8::legacy::BASIC_LEGACY;

/// Width and height of one character of the built-in 8x8 bitmap font.
pub const GLYPH_PX: u32 = 8;

/// An 8-bit RGB colour.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Rgb(pub u8, pub u8, pub u8);

impl Rgb {
    /// Page background.
    pub const BLACK: Rgb = Rgb(0, 0, 0);
    /// Text and marks on dark backgrounds.
    pub const WHITE: Rgb = Rgb(255, 255, 255);
    /// Grid lines and axis ticks.
    pub const GREY: Rgb = Rgb(110, 110, 110);
    /// Panel backgrounds, a shade off black so panels stand apart.
    pub const PANEL: Rgb = Rgb(24, 24, 28);
}

/// Distinct colours for call classes, in label order (background skipped),
/// chosen to stay apart on a dark background and for common colour-vision
/// deficiencies (Okabe-Ito).
const CLASS_COLOURS: [Rgb; 7] = [
    Rgb(230, 159, 0),
    Rgb(86, 180, 233),
    Rgb(0, 158, 115),
    Rgb(240, 228, 66),
    Rgb(213, 94, 0),
    Rgb(204, 121, 167),
    Rgb(0, 114, 178),
];

/// Colour of the `i`-th call class; cycles after seven classes.
pub fn class_colour(i: usize) -> Rgb {
    CLASS_COLOURS[i % CLASS_COLOURS.len()]
}

/// Anchors of the "magma" colour map at 0, 1/8, ..., 1 (matplotlib's,
/// sampled): dark for silence, bright for energy, perceptually uniform.
const MAGMA: [[f32; 3]; 9] = [
    [0.0, 0.0, 4.0],
    [28.0, 16.0, 68.0],
    [79.0, 18.0, 123.0],
    [129.0, 37.0, 129.0],
    [181.0, 54.0, 122.0],
    [229.0, 80.0, 100.0],
    [251.0, 135.0, 97.0],
    [254.0, 194.0, 135.0],
    [252.0, 253.0, 191.0],
];

/// Shades of the colour map: fewer than a PNG palette holds, so pictures
/// can be stored with one byte per pixel.
const MAGMA_SHADES: f32 = 200.0;

/// Maps `v` in [0, 1] (clamped; NaN reads as 0) to one of 201 shades of the
/// magma colour map.
pub fn magma(v: f32) -> Rgb {
    let v = if v.is_nan() { 0.0 } else { v.clamp(0.0, 1.0) };
    let v = (v * MAGMA_SHADES).round() / MAGMA_SHADES;
    let pos = v * (MAGMA.len() - 1) as f32;
    let i = (pos as usize).min(MAGMA.len() - 2);
    let t = pos - i as f32;
    let mix = |c: usize| (MAGMA[i][c] + (MAGMA[i + 1][c] - MAGMA[i][c]) * t).round() as u8;
    Rgb(mix(0), mix(1), mix(2))
}

/// An RGB image, row-major, top row first.
#[derive(Clone, Debug)]
pub struct Canvas {
    width: u32,
    height: u32,
    pixels: Vec<u8>,
}

impl Canvas {
    /// A `width` x `height` image filled with `background`.
    pub fn new(width: u32, height: u32, background: Rgb) -> Self {
        let mut pixels = Vec::with_capacity(width as usize * height as usize * 3);
        for _ in 0..width as usize * height as usize {
            pixels.extend_from_slice(&[background.0, background.1, background.2]);
        }
        Self {
            width,
            height,
            pixels,
        }
    }

    /// Width in pixels.
    pub fn width(&self) -> u32 {
        self.width
    }

    /// Height in pixels.
    pub fn height(&self) -> u32 {
        self.height
    }

    /// The colour at (`x`, `y`), or `None` outside the image.
    pub fn get(&self, x: u32, y: u32) -> Option<Rgb> {
        (x < self.width && y < self.height).then(|| {
            let i = (y as usize * self.width as usize + x as usize) * 3;
            Rgb(self.pixels[i], self.pixels[i + 1], self.pixels[i + 2])
        })
    }

    /// Sets one pixel; outside the image, nothing happens.
    pub fn set(&mut self, x: i64, y: i64, c: Rgb) {
        if x < 0 || y < 0 || x >= i64::from(self.width) || y >= i64::from(self.height) {
            return;
        }
        let i = (y as usize * self.width as usize + x as usize) * 3;
        self.pixels[i..i + 3].copy_from_slice(&[c.0, c.1, c.2]);
    }

    /// Fills the rectangle of `w` x `h` pixels whose top-left is (`x`, `y`),
    /// clipped to the image.
    pub fn fill_rect(&mut self, x: i64, y: i64, w: i64, h: i64, c: Rgb) {
        let x0 = x.max(0);
        let y0 = y.max(0);
        let x1 = (x + w).min(i64::from(self.width));
        let y1 = (y + h).min(i64::from(self.height));
        for yy in y0..y1 {
            for xx in x0..x1 {
                self.set(xx, yy, c);
            }
        }
    }

    /// A dotted horizontal line from `x0` (inclusive) to `x1` (exclusive):
    /// reference lines that must not hide what lies under them.
    pub fn dotted_hline(&mut self, x0: i64, x1: i64, y: i64, c: Rgb) {
        for x in (x0..x1).step_by(3) {
            self.set(x, y, c);
        }
    }

    /// A dashed vertical line from `y0` (inclusive) to `y1` (exclusive).
    pub fn dashed_vline(&mut self, x: i64, y0: i64, y1: i64, c: Rgb) {
        for y in y0..y1 {
            if (y - y0) % 6 < 4 {
                self.set(x, y, c);
            }
        }
    }

    /// Writes `text` with its top-left at (`x`, `y`) in the 8x8 bitmap font;
    /// characters outside ASCII are drawn as `?`. Returns the width drawn.
    pub fn text(&mut self, x: i64, y: i64, text: &str, c: Rgb) -> i64 {
        let mut cx = x;
        for ch in text.chars() {
            let glyph = BASIC_LEGACY[if ch.is_ascii() {
                ch as usize
            } else {
                '?' as usize
            }];
            for (row, bits) in glyph.iter().enumerate() {
                for col in 0..8 {
                    // The font stores the leftmost pixel in the lowest bit.
                    if bits & (1 << col) != 0 {
                        self.set(cx + col, y + row as i64, c);
                    }
                }
            }
            cx += i64::from(GLYPH_PX);
        }
        cx - x
    }

    /// Writes `text` ending 6 px left of `x`: a label on the y axis of a
    /// plot whose left edge is `x`, clear of the 4 px ticks.
    pub fn text_left_of(&mut self, x: i64, y: i64, text: &str, c: Rgb) {
        self.text(x - 6 - Canvas::text_width(text), y, text, c);
    }

    /// Width in pixels that [`Canvas::text`] would draw.
    pub fn text_width(text: &str) -> i64 {
        text.chars().count() as i64 * i64::from(GLYPH_PX)
    }

    /// Encodes the image as PNG: indexed (one byte per pixel, about a
    /// third of the size) when it has at most 256 colours, as the plots
    /// do, else 8-bit RGB.
    pub fn encode_png(&self) -> Result<Vec<u8>, png::EncodingError> {
        let mut out = Vec::new();
        let mut encoder = png::Encoder::new(&mut out, self.width, self.height);
        encoder.set_depth(png::BitDepth::Eight);
        match self.palette() {
            Some((palette, indices)) => {
                encoder.set_color(png::ColorType::Indexed);
                encoder.set_palette(palette);
                let mut writer = encoder.write_header()?;
                writer.write_image_data(&indices)?;
                writer.finish()?;
            }
            None => {
                encoder.set_color(png::ColorType::Rgb);
                let mut writer = encoder.write_header()?;
                writer.write_image_data(&self.pixels)?;
                writer.finish()?;
            }
        }
        Ok(out)
    }

    /// The image's colours (RGB triples) and each pixel's index among
    /// them; `None` past 256 colours.
    fn palette(&self) -> Option<(Vec<u8>, Vec<u8>)> {
        let mut colours: HashMap<[u8; 3], u8> = HashMap::new();
        let mut palette = Vec::new();
        let mut indices = Vec::with_capacity(self.pixels.len() / 3);
        for px in self.pixels.chunks_exact(3) {
            let key = [px[0], px[1], px[2]];
            let index = match colours.get(&key) {
                Some(&i) => i,
                None => {
                    let i = u8::try_from(colours.len()).ok()?;
                    colours.insert(key, i);
                    palette.extend_from_slice(&key);
                    i
                }
            };
            indices.push(index);
        }
        Some((palette, indices))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn drawing_clips_at_the_edges() {
        let mut c = Canvas::new(4, 3, Rgb::BLACK);
        c.fill_rect(-2, 1, 10, 10, Rgb::WHITE);
        c.set(-1, 0, Rgb::GREY);
        c.set(4, 0, Rgb::GREY);
        assert_eq!(c.get(0, 0), Some(Rgb::BLACK));
        assert_eq!(c.get(3, 2), Some(Rgb::WHITE));
        assert_eq!(c.get(4, 2), None);
    }

    #[test]
    fn text_draws_glyph_pixels_left_to_right() {
        let mut c = Canvas::new(16, 8, Rgb::BLACK);
        assert_eq!(c.text(0, 0, "|", Rgb::WHITE), 8);
        // '|' is a vertical bar: some pixel of the glyph is lit, nothing of
        // the second cell is.
        let lit = (0..8).flat_map(|x| (0..8).map(move |y| (x, y)));
        assert!(lit.clone().any(|(x, y)| c.get(x, y) == Some(Rgb::WHITE)));
        assert!(
            lit.map(|(x, y)| (x + 8, y))
                .all(|(x, y)| c.get(x, y) == Some(Rgb::BLACK))
        );
    }

    #[test]
    fn magma_runs_dark_to_bright() {
        let luma = |c: Rgb| u32::from(c.0) + u32::from(c.1) + u32::from(c.2);
        assert_eq!(magma(0.0), Rgb(0, 0, 4));
        assert_eq!(magma(1.0), Rgb(252, 253, 191));
        assert_eq!(magma(f32::NAN), magma(0.0));
        assert!(luma(magma(0.25)) < luma(magma(0.75)));
    }

    /// Decodes a PNG to RGB, palette expanded: (width, height, pixels).
    fn decode(bytes: Vec<u8>) -> (u32, u32, Vec<u8>) {
        let mut decoder = png::Decoder::new(std::io::Cursor::new(bytes));
        decoder.set_transformations(png::Transformations::EXPAND);
        let mut reader = decoder.read_info().expect("decodes");
        let mut buf = vec![0; reader.output_buffer_size().expect("size")];
        let info = reader.next_frame(&mut buf).expect("frame");
        (info.width, info.height, buf)
    }

    #[test]
    fn few_colours_are_indexed_and_round_trip() {
        let mut c = Canvas::new(5, 2, Rgb::PANEL);
        c.set(4, 1, Rgb(1, 2, 3));
        assert_eq!(c.palette().map(|(p, _)| p.len()), Some(6));
        let (w, h, rgb) = decode(c.encode_png().expect("encodes"));
        assert_eq!((w, h), (5, 2));
        assert_eq!(&rgb[27..30], &[1, 2, 3]);
        assert_eq!(&rgb[..3], &[24, 24, 28]);
    }

    #[test]
    fn many_colours_fall_back_to_rgb() {
        let mut c = Canvas::new(20, 20, Rgb::BLACK);
        for i in 0..400 {
            c.set(i % 20, i / 20, Rgb((i % 256) as u8, (i / 256) as u8, 7));
        }
        assert!(c.palette().is_none());
        let (_, _, rgb) = decode(c.encode_png().expect("encodes"));
        assert_eq!(&rgb[399 * 3..400 * 3], &[143, 1, 7]);
    }
}
