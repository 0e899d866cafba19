# shellcheck shell=bash
# Sourced by the scripts: with --help anywhere in the arguments, print the script's header comment and exit.
for argument in "$@"; do
    if [ "$argument" = "--help" ] || [ "$argument" = "-h" ]; then
        printf 'usage: bash %s\n\n' "${BASH_SOURCE[1]}"
        sed -n '2,/^[^#]/{/^#/s/^# \{0,1\}//p}' "${BASH_SOURCE[1]}"
        exit 0
    fi
done
