//! Fuzz target: the backup-store parsers never panic, and whatever parses re-encodes to bytes
//! that parse to the same value.

#![no_main]

use libfuzzer_sys::fuzz_target;
use simkit_core::backup::commands::{BackupStatus, InstallParams, ManifestPage};
use simkit_core::backup::manifest::{Manifest, ManifestEntry};

fuzz_target!(|data: &[u8]| {
    if let Ok(manifest) = Manifest::parse(data) {
        let again = Manifest::parse(&manifest.encode());
        assert_eq!(again.as_ref(), Ok(&manifest));
    }
    if let Ok((entry, _rest)) = ManifestEntry::parse(data) {
        assert_eq!(ManifestEntry::parse_exact(&entry.encode()), Ok(entry));
    }
    if let Ok(page) = ManifestPage::parse(data) {
        assert_eq!(ManifestPage::parse(&page.encode()), Ok(page));
    }
    if let Ok(status) = BackupStatus::parse(data) {
        assert_eq!(status.encode(), data);
    }
    if let Ok(params) = InstallParams::parse(data) {
        assert_eq!(InstallParams::parse(&params.encode()), Ok(params));
    }
});
