//! Text output helpers: colours (`anstyle`), aligned tables (`comfy-table`),
//! durations, JSON.

use anstyle::{AnsiColor, Effects};
use serde::Serialize;

/// Colours for stdout, or plain text when `color` is false.
#[derive(Debug, Clone, Copy)]
pub struct Style {
    /// Whether to emit escape codes.
    pub color: bool,
}

impl Style {
    /// Colours when `stream` is a terminal that wants them: `anstream` reads
    /// `NO_COLOR`, `CLICOLOR(_FORCE)` and `TERM=dumb`.
    pub fn for_stream(stream: &impl anstream::stream::RawStream) -> Self {
        Style {
            color: anstream::AutoStream::choice(stream) != anstream::ColorChoice::Never,
        }
    }

    fn paint(&self, style: anstyle::Style, text: &str) -> String {
        if self.color {
            format!("{style}{text}{style:#}")
        } else {
            text.to_string()
        }
    }

    /// Bold text.
    pub fn bold(&self, text: &str) -> String {
        self.paint(Effects::BOLD.into(), text)
    }

    /// Dimmed text.
    pub fn dim(&self, text: &str) -> String {
        self.paint(Effects::DIMMED.into(), text)
    }

    /// Green text.
    pub fn green(&self, text: &str) -> String {
        self.paint(AnsiColor::Green.on_default(), text)
    }

    /// Red text.
    pub fn red(&self, text: &str) -> String {
        self.paint(AnsiColor::Red.on_default(), text)
    }

    /// Yellow text.
    pub fn yellow(&self, text: &str) -> String {
        self.paint(AnsiColor::Yellow.on_default(), text)
    }

    /// Cyan text.
    pub fn cyan(&self, text: &str) -> String {
        self.paint(AnsiColor::Cyan.on_default(), text)
    }

    /// A run, step, task or worker status, coloured by what it means.
    pub fn status(&self, status: &str) -> String {
        match status {
            "completed" | "alive" => self.green(status),
            "failed" | "stale" => self.red(status),
            "started" => self.cyan(status),
            "cancelled" | "skipped" | "deprecated" => self.yellow(status),
            _ => self.dim(status),
        }
    }
}

/// A table printed with left-aligned columns separated by two spaces, no
/// borders; cells may contain colour codes.
#[derive(Debug)]
pub struct Table {
    table: comfy_table::Table,
    headers: Vec<String>,
}

impl Table {
    /// A table with these column headers.
    pub fn new<I: IntoIterator<Item = S>, S: Into<String>>(headers: I) -> Self {
        let mut table = comfy_table::Table::new();
        table.load_preset(comfy_table::presets::NOTHING);
        Table {
            table,
            headers: headers.into_iter().map(Into::into).collect(),
        }
    }

    /// Appends a row.
    pub fn row(&mut self, cells: Vec<String>) {
        self.table.add_row(cells);
    }

    /// True when no row was added.
    pub fn is_empty(&self) -> bool {
        self.table.is_empty()
    }

    /// The table as lines; the header is bold when `style` has colours.
    pub fn render(&self, style: Style) -> Vec<String> {
        let mut table = self.table.clone();
        table.set_header(self.headers.iter().map(|h| style.bold(h)));
        for column in table.column_iter_mut() {
            column.set_padding((0, 2));
        }
        // Padding pads the last column too: trim it.
        table.lines().map(|l| l.trim_end().to_string()).collect()
    }

    /// Prints the table to stdout.
    pub fn print(&self, style: Style) {
        for line in self.render(style) {
            println!("{line}");
        }
    }
}

/// A short human duration: `850ms`, `12.3s`, `4m05s`, `2h03m`, `3d04h`.
///
/// Hand-written: `humantime::format_duration` prints every unit down to the
/// nanosecond (`4m 5s 12ms 3us`), too wide for a table column.
pub fn duration(secs: f64) -> String {
    let secs = secs.max(0.0);
    if secs < 1.0 {
        format!("{}ms", (secs * 1000.0).round() as u64)
    } else if secs < 60.0 {
        format!("{secs:.1}s")
    } else {
        let s = secs.round() as u64;
        if s < 3600 {
            format!("{}m{:02}s", s / 60, s % 60)
        } else if s < 86_400 {
            format!("{}h{:02}m", s / 3600, (s % 3600) / 60)
        } else {
            format!("{}d{:02}h", s / 86_400, (s % 86_400) / 3600)
        }
    }
}

/// Local-time-free timestamp for tables: `2024-05-01 12:34:56Z`.
pub fn timestamp(at: &chrono::DateTime<chrono::Utc>) -> String {
    at.format("%Y-%m-%d %H:%M:%SZ").to_string()
}

/// Prints `value` as pretty JSON on stdout.
pub fn print_json<T: Serialize + ?Sized>(value: &T) -> anyhow::Result<()> {
    println!("{}", serde_json::to_string_pretty(value)?);
    Ok(())
}

/// `text` cut to `max` characters with an ellipsis, on one line.
pub fn truncate(text: &str, max: usize) -> String {
    let one_line: String = text
        .chars()
        .map(|c| if c == '\n' { ' ' } else { c })
        .collect();
    if one_line.chars().count() <= max {
        one_line
    } else {
        let cut: String = one_line.chars().take(max.saturating_sub(3)).collect();
        format!("{cut}...")
    }
}

/// `1 step`, `3 steps`.
pub fn plural(n: usize, word: &str) -> String {
    if n == 1 {
        format!("{n} {word}")
    } else {
        format!("{n} {word}s")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_naturally() {
        assert_eq!(duration(0.25), "250ms");
        assert_eq!(duration(12.34), "12.3s");
        assert_eq!(duration(245.0), "4m05s");
        assert_eq!(duration(7380.0), "2h03m");
        assert_eq!(duration(273_600.0), "3d04h");
    }

    #[test]
    fn table_aligns_columns_ignoring_colours() {
        let style = Style { color: true };
        let mut t = Table::new(["A", "B"]);
        t.row(vec![style.green("xx"), "1".into()]);
        t.row(vec!["yyyy".into(), "2".into()]);
        let lines = Table::render(&t, Style { color: false });
        assert_eq!(lines[0], "A     B");
        assert_eq!(lines[1], format!("{}    1", style.green("xx")));
        assert_eq!(lines[2], "yyyy  2");
    }

    #[test]
    fn truncate_keeps_one_line() {
        assert_eq!(truncate("a\nb", 10), "a b");
        assert_eq!(truncate("abcdefghij", 6), "abc...");
    }
}
