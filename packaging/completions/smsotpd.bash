# bash completion for smsotpd                               -*- shell-script -*-
_smsotpd() {
    local cur prev
    cur="${COMP_WORDS[COMP_CWORD]}"
    prev="${COMP_WORDS[COMP_CWORD-1]}"
    case "$prev" in
    -c | --config)
        mapfile -t COMPREPLY < <(compgen -f -- "$cur")
        return 0
        ;;
    esac
    mapfile -t COMPREPLY < <(compgen -W '--config --check-config --help --version' -- "$cur")
}
complete -F _smsotpd smsotpd
