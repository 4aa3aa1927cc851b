//! Configuration-file plumbing shared by every Meridian file format: reading a TOML file,
//! deserializing it strictly, and reporting every problem with its file, line, column and field
//! path, all at once.
//!
//! What lives here is format-agnostic: the region catalog, the probe config and (later) the
//! coordinator config each define their own raw structs and validation, and use [`SourceFile`]
//! to turn byte spans into the `file:line:column: field: message` lines users see. Nothing here
//! knows what a region or a check is.

use std::fmt;
use std::ops::Range;
use std::path::Path;

use serde::de::DeserializeOwned;

/// One problem in a configuration file, located precisely enough to fix without guessing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigIssue {
    /// The file as the user named it, so the message can be pasted into an editor.
    pub file: String,
    /// 1-based line of the offending value (or of the table holding it).
    pub line: usize,
    /// 1-based column, in characters.
    pub column: usize,
    /// Dotted field path such as `region[3].lat`; empty when the problem is the file's syntax.
    pub field: String,
    /// What is wrong, in words, with the offending value quoted when there is one.
    pub message: String,
}

impl fmt::Display for ConfigIssue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}: ", self.file, self.line, self.column)?;
        if !self.field.is_empty() {
            write!(f, "{}: ", self.field)?;
        }
        f.write_str(&self.message)
    }
}

/// Why a configuration file could not be used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The file could not be read at all (missing, unreadable, not UTF-8).
    #[error("{file}: cannot read: {source}")]
    Read {
        /// The path as given.
        file: String,
        /// The underlying I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The file was read but has one or more problems; each is listed on its own line.
    #[error("{}", join_issues(.0))]
    Invalid(Vec<ConfigIssue>),
}

impl ConfigError {
    /// The individual problems, empty for a read error.
    pub fn issues(&self) -> &[ConfigIssue] {
        match self {
            ConfigError::Invalid(issues) => issues,
            ConfigError::Read { .. } => &[],
        }
    }
}

fn join_issues(issues: &[ConfigIssue]) -> String {
    issues
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("\n")
}

/// A configuration text together with the name it is reported under.
///
/// Keeps the text so that byte spans from the TOML parser (and from `toml::Spanned` fields)
/// can be turned into line and column numbers.
#[derive(Debug, Clone)]
pub struct SourceFile {
    name: String,
    text: String,
}

impl SourceFile {
    /// Wraps text already in memory; `name` is what error messages call the file.
    pub fn new(name: impl Into<String>, text: impl Into<String>) -> Self {
        SourceFile {
            name: name.into(),
            text: text.into(),
        }
    }

    /// Reads a file from disk.
    pub fn read(path: &Path) -> Result<Self, ConfigError> {
        let name = path.display().to_string();
        match std::fs::read_to_string(path) {
            Ok(text) => Ok(SourceFile::new(name, text)),
            Err(source) => Err(ConfigError::Read { file: name, source }),
        }
    }

    /// The name used in messages.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The whole text.
    pub fn text(&self) -> &str {
        &self.text
    }

    /// 1-based line and column of a byte offset (clamped to the text).
    pub fn line_col(&self, offset: usize) -> (usize, usize) {
        let mut offset = offset.min(self.text.len());
        while !self.text.is_char_boundary(offset) {
            offset -= 1;
        }
        let before = &self.text[..offset];
        let line = before.matches('\n').count() + 1;
        let line_start = before.rfind('\n').map_or(0, |i| i + 1);
        let column = before[line_start..].chars().count() + 1;
        (line, column)
    }

    /// An issue located at a byte span.
    pub fn issue(
        &self,
        span: Range<usize>,
        field: impl Into<String>,
        message: impl Into<String>,
    ) -> ConfigIssue {
        let (line, column) = self.line_col(span.start);
        ConfigIssue {
            file: self.name.clone(),
            line,
            column,
            field: field.into(),
            message: message.into(),
        }
    }

    /// Deserializes the whole text strictly into `T`.
    ///
    /// A syntax or type error stops parsing, so it is reported alone; semantic validation of
    /// the result is the caller's job and should collect every issue before failing.
    pub fn parse<T: DeserializeOwned>(&self) -> Result<T, ConfigError> {
        let de = match toml::Deserializer::parse(&self.text) {
            Ok(de) => de,
            Err(e) => return Err(ConfigError::Invalid(vec![self.toml_issue("", &e)])),
        };
        serde_path_to_error::deserialize(de).map_err(|e| {
            let field = field_path(e.path());
            ConfigError::Invalid(vec![self.toml_issue(&field, e.inner())])
        })
    }

    fn toml_issue(&self, field: &str, e: &toml::de::Error) -> ConfigIssue {
        let span = e.span().unwrap_or(0..0);
        // toml's messages end with a newline and sometimes carry their own trailing period.
        let message = e.message().trim().to_string();
        self.issue(span, field, message)
    }
}

/// Renders serde_path_to_error's path as `http[2].timeout` rather than `http.2.timeout`.
fn field_path(path: &serde_path_to_error::Path) -> String {
    use serde_path_to_error::Segment;
    let mut out = String::new();
    for segment in path.iter() {
        match segment {
            Segment::Seq { index } => out.push_str(&format!("[{index}]")),
            // `toml::Spanned` deserializes through a private field; users never wrote it.
            Segment::Map { key } if key.starts_with("$__serde_spanned") => {}
            Segment::Map { key } | Segment::Enum { variant: key } => {
                if !out.is_empty() {
                    out.push('.');
                }
                out.push_str(key);
            }
            Segment::Unknown => {}
        }
    }
    out
}

/// Collects issues during semantic validation so that all of them are reported together.
#[derive(Debug, Default)]
pub struct Issues(Vec<ConfigIssue>);

impl Issues {
    /// Records one issue.
    pub fn push(&mut self, issue: ConfigIssue) {
        self.0.push(issue);
    }

    /// `Ok(value)` when nothing was recorded, otherwise every recorded issue, in file order.
    pub fn finish<T>(mut self, value: T) -> Result<T, ConfigError> {
        if self.0.is_empty() {
            Ok(value)
        } else {
            self.0.sort_by_key(|i| (i.line, i.column));
            Err(ConfigError::Invalid(self.0))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Doc {
        name: String,
        #[serde(default)]
        item: Vec<Item>,
    }
    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Item {
        port: u16,
    }

    #[test]
    fn line_and_column_are_one_based_and_count_characters() {
        let src = SourceFile::new("f.toml", "a = 1\nbé = 2\n");
        assert_eq!(src.line_col(0), (1, 1));
        assert_eq!(src.line_col(6), (2, 1));
        assert_eq!(src.line_col(9), (2, 3)); // after the two-byte 'é'
        assert_eq!(src.line_col(10_000), (3, 1));
    }

    #[test]
    fn type_errors_name_file_line_and_field_path() {
        let src = SourceFile::new(
            "f.toml",
            "name = \"x\"\n\n[[item]]\nport = 1\n[[item]]\nport = 70000\n",
        );
        let err = src.parse::<Doc>().unwrap_err();
        let issue = &err.issues()[0];
        assert_eq!(
            (issue.line, issue.field.as_str()),
            (6, "item[1].port"),
            "{err}"
        );
    }

    #[test]
    fn unknown_fields_are_rejected_with_their_location() {
        let src = SourceFile::new("f.toml", "name = \"x\"\nnmae = \"y\"\n");
        let err = src.parse::<Doc>().unwrap_err().to_string();
        assert!(err.starts_with("f.toml:2:1: "), "{err}");
        assert!(err.contains("unknown field `nmae`"), "{err}");
    }

    #[test]
    fn syntax_errors_are_located() {
        let src = SourceFile::new("f.toml", "name = \"x\"\nport = = 3\n");
        let err = src.parse::<Doc>().unwrap_err();
        assert_eq!(err.issues()[0].line, 2, "{err}");
    }
}
