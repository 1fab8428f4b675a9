"""What a run says per guest OS, for the tools that pick defaults (libvirt,
virt-install, osinfo-db): which transports, machine types and firmware reached a
login, and the answer to "is virtio-pci safe as the default for this OS on virt-X.Y?"
Every cell with its virtio devices on PCI answers it: the root bus (pci), behind
pcie-root-ports (pcie-port), and libvirt's own choice booted through libvirt
(libvirt-pci); a failure names its firmware, and its transport when not `pci`.

An OS here is one image (its name, the OS it reports in /etc/os-release and its
kernel, as the in-guest probe saw them): two builds of one release can differ, and
that difference is exactly what the 2016 debate was about.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, TypedDict

from harness.devices import mmio_twin, transport
from harness.host import machine_sort_key
from harness.model import Outcome
from harness.records import object_of
from harness.report.grid import machine_column

if TYPE_CHECKING:
    from harness.records import FinalRecord as Record  # a run's final word on a cell

SCHEMA = "harness-os-facts/1"


class OsName(TypedDict):
    image: str
    name: str
    id: str
    version_id: str
    kernel: str


class PciVerdict(TypedDict):
    safe: bool | None  # None: no cell the host let boot says either way
    failures: list[str]


class OsFacts(TypedDict):
    os: OsName
    reached_login: list[str]
    did_not: list[str]
    virtio_pci_default_safe: dict[str, PciVerdict]
    pci_answer_from: dict[str, list[str]]  # machine -> firmware of the PCI cells that said
    host_problems: list[str]  # cells set aside: the host's trouble, not the OS's answer


class FactsDocument(TypedDict):
    schema: str
    run: str
    qemu: object
    oses: list[OsFacts]


def _reached_login(record: Record) -> bool:
    return Outcome(record["outcome"]).reached_login


def _where(record: Record) -> str:
    return f"{record['firmware']}/{machine_column(record)}/{record['transport']}"


def _why(record: Record) -> str:
    return f"{record['stage']} {record['reason']}"


def _os_of(records: Sequence[Record], labels: Mapping[str, str], image: str) -> OsName:
    seen = next((object_of(r.get("guest")) for r in records if r.get("guest")), {})
    release = object_of(seen.get("os"))
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
        pci_default, evidence, host_problems = _pci_answer(cells)
        oses.append({
            "os": _os_of(cells, labels, image),
            "reached_login": sorted(_where(r) for r in cells if _reached_login(r)),
            "did_not": sorted(f"{_where(r)}: {_why(r)}" for r in cells if not _reached_login(r)),
            "virtio_pci_default_safe": dict(
                sorted(pci_default.items(), key=lambda item: machine_sort_key(item[0]))
            ),
            "pci_answer_from": {m: sorted(f) for m, f in evidence.items()},
            "host_problems": sorted(host_problems),
        })  # fmt: skip
    return {
        "schema": SCHEMA, "run": str(run.get("run", "")), "qemu": run.get("qemu", {}), "oses": oses,
    }  # fmt: skip


def _pci_answer(
    cells: Sequence[Record],
) -> tuple[dict[str, PciVerdict], dict[str, set[str]], list[str]]:
    """Per machine type: is virtio-pci safe (True, False, or None when no cell says),
    the firmware of the PCI cells that say, and the host problems set aside.

    A PCI cell is evidence about the OS only if the host let it boot: an `error` is
    the host's fault, and a timeout when the same cell on mmio also timed out or
    erred says the host was too slow or broken, not that the OS cannot use PCI."""
    # The QEMU build is part of the machine's identity (virt-7.2 of QEMU 10.0 is meant
    # to be, and may not be, virt-7.2 of QEMU 7.2): BUILD:virt-X.Y, as in the grid.
    twins = {(r["firmware"], machine_column(r), r["transport"]): r for r in cells}
    answer: dict[str, PciVerdict] = {}
    evidence: dict[str, set[str]] = defaultdict(set)
    host_problems: list[str] = []
    for record in cells:
        on = transport(str(record["transport"]))
        if on.bus != "pci":
            continue
        machine, firmware = machine_column(record), str(record["firmware"])
        verdict = answer.setdefault(machine, {"safe": None, "failures": []})
        twin_on = mmio_twin(on.name)
        twin = twins.get((firmware, machine, twin_on))
        both_stuck = twin is not None and _host_problem(record) and _host_problem(twin)
        if Outcome(record["outcome"]).is_host or both_stuck:
            host_problems.append(
                f"{firmware}/{machine}: {_said(record)} on {on.name}"
                + (f", {_said(twin)} on {twin_on}" if twin is not None else "")
            )
            continue
        evidence[machine].add(firmware)
        if _reached_login(record):
            verdict["safe"] = verdict["safe"] is not False
        else:
            verdict["safe"] = False
            where = firmware if on.name == "pci" else f"{firmware}/{on.name}"
            verdict["failures"].append(f"{where}: {_why(record)}")
    return answer, evidence, host_problems


def _host_problem(record: Record) -> bool:
    """The host's doing, or a timeout (which a slow host makes too)."""
    outcome = Outcome(record["outcome"])
    return outcome.is_host or (not outcome.reached_login and record["reason"] == "timeout")


def _said(record: Record) -> str:
    return f"{record['outcome']} {_why(record)}"


def _answer_cell(verdict: PciVerdict | None, firmware: list[str]) -> str:
    if verdict is None:
        return "-"
    if verdict["safe"] is None:
        return "unknown: only host problems (see below)"
    text = "yes" if verdict["safe"] else "no: " + "; ".join(verdict["failures"])
    return text + (" (direct boot only)" if firmware == ["none"] else "")


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
    problems = []
    for os in document["oses"]:
        cells = [
            _answer_cell(
                os["virtio_pci_default_safe"].get(machine), os["pci_answer_from"].get(machine, [])
            )
            for machine in machines
        ]
        name = f"{os['os']['name']} ({os['os']['image']})"
        lines.append(f"| {name} | {os['os']['kernel'] or '?'} | " + " | ".join(cells) + " |")
        problems += [f"- {os['os']['image']}: {p}" for p in os["host_problems"]]
    if problems:
        lines += [
            "",
            "Host problems, not counted as answers (the cell failed on both transports, "
            "or the harness or host erred):",
            "",
            *problems,
        ]
    return "\n".join(lines) + "\n"
