#!/bin/sh
# The example application of docker-compose.yml. Like a real application
# it loads its settings at start and again on SIGHUP; it reports what it
# loaded, names and lengths, never values.
#
#   app.sh FILE   settings from FILE (KEY=VALUE lines), as injector renders
#                 them beside it (the sidecar pattern)
#   app.sh        settings from its environment, as injector run passes
#                 them (the wrapper pattern)
#
# SIGTERM stops it (exit 0).
file=$1

load() {
	if [ -n "$file" ]; then
		if [ ! -r "$file" ]; then
			echo "app: $1: cannot read $file" >&2
			return 1
		fi
		from="$file ($(grep -c '^[A-Za-z_][A-Za-z0-9_]*=' "$file") settings)"
		password=$(sed -n 's/^DB_PASSWORD=//p' "$file")
	else
		from="the environment"
		password=$DB_PASSWORD
	fi
	echo "app: $1: DB_PASSWORD has ${#password} characters, from $from"
}

trap 'load "reloaded on SIGHUP"' HUP
trap 'echo "app: stopping on SIGTERM"; exit 0' TERM
load started || exit 1
while :; do
	sleep 3600 &
	wait $!
	kill $! 2>/dev/null
done
