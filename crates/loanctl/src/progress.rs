//! Progress of the long commands (feed, replay, bench-live) for a person at a terminal:
//! one line on standard error, redrawn in place. Into a pipe or a file (a script, a
//! supervisor, a log collector) nothing is drawn: there the command's result on
//! standard output and its log lines are what a reader wants, not carriage returns.

use std::io::{IsTerminal, Write};
use std::time::{Duration, Instant};

/// How often the line is redrawn at most (the last step is always drawn).
const REDRAW: Duration = Duration::from_millis(100);
const BAR_WIDTH: u64 = 30;

pub struct Progress {
    /// Whether anything is drawn: standard error is a terminal and TERM is not "dumb".
    enabled: bool,
    label: &'static str,
    started: Instant,
    drawn_at: Option<Instant>,
}

impl Progress {
    /// A progress line labelled `label` (the command), drawn only on a terminal.
    pub fn new(label: &'static str) -> Self {
        let dumb = std::env::var_os("TERM").is_some_and(|t| t == "dumb");
        Self::with(label, std::io::stderr().is_terminal() && !dumb)
    }

    fn with(label: &'static str, enabled: bool) -> Self {
        Progress { enabled, label, started: Instant::now(), drawn_at: None }
    }

    /// `done` of `total` `unit`s, with a bar.
    pub fn step(&mut self, what: &str, done: u64, total: u64, unit: &str) {
        if self.due(done >= total) {
            let line = self.bar_line(what, done, total, unit);
            self.draw(&line);
        }
    }

    /// A phase without a count ("measuring the broker's ceiling").
    pub fn phase(&mut self, what: &str) {
        if self.enabled {
            let line = format!("{}: {what} ({:.0} s)", self.label, self.started.elapsed().as_secs_f64());
            self.draw(&line);
        }
    }

    /// Clears the line, so that what follows (a result, an error) starts on a clean one.
    pub fn finish(&mut self) {
        if self.enabled && self.drawn_at.take().is_some() {
            let mut err = std::io::stderr().lock();
            let _ = write!(err, "\r\x1b[2K");
            let _ = err.flush();
        }
    }

    fn due(&self, last: bool) -> bool {
        self.enabled && (last || self.drawn_at.is_none_or(|at| at.elapsed() >= REDRAW))
    }

    fn bar_line(&self, what: &str, done: u64, total: u64, unit: &str) -> String {
        // Nothing to do is all done.
        let filled = (done.min(total) * BAR_WIDTH).checked_div(total).unwrap_or(BAR_WIDTH);
        let percent = (done.min(total) * 100).checked_div(total).unwrap_or(100);
        format!(
            "{}: {what} [{}{}] {done}/{total}{}{unit} ({percent} %, {:.0} s)",
            self.label,
            "#".repeat(filled as usize),
            "-".repeat((BAR_WIDTH - filled) as usize),
            if unit.is_empty() { "" } else { " " },
            self.started.elapsed().as_secs_f64()
        )
    }

    fn draw(&mut self, line: &str) {
        let mut err = std::io::stderr().lock();
        let _ = write!(err, "\r\x1b[2K{line}");
        let _ = err.flush();
        self.drawn_at = Some(Instant::now());
    }
}

impl Drop for Progress {
    /// A command that fails half-way leaves no half-drawn line before its error.
    fn drop(&mut self) {
        self.finish();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Off a terminal nothing is drawn, whatever is reported.
    #[test]
    fn quiet_unless_enabled() {
        let mut progress = Progress::with("feed", false);
        progress.step("inputs", 1, 10, "inputs");
        progress.phase("waiting");
        assert!(progress.drawn_at.is_none());
    }

    #[test]
    fn the_bar_fills_with_the_count() {
        let progress = Progress::with("replay", true);
        let line = progress.bar_line("loan.events", 5, 10, "records");
        assert!(line.starts_with("replay: loan.events [###############---------------] 5/10 records (50 %"), "{line}");
        assert!(progress.bar_line("x", 0, 0, "records").contains("(100 %"));
        assert!(progress.bar_line("x", 12, 10, "records").contains("[##############################] 12/10"));
    }
}
