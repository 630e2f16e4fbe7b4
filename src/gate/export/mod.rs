//! The reports a gate writes for people and CI systems, each an [`Exporter`]: JUnit XML
//! for CI test views, Markdown for a job summary, a self-contained HTML page for
//! reviewers. All of them write to any [`Write`]; [`to_file`] names the file when that
//! fails.

use std::io::{self, Write};
use std::path::{Path, PathBuf};

use crate::gate::CheckResult;

pub mod html;
pub mod junit;
pub mod markdown;

/// A report of a gate's results.
pub trait Exporter {
    /// Writes the report of `results` to `out`.
    fn export(&self, results: &[CheckResult], out: &mut dyn Write) -> io::Result<()>;
}

/// A report could not be written.
#[derive(Debug, thiserror::Error)]
#[error("cannot write {}: {source}", path.display())]
pub struct ExportError {
    pub path: PathBuf,
    #[source]
    pub source: io::Error,
}

/// Writes `exporter`'s report of `results` to the file at `path`, replacing it whole.
pub fn to_file(
    exporter: &dyn Exporter,
    results: &[CheckResult],
    path: &Path,
) -> Result<(), ExportError> {
    crate::files::replace_with(path, false, |out| exporter.export(results, out)).map_err(|source| {
        ExportError {
            path: path.to_owned(),
            source,
        }
    })
}
