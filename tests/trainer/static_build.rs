//! The static build: `scripts/build-static.sh` produces an ELF with no program interpreter and
//! no shared-library dependencies, and it computes the reference score.
//!
//! This runs a release (LTO) build, about a minute on a cold cache.

use std::process::Command;

use crate::util::repo_root;

/// What the dynamic section and program headers say about linking.
#[derive(Debug, PartialEq)]
struct Linking {
    has_interp: bool,
    n_needed: usize,
}

fn u16_at(b: &[u8], o: usize) -> usize {
    u16::from_le_bytes([b[o], b[o + 1]]) as usize
}
fn u64_at(b: &[u8], o: usize) -> u64 {
    u64::from_le_bytes(b[o..o + 8].try_into().unwrap())
}

/// Reads an x86-64 ELF's program headers: PT_INTERP (3) and the DT_NEEDED (1) entries of
/// PT_DYNAMIC (2).
fn inspect_elf(b: &[u8]) -> Linking {
    assert_eq!(&b[..4], b"\x7fELF", "not an ELF file");
    assert_eq!(b[4], 2, "not a 64-bit ELF");
    assert_eq!(b[5], 1, "not little-endian");
    let phoff = u64_at(b, 0x20) as usize;
    let phentsize = u16_at(b, 0x36);
    let phnum = u16_at(b, 0x38);
    let mut linking = Linking {
        has_interp: false,
        n_needed: 0,
    };
    for k in 0..phnum {
        let ph = phoff + k * phentsize;
        let p_type = u32::from_le_bytes(b[ph..ph + 4].try_into().unwrap());
        let offset = u64_at(b, ph + 8) as usize;
        let filesz = u64_at(b, ph + 32) as usize;
        match p_type {
            3 => linking.has_interp = true,
            2 => {
                for e in (offset..offset + filesz).step_by(16) {
                    match u64_at(b, e) {
                        0 => break,
                        1 => linking.n_needed += 1,
                        _ => {}
                    }
                }
            }
            _ => {}
        }
    }
    linking
}

#[test]
fn elf_inspection_tells_dynamic_from_static() {
    // The test binary itself is dynamically linked: the check must be able to say so.
    let me = std::fs::read(std::env::current_exe().unwrap()).unwrap();
    let l = inspect_elf(&me);
    assert!(l.has_interp && l.n_needed > 0, "{l:?}");
}

#[test]
fn build_static_script_produces_a_static_binary_that_scores_iris() {
    let root = repo_root();
    let out = Command::new("bash")
        .arg(root.join("scripts/build-static.sh"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let path = String::from_utf8(out.stdout).unwrap().trim().to_owned();
    assert!(
        path.ends_with("target/x86_64-unknown-linux-gnu/release/trainer"),
        "{path}"
    );
    let linking = inspect_elf(&std::fs::read(&path).unwrap());
    assert_eq!(
        linking,
        Linking {
            has_interp: false,
            n_needed: 0
        }
    );

    let dir = tempfile::tempdir().unwrap();
    let score = dir.path().join("score.txt");
    let run = Command::new(&path)
        .env_clear()
        .arg(root.join("input_files/iris.csv"))
        .arg(&score)
        .output()
        .unwrap();
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    assert_eq!(
        std::fs::read_to_string(&score).unwrap(),
        "The model score: 0.9533333333333334"
    );
}
