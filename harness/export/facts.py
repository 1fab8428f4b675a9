"""What a run says per guest OS, for the tools that pick defaults (libvirt,
virt-install, osinfo-db): which transports, machine types and firmware reached a
login, and the answer to "is virtio-pci safe as the default for this OS on virt-X.Y?"

An OS here is one image (its name, the OS it reports in /etc/os-release and its
kernel, as the in-guest probe saw them): two builds of one release can differ, and
that difference is exactly what the 2016 debate was about.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from typing import TypedDict

from harness.host import machine_sort_key
from harness.model import Outcome

SCHEMA = "harness-os-facts/1"

Record = Mapping[str, object]  # a final record of a run (report/results.py)


class OsName(TypedDict):
    image: str
    name: str
    id: str
    version_id: str
    kernel: str


class PciVerdict(TypedDict):
    safe: bool
    failures: list[str]


class OsFacts(TypedDict):
    os: OsName
    reached_login: list[str]
    did_not: list[str]
    virtio_pci_default_safe: dict[str, PciVerdict]


class FactsDocument(TypedDict):
    schema: str
    run: str
    qemu: object
    oses: list[OsFacts]


def _reached_login(record: Record) -> bool:
    return Outcome(record["outcome"]).reached_login


def _where(record: Record) -> str:
    return f"{record['firmware']}/{record['machine']}/{record['transport']}"


def _why(record: Record) -> str:
    return f"{record['stage']} {record['reason']}"


def _mapping(value: object) -> Mapping[str, object]:
    return value if isinstance(value, Mapping) else {}


def _os_of(records: Sequence[Record], labels: Mapping[str, str], image: str) -> OsName:
    seen = next((_mapping(r["guest"]) for r in records if r.get("guest")), {})
    release = _mapping(seen.get("os"))
    return {
        "image": image,
        "name": str(release.get("PRETTY_NAME") or labels.get(image, image)),
        "id": str(release.get("ID", "")),
        "version_id": str(release.get("VERSION_ID", "")),
        "kernel": str(seen.get("kernel", "")),
    }


def facts(
    run: Mapping[str, object], records: Sequence[Record], labels: Mapping[str, str]
) -> FactsDocument:
    """The facts document (harness-os-facts/1) of a run's final records; `labels`
    names each image's OS where no guest said it."""
    by_image: dict[str, list[Record]] = defaultdict(list)
    for record in records:
        if record["outcome"] != Outcome.SKIP:
            by_image[str(record["image"])].append(record)
    oses: list[OsFacts] = []
    for image, cells in by_image.items():
        pci_default: dict[str, PciVerdict] = {}
        for record in cells:
            if record["transport"] == "pci":
                verdict = pci_default.setdefault(
                    str(record["machine"]), {"safe": True, "failures": []}
                )
                if not _reached_login(record):
                    verdict["safe"] = False
                    verdict["failures"].append(f"{record['firmware']}: {_why(record)}")
        oses.append({
            "os": _os_of(cells, labels, image),
            "reached_login": sorted(_where(r) for r in cells if _reached_login(r)),
            "did_not": sorted(f"{_where(r)}: {_why(r)}" for r in cells if not _reached_login(r)),
            "virtio_pci_default_safe": dict(
                sorted(pci_default.items(), key=lambda item: machine_sort_key(item[0]))
            ),
        })  # fmt: skip
    return {
        "schema": SCHEMA, "run": str(run.get("run", "")), "qemu": run.get("qemu", {}), "oses": oses,
    }  # fmt: skip


def markdown(document: FactsDocument) -> str:
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
