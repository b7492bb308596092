//! Engine library files: checked as ELF, then loaded from a private, sealed in-memory copy.
//!
//! `dlopen` maps a library's segments straight from its file. Two things then kill the host with
//! `SIGBUS` and no message: a file truncated inside a segment (the first touch of a page past
//! the end faults), and a file rewritten in place after it was loaded (`cp new.so engine.so`
//! truncates the mapped file, then writes it). So the loader never maps the file it was given:
//!
//! 1. it reads the file once into memory (bounded by [`MAX_LIBRARY_BYTES`]);
//! 2. it checks those bytes with the `object` crate's ELF parser: a shared object whose headers
//!    parse and whose every `PT_LOAD` segment lies inside the bytes read; anything else is one
//!    error line naming the file, the engine and the fault;
//! 3. it writes the same bytes to an anonymous `memfd`, seals it against writes, growth and
//!    shrinking, and `dlopen`s that copy through `/proc/self/fd/N`.
//!
//! What is checked is exactly what is mapped (no window between check and load), nothing is
//! written to disk (no directory to secure, nothing to clean up after a crash), and no later
//! write to the original file, or to the copy, can change the mapped pages. The cost is the
//! library's size in memory (about 1–3 MB per engine), for the life of the process, as the
//! mapping already was. A temporary-file copy was the alternative; it needs a private directory
//! that allows `exec` and a cleanup that a crash skips, so the memfd won.
//!
//! The copy's descriptor stays open for the life of the process: glibc recognises a library
//! already loaded by the name it was opened with, so a closed and reused `/proc/self/fd/N`
//! would hand the next engine the previous engine's library.

use std::{
    fs::File,
    io::{Read, Write},
    path::{Path, PathBuf},
    sync::Mutex,
};

use object::{Object, ObjectKind};
use rustix::fs::{MemfdFlags, SealFlags};

use crate::loader::{EngineLibrary, LoadError};

/// The largest engine library read, in bytes; a bigger file is refused before it is read whole.
pub const MAX_LIBRARY_BYTES: u64 = 512 * 1024 * 1024;

/// Why an engine library file cannot be loaded safely. Each `Display` is one line; the loader
/// adds the file and the engine.
#[derive(Debug, thiserror::Error)]
pub enum LibraryFileError {
    /// The file could not be read.
    #[error("cannot read it: {0}")]
    Read(#[source] std::io::Error),
    /// The file is larger than any engine library should be.
    #[error("it is {size} bytes, over the {MAX_LIBRARY_BYTES}-byte limit for an engine library")]
    TooLarge {
        /// The file's size.
        size: u64,
    },
    /// The bytes are not a well-formed ELF file (bad or truncated headers).
    #[error("damaged or not an ELF file ({size} bytes): {source}")]
    Malformed {
        /// The file's size.
        size: u64,
        /// What the ELF parser found.
        #[source]
        source: object::Error,
    },
    /// The file is ELF but not a shared library.
    #[error("an ELF file of kind {kind:?}, not a shared library")]
    NotShared {
        /// What the ELF header says it is.
        kind: ObjectKind,
    },
    /// A loadable segment reaches past the end of the file: it was truncated, or is being
    /// written right now.
    #[error(
        "damaged ELF file: loadable segment {index} needs bytes {start}..{end} but the file has \
         {size} (truncated, or still being written?)"
    )]
    SegmentOutsideFile {
        /// The segment's position among the `PT_LOAD` segments.
        index: usize,
        /// Its first byte in the file.
        start: u64,
        /// One past its last byte in the file (saturated at `u64::MAX`).
        end: u64,
        /// The file's size.
        size: u64,
    },
    /// The private in-memory copy could not be made.
    #[error("cannot make the private copy it is loaded from: {0}")]
    Snapshot(#[source] std::io::Error),
}

/// Loads the library at `canonical` with `open` (the loader's `dlopen` + root-module step),
/// but from a checked, sealed in-memory copy; the result and any error name `canonical`.
///
/// # Errors
///
/// [`LoadError::NotALibrary`] with a [`LibraryFileError`] reason for a file that cannot be
/// read, is not a shared library, or is damaged; whatever `open` returns otherwise.
pub(crate) fn load_from_snapshot(
    canonical: &Path,
    open: impl FnOnce(&Path) -> Result<EngineLibrary, LoadError>,
) -> Result<EngineLibrary, LoadError> {
    let not_a_library = |error: LibraryFileError| LoadError::NotALibrary {
        path: canonical.to_path_buf(),
        reason: error.to_string(),
    };
    let bytes = read_bounded(canonical).map_err(not_a_library)?;
    check_elf(&bytes).map_err(not_a_library)?;
    let snapshot = sealed_copy(canonical, &bytes)
        .map_err(|error| not_a_library(LibraryFileError::Snapshot(error)))?;
    let mut library = open(&snapshot).map_err(|error| at_path(error, &snapshot, canonical))?;
    library.path = canonical.to_path_buf();
    library.info.path = canonical.to_path_buf();
    Ok(library)
}

/// Checks that `bytes` are an ELF shared library whose every loadable segment lies inside
/// `bytes`: what `dlopen` can map without touching a page past the end of the file.
///
/// # Errors
///
/// [`LibraryFileError::Malformed`], [`LibraryFileError::NotShared`] or
/// [`LibraryFileError::SegmentOutsideFile`].
pub fn check_elf(bytes: &[u8]) -> Result<(), LibraryFileError> {
    use object::read::elf::{FileHeader, ProgramHeader};

    let size = bytes.len() as u64;
    let malformed = |source| LibraryFileError::Malformed { size, source };
    // The program headers first: a file cut short fails here with what is missing, before the
    // section headers (usually at the very end of the file) make it merely "malformed".
    let header =
        object::elf::FileHeader64::<object::Endianness>::parse(bytes).map_err(malformed)?;
    let endian = header.endian().map_err(malformed)?;
    let loadable = header
        .program_headers(endian, bytes)
        .map_err(malformed)?
        .iter()
        .filter(|segment| segment.p_type(endian) == object::elf::PT_LOAD);
    for (index, segment) in loadable.enumerate() {
        let (start, length) = segment.file_range(endian);
        let end = start.saturating_add(length);
        if end > size {
            return Err(LibraryFileError::SegmentOutsideFile {
                index,
                start,
                end,
                size,
            });
        }
    }
    let file =
        object::read::elf::ElfFile64::<object::Endianness>::parse(bytes).map_err(malformed)?;
    if file.kind() != ObjectKind::Dynamic {
        return Err(LibraryFileError::NotShared { kind: file.kind() });
    }
    Ok(())
}

/// Reads the whole file, refusing one over [`MAX_LIBRARY_BYTES`].
fn read_bounded(path: &Path) -> Result<Vec<u8>, LibraryFileError> {
    let file = File::open(path).map_err(LibraryFileError::Read)?;
    let mut bytes = Vec::new();
    file.take(MAX_LIBRARY_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(LibraryFileError::Read)?;
    if bytes.len() as u64 > MAX_LIBRARY_BYTES {
        return Err(LibraryFileError::TooLarge {
            size: bytes.len() as u64,
        });
    }
    Ok(bytes)
}

/// Writes `bytes` to a new memfd named after the library, seals it read-only for good, keeps
/// its descriptor open forever (see the module docs) and returns the path `dlopen` opens it by.
fn sealed_copy(canonical: &Path, bytes: &[u8]) -> std::io::Result<PathBuf> {
    static COPIES: Mutex<Vec<File>> = Mutex::new(Vec::new());
    let name = canonical
        .file_name()
        .map_or_else(|| "sessionkit-engine".into(), |name| name.to_string_lossy());
    let fd = rustix::fs::memfd_create(
        name.as_ref(),
        MemfdFlags::CLOEXEC | MemfdFlags::ALLOW_SEALING,
    )?;
    let mut file = File::from(fd);
    file.write_all(bytes)?;
    seal(&file)?;
    let path = PathBuf::from(format!(
        "/proc/self/fd/{}",
        std::os::fd::AsRawFd::as_raw_fd(&file)
    ));
    // A poisoned lock only means another thread panicked while pushing; the list is still a
    // list of open files, which is all it is for.
    COPIES
        .lock()
        .unwrap_or_else(|poison| poison.into_inner())
        .push(file);
    Ok(path)
}

/// Seals the copy read-only for good. The kernel refuses the write seal with `EBUSY` while any
/// page of the file still holds a transient reference (seen under load, from page batching on
/// another CPU, after its own short wait), so a busy answer is retried a few times, a little
/// later each time, before it is an error.
fn seal(file: &File) -> std::io::Result<()> {
    const ATTEMPTS: u32 = 8;
    let seals = SealFlags::WRITE | SealFlags::SHRINK | SealFlags::GROW | SealFlags::SEAL;
    let mut attempt = 1;
    loop {
        match rustix::fs::fcntl_add_seals(file, seals) {
            Err(rustix::io::Errno::BUSY) if attempt < ATTEMPTS => {
                std::thread::sleep(std::time::Duration::from_millis(5 << attempt));
                attempt += 1;
            }
            other => return other.map_err(Into::into),
        }
    }
}

/// `error` as if `canonical` had been opened instead of `snapshot`: the path fields, and any
/// mention of the snapshot's path in the reason (dlopen's messages start with it).
fn at_path(mut error: LoadError, snapshot: &Path, canonical: &Path) -> LoadError {
    let shown = snapshot.display().to_string();
    let original = canonical.display().to_string();
    let fix = |path: &mut PathBuf, text: Option<&mut String>| {
        if path == snapshot {
            *path = canonical.to_path_buf();
        }
        if let Some(text) = text {
            *text = text.replace(&shown, &original);
        }
    };
    match &mut error {
        LoadError::UnknownEngine { .. } => {}
        LoadError::Missing { path }
        | LoadError::NameMismatch { path, .. }
        | LoadError::Open { path, .. } => fix(path, None),
        LoadError::NotALibrary { path, reason }
        | LoadError::NotAnEngine { path, reason }
        | LoadError::Insecure { path, reason } => fix(path, Some(reason)),
        LoadError::AbiMismatch { path, summary } => fix(path, Some(summary)),
    }
    error
}

#[cfg(test)]
mod tests {
    use object::read::elf::{FileHeader, ProgramHeader};

    use super::*;

    /// A real engine library of this build.
    fn engine_library() -> Vec<u8> {
        std::fs::read(sessionkit_testkit::engine_library("cache")).unwrap()
    }

    #[test]
    fn a_real_engine_library_passes() {
        check_elf(&engine_library()).unwrap();
    }

    #[test]
    fn bytes_that_are_not_elf_are_malformed() {
        for bytes in [&b""[..], b"not a library", b"\x7fELF"] {
            let error = check_elf(bytes).unwrap_err();
            assert!(
                matches!(error, LibraryFileError::Malformed { .. }),
                "{error}"
            );
        }
    }

    #[test]
    fn an_object_file_is_not_a_shared_library() {
        let mut bytes = engine_library();
        // e_type (offset 16, little-endian on every target this builds for) := ET_REL.
        bytes[16..18].copy_from_slice(&object::elf::ET_REL.0.to_le_bytes());
        let error = check_elf(&bytes).unwrap_err();
        assert!(
            matches!(
                error,
                LibraryFileError::NotShared {
                    kind: ObjectKind::Relocatable
                }
            ),
            "{error}"
        );
    }

    #[test]
    fn a_file_cut_inside_a_loadable_segment_is_reported_as_truncated() {
        let bytes = engine_library();
        let header = object::elf::FileHeader64::<object::Endianness>::parse(&bytes[..]).unwrap();
        let endian = header.endian().unwrap();
        let (start, length) = header
            .program_headers(endian, &bytes[..])
            .unwrap()
            .iter()
            .filter(|segment| segment.p_type(endian) == object::elf::PT_LOAD)
            .map(|segment| segment.file_range(endian))
            .max_by_key(|(start, length)| start + length)
            .unwrap();
        let cut = usize::try_from(start + length / 2).unwrap();
        let error = check_elf(&bytes[..cut]).unwrap_err();
        assert!(
            matches!(error, LibraryFileError::SegmentOutsideFile { size, .. } if size == cut as u64),
            "{error}"
        );
        assert!(error.to_string().contains("truncated"), "{error}");
    }
}
