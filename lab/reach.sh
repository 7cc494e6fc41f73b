#!/bin/sh
# lab/reach.sh USER PATH...: let USER search (x) every directory from / down to each PATH, by
# an ACL entry for USER alone where it cannot already (e.g. /root, 0700, above a checkout or a
# pyenv build). Nothing is made readable or listable; what USER can already reach is untouched.
set -eu
user=$1; shift
for target in "$@"; do
    dir=
    for part in $(echo "$target" | tr '/' ' '); do
        dir="$dir/$part"
        [ -d "$dir" ] || break
        if ! setpriv --reuid="$user" --regid="$user" --clear-groups test -x "$dir"; then
            setfacl -m "u:$user:x" "$dir"
            echo "lab/reach.sh: $user may now search $dir (ACL u:$user:x)"
        fi
    done
done
