//! Diagnostics: every validation finding names the file, line, object and field, and says
//! what would be valid.

use std::fmt;

/// How bad a finding is. Errors make `natsim validate` fail; warnings do not.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Severity {
    /// The manifests cannot be used.
    Error,
    /// Legal but probably not what the author meant.
    Warning,
}

/// A position in a manifest file (1-based; 0 = unknown).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord)]
pub struct Loc {
    /// 1-based line.
    pub line: u32,
    /// 1-based column.
    pub column: u32,
}

impl Loc {
    /// A known position.
    pub const fn new(line: u32, column: u32) -> Self {
        Loc { line, column }
    }

    /// The same position `lines` further down (an unknown position stays unknown): turns a
    /// position within one document into a position in its file.
    pub const fn shifted(self, lines: u32) -> Self {
        if self.line == 0 {
            self
        } else {
            Loc::new(self.line.saturating_add(lines), self.column)
        }
    }
}

impl From<serde_saphyr::Location> for Loc {
    fn from(l: serde_saphyr::Location) -> Self {
        Loc::new(
            u32::try_from(l.line()).unwrap_or(u32::MAX),
            u32::try_from(l.column()).unwrap_or(u32::MAX),
        )
    }
}

/// One finding.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Diagnostic {
    /// Error or warning.
    pub severity: Severity,
    /// The file as the caller named it.
    pub file: String,
    /// Position within the file.
    pub loc: Loc,
    /// `Kind namespace/name`, when known.
    pub object: Option<String>,
    /// Dotted field path (`spec.ips[1].name`), empty for the whole document.
    pub field: String,
    /// What is wrong and what would be valid.
    pub message: String,
    /// Index of the file in the caller's list: diagnostics sort by it, then by position.
    pub(crate) file_index: usize,
}

impl Diagnostic {
    /// Sort key: file order, position, then text (so output is stable).
    pub(crate) fn sort_key(&self) -> (usize, Loc, Severity, &str, &str) {
        (
            self.file_index,
            self.loc,
            self.severity,
            &self.field,
            &self.message,
        )
    }
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let sev = match self.severity {
            Severity::Error => "error",
            Severity::Warning => "warning",
        };
        write!(
            f,
            "{sev}: {}:{}:{}: ",
            self.file, self.loc.line, self.loc.column
        )?;
        if let Some(object) = &self.object {
            write!(f, "{object}: ")?;
        }
        if !self.field.is_empty() {
            write!(f, "{}: ", self.field)?;
        }
        f.write_str(&self.message)
    }
}

/// Where a finding points: the file and the object being checked. Lets checks add findings
/// without repeating the context.
#[derive(Clone, Debug)]
pub(crate) struct Context {
    pub file: String,
    pub file_index: usize,
    pub object: Option<String>,
}

/// A growing list of diagnostics.
#[derive(Clone, Debug, Default)]
pub(crate) struct Sink {
    pub items: Vec<Diagnostic>,
}

impl Sink {
    pub fn push(
        &mut self,
        severity: Severity,
        ctx: &Context,
        loc: Loc,
        field: impl Into<String>,
        message: impl Into<String>,
    ) {
        self.items.push(Diagnostic {
            severity,
            file: ctx.file.clone(),
            loc,
            object: ctx.object.clone(),
            field: field.into(),
            message: message.into(),
            file_index: ctx.file_index,
        });
    }

    pub fn error(
        &mut self,
        ctx: &Context,
        loc: Loc,
        field: impl Into<String>,
        message: impl Into<String>,
    ) {
        self.push(Severity::Error, ctx, loc, field, message);
    }

    pub fn warn(
        &mut self,
        ctx: &Context,
        loc: Loc,
        field: impl Into<String>,
        message: impl Into<String>,
    ) {
        self.push(Severity::Warning, ctx, loc, field, message);
    }

    /// Sorted, deduplicated findings.
    pub fn finish(mut self) -> Vec<Diagnostic> {
        self.items.sort_by(|a, b| a.sort_key().cmp(&b.sort_key()));
        self.items.dedup();
        self.items
    }
}
