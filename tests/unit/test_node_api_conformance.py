"""Conformance with Node BullMQ's public API, generated from the pinned package's ``.d.ts``.

Every public method and property of Queue, Job, Worker, QueueEvents, FlowProducer and the
job-scheduler API, every key of their options objects and every Worker event, is either mapped
here (snake_case
and camelCase both exist; options keys declared in ``node_args`` / ``options`` / the worker)
or listed in the one table of deliberate absences (``docs/node-api-absences.md``) with a
reason. A Node member that is neither fails; so does a table row for something that exists
(a stale table).
"""

from __future__ import annotations

import inspect
import re
from pathlib import Path
from typing import Any

import pytest
from dts import Declarations

import bullmq_sync
from bullmq_sync import flow, node_args, options, schedulers
from bullmq_sync.worker_parts import emitter
from bullmq_sync.worker_parts import settings as worker_settings

ROOT = Path(__file__).resolve().parents[2]
NODE = ROOT / "tests" / "interop" / "node_modules" / "bullmq" / "dist" / "esm"
ABSENCES = ROOT / "docs" / "node-api-absences.md"

CLASSES = {
    "Queue": bullmq_sync.Queue,
    "Job": bullmq_sync.Job,
    "Worker": bullmq_sync.Worker,
    "QueueEvents": bullmq_sync.QueueEvents,
    "FlowProducer": bullmq_sync.FlowProducer,
    # BullMQ's JobScheduler is reached through queue.jobScheduler; ours lives on Queue.
    "JobScheduler": bullmq_sync.Queue,
}


def _options_mapped() -> dict[str, set[str]]:
    def shape(name: str) -> set[str]:
        return set(node_args.SHAPES[name].keys)

    return {
        "QueueOptions": shape("Queue"),
        "QueueEventsOptions": shape("QueueEvents"),
        "FlowProducerOptions": shape("FlowProducer"),
        "WorkerOptions": set(worker_settings.OPTION_NAMES)
        | set(worker_settings.ACCEPTED_AS_IS)
        | {"settings"},
        "JobsOptions": set(options.SUPPORTED_OPTIONS),
        "RepeatOptions": {k for k in schedulers.REPEAT_KEYS if "_" not in k},
        "ObliterateOpts": shape("Queue.obliterate"),
        "WorkerListener": set(emitter.EVENTS),
        "FlowJob": {k for k in flow._NODE_FIELDS if "_" not in k},
    }


def snake(name: str) -> str:
    """BullMQ's camelCase -> our snake_case (``getJobCounts`` -> ``get_job_counts``)."""
    text = re.sub(r"([A-Z]+)([A-Z][a-z])", r"\1_\2", name)
    return re.sub(r"([a-z0-9])([A-Z])", r"\1_\2", text).lower()


def _instance_attributes(cls: type) -> set[str]:
    """Attributes a class declares (annotations) or sets in its methods (``self.x = ...``)."""
    names: set[str] = set()
    for klass in cls.__mro__:
        names.update(getattr(klass, "__annotations__", {}))
        try:
            source = inspect.getsource(klass)
        except (OSError, TypeError):
            continue
        names.update(re.findall(r"self\.([A-Za-z_]\w*)\s*(?::[^=\n]+)?=", source))
    return names


def has(cls: type, name: str) -> bool:
    if hasattr(cls, name) or name in _instance_attributes(cls):
        return True
    aliases = getattr(inspect.getmodule(cls), "_CAMEL_ALIASES", {})
    return cls is bullmq_sync.Job and name in aliases


def read_absences() -> dict[tuple[str, str], tuple[str, str]]:
    """``(declaration, member) -> (section, reason)`` from the absences table."""
    rows: dict[tuple[str, str], tuple[str, str]] = {}
    section = ""
    for line in ABSENCES.read_text(encoding="utf-8").splitlines():
        if line.startswith("## "):
            section = "being added" if "being added" in line.lower() else "absent"
            continue
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if not line.startswith("|") or len(cells) < 3 or set(cells[0]) <= {"-", " "}:
            continue
        if cells[0] in ("Node", "Declaration"):
            continue
        declaration, member, reason = cells[0], cells[1].strip("`"), cells[2]
        key = (declaration, member)
        assert key not in rows, f"{key} listed twice in {ABSENCES.name}"
        assert reason, f"{key} has no reason in {ABSENCES.name}"
        rows[key] = (section, reason)
    return rows


@pytest.fixture(scope="module")
def dts() -> Declarations:
    if not NODE.exists():
        pytest.skip("Node BullMQ is not installed (npm ci in tests/interop)")
    return Declarations([NODE / "classes", NODE / "interfaces", NODE / "types"])


@pytest.fixture(scope="module")
def absences() -> dict[tuple[str, str], tuple[str, str]]:
    return read_absences()


def _node_members(dts: Declarations, name: str) -> dict[str, Any]:
    members = dts.members(name)
    assert members, f"{name} not found in Node's declarations (parser or package changed)"
    return members


def _mapped(cls: type, member: str) -> bool:
    if member[:1].isupper():  # a class attribute (Worker.RateLimitError): one spelling
        return has(cls, member)
    return has(cls, member) and has(cls, snake(member))


@pytest.mark.parametrize("node_class", sorted(CLASSES))
def test_every_node_member_is_mapped_or_a_listed_absence(
    dts: Declarations, absences: dict[tuple[str, str], tuple[str, str]], node_class: str
) -> None:
    ours = CLASSES[node_class]
    missing = [
        member
        for member in sorted(_node_members(dts, node_class))
        if not _mapped(ours, member) and (node_class, member) not in absences
    ]
    assert not missing, (
        f"Node's {node_class} has members that {ours.__name__} neither maps (snake_case and "
        f"camelCase) nor lists in {ABSENCES.name}: {missing}"
    )


@pytest.mark.parametrize("declaration", sorted(_options_mapped()))
def test_every_node_option_is_mapped_or_a_listed_absence(
    dts: Declarations, absences: dict[tuple[str, str], tuple[str, str]], declaration: str
) -> None:
    mapped = _options_mapped()[declaration]
    missing = [
        key
        for key in sorted(_node_members(dts, declaration))
        if key not in mapped and (declaration, key) not in absences
    ]
    assert not missing, f"{declaration}: keys neither mapped nor listed: {missing}"


def test_absences_table_is_not_stale(
    dts: Declarations, absences: dict[tuple[str, str], tuple[str, str]]
) -> None:
    options_mapped = _options_mapped()
    stale, unknown = [], []
    for (declaration, member), (section, _) in absences.items():
        if declaration in CLASSES:
            if member not in dts.members(declaration):
                unknown.append((declaration, member))
            elif _mapped(CLASSES[declaration], member):
                stale.append((declaration, member, section))
        elif declaration in options_mapped:
            if member not in dts.members(declaration):
                unknown.append((declaration, member))
            elif member in options_mapped[declaration]:
                stale.append((declaration, member, section))
        else:
            unknown.append((declaration, member))
    assert not stale, f"listed as absent in {ABSENCES.name} but implemented: {stale}"
    assert not unknown, f"rows naming nothing Node 6.7 declares: {unknown}"


def test_refused_option_keys_are_listed_with_their_reason(
    absences: dict[tuple[str, str], tuple[str, str]],
) -> None:
    for shape, declaration in (
        ("Queue", "QueueOptions"),
        ("QueueEvents", "QueueEventsOptions"),
        ("FlowProducer", "FlowProducerOptions"),
    ):
        for key in node_args.SHAPES[shape].refused:
            assert (declaration, key) in absences, f"{declaration}.{key} refused but not listed"
    for key in schedulers.REFUSED_REPEAT_KEYS:
        assert ("RepeatOptions", key) in absences, f"RepeatOptions.{key} refused but not listed"
    for key in options.REFUSED_OPTIONS:
        if key in ("repeat", "debounce"):  # not JobsOptions keys in 6.7's declarations
            continue
        assert ("JobsOptions", key) in absences, f"JobsOptions.{key} refused but not listed"


@pytest.mark.parametrize(
    "shape",
    [name for name in node_args.SHAPES if "." in name and name != "FlowProducer.add"],
)
def test_method_option_shapes_match_node_signatures(dts: Declarations, shape: str) -> None:
    """Each declared options shape has exactly the keys of the Node method's options object."""
    node_class, method = shape.split(".")
    params = dts.method_parameters(node_class, method)
    literal = re.search(r"\{([^{}]*)\}\s*\)?\s*$", params.strip()) or re.search(
        r":\s*\{([^{}]*)\}", params
    )
    if literal is None:  # a named interface, e.g. ObliterateOpts
        named = re.search(r":\s*([A-Za-z_]\w*)\s*$", params.strip())
        assert named, f"cannot read the options of {shape}: {params!r}"
        node_keys = set(dts.members(named.group(1)))
    else:
        node_keys = set(re.findall(r"([A-Za-z_]\w*)\??\s*:", literal.group(1)))
    assert set(node_args.SHAPES[shape].keys) == node_keys


def test_flow_add_shape_matches_node(dts: Declarations) -> None:
    assert set(node_args.SHAPES["FlowProducer.add"].keys) == set(dts.members("FlowOpts"))


def test_snake() -> None:
    assert snake("getJobCounts") == "get_job_counts"
    assert snake("asJSON") == "as_json"
    assert snake("add") == "add"
