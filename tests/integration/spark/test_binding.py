"""A local Spark driver keeps its web UI on loopback (Spark alone binds it to every interface)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

from tests.conftest import require

# Runs in a fresh process: SPARK_LOCAL_IP reaches Spark only when the process starts its JVM.
SCRIPT = """
import ipaddress, json, sys
from h3spark.config import SparkConfig
from h3spark.spark import get_spark

spark = get_spark(SparkConfig(master="local[1]", conf=json.loads(sys.argv[1])))
port = int(spark.sparkContext.uiWebUrl.rsplit(":", 1)[1])
addresses = []
for table in ("/proc/net/tcp", "/proc/net/tcp6"):
    for line in open(table).read().splitlines()[1:]:
        local, state = line.split()[1], line.split()[3]
        host, hex_port = local.split(":")
        if state == "0A" and int(hex_port, 16) == port:  # LISTEN
            raw = bytes.fromhex(host)
            raw = b"".join(raw[i:i + 4][::-1] for i in range(0, len(raw), 4))  # each 32-bit word is little-endian
            address = ipaddress.ip_address(raw)
            addresses.append(str(getattr(address, "ipv4_mapped", None) or address))
spark.stop()
print(json.dumps(addresses))
"""


def _ui_addresses(conf: dict) -> list[str]:
    done = subprocess.run([sys.executable, "-c", SCRIPT, json.dumps(conf)], capture_output=True, text=True,
                          timeout=300, cwd=Path(__file__).resolve().parents[3])
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_the_driver_ui_listens_on_loopback_only():
    require(shutil.which("java") is not None, "Java 17 is needed for Spark; install a JDK")
    require(Path("/proc/net/tcp").is_file(), "reading listening sockets needs Linux's /proc/net/tcp")
    addresses = _ui_addresses({"spark.ui.enabled": True})
    assert addresses, "the driver UI listens nowhere"
    assert all(address == "127.0.0.1" or address == "::1" for address in addresses), addresses
