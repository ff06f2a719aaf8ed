//! A minimal WAV writer (RIFF, PCM 16-bit mono). Hand-written: 44 bytes of header do not
//! earn a dependency.

use std::io::{self, Write};
use std::path::Path;

/// Writes `samples` as a mono 16-bit PCM WAV file at `rate` Hz.
pub fn write(path: &Path, rate: u32, samples: &[i16]) -> io::Result<()> {
    let data_len = (samples.len() * 2) as u32;
    let mut f = io::BufWriter::new(std::fs::File::create(path)?);
    f.write_all(b"RIFF")?;
    f.write_all(&(36 + data_len).to_le_bytes())?;
    f.write_all(b"WAVEfmt ")?;
    f.write_all(&16u32.to_le_bytes())?; // fmt chunk size
    f.write_all(&1u16.to_le_bytes())?; // PCM
    f.write_all(&1u16.to_le_bytes())?; // mono
    f.write_all(&rate.to_le_bytes())?;
    f.write_all(&(rate * 2).to_le_bytes())?; // byte rate
    f.write_all(&2u16.to_le_bytes())?; // block align
    f.write_all(&16u16.to_le_bytes())?; // bits per sample
    f.write_all(b"data")?;
    f.write_all(&data_len.to_le_bytes())?;
    for s in samples {
        f.write_all(&s.to_le_bytes())?;
    }
    f.flush()
}

#[cfg(test)]
mod tests {
    #[test]
    fn header_and_data() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("x.wav");
        super::write(&p, 8000, &[1, -2]).unwrap();
        let b = std::fs::read(&p).unwrap();
        assert_eq!(b.len(), 48);
        assert_eq!(&b[0..4], b"RIFF");
        assert_eq!(u32::from_le_bytes([b[24], b[25], b[26], b[27]]), 8000);
        assert_eq!(&b[44..], &[1, 0, 0xfe, 0xff]);
    }
}
