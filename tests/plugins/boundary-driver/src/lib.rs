//! The boundary fuzzer's plugin: runs the program in the record's `gannet.fuzz/program`
//! annotation (hex) as a sequence of host calls with the arguments it spells out (huge
//! keys, many keys, patterns, masks), and ends with `pass`, `drop`, `err`, a trap, or an
//! allocation beyond its memory limit. Before an ending by verdict it sets the tag
//! `boundary.ended = ok`, so the fuzz target (`fuzz/fuzz_targets/plugin_boundary.rs`) can
//! check that any other ending left the record exactly as it was.

use gannet_guest::{plugin, Container, Error, Field, Lifecycle, Result, Verdict};

/// The annotation holding the program.
const PROGRAM: &str = "gannet.fuzz/program";

/// The byte that asks for the huge size: a count of 65,025, or 16,320 copies of a string.
/// Every other value means itself, so huge arguments are the program's choice and
/// ordinary programs stay cheap (docs/FUZZING.md: "Sizes").
const HUGE: u8 = 255;

/// Reads the program's arguments.
struct Program {
    bytes: Vec<u8>,
    at: usize,
}

impl Program {
    fn byte(&mut self) -> u8 {
        let b = self.bytes.get(self.at).copied().unwrap_or(0);
        self.at += 1;
        b
    }

    /// A string: a length byte, a repeat byte, then that many bytes (lossy UTF-8),
    /// repeated: once for 0, that many times up to 254, and 255 * 64 = 16,320 times for
    /// [`HUGE`] (so up to about 4 MB from a few input bytes).
    fn text(&mut self) -> String {
        let len = usize::from(self.byte());
        let repeat = self.byte();
        let end = (self.at + len).min(self.bytes.len());
        let piece = String::from_utf8_lossy(&self.bytes[self.at.min(end)..end]).into_owned();
        self.at = end;
        let copies = match repeat {
            HUGE => usize::from(HUGE) * 64,
            0 => 1,
            n => usize::from(n),
        };
        piece.repeat(copies)
    }

    /// A count: one byte, itself up to 254, and 255 squared = 65,025 for [`HUGE`].
    fn count(&mut self) -> usize {
        match self.byte() {
            HUGE => usize::from(HUGE) * usize::from(HUGE),
            n => usize::from(n),
        }
    }

    fn done(&self) -> bool {
        self.at >= self.bytes.len()
    }
}

fn decode_hex(text: &str) -> Vec<u8> {
    let digits: Vec<u8> = text
        .bytes()
        .filter_map(|c| (c as char).to_digit(16).and_then(|d| u8::try_from(d).ok()))
        .collect();
    digits
        .chunks(2)
        .map(|p| p[0] * 16 + p.get(1).copied().unwrap_or(0))
        .collect()
}

fn ok(record: &mut Container, verdict: Verdict) -> Result<Verdict> {
    record.set_tag("boundary.ended", "ok");
    Ok(verdict)
}

#[plugin]
fn process(_event: Lifecycle, record: &mut Container) -> Result<Verdict> {
    let Some(hex) = record.annotation(PROGRAM) else {
        return ok(record, Verdict::Pass);
    };
    let mut p = Program {
        bytes: decode_hex(&hex),
        at: 0,
    };
    while !p.done() {
        match p.byte() % 16 {
            0 => {
                let (k, v) = (p.text(), p.text());
                record.set_tag(&k, &v);
            }
            1 => {
                record.remove_tag(&p.text());
            }
            2 => {
                let (k, v) = (p.text(), p.text());
                record.set_label(&k, &v);
            }
            3 => {
                record.remove_label(&p.text());
            }
            4 => {
                let (pattern, mask) = (p.text(), p.text());
                record.mask_env_matching(&[pattern], &mask);
            }
            5 => {
                record.remove_env_matching(&[p.text()]);
            }
            6 => {
                let n = p.count();
                let key = p.text();
                let fields = vec![Field::PodLabel(key); n];
                std::hint::black_box(record.select(&fields));
            }
            7 => {
                let n = p.count();
                let keys = vec![p.text(); n];
                std::hint::black_box(record.label_values(&keys));
            }
            8 => {
                std::hint::black_box(record.env_matching(&[p.text()]));
            }
            9 => {
                let (name, mask) = (p.text(), p.text());
                record.mask_env(&name, &mask);
            }
            10 => {
                record.remove_env(&p.text());
            }
            11 => {
                let n = p.count();
                let (k, v) = (p.text(), p.text());
                record.set_tags((0..n).map(|i| (format!("{k}{i}"), v.clone())));
            }
            12 => return Err(Error::msg(p.text())),
            13 => core::arch::wasm32::unreachable(),
            14 => {
                // Megabytes: beyond the plugin's memory limit, this traps.
                let mib = usize::from(p.byte());
                let hoard = vec![1u8; mib << 20];
                std::hint::black_box(&hoard);
            }
            _ => {
                return ok(
                    record,
                    if p.byte().is_multiple_of(2) {
                        Verdict::Drop
                    } else {
                        Verdict::Pass
                    },
                )
            }
        }
    }
    ok(record, Verdict::Pass)
}
