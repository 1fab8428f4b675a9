"""What a run says per guest OS, for the tools that pick defaults (libvirt,
virt-install, osinfo-db): which transports, machine types and firmware reached a
login, and the answer to "is virtio-pci safe as the default for this OS on virt-X.Y?"

An OS here is one image (its name, the OS it reports in /etc/os-release and its
kernel, as the in-guest probe saw them): two builds of one release can differ, and
that difference is exactly what the 2016 debate was about.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from harness.host import machine_sort_key
from harness.model import Outcome

SCHEMA = "harness-os-facts/1"


def _reached_login(record: dict[str, Any]) -> bool:
    return Outcome(record["outcome"]).reached_login


def _os_of(records: list[dict[str, Any]], labels: dict[str, str], image: str) -> dict[str, str]:
    seen = next((r["guest"] for r in records if r.get("guest")), None) or {}
    release = seen.get("os", {})
    return {
        "image": image,
        "name": release.get("PRETTY_NAME") or labels.get(image, image),
        "id": release.get("ID", ""),
        "version_id": release.get("VERSION_ID", ""),
        "kernel": seen.get("kernel", ""),
    }


def facts(
    run: dict[str, Any], records: list[dict[str, Any]], labels: dict[str, str]
) -> dict[str, Any]:
    """The facts document; `labels` names each image's OS where no guest said it."""
    by_image: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for record in records:
        if record["outcome"] != Outcome.SKIP:
            by_image[record["image"]].append(record)
    oses = []
    for image, cells in by_image.items():
        pci_default: dict[str, dict[str, Any]] = {}
        for record in cells:
            ok = _reached_login(record)
            if record["transport"] == "pci":
                verdict = pci_default.setdefault(record["machine"], {"safe": True, "failures": []})
                if not ok:
                    verdict["safe"] = False
                    verdict["failures"].append(
                        f"{record['firmware']}: {record['stage']} {record['reason']}"
                    )
        oses.append({
            "os": _os_of(cells, labels, image),
            "reached_login": sorted(
                f"{r['firmware']}/{r['machine']}/{r['transport']}"
                for r in cells if _reached_login(r)
            ),
            "did_not": sorted(
                f"{r['firmware']}/{r['machine']}/{r['transport']}: {r['stage']} {r['reason']}"
                for r in cells if not _reached_login(r)
            ),
            "virtio_pci_default_safe": dict(
                sorted(pci_default.items(), key=lambda item: machine_sort_key(item[0]))
            ),
        })  # fmt: skip
    return {"schema": SCHEMA, "run": run.get("run", ""), "qemu": run.get("qemu", {}), "oses": oses}


def markdown(document: dict[str, Any]) -> str:
    """The table: one row per OS, one column per machine type tested on PCI."""
    machines = sorted(
        {m for os in document["oses"] for m in os["virtio_pci_default_safe"]}, key=machine_sort_key
    )
    lines = [
        "### Is virtio-pci safe as the default for this OS on virt-X.Y?",
        "",
        "| OS (image) | kernel | " + " | ".join(machines) + " |",
        "|---|---|" + "---|" * len(machines),
    ]
    for os in document["oses"]:
        cells = []
        for machine in machines:
            verdict = os["virtio_pci_default_safe"].get(machine)
            if verdict is None:
                cells.append("-")
            elif verdict["safe"]:
                cells.append("yes")
            else:
                cells.append("no: " + "; ".join(verdict["failures"]))
        name = f"{os['os']['name']} ({os['os']['image']})"
        lines.append(f"| {name} | {os['os']['kernel'] or '?'} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"
