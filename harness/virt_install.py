"""The domain XML of a virt-install cell: what `virt-install --print-xml` (Debian's
virtinst) makes for an aarch64 guest with its own defaults, booted through libvirt
like any libvirt cell (harness/libvirt_boot.py).

virt-install picks the firmware (`--boot uefi`: `<os firmware='efi'>`, libvirt then
picks AAVMF from QEMU's firmware descriptors, so a cell names only `none` or `aavmf`),
the CPU model (cortex-a57 under TCG), fourteen pcie-root-ports and a guest-agent channel
(a virtio-serial device). The harness only names the domain, gives it the cell's
overlay and nvram, a user-mode NIC (no libvirt network is assumed), a console on a
pty, on_reboot=destroy (a reset ends the run, as -no-reboot does for a direct cell),
and for UEFI no wait at the firmware's boot menu (firmware.py's UEFI_MENU_WAIT_MS, as
every UEFI cell has). `virt-install-mmio` forces `address.type=virtio-mmio` on the
disk, NIC and rng, as a tool forcing mmio would; devices virt-install adds by itself
stay where it puts them.
Options: virt-install(1), "--boot", "--disk", "--network", "address.type".
"""

from __future__ import annotations

import copy
import shutil
import subprocess
import xml.etree.ElementTree as ET
from pathlib import Path

from harness.devices import launcher, transport
from harness.errors import CellSkipped, InfraError
from harness.firmware import UEFI_MENU_WAIT_MS
from harness.images.digest import file_digest
from harness.model import HOST_FIRMWARE, NO_FIRMWARE, Cell, Firmware, Image

INSTALL = "apt-get install virtinst"
# The firmware a virt-install cell can be booted with: `--boot uefi` leaves the pick to
# libvirt (its firmware autoselection, from QEMU's descriptors), so no named build or
# CODE file can be honoured; nor aavmf-noacpi (measured with libvirt 9.0: without
# <acpi/> it passes QEMU no acpi=off on aarch64, and the guest still gets ACPI), nor
# U-Boot (virt-install knows no such boot).
FIRMWARE = (NO_FIRMWARE, HOST_FIRMWARE)


def firmware_problem(cell: Cell) -> str:
    """Why `cell`, a virt-install cell, cannot boot its firmware ("" when it can, and
    for a cell of any other launcher): one line naming the cell. Checked before the
    image or the firmware is made (runner.py), so such a cell is `impossible`."""
    if launcher(cell.transport) != "virt-install" or cell.firmware in FIRMWARE:
        return ""
    return (
        f"cell {cell}: virt-install lets libvirt pick the firmware, so firmware "
        f"{cell.firmware} cannot be booted (a virt-install cell takes {' or '.join(FIRMWARE)})"
    )


def picks_firmware(cell: Cell, firmware: Firmware) -> bool:
    """Whether libvirt, not the cell, picks the firmware `cell` boots (a UEFI
    virt-install cell: firmware_used says afterwards which it was)."""
    return launcher(cell.transport) == "virt-install" and firmware.is_uefi


def virt_install_argv(
    cell: Cell,
    image: Image,
    firmware: Firmware,
    target: str,
    name: str,
    overlay: Path | None,
    nvram: Path | None,
    extra_disks: tuple[Path, ...] = (),
    smp: int = 1,
) -> list[str]:
    """The virt-install command line that prints the cell's domain XML (a pure
    function): mmio forced where the cell's transport is on mmio (devices.py), `smp`
    guest CPUs.
    Raises KeyError for a transport not in the table."""
    address = ",address.type=virtio-mmio" if transport(cell.transport).bus == "mmio" else ""
    argv = [
        "virt-install", "--connect", target, "--print-xml", "--name", name,
        "--arch", "aarch64", "--machine", cell.machine, "--memory", str(image.memory_mib),
        "--vcpus", str(smp), "--import", "--osinfo", "detect=on,require=off",
        "--graphics", "none", "--console", "pty,target.type=serial",
        "--network", f"user,model=virtio{address}", "--rng", f"/dev/urandom{address}",
        "--events", "on_reboot=destroy",
    ]  # fmt: skip
    if overlay is not None:
        argv += ["--disk", f"path={overlay},format=qcow2,bus=virtio{address}"]
    for extra in extra_disks:
        argv += ["--disk", f"path={extra},format=raw,bus=virtio,readonly=on{address}"]
    if firmware.is_uefi:
        menu = f"bootmenu.enable=on,bootmenu.timeout={UEFI_MENU_WAIT_MS}"
        argv += ["--boot", f"uefi,nvram={nvram},{menu}" if nvram is not None else f"uefi,{menu}"]
        argv += [] if firmware.acpi else ["--features", "acpi=off"]
    else:
        kernel = f"kernel={image.kernel}" + (f",initrd={image.initrd}" if image.initrd else "")
        argv += ["--boot", kernel + (f',kernel_args="{image.append}"' if image.append else "")]
        # virt-install 4.1 asks for ACPI here too, which libvirt 9.0 refuses without
        # UEFI on aarch64 ("ACPI requires UEFI on this architecture")
        argv += ["--features", "acpi=off"]
    return argv


def virt_install_xml(argv: list[str]) -> str:
    """Runs `argv` (virt_install_argv) and returns the XML it prints. Raises
    CellSkipped when virt-install is not installed, InfraError when it fails."""
    if shutil.which(argv[0]) is None:
        raise CellSkipped(f"virt-install is not installed (fix: {INSTALL})")
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=60, check=False)
    if proc.returncode != 0:
        first = (proc.stderr.strip().splitlines() or ["no message"])[-1]
        raise InfraError(f"virt-install --print-xml failed: {first}")
    return proc.stdout


def firmware_used(live_xml: str, requested: Firmware) -> Firmware:
    """The firmware libvirt booted a virt-install cell's domain with: the `<os><loader>`
    and `<nvram template=...>` of the domain XML libvirt reports once the domain
    started (libvirt's formatdomain.html, "BIOS bootloader": its firmware autoselection
    fills them in), the loader's sha256 as the digest; `requested` (the cell's own) for
    a cell that is not UEFI. Raises OSError when the loader cannot be read."""
    root = ET.fromstring(live_xml)
    loader = (root.findtext("os/loader") or "").strip()
    if not requested.is_uefi or not loader:
        return requested
    template = root.find("os/nvram")
    vars_template = template.get("template") if template is not None else None
    return Firmware(
        requested.name, Path(loader), Path(vars_template) if vars_template else None,
        file_digest(Path(loader)), acpi=requested.acpi,
    )  # fmt: skip


def pinned_xml(xml: str, live_xml: str) -> str:
    """`xml` (the domain virt-install printed) with the firmware libvirt picked for it
    written out: `<os firmware='efi'>` becomes the live domain's `<loader>` and
    `<nvram template=...>`, so the domain boots that firmware again wherever libvirt's
    pick would now differ. A pure function; `xml` unchanged when it has no such pick."""
    root, live = ET.fromstring(xml), ET.fromstring(live_xml)
    os_, loader, nvram = root.find("os"), live.find("os/loader"), live.find("os/nvram")
    if os_ is None or loader is None or os_.get("firmware") is None:
        return xml
    del os_.attrib["firmware"]
    for auto in os_.findall("firmware"):  # the features autoselection matched
        os_.remove(auto)
    os_.insert(1, copy.deepcopy(loader))  # after <type>, as libvirt writes it
    mine = os_.find("nvram")
    if mine is not None and nvram is not None and nvram.get("template"):
        mine.set("template", nvram.get("template", ""))
    return ET.tostring(root, encoding="unicode") + "\n"
