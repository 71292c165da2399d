#!/usr/bin/env bash
# packaging/deb/build.sh - build the smsotp Debian package.
#
#   bash packaging/deb/build.sh [--no-build] [--out DIR] [--lintian]
#
# A transparent staged build: `cargo build --release` of the three
# artefacts, every file installed into a staging tree with an explicit
# mode, then `dpkg-deb --root-owner-group --build`. No debhelper, no
# debian/ directory; what ends up in the package is exactly what this
# script installs (list it with `dpkg-deb -c`).
#
#   --no-build   use the existing target/release artefacts
#   --out DIR    where the .deb goes (default target/deb)
#   --lintian    run lintian on the result when it is installed (fails the
#                build on errors; warnings are printed)
#
# Prints the path of the .deb on its last line. Needs: cargo, dpkg-deb,
# dpkg-shlibdeps (dpkg-dev), strip (binutils), gzip.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
PKG="$ROOT/packaging"
OUT="$ROOT/target/deb"
BUILD=1
LINTIAN=0
BUILD_TIMEOUT="${SMSOTP_BUILD_TIMEOUT:-1800}"

while (($#)); do
    case "$1" in
    --no-build) BUILD=0 ;;
    --out)
        OUT="$2"
        shift
        ;;
    --lintian) LINTIAN=1 ;;
    -h | --help)
        sed -n '2,20p' "$0"
        exit 0
        ;;
    *)
        echo "build.sh: unknown argument: $1" >&2
        exit 2
        ;;
    esac
    shift
done

die() {
    echo "build.sh: $*" >&2
    exit 1
}

for tool in dpkg-deb dpkg-shlibdeps strip gzip; do
    command -v "$tool" >/dev/null 2>&1 || die "$tool not found (apt-get install dpkg-dev binutils gzip)"
done

cd "$ROOT"
UPSTREAM="$(sed -n '/^\[workspace.package\]/,/^\[/s/^version *= *"\(.*\)"/\1/p' Cargo.toml)"
[[ -n "$UPSTREAM" ]] || die "cannot read the workspace version from Cargo.toml"
VERSION="${UPSTREAM}-1"
ARCH="$(dpkg --print-architecture)"
MULTIARCH="$(dpkg-architecture -qDEB_HOST_MULTIARCH 2>/dev/null || gcc -print-multiarch 2>/dev/null || echo x86_64-linux-gnu)"
# Reproducible timestamps: the last commit, else now.
SOURCE_DATE_EPOCH="${SOURCE_DATE_EPOCH:-$(git -C "$ROOT" log -1 --format=%ct 2>/dev/null || date +%s)}"
export SOURCE_DATE_EPOCH

if ((BUILD)); then
    timeout --kill-after=30s "$BUILD_TIMEOUT" \
        cargo build --release --locked -p pam_smsotp -p smsotpd -p smsotpctl </dev/null
fi
REL="$ROOT/target/release"
for f in libpam_smsotp.so smsotpd smsotpctl; do
    [[ -f "$REL/$f" ]] || die "$REL/$f missing (build first, or drop --no-build)"
done

STAGE="$(mktemp -d "${TMPDIR:-/tmp}/smsotp-deb.XXXXXX")"
trap 'rm -rf "$STAGE"' EXIT
D="$STAGE/root"
mkdir -p "$D"
umask 022

inst() { # MODE SRC DST
    install -D -m "$1" "$2" "$D$3"
}

# Programs. strip --strip-unneeded keeps the dynamic symbols PAM needs.
inst 0755 "$REL/smsotpd" /usr/sbin/smsotpd
inst 0755 "$REL/smsotpctl" /usr/sbin/smsotpctl
inst 0644 "$REL/libpam_smsotp.so" "/lib/$MULTIARCH/security/pam_smsotp.so"
strip --strip-unneeded --remove-section=.comment --remove-section=.note \
    "$D/usr/sbin/smsotpd" "$D/usr/sbin/smsotpctl" "$D/lib/$MULTIARCH/security/pam_smsotp.so"

# systemd unit.
inst 0644 "$PKG/systemd/smsotpd.service" /lib/systemd/system/smsotpd.service
inst 0644 "$PKG/systemd/smsotpd.socket" /lib/systemd/system/smsotpd.socket
inst 0644 "$PKG/systemd/smsotpd-root.socket" /lib/systemd/system/smsotpd-root.socket

# Configuration: conffiles, root only (provider tokens, phone numbers).
inst 0600 "$ROOT/config/examples/smsotpd.toml" /etc/smsotp/smsotpd.toml
cat >"$STAGE/users.toml" <<'EOF'
# /etc/smsotp/users.toml - login name = mobile number in E.164 form
# (+, country code, number). After a change: systemctl reload smsotpd
# (or kill -HUP the daemon). Example:
#   alice = "+15551234567"
[users]
EOF
inst 0600 "$STAGE/users.toml" /etc/smsotp/users.toml
chmod 0755 "$D/etc/smsotp"

# pam-auth-update profile (Default: no).
inst 0644 "$PKG/pam-configs/smsotp" /usr/share/pam-configs/smsotp

# Documentation and examples.
DOC=/usr/share/doc/smsotp
inst 0644 "$PKG/deb/copyright" "$DOC/copyright"
inst 0644 "$ROOT/README.md" "$DOC/README.md"
inst 0644 "$ROOT/docs/CONTRACT.md" "$DOC/CONTRACT.md"
[[ -f "$ROOT/docs/OPERATIONS.md" ]] && inst 0644 "$ROOT/docs/OPERATIONS.md" "$DOC/OPERATIONS.md"
for f in "$ROOT"/config/examples/*.toml; do
    inst 0644 "$f" "$DOC/examples/$(basename "$f")"
done
inst 0644 "$PKG/pam.d/example-sshd" "$DOC/examples/pam.d-sshd"
inst 0644 "$PKG/pam.d/example-sudo" "$DOC/examples/pam.d-sudo"
inst 0644 "$PKG/sshd_config.d/smsotp.conf" "$DOC/examples/sshd_config.d-smsotp.conf"
sed -e "s/@VERSION@/$VERSION/" \
    -e "s/@DATE@/$(date -u -R -d "@$SOURCE_DATE_EPOCH")/" "$PKG/deb/changelog" |
    gzip -9n >"$STAGE/changelog.Debian.gz"
inst 0644 "$STAGE/changelog.Debian.gz" "$DOC/changelog.Debian.gz"

# Man pages.
for page in smsotpd.8 smsotpctl.8 pam_smsotp.8; do
    gzip -9n <"$PKG/man/$page" >"$STAGE/$page.gz"
    inst 0644 "$STAGE/$page.gz" "/usr/share/man/man8/$page.gz"
done

# Shell completions: smsotpctl's come from clap, smsotpd's are hand-written.
"$REL/smsotpctl" completions bash >"$STAGE/smsotpctl.bash"
"$REL/smsotpctl" completions zsh >"$STAGE/_smsotpctl"
inst 0644 "$STAGE/smsotpctl.bash" /usr/share/bash-completion/completions/smsotpctl
inst 0644 "$PKG/completions/smsotpd.bash" /usr/share/bash-completion/completions/smsotpd
inst 0644 "$STAGE/_smsotpctl" /usr/share/zsh/vendor-completions/_smsotpctl
inst 0644 "$PKG/completions/_smsotpd" /usr/share/zsh/vendor-completions/_smsotpd

# Control area.
mkdir -p "$D/DEBIAN"
install -m 0755 "$PKG/deb/postinst" "$PKG/deb/prerm" "$PKG/deb/postrm" "$D/DEBIAN/"
install -m 0644 "$PKG/deb/conffiles" "$D/DEBIAN/conffiles"

# Depends from the ELF dependencies (dpkg-shlibdeps wants a debian/control);
# control.in adds what no ELF shows: ca-certificates, the trust store the
# HTTP providers' client loads (it refuses to start without one).
mkdir -p "$STAGE/shlibs/debian"
printf 'Source: smsotp\n\nPackage: smsotp\nArchitecture: any\n' >"$STAGE/shlibs/debian/control"
DEPENDS="$(cd "$STAGE/shlibs" && dpkg-shlibdeps -O \
    "$D/usr/sbin/smsotpd" "$D/usr/sbin/smsotpctl" "$D/lib/$MULTIARCH/security/pam_smsotp.so" 2>/dev/null |
    sed -n 's/^shlibs:Depends=//p')"
[[ -n "$DEPENDS" ]] || die "dpkg-shlibdeps found no dependencies"

INSTALLED_SIZE="$(du -sk --exclude=DEBIAN "$D" | cut -f1)"
sed -e "s/@VERSION@/$VERSION/" -e "s/@ARCH@/$ARCH/" \
    -e "s/@INSTALLED_SIZE@/$INSTALLED_SIZE/" -e "s/@DEPENDS@/$DEPENDS/" \
    "$PKG/deb/control.in" >"$D/DEBIAN/control"
(cd "$D" && find . -path ./DEBIAN -prune -o -type f -printf '%P\0' | LC_ALL=C sort -z |
    xargs -0 md5sum) >"$D/DEBIAN/md5sums"
chmod 0644 "$D/DEBIAN/md5sums"

# Clamp every mtime for a reproducible archive.
find "$D" -exec touch -h -d "@$SOURCE_DATE_EPOCH" {} +

mkdir -p "$OUT"
DEB="$OUT/smsotp_${VERSION}_${ARCH}.deb"
dpkg-deb --root-owner-group -Zxz --build "$D" "$DEB" >/dev/null

if ((LINTIAN)); then
    if command -v lintian >/dev/null 2>&1; then
        lintian --fail-on error --suppress-tags-from-file "$PKG/deb/lintian-suppress" "$DEB" >&2
    else
        echo "build.sh: lintian not installed; skipped" >&2
    fi
fi

printf 'built %s (%s bytes, installed size %s KiB)\n' "$DEB" "$(stat -c %s "$DEB")" "$INSTALLED_SIZE" >&2
echo "$DEB"
