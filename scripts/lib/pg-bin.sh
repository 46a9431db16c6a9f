# shellcheck shell=bash
# Where the PostgreSQL server binaries (pg_ctl, initdb, postgres) are: the one rule that
# scripts/ensure-deps and scripts/pg-start share, sourced rather than run because both
# work before anything is built (ensure-deps installs PostgreSQL on a fresh machine).
# pgflow-pgtemp's `find_bin_dir` is the same rule in Rust; its test
# `shell_and_rust_find_the_same_bin_dir` runs this function and compares.
#
# In order, the first directory holding all three:
#   1. $PGFLOW_PG_BIN;
#   2. the real directory (symlinks resolved) of each pg_ctl on PATH, in PATH order;
#   3. `pg_config --bindir`;
#   4. the newest /usr/lib/postgresql/<major>/bin (Debian's layout).

pg_has_server() {
  [[ -x $1/pg_ctl && -x $1/initdb && -x $1/postgres ]]
}

# Prints the directory; fails (status 1, nothing printed) when there is none.
pg_bin_dir() {
  if [[ -n ${PGFLOW_PG_BIN:-} ]] && pg_has_server "$PGFLOW_PG_BIN"; then
    echo "$PGFLOW_PG_BIN"; return 0
  fi
  local dir real
  local -a path_dirs
  IFS=: read -r -a path_dirs <<<"${PATH:-}"
  for dir in "${path_dirs[@]}"; do
    [[ -n $dir && -f $dir/pg_ctl ]] || continue
    real=$(dirname "$(readlink -f "$dir/pg_ctl")")
    if pg_has_server "$real"; then echo "$real"; return 0; fi
  done
  if dir=$(pg_config --bindir 2>/dev/null) && pg_has_server "$dir"; then
    echo "$dir"; return 0
  fi
  local best="" best_major=-1 major
  for dir in /usr/lib/postgresql/*/; do
    major=$(basename "$dir")
    [[ $major =~ ^[0-9]+$ ]] || continue
    if ((10#$major > best_major)) && pg_has_server "${dir}bin"; then
      best=${dir}bin; best_major=$((10#$major))
    fi
  done
  [[ -n $best ]] || return 1
  echo "$best"
}
