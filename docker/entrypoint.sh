#!/bin/sh
# Entry point of the Trellis image (docker/Dockerfile; docs/deployment.md).
#
# 1. Secrets come from files (Docker secrets), never from the environment:
#    TRELLIS_PASSPHRASE_FILE (online passphrase, always), and for init only
#    TRELLIS_ROOT_PASSPHRASE_FILE and TRELLIS_DATABASE_URL_FILE. Compose
#    bind-mounts a secret with the host file's mode, and Trellis refuses a
#    passphrase file that group or others may read, so each passphrase is
#    copied into a private file (0600 in a 0700 directory, on a tmpfs by
#    default) whose path is passed as --passphrase-file / --root-passphrase-file.
#    The database URL goes into the environment of `trellis init` alone.
# 2. TRELLIS_INIT=1 initialises an instance when the data directory holds none,
#    then serves; TRELLIS_INIT=only initialises and exits. Without it the
#    script waits (TRELLIS_WAIT_SECONDS) for trellis.json, which another
#    container makes in the shared data directory.
# 3. It execs `trellis serve --host TRELLIS_HOST --port TRELLIS_PORT` with the
#    container's arguments appended (e.g. --trusted-proxy CIDR, --workers N).
set -eu

say() { printf 'trellis-entrypoint: %s\n' "$*" >&2; }
fail() {
	say "$*"
	exit 1
}

export TRELLIS_DATA="${TRELLIS_DATA:-/var/lib/trellis}"
bin=${TRELLIS_BIN:-/app/bin/trellis.js}
secrets=${TRELLIS_SECRETS_DIR:-/dev/shm/trellis-secrets}
config="$TRELLIS_DATA/trellis.json"

# refuse_env NAME SET: a secret in the environment shows in `docker inspect` and
# reaches every child process; SET is non-empty when NAME is set.
refuse_env() {
	if [ -n "$2" ]; then
		fail "$1 is set in the environment, where docker inspect shows it; give it as a file in ${1}_FILE (a Docker secret)"
	fi
}
refuse_env TRELLIS_PASSPHRASE "${TRELLIS_PASSPHRASE+set}"
refuse_env TRELLIS_ROOT_PASSPHRASE "${TRELLIS_ROOT_PASSPHRASE+set}"
refuse_env TRELLIS_DATABASE_URL "${TRELLIS_DATABASE_URL+set}"

# private_copy VAR PATH NAME: copies the secret file PATH (named by the variable
# VAR, for messages) to $secrets/NAME, private to this user; sets $copied.
private_copy() {
	if [ ! -f "$2" ] || [ ! -r "$2" ]; then
		fail "$1=$2: no such file, or not readable by uid $(id -u)"
	fi
	(umask 077 && mkdir -p "$secrets")
	chmod 700 "$secrets"
	(umask 077 && cat -- "$2" >"$secrets/$3")
	copied="$secrets/$3"
}

if [ -z "${TRELLIS_PASSPHRASE_FILE:-}" ]; then
	fail "TRELLIS_PASSPHRASE_FILE is not set: name the file holding the online passphrase (a Docker secret, e.g. /run/secrets/trellis_passphrase)"
fi
private_copy TRELLIS_PASSPHRASE_FILE "$TRELLIS_PASSPHRASE_FILE" passphrase
passphrase_file=$copied

# `trellis init` with the root passphrase from its file (without one, init would
# generate it and print it into the container's log) and the database URL in the
# environment of init alone; init writes the URL into trellis.json, where serve
# and every later command read it.
init_instance() {
	if [ -z "${TRELLIS_ROOT_PASSPHRASE_FILE:-}" ]; then
		fail "TRELLIS_INIT needs TRELLIS_ROOT_PASSPHRASE_FILE (the root key's passphrase, apart from the online one); init would otherwise generate it and print it into the log"
	fi
	private_copy TRELLIS_ROOT_PASSPHRASE_FILE "$TRELLIS_ROOT_PASSPHRASE_FILE" root-passphrase
	set -- init --yes --passphrase-file "$passphrase_file" --root-passphrase-file "$copied"
	if [ -n "${TRELLIS_BASE_URL:-}" ]; then set -- "$@" --base-url "$TRELLIS_BASE_URL"; fi
	say "initialising a Trellis instance in $TRELLIS_DATA"
	status=0
	if [ -n "${TRELLIS_DATABASE_URL_FILE:-}" ]; then
		if [ ! -f "$TRELLIS_DATABASE_URL_FILE" ] || [ ! -r "$TRELLIS_DATABASE_URL_FILE" ]; then
			fail "TRELLIS_DATABASE_URL_FILE=$TRELLIS_DATABASE_URL_FILE: no such file, or not readable by uid $(id -u)"
		fi
		TRELLIS_DATABASE_URL=$(cat -- "$TRELLIS_DATABASE_URL_FILE") node "$bin" "$@" || status=$?
	else
		node "$bin" "$@" || status=$?
	fi
	# serve never opens the root key: its copy goes now, whether init worked or not.
	rm -f -- "$copied"
	[ "$status" -eq 0 ] || fail "trellis init failed (exit $status)"
}

wait_for_instance() {
	waited=0
	limit=${TRELLIS_WAIT_SECONDS:-300}
	say "waiting up to ${limit}s for $config (made by the container started with TRELLIS_INIT)"
	while [ ! -s "$config" ]; do
		if [ "$waited" -ge "$limit" ]; then
			fail "no Trellis instance in $TRELLIS_DATA after ${limit}s: start one container with TRELLIS_INIT=1 (or TRELLIS_INIT=only), or run trellis init"
		fi
		sleep 1
		waited=$((waited + 1))
	done
}

case "${TRELLIS_INIT:-}" in
1 | only)
	if [ -e "$config" ]; then
		say "$TRELLIS_DATA already holds a Trellis instance; not initialising"
	else
		init_instance
	fi
	if [ "$TRELLIS_INIT" = only ]; then exit 0; fi
	;;
'' | 0) [ -s "$config" ] || wait_for_instance ;;
*) fail "TRELLIS_INIT must be 1, only or 0, not \"$TRELLIS_INIT\"" ;;
esac

# The file variables name secrets: serve gets the private copy as a flag, nothing else.
unset TRELLIS_PASSPHRASE_FILE TRELLIS_ROOT_PASSPHRASE_FILE TRELLIS_DATABASE_URL_FILE
exec node "$bin" serve --host "${TRELLIS_HOST:-0.0.0.0}" --port "${TRELLIS_PORT:-8080}" --passphrase-file "$passphrase_file" "$@"
