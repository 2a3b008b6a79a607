//! The command line of a process, built the way the Python tracker built it.
//!
//! psutil reads `/proc/PID/cmdline` as bytes, drops one trailing separator and splits: on
//! NUL normally, on spaces when the buffer does not end in NUL (a process that rewrote its
//! title, e.g. with setproctitle) or when it is a single NUL-terminated string that
//! contains spaces. Empty arguments are kept. The tracker then strips every argument,
//! joins them with one space and strips the result (`format_command`).
//!
//! Bytes that are not UTF-8 become U+FFFD instead of dropping the process (the `procfs`
//! crate's `cmdline()` fails on them and also drops empty arguments, hence this module).

/// Python's `str.isspace()`: Rust's `char::is_whitespace` plus the four ASCII
/// information separators (U+001C..U+001F), which Python also strips.
fn is_python_space(c: char) -> bool {
    c.is_whitespace() || ('\u{1c}'..='\u{1f}').contains(&c)
}

/// psutil's split of a raw `/proc/PID/cmdline` buffer into arguments.
pub fn split_args(data: &[u8]) -> Vec<&[u8]> {
    if data.is_empty() {
        return Vec::new();
    }
    let sep = if data.ends_with(b"\0") { b'\0' } else { b' ' };
    let data = data.strip_suffix(&[sep]).unwrap_or(data);
    let args: Vec<&[u8]> = data.split(|&b| b == sep).collect();
    if sep == b'\0' && args.len() == 1 && data.contains(&b' ') {
        return data.split(|&b| b == b' ').collect();
    }
    args
}

/// Builds the tracker's command string from a raw cmdline buffer into `out` (cleared
/// first). An empty result means "no command line": kernel threads, zombies, or arguments
/// that are all whitespace; the tracker skips those processes.
pub fn format_command(data: &[u8], out: &mut String) {
    out.clear();
    for (n, arg) in split_args(data).into_iter().enumerate() {
        if n > 0 {
            out.push(' ');
        }
        out.push_str(String::from_utf8_lossy(arg).trim_matches(is_python_space));
    }
    let end = out.trim_end_matches(is_python_space).len();
    out.truncate(end);
    let start = out.len() - out.trim_start_matches(is_python_space).len();
    out.drain(..start);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cmd(data: &[u8]) -> String {
        let mut s = String::from("stale");
        format_command(data, &mut s);
        s
    }

    #[test]
    fn nul_separated_arguments_join_with_spaces() {
        assert_eq!(
            cmd(b"python3\0-m\0robot_server\0"),
            "python3 -m robot_server"
        );
    }

    #[test]
    fn empty_arguments_are_kept_as_double_spaces() {
        assert_eq!(split_args(b"a\0\0b\0"), vec![&b"a"[..], b"", b"b"]);
        assert_eq!(cmd(b"a\0\0b\0"), "a  b");
        assert_eq!(cmd(b"a\0b\0\0"), "a b");
    }

    #[test]
    fn rewritten_titles_split_on_spaces() {
        // No trailing NUL: setproctitle style.
        assert_eq!(
            split_args(b"nginx: worker process"),
            vec![&b"nginx:"[..], b"worker", b"process"]
        );
        assert_eq!(cmd(b"nginx: worker process"), "nginx: worker process");
        // One NUL-terminated string with spaces.
        assert_eq!(
            split_args(b"postgres: writer \0"),
            vec![&b"postgres:"[..], b"writer", b""]
        );
        assert_eq!(cmd(b"postgres: writer \0"), "postgres: writer");
    }

    #[test]
    fn arguments_and_result_are_stripped_python_style() {
        assert_eq!(cmd(b" python3 \0\t-m\0x\n\0"), "python3 -m x");
        // U+001F is whitespace to Python, not to Rust's trim().
        assert_eq!(cmd(b"\x1fpython3\0"), "python3");
    }

    #[test]
    fn no_command_line_is_empty() {
        assert_eq!(cmd(b""), "");
        assert_eq!(cmd(b"\0"), "");
        assert_eq!(cmd(b" \0 \0"), "");
    }

    #[test]
    fn non_utf8_bytes_do_not_drop_the_process() {
        assert_eq!(cmd(b"prog\0\xff\xfe\0"), "prog \u{fffd}\u{fffd}");
    }
}
