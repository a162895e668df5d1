#!/usr/bin/env bash
# make test needs PostgreSQL and Redis on loopback. Start them with this machine's own commands if
# they are installed but down; otherwise fail with a message that says what to do.
set -u
pg_up() { pg_isready -q -h 127.0.0.1 -p 5432 2>/dev/null || (exec 3<>/dev/tcp/127.0.0.1/5432) 2>/dev/null; }
redis_up() { redis-cli -h 127.0.0.1 -p 6379 ping 2>/dev/null | grep -q PONG; }

if ! pg_up; then
  if command -v pg_ctlcluster >/dev/null 2>&1 && [ -d /etc/postgresql ]; then
    echo "PostgreSQL is down: starting it"
    pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -n1)" main start || true
    for _ in $(seq 1 30); do pg_up && break; sleep 1; done
  fi
fi
if ! redis_up; then
  if command -v redis-server >/dev/null 2>&1; then
    echo "Redis is down: starting it"
    mkdir -p /var/lib/redis /var/log/redis 2>/dev/null || true
    redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" --appendonly no \
      --dir /var/lib/redis --logfile /var/log/redis/ci.log \
      || redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no
    for _ in $(seq 1 30); do redis_up && break; sleep 1; done
  fi
fi
ok=1
pg_up || { echo "ERROR: PostgreSQL is not answering on 127.0.0.1:5432 (the tests need it: role postgres, trust auth). Install and start PostgreSQL 15."; ok=0; }
redis_up || { echo "ERROR: Redis is not answering on 127.0.0.1:6379 (the tests use databases 14 and 15). Install and start Redis 7."; ok=0; }
[ "$ok" = 1 ] || exit 1
psql -h 127.0.0.1 -U postgres -tAc "SELECT 1 FROM pg_database WHERE datname='parley'" postgres | grep -q 1 \
  || psql -h 127.0.0.1 -U postgres -qc "CREATE DATABASE parley" postgres
echo "PostgreSQL and Redis are up."
