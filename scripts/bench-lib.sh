# What the benchmark scripts share; sourced, not run.

# Production-like: RDS gives InnoDB about 75% of the instance's memory, where
# MariaDB's default is 128 MiB; 4 GiB is a quarter of a small RDS instance.
# Only ever raised here, never lowered (the server is shared).
raise_buffer_pool() { # MiB
  local current wanted
  current=$(mysql -uroot -N -e "SELECT @@innodb_buffer_pool_size")
  wanted=$(( $1 * 1024 * 1024 ))
  if [ "$wanted" -gt "$current" ]; then
    mysql -uroot -e "SET GLOBAL innodb_buffer_pool_size = $wanted"
  fi
}

# A dropped database's pages stay in the buffer pool until evicted: a run
# after a large one found the pool full and loaded 10-30% slower. Shrinking
# the pool and growing it back empties it, so each run starts alike.
empty_buffer_pool() {
  local size
  size=$(mysql -uroot -N -e "SELECT @@innodb_buffer_pool_size")
  for target in 134217728 "$size"; do
    mysql -uroot -e "SET GLOBAL innodb_buffer_pool_size = $target"
    for _ in $(seq 600); do
      case "$(mysql -uroot -N -e "SHOW STATUS LIKE 'Innodb_buffer_pool_resize_status'" | cut -f2)" in
        ""|*Completed*) break ;;
      esac
      sleep 0.1
    done
  done
}
