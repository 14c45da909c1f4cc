"""``kleio check ID...``: run every check over trials' journals (for a CI step)."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Any

from kleio.cli.common import emit, parser, print_json, store_from
from kleio.trial import short_id

if TYPE_CHECKING:
    from kleio.config import Config

DESCRIPTION = (
    "Run every check over the journal of each trial (also trials recorded before "
    "checks existed) and print what they find. Exit code 1 when a finding is an "
    "error, 0 otherwise."
)


def check_trial(store: Any, doc: dict[str, Any], config: Config) -> dict[str, Any]:
    """The JSON shape of one trial in ``kleio check --json`` (kept stable, tested)."""
    from kleio.checks import Context, registry
    from kleio.checks.engine import Engine, declarations_of, replay

    declared = declarations_of(store, doc["id"], config.metrics)

    def make_engine() -> Engine:
        context = Context(declared)
        problems: list[str] = []
        return Engine(registry.build(config.checks, context, problems), context)

    executions = replay(store, doc["id"], make_engine=make_engine)
    findings = [{**f.to_json(), "execution": e.number} for e in executions for f in e.findings]
    failed = [
        {"name": name, "error": error, "execution": e.number}
        for e in executions
        for name, error in e.failed.items()
    ]
    return {
        "id": doc["id"],
        "short_id": short_id(doc["id"]),
        "status": doc.get("status"),
        "executions": len(executions),
        "findings": findings,
        "errors": sum(1 for f in findings if f["severity"] == "error"),
        "failed_checks": failed,
    }


def render(result: dict[str, Any]) -> str:
    findings = result["findings"]
    count = len(findings)
    head = f"{result['short_id']}  {result['status']}  "
    head += f"{count} finding{'s' if count != 1 else ''}" if count else "no findings"
    lines = [head]
    several = result["executions"] > 1
    for item in findings:
        run = f" (run {item['execution']})" if several else ""
        lines.append(f"  {item['severity']:<7}  {item['name']:<14}  {item['message']}{run}")
    for item in result["failed_checks"]:
        lines.append(
            f"  check {item['name']} raised {item['error']}; it was disabled for "
            f"run {item['execution']}"
        )
    return "\n".join(lines) + "\n"


def list_checks() -> list[dict[str, Any]]:
    """Every installed check: name, severity, description and default thresholds."""
    from kleio.checks import registry

    problems: list[str] = []
    found = [
        {
            "name": name,
            "severity": cls.severity,
            "description": cls.description,
            "thresholds": dict(cls.defaults),
            "class": f"{cls.__module__}.{cls.__name__}",
        }
        for name, cls in registry.available(problems).items()
    ]
    for problem in problems:
        sys.stderr.write(f"kleio: warning: {problem}\n")
    return found


def main(argv: list[str], flags: dict[str, Any]) -> int:
    p = parser("check", DESCRIPTION)
    p.add_argument("ids", nargs="*", metavar="ID", help="trial ids or unique prefixes of them")
    p.add_argument(
        "--list", action="store_true", help="list the installed checks and their thresholds instead"
    )
    args = p.parse_args(argv)
    if args.list:
        checks = list_checks()
        if args.json:
            print_json(checks)
        else:
            out = []
            for item in checks:
                options = ", ".join(f"{k}={v:g}" for k, v in item["thresholds"].items())
                out.append(
                    f"{item['name']:<15} {item['severity']:<8} {item['description']}"
                    + (f" ({options})" if options else "")
                )
            emit("\n".join(out) + "\n")
        return 0
    if not args.ids:
        p.error("give at least one trial id (or --list)")
    from kleio.checks import EXIT_FINDINGS
    from kleio.checks.registry import validate
    from kleio.trial import resolve_trial

    store, config = store_from(flags)
    validate(config)  # a check or threshold that does not exist: exit 65 before reading
    results = []
    with store:
        docs = [resolve_trial(store, given) for given in args.ids]
        for doc in docs:
            results.append(check_trial(store, doc, config))
    if args.json:
        print_json(results)
    else:
        emit("".join(render(result) for result in results))
    return EXIT_FINDINGS if any(result["errors"] for result in results) else 0
