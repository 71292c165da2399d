//! The package under a real systemd (PID 1 of a Debian 12 container).
use smsotp_tests::container::{self, Container};

#[test]
fn boots() {
    if container::skip("boots") {
        return;
    }
    let c = Container::boot("unit");
    eprintln!(
        "{}",
        c.sh("systemctl --version | head -1; systemctl is-system-running || true")
    );
}
