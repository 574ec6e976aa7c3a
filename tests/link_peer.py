"""A small Ableton Link peer for the tests, run apart from livelatent in the same private
network namespace (``private_net.sh``). It joins at 120 bpm, quantum 4, and writes
``ns beat tempo peers`` to LOG every 2 ms, on the clock Link keeps. It reads COMMANDS (a file
the test appends to): ``tempo BPM`` changes the session's tempo, ``end`` ends it (so does a
minute and a half)."""

import asyncio
import sys
import time
from pathlib import Path

import aalink

LONGEST_S = 90.0


async def main(commands: Path, log: Path) -> None:
    link = aalink.Link(120.0)
    link.quantum = 4
    link.enabled = True
    done, began = 0, time.monotonic()
    with open(log, "w") as out:
        while time.monotonic() - began < LONGEST_S:
            lines = commands.read_text().splitlines() if commands.exists() else []
            for line in lines[done:]:
                words = line.split()
                if words == ["end"]:
                    link.enabled = False
                    return
                if words[:1] == ["tempo"]:
                    link.tempo = float(words[1])
            done = len(lines)
            ns, beat = link.time.total_seconds() * 1e9, link.beat
            out.write(f"{ns:.0f} {beat:.9f} {link.tempo:.6f} {link.num_peers}\n")
            out.flush()
            await asyncio.sleep(0.002)
    link.enabled = False


asyncio.run(main(Path(sys.argv[1]), Path(sys.argv[2])))
