//! Progress bars for the CLI's long operations (`simulate`, `incident export`, `migrate`), one
//! style for all of them: `simulating [=====>    ] 3/25 00:04 red-sea-cut`.
//!
//! A bar draws on stderr, and only when stderr is a terminal with a capable `TERM` (indicatif's
//! draw target hides itself otherwise): piped or redirected, a command prints exactly what it
//! printed before bars existed, which the tests and scripts that parse it rely on. Lines a
//! command prints while its bar is up go through [`Bar::println`], so they never interleave with
//! a half-drawn bar on a shared terminal. Deliberately absent: colours, and anything on stdout.

use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// The one template: what is being done, the bar, steps done of all, time spent, the current
/// step's name. ASCII only, so it draws the same on any terminal.
const TEMPLATE: &str = "{prefix} [{bar:30}] {pos}/{len} {elapsed_precise} {wide_msg}";

/// How often a drawn bar refreshes its clock while a step takes long (a big scenario).
const TICK: Duration = Duration::from_millis(250);

/// A progress bar of `len` steps, labelled `what` ("simulating"), cleared when dropped.
pub struct Bar {
    /// The indicatif bar; hidden when stderr is not a terminal.
    inner: ProgressBar,
}

impl Bar {
    /// A bar of `len` steps on stderr, drawn only if stderr is a terminal.
    pub fn new(what: &'static str, len: u64) -> Bar {
        Bar::with_target(what, len, ProgressDrawTarget::stderr())
    }

    fn with_target(what: &'static str, len: u64, target: ProgressDrawTarget) -> Bar {
        let inner = ProgressBar::with_draw_target(Some(len), target);
        inner.set_style(style());
        inner.set_prefix(what);
        if !inner.is_hidden() {
            inner.enable_steady_tick(TICK);
        }
        Bar { inner }
    }

    /// Names the step under way.
    pub fn step(&self, name: &str) {
        self.inner.set_message(name.to_string());
    }

    /// Marks one more step done.
    pub fn inc(&self) {
        self.inner.inc(1);
    }

    /// Sets the steps done and the total (when the total is known only as work goes on).
    pub fn set(&self, done: u64, total: u64) {
        self.inner.set_length(total);
        self.inner.set_position(done);
    }

    /// Prints `line` and a newline to stdout with the bar out of the way (removed, then drawn
    /// again below): stdout and stderr often share one terminal.
    pub fn println(&self, line: &str) {
        self.inner.suspend(|| println!("{line}"));
    }

    /// Whether the bar is drawn (stderr is a terminal).
    #[cfg(test)]
    fn is_drawn(&self) -> bool {
        !self.inner.is_hidden()
    }
}

impl Drop for Bar {
    /// A finished command leaves no bar behind: its results are what stays on screen.
    fn drop(&mut self) {
        self.inner.finish_and_clear();
    }
}

/// [`TEMPLATE`], or indicatif's default bar should it ever be refused (a test checks it is
/// not: a style is no reason to fail a command).
fn style() -> ProgressStyle {
    ProgressStyle::with_template(TEMPLATE)
        .map(|s| s.progress_chars("=> "))
        .unwrap_or_else(|_| ProgressStyle::default_bar())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_template_is_valid() {
        assert!(ProgressStyle::with_template(TEMPLATE).is_ok());
    }

    #[test]
    fn a_bar_off_a_terminal_is_hidden_and_its_lines_still_print() {
        let bar = Bar::with_target("testing", 3, ProgressDrawTarget::hidden());
        assert!(!bar.is_drawn());
        bar.step("one");
        bar.inc();
        bar.set(2, 4);
        bar.println("a line");
        assert_eq!(bar.inner.position(), 2);
        assert_eq!(bar.inner.length(), Some(4));
    }
}
