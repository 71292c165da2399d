use super::*;

fn show(argv: &[&str]) -> Result<String, ArgvError> {
    let argv: Vec<&[u8]> = argv.iter().map(|a| a.as_bytes()).collect();
    describe(&argv, false)
}

fn ok(argv: &[&str]) -> String {
    show(argv).unwrap_or_else(|e| panic!("{argv:?}: {e}"))
}

#[test]
fn a_plain_command_is_shown_as_typed() {
    assert_eq!(ok(&["sudo", "/usr/bin/true"]), "/usr/bin/true");
    assert_eq!(
        ok(&["sudo", "systemctl", "restart", "nginx"]),
        "systemctl restart nginx"
    );
    // The command's own options are the command's, not sudo's.
    assert_eq!(ok(&["sudo", "ls", "-l", "-u", "x"]), "ls -l -u x");
}

#[test]
fn options_with_and_without_arguments_are_skipped() {
    let cases: &[&[&str]] = &[
        &["sudo", "-k", "-S", "/usr/bin/id", "-u"],
        &["sudo", "-kS", "/usr/bin/id", "-u"],
        &["sudo", "-p", "Password please: ", "/usr/bin/id", "-u"],
        &["sudo", "-pX", "-D", "/tmp", "-C", "5", "/usr/bin/id", "-u"],
        &["sudo", "-kp", "-u", "/usr/bin/id", "-u"],
        &["sudo", "--prompt", "-x", "--chdir=/", "/usr/bin/id", "-u"],
        &["sudo", "--non-int", "--reset", "/usr/bin/id", "-u"],
        &["sudo", "--", "/usr/bin/id", "-u"],
        &["sudo", "-k", "--", "/usr/bin/id", "-u"],
        &["/usr/bin/sudo", "-hbastion", "/usr/bin/id", "-u"],
        &["sudo", "-h", "bastion", "/usr/bin/id", "-u"],
        &["sudo", "--host=bastion", "/usr/bin/id", "-u"],
        &["sudo", "--preserve-env=PATH", "/usr/bin/id", "-u"],
    ];
    for argv in cases {
        assert_eq!(ok(argv), "/usr/bin/id -u", "{argv:?}");
    }
}

#[test]
fn who_the_command_runs_as_is_kept() {
    assert_eq!(ok(&["sudo", "-u", "postgres", "psql"]), "-u postgres psql");
    assert_eq!(
        ok(&["sudo", "-upostgres", "-gadm", "psql"]),
        "-u postgres -g adm psql"
    );
    assert_eq!(
        ok(&["sudo", "--user=postgres", "--group", "adm", "psql"]),
        "-u postgres -g adm psql"
    );
    assert_eq!(ok(&["sudo", "-u", "#0", "id"]), "-u '#0' id");
}

#[test]
fn shells_say_so() {
    assert_eq!(ok(&["sudo", "-i"]), "-i (login shell)");
    assert_eq!(ok(&["sudo", "--login"]), "-i (login shell)");
    assert_eq!(ok(&["sudo", "-s"]), "-s (shell)");
    // sudo with no command at all runs the user's shell (implied -s).
    assert_eq!(ok(&["sudo"]), "(shell)");
    assert_eq!(ok(&["sudo", "-u", "pg", "-i"]), "-u pg -i (login shell)");
    assert_eq!(ok(&["sudo", "-i", "whoami"]), "-i whoami");
}

#[test]
fn sudoedit_and_modes() {
    assert_eq!(
        ok(&["/usr/bin/sudoedit", "/etc/hosts"]),
        "sudoedit /etc/hosts"
    );
    assert_eq!(ok(&["sudo", "-e", "/etc/hosts"]), "sudoedit /etc/hosts");
    assert_eq!(
        ok(&["sudo", "--edit", "-u", "www", "a", "b"]),
        "sudoedit -u www a b"
    );
    assert_eq!(ok(&["sudo", "-v"]), "-v");
    assert_eq!(ok(&["sudo", "-l"]), "-l");
    assert_eq!(ok(&["sudo", "-l", "/usr/bin/id"]), "-l /usr/bin/id");
    // "-h" followed by an option is help, and the option still counts.
    assert_eq!(ok(&["sudo", "-h", "-k"]), "-h");
}

#[test]
fn environment_values_are_hidden() {
    assert_eq!(
        ok(&["sudo", "PGPASSWORD=hunter2", "-u", "pg", "psql"]),
        "-u pg PGPASSWORD=*** psql"
    );
    // After "--" and after the command, NAME=value is an argument, and a
    // word starting with "/" is never a variable.
    assert_eq!(ok(&["sudo", "--", "A=1", "x"]), "A=1 x");
    assert_eq!(ok(&["sudo", "/bin/env", "A=1"]), "/bin/env A=1");
    assert_eq!(ok(&["sudo", "/a=b"]), "/a=b");
}

#[test]
fn word_boundaries_cannot_be_faked() {
    assert_eq!(
        ok(&["sudo", "/usr/bin/true", "a b", "it's", ""]),
        r"/usr/bin/true 'a b' 'it'\''s' ''"
    );
    assert_eq!(
        ok(&["sudo", "/usr/bin/true", "; rm -rf /"]),
        "/usr/bin/true '; rm -rf /'"
    );
}

#[test]
fn hostile_bytes_become_visible_placeholders() {
    assert_eq!(
        ok(&["sudo", "/usr/bin/true", "x\ny", "\x1b[2J", "\r\t\x7f"]),
        "/usr/bin/true 'x?y' '?[2J' '???'"
    );
    // Bidi override and zero-width space: a phone would reorder or hide.
    assert_eq!(
        ok(&["sudo", "/usr/bin/true", "a\u{202E}b\u{200B}c"]),
        "/usr/bin/true 'a?b?c'"
    );
    let argv: [&[u8]; 3] = [b"sudo", b"/usr/bin/\xff\xfe", b"\xc3"];
    assert_eq!(
        describe(&argv, false).unwrap(),
        "'/usr/bin/\u{FFFD}\u{FFFD}' '\u{FFFD}'"
    );
}

#[test]
fn huge_command_lines_are_cut_and_marked() {
    let long = "A".repeat(200_000);
    let shown = ok(&["sudo", "/usr/bin/true", &long]);
    assert_eq!(shown.chars().count(), MAX_SHOWN);
    assert!(shown.starts_with("/usr/bin/true AAAA"));
    assert!(shown.ends_with(CUT));
    let wide = "ü".repeat(500);
    let shown = ok(&["sudo", "/usr/bin/echo", &wide]);
    assert_eq!(shown.chars().count(), MAX_SHOWN);
    // Many words, each short.
    let many: Vec<&str> = std::iter::once("sudo").chain(["x"; 10_000]).collect();
    assert_eq!(ok(&many).chars().count(), MAX_SHOWN);
    // 120 exactly is not cut.
    let exact = "b".repeat(MAX_SHOWN - 2);
    assert_eq!(ok(&["sudo", "a", &exact]), format!("a {exact}"));
}

#[test]
fn a_read_cut_short_is_marked_or_refused() {
    let argv: [&[u8]; 3] = [b"sudo", b"/usr/bin/true", b"partial-wor"];
    assert_eq!(describe(&argv, true).unwrap(), "/usr/bin/true ...");
    // Cut while still in the options: the command is unknown.
    let argv: [&[u8]; 3] = [b"sudo", b"A=1", b"B="];
    assert_eq!(describe(&argv, true), Err(ArgvError::Truncated));
}

#[test]
fn lines_sudo_itself_rejects_describe_nothing() {
    assert_eq!(show(&[]), Err(ArgvError::Empty));
    for argv in [
        &["sudo", "-x", "id"][..],
        &["sudo", "-u"],
        &["sudo", "--pre", "id"],
        &["sudo", "--bogus", "id"],
        &["sudo", "--login=yes"],
        &["sudo", "--user"],
    ] {
        assert!(matches!(show(argv), Err(ArgvError::Usage(_))), "{argv:?}");
    }
}

#[test]
fn a_process_that_is_not_sudo_shows_nothing() {
    // The test binary may well run as root, but it is not the setuid sudo.
    assert!(!running_sudo());
    assert_eq!(from_proc(), None);
}
