# Whether the current directory holds these files and directories as the deploy would leave
# them: exit 0 when every file of the sha256sum list on stdin has that checksum and the owner,
# group and mode $ICTQ_FILES_OWNER (as "user:group:640"), and every directory listed in
# $ICTQ_DIRS (one per line) has $ICTQ_DIRS_OWNER; exit 1 otherwise (then the deploy copies them).
set -o pipefail
sums=$(cat)
[ -n "$sums" ] || exit 1
printf '%s\n' "$sums" | sha256sum --check --status --strict - || exit 1
modes() { xargs --no-run-if-empty -d '\n' stat -c '%U:%G:%a' --; }
files=$(printf '%s\n' "$sums" | cut -c67- | modes) || exit 1
if printf '%s\n' "$files" | grep -qvxF -- "$ICTQ_FILES_OWNER"; then exit 1; fi
if [ -n "$ICTQ_DIRS" ]; then
  dirs=$(printf '%s\n' "$ICTQ_DIRS" | modes) || exit 1
  if printf '%s\n' "$dirs" | grep -qvxF -- "$ICTQ_DIRS_OWNER"; then exit 1; fi
fi
exit 0
