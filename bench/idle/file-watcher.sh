#!/bin/bash
# The content root's file watcher, counted: runs `gatehouse serve` from <build dir> in its own data directory as its
# working directory (as the systemd unit does), heartbeats every second (a SQLite write each), then counts the system
# calls of the ".NET File Watch" thread and of the whole process over 30 s with strace (docs/benchmarks.md, "Idle CPU
# of gatehouse serve", the file watcher). Usage: bench/idle/file-watcher.sh <build dir> <label>
set -u
b=$1; label=$2
d=$(mktemp -d /tmp/fwdata.XXXX); cd $d
p1=$(python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])')
p2=$(python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])')
Gatehouse__Cluster__HeartbeatInterval=00:00:01 dotnet $b/gatehouse.dll serve --data $d --urls https://127.0.0.1:$p1 --rdp-port $p2 > $d/serve.log 2>&1 &
pid=$!
for i in $(seq 1 120); do curl -sk -o /dev/null https://127.0.0.1:$p1/healthz && break; sleep 1; done
sleep 10
watch_tids=$(for t in /proc/$pid/task/*; do c=$(cat $t/comm); case "$c" in *File*|*Watch*) echo ${t##*/};; esac; done)
echo "$label: watcher threads: $watch_tids ($(for t in $watch_tids; do cat /proc/$pid/task/$t/comm; done | tr '\n' ' '))"
timeout -s INT 30 strace -f -p $pid -o /tmp/fwtrace.$label 2>/dev/null
total=$(wc -l < /tmp/fwtrace.$label)
for t in $watch_tids; do echo "$label: thread $t syscalls in 30 s: $(grep -c "^$t " /tmp/fwtrace.$label)"; done
echo "$label: all threads syscalls in 30 s: $total"
kill $pid; wait $pid 2>/dev/null
rm -rf $d
