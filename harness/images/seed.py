"""NoCloud seeds: the ISO 9660 volume `cidata` that cloud-init reads user-data and
meta-data from (cloud-init's NoCloud datasource). Made in Python with pycdlib, so no
genisoimage/xorriso is needed on the host.

The user-data sets root's password in `bootcmd` (run early, by every cloud-init
version from 2016 on) and in `chpasswd` too; the harness then logs in as root with it.
"""

from __future__ import annotations

import io
from pathlib import Path

import pycdlib


def user_data(password: str) -> str:
    return (
        "#cloud-config\n"
        "bootcmd:\n"
        f"  - [sh, -c, 'echo \"root:{password}\" | chpasswd; passwd -u root || true']\n"
        "chpasswd:\n"
        "  expire: false\n"
        "  list: |\n"
        f"    root:{password}\n"
        "disable_root: false\n"
        "ssh_pwauth: false\n"
    )


def meta_data(instance_id: str, hostname: str) -> str:
    return f"instance-id: {instance_id}\nlocal-hostname: {hostname}\n"


def write_seed(path: Path, instance_id: str, hostname: str, password: str) -> None:
    iso = pycdlib.PyCdlib()
    iso.new(interchange_level=3, joliet=3, rock_ridge="1.09", vol_ident="cidata")
    files = {"user-data": user_data(password), "meta-data": meta_data(instance_id, hostname)}
    for name, text in files.items():
        data = text.encode()
        short = name.upper().replace("-", "_") + ".;1"
        iso.add_fp(io.BytesIO(data), len(data), f"/{short}", rr_name=name, joliet_path=f"/{name}")
    iso.write(str(path))
    iso.close()
