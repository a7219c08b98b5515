#!/usr/bin/env python3
"""Drives `blocksim serve` over QMP with the Python standard library only.

    npx blocksim serve scenarios/backup.yaml --qmp unix:q.sock --clock step &
    python3 serve/examples/client.py q.sock

Starts a backup of node `disk` to node `target` (the nodes of
scenarios/backup.yaml), moves the simulated clock with
x-blocksim-clock-step until the job is gone, and prints every event with its
virtual timestamp. Works against a real QEMU too, but for the clock steps.
"""
import json
import socket
import sys


class Qmp:
    def __init__(self, path):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.connect(path)
        self.file = self.sock.makefile("rw", encoding="utf-8", newline="\n")
        self.events = []
        self.next_id = 1
        greeting = self.read()
        print("greeting:", json.dumps(greeting["QMP"]["version"]["qemu"]))
        self.cmd("qmp_capabilities")

    def read(self):
        line = self.file.readline()
        if not line:
            raise EOFError("QMP connection closed")
        return json.loads(line)

    def cmd(self, execute, **arguments):
        msg_id = self.next_id
        self.next_id += 1
        msg = {"execute": execute, "id": msg_id}
        if arguments:
            msg["arguments"] = arguments
        self.file.write(json.dumps(msg) + "\n")
        self.file.flush()
        while True:
            reply = self.read()
            if "event" in reply:
                self.events.append(reply)
                ts = reply["timestamp"]
                print(f'{ts["seconds"]}.{ts["microseconds"]:06d} {reply["event"]} {json.dumps(reply["data"])}')
            elif reply.get("id") == msg_id:
                if "error" in reply:
                    raise RuntimeError(f'{execute}: {reply["error"]["class"]}: {reply["error"]["desc"]}')
                return reply["return"]


def main():
    qmp = Qmp(sys.argv[1] if len(sys.argv) > 1 else "q.sock")
    qmp.cmd("blockdev-backup", **{"job-id": "py0", "device": "disk", "target": "target", "sync": "full"})
    for _ in range(10000):
        if not qmp.cmd("query-jobs"):
            break
        qmp.cmd("x-blocksim-clock-step", ns=10_000_000)
    done = [e for e in qmp.events if e["event"] == "BLOCK_JOB_COMPLETED" and e["data"]["device"] == "py0"]
    print("completed:", json.dumps(done[0]["data"]) if done else "no")


if __name__ == "__main__":
    main()
